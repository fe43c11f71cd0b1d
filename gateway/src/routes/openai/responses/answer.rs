//! A chat completion answered as OpenAI's Responses API `response` (the field-by-field table is in
//! QUICK_START.md's Responses section).
//!
//! The text becomes a `message` item with an `output_text` part (a refusal, a `refusal` part),
//! each tool call a `function_call` item (with its `namespace` when it was flattened) or, for a custom
//! tool, a `custom_tool_call` item with the `input` string; `finish_reason: length` makes the response
//! `incomplete` with `incomplete_details.reason: max_output_tokens`, a credit cut-off with
//! `credit_exhausted`; `usage` becomes
//! `input_tokens`, `output_tokens`, `total_tokens` with their details.

use serde_json::{Map, Value, json};

use super::request::{ToolNames, ToolOrigin};

/// The Responses `usage` of a chat `usage`.
pub fn usage(chat_usage: &Value) -> Value {
    let input = chat_usage["prompt_tokens"].as_u64().unwrap_or(0);
    let output = chat_usage["completion_tokens"].as_u64().unwrap_or(0);
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": chat_usage["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0)},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": chat_usage["completion_tokens_details"]["reasoning_tokens"].as_u64().unwrap_or(0)},
        "total_tokens": chat_usage["total_tokens"].as_u64().unwrap_or(input + output),
    })
}

/// Where a response stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Completed,
    /// Ended early: the provider stopped at the output limit (`max_output_tokens`), or credit or a spend
    /// cap ended the answer (`credit_exhausted`, the reason the billing figures give too; Codex prints
    /// "Incomplete response returned, reason: credit_exhausted").
    Incomplete(IncompleteReason),
}

/// Why a response is `incomplete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncompleteReason {
    MaxOutputTokens,
    CreditExhausted,
}

impl Status {
    /// The end of an answer: cut off by credit, or by the provider's `length` finish.
    pub fn of_end(cut_off: bool, finish_reason: Option<&str>) -> Status {
        match (cut_off, finish_reason) {
            (true, _) => Status::Incomplete(IncompleteReason::CreditExhausted),
            (false, Some("length")) => Status::Incomplete(IncompleteReason::MaxOutputTokens),
            (false, _) => Status::Completed,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::Incomplete(_) => "incomplete",
        }
    }

    fn details(self) -> Value {
        match self {
            Status::InProgress | Status::Completed => Value::Null,
            Status::Incomplete(IncompleteReason::MaxOutputTokens) => {
                json!({"reason": "max_output_tokens"})
            }
            Status::Incomplete(IncompleteReason::CreditExhausted) => {
                json!({"reason": "credit_exhausted"})
            }
        }
    }
}

/// The response object around `output`: the request's settings echoed as the Responses API does.
pub fn response(
    id: &str,
    created_at: u64,
    model: &Value,
    request: &Map<String, Value>,
    output: Vec<Value>,
    status: Status,
) -> Value {
    let field = |name: &str, default: Value| request.get(name).cloned().unwrap_or(default);
    json!({
        "id": id, "object": "response", "created_at": created_at, "status": status.name(), "error": null,
        "incomplete_details": status.details(),
        "instructions": field("instructions", Value::Null), "max_output_tokens": field("max_output_tokens", Value::Null),
        "model": model, "output": output,
        "parallel_tool_calls": field("parallel_tool_calls", Value::Bool(true)),
        "temperature": field("temperature", Value::Null), "top_p": field("top_p", Value::Null),
        "tool_choice": field("tool_choice", Value::from("auto")), "tools": field("tools", json!([])),
        "metadata": field("metadata", json!({})), "text": field("text", json!({"format": {"type": "text"}})),
        "usage": null,
    })
}

/// The id of a response from the provider's completion id.
pub fn response_id(completion_id: &str) -> String {
    format!(
        "resp_{}",
        completion_id
            .trim_start_matches("chatcmpl-")
            .replace('-', "")
    )
}

/// A `message` output item.
pub fn message_item(id: &str, text: &str, refusal: bool, status: &str) -> Value {
    let part = if refusal {
        json!({"type": "refusal", "refusal": text})
    } else {
        json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
    };
    json!({"type": "message", "id": id, "status": status, "role": "assistant", "content": [part]})
}

/// The output item of a call of the chat function `name`: a `function_call` (with its `namespace` when it
/// was flattened), or a `custom_tool_call` whose `input` is the one string argument.
pub fn call_item(call_id: &str, origin: &ToolOrigin, arguments: &str, status: &str) -> Value {
    match origin {
        ToolOrigin::Function { namespace, name } => {
            let mut item = json!({"type": "function_call", "id": format!("fc_{call_id}"), "call_id": call_id,
                                  "name": name, "arguments": arguments, "status": status});
            if let Some(namespace) = namespace {
                item["namespace"] = namespace.as_str().into();
            }
            item
        }
        ToolOrigin::Custom { namespace, name } => {
            let mut item = json!({"type": "custom_tool_call", "id": format!("ctc_{call_id}"), "call_id": call_id,
                                  "name": name, "input": custom_input(arguments), "status": status});
            if let Some(namespace) = namespace {
                item["namespace"] = namespace.as_str().into();
            }
            item
        }
    }
}

/// The free text of a custom tool call from its chat arguments `{"input": "…"}` (the arguments as they
/// are when the model wrote something else).
pub fn custom_input(arguments: &str) -> String {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(mut object)) => match object.remove("input") {
            Some(Value::String(input)) => input,
            _ => arguments.to_string(),
        },
        _ => arguments.to_string(),
    }
}

/// An assembled chat completion as a response.
pub fn to_response(
    completion: &Value,
    request: &Map<String, Value>,
    tools: &ToolNames,
    cut_off: bool,
) -> Value {
    let choice = &completion["choices"][0];
    let message = &choice["message"];
    let id = response_id(completion["id"].as_str().unwrap_or(""));
    let mut output = Vec::new();
    if let Some(refusal) = message["refusal"].as_str() {
        output.push(message_item(
            &format!("msg_{id}"),
            refusal,
            true,
            "completed",
        ));
    } else if let Some(text) = message["content"].as_str().filter(|text| !text.is_empty()) {
        output.push(message_item(&format!("msg_{id}"), text, false, "completed"));
    }
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        output.push(call_item(
            call["id"].as_str().unwrap_or_default(),
            &tools.origin(call["function"]["name"].as_str().unwrap_or_default()),
            call["function"]["arguments"].as_str().unwrap_or_default(),
            "completed",
        ));
    }
    let mut response = response(
        &id,
        completion["created"].as_u64().unwrap_or(0),
        &completion["model"],
        request,
        output,
        Status::of_end(cut_off, choice["finish_reason"].as_str()),
    );
    response["usage"] = usage(&completion["usage"]);
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }
    #[test]
    fn calls_map_back_to_their_tools() {
        let namespaced = ToolOrigin::Function {
            namespace: Some("multi_agent_v1".into()),
            name: "close_agent".into(),
        };
        assert_eq!(
            call_item("call_1", &namespaced, "{}", "completed"),
            json!({"type": "function_call", "id": "fc_call_1", "call_id": "call_1", "namespace": "multi_agent_v1",
                   "name": "close_agent", "arguments": "{}", "status": "completed"})
        );
        let custom = ToolOrigin::Custom {
            namespace: None,
            name: "apply_patch".into(),
        };
        assert_eq!(
            call_item(
                "call_2",
                &custom,
                "{\"input\":\"*** Begin Patch\\n\"}",
                "completed"
            ),
            json!({"type": "custom_tool_call", "id": "ctc_call_2", "call_id": "call_2", "name": "apply_patch",
                   "input": "*** Begin Patch\n", "status": "completed"})
        );
        assert_eq!(custom_input("not json"), "not json");
        assert_eq!(custom_input("{\"other\":1}"), "{\"other\":1}");
    }

    #[test]
    fn a_completion_becomes_a_response() {
        let completion = json!({
            "id": "chatcmpl-abc", "created": 7, "model": "m",
            "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "Hi",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        });
        let response = to_response(
            &completion,
            &object(json!({"input": "x"})),
            &ToolNames::default(),
            false,
        );
        assert_eq!(response["id"], "resp_abc");
        assert_eq!(response["status"], "incomplete");
        assert_eq!(
            response["incomplete_details"]["reason"],
            "max_output_tokens"
        );
        assert_eq!(response["output"][0]["content"][0]["text"], "Hi");
        assert_eq!(response["output"][1]["type"], "function_call");
        assert_eq!(response["output"][1]["call_id"], "call_1");
        assert_eq!(response["usage"]["total_tokens"], 5);
    }
}
