//! billing-svc entry point: parse the configuration, start, serve until SIGINT/SIGTERM.

use billing_svc::{config::Config, startup::Application, telemetry};
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(&config.log_format);
    let application = Application::build(config).await?;
    application
        .run_until_stopped(billing_svc::startup::shutdown_signal())
        .await?;
    Ok(())
}
