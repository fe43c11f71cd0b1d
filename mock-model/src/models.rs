//! `GET /v1/models`: the models the mock says it serves, in OpenAI's list shape. Any model name works in a
//! request; these are only what a client listing models finds.

use axum::Json;
use serde_json::{Value, json};

/// The listed model ids.
pub const MODELS: [&str; 3] = ["mock", "gpt-4o-mini", "text-embedding-3-small"];

/// The `created` time of every listed model (a fixed instant, so answers stay deterministic).
const CREATED: u64 = 1_700_000_000;

pub async fn models() -> Json<Value> {
    let data: Vec<Value> = MODELS
        .iter()
        .map(|id| json!({ "id": id, "object": "model", "created": CREATED, "owned_by": "mock-model" }))
        .collect();
    Json(json!({ "object": "list", "data": data }))
}
