//! `mock-model`: a deterministic OpenAI-compatible chat model served over HTTP (see the library docs).

use clap::Parser;
use lifecycle::shutdown_signal;
use mock_model::{Application, Config};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    lifecycle::init_logging(&std::env::var("LOG_FORMAT").unwrap_or_default());
    let config = Config::parse();
    let application = Application::build(config).await?;
    application.run_until_stopped(shutdown_signal()).await
}
