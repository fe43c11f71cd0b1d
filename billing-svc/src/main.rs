//! billing-svc entry point: parse the configuration, start, serve until SIGINT/SIGTERM.

use billing_svc::{config::Config, startup::Application};
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    lifecycle::init_logging(&config.log_format);
    let application = Application::build(config).await?;
    application
        .run_until_stopped(lifecycle::shutdown_signal())
        .await?;
    Ok(())
}
