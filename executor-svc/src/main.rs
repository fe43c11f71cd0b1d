//! `executor-svc`: the binary; everything lives in the library.

use clap::Parser;
use executor_svc::{Application, Config, StartupError};
use lifecycle::shutdown_signal;

#[tokio::main]
async fn main() -> Result<(), StartupError> {
    lifecycle::init_logging(&std::env::var("LOG_FORMAT").unwrap_or_default());
    let config = Config::parse();
    let application = match Application::build(config).await {
        Ok(application) => application,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            return Err(error);
        }
    };
    application.run_until_stopped(shutdown_signal()).await
}
