//! `mock-model`: a deterministic model provider for tests, demos and load tests, speaking OpenAI's chat
//! completions and Anthropic's Messages API natively. It behaves like a real provider where clients have
//! gone wrong before: tool calls, `n` choices, JSON mode, logprobs, refusals, thinking blocks with
//! signatures, prompt caching, honest token counts, each API's error bodies and mid-stream errors.
//!
//! Routes:
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/chat/completions` | chat completions, streamed as SSE or whole, with OpenAI's automatic prompt caching (`cached_tokens`) and reasoning tokens: see [`completion`] |
//! | `POST /v1/messages` (also `?beta=true`) | Anthropic's Messages, streamed as SSE or whole, with thinking and prompt caching: see [`messages`] |
//! | `POST /v1/messages/count_tokens` | `{"input_tokens": n}`, the prompt as `/v1/messages` counts it: see [`messages`] |
//! | `POST /v1/embeddings` | deterministic unit vectors: see [`embeddings`] |
//! | `GET /v1/models` | the listed models: see [`models`] |
//! | `GET /requests/last`, `GET /requests` | the last request bodies POSTed to `/v1/*`: see [`recording`] |
//! | `GET /stats` | requests received since start, per route: see [`status`] |
//! | `GET /healthz` | `ok` |
//!
//! Per-request behaviour (length, latency, forced usage and cached tokens, tool fan-out, refusals,
//! injected failures and stalls) is chosen by the model name, the same way on both APIs: see
//! [`behaviour`]. What an answer says is planned once for both ([`answer`], [`tools`]); prompts are
//! counted by one rule ([`prompt`]); each API's prompt cache keeps its prefix keys in a [`prefix_cache`]
//! of its own. Nothing sleeps unless a latency or a stall is asked for, so it stays out of the way under
//! load.

pub mod answer;
pub mod behaviour;
pub mod completion;
pub mod config;
pub mod embeddings;
pub mod error;
mod fields;
pub mod messages;
pub mod models;
pub mod prefix_cache;
pub mod prompt;
pub mod recording;
pub mod status;
pub mod tokens;
pub mod tools;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use completion::cache::ChatPromptCache;
pub use config::Config;
use messages::cache::PromptCache;
use recording::Recorder;

/// The largest request body accepted (images and audio travel inline as base64).
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// Chat completion requests received, malformed and failed ones included.
    pub chat_completions: Arc<AtomicU64>,
    /// Messages requests received (`POST /v1/messages`), malformed and failed ones included.
    pub messages: Arc<AtomicU64>,
    /// Token counting requests received (`POST /v1/messages/count_tokens`).
    pub count_tokens: Arc<AtomicU64>,
    /// Embedding requests received, malformed and failed ones included.
    pub embeddings: Arc<AtomicU64>,
    pub recorder: Arc<Recorder>,
    /// The prompt prefixes Messages requests cached.
    pub prompt_cache: Arc<PromptCache>,
    /// The prompt prefixes chat completion requests cached.
    pub chat_prompt_cache: Arc<ChatPromptCache>,
}

impl AppState {
    pub fn new(config: Config) -> AppState {
        AppState {
            config: Arc::new(config),
            chat_completions: Arc::new(AtomicU64::new(0)),
            messages: Arc::new(AtomicU64::new(0)),
            count_tokens: Arc::new(AtomicU64::new(0)),
            embeddings: Arc::new(AtomicU64::new(0)),
            recorder: Arc::new(Recorder::default()),
            prompt_cache: Arc::new(PromptCache::default()),
            chat_prompt_cache: Arc::new(ChatPromptCache::default()),
        }
    }
}

/// The router of every route, for the binary and for in-process tests.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(completion::PATH, post(completion::chat_completions))
        .route(messages::PATH, post(messages::messages))
        .route(messages::COUNT_TOKENS_PATH, post(messages::count_tokens))
        .route(embeddings::PATH, post(embeddings::embeddings))
        .route("/v1/models", get(models::models))
        .route("/requests/last", get(recording::last))
        .route("/requests", get(recording::all))
        .route("/stats", get(status::stats))
        .route("/healthz", get(status::healthz))
        .fallback(status::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
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
        let _ = tokens::bpe();
        Ok(Application {
            listener,
            state: AppState::new(config),
        })
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
