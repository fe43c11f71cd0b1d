//! `devstack`: starts the whole platform locally and stops it cleanly on Ctrl-C (see the library docs).

use clap::Parser;
use devstack::{Secrets, Stack, banner};
use lifecycle::shutdown_signal;

/// Runs billing-svc (SQLite under ./data by default), executor-svc, the gateway and, unless OPENAI_API_KEY or
/// OPENAI_BASE_URL is set, the mock model, all in this process. Every service reads the environment
/// variables of its own binary (see README.md); ADMIN_API_KEY and SERVICE_TOKEN are generated when unset.
/// SIGINT or SIGTERM stops the services gateway first, letting in-flight calls finish and settle; a second
/// signal exits at once.
#[derive(Parser)]
#[command(name = "devstack", version)]
struct Args {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Args::parse();
    lifecycle::init_logging(&std::env::var("LOG_FORMAT").unwrap_or_default());
    let secrets = Secrets::from_env();
    let stack = match Stack::start(&secrets).await {
        Ok(stack) => stack,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "cannot start the stack");
            return Err(error);
        }
    };
    if let Err(error) = stack.wait_until_ready().await {
        tracing::error!(
            error = format!("{error:#}"),
            "the stack did not become ready"
        );
        let _ = stack.stop().await;
        return Err(error);
    }
    // Listening before saying "ready": a signal sent right after it stops the stack cleanly.
    let first_signal = shutdown_signal();
    println!("{}", banner::render(&stack.endpoints, &secrets));
    tracing::info!(
        gateway = %stack.endpoints.gateway_url(),
        billing = %stack.endpoints.billing_target(),
        executor = %stack.endpoints.executor,
        model = %stack.endpoints.model_base_url,
        "ready"
    );

    let failed_by_itself = tokio::select! {
        () = first_signal => false,
        () = stack.exited() => true,
    };
    tracing::info!("stopping: gateway, executor-svc, mock model, billing-svc");
    let stopped = tokio::select! {
        stopped = stack.stop() => stopped,
        () = shutdown_signal() => {
            tracing::warn!("second signal: exiting without waiting for in-flight work");
            std::process::exit(130);
        }
    };
    match (stopped, failed_by_itself) {
        (Ok(()), false) => Ok(()),
        (Ok(()), true) => Err(anyhow::anyhow!("a service stopped by itself")),
        (Err(error), _) => {
            tracing::error!(error = format!("{error:#}"), "stopped with errors");
            Err(error)
        }
    }
}
