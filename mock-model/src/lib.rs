//! `mock-model`: a tiny, deterministic, OpenAI-compatible chat model for tests, demos and load tests.
//!
//! Routes: `POST /v1/chat/completions` (streamed as SSE with an optional usage chunk, or whole),
//! `GET /v1/models`, `GET /stats` (`{"requests": n}`: chat completions served since start, so tests can
//! assert that a model was never called) and `GET /healthz`. Per-request behaviour (length, latency,
//! forced usage, injected failures) is chosen by the model name: see [`behaviour`]. Nothing sleeps unless a
//! latency is configured, so it stays out of the way under load.

pub mod behaviour;
pub mod completion;
pub mod config;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

pub use config::Config;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// Chat completion requests received, failed ones included.
    pub requests: Arc<AtomicU64>,
}

/// The router of every route, for the binary and for in-process tests.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(completion::chat_completions))
        .route("/v1/models", get(completion::models))
        .route("/stats", get(completion::stats))
        .route("/healthz", get(completion::healthz))
        .with_state(state)
}

/// A bound, not yet serving, mock model.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Binds the listener (port 0 picks a free port) and loads the tokenizer before serving.
    pub async fn build(config: Config) -> std::io::Result<Application> {
        let listener = TcpListener::bind(config.listen).await?;
        // The first use of the tokenizer builds its tables; pay for it before the first request.
        let _ = tiktoken_rs::cl100k_base_singleton();
        let state = AppState {
            config: Arc::new(config),
            requests: Arc::new(AtomicU64::new(0)),
        };
        Ok(Application { listener, state })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then lets in-flight responses finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let local_addr = self.listener.local_addr()?;
        tracing::info!(addr = %local_addr, "listening");
        // Small responses must leave at once, not wait for the peer's delayed ACK (Nagle's algorithm).
        let listener = self.listener.tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
        axum::serve(listener, router(self.state))
            .with_graceful_shutdown(shutdown)
            .await
    }
}
