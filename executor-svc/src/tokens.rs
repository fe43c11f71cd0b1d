//! Local token counts with tiktoken: the prompt estimate that sizes the first hold, the running output
//! count reported to billing-svc, and the fallback when a provider reports no usage. The provider's usage
//! is always the charge; these only size and grow holds.
//!
//! The tokenizer is the model's (o200k for the GPT-4o/4.1/5 and o-series families), cl100k for any model
//! tiktoken does not know. The prompt estimate follows OpenAI's cookbook rule, extended to what real
//! requests carry: 3 for the reply's priming, then per message 3 + its role + its text (the string, or its
//! `text` parts joined) + [`NON_TEXT_PART_TOKENS`] per image, audio or file part + 1 and the name when named + the
//! function name and arguments of each tool call; plus the compact JSON of `tools` when given. mock-model
//! counts the same way, so estimates against it are exact.
//!
//! Output is counted over every string a chunk's choices deliver (content, refusal, tool-call names and
//! arguments, and any provider-specific text such as reasoning), for every choice of `n`.

use serde_json::Value;
use tiktoken_rs::CoreBPE;
use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};

/// Tokens added per message for its framing.
const TOKENS_PER_MESSAGE: u64 = 3;
/// Tokens that prime the assistant's reply, once per prompt.
const REPLY_PRIMING_TOKENS: u64 = 3;
/// The estimate of one image, audio or file content part: what OpenAI bills a 512×512 tile image at high
/// detail (85 + 4 × 170). Only the first hold depends on it; the provider's count is charged.
pub const NON_TEXT_PART_TOKENS: u64 = 765;
/// Keys of a streamed delta that carry no generated text.
const NON_TEXT_DELTA_KEYS: [&str; 4] = ["role", "id", "type", "index"];

fn bpe(model: &str) -> &'static CoreBPE {
    match get_tokenizer(model) {
        Some(Tokenizer::O200kBase | Tokenizer::O200kHarmony) => tiktoken_rs::o200k_base_singleton(),
        Some(
            Tokenizer::Cl100kBase
            | Tokenizer::P50kBase
            | Tokenizer::R50kBase
            | Tokenizer::P50kEdit
            | Tokenizer::Gpt2,
        )
        | None => tiktoken_rs::cl100k_base_singleton(),
    }
}

/// Tokens of a piece of text, special-token look-alikes counted as plain text.
pub fn text_tokens(model: &str, text: &str) -> u64 {
    bpe(model).encode_ordinary(text).len() as u64
}

/// The estimated prompt tokens of a chat request (see the module docs for the rule).
pub fn prompt_tokens(model: &str, messages: &[Value], tools: Option<&Value>) -> u64 {
    let bpe = bpe(model);
    let count = |text: &str| bpe.encode_ordinary(text).len() as u64;
    let mut total = REPLY_PRIMING_TOKENS;
    for message in messages {
        let text = |name: &str| message.get(name).and_then(Value::as_str).unwrap_or("");
        total += TOKENS_PER_MESSAGE + count(text("role"));
        match message.get("content") {
            Some(Value::String(content)) => total += count(content),
            Some(Value::Array(parts)) => {
                let mut text = String::new();
                for part in parts {
                    match part.get("type").and_then(Value::as_str) {
                        Some("text") => {
                            text.push_str(part.get("text").and_then(Value::as_str).unwrap_or(""));
                        }
                        _ => total += NON_TEXT_PART_TOKENS,
                    }
                }
                total += count(&text);
            }
            _ => {}
        }
        if let Some(name) = message.get("name").and_then(Value::as_str) {
            total += 1 + count(name);
        }
        if let Some(Value::Array(calls)) = message.get("tool_calls") {
            for call in calls {
                let function = |name: &str| {
                    call.get("function")
                        .and_then(|function| function.get(name))
                        .and_then(Value::as_str)
                        .unwrap_or("")
                };
                total += count(function("name")) + count(function("arguments"));
            }
        }
    }
    if let Some(tools) = tools.filter(|tools| !tools.is_null()) {
        total += count(&tools.to_string());
    }
    total
}

/// Output tokens a streamed chunk delivers, over all its choices.
pub fn chunk_output_tokens(model: &str, chunk: &Value) -> u64 {
    let Some(Value::Array(choices)) = chunk.get("choices") else {
        return 0;
    };
    let bpe = bpe(model);
    let mut total = 0;
    for choice in choices {
        if let Some(delta) = choice.get("delta") {
            count_strings(bpe, delta, &mut total);
        }
    }
    total
}

/// Adds the tokens of every generated string in a delta (skipping ids, roles and types).
fn count_strings(bpe: &CoreBPE, value: &Value, total: &mut u64) {
    match value {
        Value::String(text) => *total += bpe.encode_ordinary(text).len() as u64,
        Value::Array(items) => {
            for item in items {
                count_strings(bpe, item, total);
            }
        }
        Value::Object(fields) => {
            for (key, field) in fields {
                if !NON_TEXT_DELTA_KEYS.contains(&key.as_str()) {
                    count_strings(bpe, field, total);
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Loads the tables before the first request needs them.
pub fn warm_up() {
    let _ = tiktoken_rs::cl100k_base_singleton();
    let _ = tiktoken_rs::o200k_base_singleton();
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prompt_estimate_follows_the_cookbook_rule() {
        let messages = [json!({"role": "user", "content": "Hello world"})];
        // 3 (priming) + 3 (message) + 1 ("user") + 2 ("Hello world").
        assert_eq!(prompt_tokens("mock", &messages, None), 9);
        assert_eq!(prompt_tokens("gpt-4o-mini", &messages, None), 9);
    }

    #[test]
    fn prompt_estimate_counts_parts_tool_calls_and_tools() {
        let messages = [
            json!({"role": "user", "content": [
                {"type": "text", "text": "Hello world"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ]}),
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}},
            ]}),
        ];
        let tools = json!([{"type": "function", "function": {"name": "weather"}}]);
        let count = |text: &str| text_tokens("mock", text);
        let expected = 3
            + (3 + count("user") + count("Hello world") + NON_TEXT_PART_TOKENS)
            + (3 + count("assistant") + count("weather") + count("{}"))
            + count(&tools.to_string());
        assert_eq!(prompt_tokens("mock", &messages, Some(&tools)), expected);
    }

    #[test]
    fn every_choice_and_tool_call_argument_counts_as_output() {
        let chunk = json!({"id": "chatcmpl-1", "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": " The quick"}},
            {"index": 1, "delta": {"tool_calls": [
                {"index": 0, "id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\""}},
            ]}},
            {"index": 2, "delta": {"refusal": " brown"}, "finish_reason": null},
        ]});
        let count = |text: &str| text_tokens("mock", text);
        assert_eq!(
            chunk_output_tokens("mock", &chunk),
            count(" The quick") + count("weather") + count("{\"city\"") + count(" brown")
        );
        assert_eq!(
            chunk_output_tokens("mock", &json!({"choices": [], "usage": {}})),
            0
        );
    }

    #[test]
    fn unknown_models_count_with_cl100k() {
        assert_eq!(text_tokens("some-local-model", " The quick brown fox"), 4);
    }
}
