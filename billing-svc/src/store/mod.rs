//! The database and the write engine. One implementation serves SQLite and PostgreSQL through sqlx's `Any`
//! driver: money is integer nano-dollars and times are Unix milliseconds, so every statement is portable;
//! only the migrations differ per backend.
//!
//! The SQL of each table lives with its concept (`accounts::sql`, `holds::sql`, ...): each function runs one
//! statement on the connection it is given, and reads rows by column name into a row struct ([`row`]); a
//! ledger operation composes them into one write operation, run by [`Store::write`] in a [`Batch`]: either
//! its own transaction (`naive`) or one group-committed transaction with other operations (`batched`, see
//! [`group_commit`]). Every ledger operation starts with [`Batch::lock`]: the account row is locked once per
//! batch (on PostgreSQL the row lock, on SQLite the database write lock the batch takes when it begins), so
//! the checks that follow (available credit, caps, idempotency) cannot race with another writer of the same
//! account. The hot path's tables are read and written with one multi-row statement per table and batch
//! ([`bulk`]).

pub mod audit;
pub mod backend;
mod batch;
pub(crate) mod bulk;
mod group_commit;
pub(crate) mod row;

use std::path::Path;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Executor};

use crate::error::BillingError;
use backend::Backend;
pub use batch::{Batch, ExecutionState, Prefetch};
use group_commit::GroupCommit;
use proto::ids::AccountId;

/// How write operations reach the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WriteMode {
    /// Group commit: many operations per transaction, each caller answered once its batch is durable.
    Batched,
    /// One transaction per operation.
    Naive,
}

/// Write path settings.
#[derive(Debug, Clone, Copy)]
pub struct WriteSettings {
    pub mode: WriteMode,
    /// Most operations per group-committed transaction.
    pub max_batch: usize,
    /// Writer connections on PostgreSQL (SQLite always has one writer).
    pub postgres_writers: usize,
}

/// What a write operation writes, so that operations on one account are applied in the order they arrive
/// (by one writer under group commit).
#[derive(Debug, Clone, Copy)]
pub enum Shard<'a> {
    /// Money, limits and keys of one account.
    Account(&'a AccountId),
    /// The price table.
    Prices,
    /// Webhook endpoints and their delivery records.
    Webhooks,
    /// The leases of auto-recharges waiting to be sent to Stripe.
    Recharges,
    /// Console sessions.
    Sessions,
    /// The mailer's cursor and attempts.
    Mail,
}

impl Shard<'_> {
    fn name(&self) -> &str {
        match self {
            Shard::Account(id) => id.as_str(),
            Shard::Prices => "",
            Shard::Webhooks => "webhooks",
            Shard::Recharges => "auto_recharges",
            Shard::Sessions => "console_sessions",
            Shard::Mail => "mail",
        }
    }
}

/// The connection pools. SQLite has one writer connection (SQLite serialises writers anyway; one connection
/// avoids lock-upgrade failures) and several readers; PostgreSQL shares one pool for both.
#[derive(Clone)]
pub struct Store {
    writer: AnyPool,
    reader: AnyPool,
    backend: Backend,
    group_commit: Option<GroupCommit>,
}

/// How long a caller waits for a pooled connection before the request is answered as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

impl Store {
    /// Connects, creating the SQLite file and its folder if missing, and applies the embedded migrations.
    pub async fn connect(
        database_url: &str,
        max_connections: u32,
        write: WriteSettings,
    ) -> Result<Store, BillingError> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(database_url)?;
        let (writer, reader, writers) = match backend {
            Backend::Sqlite => {
                let url = prepare_sqlite(database_url)?;
                let options: AnyConnectOptions = url.parse()?;
                let writer = sqlite_pool(1).connect_with(options.clone()).await?;
                let reader = sqlite_pool(max_connections).connect_with(options).await?;
                (writer, reader, 1)
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .after_connect(|connection: &mut AnyConnection, _| {
                        Box::pin(async move {
                            // A prepared statement's generic plan is chosen once, from the statistics of
                            // the moment: a lookup planned while `usage_records` was small stays a
                            // sequential scan as it grows (5 ms per batch after 20,000 rows, until
                            // autovacuum analyzes it). Planning each execution keeps the index.
                            connection
                                .execute("SET plan_cache_mode = force_custom_plan")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(database_url)
                    .await?;
                // Writers each hold a connection during a batch; leave the rest of the pool to readers.
                let most = usize::try_from(max_connections / 2).unwrap_or(1).max(1);
                (pool.clone(), pool, write.postgres_writers.clamp(1, most))
            }
        };
        let store = Store {
            writer,
            reader,
            backend,
            group_commit: None,
        };
        store.migrate().await?;
        let group_commit = match write.mode {
            WriteMode::Batched => Some(GroupCommit::start(
                store.writer.clone(),
                backend,
                writers,
                write.max_batch,
            )),
            WriteMode::Naive => None,
        };
        Ok(Store {
            group_commit,
            ..store
        })
    }

    async fn migrate(&self) -> Result<(), BillingError> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.writer)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.writer)
                    .await?
            }
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs a write operation atomically and returns its result once it is durable. `shard` says what it
    /// writes (operations of one account are applied in the order they arrive). On error nothing of the
    /// operation is written.
    pub async fn write<T, F>(&self, shard: Shard<'_>, operation: F) -> Result<T, BillingError>
    where
        T: Send + 'static,
        F: for<'b> FnOnce(&'b mut Batch) -> BoxFuture<'b, Result<T, BillingError>> + Send + 'static,
    {
        self.write_prefetched(shard, Prefetch::default(), operation)
            .await
    }

    /// [`Store::write`] for an operation that declares what it will read, so that its batch loads it in
    /// bulk with every other operation's (the hot path: open, extend, settle).
    pub async fn write_prefetched<T, F>(
        &self,
        shard: Shard<'_>,
        prefetch: Prefetch,
        operation: F,
    ) -> Result<T, BillingError>
    where
        T: Send + 'static,
        F: for<'b> FnOnce(&'b mut Batch) -> BoxFuture<'b, Result<T, BillingError>> + Send + 'static,
    {
        if let Some(group_commit) = &self.group_commit {
            return group_commit.write(shard.name(), prefetch, operation).await;
        }
        let mut batch = Batch::begin(&self.writer, self.backend).await?;
        batch.load(&prefetch).await?;
        match operation(&mut batch).await {
            Ok(value) => {
                batch.commit().await?;
                Ok(value)
            }
            Err(error) => {
                batch.rollback().await?;
                Err(error)
            }
        }
    }

    /// The pool for reads that need no transaction.
    pub fn reader(&self) -> &AnyPool {
        &self.reader
    }

    /// Closes every connection, waiting for those in use.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

fn backend_of(database_url: &str) -> Result<Backend, BillingError> {
    if database_url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(BillingError::invalid(
            "DATABASE_URL",
            "must start with sqlite: or postgres://",
        ))
    }
}

/// Creates the database's folder and asks SQLite to create the file (`mode=rwc`) unless the URL says
/// otherwise.
fn prepare_sqlite(database_url: &str) -> Result<String, BillingError> {
    let rest = database_url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" {
        return Err(BillingError::invalid(
            "DATABASE_URL",
            "needs a SQLite file path",
        ));
    }
    if let Some(folder) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(folder).map_err(|error| {
            BillingError::invalid(
                "DATABASE_URL",
                format!("cannot create {}: {error}", folder.display()),
            )
        })?;
    }
    Ok(if query.contains("mode=") {
        database_url.to_string()
    } else if query.is_empty() {
        format!("{database_url}?mode=rwc")
    } else {
        format!("{database_url}&mode=rwc")
    })
}

/// WAL journal, `synchronous=FULL` (a commit is on disk when it returns), foreign keys on, and a busy
/// timeout for other processes holding the lock.
fn sqlite_pool(max_connections: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // A SQLite connection is a file handle in this process: it cannot be dropped by a peer the way a
        // network connection can, so the ping sqlx sends before lending it out (a round trip to the
        // connection's worker thread, two thread wake-ups) checks nothing. BENCHMARKS.md, round 3.
        .test_before_acquire(false)
        .after_connect(|connection: &mut AnyConnection, _| {
            Box::pin(async move {
                for pragma in [
                    "PRAGMA journal_mode = WAL",
                    "PRAGMA synchronous = FULL",
                    "PRAGMA foreign_keys = ON",
                    "PRAGMA busy_timeout = 5000",
                ] {
                    connection.execute(pragma).await?;
                }
                Ok(())
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode() {
        let dir = tempfile::tempdir().ok();
        let base = dir
            .as_ref()
            .map(|d| d.path().display().to_string())
            .unwrap_or_default();
        let url = format!("sqlite://{base}/nested/billing.db");
        assert_eq!(prepare_sqlite(&url).ok(), Some(format!("{url}?mode=rwc")));
        assert!(Path::new(&format!("{base}/nested")).is_dir());
        assert!(prepare_sqlite("sqlite::memory:").is_err());
        assert!(backend_of("mysql://x").is_err());
    }
}
