//! A provider's error answer as the provider meant it ([`ProviderError`]): its HTTP status, message, type,
//! code, parameter and `Retry-After`, read from an HTTP error response or from an error event inside a
//! stream. `error.rs` turns it into a gRPC status; the providers' clients ([`crate::openai`],
//! [`crate::anthropic`]) and the chunk reader ([`crate::answer`]) make it.

use serde_json::Value;

/// The longest provider error message passed on (a provider's 4xx body can be anything).
const MAX_ERROR_MESSAGE_CHARS: usize = 2_000;

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
