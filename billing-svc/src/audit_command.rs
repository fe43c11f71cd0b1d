//! `billing-svc audit`: runs the one ledger audit against `DATABASE_URL` (SQLite or PostgreSQL) and exits
//! non-zero when an invariant is broken: for a restored backup before it takes traffic, or any time. It
//! only reads; on a live database a write landing between two checks can show as a violation, so run it on
//! a quiet or stopped database.

use anyhow::{Context, bail};
use clap::Parser;
use sqlx::{AnyConnection, Connection};

use crate::store::audit;

/// Checks every account's ledger invariants (BILLING.md, "The ledger").
#[derive(Debug, Parser)]
#[command(name = "billing-svc audit")]
pub struct AuditArgs {
    /// The database to check: billing-svc's `DATABASE_URL`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://./data/billing.db"
    )]
    pub database_url: String,
}

/// Runs the audit; an error lists what is broken.
pub async fn run(args: &AuditArgs) -> anyhow::Result<()> {
    sqlx::any::install_default_drivers();
    audit_database(&args.database_url).await?;
    println!("audit passed: every invariant holds");
    Ok(())
}

/// Connects to `database_url` and runs the audit; an error lists what is broken (also used by
/// `billing-svc backup` on its copy).
pub async fn audit_database(database_url: &str) -> anyhow::Result<()> {
    let mut connection = AnyConnection::connect(database_url)
        .await
        .context("cannot connect to the database")?;
    let violations = audit::audit(&mut connection)
        .await
        .context("run the audit")?;
    connection.close().await?;
    if !violations.is_empty() {
        bail!(
            "the ledger breaks its invariants: {}",
            violations.join("; ")
        );
    }
    Ok(())
}
