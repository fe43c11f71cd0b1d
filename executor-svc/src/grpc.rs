//! `executor.v1.ExecutorService`: wire ↔ domain. Reads the key and request id from metadata, validates the
//! request, hands it to the [`Executor`], and turns outcomes and errors into proto messages and statuses.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use proto::executor::v1::executor_service_server::ExecutorService;
use proto::executor::v1::{
    Billing, BillingStatus, CountTokensRequest, CountTokensResponse, EmbedRequest, EmbedResponse,
    ExecuteRequest, ExecuteResponse, ExecuteStreamResponse, FinishReason, ListModelsRequest,
    ListModelsResponse, ListProvidersRequest, ListProvidersResponse, ResponseShape, Usage,
    execute_stream_response,
};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Request, Response, Status};

use crate::chat::{ChatRequest, MessagesRequest};
use crate::embeddings::{self, EmbedOutcome};
use crate::error::ExecutorError;
use crate::execution::{
    BillingView, Call, Costs, ExecutionRequest, Executor, Outcome, Shape, Sink, StreamEvent,
};
use crate::tokens;
use lifecycle::secret::{ExposeSecret, SecretString};
use proto::billing::v1::Labels;
use proto::credentials;
use proto::ids::ExecutionId;
/// The longest idempotency key or request id accepted.
const MAX_ID_LENGTH: usize = 128;
/// Events buffered towards a streaming client before generation waits for it.
const STREAM_BUFFER: usize = 32;

/// Request-independent settings of the service.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub model: String,
    pub embedding_model: String,
    /// Output tokens of a request answered as text ([`Shape::Text`]) that sets no limit, and the ceiling of
    /// those that do.
    pub max_output_tokens: u32,
}

pub struct ExecutorGrpc {
    executor: Arc<Executor>,
    defaults: Defaults,
}

impl ExecutorGrpc {
    pub fn new(executor: Arc<Executor>, defaults: Defaults) -> ExecutorGrpc {
        ExecutorGrpc { executor, defaults }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<ExecuteStreamResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ExecutorService for ExecutorGrpc {
    async fn execute(
        &self,
        request: Request<ExecuteRequest>,
    ) -> Result<Response<ExecuteResponse>, Status> {
        let execution = parse(
            request.metadata(),
            request.get_ref(),
            &self.defaults,
            "/executor.v1.ExecutorService/Execute",
        )?;
        let request_id = execution.call.request_id.clone();
        let (reply, result) = oneshot::channel();
        self.executor.spawn(execution, Sink::Unary(reply));
        let outcome = result
            .await
            .map_err(|_| {
                Status::from(ExecutorError::Internal(
                    "execution task ended without a result".into(),
                ))
            })?
            .map_err(Status::from)?;
        let mut response = Response::new(to_response(outcome, OutputField::Whole));
        if let Ok(value) = MetadataValue::try_from(request_id.as_str()) {
            response.metadata_mut().insert("x-request-id", value);
        }
        Ok(response)
    }

    type ExecuteStreamStream = EventStream;

    async fn execute_stream(
        &self,
        request: Request<ExecuteRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let execution = parse(
            request.metadata(),
            request.get_ref(),
            &self.defaults,
            "/executor.v1.ExecutorService/ExecuteStream",
        )?;
        let request_id = execution.call.request_id.clone();
        let (events, receiver) = mpsc::channel(STREAM_BUFFER);
        self.executor.spawn(execution, Sink::Stream(events));
        // Dropping this stream (the client went away) closes the channel, which cancels the model call.
        let stream = ReceiverStream::new(receiver).map(|event| match event {
            StreamEvent::Delta(text) => Ok(ExecuteStreamResponse {
                message: Some(execute_stream_response::Message::Delta(text)),
            }),
            StreamEvent::Chunk(json) => Ok(ExecuteStreamResponse {
                message: Some(execute_stream_response::Message::ChunkJson(json)),
            }),
            StreamEvent::Event(json) => Ok(ExecuteStreamResponse {
                message: Some(execute_stream_response::Message::MessageEventJson(json)),
            }),
            StreamEvent::Limits(limits) => Ok(ExecuteStreamResponse {
                message: Some(execute_stream_response::Message::RateLimits(limits)),
            }),
            StreamEvent::Done(result) => match *result {
                Ok(outcome) => Ok(ExecuteStreamResponse {
                    message: Some(execute_stream_response::Message::Done(to_response(
                        outcome,
                        OutputField::Empty,
                    ))),
                }),
                Err(error) => Err(Status::from(error)),
            },
        });
        let mut response = Response::new(Box::pin(stream) as EventStream);
        if let Ok(value) = MetadataValue::try_from(request_id.as_str()) {
            response.metadata_mut().insert("x-request-id", value);
        }
        Ok(response)
    }

    async fn embed(
        &self,
        request: Request<EmbedRequest>,
    ) -> Result<Response<EmbedResponse>, Status> {
        let embed = parse_embed(request.metadata(), request.get_ref(), &self.defaults)?;
        let request_id = embed.call.request_id.clone();
        let outcome = self.executor.embed(embed).await.map_err(Status::from)?;
        let mut response = Response::new(embed_response(outcome));
        if let Ok(value) = MetadataValue::try_from(request_id.as_str()) {
            response.metadata_mut().insert("x-request-id", value);
        }
        Ok(response)
    }

    async fn list_models(
        &self,
        _request: Request<ListModelsRequest>,
    ) -> Result<Response<ListModelsResponse>, Status> {
        let models_json = self
            .executor
            .providers
            .models()
            .await
            .map_err(Status::from)?;
        Ok(Response::new(ListModelsResponse { models_json }))
    }

    async fn count_tokens(
        &self,
        request: Request<CountTokensRequest>,
    ) -> Result<Response<CountTokensResponse>, Status> {
        let chat =
            ChatRequest::from_json(&request.get_ref().chat_request_json, &self.defaults.model)
                .map_err(Status::from)?;
        let input_tokens =
            tokens::prompt_tokens(&chat.model, chat.messages(), chat.body.get("tools"));
        Ok(Response::new(CountTokensResponse { input_tokens }))
    }

    async fn list_providers(
        &self,
        _request: Request<ListProvidersRequest>,
    ) -> Result<Response<ListProvidersResponse>, Status> {
        let providers = &self.executor.providers;
        let statuses = providers
            .status()
            .into_iter()
            .map(|status| proto::executor::v1::ProviderStatus {
                name: status.name,
                kind: status.kind.to_string(),
                up: status.up,
                attempts: status.attempts,
                failures: status.failures,
                fallbacks: status.fallbacks,
                first_item_seconds_sum: status.first_item_seconds_sum,
            })
            .collect();
        Ok(Response::new(ListProvidersResponse {
            providers: statuses,
            unserved_routes: providers.unserved_routes(),
        }))
    }
}

fn billing_message(billing: BillingView) -> Option<Billing> {
    match billing {
        BillingView::Internal => None,
        BillingView::Settled {
            balance_after,
            total_spent,
        } => Some(Billing {
            status: BillingStatus::Settled.into(),
            balance_after,
            total_spent,
        }),
        BillingView::Pending => Some(Billing {
            status: BillingStatus::Pending.into(),
            balance_after: None,
            total_spent: None,
        }),
    }
}

fn usage_message(input_tokens: u64, output_tokens: u64, costs: Option<Costs>) -> Usage {
    Usage {
        input_tokens,
        output_tokens,
        total_tokens: input_tokens + output_tokens,
        input_cost: costs.as_ref().map(|costs| costs.input.clone()),
        output_cost: costs.as_ref().map(|costs| costs.output.clone()),
        total_cost: costs.map(|costs| costs.total),
    }
}

fn embed_response(outcome: EmbedOutcome) -> EmbedResponse {
    EmbedResponse {
        execution_id: outcome.execution_id.into(),
        response_json: outcome.response,
        usage: Some(usage_message(outcome.input_tokens, 0, outcome.costs)),
        billing: billing_message(outcome.billing),
        rate_limits: outcome.rate_limits,
    }
}

/// Whether the final message repeats the output (unary) or leaves it to the deltas (stream).
#[derive(Debug, Clone, Copy)]
enum OutputField {
    Whole,
    Empty,
}

fn to_response(outcome: Outcome, output: OutputField) -> ExecuteResponse {
    let finish_reason = FinishReason::from(outcome.finish);
    ExecuteResponse {
        execution_id: outcome.execution_id.into(),
        model: outcome.model,
        output: match output {
            OutputField::Whole => outcome.output,
            OutputField::Empty => String::new(),
        },
        usage: Some(usage_message(
            outcome.input_tokens,
            outcome.output_tokens,
            outcome.costs,
        )),
        billing: billing_message(outcome.billing),
        finish_reason: finish_reason.into(),
        chat_completion_json: outcome.chat_completion.unwrap_or_default(),
        usage_chunk_json: outcome.usage_chunk.unwrap_or_default(),
        message_json: outcome.message.unwrap_or_default(),
        usage_event_json: outcome.usage_event.unwrap_or_default(),
        rate_limits: outcome.rate_limits,
    }
}

/// Validates a request and its metadata into an [`ExecutionRequest`].
fn parse(
    metadata: &MetadataMap,
    request: &ExecuteRequest,
    defaults: &Defaults,
    default_endpoint: &str,
) -> Result<ExecutionRequest, ExecutorError> {
    let api_key = bearer(metadata).ok_or(ExecutorError::MissingApiKey)?;
    let Some(json) = &request.chat_request_json else {
        return Err(ExecutorError::InvalidRequest(
            "`chat_request_json` is required".into(),
        ));
    };
    let mut chat = ChatRequest::from_json(json, &defaults.model)?;
    let shape = match request.response_shape() {
        ResponseShape::Unspecified | ResponseShape::ChatCompletion => Shape::ChatCompletion,
        ResponseShape::Text => Shape::Text,
    };
    match (&request.messages_request_json, shape) {
        (Some(messages), Shape::ChatCompletion) => {
            chat.messages_request = Some(MessagesRequest::from_json(
                messages,
                &request.anthropic_headers,
                &chat.model,
            )?);
        }
        (Some(_), Shape::Text) => {
            return Err(ExecutorError::InvalidRequest(
                "`messages_request_json` is answered in the provider's own JSON, not as text"
                    .into(),
            ));
        }
        (None, Shape::Text) => chat.limit_text_output(defaults.max_output_tokens)?,
        (None, Shape::ChatCompletion) => {}
    }
    let call = call(
        api_key,
        metadata,
        Labels {
            model: chat.model.clone(),
            workspace_id: request.workspace_id.clone(),
            session_id: request.session_id.clone(),
            endpoint: request.endpoint.clone(),
            end_user_id: request.end_user_id.clone(),
        },
        request.idempotency_key.as_deref(),
        default_endpoint,
    )?;
    Ok(ExecutionRequest { call, chat, shape })
}

/// Validates an embeddings request and its metadata.
fn parse_embed(
    metadata: &MetadataMap,
    request: &EmbedRequest,
    defaults: &Defaults,
) -> Result<embeddings::EmbedRequest, ExecutorError> {
    let api_key = bearer(metadata).ok_or(ExecutorError::MissingApiKey)?;
    let (body, model) = embeddings::parse(&request.request_json, &defaults.embedding_model)?;
    let call = call(
        api_key,
        metadata,
        Labels {
            model,
            workspace_id: request.workspace_id.clone(),
            session_id: request.session_id.clone(),
            endpoint: request.endpoint.clone(),
            end_user_id: request.end_user_id.clone(),
        },
        request.idempotency_key.as_deref(),
        "/v1/embeddings",
    )?;
    Ok(embeddings::EmbedRequest { call, body })
}

/// Checks the labels (the endpoint defaulted) and names the execution.
fn call(
    api_key: SecretString,
    metadata: &MetadataMap,
    mut labels: Labels,
    idempotency_key: Option<&str>,
    default_endpoint: &str,
) -> Result<Call, ExecutorError> {
    if labels.endpoint.is_empty() {
        labels.endpoint = default_endpoint.to_string();
    }
    labels
        .validate()
        .map_err(|error| ExecutorError::InvalidRequest(error.to_string()))?;
    let execution_id = match idempotency_key {
        None => format!("exec_{}", uuid::Uuid::new_v4().simple()),
        Some(key) if key.is_empty() || key.len() > MAX_ID_LENGTH => {
            return Err(ExecutorError::InvalidRequest(
                "`idempotency_key` must be 1 to 128 characters".into(),
            ));
        }
        Some(key) => idempotent_execution_id(&api_key, key),
    };
    Ok(Call {
        api_key,
        request_id: request_id(metadata),
        execution_id: ExecutionId::from(execution_id),
        labels,
    })
}

/// The customer's key from `authorization: Bearer <key>`.
fn bearer(metadata: &MetadataMap) -> Option<SecretString> {
    credentials::bearer(metadata).ok().map(SecretString::from)
}

/// The caller's `x-request-id` when it is a sane token, a fresh one otherwise.
fn request_id(metadata: &MetadataMap) -> String {
    metadata
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_ID_LENGTH
                && id
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || b"-_.:".contains(&byte))
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string)
}

/// `idem_` + 32 hex digits of SHA-256(SHA-256-hex(key) + "\n" + idempotency key): the same retry of the same
/// key maps to the same execution, which billing-svc refuses to run twice; another key cannot collide.
fn idempotent_execution_id(api_key: &SecretString, idempotency_key: &str) -> String {
    let key_hash = hex::encode(Sha256::digest(api_key.expose_secret().as_bytes()));
    let digest = Sha256::digest(format!("{key_hash}\n{idempotency_key}").as_bytes());
    format!("idem_{}", &hex::encode(digest)[..32])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn defaults() -> Defaults {
        Defaults {
            model: "gpt-4o-mini".into(),
            embedding_model: "text-embedding-3-small".into(),
            max_output_tokens: 4096,
        }
    }

    fn metadata(authorization: Option<&str>) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        if let Some(value) = authorization {
            metadata.insert("authorization", value.parse().unwrap());
        }
        metadata
    }

    /// `/execute`'s prompt as the gateway sends it: a chat request answered as text.
    fn text(chat: serde_json::Value) -> ExecuteRequest {
        ExecuteRequest {
            chat_request_json: Some(chat.to_string()),
            response_shape: ResponseShape::Text.into(),
            ..Default::default()
        }
    }

    fn prompt(text_: &str) -> ExecuteRequest {
        text(serde_json::json!({"messages": [{"role": "user", "content": text_}]}))
    }

    #[test]
    fn invalid_requests_are_refused_with_a_reason() {
        let cases: Vec<(ExecuteRequest, &str)> = vec![
            (ExecuteRequest::default(), "no chat request"),
            (
                text(serde_json::json!({"messages": [{"role": "user", "content": "hi"}], "n": 2})),
                "several choices answered as text",
            ),
            (
                ExecuteRequest {
                    messages_request_json: Some("{}".into()),
                    ..prompt("hi")
                },
                "a Messages request answered as text",
            ),
            (
                text(
                    serde_json::json!({"messages": [{"role": "user", "content": "hi"}],
                    "max_completion_tokens": 0}),
                ),
                "zero max_completion_tokens",
            ),
            (
                ExecuteRequest {
                    idempotency_key: Some(String::new()),
                    ..prompt("hi")
                },
                "empty idempotency key",
            ),
            (
                ExecuteRequest {
                    workspace_id: "w".repeat(129),
                    ..prompt("hi")
                },
                "long workspace id",
            ),
        ];
        for (request, case) in cases {
            let result = parse(&metadata(Some("Bearer k")), &request, &defaults(), "/x");
            assert!(
                matches!(result, Err(ExecutorError::InvalidRequest(_))),
                "{case}: {result:?}"
            );
        }
    }

    #[test]
    fn a_missing_key_is_unauthenticated() {
        for value in [None, Some("Basic abc"), Some("Bearer "), Some("Bearer")] {
            let result = parse(&metadata(value), &prompt("hi"), &defaults(), "/x");
            assert!(
                matches!(result, Err(ExecutorError::MissingApiKey)),
                "{value:?}"
            );
        }
    }

    #[test]
    fn a_text_answer_gets_the_default_model_and_a_capped_limit() {
        let parsed = parse(
            &metadata(Some("Bearer k")),
            &prompt("hi"),
            &defaults(),
            "/x",
        )
        .unwrap();
        assert_eq!(
            (
                parsed.shape,
                parsed.call.labels.model.as_str(),
                parsed.chat.max_output_tokens,
                parsed.call.labels.endpoint.as_str()
            ),
            (Shape::Text, "gpt-4o-mini", Some(4096), "/x")
        );
        let big = text(
            serde_json::json!({"messages": [{"role": "user", "content": "hi"}],
            "max_completion_tokens": 1_000_000}),
        );
        assert_eq!(
            parse(&metadata(Some("Bearer k")), &big, &defaults(), "/x")
                .unwrap()
                .chat
                .max_output_tokens,
            Some(4096)
        );
    }

    #[test]
    fn a_chat_completion_travels_whole_and_keeps_its_own_limit() {
        let json = r#"{"model": "m", "messages": [{"role": "tool", "content": "x", "tool_call_id": "c"}], "seed": 7}"#;
        let request = ExecuteRequest {
            chat_request_json: Some(json.into()),
            ..Default::default()
        };
        let parsed = parse(&metadata(Some("Bearer k")), &request, &defaults(), "/x").unwrap();
        assert_eq!(parsed.shape, Shape::ChatCompletion);
        assert_eq!(parsed.call.labels.model, "m");
        assert_eq!(parsed.chat.body["seed"], 7);
        assert_eq!(parsed.chat.max_output_tokens, None);
    }

    #[test]
    fn idempotency_keys_map_to_stable_per_key_execution_ids() {
        let key = SecretString::from("tb_prod_abc");
        let first = idempotent_execution_id(&key, "retry-1");
        assert_eq!(first, idempotent_execution_id(&key, "retry-1"));
        assert_eq!(first.len(), "idem_".len() + 32);
        assert_ne!(first, idempotent_execution_id(&key, "retry-2"));
        assert_ne!(
            first,
            idempotent_execution_id(&SecretString::from("tb_prod_def"), "retry-1")
        );
    }

    #[test]
    fn request_ids_are_kept_when_sane() {
        let mut metadata = MetadataMap::new();
        metadata.insert("x-request-id", "req-123".parse().unwrap());
        assert_eq!(request_id(&metadata), "req-123");
        metadata.insert("x-request-id", "bad id with spaces".parse().unwrap());
        assert_ne!(request_id(&metadata), "bad id with spaces");
    }
}
