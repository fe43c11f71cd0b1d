//! `POST /v1/chat/completions`: OpenAI's chat completions dialect on top of executor-svc, so OpenAI SDKs
//! work unchanged with `base_url = <gateway>/v1` and a `tb_` key. Errors use OpenAI's error shape.
//!
//! Billing travels in `x-billing-*` response headers; a stream has no headers left at its end, so its
//! last chunk carries an extra `billing` object instead. Internal keys get neither.

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use proto::executor::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, OpenAiError};
use crate::execution::{self, ExecutionEvent};
use crate::extract::{OpenAiCallContext, header_text};
use crate::json::{Billing, ExecuteResult, ExecutionSummary, FinishReason};
use crate::money::Usd;
use crate::openapi::OpenAiErrors;
use crate::routes::execute::IDEMPOTENCY_KEY_HEADER;
use crate::state::AppState;

/// The endpoint recorded on usage records.
const ENDPOINT: &str = "/v1/chat/completions";

/// OpenAI SDKs cannot add body fields easily, but all can add headers.
const WORKSPACE_HEADER: &str = "x-workspace-id";
const SESSION_HEADER: &str = "x-session-id";

/// A JSON body whose rejections come out in OpenAI's error shape.
#[derive(Debug, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(OpenAiError))]
pub struct OpenAiJson<T>(pub T);

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatCompletionRequest {
    /// Default: the executor's configured model.
    pub model: Option<String>,
    pub messages: Vec<ChatCompletionMessage>,
    /// Upper bound on output tokens (legacy name).
    pub max_tokens: Option<u32>,
    /// Upper bound on output tokens; wins over `max_tokens`.
    pub max_completion_tokens: Option<u32>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    /// Only 1 is supported.
    pub n: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct StreamOptions {
    /// Send a last chunk with `usage` (and `usage: null` on the others).
    pub include_usage: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatCompletionMessage {
    /// `system`, `developer` (taken as `system`), `user` or `assistant`.
    pub role: String,
    #[serde(default)]
    pub content: Option<MessageContent>,
}

/// A string, or content parts of which only `text` ones are supported.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
}

impl ChatCompletionMessage {
    fn into_wire(self) -> Result<pb::ChatMessage, ApiError> {
        let role = if self.role == "developer" {
            "system".to_string()
        } else {
            self.role
        };
        let content = match self.content {
            None => String::new(),
            Some(MessageContent::Text(text)) => text,
            Some(MessageContent::Parts(parts)) => {
                let mut text = String::new();
                for part in parts {
                    match (part.kind.as_str(), part.text) {
                        ("text", Some(piece)) => text.push_str(&piece),
                        (kind, _) => {
                            return Err(ApiError::InvalidRequest(format!(
                                "content parts of type `{kind}` are not supported; send text"
                            )));
                        }
                    }
                }
                text
            }
        };
        Ok(pb::ChatMessage { role, content })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompletionUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: &'static str,
    pub content: String,
    pub refusal: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Choice {
    pub index: u32,
    pub message: AssistantMessage,
    /// `stop`, or `length` when `max_tokens` was reached or credit ran out mid-generation.
    pub finish_reason: &'static str,
}

/// A `chat.completion` object.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatCompletion {
    /// `chatcmpl-<executionId>`.
    pub id: String,
    /// Always `chat.completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    pub usage: CompletionUsage,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ChunkDelta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: ChunkDelta,
    pub finish_reason: Option<&'static str>,
}

/// The account after the charge, on the last chunk of a stream (standard keys only).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChunkBilling {
    /// `settled`, or `pending` when the settlement was spooled (see `/execute`).
    pub status: &'static str,
    /// The execution's total cost; absent while pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Usd>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance_after: Option<Usd>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_spent: Option<Usd>,
}

/// A `chat.completion.chunk` object.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatCompletionChunk {
    pub id: String,
    /// Always `chat.completion.chunk`.
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChunkChoice>,
    /// With `stream_options.include_usage`: null on every chunk but the last, which has no choices.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<CompletionUsage>)]
    pub usage: Option<Option<CompletionUsage>>,
    /// On the last chunk only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing: Option<ChunkBilling>,
}

fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length | FinishReason::CreditExhausted => "length",
    }
}

fn completion_usage(summary: &ExecutionSummary) -> CompletionUsage {
    CompletionUsage {
        prompt_tokens: summary.usage.input_tokens,
        completion_tokens: summary.usage.output_tokens,
        total_tokens: summary.usage.total_tokens,
    }
}

fn chunk_billing(summary: &ExecutionSummary) -> Option<ChunkBilling> {
    let cost = summary.usage.total_cost;
    match summary.billing.as_ref()? {
        Billing::Settled {
            balance_after,
            total_spent,
        } => Some(ChunkBilling {
            status: "settled",
            cost,
            balance_after: Some(*balance_after),
            total_spent: Some(*total_spent),
        }),
        Billing::Pending { .. } => Some(ChunkBilling {
            status: "pending",
            cost,
            balance_after: None,
            total_spent: None,
        }),
    }
}

/// `x-billing-status` (`settled` | `pending`), and when settled `x-billing-cost`,
/// `x-billing-balance-after` and `x-billing-total-spent`, all exact decimal USD.
fn billing_headers(summary: &ExecutionSummary) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let Some(billing) = chunk_billing(summary) else {
        return headers;
    };
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    put("x-billing-status", billing.status.to_string());
    if let Some(cost) = billing.cost {
        put("x-billing-cost", cost.to_wire());
    }
    if let Some(balance_after) = billing.balance_after {
        put("x-billing-balance-after", balance_after.to_wire());
    }
    if let Some(total_spent) = billing.total_spent {
        put("x-billing-total-spent", total_spent.to_wire());
    }
    headers
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// OpenAI-compatible chat completions, streamed (`chat.completion.chunk` events then `data: [DONE]`) or
/// not (`chat.completion`). `finish_reason` is `length` when `max_tokens` was reached or credit ran out
/// mid-generation, else `stop`. Non-streamed answers carry billing headers (`x-billing-status`,
/// `x-billing-cost`, `x-billing-balance-after`, `x-billing-total-spent`); streams carry the same figures
/// as a `billing` object on their last chunk. Optional `x-workspace-id` / `x-session-id` headers are
/// recorded on the usage record; `Idempotency-Key` makes a retry safe. Unsupported OpenAI fields
/// (temperature, tools, ...) are accepted and ignored.
#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    tag = "openai",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: a key already used is refused with 409"),
        ("x-workspace-id" = Option<String>, Header, description = "Recorded on the usage record"),
        ("x-session-id" = Option<String>, Header, description = "Recorded on the usage record"),
    ),
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, description = "A `chat.completion` (JSON), or `chat.completion.chunk` events ending with `data: [DONE]` when `stream` is true", content(
            (ChatCompletion = "application/json"),
            (ChatCompletionChunk = "text/event-stream"),
        ), headers(
            ("x-billing-status" = String, description = "`settled` or `pending` (standard keys, non-streamed)"),
            ("x-billing-cost" = String, description = "Total cost, exact decimal USD"),
            ("x-billing-balance-after" = String, description = "Balance after the charge, exact decimal USD"),
            ("x-billing-total-spent" = String, description = "Total spent after the charge, exact decimal USD"),
        )),
        OpenAiErrors,
    )
)]
#[tracing::instrument(skip_all)]
pub async fn chat_completions(
    State(state): State<AppState>,
    OpenAiCallContext(context): OpenAiCallContext,
    headers: HeaderMap,
    OpenAiJson(body): OpenAiJson<ChatCompletionRequest>,
) -> Result<Response, OpenAiError> {
    if body.n.is_some_and(|n| n != 1) {
        return Err(ApiError::InvalidRequest("only `n` = 1 is supported".into()).into());
    }
    let requested_model = body.model.clone().unwrap_or_default();
    let include_usage = body
        .stream_options
        .as_ref()
        .and_then(|options| options.include_usage)
        .unwrap_or(false);
    let request = pb::ExecuteRequest {
        prompt: None,
        messages: body
            .messages
            .into_iter()
            .map(ChatCompletionMessage::into_wire)
            .collect::<Result<_, _>>()?,
        model: body.model,
        max_tokens: body.max_completion_tokens.or(body.max_tokens),
        workspace_id: header_text(&headers, WORKSPACE_HEADER)?.unwrap_or_default(),
        session_id: header_text(&headers, SESSION_HEADER)?.unwrap_or_default(),
        idempotency_key: header_text(&headers, IDEMPOTENCY_KEY_HEADER)?,
        endpoint: ENDPOINT.to_string(),
    };
    if body.stream.unwrap_or(false) {
        let events = execution::start_stream(&state, &context, request).await?;
        let chunks = ChunkWriter {
            id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
            created: unix_now(),
            model: requested_model,
            include_usage,
        };
        Ok(Sse::new(chunks.events(events))
            .keep_alive(KeepAlive::default())
            .into_response())
    } else {
        let result = ExecuteResult::try_from(execution::run(&state, &context, request).await?)?;
        Ok((billing_headers(&result.summary), Json(completion(result))).into_response())
    }
}

fn completion(result: ExecuteResult) -> ChatCompletion {
    let summary = result.summary;
    ChatCompletion {
        id: format!("chatcmpl-{}", summary.execution_id),
        object: "chat.completion",
        created: unix_now(),
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content: result.output,
                refusal: None,
            },
            finish_reason: finish_reason(summary.finish_reason),
        }],
        usage: completion_usage(&summary),
        model: summary.model,
    }
}

/// Turns execution events into OpenAI chunks: a first chunk with the role, one per delta, a chunk with
/// the finish reason, with `include_usage` a usage chunk, then `[DONE]`.
#[derive(Clone)]
struct ChunkWriter {
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
}

impl ChunkWriter {
    fn chunk(&self, choices: Vec<ChunkChoice>) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model.clone(),
            choices,
            usage: self.include_usage.then_some(None),
            billing: None,
        }
    }

    fn content(
        &self,
        delta: ChunkDelta,
        finish_reason: Option<&'static str>,
    ) -> ChatCompletionChunk {
        self.chunk(vec![ChunkChoice {
            index: 0,
            delta,
            finish_reason,
        }])
    }

    fn last_chunks(&self, summary: &ExecutionSummary) -> Vec<ChatCompletionChunk> {
        let mut finish = self.content(
            ChunkDelta::default(),
            Some(finish_reason(summary.finish_reason)),
        );
        finish.model = summary.model.clone();
        let mut chunks = vec![finish];
        if self.include_usage {
            let mut usage = self.chunk(Vec::new());
            usage.model = summary.model.clone();
            usage.usage = Some(Some(completion_usage(summary)));
            chunks.push(usage);
        }
        if let Some(last) = chunks.last_mut() {
            last.billing = chunk_billing(summary);
        }
        chunks
    }

    fn events(
        self,
        events: impl Stream<Item = ExecutionEvent> + Send + 'static,
    ) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
        let role = self.content(
            ChunkDelta {
                role: Some("assistant"),
                content: Some(String::new()),
            },
            None,
        );
        let first = futures::stream::iter([Ok(data(&role))]);
        let rest = events.flat_map(move |step| {
            let out = match step {
                ExecutionEvent::Delta(text) => {
                    vec![data(&self.content(
                        ChunkDelta {
                            role: None,
                            content: Some(text),
                        },
                        None,
                    ))]
                }
                ExecutionEvent::Done(done) => match ExecutionSummary::try_from(*done) {
                    Ok(summary) => {
                        let mut out: Vec<Event> =
                            self.last_chunks(&summary).iter().map(data).collect();
                        out.push(Event::default().data("[DONE]"));
                        out
                    }
                    Err(error) => vec![data(&OpenAiError(error).body().1)],
                },
                ExecutionEvent::Failed(error) => vec![data(&OpenAiError(error).body().1)],
            };
            futures::stream::iter(out.into_iter().map(Ok))
        });
        first.chain(rest)
    }
}

/// An unnamed SSE event (OpenAI streams use `data:` lines only).
fn data(payload: &impl Serialize) -> Event {
    match serde_json::to_string(payload) {
        Ok(json) => Event::default().data(json),
        Err(error) => Event::default().data(
            serde_json::json!({"error": {"message": error.to_string(), "type": "api_error", "param": null, "code": "internal_error"}})
                .to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::json::{PendingStatus, Usage};

    fn summary(billing: Option<Billing>, finish: FinishReason) -> ExecutionSummary {
        ExecutionSummary {
            usage: Usage {
                input_tokens: 6548,
                output_tokens: 108,
                total_tokens: 6656,
                input_cost: Some("0.09822".parse().unwrap()),
                output_cost: Some("0.00486".parse().unwrap()),
                total_cost: Some("0.10308".parse().unwrap()),
            },
            billing,
            finish_reason: finish,
            execution_id: "exec-1".into(),
            model: "mock".into(),
        }
    }

    fn settled() -> Option<Billing> {
        Some(Billing::Settled {
            balance_after: "9.89692".parse().unwrap(),
            total_spent: "0.10308".parse().unwrap(),
        })
    }

    #[test]
    fn a_completion_has_openai_fields_and_usage() {
        let result = ExecuteResult {
            output: "hi".into(),
            summary: summary(settled(), FinishReason::Stop),
        };
        let json = serde_json::to_value(completion(result)).unwrap();
        assert_eq!(json["object"], "chat.completion");
        assert_eq!(json["id"], "chatcmpl-exec-1");
        assert_eq!(json["choices"][0]["message"]["role"], "assistant");
        assert_eq!(json["choices"][0]["message"]["content"], "hi");
        assert_eq!(json["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            json["usage"],
            serde_json::json!({"prompt_tokens": 6548, "completion_tokens": 108, "total_tokens": 6656})
        );
    }

    #[test]
    fn credit_exhaustion_and_length_finish_with_length() {
        assert_eq!(finish_reason(FinishReason::CreditExhausted), "length");
        assert_eq!(finish_reason(FinishReason::Length), "length");
        assert_eq!(finish_reason(FinishReason::Stop), "stop");
    }

    #[test]
    fn billing_headers_are_exact_and_absent_for_internal_keys() {
        let headers = billing_headers(&summary(settled(), FinishReason::Stop));
        assert_eq!(headers["x-billing-status"], "settled");
        assert_eq!(headers["x-billing-cost"], "0.10308");
        assert_eq!(headers["x-billing-balance-after"], "9.89692");
        assert_eq!(headers["x-billing-total-spent"], "0.10308");
        assert!(billing_headers(&summary(None, FinishReason::Stop)).is_empty());
        let pending = billing_headers(&summary(
            Some(Billing::Pending {
                status: PendingStatus::Pending,
            }),
            FinishReason::Stop,
        ));
        assert_eq!(pending["x-billing-status"], "pending");
        assert!(pending.get("x-billing-balance-after").is_none());
    }

    #[test]
    fn the_last_chunk_carries_usage_and_billing() {
        let writer = ChunkWriter {
            id: "chatcmpl-1".into(),
            created: 1,
            model: "m".into(),
            include_usage: true,
        };
        let chunks = writer.last_chunks(&summary(settled(), FinishReason::CreditExhausted));
        let json: Vec<_> = chunks
            .iter()
            .map(|c| serde_json::to_value(c).unwrap())
            .collect();
        assert_eq!(json.len(), 2);
        assert_eq!(json[0]["choices"][0]["finish_reason"], "length");
        assert_eq!(json[0]["usage"], serde_json::Value::Null);
        assert!(json[0].get("billing").is_none());
        assert_eq!(json[1]["choices"], serde_json::json!([]));
        assert_eq!(json[1]["usage"]["total_tokens"], 6656);
        assert_eq!(
            serde_json::to_string(&json[1]["billing"]).unwrap(),
            r#"{"balance_after":9.89692,"cost":0.10308,"status":"settled","total_spent":0.10308}"#
        );

        let plain = ChunkWriter {
            include_usage: false,
            ..writer
        };
        let chunks = plain.last_chunks(&summary(None, FinishReason::Stop));
        let json = serde_json::to_value(&chunks[0]).unwrap();
        assert_eq!(chunks.len(), 1);
        assert!(json.get("usage").is_none());
        assert!(json.get("billing").is_none());
    }

    #[test]
    fn text_parts_are_joined_and_other_parts_refused() {
        let message: ChatCompletionMessage = serde_json::from_value(serde_json::json!({
            "role": "developer",
            "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
        }))
        .unwrap();
        let wire = message.into_wire().unwrap();
        assert_eq!(
            (wire.role.as_str(), wire.content.as_str()),
            ("system", "ab")
        );
        let image: ChatCompletionMessage = serde_json::from_value(serde_json::json!({
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]
        }))
        .unwrap();
        assert!(image.into_wire().is_err());
    }
}
