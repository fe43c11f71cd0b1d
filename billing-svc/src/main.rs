//! billing-svc entry point: parse the configuration, start, serve until SIGINT/SIGTERM; or, as
//! `billing-svc backup --to FILE`, copy the SQLite database, or as `billing-svc audit`, check the ledger,
//! and exit.

use billing_svc::audit_command::{self, AuditArgs};
use billing_svc::backup::{self, BackupArgs};
use billing_svc::{config::Config, startup::Application};
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("backup") => {
            return backup::run(&BackupArgs::parse_from(std::env::args().skip(1))).await;
        }
        Some("audit") => {
            return audit_command::run(&AuditArgs::parse_from(std::env::args().skip(1))).await;
        }
        _ => {}
    }
    let config = Config::parse();
    lifecycle::init_logging(&config.log_format);
    let application = Application::build(config).await?;
    application
        .run_until_stopped(lifecycle::shutdown_signal())
        .await?;
    Ok(())
}
