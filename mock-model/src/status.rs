//! Operational routes: `GET /stats` (request counters, so tests can assert that a model was or was not
//! called), `GET /healthz`, and the OpenAI-style 404 for any other path.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{Method, Uri};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

/// `GET /stats`: `{"requests": n, "embeddings": m}`: chat completion and embedding requests received since
/// start, malformed and failed ones included.
pub async fn stats(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "requests": state.chat_completions.load(Ordering::Relaxed),
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
