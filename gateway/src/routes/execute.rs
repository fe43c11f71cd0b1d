//! `POST /execute`: runs a prompt (or messages) through executor-svc, as the chat completion request it
//! stands for, answered as JSON or, with `"stream": true`, as server-sent events.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use proto::executor::v1 as pb;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::execution::{self, ExecutionEvent};
use crate::extract::{CallContext, JsonBody, end_user_id, header_text, optional_objects};
use crate::model_api::execution_summary::ExecutionSummary;
use crate::openapi::ExecutionErrors;
use crate::state::AppState;

/// The header that makes a retry safe: a key already used is refused with 409 and never charged twice.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// The endpoint recorded on usage records.
const ENDPOINT: &str = "/execute";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"prompt": "Summarise this contract.", "model": "gpt-4o-mini", "maxTokens": 256}))]
pub struct ExecuteBody {
    /// A single user prompt. Give exactly one of `prompt` and `messages`.
    pub prompt: Option<String>,
    /// A conversation.
    #[serde(default, deserialize_with = "optional_objects")]
    pub messages: Option<Vec<ChatMessage>>,
    /// Default: the executor's configured model.
    pub model: Option<String>,
    /// Upper bound on output tokens; default and ceiling: the executor's maximum.
    pub max_tokens: Option<u32>,
    /// Recorded on the usage record, for `/billing/workspaces`.
    pub workspace_id: Option<String>,
    /// Recorded on the usage record.
    pub session_id: Option<String>,
    /// Answer with server-sent events (default false).
    #[serde(default)]
    pub stream: bool,
}

/// An output piece of a streamed execution.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamDelta {
    pub delta: String,
}

/// The `data` of a streamed `/execute` event: `delta` events carry a [`StreamDelta`], the `result` event
/// an [`ExecutionSummary`], an `error` event an [`ErrorBody`].
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ExecuteStreamEvent {
    Delta(StreamDelta),
    Result(ExecutionSummary),
    Error(ErrorBody),
}

/// A finished execution and its text.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"output": "...", "usage": {"inputTokens": 6548, "outputTokens": 108, "totalTokens": 6656, "inputCost": 0.09822, "outputCost": 0.00486, "totalCost": 0.10308}, "billing": {"balanceAfter": 9.89692, "totalSpent": 0.10308}, "finishReason": "stop", "executionId": "8c1f6c2e-3f55-4d7b-9a43-0d7f1f1b5e11", "model": "gpt-4o-mini"}))]
pub struct ExecuteResult {
    pub output: String,
    #[serde(flatten)]
    pub summary: ExecutionSummary,
}

impl TryFrom<pb::ExecuteResponse> for ExecuteResult {
    type Error = ApiError;

    fn try_from(mut response: pb::ExecuteResponse) -> Result<ExecuteResult, ApiError> {
        let output = std::mem::take(&mut response.output);
        Ok(ExecuteResult {
            output,
            summary: response.try_into()?,
        })
    }
}

/// Runs a prompt, billed per token.
///
/// Without `stream` the answer is one JSON object. With `"stream": true` it is `text/event-stream`:
/// `event: delta` (`{"delta": "..."}`, in order), then one `event: result` (usage, billing,
/// finishReason, executionId, model), then `event: done` with data `[DONE]`. A failure after the stream
/// started is an `event: error` carrying the usual error body, and nothing follows. Refusals before any
/// output (401, 402, ...) are plain JSON errors, never a 200 stream.
///
/// `billing` is absent for internal keys; `{"status": "pending"}` when billing-svc was unreachable at
/// the end and the settlement was spooled (it lands exactly once; see `/billing/account`).
#[utoipa::path(
    post,
    path = "/execute",
    tag = "execution",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: a key already used is refused with 409 and never charged twice")),
    request_body = ExecuteBody,
    responses(
        (status = 200, description = "The result (JSON), or the event stream when `stream` is true", content(
            (ExecuteResult = "application/json"),
            (ExecuteStreamEvent = "text/event-stream"),
        )),
        ExecutionErrors,
    )
)]
#[tracing::instrument(skip_all)]
pub async fn execute(
    State(state): State<AppState>,
    context: CallContext,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ExecuteBody>,
) -> Result<Response, ApiError> {
    let stream = body.stream;
    let idempotency_key = header_text(&headers, IDEMPOTENCY_KEY_HEADER)?;
    let end_user_id = end_user_id(&headers, None)?;
    let chat = chat_request(body.prompt, body.messages, body.model, body.max_tokens)?;
    let request = pb::ExecuteRequest {
        chat_request_json: Some(chat.to_string()),
        response_shape: pb::ResponseShape::Text.into(),
        workspace_id: body.workspace_id.unwrap_or_default(),
        session_id: body.session_id.unwrap_or_default(),
        idempotency_key,
        endpoint: ENDPOINT.to_string(),
        messages_request_json: None,
        anthropic_headers: Default::default(),
        end_user_id,
    };
    if stream {
        // `/execute` is the platform's own shape: OpenAI's rate-limit headers are for `/v1`.
        let (_, events) = execution::start_stream(&state, &context, request).await?;
        Ok(Sse::new(sse_events(events))
            .keep_alive(KeepAlive::default())
            .into_response())
    } else {
        let response = execution::run(&state, &context, request).await?;
        Ok(Json(ExecuteResult::try_from(response)?).into_response())
    }
}

/// The chat completion request an `/execute` body stands for: the prompt as one user message, or the
/// messages as they are; the model when one is named (executor-svc fills in its default); the output limit
/// as `max_completion_tokens`. Answered as text ([`pb::ResponseShape::Text`]), it is bounded by
/// executor-svc's configured maximum, which is also its limit when none is given.
fn chat_request(
    prompt: Option<String>,
    messages: Option<Vec<ChatMessage>>,
    model: Option<String>,
    max_tokens: Option<u32>,
) -> Result<Value, ApiError> {
    let invalid = |message: &str| ApiError::InvalidRequest(message.to_string());
    let messages = messages.unwrap_or_default();
    let messages: Vec<(&'static str, String)> = match (prompt, messages.is_empty()) {
        (Some(prompt), true) => vec![("user", prompt)],
        (None, false) => messages
            .into_iter()
            .map(|message| {
                let role = match message.role.as_str() {
                    "system" => "system",
                    "user" => "user",
                    "assistant" => "assistant",
                    _ => {
                        return Err(invalid(
                            "message role must be \"system\", \"user\" or \"assistant\"",
                        ));
                    }
                };
                Ok((role, message.content))
            })
            .collect::<Result<_, _>>()?,
        (Some(_), false) => return Err(invalid("give either `prompt` or `messages`, not both")),
        (None, true) => return Err(invalid("`prompt` or `messages` is required")),
    };
    if messages
        .iter()
        .all(|(_, content)| content.trim().is_empty())
    {
        return Err(invalid("the prompt is empty"));
    }
    let mut chat = Map::new();
    // A blank model means the default one, which executor-svc fills in when `model` is absent.
    if let Some(model) = model
        .as_deref()
        .map(str::trim)
        .filter(|model| !model.is_empty())
    {
        chat.insert("model".into(), Value::from(model));
    }
    let messages = messages
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    chat.insert("messages".into(), Value::Array(messages));
    match max_tokens {
        None => {}
        Some(0) => return Err(invalid("`max_tokens` must be at least 1")),
        Some(limit) => {
            chat.insert("max_completion_tokens".into(), Value::from(limit));
        }
    }
    Ok(Value::Object(chat))
}

fn event(name: &'static str, data: &ExecuteStreamEvent) -> Event {
    match serde_json::to_string(data) {
        Ok(json) => Event::default().event(name).data(json),
        Err(error) => Event::default().event("error").data(
            serde_json::json!({"error": "Internal Error", "code": "internal_error", "details": {"message": error.to_string()}})
                .to_string(),
        ),
    }
}

fn sse_events(
    events: impl Stream<Item = ExecutionEvent> + Send + 'static,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    events.flat_map(|step| {
        let out = match step {
            ExecutionEvent::Delta(delta) => {
                vec![event(
                    "delta",
                    &ExecuteStreamEvent::Delta(StreamDelta { delta }),
                )]
            }
            ExecutionEvent::Done(done) => match ExecutionSummary::try_from(*done) {
                Ok(summary) => vec![
                    event("result", &ExecuteStreamEvent::Result(summary)),
                    Event::default().event("done").data("[DONE]"),
                ],
                Err(error) => vec![event("error", &ExecuteStreamEvent::Error(error.body().1))],
            },
            ExecutionEvent::Failed(error) => {
                vec![event("error", &ExecuteStreamEvent::Error(error.body().1))]
            }
            // Provider chunks belong to chat requests given as JSON; `/execute` never sends one.
            ExecutionEvent::Chunk(_) | ExecutionEvent::Event(_) => Vec::new(),
        };
        futures::stream::iter(out.into_iter().map(Ok))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn seed_response(billing: Option<pb::Billing>) -> pb::ExecuteResponse {
        pb::ExecuteResponse {
            execution_id: "exec-1".into(),
            model: "mock".into(),
            output: "...".into(),
            usage: Some(pb::Usage {
                input_tokens: 6548,
                output_tokens: 108,
                total_tokens: 6656,
                input_cost: Some("0.09822".into()),
                output_cost: Some("0.00486".into()),
                total_cost: Some("0.10308".into()),
            }),
            billing,
            finish_reason: pb::FinishReason::Stop.into(),
            ..Default::default()
        }
    }

    fn message(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn a_prompt_becomes_one_user_message_and_the_limit_max_completion_tokens() {
        let chat = chat_request(
            Some("Summarise this contract.".into()),
            None,
            Some(" gpt-4o-mini ".into()),
            Some(256),
        )
        .unwrap();
        assert_eq!(
            chat,
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Summarise this contract."}],
                "max_completion_tokens": 256})
        );
    }

    #[test]
    fn messages_are_kept_in_order_and_a_blank_model_is_left_to_the_executor() {
        let chat = chat_request(
            None,
            Some(vec![message("system", "Be brief."), message("user", "Hi")]),
            Some("  ".into()),
            None,
        )
        .unwrap();
        assert_eq!(
            chat,
            json!({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]})
        );
    }

    #[test]
    fn invalid_bodies_are_refused_with_a_reason() {
        // Prompt, messages, max tokens, and the reason given.
        type Case = (
            Option<&'static str>,
            Option<Vec<ChatMessage>>,
            Option<u32>,
            &'static str,
        );
        let cases: Vec<Case> = vec![
            (None, None, None, "`prompt` or `messages` is required"),
            (
                None,
                Some(Vec::new()),
                None,
                "`prompt` or `messages` is required",
            ),
            (
                Some("hi"),
                Some(vec![message("user", "hi")]),
                None,
                "give either `prompt` or `messages`, not both",
            ),
            (
                None,
                Some(vec![message("tool", "hi")]),
                None,
                "message role must be \"system\", \"user\" or \"assistant\"",
            ),
            (Some(" \n\t"), None, None, "the prompt is empty"),
            (Some("hi"), None, Some(0), "`max_tokens` must be at least 1"),
        ];
        for (prompt, messages, max_tokens, reason) in cases {
            let result = chat_request(prompt.map(str::to_string), messages, None, max_tokens);
            assert!(
                matches!(&result, Err(ApiError::InvalidRequest(text)) if text == reason),
                "{reason}: {result:?}"
            );
        }
    }

    #[test]
    fn a_standard_execution_comes_out_as_the_design_example() {
        let response = seed_response(Some(pb::Billing {
            status: pb::BillingStatus::Settled.into(),
            balance_after: Some("9.896920000".into()),
            total_spent: Some("0.10308".into()),
        }));
        let json = serde_json::to_string(&ExecuteResult::try_from(response).unwrap()).unwrap();
        assert!(
            json.starts_with(
                r#"{"output":"...","usage":{"inputTokens":6548,"outputTokens":108,"totalTokens":6656,"inputCost":0.09822,"outputCost":0.00486,"totalCost":0.10308},"billing":{"balanceAfter":9.89692,"totalSpent":0.10308},"#
            ),
            "{json}"
        );
    }

    #[test]
    fn an_internal_execution_has_no_billing() {
        let json =
            serde_json::to_value(ExecuteResult::try_from(seed_response(None)).unwrap()).unwrap();
        assert!(json.get("billing").is_none());
        assert_eq!(json["usage"]["totalCost"].to_string(), "0.10308");
    }

    #[test]
    fn a_spooled_settlement_says_pending() {
        let response = seed_response(Some(pb::Billing {
            status: pb::BillingStatus::Pending.into(),
            balance_after: None,
            total_spent: None,
        }));
        let json = serde_json::to_value(ExecuteResult::try_from(response).unwrap()).unwrap();
        assert_eq!(json["billing"], serde_json::json!({"status": "pending"}));
    }

    #[test]
    fn a_settled_billing_without_figures_is_a_contract_violation() {
        let response = seed_response(Some(pb::Billing {
            status: pb::BillingStatus::Settled.into(),
            balance_after: None,
            total_spent: Some("1".into()),
        }));
        assert!(matches!(
            ExecuteResult::try_from(response),
            Err(ApiError::ContractViolation { .. })
        ));
    }
}
