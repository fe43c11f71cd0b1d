//! `POST /execute`: runs a prompt (or messages) through executor-svc, answered as JSON or, with
//! `"stream": true`, as server-sent events.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use proto::executor::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::execution::{self, ExecutionEvent};
use crate::extract::{CallContext, JsonBody, end_user_id, header_text, optional_objects};
use crate::openapi::ExecutionErrors;
use crate::routes::execution_summary::ExecutionSummary;
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
    let request = pb::ExecuteRequest {
        prompt: body.prompt,
        messages: body
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|message| pb::ChatMessage {
                role: message.role,
                content: message.content,
            })
            .collect(),
        model: body.model,
        max_tokens: body.max_tokens,
        workspace_id: body.workspace_id.unwrap_or_default(),
        session_id: body.session_id.unwrap_or_default(),
        idempotency_key: header_text(&headers, IDEMPOTENCY_KEY_HEADER)?,
        endpoint: ENDPOINT.to_string(),
        chat_request_json: None,
        messages_request_json: None,
        anthropic_headers: Default::default(),
        end_user_id: end_user_id(&headers, None)?,
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
