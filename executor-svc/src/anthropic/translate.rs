//! Chat completions to an Anthropic provider: the chat request as a Messages request, and Anthropic's
//! events as chat chunks, so that `/v1/chat/completions`, `/v1/responses` and `/execute` calls routed to a
//! `kind = "anthropic"` provider run like any other. The tables are in PROVIDERS.md ("Chat completions to
//! an Anthropic provider"); they are those of QUICK_START.md §6 read the other way.

use serde_json::{Map, Value, json};

use crate::anthropic::events::MessagesUsage;
use crate::error::ExecutorError;

/// `max_tokens` when the chat request sets no output limit (the Messages API requires one).
pub const DEFAULT_MAX_TOKENS: u64 = 8_192;
/// The thinking budgets `reasoning_effort` `low`, `medium` and `high` become (QUICK_START.md §6 maps
/// budgets below 4,096 to `low`, below 16,384 to `medium`, others to `high`).
const THINKING_BUDGETS: [(&str, u64); 4] = [
    ("minimal", 1_024),
    ("low", 2_048),
    ("medium", 8_192),
    ("high", 16_384),
];
/// Anthropic's smallest thinking budget.
const MIN_THINKING_BUDGET: u64 = 1_024;
/// Chat fields with no Messages equivalent, left out (PROVIDERS.md lists them).
const DROPPED_FIELDS: [&str; 16] = [
    "stream_options",
    "n",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "seed",
    "store",
    "metadata",
    "service_tier",
    "prediction",
    "prompt_cache_key",
    "web_search_options",
    "verbosity",
    "safety_identifier",
];

fn invalid(message: impl Into<String>) -> ExecutorError {
    ExecutorError::InvalidRequest(message.into())
}

/// The Messages request of a chat completion request (`body` as the executor carries it).
pub fn to_messages(body: &Map<String, Value>) -> Result<Map<String, Value>, ExecutorError> {
    let mut request = Map::new();
    let mut system: Vec<Value> = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    let mut tool_choice: Option<Value> = None;
    let mut max_tokens = None;
    for (name, value) in body {
        match name.as_str() {
            "messages" => {
                for message in value.as_array().into_iter().flatten() {
                    add_message(message, &mut system, &mut messages)?;
                }
            }
            "max_completion_tokens" => max_tokens = value.as_u64().or(max_tokens),
            "max_tokens" => max_tokens = max_tokens.or(value.as_u64()),
            "stop" => {
                let sequences = match value {
                    Value::String(stop) => vec![Value::from(stop.as_str())],
                    Value::Array(stops) => stops.clone(),
                    _ => Vec::new(),
                };
                if !sequences.is_empty() {
                    request.insert("stop_sequences".into(), Value::Array(sequences));
                }
            }
            "tools" => {
                let tools = value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(tool)
                    .collect::<Result<Vec<_>, _>>()?;
                if !tools.is_empty() {
                    request.insert("tools".into(), Value::Array(tools));
                }
            }
            "tool_choice" => tool_choice = Some(choice(value)?),
            "user" => {
                request.insert("metadata".into(), json!({"user_id": value}));
            }
            "response_format" => {
                if value["type"] == "json_schema" {
                    let schema = value["json_schema"]["schema"].clone();
                    request.insert(
                        "output_config".into(),
                        json!({"format": {"type": "json_schema", "schema": schema}}),
                    );
                }
            }
            "reasoning_effort" | "parallel_tool_calls" | "stream" => {}
            "n" if value.as_u64().is_some_and(|n| n > 1) => {
                return Err(invalid(
                    "`n` above 1 is not served by an Anthropic provider",
                ));
            }
            "modalities" | "audio" if !value.is_null() => {
                return Err(invalid(
                    "audio output is not served by an Anthropic provider",
                ));
            }
            "modalities" | "audio" => {}
            "functions" | "function_call" => {
                return Err(invalid(
                    "the legacy `functions` are not served by an Anthropic provider; use `tools`",
                ));
            }
            dropped if DROPPED_FIELDS.contains(&dropped) => {}
            // temperature, top_p, top_k and anything else: carried as they are.
            _ => {
                request.insert(name.clone(), value.clone());
            }
        }
    }
    let max_tokens = max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    request.insert("max_tokens".into(), Value::from(max_tokens));
    if let Some(effort) = body.get("reasoning_effort").and_then(Value::as_str)
        && let Some((_, budget)) = THINKING_BUDGETS.iter().find(|(name, _)| *name == effort)
    {
        // The budget must stay below max_tokens.
        let budget = (*budget).min(max_tokens.saturating_sub(1));
        if budget >= MIN_THINKING_BUDGET {
            request.insert(
                "thinking".into(),
                json!({"type": "enabled", "budget_tokens": budget}),
            );
        }
    }
    if body.get("parallel_tool_calls") == Some(&Value::Bool(false)) && request.contains_key("tools")
    {
        let choice = tool_choice.get_or_insert_with(|| json!({"type": "auto"}));
        if choice["type"] != "none" {
            choice["disable_parallel_tool_use"] = Value::Bool(true);
        }
    }
    if let Some(choice) = tool_choice {
        request.insert("tool_choice".into(), choice);
    }
    if !system.is_empty() {
        request.insert("system".into(), Value::Array(system));
    }
    request.insert("messages".into(), Value::Array(messages));
    request.insert("stream".into(), Value::Bool(true));
    Ok(request)
}

/// Adds a chat message: system and developer messages to `system`, the rest as Messages turns (a turn of
/// the same role as the last is merged into it, tool results go to a user turn).
fn add_message(
    message: &Value,
    system: &mut Vec<Value>,
    messages: &mut Vec<Value>,
) -> Result<(), ExecutorError> {
    let role = message["role"].as_str().unwrap_or("");
    let (role, blocks) = match role {
        "system" | "developer" => {
            system.extend(content_blocks(&message["content"])?);
            return Ok(());
        }
        "user" => ("user", content_blocks(&message["content"])?),
        "assistant" => {
            let mut blocks = content_blocks(&message["content"])?;
            for call in message["tool_calls"].as_array().into_iter().flatten() {
                let arguments = call["function"]["arguments"].as_str().unwrap_or("");
                let input = serde_json::from_str::<Value>(arguments)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or_else(|| json!({}));
                blocks.push(json!({"type": "tool_use", "id": call["id"], "name": call["function"]["name"], "input": input}));
            }
            ("assistant", blocks)
        }
        "tool" => {
            let content = match &message["content"] {
                Value::String(text) => Value::from(text.as_str()),
                parts => Value::Array(content_blocks(parts)?),
            };
            let result = json!({"type": "tool_result", "tool_use_id": message["tool_call_id"], "content": content});
            ("user", vec![result])
        }
        other => return Err(invalid(format!("unknown message role {other:?}"))),
    };
    if blocks.is_empty() {
        return Ok(());
    }
    if let Some(last) = messages.last_mut()
        && last["role"] == role
        && let Some(content) = last["content"].as_array_mut()
    {
        content.extend(blocks);
        return Ok(());
    }
    messages.push(json!({"role": role, "content": blocks}));
    Ok(())
}

/// A chat message's content as Messages content blocks.
fn content_blocks(content: &Value) -> Result<Vec<Value>, ExecutorError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(text) if text.is_empty() => Ok(Vec::new()),
        Value::String(text) => Ok(vec![json!({"type": "text", "text": text})]),
        Value::Array(parts) => parts.iter().map(content_part).collect(),
        _ => Err(invalid(
            "message content must be a string or an array of parts",
        )),
    }
}

fn content_part(part: &Value) -> Result<Value, ExecutorError> {
    match part["type"].as_str().unwrap_or("") {
        "text" => Ok(json!({"type": "text", "text": part["text"]})),
        "image_url" => {
            let url = part["image_url"]["url"].as_str().unwrap_or("");
            Ok(json!({"type": "image", "source": source(url)}))
        }
        "file" => {
            let data = part["file"]["file_data"].as_str().unwrap_or("");
            if !data.starts_with("data:") {
                return Err(invalid(
                    "only inline files (`file_data`) are served by an Anthropic provider",
                ));
            }
            Ok(json!({"type": "document", "source": source(data)}))
        }
        "input_audio" => Err(invalid(
            "audio input is not served by an Anthropic provider",
        )),
        other => Err(invalid(format!(
            "content part type {other:?} is not served by an Anthropic provider"
        ))),
    }
}

/// An image or document source: a `data:` URL as base64, any other URL by reference.
fn source(url: &str) -> Value {
    if let Some(rest) = url.strip_prefix("data:")
        && let Some((media_type, data)) = rest.split_once(";base64,")
    {
        return json!({"type": "base64", "media_type": media_type, "data": data});
    }
    json!({"type": "url", "url": url})
}

fn tool(tool: &Value) -> Result<Value, ExecutorError> {
    if tool["type"] != "function" {
        return Err(invalid(
            "only function tools are served by an Anthropic provider",
        ));
    }
    let function = &tool["function"];
    let mut translated = json!({
        "name": function["name"],
        "input_schema": function.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    });
    if let Some(description) = function.get("description") {
        translated["description"] = description.clone();
    }
    Ok(translated)
}

fn choice(choice: &Value) -> Result<Value, ExecutorError> {
    match choice {
        Value::String(mode) => match mode.as_str() {
            "auto" => Ok(json!({"type": "auto"})),
            "none" => Ok(json!({"type": "none"})),
            "required" => Ok(json!({"type": "any"})),
            other => Err(invalid(format!("unknown tool_choice {other:?}"))),
        },
        Value::Object(_) if choice["function"]["name"].is_string() => {
            Ok(json!({"type": "tool", "name": choice["function"]["name"]}))
        }
        _ => Err(invalid(
            "tool_choice must be \"auto\", \"none\", \"required\" or a function",
        )),
    }
}

/// The chat `finish_reason` of an Anthropic `stop_reason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// Turns Anthropic's events into chat chunks, one event at a time.
#[derive(Debug, Default)]
pub struct ToChunks {
    id: String,
    model: Value,
    created: u64,
    /// Chat tool-call index of the tool block being streamed, and how many were started.
    tool: Option<u64>,
    tools: u64,
    usage: MessagesUsage,
}

impl ToChunks {
    /// The chunks `event` becomes (often none).
    pub fn chunks(&mut self, event: &Value) -> Vec<Value> {
        let delta = |this: &ToChunks, delta: Value, finish: Value| {
            json!({"id": this.id, "object": "chat.completion.chunk", "created": this.created, "model": this.model,
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
        };
        match event["type"].as_str().unwrap_or("") {
            "message_start" => {
                let message = &event["message"];
                self.id = message["id"].as_str().unwrap_or("").to_string();
                self.model = message["model"].clone();
                self.created = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|elapsed| elapsed.as_secs())
                    .unwrap_or(0);
                self.merge(&message["usage"]);
                vec![delta(
                    self,
                    json!({"role": "assistant", "content": ""}),
                    Value::Null,
                )]
            }
            "content_block_start" => {
                let block = &event["content_block"];
                match block["type"].as_str() {
                    Some("tool_use") => {
                        let index = self.tools;
                        self.tools += 1;
                        self.tool = Some(index);
                        let call = json!({"index": index, "id": block["id"], "type": "function",
                            "function": {"name": block["name"], "arguments": ""}});
                        vec![delta(self, json!({"tool_calls": [call]}), Value::Null)]
                    }
                    Some("text") if block["text"].as_str().is_some_and(|text| !text.is_empty()) => {
                        vec![delta(self, json!({"content": block["text"]}), Value::Null)]
                    }
                    _ => {
                        self.tool = None;
                        Vec::new()
                    }
                }
            }
            "content_block_delta" => {
                let change = &event["delta"];
                match change["type"].as_str() {
                    Some("text_delta") => {
                        vec![delta(self, json!({"content": change["text"]}), Value::Null)]
                    }
                    Some("thinking_delta") => {
                        vec![delta(
                            self,
                            json!({"reasoning_content": change["thinking"]}),
                            Value::Null,
                        )]
                    }
                    Some("input_json_delta") => match self.tool {
                        Some(index) => {
                            let call = json!({"index": index, "function": {"arguments": change["partial_json"]}});
                            vec![delta(self, json!({"tool_calls": [call]}), Value::Null)]
                        }
                        None => Vec::new(),
                    },
                    _ => Vec::new(),
                }
            }
            "message_delta" => {
                self.merge(&event["usage"]);
                match event["delta"]["stop_reason"].as_str() {
                    Some(reason) => {
                        vec![delta(self, json!({}), Value::from(finish_reason(reason)))]
                    }
                    None => Vec::new(),
                }
            }
            "message_stop" => {
                let usage = self.usage;
                let charged = usage.charged();
                vec![
                    json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                    "model": self.model, "choices": [],
                    "usage": {
                        "prompt_tokens": charged.input_tokens,
                        "completion_tokens": charged.output_tokens,
                        "total_tokens": charged.input_tokens + charged.output_tokens,
                        "prompt_tokens_details": {"cached_tokens": usage.cache_read_input_tokens},
                        "cache_read_input_tokens": usage.cache_read_input_tokens,
                        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
                        "cache_creation": {"ephemeral_1h_input_tokens": usage.cache_creation_1h_input_tokens},
                    }}),
                ]
            }
            _ => Vec::new(),
        }
    }

    fn merge(&mut self, usage: &Value) {
        self.usage.merge(usage);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_chat_request_becomes_a_messages_request() {
        let body = json!({
            "model": "claude-x",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Weather?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                {"role": "user", "content": "Thanks"},
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "tool_choice": "required",
            "parallel_tool_calls": false,
            "max_completion_tokens": 4000,
            "reasoning_effort": "high",
            "temperature": 0.5,
            "stop": "END",
            "user": "u-1",
            "stream": true,
            "stream_options": {"include_usage": true},
            "seed": 7,
        });
        let request = to_messages(body.as_object().unwrap()).unwrap();
        assert_eq!(
            Value::Object(request),
            json!({
                "model": "claude-x",
                "system": [{"type": "text", "text": "Be brief."}],
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "Weather?"}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}}]},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"}, {"type": "text", "text": "Thanks"}]},
                ],
                "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
                "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
                "max_tokens": 4000,
                "thinking": {"type": "enabled", "budget_tokens": 3999},
                "temperature": 0.5,
                "stop_sequences": ["END"],
                "metadata": {"user_id": "u-1"},
                "stream": true,
            })
        );
    }

    #[test]
    fn what_anthropic_cannot_serve_is_refused_with_a_reason() {
        for body in [
            json!({"messages": [{"role": "user", "content": "x"}], "n": 2}),
            json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}),
            json!({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "custom", "custom": {}}]}),
            json!({"messages": [{"role": "user", "content": "x"}], "tool_choice": "sometimes"}),
        ] {
            assert!(
                matches!(
                    to_messages(body.as_object().unwrap()),
                    Err(ExecutorError::InvalidRequest(_))
                ),
                "{body}"
            );
        }
        let unlimited =
            json!({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "low"});
        let request = to_messages(unlimited.as_object().unwrap()).unwrap();
        assert_eq!(request["max_tokens"], DEFAULT_MAX_TOKENS);
        assert_eq!(request["thinking"]["budget_tokens"], 2048);
    }

    #[test]
    fn events_become_chunks_with_the_whole_usage() {
        let mut chunks = ToChunks::default();
        let events = [
            json!({"type": "message_start", "message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 10, "cache_read_input_tokens": 90, "cache_creation_input_tokens": 0, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}}),
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 7}}),
            json!({"type": "message_stop"}),
        ];
        let out: Vec<Value> = events
            .iter()
            .flat_map(|event| chunks.chunks(event))
            .collect();
        assert_eq!(out.len(), 7);
        assert_eq!(out[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(out[1]["choices"][0]["delta"]["reasoning_content"], "hmm");
        assert_eq!(out[2]["choices"][0]["delta"]["content"], "Hi");
        assert_eq!(
            out[3]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
            "f"
        );
        assert_eq!(
            out[4]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
            "{}"
        );
        assert_eq!(out[5]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(out[6]["usage"]["prompt_tokens"], 100);
        assert_eq!(out[6]["usage"]["completion_tokens"], 7);
        assert_eq!(
            out[6]["usage"]["prompt_tokens_details"]["cached_tokens"],
            90
        );
        assert_eq!(out[6]["choices"], json!([]));
    }
}
