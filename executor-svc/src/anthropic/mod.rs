//! One provider speaking Anthropic's native Messages API (`kind = "anthropic"` in PROVIDERS.md).
//!
//! The client is a small layer over reqwest rather than an Anthropic crate: the executor must pass the
//! client's request through field for field, numbers as written (thinking, `cache_control`, documents,
//! server tools, betas not yet released), and read the answer's events as JSON with every unknown field
//! kept, while a typed SDK would drop or refuse what its types do not know; the crates available for
//! Anthropic are community-kept, lag the API, and would bring a second HTTP stack. Only what the platform
//! needs is typed: the URL and headers, the SSE framing (`eventsource-stream`, the parser async-openai
//! uses), and the handful of event fields metering reads ([`events`]).
//!
//! Calls are always streamed (`"stream": true` upstream, unary executions too), as for OpenAI-compatible
//! providers: the output is metered and cut off the same way, and the usage of `message_start` and
//! `message_delta` is the charge. [`translate`] turns chat completion requests into Messages requests and the
//! events back into chat chunks, for `/v1/chat/completions`, `/v1/responses` and `/execute` calls routed
//! here.

pub mod events;
pub mod translate;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::error::ExecutorError;
use crate::provider_error::ProviderError;
use crate::upstream::{Upstream, Wire};
use lifecycle::secret::{ExposeSecret, SecretString};

/// The API version sent when neither the client nor the provider's `headers` name one.
pub const DEFAULT_VERSION: &str = "2023-06-01";
/// The headers of the client's request that reach the provider (the rest are the platform's own).
pub const PASSED_HEADERS: [&str; 2] = ["anthropic-version", "anthropic-beta"];
/// How long the provider's model list is reused before it is asked again.
const MODELS_CACHE_TTL: Duration = Duration::from_secs(60);

/// One Anthropic Messages API provider.
pub struct Anthropic {
    http: reqwest::Client,
    /// `https://api.anthropic.com`, without `/v1`.
    base_url: String,
    api_key: SecretString,
    /// The provider's own `headers` from PROVIDERS_FILE.
    headers: BTreeMap<String, String>,
    timeout: Duration,
    models: Mutex<Option<(Instant, String)>>,
}

impl Anthropic {
    /// The Messages API at `base_url` (its `/v1/messages`), with `api_key` as `x-api-key` (empty: none)
    /// and `headers` on every request. The headers were checked when the providers were read.
    pub fn new(
        base_url: &str,
        api_key: &SecretString,
        headers: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> Anthropic {
        Anthropic {
            http: reqwest::Client::new(),
            base_url: base_url
                .trim_end_matches('/')
                .trim_end_matches("/v1")
                .to_string(),
            api_key: api_key.clone(),
            headers: headers.clone(),
            timeout,
            models: Mutex::new(None),
        }
    }

    /// The headers of one call: the provider's own, then the client's `anthropic-version` /
    /// `anthropic-beta` (the client's version wins; betas are joined), the key, and a default version.
    fn call_headers(&self, client: &BTreeMap<String, String>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let mut set = |name: &str, value: &str| {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        };
        for (name, value) in &self.headers {
            set(&name.to_ascii_lowercase(), value);
        }
        if let Some(version) = client.get("anthropic-version") {
            set("anthropic-version", version);
        }
        if let Some(beta) = client.get("anthropic-beta") {
            let joined = match self
                .headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("anthropic-beta"))
            {
                Some((_, own)) => format!("{own},{beta}"),
                None => beta.clone(),
            };
            set("anthropic-beta", &joined);
        }
        if !self.api_key.expose_secret().is_empty() {
            set("x-api-key", self.api_key.expose_secret());
        }
        if !headers.contains_key("anthropic-version") {
            headers.insert(
                "anthropic-version",
                HeaderValue::from_static(DEFAULT_VERSION),
            );
        }
        headers
    }

    /// Starts a streamed Messages call of `body` (sent with `"stream": true`) and waits for its first
    /// event; fails when the provider refuses it or does not answer in time. The events come as
    /// [`Wire::MessageEvents`]; an `error` event ends the stream with the provider's error.
    pub async fn stream(
        &self,
        body: &Map<String, Value>,
        client_headers: &BTreeMap<String, String>,
    ) -> Result<Upstream, ExecutorError> {
        let events = self.events(body, client_headers).await?;
        Upstream::start(Wire::MessageEvents, events, self.timeout).await
    }

    /// A chat completion request (`body` as the executor carries it) run as a Messages call, its events
    /// translated into chat chunks ([`Wire::ChatChunks`], see [`translate`]).
    pub async fn chat_stream(&self, body: &Map<String, Value>) -> Result<Upstream, ExecutorError> {
        let request = translate::to_messages(body)?;
        let events = self.events(&request, &BTreeMap::new()).await?;
        let mut to_chunks = translate::ToChunks::default();
        let chunks = events.flat_map(move |event| {
            let chunks: Vec<Result<Box<RawValue>, ExecutorError>> =
                match event.map(|raw| serde_json::from_str::<Value>(raw.get())) {
                    Err(error) => vec![Err(error)],
                    Ok(Err(error)) => vec![Err(ExecutorError::UpstreamUnavailable(format!(
                        "malformed event: {error}"
                    )))],
                    Ok(Ok(event)) => to_chunks
                        .chunks(&event)
                        .into_iter()
                        .map(|chunk| {
                            RawValue::from_string(chunk.to_string())
                                .map_err(|error| ExecutorError::Internal(error.to_string()))
                        })
                        .collect(),
                };
            futures::stream::iter(chunks)
        });
        Upstream::start(Wire::ChatChunks, chunks.boxed(), self.timeout).await
    }

    /// Sends a Messages call and answers its events, once the provider accepted it.
    async fn events(
        &self,
        body: &Map<String, Value>,
        client_headers: &BTreeMap<String, String>,
    ) -> Result<BoxStream<'static, Result<Box<RawValue>, ExecutorError>>, ExecutorError> {
        let mut body = body.clone();
        body.insert("stream".into(), Value::Bool(true));
        let request = self
            .http
            .post(format!("{}/v1/messages", self.base_url))
            .headers(self.call_headers(client_headers))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(Value::Object(body).to_string());
        let response = tokio::time::timeout(self.timeout, request.send())
            .await
            .map_err(|_| ExecutorError::UpstreamTimeout(self.timeout))?
            .map_err(|error| ExecutorError::UpstreamUnavailable(error.to_string()))?;
        if !response.status().is_success() {
            return Err(refused(ProviderError::from_response(response).await));
        }
        let events = response
            .bytes_stream()
            .eventsource()
            .filter_map(|event| async move {
                match event {
                    Err(error) => Some(Err(ExecutorError::UpstreamUnavailable(format!(
                        "stream broken: {error}"
                    )))),
                    Ok(event) if event.event == "ping" || event.data.trim().is_empty() => None,
                    Ok(event) => Some(event_item(&event.data)),
                }
            });
        Ok(events.boxed())
    }

    /// The provider's models as an OpenAI model list (`{"object": "list", "data": [{"id", ...}]}`), reused
    /// for a minute.
    pub async fn models(&self, provider: &str) -> Result<String, ExecutorError> {
        if let Ok(cached) = self.models.lock()
            && let Some((at, models)) = cached.as_ref()
            && at.elapsed() < MODELS_CACHE_TTL
        {
            return Ok(models.clone());
        }
        let request = self
            .http
            .get(format!("{}/v1/models?limit=1000", self.base_url))
            .headers(self.call_headers(&BTreeMap::new()));
        let response = tokio::time::timeout(self.timeout, request.send())
            .await
            .map_err(|_| ExecutorError::UpstreamTimeout(self.timeout))?
            .map_err(|error| ExecutorError::UpstreamUnavailable(error.to_string()))?;
        if !response.status().is_success() {
            return Err(refused(ProviderError::from_response(response).await));
        }
        let list: Value = response.json().await.map_err(|error| {
            ExecutorError::UpstreamUnavailable(format!("malformed model list: {error}"))
        })?;
        let data: Vec<Value> = list
            .get("data")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|model| model.get("id").and_then(Value::as_str))
            .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": provider}))
            .collect();
        let list = json!({"object": "list", "data": data}).to_string();
        if let Ok(mut cached) = self.models.lock() {
            *cached = Some((Instant::now(), list.clone()));
        }
        Ok(list)
    }
}

/// A provider's error answer; a refusal of our own credentials is logged, since only the operator can fix it.
fn refused(error: ProviderError) -> ExecutorError {
    if matches!(error.http_status, 401 | 403) {
        tracing::error!(
            status = error.http_status,
            "the Anthropic provider refused our credentials"
        );
    }
    ExecutorError::Provider(error)
}

/// One event's JSON; an `error` event is the provider's error.
fn event_item(data: &str) -> Result<Box<RawValue>, ExecutorError> {
    let raw = RawValue::from_string(data.to_string())
        .map_err(|error| ExecutorError::UpstreamUnavailable(format!("malformed event: {error}")))?;
    if data.contains("\"error\"") {
        let event: Value = serde_json::from_str(data).unwrap_or(Value::Null);
        if event.get("type").and_then(Value::as_str) == Some("error") {
            let error = event.get("error").cloned().unwrap_or(Value::Null);
            return Err(ExecutorError::Provider(ProviderError::in_stream(&error)));
        }
    }
    Ok(raw)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn provider(headers: &[(&str, &str)]) -> Anthropic {
        let headers = headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        Anthropic::new(
            "https://api.anthropic.com/v1/",
            &SecretString::from("sk-ant-test"),
            &headers,
            Duration::from_secs(5),
        )
    }

    #[test]
    fn the_clients_version_wins_and_betas_are_joined() {
        let anthropic = provider(&[("anthropic-beta", "own-beta")]);
        assert_eq!(anthropic.base_url, "https://api.anthropic.com");
        let client = BTreeMap::from([
            ("anthropic-version".to_string(), "2024-01-01".to_string()),
            ("anthropic-beta".to_string(), "context-1m".to_string()),
        ]);
        let headers = anthropic.call_headers(&client);
        assert_eq!(headers["anthropic-version"], "2024-01-01");
        assert_eq!(headers["anthropic-beta"], "own-beta,context-1m");
        assert_eq!(headers["x-api-key"], "sk-ant-test");
        let headers = provider(&[]).call_headers(&BTreeMap::new());
        assert_eq!(headers["anthropic-version"], DEFAULT_VERSION);
        assert!(!headers.contains_key("anthropic-beta"));
    }

    #[test]
    fn error_events_are_the_providers_errors() {
        let error = event_item(
            r#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#,
        );
        match error {
            Err(ExecutorError::Provider(error)) => {
                assert_eq!(
                    error.http_status,
                    crate::provider_error::STREAM_ERROR_STATUS
                );
                assert_eq!(error.kind.as_deref(), Some("overloaded_error"));
                assert_eq!(error.message, "Overloaded");
            }
            other => panic!("{other:?}"),
        }
        // Text that merely mentions "error" is an event like any other.
        let text = r#"{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "\"error\""}}"#;
        assert_eq!(event_item(text).unwrap().get(), text);
    }
}
