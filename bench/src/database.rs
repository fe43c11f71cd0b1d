//! The database of one benchmark run (a SQLite file in a temporary folder, or a fresh PostgreSQL
//! database) and the checks made straight in SQL after each run: the ledger invariants of BILLING.md and
//! "every settlement the harness got is recorded exactly once".

use anyhow::{Context, bail};
use sqlx::{AnyConnection, Connection, Row};

use crate::config::Backend;
use crate::postgres::Cluster;

/// A database owned by the harness for the length of a run.
pub struct BenchDatabase {
    pub backend: Backend,
    /// What billing-svc gets as `DATABASE_URL`.
    pub url: String,
    /// Keeps the SQLite folder alive.
    _dir: Option<tempfile::TempDir>,
}

impl BenchDatabase {
    /// The SQLite file (SQLite databases only).
    pub fn sqlite_path(&self) -> anyhow::Result<std::path::PathBuf> {
        self.url
            .strip_prefix("sqlite://")
            .map(std::path::PathBuf::from)
            .context("not a SQLite database")
    }

    pub async fn create(backend: Backend, cluster: Option<&Cluster>) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        match backend {
            Backend::Sqlite => {
                // The temporary folder is on the machine's disk (not tmpfs here), so fsyncs are real.
                let dir = tempfile::Builder::new()
                    .prefix("bench-sqlite.")
                    .tempdir()
                    .context("create a folder for SQLite")?;
                let url = format!("sqlite://{}/billing.db", dir.path().display());
                Ok(BenchDatabase {
                    backend,
                    url,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let cluster =
                    cluster.context("PostgreSQL was asked for but no cluster is set up")?;
                Ok(BenchDatabase {
                    backend,
                    url: cluster.create_database().await?,
                    _dir: None,
                })
            }
        }
    }

    async fn connect(&self) -> anyhow::Result<AnyConnection> {
        AnyConnection::connect(&self.url)
            .await
            .with_context(|| format!("connect to the {} database", self.backend.name()))
    }

    /// Runs the one ledger audit (`billing_svc::store::audit`); fails with every violation found.
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
        let mut connection = self.connect().await?;
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT), CAST(COUNT(DISTINCT execution_id) AS BIGINT) \
             FROM usage_records WHERE execution_id LIKE $1",
        )
        .bind(format!("{prefix}%"))
        .fetch_one(&mut connection)
        .await
        .context("count usage records")?;
        let (records, distinct): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        if u64::try_from(records).ok() != Some(expected) || records != distinct {
            bail!(
                "{} usage records ({distinct} distinct executions) for `{prefix}*`, but the harness \
                 received {expected} settlements",
                records
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
