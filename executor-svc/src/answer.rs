//! The provider's streamed answer, chunk by chunk: what each chunk tells the executor (error, usage, which
//! choices finished, the first choice's text), and the `chat.completion` a unary call answers with,
//! assembled from the chunks so that every field the provider sent is kept.
//!
//! Assembly merges each choice's deltas the way OpenAI's SDKs accumulate a stream: strings are appended
//! (content, refusal, tool-call arguments, any provider-specific text), items of arrays that carry an
//! `index` (tool calls) are merged by it, other arrays (logprobs) are appended, objects are merged field by
//! field, and identifiers (`id`, `type`, `role`, ...) and other scalars take the latest value.

use std::collections::BTreeMap;

use proto::ending::FinishReason;
use serde_json::{Map, Value, json};

use crate::provider_error::ProviderError;

/// String fields that are replaced, never appended to.
const REPLACED_STRINGS: [&str; 8] = [
    "id",
    "type",
    "role",
    "object",
    "model",
    "system_fingerprint",
    "service_tier",
    "finish_reason",
];

/// Usage as the provider reported it: the whole prompt, the whole output, and the token classes inside them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProviderUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub classes: TokenClasses,
}

/// Token classes inside a usage's input and output (BILLING.md, "Token classes"), as billing-svc prices
/// them; the spool keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenClasses {
    pub cached_input: u64,
    /// Every cache write, 1 h ones included.
    pub cache_write: u64,
    pub cache_write_1h: u64,
    pub reasoning: u64,
    pub audio_input: u64,
    pub audio_output: u64,
}

impl ProviderUsage {
    /// The usage with its classes cut to fit inside its totals (input classes within the prompt, in the
    /// order cache reads, cache writes, audio; output classes within the output), so that a provider
    /// reporting more of a class than of the whole never makes billing-svc refuse the settlement.
    pub fn fitted(mut self) -> ProviderUsage {
        let classes = &mut self.classes;
        let mut input_left = self.input_tokens;
        for class in [
            &mut classes.cached_input,
            &mut classes.cache_write,
            &mut classes.audio_input,
        ] {
            *class = (*class).min(input_left);
            input_left -= *class;
        }
        classes.cache_write_1h = classes.cache_write_1h.min(classes.cache_write);
        let mut output_left = self.output_tokens;
        for class in [&mut classes.reasoning, &mut classes.audio_output] {
            *class = (*class).min(output_left);
            output_left -= *class;
        }
        self
    }
}

impl TokenClasses {
    /// Classes as sent to billing-svc (absent: none).
    pub fn from_pb(classes: Option<&proto::billing::v1::TokenClasses>) -> TokenClasses {
        classes.map_or_else(TokenClasses::default, |classes| TokenClasses {
            cached_input: classes.cached_input_tokens,
            cache_write: classes.cache_write_tokens,
            cache_write_1h: classes.cache_write_1h_tokens,
            reasoning: classes.reasoning_tokens,
            audio_input: classes.audio_input_tokens,
            audio_output: classes.audio_output_tokens,
        })
    }

    pub fn to_pb(self) -> proto::billing::v1::TokenClasses {
        proto::billing::v1::TokenClasses {
            cached_input_tokens: self.cached_input,
            cache_write_tokens: self.cache_write,
            cache_write_1h_tokens: self.cache_write_1h,
            reasoning_tokens: self.reasoning,
            audio_input_tokens: self.audio_input,
            audio_output_tokens: self.audio_output,
        }
    }
}

/// What one chunk says.
#[derive(Debug, Default)]
pub struct Reading {
    pub usage: Option<ProviderUsage>,
    /// A chunk with no choices that carries the usage: it is the answer's last.
    pub usage_only: bool,
    /// The text the first choice's `content` gained.
    pub first_choice_text: Option<String>,
    /// `finish_reason` of the first choice, when this chunk ends it.
    pub first_choice_finish: Option<String>,
}

/// Reads a chunk; an error event is the provider's error.
pub fn read(chunk: &Value) -> Result<Reading, ProviderError> {
    if let Some(error) = chunk.get("error").filter(|error| !error.is_null()) {
        return Err(ProviderError::in_stream(error));
    }
    let usage = chunk.get("usage").and_then(provider_usage);
    let choices = chunk.get("choices").and_then(Value::as_array);
    let mut reading = Reading {
        usage_only: usage.is_some() && choices.is_none_or(Vec::is_empty),
        usage,
        ..Reading::default()
    };
    let first = choices
        .into_iter()
        .flatten()
        .find(|choice| choice.get("index").and_then(Value::as_u64).unwrap_or(0) == 0);
    if let Some(choice) = first {
        reading.first_choice_text = choice
            .get("delta")
            .and_then(|delta| delta.get("content"))
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
            .map(str::to_string);
        reading.first_choice_finish = choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    Ok(reading)
}

/// A chat usage object: `prompt_tokens`, `completion_tokens`, and the classes of OpenAI's details
/// (`prompt_tokens_details.cached_tokens` / `audio_tokens`, `completion_tokens_details.reasoning_tokens` /
/// `audio_tokens`) and, from an Anthropic provider translated, its cache writes
/// (`cache_creation_input_tokens`, `cache_creation.ephemeral_1h_input_tokens`).
fn provider_usage(usage: &Value) -> Option<ProviderUsage> {
    let count = |path: &[&str]| {
        path.iter()
            .try_fold(usage, |value, name| value.get(name))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let usage = ProviderUsage {
        input_tokens: usage.get("prompt_tokens")?.as_u64()?,
        output_tokens: usage.get("completion_tokens")?.as_u64()?,
        classes: TokenClasses {
            cached_input: count(&["prompt_tokens_details", "cached_tokens"]),
            cache_write: count(&["cache_creation_input_tokens"]),
            cache_write_1h: count(&["cache_creation", "ephemeral_1h_input_tokens"]),
            reasoning: count(&["completion_tokens_details", "reasoning_tokens"]),
            audio_input: count(&["prompt_tokens_details", "audio_tokens"]),
            audio_output: count(&["completion_tokens_details", "audio_tokens"]),
        },
    };
    Some(usage.fitted())
}

/// The answer so far: the top-level fields and, when assembling, every choice.
#[derive(Debug, Default)]
pub struct Answer {
    /// Keep the choices' content (unary calls); a stream only needs what ends it.
    assemble: bool,
    top: Map<String, Value>,
    choices: BTreeMap<u64, Choice>,
    usage: Option<Value>,
}

#[derive(Debug, Default)]
struct Choice {
    message: Map<String, Value>,
    fields: Map<String, Value>,
    finished: bool,
}

impl Answer {
    /// `assemble`: keep every choice's content to answer a unary call.
    pub fn new(assemble: bool) -> Answer {
        Answer {
            assemble,
            ..Answer::default()
        }
    }

    /// Takes a chunk in.
    pub fn absorb(&mut self, chunk: Value) {
        let Value::Object(chunk) = chunk else { return };
        for (key, value) in chunk {
            match key.as_str() {
                "choices" => {
                    if let Value::Array(choices) = value {
                        for choice in choices {
                            self.absorb_choice(choice);
                        }
                    }
                }
                "usage" if !value.is_null() => self.usage = Some(value),
                "object" | "usage" => {}
                _ if value.is_null() => {}
                _ => {
                    self.top.insert(key, value);
                }
            }
        }
    }

    fn absorb_choice(&mut self, choice: Value) {
        let Value::Object(choice) = choice else {
            return;
        };
        let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
        let state = self.choices.entry(index).or_default();
        for (key, value) in choice {
            match key.as_str() {
                "index" => {}
                "finish_reason" if !value.is_null() => {
                    state.finished = true;
                    state.fields.insert(key, value);
                }
                "finish_reason" => {}
                "delta" if self.assemble => merge_object(&mut state.message, value),
                "delta" => {}
                _ if self.assemble => merge_field(&mut state.fields, key, value),
                _ => {}
            }
        }
    }

    /// A last chunk ending every unfinished choice with `length`, when billing cut the stream off.
    pub fn cut_off_chunk(&self) -> Option<Value> {
        let unfinished: Vec<Value> = self
            .choices
            .iter()
            .filter(|(_, choice)| !choice.finished)
            .map(|(index, _)| {
                json!({"index": index, "delta": {}, "logprobs": null, "finish_reason": "length"})
            })
            .collect();
        if unfinished.is_empty() && !self.choices.is_empty() {
            return None;
        }
        let choices = if self.choices.is_empty() {
            vec![json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": "length"})]
        } else {
            unfinished
        };
        let mut chunk = self.top.clone();
        chunk.insert("object".into(), Value::from("chat.completion.chunk"));
        chunk.insert("choices".into(), Value::Array(choices));
        Some(Value::Object(chunk))
    }

    /// The `chat.completion` object of a unary call. Unfinished choices end with `length` when billing cut
    /// the answer off, `stop` otherwise. Without the provider's usage (a cut-off answer ends before it),
    /// `usage` is what was charged.
    pub fn completion(self, finish: FinishReason, charged: ProviderUsage) -> Value {
        let mut completion = self.top;
        completion.insert("object".into(), Value::from("chat.completion"));
        let unfinished = if finish.is_cut_off() {
            "length"
        } else {
            "stop"
        };
        let mut choices = Vec::with_capacity(self.choices.len().max(1));
        if self.choices.is_empty() {
            choices.push(Choice::default().into_json(0, unfinished));
        }
        for (index, choice) in self.choices {
            choices.push(choice.into_json(index, unfinished));
        }
        completion.insert("choices".into(), Value::Array(choices));
        let usage = self.usage.unwrap_or_else(|| {
            json!({
                "prompt_tokens": charged.input_tokens,
                "completion_tokens": charged.output_tokens,
                "total_tokens": charged.input_tokens + charged.output_tokens,
            })
        });
        completion.insert("usage".into(), usage);
        Value::Object(completion)
    }
}

impl Choice {
    fn into_json(self, index: u64, unfinished: &str) -> Value {
        let mut message = self.message;
        message
            .entry("role")
            .or_insert_with(|| Value::from("assistant"));
        message.entry("content").or_insert(Value::Null);
        message.entry("refusal").or_insert(Value::Null);
        // Streamed tool calls carry their position as `index`; a completion's list is positional.
        if let Some(Value::Array(calls)) = message.get_mut("tool_calls") {
            for call in calls.iter_mut().filter_map(Value::as_object_mut) {
                call.remove("index");
            }
        }
        let mut choice = Map::new();
        choice.insert("index".into(), Value::from(index));
        choice.insert("message".into(), Value::Object(message));
        let mut fields = self.fields;
        fields.entry("logprobs").or_insert(Value::Null);
        if !self.finished {
            fields.insert("finish_reason".into(), Value::from(unfinished));
        }
        choice.extend(fields);
        Value::Object(choice)
    }
}

/// Merges a delta object into what came before.
fn merge_object(target: &mut Map<String, Value>, delta: Value) {
    if let Value::Object(delta) = delta {
        for (key, value) in delta {
            merge_field(target, key, value);
        }
    }
}

fn merge_field(target: &mut Map<String, Value>, key: String, value: Value) {
    if value.is_null() {
        target.entry(key).or_insert(Value::Null);
        return;
    }
    let Some(existing) = target.get_mut(&key).filter(|existing| !existing.is_null()) else {
        let value = match value {
            Value::Array(items) => {
                let mut merged = Vec::with_capacity(items.len());
                merge_items(&mut merged, items);
                Value::Array(merged)
            }
            value => value,
        };
        target.insert(key, value);
        return;
    };
    match (existing, value) {
        (Value::String(text), Value::String(more)) if !REPLACED_STRINGS.contains(&key.as_str()) => {
            text.push_str(&more);
        }
        (Value::Array(items), Value::Array(more)) => merge_items(items, more),
        (Value::Object(fields), Value::Object(more)) => {
            for (key, value) in more {
                merge_field(fields, key, value);
            }
        }
        (slot, value) => *slot = value,
    }
}

/// Items with an `index` merge into the item of the same index; the others are appended.
fn merge_items(items: &mut Vec<Value>, more: Vec<Value>) {
    for item in more {
        let index = item.get("index").and_then(Value::as_u64);
        let same = index.and_then(|index| {
            items
                .iter_mut()
                .find(|existing| existing.get("index").and_then(Value::as_u64) == Some(index))
        });
        match (same, item) {
            (Some(Value::Object(existing)), Value::Object(fields)) => {
                for (key, value) in fields {
                    merge_field(existing, key, value);
                }
            }
            (_, item) => items.push(item),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn chunk(choices: Value) -> Value {
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7, "model": "m-2024",
            "system_fingerprint": "fp_1", "choices": choices, "usage": null})
    }

    #[test]
    fn streamed_tool_calls_and_choices_assemble_into_a_completion() {
        let mut answer = Answer::new(true);
        let chunks = [
            chunk(
                json!([{"index": 0, "delta": {"role": "assistant", "content": null, "tool_calls": [
                {"index": 0, "id": "call_1", "type": "function", "function": {"name": "weather", "arguments": ""}}]},
                "logprobs": null, "finish_reason": null}]),
            ),
            chunk(
                json!([{"index": 1, "delta": {"role": "assistant", "content": "Hel"},
                "logprobs": {"content": [{"token": "Hel", "logprob": -0.5}]}, "finish_reason": null}]),
            ),
            chunk(
                json!([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}, "finish_reason": null}]),
            ),
            chunk(json!([{"index": 1, "delta": {"content": "lo"},
                "logprobs": {"content": [{"token": "lo", "logprob": -0.25}]}, "finish_reason": null}])),
            chunk(
                json!([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}, "finish_reason": null}]),
            ),
            chunk(json!([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}])),
            chunk(json!([{"index": 1, "delta": {}, "finish_reason": "stop"}])),
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7, "model": "m-2024",
                "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}}),
        ];
        for chunk in chunks {
            answer.absorb(chunk);
        }
        assert_eq!(answer.cut_off_chunk(), None);
        assert_eq!(
            answer.completion(
                FinishReason::Stop,
                ProviderUsage {
                    input_tokens: 0,
                    output_tokens: 0,
                    ..ProviderUsage::default()
                }
            ),
            json!({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 7, "model": "m-2024",
                "system_fingerprint": "fp_1",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": null, "refusal": null, "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                     "logprobs": null, "finish_reason": "tool_calls"},
                    {"index": 1, "message": {"role": "assistant", "content": "Hello", "refusal": null},
                     "logprobs": {"content": [{"token": "Hel", "logprob": -0.5}, {"token": "lo", "logprob": -0.25}]},
                     "finish_reason": "stop"},
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14},
            })
        );
    }

    #[test]
    fn a_cut_off_answer_ends_its_unfinished_choices_with_length() {
        let mut answer = Answer::new(false);
        answer.absorb(chunk(
            json!([{"index": 0, "delta": {"content": "a"}, "finish_reason": null},
            {"index": 1, "delta": {"content": "b"}, "finish_reason": "stop"}]),
        ));
        let last = answer.cut_off_chunk().unwrap();
        assert_eq!(last["object"], "chat.completion.chunk");
        assert_eq!(last["id"], "chatcmpl-1");
        assert_eq!(
            last["choices"],
            json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": "length"}])
        );
        let mut unary = Answer::new(true);
        unary.absorb(chunk(
            json!([{"index": 0, "delta": {"content": "a"}, "finish_reason": null}]),
        ));
        let charged = ProviderUsage {
            input_tokens: 9,
            output_tokens: 1,
            ..ProviderUsage::default()
        };
        let completion = unary.completion(FinishReason::CreditExhausted, charged);
        assert_eq!(completion["choices"][0]["finish_reason"], "length");
        assert_eq!(
            completion["usage"],
            json!({"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10})
        );
        assert_eq!(completion["choices"][0]["message"]["content"], "a");
    }

    #[test]
    fn chunks_are_read_for_usage_finish_and_errors() {
        let usage = json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}});
        let reading = read(&usage).unwrap();
        assert!(reading.usage_only);
        assert_eq!(
            reading.usage,
            Some(ProviderUsage {
                input_tokens: 3,
                output_tokens: 4,
                ..ProviderUsage::default()
            })
        );
        let text = read(&chunk(
            json!([{"index": 0, "delta": {"content": " The"}, "finish_reason": "length"}]),
        ))
        .unwrap();
        assert_eq!(text.first_choice_text.as_deref(), Some(" The"));
        assert_eq!(text.first_choice_finish.as_deref(), Some("length"));
        assert!(!text.usage_only);
        let error =
            read(&json!({"error": {"message": "overloaded", "type": "server_error"}})).unwrap_err();
        assert_eq!(error.http_status, 502);
        assert_eq!(error.message, "overloaded");
        assert_eq!(error.kind.as_deref(), Some("server_error"));
    }
}
