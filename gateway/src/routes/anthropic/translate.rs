//! Anthropic's Messages API in and out of OpenAI's chat completions, which every upstream the executor
//! speaks to understands (the field-by-field table is in QUICK_START.md's Anthropic section).
//!
//! Request: `system` becomes the first (system) message; text blocks become text parts; image blocks
//! (base64 or URL) become `image_url` parts; an assistant's `tool_use` blocks become its `tool_calls`
//! (`input` as the JSON `arguments`); a user's `tool_result` blocks become `tool` messages, before the rest of
//! that user turn; `tools` (`input_schema`) become function tools; `tool_choice` `auto`/`any`/`tool`/`none`
//! become `auto`/`required`/the named function/`none`, `disable_parallel_tool_use` becomes
//! `parallel_tool_calls: false`; `stop_sequences` becomes `stop`; `metadata.user_id` becomes `user`;
//! `max_tokens`, `temperature`, `top_p`, `top_k` and `stream` keep their names. Any other field is passed on
//! unchanged. `thinking` blocks and a `thinking` setting have no chat equivalent and are refused with 400
//! rather than silently dropped; so are `document` blocks.
//!
//! Answer: the text becomes a `text` block, each tool call a `tool_use` block; `finish_reason` `stop`,
//! `length`, `tool_calls`, `content_filter` become `stop_reason` `end_turn`, `max_tokens`, `tool_use`,
//! `refusal`; `usage` becomes `input_tokens` / `output_tokens` (cached prompt tokens as
//! `cache_read_input_tokens`).

use serde_json::{Map, Value, json};

/// A request that cannot be translated, with the reason.
#[derive(Debug, PartialEq, Eq)]
pub struct Untranslatable(pub String);

fn refuse<T>(reason: impl Into<String>) -> Result<T, Untranslatable> {
    Err(Untranslatable(reason.into()))
}

/// An Anthropic Messages request as an OpenAI chat completion request.
pub fn to_chat(mut request: Map<String, Value>) -> Result<Map<String, Value>, Untranslatable> {
    if request.contains_key("thinking") {
        return refuse(
            "`thinking` is not supported through this gateway's chat completions upstream",
        );
    }
    let mut chat = Map::new();
    let mut messages = Vec::new();
    match request.remove("system") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => messages.push(json!({"role": "system", "content": text})),
        Some(Value::Array(blocks)) => {
            let text = text_of(&blocks, "system")?;
            messages.push(json!({"role": "system", "content": text}));
        }
        Some(_) => return refuse("`system` must be a string or text blocks"),
    }
    let Some(Value::Array(turns)) = request.remove("messages") else {
        return refuse("`messages` must be an array");
    };
    for turn in turns {
        translate_turn(turn, &mut messages)?;
    }
    chat.insert("messages".into(), Value::Array(messages));
    if let Some(stop) = request.remove("stop_sequences") {
        chat.insert("stop".into(), stop);
    }
    if let Some(tools) = request.remove("tools") {
        chat.insert("tools".into(), translate_tools(tools)?);
    }
    if let Some(choice) = request.remove("tool_choice") {
        let (choice, parallel) = translate_tool_choice(&choice)?;
        chat.insert("tool_choice".into(), choice);
        if let Some(parallel) = parallel {
            chat.insert("parallel_tool_calls".into(), Value::Bool(parallel));
        }
    }
    if let Some(Value::Object(mut metadata)) = request.remove("metadata")
        && let Some(user) = metadata.remove("user_id")
    {
        chat.insert("user".into(), user);
    }
    // `model`, `max_tokens`, `temperature`, `top_p`, `top_k`, `stream` and anything unknown keep their names.
    chat.extend(request);
    Ok(chat)
}

fn text_of(blocks: &[Value], field: &str) -> Result<String, Untranslatable> {
    blocks
        .iter()
        .map(
            |block| match (block["type"].as_str(), block["text"].as_str()) {
                (Some("text"), Some(text)) => Ok(text.to_string()),
                _ => refuse(format!("`{field}` may hold text blocks only")),
            },
        )
        .collect::<Result<Vec<_>, _>>()
        .map(|texts| texts.join("\n"))
}

/// One Anthropic turn as one or more chat messages.
fn translate_turn(turn: Value, messages: &mut Vec<Value>) -> Result<(), Untranslatable> {
    let role = match turn["role"].as_str() {
        Some(role @ ("user" | "assistant")) => role.to_string(),
        _ => return refuse("each message's `role` must be `user` or `assistant`"),
    };
    let blocks = match &turn["content"] {
        Value::String(text) => {
            messages.push(json!({"role": role, "content": text}));
            return Ok(());
        }
        Value::Array(blocks) => blocks,
        _ => return refuse("each message's `content` must be a string or blocks"),
    };
    let mut parts = Vec::new();
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block["type"].as_str() {
            Some("text") => parts.push(json!({"type": "text", "text": block["text"]})),
            Some("image") => parts.push(image_part(block)?),
            Some("tool_use") if role == "assistant" => tool_calls.push(json!({
                "id": block["id"], "type": "function",
                "function": {"name": block["name"], "arguments": block["input"].to_string()},
            })),
            Some("tool_result") if role == "user" => {
                let content = match &block["content"] {
                    Value::String(text) => text.clone(),
                    Value::Array(blocks) => text_of(blocks, "tool_result.content")?,
                    Value::Null => String::new(),
                    _ => {
                        return refuse("a `tool_result`'s content must be a string or text blocks");
                    }
                };
                messages.push(
                    json!({"role": "tool", "tool_call_id": block["tool_use_id"], "content": content}),
                );
            }
            Some(other) => {
                return refuse(format!(
                    "`{other}` blocks are not supported in a {role} message"
                ));
            }
            None => return refuse("each content block needs a `type`"),
        }
    }
    if role == "assistant" {
        let text: Vec<&str> = parts
            .iter()
            .filter_map(|part| part["text"].as_str())
            .collect();
        let mut message = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { Value::from(text.join("")) }});
        if !tool_calls.is_empty() {
            message["tool_calls"] = Value::Array(tool_calls);
        }
        messages.push(message);
    } else if !parts.is_empty() {
        messages.push(json!({"role": "user", "content": parts}));
    }
    Ok(())
}

fn image_part(block: &Value) -> Result<Value, Untranslatable> {
    let source = &block["source"];
    let url = match source["type"].as_str() {
        Some("base64") => format!(
            "data:{};base64,{}",
            source["media_type"].as_str().unwrap_or("image/png"),
            source["data"].as_str().unwrap_or_default()
        ),
        Some("url") => source["url"].as_str().unwrap_or_default().to_string(),
        _ => return refuse("an image's `source` must be base64 or a URL"),
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

fn translate_tools(tools: Value) -> Result<Value, Untranslatable> {
    let Value::Array(tools) = tools else {
        return refuse("`tools` must be an array");
    };
    tools
        .into_iter()
        .map(|tool| {
            let Some(name) = tool["name"].as_str() else {
                return refuse("each tool needs a `name`");
            };
            let mut function = json!({"name": name, "parameters": tool.get("input_schema").cloned().unwrap_or(json!({"type": "object"}))});
            if let Some(description) = tool.get("description") {
                function["description"] = description.clone();
            }
            Ok(json!({"type": "function", "function": function}))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// The chat `tool_choice`, and `parallel_tool_calls` when the choice says.
fn translate_tool_choice(choice: &Value) -> Result<(Value, Option<bool>), Untranslatable> {
    let parallel = choice["disable_parallel_tool_use"]
        .as_bool()
        .map(|disabled| !disabled);
    let chat = match choice["type"].as_str() {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => json!({"type": "function", "function": {"name": choice["name"]}}),
        _ => return refuse("`tool_choice.type` must be auto, any, tool or none"),
    };
    Ok((chat, parallel))
}

/// Anthropic's `stop_reason` for a chat `finish_reason`.
pub fn stop_reason(finish_reason: Option<&str>) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic's `usage` for a chat `usage`.
pub fn usage(chat_usage: &Value) -> Value {
    let mut usage = json!({
        "input_tokens": chat_usage["prompt_tokens"].as_u64().unwrap_or(0),
        "output_tokens": chat_usage["completion_tokens"].as_u64().unwrap_or(0),
    });
    if let Some(cached) = chat_usage["prompt_tokens_details"]["cached_tokens"].as_u64() {
        usage["cache_read_input_tokens"] = cached.into();
    }
    usage
}

/// A `tool_use` block's input from a call's JSON arguments (an object; anything else is kept under `_raw`).
pub fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(input)) => Value::Object(input),
        _ if arguments.trim().is_empty() => json!({}),
        _ => json!({"_raw": arguments}),
    }
}

/// An assembled chat completion as an Anthropic message.
pub fn to_message(completion: &Value) -> Value {
    let choice = &completion["choices"][0];
    let message = &choice["message"];
    let mut content = Vec::new();
    if let Some(text) = message["content"].as_str().filter(|text| !text.is_empty()) {
        content.push(json!({"type": "text", "text": text}));
    }
    if let Some(calls) = message["tool_calls"].as_array() {
        for call in calls {
            content.push(json!({
                "type": "tool_use", "id": call["id"], "name": call["function"]["name"],
                "input": tool_input(call["function"]["arguments"].as_str().unwrap_or("")),
            }));
        }
    }
    json!({
        "id": message_id(completion["id"].as_str().unwrap_or("")),
        "type": "message",
        "role": "assistant",
        "model": completion["model"],
        "content": content,
        "stop_reason": stop_reason(choice["finish_reason"].as_str()),
        "stop_sequence": null,
        "usage": usage(&completion["usage"]),
    })
}

/// A message id from the provider's completion id.
pub fn message_id(completion_id: &str) -> String {
    format!(
        "msg_{}",
        completion_id
            .trim_start_matches("chatcmpl-")
            .replace('-', "")
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn a_tool_conversation_becomes_chat_messages() {
        let request = object(json!({
            "model": "m", "max_tokens": 100, "system": [{"type": "text", "text": "Be brief."}],
            "stop_sequences": ["END"], "temperature": 0.2, "top_k": 5, "metadata": {"user_id": "u-1"},
            "tools": [{"name": "weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}}]},
                {"role": "assistant", "content": [{"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18C"}]},
                    {"type": "text", "text": "Thanks"}]},
            ],
        }));
        let chat = to_chat(request).unwrap();
        assert_eq!(
            Value::Object(chat),
            json!({
                "model": "m", "max_tokens": 100, "stop": ["END"], "temperature": 0.2, "top_k": 5, "user": "u-1",
                "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
                "tool_choice": "required", "parallel_tool_calls": false,
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}]},
                    {"role": "assistant", "content": "Checking.", "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                    {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
                    {"role": "user", "content": [{"type": "text", "text": "Thanks"}]},
                ],
            })
        );
    }

    #[test]
    fn what_has_no_chat_equivalent_is_refused() {
        for request in [
            json!({"messages": [], "thinking": {"type": "enabled", "budget_tokens": 1000}}),
            json!({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}),
            json!({"messages": [{"role": "system", "content": "x"}]}),
            json!({"messages": "hello"}),
        ] {
            assert!(to_chat(object(request)).is_err());
        }
    }

    #[test]
    fn a_completion_becomes_a_message() {
        let completion = json!({
            "id": "chatcmpl-abc", "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "Let me check.",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
        });
        assert_eq!(
            to_message(&completion),
            json!({
                "id": "msg_abc", "type": "message", "role": "assistant", "model": "m",
                "content": [{"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}}],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 12, "output_tokens": 7},
            })
        );
    }
}
