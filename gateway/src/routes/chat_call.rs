//! A chat completion run through executor-svc, shared by the three model APIs that speak it:
//! `/v1/chat/completions` (as the client wrote it), `/v1/responses` and `/v1/messages` (translated). Each
//! route only turns its own shape into a chat request and the answer back into its shape.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use proto::executor::v1::{ExecuteRequest, RateLimits, ResponseShape};

use crate::error::{ApiError, Service};
use crate::execution;
use crate::extract::{CallContext, end_user_id, header_text};
use crate::model_api::billing::{billing_headers, chunk_billing, rate_limit_headers};
use crate::model_api::execution_summary::ExecutionSummary;
use crate::routes::execute::IDEMPOTENCY_KEY_HEADER;
use crate::routes::openai::{SESSION_HEADER, WORKSPACE_HEADER};
use crate::state::AppState;

/// Names the hosted tools a translated request offered that the platform could not carry (QUICK_START.md §6).
pub const DROPPED_TOOLS_HEADER: &str = "x-dropped-tools";

/// `x-dropped-tools: a, b` on `response` when a translation dropped tools.
pub fn dropped_tools_header(dropped: &[String], response: &mut Response) {
    if dropped.is_empty() {
        return;
    }
    // Tool names come from the client's JSON: one that is not a valid header value is left out.
    if let Ok(value) = HeaderValue::from_str(&dropped.join(", ")) {
        response.headers_mut().insert(DROPPED_TOOLS_HEADER, value);
    }
}

/// The execution of `chat_json` through `endpoint` (recorded on the usage record), with the optional
/// `x-workspace-id`, `x-session-id`, `x-end-user-id` and `Idempotency-Key` headers; `end_user` is the end
/// user the client's body names (see [`end_user_id`]).
pub fn request(
    chat_json: String,
    headers: &HeaderMap,
    endpoint: &str,
    end_user: Option<&str>,
) -> Result<ExecuteRequest, ApiError> {
    Ok(ExecuteRequest {
        end_user_id: end_user_id(headers, end_user)?,
        chat_request_json: Some(chat_json),
        response_shape: ResponseShape::ChatCompletion.into(),
        workspace_id: header_text(headers, WORKSPACE_HEADER)?.unwrap_or_default(),
        session_id: header_text(headers, SESSION_HEADER)?.unwrap_or_default(),
        idempotency_key: header_text(headers, IDEMPOTENCY_KEY_HEADER)?,
        endpoint: endpoint.to_string(),
        ..Default::default()
    })
}

/// A non-streamed execution's end: the provider's completion JSON (or, served natively by an Anthropic
/// provider, its `message` JSON), the summary, and the headers to answer with (billing figures, the key's
/// rate limits, `Content-Type: application/json`).
pub struct Finished {
    pub completion: String,
    /// Set instead of `completion` when an Anthropic provider answered a `/v1/messages` call natively.
    pub message: Option<String>,
    pub summary: ExecutionSummary,
    pub headers: HeaderMap,
}

/// Runs the execution to its end.
pub async fn run(
    state: &AppState,
    context: &CallContext,
    request: ExecuteRequest,
) -> Result<Finished, ApiError> {
    let mut response = execution::run(state, context, request).await?;
    let completion = std::mem::take(&mut response.chat_completion_json);
    let message = Some(std::mem::take(&mut response.message_json)).filter(|json| !json.is_empty());
    if completion.is_empty() && message.is_none() {
        return Err(ApiError::contract(
            Service::Executor,
            "a chat completion without its JSON",
        ));
    }
    let limits = response.rate_limits.take();
    let summary = ExecutionSummary::try_from(response)?;
    let billing = chunk_billing(
        summary.usage.total_cost,
        summary.billing.as_ref(),
        summary.finish_reason,
    );
    let mut headers = billing_headers(billing);
    rate_limit_headers(limits.as_ref(), &mut headers);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(Finished {
        completion,
        message,
        summary,
        headers,
    })
}

/// The streamed answer: `events` as server-sent events, with the key's rate-limit headers.
pub fn sse(
    limits: Option<&RateLimits>,
    events: impl Stream<Item = Result<Event, std::convert::Infallible>> + Send + 'static,
) -> Response {
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response();
    rate_limit_headers(limits, response.headers_mut());
    response
}
