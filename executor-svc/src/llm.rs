//! Model calls through async-openai, configured explicitly (never from the environment behind our back).
//!
//! Every call is made in streaming mode with `stream_options.include_usage`, for unary executions too: the
//! output can then be metered and cut off the same way, and the provider's final usage chunk is the
//! authoritative charge. Dropping a [`ChatStream`] cancels the upstream HTTP request.
//!
//! async-openai's default HTTP stack retries a call up to 3 times (with backoff) when the provider answers
//! 429 or 5xx or cannot be connected to. Retries only ever happen before the response starts, so no output
//! is duplicated and nothing is metered twice.

use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestAssistantMessageContent,
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestSystemMessageContent, ChatCompletionRequestUserMessage,
    ChatCompletionRequestUserMessageContent, ChatCompletionResponseStream,
    ChatCompletionStreamOptions, CreateChatCompletionRequest, FinishReason,
};
use futures::StreamExt;

use crate::config::ModelEndpoint;
use crate::error::ExecutorError;
use crate::execution::{Message, Role};

/// The model provider.
#[derive(Clone)]
pub struct Llm {
    client: Client<OpenAIConfig>,
    timeout: Duration,
}

/// One call.
#[derive(Debug, Clone)]
pub struct ChatCall<'a> {
    pub model: &'a str,
    pub messages: &'a [Message],
    pub max_output_tokens: u32,
}

/// Why the model ended its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFinish {
    Stop,
    Length,
}

/// Usage as the provider reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// What one streamed chunk carried.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub text: Option<String>,
    pub finish: Option<UpstreamFinish>,
    pub usage: Option<ProviderUsage>,
}

impl Llm {
    pub fn new(endpoint: &ModelEndpoint, timeout: Duration) -> Llm {
        // Every field is set here so that no OPENAI_* variable is read by the crate's defaults.
        let config = OpenAIConfig::new()
            .with_api_base(endpoint.base_url.clone())
            .with_api_key(endpoint.api_key.expose().to_string())
            .with_org_id("")
            .with_project_id("");
        Llm {
            client: Client::with_config(config),
            timeout,
        }
    }

    /// Starts a streamed call; fails when the provider refuses it or does not answer in time.
    pub async fn stream(&self, call: &ChatCall<'_>) -> Result<ChatStream, ExecutorError> {
        let request = CreateChatCompletionRequest {
            model: call.model.to_string(),
            messages: call.messages.iter().map(to_openai).collect(),
            max_completion_tokens: Some(call.max_output_tokens),
            stream: Some(true),
            stream_options: Some(ChatCompletionStreamOptions {
                include_usage: Some(true),
                include_obfuscation: None,
            }),
            ..Default::default()
        };
        let chat = self.client.chat();
        let stream = tokio::time::timeout(self.timeout, chat.create_stream(request))
            .await
            .map_err(|_| ExecutorError::UpstreamTimeout(self.timeout))?
            .map_err(upstream_error)?;
        Ok(ChatStream {
            inner: stream,
            timeout: self.timeout,
        })
    }
}

/// A streamed answer. `next` waits at most the configured timeout for each chunk.
pub struct ChatStream {
    inner: ChatCompletionResponseStream,
    timeout: Duration,
}

impl ChatStream {
    /// The next chunk, `None` at the end of the answer. Cancel-safe.
    pub async fn next(&mut self) -> Result<Option<Chunk>, ExecutorError> {
        let item = tokio::time::timeout(self.timeout, self.inner.next())
            .await
            .map_err(|_| ExecutorError::UpstreamTimeout(self.timeout))?;
        let Some(item) = item else { return Ok(None) };
        let response = item.map_err(upstream_error)?;
        let mut chunk = Chunk {
            usage: response.usage.map(|usage| ProviderUsage {
                input_tokens: u64::from(usage.prompt_tokens),
                output_tokens: u64::from(usage.completion_tokens),
            }),
            ..Chunk::default()
        };
        // Only the first choice is used: the executor never asks for more than one (`n` is not set).
        if let Some(choice) = response
            .choices
            .into_iter()
            .find(|choice| choice.index == 0)
        {
            chunk.text = choice.delta.content.filter(|text| !text.is_empty());
            chunk.finish = choice.finish_reason.map(|reason| match reason {
                FinishReason::Length => UpstreamFinish::Length,
                FinishReason::Stop
                | FinishReason::ToolCalls
                | FinishReason::ContentFilter
                | FinishReason::FunctionCall => UpstreamFinish::Stop,
            });
        }
        Ok(Some(chunk))
    }
}

fn to_openai(message: &Message) -> ChatCompletionRequestMessage {
    let text = message.content.clone();
    match message.role {
        Role::System => ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
            content: ChatCompletionRequestSystemMessageContent::Text(text),
            name: None,
        }),
        Role::User => ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
            content: ChatCompletionRequestUserMessageContent::Text(text),
            name: None,
        }),
        Role::Assistant => {
            ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage {
                content: Some(ChatCompletionRequestAssistantMessageContent::Text(text)),
                ..Default::default()
            })
        }
    }
}

/// Maps a provider failure: its 4xx about the request are the caller's problem, the rest is ours.
fn upstream_error(error: OpenAIError) -> ExecutorError {
    match error {
        OpenAIError::ApiError(response) => {
            let status = response.status_code.as_u16();
            match status {
                400 | 404 | 413 | 422 => {
                    ExecutorError::UpstreamRejected(response.api_error.message)
                }
                401 | 403 => {
                    tracing::error!(status, "the model provider refused our credentials");
                    ExecutorError::UpstreamUnavailable(format!("provider answered {status}"))
                }
                _ => ExecutorError::UpstreamUnavailable(format!("provider answered {status}")),
            }
        }
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
