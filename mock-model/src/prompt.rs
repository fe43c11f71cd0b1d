//! Prompt tokens of a chat request: OpenAI's cookbook rule over `cl100k_base`, extended to content parts,
//! tool calls and tool definitions. Another service estimates prompts with this same rule, so keep the two
//! in step. Anthropic's Messages requests are counted with this rule too, over their chat equivalent (see
//! [`crate::messages::prompt`]), through [`message_tokens`], [`tool_call_tokens`] and [`tools_tokens`].
//!
//! With `tok(s)` = `cl100k_base.encode_ordinary(s).len()`:
//!
//! ```text
//! prompt_tokens = 3
//!   + Σ messages ( 3 + tok(role) + tok(text)
//!                  + 765 × (number of non-text content parts)
//!                  + (name present ? 1 + tok(name) : 0)
//!                  + Σ tool_calls of the message ( tok(function.name) + tok(function.arguments) ) )
//!   + (tools present ? tok(compact JSON of the `tools` array) : 0)
//! ```
//!
//! - `text` is the content when it is a string, else the concatenation (no separator) of the `text` of the
//!   parts whose `type` is `"text"`; null or absent content is `""`.
//! - A non-text part is any part whose `type` is not `"text"` (`image_url`, `input_audio`, `file`,
//!   `refusal`, …): 765 tokens each, whatever it holds.
//! - A `tool` message counts like any other (role + content text); its `tool_call_id` is not counted.
//! - "tools present" means the request has a `tools` field that is not null (an empty array counts as
//!   `tok("[]")` = 1). Its JSON is `serde_json::to_string` of the array as received, so object keys come out
//!   sorted (the workspace does not enable serde_json's `preserve_order`) and numbers keep their digits
//!   (`arbitrary_precision`).

use std::borrow::Cow;

use serde_json::Value;

use crate::tokens;

/// Tokens for the framing of each message (cookbook rule).
pub const TOKENS_PER_MESSAGE: u64 = 3;
/// Tokens that prime the assistant's reply, once per prompt (cookbook rule).
pub const REPLY_PRIMING_TOKENS: u64 = 3;
/// Tokens for a name given to a message, besides the name's own.
pub const TOKENS_PER_NAME: u64 = 1;
/// Flat tokens for every non-text content part (an image, an audio clip, a file).
pub const TOKENS_PER_NON_TEXT_PART: u64 = 765;

/// Prompt tokens of `messages` and the request's `tools` field (see the module docs for the rule).
pub fn prompt_tokens(messages: &[Value], tools: Option<&Value>) -> u32 {
    PromptParts::new(messages, tools).tokens()
}

/// A chat prompt counted part by part: what [`prompt_tokens`] sums, kept apart so that the tokens of
/// each prefix of the prompt can be told (see [`crate::completion::cache`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptParts {
    /// The `tools` field's tokens (0 without it).
    pub tools: u64,
    /// Each message's tokens, in order.
    pub messages: Vec<u64>,
}

impl PromptParts {
    pub fn new(messages: &[Value], tools: Option<&Value>) -> PromptParts {
        PromptParts {
            tools: tools
                .filter(|tools| !tools.is_null())
                .map_or(0, tools_tokens),
            messages: messages.iter().map(chat_message_tokens).collect(),
        }
    }

    /// The whole prompt's tokens: the parts and the reply priming.
    pub fn tokens(&self) -> u32 {
        let total = REPLY_PRIMING_TOKENS + self.tools + self.messages.iter().sum::<u64>();
        u32::try_from(total).unwrap_or(u32::MAX)
    }
}

/// `tok(compact JSON of the tools array)`.
pub fn tools_tokens(tools: &Value) -> u64 {
    match serde_json::to_string(tools) {
        Ok(json) => u64::from(tokens::count(&json)),
        Err(error) => {
            tracing::warn!(%error, "tools do not serialise; not counted");
            0
        }
    }
}

/// One message's tokens, its tool calls left out: `3 + tok(role) + tok(text) + 765 × non-text parts`, and
/// `1 + tok(name)` with a name.
pub fn message_tokens(role: &str, text: &str, non_text_parts: u64, name: Option<&str>) -> u64 {
    let count = |text: &str| u64::from(tokens::count(text));
    let mut total =
        TOKENS_PER_MESSAGE + count(role) + count(text) + TOKENS_PER_NON_TEXT_PART * non_text_parts;
    if let Some(name) = name {
        total += TOKENS_PER_NAME + count(name);
    }
    total
}

/// One tool call's tokens: `tok(name) + tok(arguments)`.
pub fn tool_call_tokens(name: &str, arguments: &str) -> u64 {
    u64::from(tokens::count(name)) + u64::from(tokens::count(arguments))
}

fn chat_message_tokens(message: &Value) -> u64 {
    let (text, non_text_parts) = content_text(message.get("content").unwrap_or(&Value::Null));
    let mut total = message_tokens(
        message.get("role").and_then(Value::as_str).unwrap_or(""),
        &text,
        non_text_parts,
        message.get("name").and_then(Value::as_str),
    );
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
    {
        let function = call.get("function").unwrap_or(&Value::Null);
        let field = |key: &str| function.get(key).and_then(Value::as_str).unwrap_or("");
        total += tool_call_tokens(field("name"), field("arguments"));
    }
    total
}

/// The text of a message's content and how many of its parts are not text.
pub fn content_text(content: &Value) -> (Cow<'_, str>, u64) {
    match content {
        Value::String(text) => (Cow::Borrowed(text), 0),
        Value::Array(parts) => {
            let mut text = String::new();
            let mut non_text_parts = 0u64;
            for part in parts {
                if part.get("type").and_then(Value::as_str) == Some("text") {
                    text.push_str(part.get("text").and_then(Value::as_str).unwrap_or(""));
                } else {
                    non_text_parts += 1;
                }
            }
            (Cow::Owned(text), non_text_parts)
        }
        _ => (Cow::Borrowed(""), 0),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tok(text: &str) -> u32 {
        tokens::count(text)
    }

    fn messages(value: Value) -> Vec<Value> {
        value.as_array().unwrap().clone()
    }

    #[test]
    fn a_plain_conversation_follows_the_cookbook_rule() {
        let conversation = messages(json!([{ "role": "user", "content": "Hello world" }]));
        // 3 (priming) + 3 (message) + 1 ("user") + 2 ("Hello world").
        assert_eq!(prompt_tokens(&conversation, None), 9);
    }

    #[test]
    fn names_cost_one_token_more_than_their_text() {
        let conversation = messages(json!([
            { "role": "system", "content": "Be brief." },
            { "role": "user", "content": "Hi", "name": "alice" },
        ]));
        let expected = 3
            + (3 + tok("system") + tok("Be brief."))
            + (3 + tok("user") + tok("Hi") + 1 + tok("alice"));
        assert_eq!(prompt_tokens(&conversation, None), expected);
    }

    #[test]
    fn text_parts_are_joined_and_other_parts_cost_765_each() {
        let conversation = messages(json!([{ "role": "user", "content": [
            { "type": "text", "text": "What is in" },
            { "type": "image_url", "image_url": { "url": "data:image/png;base64,AAAA" } },
            { "type": "text", "text": " this picture?" },
            { "type": "input_audio", "input_audio": { "data": "AAAA", "format": "wav" } },
        ] }]));
        let expected = 3 + 3 + tok("user") + tok("What is in this picture?") + 2 * 765;
        assert_eq!(prompt_tokens(&conversation, None), expected);
    }

    #[test]
    fn tool_calls_tool_results_and_tools_are_counted() {
        let arguments = r#"{"city":"Paris"}"#;
        let conversation = messages(json!([
            { "role": "user", "content": "Weather in Paris?" },
            { "role": "assistant", "content": null, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": { "name": "get_weather", "arguments": arguments },
            }] },
            { "role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21°C" },
        ]));
        let tools = json!([{ "type": "function", "function": {
            "name": "get_weather",
            "parameters": { "type": "object", "properties": { "city": { "type": "string" } } },
        } }]);
        let tools_json = serde_json::to_string(&tools).unwrap();
        let expected = 3
            + (3 + tok("user") + tok("Weather in Paris?"))
            + (3 + tok("assistant") + tok("get_weather") + tok(arguments))
            + (3 + tok("tool") + tok("Sunny, 21°C"))
            + tok(&tools_json);
        assert_eq!(prompt_tokens(&conversation, Some(&tools)), expected);
        assert_eq!(
            prompt_tokens(&conversation, Some(&Value::Null)),
            expected - tok(&tools_json)
        );
    }
}
