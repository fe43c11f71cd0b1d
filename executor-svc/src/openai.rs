//! One OpenAI-compatible model provider, through async-openai's bring-your-own-types calls: the client's JSON goes out as it
//! is and the provider's JSON comes back as it is, so no field is lost in a translation.
//!
//! Every chat call is made in streaming mode with `stream_options.include_usage`, for unary executions too:
//! the output can then be metered and cut off the same way, and the provider's final usage chunk is the
//! authoritative charge; the chunks come as an [`Upstream`] of [`Wire::ChatChunks`].
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
use futures::StreamExt;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::ExecutorError;
use crate::provider_error::{ProviderError, truncate};
use crate::upstream::{Upstream, Wire};
use lifecycle::secret::{ExposeSecret, SecretString};

/// How long the provider's model list is reused before it is asked again.
const MODELS_CACHE_TTL: Duration = Duration::from_secs(60);

/// One OpenAI-compatible model provider.
pub struct OpenAi {
    client: Client<OpenAIConfig>,
    timeout: Duration,
    models: Mutex<Option<(Instant, String)>>,
}

/// The provider's error answer, carried through async-openai as its boxed middleware error.
#[derive(Debug, thiserror::Error)]
#[error("the provider answered HTTP {}", .0.http_status)]
struct ErrorAnswer(ProviderError);

impl OpenAi {
    /// The OpenAI-compatible API at `base_url`, with `api_key` (empty: none) and `headers` on every request.
    /// The headers were checked when the providers were read; one that is not valid is left out.
    pub fn new(
        base_url: &str,
        api_key: &SecretString,
        headers: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> OpenAi {
        // Every field is set here so that no OPENAI_* variable is read by the crate's defaults.
        let config = OpenAIConfig::new()
            .with_api_base(base_url.to_string())
            .with_api_key(api_key.expose_secret().to_string())
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
        OpenAi {
            client: Client::with_config(config).with_http_service(service),
            timeout,
            models: Mutex::new(None),
        }
    }

    /// Starts a streamed chat completion of `body` (which must ask for a stream with usage) and waits for its
    /// first chunk; fails when the provider refuses it or does not answer in time, so that a caller can
    /// still try another provider before anything reached its client.
    pub async fn stream(&self, body: &Map<String, Value>) -> Result<Upstream, ExecutorError> {
        let chat = self.client.chat();
        let chunks = tokio::time::timeout(self.timeout, chat.create_stream_byot(body))
            .await
            .map_err(|_| ExecutorError::UpstreamTimeout(self.timeout))?
            .map_err(upstream_error)?;
        let chunks =
            chunks.map(|chunk: Result<Box<RawValue>, OpenAIError>| chunk.map_err(upstream_error));
        Upstream::start(Wire::ChatChunks, chunks.boxed(), self.timeout).await
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
