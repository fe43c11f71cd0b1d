//! What every service binary does at start and stop, written once: install the log subscriber, read its
//! secrets from the configuration ([`secret`]), wait for the signal to shut down, and run a background
//! worker's rounds until told to stop ([`every`]).

pub mod secret;

use tracing_subscriber::EnvFilter;

/// Installs the global log subscriber: `RUST_LOG` filters (default `info`), lines go to stdout, as JSON
/// when `log_format` is `json` (any case), human-readable otherwise. Later calls (tests, several services
/// in one process) are ignored.
pub fn init_logging(log_format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let _ = if log_format.eq_ignore_ascii_case("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when the future is
/// first polled, so a signal sent as soon as the caller says it is ready (a supervisor stopping it right
/// after the "ready" line) stops it cleanly instead of killing it. A signal that cannot be listened for is
/// logged and never fires.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let listeners = {
        use tokio::signal::unix::{SignalKind, signal};
        [SignalKind::interrupt(), SignalKind::terminate()].map(|kind| {
            signal(kind)
                .inspect_err(|error| tracing::error!(%error, ?kind, "cannot listen for a signal"))
                .ok()
        })
    };
    async move {
        #[cfg(unix)]
        {
            let [interrupt, terminate] = listeners;
            let wait = |listener: Option<tokio::signal::unix::Signal>| async move {
                match listener {
                    Some(mut listener) => {
                        listener.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => {},
                () = wait(terminate) => {},
            }
        }
        #[cfg(not(unix))]
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("shutdown signal received");
    }
}

/// Runs `round` every `interval` (a late round delays the next rather than bunching them) until `stop`
/// changes; a round's error is logged as `what` failed and the next round tries again.
pub async fn every<F, Fut, E>(
    interval: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
    what: &str,
    mut round: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if let Err(error) = round().await {
                    tracing::warn!(%error, "{what} failed; will retry");
                }
            }
            _ = stop.changed() => return,
        }
    }
}
