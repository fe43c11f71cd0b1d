//! The database of one test or benchmark run (a SQLite file in a temporary folder, or a fresh database on
//! a PostgreSQL cluster) and the checks made straight in SQL: the one ledger audit
//! (`billing_svc::store::audit`) and "every settlement received is recorded exactly once".

use std::path::PathBuf;

use anyhow::{Context, bail};
use sqlx::{AnyConnection, Connection};

use crate::postgres::Cluster;

/// The storage backends billing-svc runs on (and a command line may name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A database owned by one test or run. Making one installs sqlx's `Any` drivers, so that its URL opens
/// with `sqlx::AnyConnection` anywhere.
pub struct Database {
    pub backend: Backend,
    /// What billing-svc gets as `DATABASE_URL`.
    pub url: String,
    /// Keeps the SQLite folder alive as long as the database.
    _dir: Option<tempfile::TempDir>,
}

impl Database {
    /// A fresh database of `backend`: a SQLite file, or a new database named `<name_prefix>_<uuid>` on
    /// `cluster`.
    pub async fn create(
        backend: Backend,
        cluster: Option<&Cluster>,
        name_prefix: &str,
    ) -> anyhow::Result<Database> {
        sqlx::any::install_default_drivers();
        match backend {
            Backend::Sqlite => Database::sqlite(),
            Backend::Postgres => {
                let cluster = cluster
                    .context("a PostgreSQL database was asked for but there is no cluster")?;
                Ok(Database {
                    backend,
                    url: cluster.create_database(name_prefix).await?,
                    _dir: None,
                })
            }
        }
    }

    /// A SQLite file in a new temporary folder, in a `data/` folder that does not exist yet: billing-svc
    /// must create it, as it does on a first start in production. The temporary folder is on the
    /// machine's disk (`/tmp`, not tmpfs here), so fsyncs are real.
    pub fn sqlite() -> anyhow::Result<Database> {
        sqlx::any::install_default_drivers();
        let dir = tempfile::Builder::new()
            .prefix("harness-sqlite.")
            .tempdir()
            .context("create a folder for SQLite")?;
        let url = format!("sqlite://{}/data/billing.db", dir.path().display());
        Ok(Database {
            backend: Backend::Sqlite,
            url,
            _dir: Some(dir),
        })
    }

    /// A database that already exists at `url` (another process's, or one a test prepared).
    pub fn existing(backend: Backend, url: String) -> Database {
        sqlx::any::install_default_drivers();
        Database {
            backend,
            url,
            _dir: None,
        }
    }

    /// The SQLite file (SQLite databases only).
    pub fn sqlite_path(&self) -> anyhow::Result<PathBuf> {
        self.url
            .strip_prefix("sqlite://")
            .map(PathBuf::from)
            .context("not a SQLite database")
    }

    /// A direct connection, for checks and assertions.
    pub async fn connect(&self) -> anyhow::Result<AnyConnection> {
        sqlx::any::install_default_drivers();
        AnyConnection::connect(&self.url)
            .await
            .with_context(|| format!("connect to the {} database", self.backend.name()))
    }

    /// Runs the one ledger audit (`billing_svc::store::audit`): every account's balance, total spent and
    /// holds reconcile with its rows, balances chain, no execution is settled twice, every row is in its
    /// key's account. Fails with every violation found.
    pub async fn check_ledger_invariants(&self) -> anyhow::Result<()> {
        let mut connection = self.connect().await?;
        let violations = billing_svc::store::audit::audit(&mut connection)
            .await
            .context("audit the ledger")?;
        if !violations.is_empty() {
            bail!(
                "ledger invariants broken on {}: {}",
                self.backend.name(),
                violations.join("; ")
            );
        }
        Ok(())
    }

    /// Fails unless the usage records whose execution id starts with `prefix` are exactly `expected`:
    /// each settlement the harness received is recorded once, and nothing else was.
    pub async fn check_usage_count(&self, prefix: &str, expected: u64) -> anyhow::Result<()> {
        /// The counts of usage records and of their distinct execution ids.
        #[derive(sqlx::FromRow)]
        struct Counts {
            records: i64,
            executions: i64,
        }
        let mut connection = self.connect().await?;
        let Counts {
            records,
            executions,
        } = sqlx::query_as(
            "SELECT CAST(COUNT(*) AS BIGINT) AS records, \
             CAST(COUNT(DISTINCT execution_id) AS BIGINT) AS executions \
             FROM usage_records WHERE execution_id LIKE $1",
        )
        .bind(format!("{prefix}%"))
        .fetch_one(&mut connection)
        .await
        .context("count usage records")?;
        if u64::try_from(records).ok() != Some(expected) || records != executions {
            bail!(
                "{records} usage records ({executions} distinct executions) for `{prefix}*`, but the \
                 harness received {expected} settlements"
            );
        }
        Ok(())
    }

    /// Usage records in the database, whatever their execution id.
    pub async fn usage_records(&self) -> anyhow::Result<u64> {
        let mut connection = self.connect().await?;
        let count: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM usage_records")
            .fetch_one(&mut connection)
            .await
            .context("count usage records")?;
        u64::try_from(count).context("a count is not negative")
    }
}
