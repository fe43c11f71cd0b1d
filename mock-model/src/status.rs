//! Operational routes: `GET /stats` (request counters, so tests can assert that a model was or was not
//! called), `GET /healthz`, and the OpenAI-style 404 for any other path.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{Method, Uri};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

/// `GET /stats`: requests received since start, malformed and failed ones included:
/// `{"requests", "chat_completions", "messages", "count_tokens", "embeddings"}`, where `requests` counts the
/// model calls of either API (`chat_completions` + `messages`; token counts and embeddings apart).
pub async fn stats(State(state): State<AppState>) -> Json<Value> {
    let chat_completions = state.chat_completions.load(Ordering::Relaxed);
    let messages = state.messages.load(Ordering::Relaxed);
    Json(json!({
        "requests": chat_completions + messages,
        "chat_completions": chat_completions,
        "messages": messages,
        "count_tokens": state.count_tokens.load(Ordering::Relaxed),
        "embeddings": state.embeddings.load(Ordering::Relaxed),
    }))
}

/// `GET /healthz`.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Any other route, answered as OpenAI answers an unknown URL.
pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound {
        message: format!("Invalid URL ({method} {})", uri.path()),
    }
}
