//! Anthropic's stream events as metering reads them, and the `message` a unary call answers with, assembled
//! from them with every field the provider sent.
//!
//! Output is counted from the `content_block_delta`s: text, thinking and a tool call's input JSON (a
//! `signature_delta` is no output). The usage is `message_start`'s, updated field by field by
//! `message_delta`'s (whose `output_tokens` is the final count); the charge's input is the whole prompt,
//! uncached input, cache reads and cache writes together (PROVIDERS.md, "What is charged").

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::answer::{ProviderUsage, TokenClasses};
use proto::ending::FinishReason;

/// Usage as the provider reported it, in its token classes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessagesUsage {
    /// Input tokens neither read from nor written to the prompt cache.
    pub input_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub cache_creation_input_tokens: u64,
    /// Of the cache writes, those for one hour (`cache_creation.ephemeral_1h_input_tokens`).
    pub cache_creation_1h_input_tokens: u64,
    pub output_tokens: u64,
}

impl MessagesUsage {
    /// Takes in the fields `usage` reports (later reports win).
    pub(crate) fn merge(&mut self, usage: &Value) {
        let read = |name: &str, into: &mut u64| {
            if let Some(count) = usage.get(name).and_then(Value::as_u64) {
                *into = count;
            }
        };
        read("input_tokens", &mut self.input_tokens);
        read("cache_read_input_tokens", &mut self.cache_read_input_tokens);
        read(
            "cache_creation_input_tokens",
            &mut self.cache_creation_input_tokens,
        );
        read("output_tokens", &mut self.output_tokens);
        if let Some(count) = usage
            .get("cache_creation")
            .and_then(|split| split.get("ephemeral_1h_input_tokens"))
            .and_then(Value::as_u64)
        {
            self.cache_creation_1h_input_tokens = count;
        }
    }

    /// The charge: the whole prompt as input (cache reads and writes are its classes), and the output.
    pub fn charged(&self) -> ProviderUsage {
        ProviderUsage {
            input_tokens: self.input_tokens
                + self.cache_read_input_tokens
                + self.cache_creation_input_tokens,
            output_tokens: self.output_tokens,
            classes: TokenClasses {
                cached_input: self.cache_read_input_tokens,
                cache_write: self.cache_creation_input_tokens,
                cache_write_1h: self.cache_creation_1h_input_tokens,
                ..TokenClasses::default()
            },
        }
        .fitted()
    }
}

/// What one event generates: its text (a `text_delta`'s) and every string that counts as output.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Generated<'e> {
    pub text: Option<&'e str>,
    pub output: Vec<&'e str>,
}

/// The output `event` carries.
pub fn generated(event: &Value) -> Generated<'_> {
    let mut generated = Generated::default();
    match event_type(event) {
        "content_block_delta" => {
            let delta = &event["delta"];
            for field in ["text", "thinking", "partial_json"] {
                if let Some(text) = delta.get(field).and_then(Value::as_str) {
                    generated.output.push(text);
                }
            }
            generated.text = delta
                .get("text")
                .and_then(Value::as_str)
                .filter(|text| !text.is_empty());
        }
        // A tool call's name is generated output, as a chat chunk's function name is.
        "content_block_start" => {
            if let Some(name) = event["content_block"].get("name").and_then(Value::as_str) {
                generated.output.push(name);
            }
        }
        _ => {}
    }
    generated
}

/// Events the executor holds back from the client: `message_delta` (its usage and the billing figures go
/// out together once billing has settled) and `message_stop` (the stream's end follows the settlement).
pub fn held_back(event: &Value) -> bool {
    matches!(event_type(event), "message_delta" | "message_stop")
}

fn event_type(event: &Value) -> &str {
    event.get("type").and_then(Value::as_str).unwrap_or("")
}

/// The answer so far: usage and stop reason always, the whole message when assembling (unary calls).
#[derive(Debug, Default)]
pub struct Message {
    assemble: bool,
    message: Map<String, Value>,
    blocks: BTreeMap<u64, Block>,
    usage: Option<MessagesUsage>,
    stop_reason: Option<String>,
}

#[derive(Debug, Default)]
struct Block {
    fields: Map<String, Value>,
    /// A tool call's input JSON as streamed, parsed when the block ends.
    partial_json: String,
}

impl Message {
    /// `assemble`: keep the content to answer a unary call.
    pub fn new(assemble: bool) -> Message {
        Message {
            assemble,
            ..Message::default()
        }
    }

    /// Takes an event in.
    pub fn absorb(&mut self, event: &Value) {
        match event_type(event) {
            "message_start" => {
                let message = &event["message"];
                if let Some(usage) = message.get("usage") {
                    self.usage.get_or_insert_default().merge(usage);
                }
                if self.assemble
                    && let Some(fields) = message.as_object()
                {
                    self.message = fields.clone();
                }
            }
            "message_delta" => {
                if let Some(usage) = event.get("usage") {
                    self.usage.get_or_insert_default().merge(usage);
                }
                if let Some(reason) = event["delta"].get("stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(reason.to_string());
                }
                if self.assemble
                    && let Some(delta) = event["delta"].as_object()
                {
                    for (name, value) in delta {
                        self.message.insert(name.clone(), value.clone());
                    }
                }
            }
            "content_block_start" if self.assemble => {
                let index = event["index"].as_u64().unwrap_or(0);
                let block = self.blocks.entry(index).or_default();
                if let Some(fields) = event["content_block"].as_object() {
                    block.fields = fields.clone();
                }
            }
            "content_block_delta" if self.assemble => {
                let index = event["index"].as_u64().unwrap_or(0);
                let block = self.blocks.entry(index).or_default();
                let Some(delta) = event["delta"].as_object() else {
                    return;
                };
                for (name, value) in delta {
                    match (name.as_str(), value) {
                        ("type", _) => {}
                        ("partial_json", Value::String(json)) => block.partial_json.push_str(json),
                        // A citation is added to the block's list.
                        ("citation", citation) => {
                            let citations = block
                                .fields
                                .entry("citations")
                                .or_insert_with(|| Value::Array(Vec::new()));
                            if let Value::Array(citations) = citations {
                                citations.push(citation.clone());
                            } else {
                                *citations = Value::Array(vec![citation.clone()]);
                            }
                        }
                        (_, Value::String(text)) => match block.fields.get_mut(name) {
                            Some(Value::String(existing)) => existing.push_str(text),
                            _ => {
                                block.fields.insert(name.clone(), value.clone());
                            }
                        },
                        _ => {
                            block.fields.insert(name.clone(), value.clone());
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// The usage reported so far, if any.
    pub fn usage(&self) -> Option<MessagesUsage> {
        self.usage
    }

    /// The stop reason `message_delta` gave, if it came.
    pub fn stop_reason(&self) -> Option<&str> {
        self.stop_reason.as_deref()
    }

    /// The `message` of a unary call. Cut off by billing, it ends with `stop_reason` `max_tokens`; without
    /// the provider's usage, `usage` is what was charged.
    pub fn message(self, finish: FinishReason, charged: ProviderUsage) -> Value {
        let mut message = self.message;
        message.insert("type".into(), Value::from("message"));
        message
            .entry("role")
            .or_insert_with(|| Value::from("assistant"));
        let content: Vec<Value> = self
            .blocks
            .into_values()
            .map(|mut block| {
                if block.fields.get("input").is_some() || !block.partial_json.is_empty() {
                    let input = serde_json::from_str::<Value>(&block.partial_json)
                        .ok()
                        .filter(Value::is_object)
                        .or_else(|| block.fields.get("input").cloned())
                        .unwrap_or_else(|| Value::Object(Map::new()));
                    block.fields.insert("input".into(), input);
                }
                Value::Object(block.fields)
            })
            .collect();
        message.insert("content".into(), Value::Array(content));
        if finish.is_cut_off() || !message.get("stop_reason").is_some_and(Value::is_string) {
            let reason = if finish.is_cut_off() {
                "max_tokens"
            } else {
                "end_turn"
            };
            message.insert("stop_reason".into(), Value::from(reason));
        }
        message.entry("stop_sequence").or_insert(Value::Null);
        let usage = message
            .entry("usage")
            .or_insert_with(|| Value::Object(Map::new()));
        if self.usage.is_none() {
            *usage = serde_json::json!({"input_tokens": charged.input_tokens, "output_tokens": charged.output_tokens});
        } else if let (Some(fields), Some(reported)) = (usage.as_object_mut(), self.usage) {
            fields.insert("output_tokens".into(), Value::from(reported.output_tokens));
        }
        Value::Object(message)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stream() -> Vec<Value> {
        vec![
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 12, "cache_read_input_tokens": 3000, "cache_creation_input_tokens": 500, "output_tokens": 1, "vendor": "kept"}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me think"}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "c2ln"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hello"}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": " there"}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}),
            json!({"type": "content_block_stop", "index": 2}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 42}}),
            json!({"type": "message_stop"}),
        ]
    }

    #[test]
    fn a_message_is_assembled_whole_from_its_events() {
        let mut message = Message::new(true);
        for event in stream() {
            message.absorb(&event);
        }
        assert_eq!(
            message.usage(),
            Some(MessagesUsage {
                input_tokens: 12,
                cache_read_input_tokens: 3000,
                cache_creation_input_tokens: 500,
                cache_creation_1h_input_tokens: 0,
                output_tokens: 42
            })
        );
        assert_eq!(
            message.usage().unwrap().charged(),
            ProviderUsage {
                input_tokens: 3512,
                output_tokens: 42,
                classes: TokenClasses {
                    cached_input: 3000,
                    cache_write: 500,
                    ..TokenClasses::default()
                },
            }
        );
        assert_eq!(message.stop_reason(), Some("tool_use"));
        let charged = ProviderUsage {
            input_tokens: 0,
            output_tokens: 0,
            ..ProviderUsage::default()
        };
        let answer = message.message(FinishReason::Stop, charged);
        assert_eq!(
            answer["content"],
            json!([
                {"type": "thinking", "thinking": "Let me think", "signature": "c2ln"},
                {"type": "text", "text": "Hello there"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ])
        );
        assert_eq!(answer["stop_reason"], "tool_use");
        assert_eq!(answer["usage"]["output_tokens"], 42);
        assert_eq!(answer["usage"]["vendor"], "kept");
        assert_eq!(answer["id"], "msg_1");
    }

    #[test]
    fn a_cut_off_message_ends_with_max_tokens() {
        let mut message = Message::new(true);
        for event in &stream()[..7] {
            message.absorb(event);
        }
        let charged = ProviderUsage {
            input_tokens: 3512,
            output_tokens: 5,
            ..ProviderUsage::default()
        };
        let answer = message.message(FinishReason::CreditExhausted, charged);
        assert_eq!(answer["stop_reason"], "max_tokens");
        assert_eq!(
            answer["content"][1],
            json!({"type": "text", "text": "Hello"})
        );
    }

    #[test]
    fn output_is_counted_from_the_deltas() {
        let events = stream();
        let generated: Vec<Generated> = events.iter().map(generated).collect();
        assert_eq!(generated[2].output, ["Let me think"]);
        assert!(generated[3].output.is_empty(), "a signature is no output");
        assert_eq!(generated[6].text, Some("Hello"));
        assert_eq!(generated[9].output, ["get_weather"]);
        assert_eq!(generated[10].output, ["{\"city\": "]);
        assert!(held_back(&events[13]) && held_back(&events[14]) && !held_back(&events[0]));
    }
}
