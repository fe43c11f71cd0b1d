//! The chat-completion request the executor carries to the provider: the client's JSON body with only the
//! fields the platform controls set (`model` when absent, `stream`, `stream_options.include_usage`, and for
//! an answer given as text its output limit), and what metering reads from it (model, number of choices,
//! output limit).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::ExecutorError;
use proto::labels::MAX_MODEL_CHARS;

/// The most messages one request may carry.
const MAX_MESSAGES: usize = 10_000;
/// The most choices (`n`) one request may ask for (OpenAI's own limit).
pub const MAX_CHOICES: u32 = 128;
/// Above this many output tokens a hold's ceiling is left to billing-svc's own (see [`ChatRequest::hold_ceiling`]).
const MAX_HOLD_CEILING_TOKENS: u64 = 1_000_000;

/// A validated chat completion request.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// What goes to the provider.
    pub body: Map<String, Value>,
    pub model: String,
    /// Choices asked for (`n`, default 1).
    pub choices: u32,
    /// The client's output limit per choice (`max_completion_tokens`, else `max_tokens`); `None` = the
    /// provider's default. Never lowered: billing cuts the stream off when credit runs out instead.
    pub max_output_tokens: Option<u32>,
    /// `/v1/messages`: the client's own Messages request, for an Anthropic provider (PROVIDERS.md).
    pub messages_request: Option<MessagesRequest>,
}

/// A client's Anthropic Messages request, passed to an Anthropic provider unchanged but for `stream` and the
/// route's `upstream_model`.
#[derive(Debug, Clone)]
pub struct MessagesRequest {
    pub body: Map<String, Value>,
    /// The client's `anthropic-version` and `anthropic-beta`.
    pub headers: BTreeMap<String, String>,
}

impl MessagesRequest {
    /// Reads the client's Messages body; its model must be the translated request's, whose route serves it.
    pub fn from_json(
        text: &str,
        headers: &std::collections::HashMap<String, String>,
        model: &str,
    ) -> Result<MessagesRequest, ExecutorError> {
        let Ok(Value::Object(mut body)) = serde_json::from_str::<Value>(text) else {
            return Err(ExecutorError::InvalidRequest(
                "the Messages request must be a JSON object".into(),
            ));
        };
        body.insert("model".into(), Value::String(model.to_string()));
        let headers = headers
            .iter()
            .filter(|(name, _)| crate::anthropic::PASSED_HEADERS.contains(&name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        Ok(MessagesRequest { body, headers })
    }
}

impl ChatRequest {
    /// Reads a client's OpenAI chat-completion body.
    pub fn from_json(text: &str, default_model: &str) -> Result<ChatRequest, ExecutorError> {
        let invalid = |message: &str| ExecutorError::InvalidRequest(message.to_string());
        let Ok(Value::Object(mut body)) = serde_json::from_str::<Value>(text) else {
            return Err(invalid("the chat request must be a JSON object"));
        };
        match body.get("messages") {
            Some(Value::Array(messages)) if messages.is_empty() => {
                return Err(invalid("`messages` must not be empty"));
            }
            Some(Value::Array(messages)) if messages.len() > MAX_MESSAGES => {
                return Err(ExecutorError::InvalidRequest(format!(
                    "too many messages (at most {MAX_MESSAGES})"
                )));
            }
            Some(Value::Array(messages)) if messages.iter().all(Value::is_object) => {}
            Some(_) => return Err(invalid("`messages` must be an array of message objects")),
            None => return Err(invalid("`messages` is required")),
        }
        let model = match body.get("model") {
            None | Some(Value::Null) => default_model.to_string(),
            Some(Value::String(model)) => model_name(model)?,
            Some(_) => return Err(invalid("`model` must be a string")),
        };
        body.insert("model".into(), Value::String(model.clone()));
        let choices = match body.get("n") {
            None | Some(Value::Null) => 1,
            Some(n) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (1..=MAX_CHOICES).contains(n))
                .ok_or_else(|| invalid("`n` must be an integer from 1 to 128"))?,
        };
        let limit = |name: &str| -> Result<Option<u32>, ExecutorError> {
            match body.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(value) => value
                    .as_u64()
                    .and_then(|limit| u32::try_from(limit).ok())
                    .filter(|limit| *limit >= 1)
                    .map(Some)
                    .ok_or_else(|| {
                        ExecutorError::InvalidRequest(format!(
                            "`{name}` must be a positive integer"
                        ))
                    }),
            }
        };
        let max_output_tokens = limit("max_completion_tokens")?.or(limit("max_tokens")?);
        let mut options = match body.remove("stream_options") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(options)) => options,
            Some(_) => return Err(invalid("`stream_options` must be an object")),
        };
        options.insert("include_usage".into(), Value::Bool(true));
        body.insert("stream".into(), Value::Bool(true));
        body.insert("stream_options".into(), Value::Object(options));
        Ok(ChatRequest {
            body,
            model,
            choices,
            max_output_tokens,
            messages_request: None,
        })
    }

    /// Bounds a request answered as text (`/execute`, [`Shape::Text`](crate::execution::Shape::Text)): one
    /// choice, and an output limit of at most `max_output_tokens`, which is also the limit when the request
    /// sets none. The limit goes to the provider as `max_completion_tokens`.
    pub fn limit_text_output(&mut self, max_output_tokens: u32) -> Result<(), ExecutorError> {
        if self.choices != 1 {
            return Err(ExecutorError::InvalidRequest(
                "an answer given as text has one choice: leave `n` unset or 1".into(),
            ));
        }
        let limit = self
            .max_output_tokens
            .map_or(max_output_tokens, |limit| limit.min(max_output_tokens));
        self.body
            .insert("max_completion_tokens".into(), Value::from(limit));
        self.max_output_tokens = Some(limit);
        Ok(())
    }

    /// The most output tokens the hold may grow to, for billing-svc (0 = no explicit limit): every choice's
    /// limit, plus a quarter and 16 tokens of slack, because the local token count of a model whose
    /// tokenizer is not known may exceed the provider's, and a hold that stopped growing at the exact limit
    /// would cut off an answer the provider would have finished.
    pub fn hold_ceiling(&self) -> u64 {
        let Some(limit) = self.max_output_tokens else {
            return 0;
        };
        let asked = u64::from(limit) * u64::from(self.choices);
        let ceiling = asked + asked / 4 + 16;
        if ceiling > MAX_HOLD_CEILING_TOKENS {
            0
        } else {
            ceiling
        }
    }

    /// The conversation, for the prompt estimate.
    pub fn messages(&self) -> &[Value] {
        match self.body.get("messages") {
            Some(Value::Array(messages)) => messages,
            _ => &[],
        }
    }
}

/// Checks a model name the client gave.
pub fn model_name(model: &str) -> Result<String, ExecutorError> {
    let model = model.trim();
    if model.is_empty() {
        return Err(ExecutorError::InvalidRequest(
            "`model` must not be empty".into(),
        ));
    }
    if model.chars().count() > MAX_MODEL_CHARS {
        return Err(ExecutorError::InvalidRequest(format!(
            "`model` is longer than {MAX_MODEL_CHARS} characters"
        )));
    }
    Ok(model.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_field_but_the_controlled_ones_is_kept() {
        let body = json!({
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
            "temperature": 0.25,
            "n": 2,
            "max_tokens": 100,
            "stream": false,
            "stream_options": {"include_obfuscation": false},
            "vendor_field": {"x": [1, 2]},
        });
        let request = ChatRequest::from_json(&body.to_string(), "default-model").unwrap();
        let mut expected = body.as_object().unwrap().clone();
        expected.insert("model".into(), json!("default-model"));
        expected.insert("stream".into(), json!(true));
        expected.insert(
            "stream_options".into(),
            json!({"include_obfuscation": false, "include_usage": true}),
        );
        assert_eq!(request.body, expected);
        assert_eq!(request.choices, 2);
        assert_eq!(request.max_output_tokens, Some(100));
        assert_eq!(request.model, "default-model");
        // The temperature's digits are carried as written.
        assert!(
            serde_json::to_string(&request.body)
                .unwrap()
                .contains("0.25")
        );
    }

    #[test]
    fn max_completion_tokens_wins_and_sizes_the_hold_ceiling() {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "max_tokens": 10, "max_completion_tokens": 400, "n": 3});
        let request = ChatRequest::from_json(&body.to_string(), "d").unwrap();
        assert_eq!(request.max_output_tokens, Some(400));
        assert_eq!(request.hold_ceiling(), 1200 + 300 + 16);
        let unlimited = json!({"messages": [{"role": "user", "content": "x"}]});
        let request = ChatRequest::from_json(&unlimited.to_string(), "d").unwrap();
        assert_eq!(request.hold_ceiling(), 0);
    }

    #[test]
    fn a_text_answer_is_limited_by_the_executor_maximum() {
        let text = |body: Value| {
            let mut request = ChatRequest::from_json(&body.to_string(), "d").unwrap();
            request.limit_text_output(4096).map(|()| request)
        };
        let unset = text(json!({"messages": [{"role": "user", "content": "x"}]})).unwrap();
        assert_eq!(unset.max_output_tokens, Some(4096));
        assert_eq!(unset.body["max_completion_tokens"], 4096);
        let big = text(json!({"messages": [{"role": "user", "content": "x"}],
            "max_completion_tokens": 1_000_000}))
        .unwrap();
        assert_eq!(big.max_output_tokens, Some(4096));
        assert_eq!(big.body["max_completion_tokens"], 4096);
        let small = text(json!({"messages": [{"role": "user", "content": "x"}],
            "max_completion_tokens": 64}))
        .unwrap();
        assert_eq!(small.max_output_tokens, Some(64));
        assert!(matches!(
            text(json!({"messages": [{"role": "user", "content": "x"}], "n": 2})),
            Err(ExecutorError::InvalidRequest(_))
        ));
    }

    #[test]
    fn malformed_requests_are_refused_with_a_reason() {
        let cases = [
            ("[]", "not an object"),
            ("{}", "no messages"),
            (r#"{"messages": []}"#, "empty messages"),
            (r#"{"messages": ["hi"]}"#, "a message that is not an object"),
            (
                r#"{"messages": [{}], "model": 5}"#,
                "a model that is no string",
            ),
            (r#"{"messages": [{}], "model": " "}"#, "an empty model"),
            (r#"{"messages": [{}], "n": 0}"#, "zero choices"),
            (r#"{"messages": [{}], "n": 129}"#, "too many choices"),
            (r#"{"messages": [{}], "max_tokens": 0}"#, "zero max_tokens"),
            (
                r#"{"messages": [{}], "max_tokens": -1}"#,
                "negative max_tokens",
            ),
            (
                r#"{"messages": [{}], "max_completion_tokens": 1.5}"#,
                "fractional limit",
            ),
            (
                r#"{"messages": [{}], "stream_options": true}"#,
                "stream_options not an object",
            ),
        ];
        for (body, case) in cases {
            let result = ChatRequest::from_json(body, "d");
            assert!(
                matches!(result, Err(ExecutorError::InvalidRequest(_))),
                "{case}: {result:?}"
            );
        }
    }
}
