//! What every provider's answer becomes inside the executor, whatever API it speaks: a stream of JSON items
//! ([`Upstream`]) read one at a time under the provider's timeout, and the provider's error answers
//! ([`ProviderError`]) kept as the provider meant them.
//!
//! An [`Upstream`] carries OpenAI `chat.completion.chunk`s ([`Wire::ChatChunks`]: an OpenAI-compatible
//! provider, or an Anthropic one translated) or Anthropic's stream events ([`Wire::MessageEvents`]: the
//! native pass-through of `/v1/messages`). It is started only once its first item has arrived, so that a
//! provider that fails before answering can still hand the call to the next one (PROVIDERS.md,
//! "Fallback"). Dropping it cancels the upstream HTTP request.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::OwnedSemaphorePermit;

use crate::error::ExecutorError;

/// The longest provider error message passed on (a provider's 4xx body can be anything).
const MAX_ERROR_MESSAGE_CHARS: usize = 2_000;

/// What the items of an [`Upstream`] are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI `chat.completion.chunk` objects.
    ChatChunks,
    /// Anthropic Messages stream events (`message_start`, `content_block_delta`, ...), `ping` left out.
    MessageEvents,
}

/// A provider's streamed answer, item by item.
pub struct Upstream {
    pub wire: Wire,
    items: BoxStream<'static, Result<Box<RawValue>, ExecutorError>>,
    timeout: Duration,
    /// The first item (or the end), read when the stream started.
    first: Option<Option<Box<RawValue>>>,
    /// The provider's call slot, given back when the stream is dropped.
    _slot: Option<OwnedSemaphorePermit>,
}

impl Upstream {
    /// Waits (at most `timeout`) for the first of `items` and answers the started stream, or the error that
    /// came first.
    pub async fn start(
        wire: Wire,
        items: BoxStream<'static, Result<Box<RawValue>, ExecutorError>>,
        timeout: Duration,
    ) -> Result<Upstream, ExecutorError> {
        let mut upstream = Upstream {
            wire,
            items,
            timeout,
            first: None,
            _slot: None,
        };
        let first = upstream.next().await?;
        upstream.first = Some(first);
        Ok(upstream)
    }

    /// The stream holding the provider's call slot for as long as it lives.
    pub fn holding(mut self, slot: Option<OwnedSemaphorePermit>) -> Upstream {
        self._slot = slot;
        self
    }

    /// The next item's JSON text, `None` at the end of the answer. Cancel-safe.
    pub async fn next(&mut self) -> Result<Option<Box<RawValue>>, ExecutorError> {
        if let Some(first) = self.first.take() {
            return Ok(first);
        }
        tokio::time::timeout(self.timeout, self.items.next())
            .await
            .map_err(|_| ExecutorError::UpstreamTimeout(self.timeout))?
            .transpose()
    }
}

/// An error answer of the provider, as it meant it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    /// The provider's HTTP status (502 for an error event inside a stream that names none).
    pub http_status: u16,
    pub message: String,
    /// OpenAI's `type`, e.g. `invalid_request_error`.
    pub kind: Option<String>,
    pub code: Option<String>,
    pub param: Option<String>,
    /// From the provider's `Retry-After` (or `retry-after-ms`, rounded up) header.
    pub retry_after_secs: Option<u64>,
}

/// The HTTP status given to an error event inside a stream that names none.
pub const STREAM_ERROR_STATUS: u16 = 502;

impl ProviderError {
    /// The provider's error event inside a stream (OpenAI's `{"error": {...}}` chunk, Anthropic's `error`
    /// event), from its error object; [`STREAM_ERROR_STATUS`] with a plain message when it is not one.
    pub fn in_stream(error: &Value) -> ProviderError {
        ProviderError::from_error_object(STREAM_ERROR_STATUS, error).unwrap_or_else(|| {
            ProviderError {
                http_status: STREAM_ERROR_STATUS,
                message: "the model provider sent an error event".into(),
                kind: None,
                code: None,
                param: None,
                retry_after_secs: None,
            }
        })
    }

    /// Reads an OpenAI error object `{message, type, code, param}`; `None` when it is not one.
    pub fn from_error_object(http_status: u16, error: &Value) -> Option<ProviderError> {
        let text = |name: &str| match error.get(name) {
            Some(Value::String(text)) => Some(text.clone()),
            Some(Value::Number(number)) => Some(number.to_string()),
            _ => None,
        };
        let message = match error {
            Value::String(message) => message.clone(),
            Value::Object(_) => text("message")?,
            _ => return None,
        };
        Some(ProviderError {
            http_status,
            message: truncate(message),
            kind: text("type"),
            code: text("code"),
            param: text("param"),
            retry_after_secs: None,
        })
    }

    /// Reads a provider's error answer: its status, `Retry-After`, and `error` object (OpenAI's
    /// `{message, type, code, param}` and Anthropic's `{type, message}` both read), else its body as text.
    pub(crate) async fn from_response(response: reqwest::Response) -> ProviderError {
        let http_status = response.status().as_u16();
        let retry_after_secs = retry_after_secs(response.headers());
        let body = response.bytes().await.unwrap_or_default();
        let parsed = serde_json::from_slice::<Value>(&body).ok();
        let error = parsed
            .as_ref()
            .and_then(|body| body.get("error"))
            .and_then(|error| ProviderError::from_error_object(http_status, error));
        let mut error = error.unwrap_or_else(|| ProviderError {
            http_status,
            message: if http_status >= 500 {
                format!("the model provider failed (HTTP {http_status})")
            } else {
                truncate(String::from_utf8_lossy(&body).trim().to_string())
            },
            kind: None,
            code: None,
            param: None,
            retry_after_secs: None,
        });
        error.retry_after_secs = retry_after_secs;
        error
    }
}

pub(crate) fn truncate(mut message: String) -> String {
    if let Some((index, _)) = message.char_indices().nth(MAX_ERROR_MESSAGE_CHARS) {
        message.truncate(index);
    }
    message
}

/// `Retry-After` in whole seconds (an HTTP date is not used: providers send seconds), or OpenAI's
/// `retry-after-ms` rounded up.
fn retry_after_secs(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let text = |name: &str| headers.get(name)?.to_str().ok().map(str::trim);
    if let Some(secs) = text("retry-after").and_then(|value| value.parse::<u64>().ok()) {
        return Some(secs);
    }
    let millis = text("retry-after-ms")?.parse::<u64>().ok()?;
    Some(millis.div_ceil(1000))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_objects_are_read_whole() {
        let error = json!({"message": "Invalid value", "type": "invalid_request_error", "param": "messages", "code": "invalid_value"});
        assert_eq!(
            ProviderError::from_error_object(400, &error),
            Some(ProviderError {
                http_status: 400,
                message: "Invalid value".into(),
                kind: Some("invalid_request_error".into()),
                code: Some("invalid_value".into()),
                param: Some("messages".into()),
                retry_after_secs: None,
            })
        );
        let numeric = json!({"message": "slow down", "code": 429});
        assert_eq!(
            ProviderError::from_error_object(429, &numeric)
                .unwrap()
                .code
                .as_deref(),
            Some("429")
        );
        // Anthropic's error object.
        let anthropic = json!({"type": "overloaded_error", "message": "Overloaded"});
        let read = ProviderError::from_error_object(529, &anthropic).unwrap();
        assert_eq!(
            (read.kind.as_deref(), read.message.as_str()),
            (Some("overloaded_error"), "Overloaded")
        );
        assert!(ProviderError::from_error_object(500, &json!(42)).is_none());
    }

    #[test]
    fn retry_after_is_read_in_seconds_or_milliseconds() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after_secs(&headers), None);
        headers.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(retry_after_secs(&headers), Some(2));
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after_secs(&headers), Some(7));
    }
}
