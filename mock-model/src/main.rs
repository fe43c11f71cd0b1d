//! `mock-model`: a deterministic OpenAI-compatible chat model served over HTTP (see the library docs).

use clap::Parser;
use mock_model::{Application, Config, telemetry};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    telemetry::init();
    let config = Config::parse();
    let application = Application::build(config).await?;
    application.run_until_stopped(shutdown_signal()).await
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the mock");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
