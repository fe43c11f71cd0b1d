//! Anthropic's Messages API in and out of OpenAI's chat completions, which every upstream the executor speaks
//! to understands (the field-by-field table is in QUICK_START.md's Anthropic section). Everything Anthropic
//! accepts is accepted (QUICK_START.md §6): what chat completions can express is mapped, what they cannot is
//! dropped, and only a request that is malformed as Anthropic's API defines it is refused.
//!
//! Request: `system` (a string or text blocks) becomes the first system message, and a `system` message
//! inside `messages` a system message where it stands; text blocks become text parts; image blocks (base64
//! or URL) become `image_url` parts; a base64 PDF `document` becomes a `file` part, a text or content
//! `document` its text; an assistant's `tool_use` blocks become its `tool_calls` (`input` as the JSON
//! `arguments`); a user's `tool_result` blocks become `tool` messages, before the rest of that user turn
//! (images inside a result follow as a user message: a tool message holds text only); `thinking` and
//! `redacted_thinking` blocks (an earlier answer's reasoning, signed for Anthropic) and the server tools'
//! blocks are dropped; `cache_control` is dropped wherever it stands (chat providers cache prompts
//! themselves). Client `tools` (`input_schema`) become function tools; server tools (`web_search_…`,
//! `bash_…`, `code_execution_…`, any typed tool but `custom`) are dropped and named in `x-dropped-tools`;
//! `tool_choice` `auto`/`any`/`tool`/`none` become `auto`/`required`/the named function/`none`,
//! `disable_parallel_tool_use` becomes `parallel_tool_calls: false`; `stop_sequences` becomes `stop`;
//! `metadata.user_id` becomes `user` (as it is when it is a short plain id, else as its SHA-256 in hex:
//! OpenAI takes at most 64 characters and some providers only `[A-Za-z0-9_-]`, while Claude Code sends a
//! JSON object of about 150; the hash keeps one user one id); `thinking` becomes `reasoning_effort`
//! (`enabled`: a `budget_tokens` under 4,096 `low`, under 16,384 `medium`, else `high`; `adaptive`
//! `medium`; `disabled` nothing), and `output_config.effort` overrides it (`low`, `medium`, `high`; `max`
//! is `high`); `output_config.format` (and the older `output_format`) of type `json_schema` becomes
//! `response_format`; `context_management`, `service_tier`, `container` and `mcp_servers` are dropped (the
//! client holds the whole conversation, and the platform runs no server-side tools); `max_tokens`,
//! `temperature`, `top_p`, `top_k` and `stream` keep their names, and any field Anthropic does not define
//! is passed on unchanged (a vendor's extension).
//!
//! Answer: the text becomes a `text` block, each tool call a `tool_use` block; `finish_reason` `stop`,
//! `length`, `tool_calls`, `content_filter` become `stop_reason` `end_turn`, `max_tokens`, `tool_use`,
//! `refusal`; `usage` becomes `input_tokens` / `output_tokens` (cached prompt tokens as
//! `cache_read_input_tokens`).

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// A request that cannot be translated, with the reason.
#[derive(Debug, PartialEq, Eq)]
pub struct Untranslatable(pub String);

fn refuse<T>(reason: impl Into<String>) -> Result<T, Untranslatable> {
    Err(Untranslatable(reason.into()))
}

/// A translated request: the chat request, and the names of the server tools it could not carry.
#[derive(Debug, PartialEq)]
pub struct ChatRequest {
    pub chat: Map<String, Value>,
    pub dropped_tools: Vec<String>,
}

/// Top-level fields of Anthropic's API that chat completions have no place for (see the module docs).
const DROPPED_FIELDS: &[&str] = &[
    "context_management",
    "service_tier",
    "container",
    "mcp_servers",
];

/// Content block types an Anthropic client may send back that chat completions have no place for: an
/// earlier answer's reasoning and the server tools' calls and results.
const DROPPED_BLOCKS: &[&str] = &[
    "thinking",
    "redacted_thinking",
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "mcp_tool_use",
    "mcp_tool_result",
    "container_upload",
    "tool_search_tool_result",
];

/// Thinking budgets below these are `low`, then `medium`; at or above the second, `high` (QUICK_START.md §6).
const LOW_EFFORT_BELOW_BUDGET: u64 = 4_096;
const MEDIUM_EFFORT_BELOW_BUDGET: u64 = 16_384;

/// An Anthropic Messages request as an OpenAI chat completion request.
pub fn to_chat(mut request: Map<String, Value>) -> Result<ChatRequest, Untranslatable> {
    let mut chat = Map::new();
    let mut messages = Vec::new();
    match request.remove("system") {
        None | Some(Value::Null) => {}
        Some(system) => messages.push(system_message(&system)?),
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
    let mut dropped_tools = Vec::new();
    if let Some(tools) = request.remove("tools") {
        let tools = translate_tools(tools, &mut dropped_tools)?;
        if !tools.is_empty() {
            chat.insert("tools".into(), Value::Array(tools));
        }
    }
    if let Some(choice) = request.remove("tool_choice") {
        let (choice, parallel) = translate_tool_choice(&choice, &dropped_tools)?;
        if !chat.contains_key("tools") && choice == "required" && !dropped_tools.is_empty() {
            return refuse(
                "`tool_choice` requires a tool, and only server tools this gateway cannot run were given",
            );
        }
        // A choice among tools that were all dropped has nothing left to choose from (and chat providers
        // refuse `tool_choice` and `parallel_tool_calls` without `tools`).
        if chat.contains_key("tools") {
            chat.insert("tool_choice".into(), choice);
            if let Some(parallel) = parallel {
                chat.insert("parallel_tool_calls".into(), Value::Bool(parallel));
            }
        }
    }
    if let Some(Value::Object(mut metadata)) = request.remove("metadata")
        && let Some(Value::String(user)) = metadata.remove("user_id")
    {
        chat.insert("user".into(), chat_user(&user).into());
    }
    let thinking = request.remove("thinking");
    let output_config = request.remove("output_config");
    let output_format = request.remove("output_format");
    if let Some(effort) = reasoning_effort(thinking.as_ref(), output_config.as_ref())? {
        chat.insert("reasoning_effort".into(), effort.into());
    }
    let format = output_config
        .as_ref()
        .and_then(|config| config.get("format"))
        .or(output_format.as_ref())
        .filter(|format| !format.is_null());
    if let Some(format) = format {
        chat.insert("response_format".into(), response_format(format)?);
    }
    for field in DROPPED_FIELDS {
        request.remove(*field);
    }
    // `model`, `max_tokens`, `temperature`, `top_p`, `top_k`, `stream` and anything unknown keep their names.
    chat.extend(request);
    Ok(ChatRequest {
        chat,
        dropped_tools,
    })
}

/// The longest `user` OpenAI's chat completions take.
const MAX_CHAT_USER_CHARS: usize = 64;

/// The chat `user` for an Anthropic `metadata.user_id` (see the module docs).
fn chat_user(user_id: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if !user_id.is_empty() && user_id.len() <= MAX_CHAT_USER_CHARS && user_id.chars().all(plain) {
        user_id.to_string()
    } else {
        hex::encode(Sha256::digest(user_id.as_bytes()))
    }
}

/// The chat `reasoning_effort` of Anthropic's `thinking` and `output_config.effort` (see the module docs).
fn reasoning_effort(
    thinking: Option<&Value>,
    output_config: Option<&Value>,
) -> Result<Option<&'static str>, Untranslatable> {
    let from_config = match output_config.map(|config| &config["effort"]) {
        None | Some(Value::Null) => None,
        Some(Value::String(effort)) => Some(match effort.as_str() {
            "low" => "low",
            "medium" => "medium",
            "high" | "max" => "high",
            other => {
                return refuse(format!(
                    "`output_config.effort` {other:?} is not one of low, medium, high, max"
                ));
            }
        }),
        Some(_) => return refuse("`output_config.effort` must be a string"),
    };
    if from_config.is_some() {
        return Ok(from_config);
    }
    let Some(thinking) = thinking.filter(|thinking| !thinking.is_null()) else {
        return Ok(None);
    };
    match thinking["type"].as_str() {
        Some("enabled") => match thinking["budget_tokens"].as_u64() {
            Some(budget) if budget < LOW_EFFORT_BELOW_BUDGET => Ok(Some("low")),
            Some(budget) if budget < MEDIUM_EFFORT_BELOW_BUDGET => Ok(Some("medium")),
            Some(_) => Ok(Some("high")),
            None => refuse(
                "`thinking.budget_tokens`: a positive integer is required when thinking is enabled",
            ),
        },
        Some("adaptive") => Ok(Some("medium")),
        Some("disabled") => Ok(None),
        _ => refuse("`thinking.type` must be enabled, adaptive or disabled"),
    }
}

/// The chat `response_format` of Anthropic's structured output format.
fn response_format(format: &Value) -> Result<Value, Untranslatable> {
    match format["type"].as_str() {
        Some("json_schema") => {
            let mut schema = json!({"name": "output", "schema": format["schema"], "strict": true});
            if let Some(name) = format.get("name").filter(|name| name.is_string()) {
                schema["name"] = name.clone();
            }
            Ok(json!({"type": "json_schema", "json_schema": schema}))
        }
        _ => refuse("`output_config.format.type` must be json_schema"),
    }
}

/// A system prompt (a string or text blocks) as a chat system message.
fn system_message(system: &Value) -> Result<Value, Untranslatable> {
    let text = match system {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => text_of(blocks, "system")?,
        _ => return refuse("`system` must be a string or text blocks"),
    };
    Ok(json!({"role": "system", "content": text}))
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
        Some("system") => {
            messages.push(system_message(&turn["content"])?);
            return Ok(());
        }
        _ => return refuse("each message's `role` must be `user`, `assistant` or `system`"),
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
            Some("document") => parts.push(document_part(block)?),
            Some("tool_use") if role == "assistant" => tool_calls.push(json!({
                "id": block["id"], "type": "function",
                "function": {"name": block["name"], "arguments": block["input"].to_string()},
            })),
            Some("tool_result") if role == "user" => tool_result(block, messages)?,
            Some(kind) if DROPPED_BLOCKS.contains(&kind) => {}
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
        if text.is_empty() && tool_calls.is_empty() {
            // Only reasoning or server tool blocks: nothing chat completions can carry.
            return Ok(());
        }
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

/// A user's `tool_result` as a `tool` message; the images it holds follow as a user message.
fn tool_result(block: &Value, messages: &mut Vec<Value>) -> Result<(), Untranslatable> {
    let mut images = Vec::new();
    let content = match &block["content"] {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => {
            let mut texts = Vec::new();
            for inner in blocks {
                match inner["type"].as_str() {
                    Some("text") => {
                        texts.push(inner["text"].as_str().unwrap_or_default().to_string())
                    }
                    Some("image") => images.push(image_part(inner)?),
                    Some("document") => match document_part(inner)? {
                        part if part["type"] == "text" => {
                            texts.push(part["text"].as_str().unwrap_or_default().to_string());
                        }
                        part => images.push(part),
                    },
                    _ => {
                        return refuse(
                            "a `tool_result`'s content may hold text, image and document blocks",
                        );
                    }
                }
            }
            texts.join("\n")
        }
        Value::Null => String::new(),
        _ => {
            return refuse("a `tool_result`'s content must be a string or blocks");
        }
    };
    messages
        .push(json!({"role": "tool", "tool_call_id": block["tool_use_id"], "content": content}));
    if !images.is_empty() {
        messages.push(json!({"role": "user", "content": images}));
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

/// A `document` block as a chat part: a base64 PDF as a `file` part, a text document as its text.
fn document_part(block: &Value) -> Result<Value, Untranslatable> {
    let source = &block["source"];
    match source["type"].as_str() {
        Some("base64") => {
            let media_type = source["media_type"].as_str().unwrap_or("application/pdf");
            let filename = block["title"].as_str().unwrap_or("document.pdf");
            Ok(json!({"type": "file", "file": {
                "filename": filename,
                "file_data": format!("data:{media_type};base64,{}", source["data"].as_str().unwrap_or_default()),
            }}))
        }
        Some("text") => Ok(json!({"type": "text", "text": source["data"]})),
        Some("content") => match &source["content"] {
            Value::String(text) => Ok(json!({"type": "text", "text": text})),
            Value::Array(blocks) => {
                Ok(json!({"type": "text", "text": text_of(blocks, "document.source.content")?}))
            }
            _ => refuse("a content document's `source.content` must be a string or text blocks"),
        },
        _ => refuse(
            "a document's `source` must be base64, text or content (a URL or file id cannot be sent to a chat completions provider)",
        ),
    }
}

/// Client tools as chat function tools; server tools are dropped and their names kept in `dropped`.
fn translate_tools(tools: Value, dropped: &mut Vec<String>) -> Result<Vec<Value>, Untranslatable> {
    let Value::Array(tools) = tools else {
        return refuse("`tools` must be an array");
    };
    let mut functions = Vec::new();
    for tool in tools {
        let Some(name) = tool["name"].as_str() else {
            return refuse("each tool needs a `name`");
        };
        match tool["type"].as_str() {
            None | Some("custom") => {}
            Some(_) => {
                dropped.push(name.to_string());
                continue;
            }
        }
        let mut function = json!({"name": name, "parameters": tool.get("input_schema").cloned().unwrap_or(json!({"type": "object"}))});
        for field in ["description", "strict"] {
            if let Some(value) = tool.get(field).filter(|value| !value.is_null()) {
                function[field] = value.clone();
            }
        }
        functions.push(json!({"type": "function", "function": function}));
    }
    Ok(functions)
}

/// The chat `tool_choice`, and `parallel_tool_calls` when the choice says. Naming a dropped server tool is
/// refused: the answer could not honour it.
fn translate_tool_choice(
    choice: &Value,
    dropped: &[String],
) -> Result<(Value, Option<bool>), Untranslatable> {
    let parallel = choice["disable_parallel_tool_use"]
        .as_bool()
        .map(|disabled| !disabled);
    let chat = match choice["type"].as_str() {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = choice["name"].as_str().unwrap_or_default();
            if dropped.iter().any(|tool| tool == name) {
                return refuse(format!(
                    "`tool_choice` requires the server tool {name:?}, which this gateway cannot run"
                ));
            }
            json!({"type": "function", "function": {"name": name}})
        }
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
        let chat = to_chat(request).unwrap().chat;
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
    fn malformed_requests_are_refused() {
        for request in [
            json!({"messages": "hello"}),
            json!({"messages": [{"role": "tool", "content": "x"}]}),
            json!({"messages": [{"role": "user", "content": [{"type": "video"}]}]}),
            json!({"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}}]}]}),
            json!({"messages": [], "thinking": {"type": "enabled"}}),
            json!({"messages": [], "thinking": {"type": "sometimes"}}),
            json!({"messages": [], "output_config": {"effort": "extreme"}}),
            json!({"messages": [], "output_config": {"format": {"type": "xml"}}}),
            json!({"messages": [], "tools": [{"type": "web_search_20250305", "name": "web_search"}],
                   "tool_choice": {"type": "tool", "name": "web_search"}}),
            json!({"messages": [], "tools": [{"type": "web_search_20250305", "name": "web_search"}],
                   "tool_choice": {"type": "any"}}),
        ] {
            assert!(to_chat(object(request.clone())).is_err(), "{request}");
        }
    }

    #[test]
    fn server_tools_alone_leave_no_tools_and_no_choice() {
        for choice in [
            json!({"type": "auto", "disable_parallel_tool_use": true}),
            json!({"type": "none"}),
        ] {
            let request = object(
                json!({"messages": [{"role": "user", "content": "Hi"}], "tool_choice": choice,
                "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
            );
            let ChatRequest {
                chat,
                dropped_tools,
            } = to_chat(request).unwrap();
            assert_eq!(dropped_tools, ["web_search"]);
            for field in ["tools", "tool_choice", "parallel_tool_calls"] {
                assert!(!chat.contains_key(field), "{field}");
            }
        }
    }

    #[test]
    fn thinking_and_output_effort_become_a_reasoning_effort() {
        let cases = [
            (
                json!({"type": "enabled", "budget_tokens": 1024}),
                Value::Null,
                Some("low"),
            ),
            (
                json!({"type": "enabled", "budget_tokens": 4095}),
                Value::Null,
                Some("low"),
            ),
            (
                json!({"type": "enabled", "budget_tokens": 4096}),
                Value::Null,
                Some("medium"),
            ),
            (
                json!({"type": "enabled", "budget_tokens": 16383}),
                Value::Null,
                Some("medium"),
            ),
            (
                json!({"type": "enabled", "budget_tokens": 16384}),
                Value::Null,
                Some("high"),
            ),
            (
                json!({"type": "enabled", "budget_tokens": 31999}),
                Value::Null,
                Some("high"),
            ),
            (json!({"type": "adaptive"}), Value::Null, Some("medium")),
            (json!({"type": "disabled"}), Value::Null, None),
            (Value::Null, Value::Null, None),
            (
                json!({"type": "adaptive"}),
                json!({"effort": "low"}),
                Some("low"),
            ),
            (
                json!({"type": "enabled", "budget_tokens": 1024}),
                json!({"effort": "max"}),
                Some("high"),
            ),
            (Value::Null, json!({"effort": "medium"}), Some("medium")),
            (json!({"type": "adaptive"}), json!({}), Some("medium")),
        ];
        for (thinking, output_config, effort) in cases {
            let mut request = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]});
            if !thinking.is_null() {
                request["thinking"] = thinking.clone();
            }
            if !output_config.is_null() {
                request["output_config"] = output_config.clone();
            }
            let chat = to_chat(object(request)).unwrap().chat;
            assert_eq!(
                chat.get("reasoning_effort").and_then(Value::as_str),
                effort,
                "{thinking} {output_config}"
            );
            for field in ["thinking", "output_config"] {
                assert!(
                    !chat.contains_key(field),
                    "{field} must not reach a chat provider"
                );
            }
        }
    }

    /// What Claude Code sends (QUICK_START.md §6): every field is mapped or dropped, none refused, and
    /// nothing Anthropic-only reaches a chat completions provider.
    #[test]
    fn a_claude_code_request_is_mapped_or_dropped_never_refused() {
        let request = object(json!({
            "model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": true,
            "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                    {"type": "text", "text": "Fix the bug", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Let me look.", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "abc"},
                    {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "/a.rs"}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": false, "content": [
                        {"type": "text", "text": "fn main() {}"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}}],
                     "cache_control": {"type": "ephemeral"}}]},
                {"role": "system", "content": "Summarise when done."},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "", "signature": "s"}]},
                {"role": "user", "content": [{"type": "document", "title": "spec.pdf",
                    "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}}]},
            ],
            "tools": [
                {"name": "Read", "description": "Read a file", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}},
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
                {"type": "custom", "name": "Edit", "input_schema": {"type": "object"}, "strict": true},
            ],
            "tool_choice": {"type": "auto"},
            "metadata": {"user_id": "{\"device_id\":\"ca40\",\"account_uuid\":\"\",\"session_id\":\"d129\"}"},
            "thinking": {"type": "enabled", "budget_tokens": 31999},
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
            "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
            "service_tier": "auto",
            "vendor_extension": {"kept": true},
        }));
        let ChatRequest {
            chat,
            dropped_tools,
        } = to_chat(request).unwrap();
        assert_eq!(dropped_tools, ["web_search"]);
        assert_eq!(
            Value::Object(chat),
            json!({
                "model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": true,
                "messages": [
                    {"role": "system", "content": "You are Claude Code."},
                    {"role": "user", "content": [{"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                        {"type": "text", "text": "Fix the bug"}]},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "toolu_1", "type": "function", "function": {"name": "Read", "arguments": "{\"file_path\":\"/a.rs\"}"}}]},
                    {"role": "tool", "tool_call_id": "toolu_1", "content": "fn main() {}"},
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}]},
                    {"role": "system", "content": "Summarise when done."},
                    {"role": "user", "content": [
                        {"type": "file", "file": {"filename": "spec.pdf", "file_data": "data:application/pdf;base64,JVBE"}},
                        {"type": "text", "text": "notes"}]},
                ],
                "tools": [
                    {"type": "function", "function": {"name": "Read", "description": "Read a file", "parameters": {"type": "object"}}},
                    {"type": "function", "function": {"name": "Edit", "parameters": {"type": "object"}, "strict": true}},
                ],
                "tool_choice": "auto",
                "user": hex::encode(Sha256::digest(b"{\"device_id\":\"ca40\",\"account_uuid\":\"\",\"session_id\":\"d129\"}")),
                "reasoning_effort": "high",
                "response_format": {"type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"}, "strict": true}},
                "vendor_extension": {"kept": true},
            })
        );
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
