//! OpenAI's Responses API in and out of chat completions, which every upstream the executor speaks to
//! understands (the field-by-field table is in QUICK_START.md's Responses section).
//!
//! Request: `instructions` becomes the first (system) message; `input` as a string becomes one user
//! message; input items: messages (`input_text` / `output_text` parts become text, `input_image` becomes an
//! `image_url` part; role `developer` becomes `system`), `function_call` items become the assistant's
//! `tool_calls`, `function_call_output` items become `tool` messages, `reasoning` items are dropped (chat
//! completions cannot take them back); function `tools` become chat function tools; `tool_choice` keeps its
//! meaning; `max_output_tokens` becomes `max_tokens`; `text.format` becomes `response_format`;
//! `reasoning.effort` becomes `reasoning_effort`; `temperature`, `top_p`, `parallel_tool_calls`, `user`,
//! `metadata`, `stream` and unknown fields pass on unchanged; `store`, `include` and `truncation` are
//! accepted and ignored (nothing is stored). Refused with 400, because the platform keeps no conversation
//! state or has no chat equivalent: `previous_response_id`, `conversation`, `prompt`, `background`,
//! non-function tools (web search, file search, computer use…), file inputs.
//!
//! Answer: the text becomes a `message` item with an `output_text` part (a refusal, a `refusal` part),
//! each tool call a `function_call` item; `finish_reason: length` (or a credit cut-off) makes the response
//! `incomplete` with `incomplete_details.reason: max_output_tokens`; `usage` becomes `input_tokens`,
//! `output_tokens`, `total_tokens` with their details.

use serde_json::{Map, Value, json};

/// Why a request cannot be translated.
#[derive(Debug, PartialEq, Eq)]
pub struct Untranslatable(pub String);

fn refuse<T>(reason: impl Into<String>) -> Result<T, Untranslatable> {
    Err(Untranslatable(reason.into()))
}

/// Fields refused because the platform keeps no state or has no chat equivalent for them.
const REFUSED: &[&str] = &[
    "previous_response_id",
    "conversation",
    "prompt",
    "background",
];
/// Fields accepted and ignored.
const IGNORED: &[&str] = &["store", "include", "truncation"];

/// A Responses request as a chat completion request.
pub fn to_chat(request: &Map<String, Value>) -> Result<Map<String, Value>, Untranslatable> {
    let mut request = request.clone();
    for field in REFUSED {
        if request.get(*field).is_some_and(|value| !value.is_null()) {
            return refuse(format!(
                "`{field}` is not supported: send the whole conversation in `input`"
            ));
        }
        request.remove(*field);
    }
    for field in IGNORED {
        request.remove(*field);
    }
    let mut messages = Vec::new();
    if let Some(instructions) = request.remove("instructions")
        && !instructions.is_null()
    {
        let Some(text) = instructions.as_str() else {
            return refuse("`instructions` must be a string");
        };
        messages.push(json!({"role": "system", "content": text}));
    }
    match request.remove("input") {
        Some(Value::String(text)) => messages.push(json!({"role": "user", "content": text})),
        Some(Value::Array(items)) => {
            for item in &items {
                translate_item(item, &mut messages)?;
            }
        }
        _ => return refuse("`input` must be a string or an array of items"),
    }
    let mut chat = Map::new();
    chat.insert("messages".into(), Value::Array(messages));
    if let Some(tools) = request.remove("tools") {
        chat.insert("tools".into(), translate_tools(&tools)?);
    }
    if let Some(choice) = request.remove("tool_choice") {
        chat.insert("tool_choice".into(), translate_tool_choice(choice)?);
    }
    if let Some(limit) = request.remove("max_output_tokens")
        && !limit.is_null()
    {
        chat.insert("max_tokens".into(), limit);
    }
    if let Some(text) = request.remove("text")
        && let Some(format) = text.get("format")
    {
        match format["type"].as_str() {
            Some("text") | None => {}
            Some("json_object") => {
                chat.insert("response_format".into(), json!({"type": "json_object"}));
            }
            Some("json_schema") => {
                let mut schema = json!({"name": format["name"], "schema": format["schema"]});
                if let Some(strict) = format.get("strict") {
                    schema["strict"] = strict.clone();
                }
                chat.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": schema}),
                );
            }
            Some(other) => return refuse(format!("`text.format.type` {other:?} is not supported")),
        }
    }
    if let Some(reasoning) = request.remove("reasoning")
        && let Some(effort) = reasoning.get("effort").filter(|effort| !effort.is_null())
    {
        chat.insert("reasoning_effort".into(), effort.clone());
    }
    // `model`, `temperature`, `top_p`, `parallel_tool_calls`, `user`, `metadata`, `stream` and anything
    // unknown keep their names.
    chat.extend(request);
    Ok(chat)
}

fn text_parts(content: &Value, role: &str) -> Result<Value, Untranslatable> {
    let Value::Array(parts) = content else {
        return match content {
            Value::String(text) => Ok(Value::from(text.clone())),
            _ => refuse("a message's `content` must be a string or parts"),
        };
    };
    let mut out = Vec::new();
    for part in parts {
        match part["type"].as_str() {
            Some("input_text" | "output_text" | "text") => {
                out.push(json!({"type": "text", "text": part["text"]}));
            }
            Some("refusal") => out.push(json!({"type": "text", "text": part["refusal"]})),
            Some("input_image") if part["image_url"].is_string() => {
                let mut image = json!({"url": part["image_url"]});
                if let Some(detail) = part.get("detail") {
                    image["detail"] = detail.clone();
                }
                out.push(json!({"type": "image_url", "image_url": image}));
            }
            Some(other) => {
                return refuse(format!(
                    "`{other}` content is not supported in a {role} message"
                ));
            }
            None => return refuse("each content part needs a `type`"),
        }
    }
    if role == "assistant" || role == "system" {
        // Chat completions take plain text there.
        let text: Vec<&str> = out
            .iter()
            .filter_map(|part| part["text"].as_str())
            .collect();
        return Ok(Value::from(text.join("")));
    }
    Ok(Value::Array(out))
}

fn translate_item(item: &Value, messages: &mut Vec<Value>) -> Result<(), Untranslatable> {
    match item["type"].as_str() {
        Some("message") | None => {
            let role = match item["role"].as_str() {
                Some("developer" | "system") => "system",
                Some("user") => "user",
                Some("assistant") => "assistant",
                _ => {
                    return refuse(
                        "each message item needs a role: user, assistant, system or developer",
                    );
                }
            };
            let content = text_parts(&item["content"], role)?;
            messages.push(json!({"role": role, "content": content}));
        }
        Some("function_call") => {
            let call = json!({"id": item["call_id"], "type": "function",
                              "function": {"name": item["name"], "arguments": item["arguments"]}});
            let joins_previous = messages.last().is_some_and(|last| {
                last["role"] == "assistant" && last.get("tool_calls").is_some()
            });
            match messages.last_mut() {
                Some(last) if joins_previous => {
                    if let Some(calls) = last["tool_calls"].as_array_mut() {
                        calls.push(call);
                    }
                }
                _ => messages
                    .push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
            }
        }
        Some("function_call_output") => {
            let output = match &item["output"] {
                Value::String(text) => text.clone(),
                Value::Array(parts) => parts
                    .iter()
                    .filter_map(|part| part["text"].as_str())
                    .collect::<Vec<_>>()
                    .join(""),
                other => other.to_string(),
            };
            messages
                .push(json!({"role": "tool", "tool_call_id": item["call_id"], "content": output}));
        }
        // A reasoning model's reasoning, sent back by clients: chat completions have no place for it.
        Some("reasoning") => {}
        Some(other) => return refuse(format!("input items of type {other:?} are not supported")),
    }
    Ok(())
}

fn translate_tools(tools: &Value) -> Result<Value, Untranslatable> {
    let Some(tools) = tools.as_array() else {
        return refuse("`tools` must be an array");
    };
    tools
        .iter()
        .map(|tool| {
            if tool["type"] != "function" {
                return refuse(format!(
                    "only function tools are supported, not {}",
                    tool["type"]
                ));
            }
            let mut function = json!({"name": tool["name"], "parameters": tool.get("parameters").cloned().unwrap_or(json!({"type": "object"}))});
            for field in ["description", "strict"] {
                if let Some(value) = tool.get(field).filter(|value| !value.is_null()) {
                    function[field] = value.clone();
                }
            }
            Ok(json!({"type": "function", "function": function}))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn translate_tool_choice(choice: Value) -> Result<Value, Untranslatable> {
    match &choice {
        Value::String(_) => Ok(choice),
        Value::Object(object) if object.get("type").and_then(Value::as_str) == Some("function") => {
            Ok(
                json!({"type": "function", "function": {"name": object.get("name").cloned().unwrap_or(Value::Null)}}),
            )
        }
        _ => refuse("`tool_choice` must be auto, none, required or a function"),
    }
}

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

/// The response object around `output`: the request's settings echoed as the Responses API does.
pub fn response(
    id: &str,
    created_at: u64,
    model: &Value,
    request: &Map<String, Value>,
    output: Vec<Value>,
    incomplete: bool,
    in_progress: bool,
) -> Value {
    let status = match (in_progress, incomplete) {
        (true, _) => "in_progress",
        (false, true) => "incomplete",
        (false, false) => "completed",
    };
    let field = |name: &str, default: Value| request.get(name).cloned().unwrap_or(default);
    json!({
        "id": id, "object": "response", "created_at": created_at, "status": status, "error": null,
        "incomplete_details": if incomplete && !in_progress { json!({"reason": "max_output_tokens"}) } else { Value::Null },
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

/// A `function_call` output item.
pub fn function_item(call_id: &str, name: &str, arguments: &str, status: &str) -> Value {
    json!({"type": "function_call", "id": format!("fc_{call_id}"), "call_id": call_id, "name": name,
           "arguments": arguments, "status": status})
}

/// An assembled chat completion as a response.
pub fn to_response(completion: &Value, request: &Map<String, Value>, cut_off: bool) -> Value {
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
        output.push(function_item(
            call["id"].as_str().unwrap_or_default(),
            call["function"]["name"].as_str().unwrap_or_default(),
            call["function"]["arguments"].as_str().unwrap_or_default(),
            "completed",
        ));
    }
    let incomplete = cut_off || choice["finish_reason"] == "length";
    let mut response = response(
        &id,
        completion["created"].as_u64().unwrap_or(0),
        &completion["model"],
        request,
        output,
        incomplete,
        false,
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
    fn items_tools_and_settings_become_a_chat_request() {
        let request = object(json!({
            "model": "m", "instructions": "Be brief.", "max_output_tokens": 300, "temperature": 0.1, "store": false,
            "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": true}},
            "tools": [{"type": "function", "name": "weather", "description": "Weather", "parameters": {"type": "object"}, "strict": true}],
            "tool_choice": {"type": "function", "name": "weather"},
            "input": [
                {"role": "developer", "content": "Use tools."},
                {"role": "user", "content": [{"type": "input_text", "text": "Paris?"}, {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"}]},
                {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{\"city\":\"Paris\"}"},
                {"type": "function_call", "call_id": "call_2", "name": "weather", "arguments": "{\"city\":\"Lyon\"}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
                {"type": "reasoning", "id": "rs_1", "summary": []},
            ],
        }));
        assert_eq!(
            Value::Object(to_chat(&request).unwrap()),
            json!({
                "model": "m", "max_tokens": 300, "temperature": 0.1,
                "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": true}},
                "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather", "parameters": {"type": "object"}, "strict": true}}],
                "tool_choice": {"type": "function", "function": {"name": "weather"}},
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "system", "content": "Use tools."},
                    {"role": "user", "content": [{"type": "text", "text": "Paris?"}, {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}]},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                        {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Lyon\"}"}}]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                ],
            })
        );
    }

    #[test]
    fn state_and_hosted_tools_are_refused() {
        for request in [
            json!({"input": "hi", "previous_response_id": "resp_1"}),
            json!({"input": "hi", "tools": [{"type": "web_search"}]}),
            json!({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}),
            json!({"input": 5}),
        ] {
            assert!(to_chat(&object(request)).is_err());
        }
    }

    #[test]
    fn a_completion_becomes_a_response() {
        let completion = json!({
            "id": "chatcmpl-abc", "created": 7, "model": "m",
            "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "Hi",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        });
        let response = to_response(&completion, &object(json!({"input": "x"})), false);
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
