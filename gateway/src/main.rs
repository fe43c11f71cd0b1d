//! gateway entry point: parse the configuration, bind, serve until SIGINT/SIGTERM.

use clap::Parser;
use gateway::config::Config;
use gateway::startup::Application;
use lifecycle::shutdown_signal;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    lifecycle::init_logging(&config.log_format);
    let application = Application::build(config).await?;
    application.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}
