//! Lifecycle: `Application::build` binds the listener first (port 0 works), connects lazily to both
//! services and assembles the router; `run_until_stopped` serves until the shutdown future resolves and
//! lets in-flight requests (streams included, so their settlements) finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

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
    #[error("TLS_CA_CERT: cannot read {path}: {source}")]
    TlsCa {
        path: String,
        source: std::io::Error,
    },
    #[error("TLS_CA_CERT: {path} holds no PEM certificate")]
    NoCaCertificate { path: String },
    #[error("{name}: cannot set up TLS: {reason}")]
    Tls { name: &'static str, reason: String },
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

/// A lazy channel: plaintext for an `http://` URL, TLS for an `https://` one, trusting `ca` (TLS_CA_CERT)
/// when given and the system's root certificates otherwise.
fn channel(
    name: &'static str,
    url: &str,
    timeout: Option<Duration>,
    ca: Option<&Certificate>,
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
    let mut endpoint = match timeout {
        Some(timeout) => endpoint.timeout(timeout),
        None => endpoint,
    };
    if url.starts_with("https://") {
        let tls = match ca {
            Some(ca) => ClientTlsConfig::new().ca_certificate(ca.clone()),
            None => ClientTlsConfig::new().with_native_roots(),
        };
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|error| StartupError::Tls {
                name,
                reason: match std::error::Error::source(&error) {
                    Some(cause) => format!("{error}: {cause}"),
                    None => error.to_string(),
                },
            })?;
    }
    Ok(endpoint.connect_lazy())
}

/// The private CA of TLS_CA_CERT. tonic skips what is not a certificate, so a wrong file would fail every
/// call instead of the start: it must hold at least one.
fn ca_certificate(path: &std::path::Path) -> Result<Certificate, StartupError> {
    let pem = std::fs::read(path).map_err(|source| StartupError::TlsCa {
        path: path.display().to_string(),
        source,
    })?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(StartupError::NoCaCertificate {
            path: path.display().to_string(),
        });
    }
    Ok(Certificate::from_pem(pem))
}

/// The whole HTTP application: routes, fallbacks, body limit and the observing middleware.
pub fn app(config: &Config) -> Result<Router, StartupError> {
    let ca = config
        .tls_ca_path
        .as_ref()
        .map(|path| ca_certificate(path))
        .transpose()?;
    let billing = channel(
        "BILLING_URL",
        &config.billing_url,
        Some(Duration::from_secs(config.billing_timeout_secs)),
        ca.as_ref(),
    )?;
    // Streams can be long: the executor's deadline is set per call instead.
    let executor = channel("EXECUTOR_URL", &config.executor_url, None, ca.as_ref())?;
    let (router, openapi) = routes::router().split_for_parts();
    let metrics = Arc::new(Metrics::default());
    let state = AppState {
        billing,
        executor,
        executor_timeout: Duration::from_secs(config.executor_timeout_secs),
        readiness_timeout: Duration::from_millis(config.readiness_timeout_ms),
        metrics: metrics.clone(),
        openapi_json: Arc::new(serde_json::to_string(&openapi)?),
        operator_name: Arc::from(config.operator_name.as_str()),
    };
    let max_body_bytes = usize::try_from(config.max_body_bytes).unwrap_or(usize::MAX);
    let limiter = Arc::new(AuthFailureLimiter::new(AuthLimitSettings {
        burst: config.auth_failure_burst,
        refill_per_min: config.auth_failure_refill_per_min,
    }));
    // The web console: HTML pages under /console, not part of the REST API's OpenAPI document.
    let console = console::router(console::ConsoleState::new(
        state.billing.clone(),
        state.operator_name.clone(),
    ));
    Ok(router
        // Codex's WebSocket attempt, refused so it falls back at once; not an operation of /openapi.json.
        .route("/v1/responses", get(routes::openai::responses::websocket))
        .merge(console)
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn(
            crate::model_api::error_shape::retry_hint,
        ))
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
