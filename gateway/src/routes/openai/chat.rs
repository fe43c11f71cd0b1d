//! `POST /v1/chat/completions`: the client's body goes to executor-svc as it is (`chat_request_json`),
//! and the provider's answer comes back as it is: the assembled `chat.completion`, or its chunks. The
//! gateway reads only `stream` and `stream_options.include_usage`, to know how to answer.

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::OpenAiJson;
use crate::error::ApiError;
use crate::execution::{self, ExecutionEvent};
use crate::extract::OpenAiCallContext;
use crate::model_api::billing::{ChunkBilling, chunk_billing};
use crate::model_api::execution_summary::ExecutionSummary;
use crate::model_api::openai_error::OpenAiError;
use crate::openapi::OpenAiErrors;
use crate::routes::chat_call;
use crate::state::AppState;

/// The endpoint recorded on usage records.
const ENDPOINT: &str = "/v1/chat/completions";

/// The fields of an OpenAI chat completion request the platform reads or controls. Every other field
/// (`tools`, `tool_choice`, `response_format`, `temperature`, `n`, `logprobs`, content parts, unknown and
/// provider-specific ones) reaches the provider unchanged.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatCompletionRequest {
    /// Default: the executor's configured model.
    pub model: Option<String>,
    /// OpenAI messages, content parts and tool calls included, passed on unchanged.
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<Value>,
    /// Upper bound on output tokens per choice (legacy name); passed on unchanged.
    pub max_tokens: Option<u32>,
    /// Upper bound on output tokens per choice; wins over `max_tokens`; passed on unchanged.
    pub max_completion_tokens: Option<u32>,
    /// Number of choices (1 to 128).
    pub n: Option<u32>,
    /// Answer with server-sent `chat.completion.chunk` events.
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
}

/// What the gateway reads of a request to choose how to answer.
#[derive(Debug, Default, Deserialize)]
struct Delivery {
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    /// Recorded as the call's end user.
    #[serde(default)]
    user: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct StreamOptions {
    /// Send a last chunk with `usage` (and `usage: null` on the others).
    pub include_usage: Option<bool>,
}

/// A `chat.completion` object as the provider sent it (documented fields; every other field it sends is
/// kept).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatCompletion {
    pub id: String,
    /// Always `chat.completion`.
    pub object: String,
    pub created: u64,
    pub model: String,
    /// Every choice: `{index, message: {role, content, refusal, tool_calls?}, logprobs, finish_reason}`.
    #[schema(value_type = Vec<Object>)]
    pub choices: Vec<Value>,
    /// The provider's usage.
    #[schema(value_type = Object)]
    pub usage: Value,
    pub system_fingerprint: Option<String>,
}

/// A `chat.completion.chunk` as the provider sent it; the stream's last chunk adds `billing`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatCompletionChunk {
    pub id: String,
    /// Always `chat.completion.chunk`.
    pub object: String,
    pub created: u64,
    pub model: String,
    #[schema(value_type = Vec<Object>)]
    pub choices: Vec<Value>,
    /// With `stream_options.include_usage`: null on every chunk but the last, which has no choices.
    #[schema(value_type = Option<Object>)]
    pub usage: Option<Value>,
    /// On the last chunk only (standard keys).
    pub billing: Option<ChunkBilling>,
}

/// OpenAI-compatible chat completions, streamed (the provider's `chat.completion.chunk` events, then
/// `data: [DONE]`) or not (the provider's `chat.completion`, assembled from its stream: every choice, tool
/// call, refusal and logprob it sent). Every request field reaches the provider unchanged except `stream`
/// and `stream_options.include_usage`, which the platform sets upstream to meter the answer.
///
/// A call is never cut short unless credit or a cap runs out: then its unfinished choices end with
/// `finish_reason: "length"` and the billing figures say `credit_exhausted`. Non-streamed answers carry
/// billing headers (`x-billing-status`, `x-billing-cost`, `x-billing-balance-after`,
/// `x-billing-total-spent`, `x-billing-cut-off`); streams carry the same figures as a `billing` object on
/// their last chunk (the usage chunk with `include_usage`, else a last chunk with no choices). Provider
/// errors keep their status, message and `Retry-After` (5xx become 502); an error inside the provider's
/// stream ends the stream with a `data: {"error": ...}` event. Optional `x-workspace-id` / `x-session-id`
/// headers are recorded on the usage record; `Idempotency-Key` makes a retry safe.
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
            ("x-billing-cut-off" = String, description = "`credit_exhausted` when credit or a cap ended the answer early"),
        )),
        OpenAiErrors,
    )
)]
#[tracing::instrument(skip_all)]
pub async fn chat_completions(
    State(state): State<AppState>,
    OpenAiCallContext(context): OpenAiCallContext,
    headers: HeaderMap,
    OpenAiJson(body): OpenAiJson<Box<RawValue>>,
) -> Result<Response, OpenAiError> {
    let delivery: Delivery = serde_json::from_str(body.get()).map_err(|error| {
        ApiError::InvalidRequest(format!("the chat completion request is invalid: {error}"))
    })?;
    let request = chat_call::request(
        body.get().to_string(),
        &headers,
        ENDPOINT,
        delivery.user.as_deref(),
    )?;
    if delivery.stream.unwrap_or(false) {
        let include_usage = delivery
            .stream_options
            .and_then(|options| options.include_usage)
            .unwrap_or(false);
        let (limits, events) = execution::start_stream(&state, &context, request).await?;
        Ok(chat_call::sse(
            limits.as_ref(),
            chunk_events(events, include_usage),
        ))
    } else {
        let finished = chat_call::run(&state, &context, request).await?;
        Ok((finished.headers, finished.completion).into_response())
    }
}

/// The stream's end: the provider's usage chunk (with `include_usage`) or a chunk without choices,
/// carrying the billing figures; nothing when there is nothing to say (internal keys without usage).
fn last_chunk(usage_chunk: &str, summary: &ExecutionSummary, include_usage: bool) -> Option<Value> {
    let mut chunk = match serde_json::from_str::<Value>(usage_chunk) {
        Ok(Value::Object(chunk)) => chunk,
        // The provider sent no usage chunk: one in its shape from the settled figures.
        _ => {
            let mut chunk = Map::new();
            chunk.insert(
                "id".into(),
                Value::from(format!("chatcmpl-{}", summary.execution_id)),
            );
            chunk.insert("object".into(), Value::from("chat.completion.chunk"));
            chunk.insert("created".into(), Value::from(unix_now()));
            chunk.insert("model".into(), Value::from(summary.model.clone()));
            chunk.insert("choices".into(), json!([]));
            chunk.insert(
                "usage".into(),
                json!({
                    "prompt_tokens": summary.usage.input_tokens,
                    "completion_tokens": summary.usage.output_tokens,
                    "total_tokens": summary.usage.total_tokens,
                }),
            );
            chunk
        }
    };
    if !include_usage {
        chunk.remove("usage");
    }
    let billing = chunk_billing(
        summary.usage.total_cost,
        summary.billing.as_ref(),
        summary.finish_reason,
    );
    match billing {
        Some(billing) => {
            chunk.insert(
                "billing".into(),
                serde_json::to_value(billing).unwrap_or(Value::Null),
            );
        }
        None if !include_usage => return None,
        None => {}
    }
    Some(Value::Object(chunk))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The provider's chunks as they come, then the last chunk and `[DONE]`; a failure ends the stream with
/// an error event in OpenAI's shape.
fn chunk_events(
    events: impl Stream<Item = ExecutionEvent> + Send + 'static,
    include_usage: bool,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    events.flat_map(move |step| {
        let out = match step {
            ExecutionEvent::Chunk(json) => vec![Event::default().data(json)],
            // Text deltas belong to `/execute`'s shape; a chat stream never carries them.
            // Only `/v1/messages` asks for Anthropic events.
            ExecutionEvent::Delta(_) | ExecutionEvent::Event(_) => Vec::new(),
            ExecutionEvent::Done(mut done) => {
                let usage_chunk = std::mem::take(&mut done.usage_chunk_json);
                match ExecutionSummary::try_from(*done) {
                    Ok(summary) => {
                        let mut out: Vec<Event> = last_chunk(&usage_chunk, &summary, include_usage)
                            .iter()
                            .map(data)
                            .collect();
                        out.push(Event::default().data("[DONE]"));
                        out
                    }
                    Err(error) => vec![data(&OpenAiError(error).body().2)],
                }
            }
            ExecutionEvent::Failed(error) => vec![data(&OpenAiError(error).body().2)],
        };
        futures::stream::iter(out.into_iter().map(Ok))
    })
}

/// An unnamed SSE event (OpenAI streams use `data:` lines only).
fn data(payload: &impl Serialize) -> Event {
    match serde_json::to_string(payload) {
        Ok(json) => Event::default().data(json),
        Err(error) => Event::default().data(
            json!({"error": {"message": error.to_string(), "type": "api_error", "param": null, "code": "internal_error"}})
                .to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::model_api::execution_summary::{Billing, Usage};
    use proto::ending::FinishReason;

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

    const USAGE_CHUNK: &str = r#"{"id":"chatcmpl-p","object":"chat.completion.chunk","created":5,"model":"m-1","choices":[],"usage":{"prompt_tokens":6548,"completion_tokens":108,"total_tokens":6656,"prompt_tokens_details":{"cached_tokens":0}}}"#;

    #[test]
    fn the_providers_usage_chunk_carries_the_billing_figures() {
        let last = last_chunk(USAGE_CHUNK, &summary(settled(), FinishReason::Stop), true).unwrap();
        assert_eq!(last["id"], "chatcmpl-p");
        assert_eq!(last["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
        assert_eq!(
            serde_json::to_string(&last["billing"]).unwrap(),
            r#"{"balance_after":9.89692,"cost":0.10308,"status":"settled","total_spent":0.10308}"#
        );
    }

    #[test]
    fn without_include_usage_the_last_chunk_has_billing_only() {
        let last = last_chunk(
            USAGE_CHUNK,
            &summary(settled(), FinishReason::CreditExhausted),
            false,
        )
        .unwrap();
        assert!(last.get("usage").is_none());
        assert_eq!(last["choices"], json!([]));
        assert_eq!(last["billing"]["cut_off"], "credit_exhausted");
        assert!(last_chunk(USAGE_CHUNK, &summary(None, FinishReason::Stop), false).is_none());
        let internal = last_chunk("", &summary(None, FinishReason::Stop), true).unwrap();
        assert_eq!(internal["usage"]["total_tokens"], 6656);
        assert!(internal.get("billing").is_none());
    }
}
