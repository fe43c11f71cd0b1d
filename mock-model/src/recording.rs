//! The bodies and headers of the last requests to `/v1/*`, so tests can assert what a client really sent
//! (`GET /requests/last`, `GET /requests`).
//!
//! Bodies are kept as parsed, unknown fields included, with the request's headers (lower-case names, values
//! as text; this is a test double, so keys are kept as sent), in a ring of [`CAPACITY`] entries; a body that
//! is not JSON is not kept.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;

/// How many requests are kept; older ones are forgotten.
pub const CAPACITY: usize = 64;

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: &'static str,
    pub headers: Arc<BTreeMap<String, String>>,
    pub body: Arc<Value>,
}

/// How a recorded request is answered.
#[derive(Serialize)]
struct RecordedView<'a> {
    path: &'a str,
    headers: &'a BTreeMap<String, String>,
    body: &'a Value,
}

impl Recorded {
    fn view(&self) -> RecordedView<'_> {
        RecordedView {
            path: self.path,
            headers: &self.headers,
            body: &self.body,
        }
    }
}

/// The ring of recorded requests, oldest first.
#[derive(Debug, Default)]
pub struct Recorder {
    ring: Mutex<VecDeque<Recorded>>,
}

impl Recorder {
    pub fn record(&self, path: &'static str, headers: &HeaderMap, body: Arc<Value>) {
        let headers = Arc::new(
            headers
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_string(), value)
                })
                .collect(),
        );
        let evicted = {
            let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
            let evicted = if ring.len() == CAPACITY {
                ring.pop_front()
            } else {
                None
            };
            ring.push_back(Recorded {
                path,
                headers,
                body,
            });
            debug_assert!(ring.len() <= CAPACITY);
            evicted
        };
        // A large body is freed here, outside the lock.
        drop(evicted);
    }

    pub fn last(&self) -> Option<Recorded> {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.back().cloned()
    }

    /// Every recorded request, oldest first.
    pub fn all(&self) -> Vec<Recorded> {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.iter().cloned().collect()
    }
}

/// `GET /requests/last`: `{"path": "/v1/chat/completions", "headers": {...}, "body": {...}}`, 404 when
/// nothing was recorded.
pub async fn last(State(state): State<AppState>) -> Response {
    match state.recorder.last() {
        Some(recorded) => json_response(&recorded.view()),
        None => ApiError::NotFound {
            message: "No request has been recorded yet.".into(),
        }
        .into_response(),
    }
}

/// `GET /requests`: `{"object": "list", "data": [{"path", "headers", "body"}, ...]}`, oldest first.
pub async fn all(State(state): State<AppState>) -> Response {
    #[derive(Serialize)]
    struct List<'a> {
        object: &'static str,
        data: Vec<RecordedView<'a>>,
    }
    let recorded = state.recorder.all();
    json_response(&List {
        object: "list",
        data: recorded.iter().map(Recorded::view).collect(),
    })
}

/// Serialises without copying the recorded bodies into a new `Value`.
fn json_response(value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(error) => {
            tracing::error!(%error, "recorded request does not serialise");
            ApiError::Internal.into_response()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_ring_keeps_the_last_requests_only() {
        let recorder = Recorder::default();
        assert!(recorder.last().is_none());
        for index in 0..CAPACITY + 5 {
            let headers = HeaderMap::new();
            recorder.record(
                "/v1/embeddings",
                &headers,
                Arc::new(json!({ "index": index })),
            );
        }
        let all = recorder.all();
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(all[0].body["index"], json!(5));
        assert_eq!(recorder.last().unwrap().body["index"], json!(CAPACITY + 4));
    }
}
