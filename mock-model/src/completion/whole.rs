//! The answer of a request that is not streamed: one `chat.completion` object.
//!
//! `choices[i] = {index, message: {role, content, refusal, tool_calls?}, logprobs, finish_reason}`;
//! `tool_calls` is left out when the answer calls no tool, as OpenAI does.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::request::Logprobs;
use super::{Plan, SYSTEM_FINGERPRINT, logprobs};
use crate::answer::Answer;

pub fn response(plan: &Plan) -> Response {
    let message = message(&plan.answer);
    let logprobs = choice_logprobs(plan);
    let choices: Vec<Value> = (0..plan.choices)
        .map(|index| {
            json!({
                "index": index,
                "message": message,
                "logprobs": logprobs,
                "finish_reason": plan.finish_reason.as_str(),
            })
        })
        .collect();
    Json(json!({
        "id": plan.id,
        "object": "chat.completion",
        "created": plan.created,
        "model": plan.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": choices,
        "usage": plan.usage(plan.answer.events()),
    }))
    .into_response()
}

fn message(answer: &Answer) -> Value {
    match answer {
        Answer::Content(content) => {
            json!({ "role": "assistant", "content": content.text(), "refusal": null })
        }
        Answer::Refusal(pieces) => {
            json!({ "role": "assistant", "content": null, "refusal": pieces.text() })
        }
        Answer::ToolCalls(calls) if calls.is_empty() => {
            json!({ "role": "assistant", "content": null, "refusal": null })
        }
        Answer::ToolCalls(calls) => {
            let calls: Vec<Value> = calls
                .iter()
                .map(|call| {
                    json!({
                        "id": call.id,
                        "type": "function",
                        "function": { "name": call.name, "arguments": call.arguments.text() },
                    })
                })
                .collect();
            json!({ "role": "assistant", "content": null, "refusal": null, "tool_calls": calls })
        }
    }
}

/// The `logprobs` of a choice: null unless asked, then one entry per output piece.
fn choice_logprobs(plan: &Plan) -> Value {
    let Logprobs::On { top } = plan.logprobs else {
        return Value::Null;
    };
    match &plan.answer {
        Answer::Content(content) => {
            let entries: Vec<Value> = (0..content.pieces())
                .map(|index| logprobs::entry(content.piece(index).text, top))
                .collect();
            json!({ "content": entries, "refusal": null })
        }
        Answer::Refusal(pieces) => {
            let entries: Vec<Value> = pieces
                .iter()
                .map(|piece| logprobs::entry(piece.text, top))
                .collect();
            json!({ "content": null, "refusal": entries })
        }
        Answer::ToolCalls(_) => json!({ "content": null, "refusal": null }),
    }
}
