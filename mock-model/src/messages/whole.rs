//! The answer of a Messages request that is not streamed: one `message` object (see the module docs of
//! [`super`] for its shape).

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Plan;
use crate::answer::Answer;
use crate::tools::ToolCall;

pub fn response(plan: &Plan) -> Response {
    Json(json!({
        "id": plan.id,
        "type": "message",
        "role": "assistant",
        "model": plan.model,
        "content": content(plan),
        "stop_reason": plan.stop_reason.as_str(),
        "stop_sequence": null,
        "usage": plan.usage(plan.events()),
    }))
    .into_response()
}

fn content(plan: &Plan) -> Vec<Value> {
    let mut blocks = Vec::new();
    if let Some(thinking) = &plan.thinking {
        blocks.push(json!({
            "type": "thinking",
            "thinking": thinking.text.text(),
            "signature": thinking.signature,
        }));
    }
    match &plan.answer {
        Answer::Content(content) => blocks.push(json!({ "type": "text", "text": content.text() })),
        Answer::Refusal(pieces) => blocks.push(json!({ "type": "text", "text": pieces.text() })),
        Answer::ToolCalls(calls) => blocks.extend(calls.iter().map(tool_use)),
    }
    blocks
}

/// A call as a `tool_use` block; arguments cut by `max_tokens` are no JSON, and give an empty input.
pub fn tool_use(call: &ToolCall) -> Value {
    let input = serde_json::from_str::<Value>(call.arguments.text())
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    json!({ "type": "tool_use", "id": call.id, "name": call.name, "input": input })
}
