//! Lifecycle: `Application::build` binds the listener first (port 0 works), connects lazily to both
//! services and assembles the router; `run_until_stopped` serves until the shutdown future resolves and
//! lets in-flight requests (streams included, so their settlements) finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tonic::transport::{Channel, Endpoint};

use crate::auth_limit::{AuthFailureLimiter, AuthLimitSettings};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::routes::{self, method_not_allowed, route_not_found};
use crate::state::AppState;

/// How long connecting to a downstream may take before the call fails with 503.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{name}: `{url}` is not a valid gRPC endpoint URL")]
    InvalidUrl { name: &'static str, url: String },
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot render the OpenAPI document: {0}")]
    OpenApi(#[from] serde_json::Error),
}

pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: config.listen,
            source,
        })?;
        let router = app(&config)?;
        tracing::info!(addr = %local_addr, "listening");
        Ok(Application { listener, router })
    }

    /// The bound address (the real port when built with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // The peer address feeds the failed-authentication limiter (per client IP).
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        // Small responses must leave at once, not wait for the peer's delayed ACK (Nagle's algorithm).
        let listener = self.listener.tap_io(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::warn!(%error, "cannot set TCP_NODELAY");
            }
        });
        axum::serve(listener, service)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

fn channel(
    name: &'static str,
    url: &str,
    timeout: Option<Duration>,
) -> Result<Channel, StartupError> {
    let invalid = || StartupError::InvalidUrl {
        name,
        url: url.to_string(),
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(invalid());
    }
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|_| invalid())?
        .connect_timeout(CONNECT_TIMEOUT);
    let endpoint = match timeout {
        Some(timeout) => endpoint.timeout(timeout),
        None => endpoint,
    };
    Ok(endpoint.connect_lazy())
}

/// The whole HTTP application: routes, fallbacks, body limit and the observing middleware.
pub fn app(config: &Config) -> Result<Router, StartupError> {
    let billing = channel(
        "BILLING_URL",
        &config.billing_url,
        Some(Duration::from_secs(config.billing_timeout_secs)),
    )?;
    // Streams can be long: the executor's deadline is set per call instead.
    let executor = channel("EXECUTOR_URL", &config.executor_url, None)?;
    let (router, openapi) = routes::router().split_for_parts();
    let metrics = Arc::new(Metrics::default());
    let state = AppState {
        billing,
        executor,
        executor_timeout: Duration::from_secs(config.executor_timeout_secs),
        readiness_timeout: Duration::from_millis(config.readiness_timeout_ms),
        metrics: metrics.clone(),
        openapi_json: Arc::new(serde_json::to_string(&openapi)?),
    };
    let max_body_bytes = usize::try_from(config.max_body_bytes).unwrap_or(usize::MAX);
    let limiter = Arc::new(AuthFailureLimiter::new(AuthLimitSettings {
        burst: config.auth_failure_burst,
        refill_per_min: config.auth_failure_refill_per_min,
    }));
    Ok(router
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            limiter,
            crate::auth_limit::limit_failed_auth,
        ))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::middleware::observe,
        ))
        .with_state(state))
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
