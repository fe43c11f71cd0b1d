//! One OpenAI-compatible model provider, through async-openai's bring-your-own-types calls: the client's JSON goes out as it
//! is and the provider's JSON comes back as it is, so no field is lost in a translation.
//!
//! Every chat call is made in streaming mode with `stream_options.include_usage`, for unary executions too:
//! the output can then be metered and cut off the same way, and the provider's final usage chunk is the
//! authoritative charge. Dropping a [`ChatStream`] cancels the upstream HTTP request.
//!
//! The HTTP stack is ours (async-openai's middleware hook): it never retries, so a provider's 429 reaches
//! the client with its `Retry-After` and the client's SDK decides (retrying inside the executor as well
//! would multiply the client's own retries), and a provider's error answer keeps its HTTP status, body and
//! `Retry-After`, which async-openai's own error type would drop.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use async_openai::types::stream::StreamResponse;
use futures::StreamExt;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio::sync::OwnedSemaphorePermit;

use crate::config::Secret;
use crate::error::ExecutorError;

/// How long the provider's model list is reused before it is asked again.
const MODELS_CACHE_TTL: Duration = Duration::from_secs(60);
/// The longest provider error message passed on (a provider's 4xx body can be anything).
const MAX_ERROR_MESSAGE_CHARS: usize = 2_000;

/// One OpenAI-compatible model provider.
pub struct Llm {
    client: Client<OpenAIConfig>,
    timeout: Duration,
    models: Mutex<Option<(Instant, String)>>,
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

impl ProviderError {
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

    async fn from_response(response: reqwest::Response) -> ProviderError {
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

fn truncate(mut message: String) -> String {
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

/// The provider's error answer, carried through async-openai as its boxed middleware error.
#[derive(Debug, thiserror::Error)]
#[error("the provider answered HTTP {}", .0.http_status)]
struct ErrorAnswer(ProviderError);

impl Llm {
    /// The OpenAI-compatible API at `base_url`, with `api_key` (empty: none) and `headers` on every request.
    /// The headers were checked when the providers were read; one that is not valid is left out.
    pub fn new(
        base_url: &str,
        api_key: &Secret,
        headers: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> Llm {
        // Every field is set here so that no OPENAI_* variable is read by the crate's defaults.
        let config = OpenAIConfig::new()
            .with_api_base(base_url.to_string())
            .with_api_key(api_key.expose().to_string())
            .with_org_id("")
            .with_project_id("");
        let mut default_headers = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(name.as_bytes()),
                reqwest::header::HeaderValue::from_str(value),
            ) {
                default_headers.insert(name, value);
            }
        }
        let http = reqwest::Client::builder()
            .default_headers(default_headers)
            .build()
            .unwrap_or_default();
        let service = tower::service_fn(move |factory: HttpRequestFactory| {
            let http = http.clone();
            async move {
                let request = factory.build().await?;
                let response = http.execute(request).await.map_err(OpenAIError::Reqwest)?;
                if response.status().is_success() {
                    return Ok(response);
                }
                let error = ErrorAnswer(ProviderError::from_response(response).await);
                Err(OpenAIError::Boxed(Box::new(error)))
            }
        });
        Llm {
            client: Client::with_config(config).with_http_service(service),
            timeout,
            models: Mutex::new(None),
        }
    }

    /// Starts a streamed chat completion of `body` (which must ask for a stream with usage) and waits for its
    /// first chunk; fails when the provider refuses it or does not answer in time, so that a caller can
    /// still try another provider before anything reached its client.
    pub async fn stream(&self, body: &Map<String, Value>) -> Result<ChatStream, ExecutorError> {
        let chat = self.client.chat();
        let inner = tokio::time::timeout(self.timeout, chat.create_stream_byot(body))
            .await
            .map_err(|_| ExecutorError::UpstreamTimeout(self.timeout))?
            .map_err(upstream_error)?;
        let mut stream = ChatStream {
            inner,
            timeout: self.timeout,
            first: None,
            _slot: None,
        };
        let first = stream.next().await?;
        stream.first = Some(first);
        Ok(stream)
    }

    /// Creates embeddings; answers the provider's JSON as it sent it.
    pub async fn embed(&self, body: &Map<String, Value>) -> Result<Box<RawValue>, ExecutorError> {
        let embeddings = self.client.embeddings();
        tokio::time::timeout(self.timeout, embeddings.create_byot(body))
            .await
            .map_err(|_| ExecutorError::UpstreamTimeout(self.timeout))?
            .map_err(upstream_error)
    }

    /// The provider's model list as it sent it, reused for a minute.
    pub async fn models(&self) -> Result<String, ExecutorError> {
        if let Ok(cached) = self.models.lock()
            && let Some((at, models)) = cached.as_ref()
            && at.elapsed() < MODELS_CACHE_TTL
        {
            return Ok(models.clone());
        }
        let models = self.client.models();
        let list: Box<RawValue> = tokio::time::timeout(self.timeout, models.list_byot())
            .await
            .map_err(|_| ExecutorError::UpstreamTimeout(self.timeout))?
            .map_err(upstream_error)?;
        let list = list.get().to_string();
        if let Ok(mut cached) = self.models.lock() {
            *cached = Some((Instant::now(), list.clone()));
        }
        Ok(list)
    }
}

/// A streamed answer: the provider's chunks as it sent them. `next` waits at most the configured timeout
/// for each chunk.
pub struct ChatStream {
    inner: StreamResponse<Box<RawValue>>,
    timeout: Duration,
    /// The first chunk (or the end), read when the stream started.
    first: Option<Option<Box<RawValue>>>,
    /// The provider's call slot, given back when the stream is dropped.
    _slot: Option<OwnedSemaphorePermit>,
}

impl ChatStream {
    /// The stream holding the provider's call slot for as long as it lives.
    pub fn holding(mut self, slot: Option<OwnedSemaphorePermit>) -> ChatStream {
        self._slot = slot;
        self
    }

    /// The next chunk's JSON text, `None` at the end of the answer. Cancel-safe.
    pub async fn next(&mut self) -> Result<Option<Box<RawValue>>, ExecutorError> {
        if let Some(first) = self.first.take() {
            return Ok(first);
        }
        let item = tokio::time::timeout(self.timeout, self.inner.next())
            .await
            .map_err(|_| ExecutorError::UpstreamTimeout(self.timeout))?;
        item.transpose().map_err(upstream_error)
    }
}

/// Maps a provider failure: its error answers keep their meaning; the rest is ours.
fn upstream_error(error: OpenAIError) -> ExecutorError {
    match error {
        OpenAIError::Boxed(boxed) => match boxed.downcast::<ErrorAnswer>() {
            Ok(answer) => {
                let ErrorAnswer(error) = *answer;
                if matches!(error.http_status, 401 | 403) {
                    tracing::error!(
                        status = error.http_status,
                        "the model provider refused our credentials"
                    );
                }
                ExecutorError::Provider(error)
            }
            Err(other) => ExecutorError::UpstreamUnavailable(other.to_string()),
        },
        // The HTTP stack turns every error answer into `Boxed`; this one is async-openai's own reading.
        OpenAIError::ApiError(response) => ExecutorError::Provider(ProviderError {
            http_status: response.status_code.as_u16(),
            message: truncate(response.api_error.message),
            kind: response.api_error.r#type,
            code: response.api_error.code,
            param: response.api_error.param,
            retry_after_secs: None,
        }),
        OpenAIError::Reqwest(error) => ExecutorError::UpstreamUnavailable(error.to_string()),
        OpenAIError::StreamError(error) => {
            ExecutorError::UpstreamUnavailable(format!("stream broken: {error}"))
        }
        OpenAIError::JSONDeserialize(error, _) => {
            ExecutorError::UpstreamUnavailable(format!("malformed answer: {error}"))
        }
        OpenAIError::InvalidArgument(message) => {
            ExecutorError::Internal(format!("invalid model request: {message}"))
        }
        OpenAIError::FileSaveError(message) | OpenAIError::FileReadError(message) => {
            ExecutorError::Internal(message)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn openai_error_objects_are_read_whole() {
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
