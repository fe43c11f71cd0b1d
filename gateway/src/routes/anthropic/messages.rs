//! `POST /v1/messages`: Anthropic's Messages API, translated to a chat completion ([`super::translate`]) and
//! run through the same metered execution as `/v1/chat/completions`; the answer is translated back, as a
//! `message` or as Anthropic's typed stream events.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use proto::billing::v1 as billing_pb;
use proto::executor::v1 as pb;
use serde_json::{Map, Value, json};

use super::AnthropicJson;
use super::translate::{self, message_id, stop_reason};
use crate::error::{ApiError, Service};
use crate::execution::{self, ExecutionEvent};
use crate::extract::{AnthropicCallContext, header_text};
use crate::model_api::anthropic_error::AnthropicError;
use crate::model_api::billing::{ChunkBilling, chunk_billing};
use crate::model_api::execution_summary::ExecutionSummary;
use crate::openapi::AnthropicErrors;
use crate::routes::billing_call::billing;
use crate::routes::chat_call;
use crate::state::AppState;
use proto::ending::FinishReason;

/// The endpoint recorded on usage records.
const ENDPOINT: &str = "/v1/messages";
/// The client's headers an Anthropic provider receives as they came (PROVIDERS.md).
const PASSED_HEADERS: [&str; 2] = ["anthropic-version", "anthropic-beta"];

/// Anthropic's Messages API: the key in `x-api-key` (or `Authorization: Bearer`), `anthropic-version`,
/// `anthropic-beta` and `?beta=true` accepted. The body and answers are Anthropic's (`message`, or its stream
/// events `message_start`, `content_block_start` / `_delta` / `_stop`, `message_delta`, `message_stop`);
/// errors are Anthropic's `{"type": "error", "error": {"type", "message"}}` (402 `billing_error` when credit
/// or a cap refuses), with `x-should-retry: false` when repeating cannot help. Translated to a chat
/// completion upstream: every field Anthropic accepts is mapped or dropped, never refused (`thinking` becomes
/// `reasoning_effort`; server tools are dropped and named in `x-dropped-tools`; see [`translate`]);
/// `x-billing-*` headers and a `billing` object on `message_delta` carry the platform's figures, and
/// `stop_reason: "max_tokens"` with `x-billing-cut-off: credit_exhausted` says credit ended the answer.
#[utoipa::path(
    post,
    path = "/v1/messages",
    tag = "anthropic",
    security(("bearer" = [])),
    request_body(content = Object, description = "An Anthropic Messages request", content_type = "application/json"),
    responses(
        (status = 200, description = "An Anthropic `message` (JSON), or its events when `stream` is true"),
        AnthropicErrors,
    )
)]
#[tracing::instrument(skip_all)]
pub async fn messages(
    State(state): State<AppState>,
    AnthropicCallContext(context): AnthropicCallContext,
    headers: HeaderMap,
    AnthropicJson(body): AnthropicJson<Map<String, Value>>,
) -> Result<Response, AnthropicError> {
    if !body.get("max_tokens").is_some_and(Value::is_u64) {
        return Err(
            ApiError::InvalidRequest("max_tokens: a positive integer is required".into()).into(),
        );
    }
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let native_body = Value::Object(body.clone()).to_string();
    let end_user = body
        .get("metadata")
        .and_then(|metadata| metadata.get("user_id"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let translated =
        translate::to_chat(body).map_err(|refused| ApiError::InvalidRequest(refused.0))?;
    let mut request = chat_call::request(
        Value::Object(translated.chat).to_string(),
        &headers,
        ENDPOINT,
        end_user.as_deref(),
    )?;
    request.messages_request_json = Some(native_body);
    for name in PASSED_HEADERS {
        if let Some(value) = header_text(&headers, name)? {
            request.anthropic_headers.insert(name.to_string(), value);
        }
    }
    // Tools are dropped only on the way to an OpenAI-compatible provider; an Anthropic one gets them all.
    let (mut response, translated_answer) = if stream {
        let (limits, events) = execution::start_stream(&state, &context, request).await?;
        let mut events = Box::pin(events.peekable());
        let native = matches!(events.as_mut().peek().await, Some(ExecutionEvent::Event(_)));
        (
            chat_call::sse(limits.as_ref(), message_events(events)),
            !native,
        )
    } else {
        let finished = chat_call::run(&state, &context, request).await?;
        let cut_off = finished.summary.finish_reason == FinishReason::CreditExhausted;
        let (mut message, native) = match &finished.message {
            Some(message) => (
                serde_json::from_str::<Value>(message).map_err(|_| {
                    ApiError::contract(Service::Executor, "a message that is not JSON")
                })?,
                true,
            ),
            None => {
                let completion: Value =
                    serde_json::from_str(&finished.completion).map_err(|_| {
                        ApiError::contract(Service::Executor, "a chat completion that is not JSON")
                    })?;
                (translate::to_message(&completion), false)
            }
        };
        if cut_off {
            message["stop_reason"] = "max_tokens".into();
        }
        (
            (finished.headers, message.to_string()).into_response(),
            !native,
        )
    };
    if translated_answer {
        chat_call::dropped_tools_header(&translated.dropped_tools, &mut response);
    }
    Ok(response)
}

/// Anthropic's token counting: the prompt tokens of a Messages request (`max_tokens` not needed), as
/// `{"input_tokens": N}`. The request is translated as `/v1/messages` translates it and counted by
/// executor-svc as it counts a prompt to size a hold; it needs a valid key and is not billed.
#[utoipa::path(
    post,
    path = "/v1/messages/count_tokens",
    tag = "anthropic",
    security(("bearer" = [])),
    request_body(content = Object, description = "An Anthropic Messages request", content_type = "application/json"),
    responses(
        (status = 200, description = "`{\"input_tokens\": N}`"),
        AnthropicErrors,
    )
)]
#[tracing::instrument(skip_all)]
pub async fn count_tokens(
    State(state): State<AppState>,
    AnthropicCallContext(context): AnthropicCallContext,
    AnthropicJson(body): AnthropicJson<Map<String, Value>>,
) -> Result<Response, AnthropicError> {
    // The key is checked by billing-svc, as on every other route (counting needs no hold).
    billing(
        state
            .account()
            .get_account(context.request(billing_pb::GetAccountRequest {})),
    )
    .await?;
    let translated =
        translate::to_chat(body).map_err(|refused| ApiError::InvalidRequest(refused.0))?;
    let mut call = context.request(pb::CountTokensRequest {
        chat_request_json: Value::Object(translated.chat).to_string(),
    });
    call.set_timeout(state.executor_timeout);
    let counted = state
        .executor()
        .count_tokens(call)
        .await
        .map_err(ApiError::executor)?
        .into_inner();
    Ok(Json(json!({"input_tokens": counted.input_tokens})).into_response())
}

/// The block being streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text(usize),
    Tool(usize),
}

/// Turns the provider's chat chunks into Anthropic's stream: `message_start`, then per block
/// `content_block_start` / `content_block_delta`s / `content_block_stop`, then `message_delta` (stop reason,
/// usage, and the platform's `billing` figures) and `message_stop`.
#[derive(Debug, Default)]
struct MessageStream {
    started: bool,
    open: Option<Open>,
    blocks: usize,
    /// Block index of each chat tool call index.
    tools: HashMap<u64, usize>,
    finish_reason: Option<String>,
    /// The provider's own events pass through (an Anthropic provider): the held-back `message_delta`
    /// comes in the final message.
    native: bool,
}

/// Events to send: the SSE event name and the data.
type Out = Vec<(&'static str, Value)>;

/// The event name of an event passed on as the provider sent it: the name is its `type`, as in Anthropic's
/// own streams (unknown event types included).
const NAMED_BY_TYPE: &str = "";

impl MessageStream {
    fn start(&mut self, id: &str, model: &Value, out: &mut Out) {
        if self.started {
            return;
        }
        self.started = true;
        out.push((
            "message_start",
            json!({"type": "message_start", "message": {
                "id": message_id(id), "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }}),
        ));
    }

    fn close(&mut self, out: &mut Out) {
        if let Some(Open::Text(index) | Open::Tool(index)) = self.open.take() {
            out.push((
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            ));
        }
    }

    fn open_block(&mut self, block: Value, out: &mut Out) -> usize {
        self.close(out);
        let index = self.blocks;
        self.blocks += 1;
        out.push((
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
        index
    }

    fn chunk(&mut self, chunk: &Value) -> Out {
        let mut out = Vec::new();
        self.start(
            chunk["id"].as_str().unwrap_or_default(),
            &chunk["model"],
            &mut out,
        );
        let Some(choice) = chunk["choices"]
            .as_array()
            .and_then(|choices| choices.iter().find(|choice| choice["index"] == 0))
        else {
            return out;
        };
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str().filter(|text| !text.is_empty()) {
            let index = match self.open {
                Some(Open::Text(index)) => index,
                _ => {
                    let index = self.open_block(json!({"type": "text", "text": ""}), &mut out);
                    self.open = Some(Open::Text(index));
                    index
                }
            };
            out.push((
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}),
            ));
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let position = call["index"].as_u64().unwrap_or(0);
            let index = match self.tools.get(&position) {
                Some(index) => *index,
                None => {
                    let block = json!({"type": "tool_use", "id": call["id"], "name": call["function"]["name"], "input": {}});
                    let index = self.open_block(block, &mut out);
                    self.open = Some(Open::Tool(index));
                    self.tools.insert(position, index);
                    index
                }
            };
            if let Some(arguments) = call["function"]["arguments"]
                .as_str()
                .filter(|arguments| !arguments.is_empty())
            {
                out.push((
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": arguments}}),
                ));
            }
        }
        if let Some(finish) = choice["finish_reason"].as_str() {
            self.finish_reason = Some(finish.to_string());
        }
        out
    }

    /// An Anthropic provider's event, passed on as it came; the blocks it opens and closes are followed so
    /// that a stream cut off by billing still closes its last block.
    fn event(&mut self, event: Value) -> Out {
        self.native = true;
        match event["type"].as_str() {
            Some("message_start") => self.started = true,
            Some("content_block_start") => {
                let index = event["index"].as_u64().unwrap_or(0) as usize;
                self.open = Some(Open::Text(index));
                self.blocks = self.blocks.max(index + 1);
            }
            Some("content_block_stop") => self.open = None,
            _ => {}
        }
        vec![(NAMED_BY_TYPE, event)]
    }

    /// The end: the provider's `message_delta` (native) or one made from the chat usage, with the billing
    /// figures, then `message_stop`.
    fn done(&mut self, usage_chunk: &str, usage_event: &str, summary: &ExecutionSummary) -> Out {
        let mut out = Vec::new();
        self.start(
            &summary.execution_id,
            &Value::from(summary.model.clone()),
            &mut out,
        );
        self.close(&mut out);
        let cut_off = summary.finish_reason == FinishReason::CreditExhausted;
        let charged = json!({"input_tokens": summary.usage.input_tokens, "output_tokens": summary.usage.output_tokens});
        let mut delta = match serde_json::from_str::<Value>(usage_event) {
            Ok(event) if self.native && event.is_object() => event,
            _ if self.native => json!({
                "type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": charged,
            }),
            _ => {
                let usage = match serde_json::from_str::<Value>(usage_chunk) {
                    Ok(chunk) if chunk["usage"].is_object() => translate::usage(&chunk["usage"]),
                    _ => charged,
                };
                json!({
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason(self.finish_reason.as_deref()), "stop_sequence": null},
                    "usage": usage,
                })
            }
        };
        if cut_off {
            delta["delta"]["stop_reason"] = "max_tokens".into();
        }
        let billing: Option<ChunkBilling> = chunk_billing(
            summary.usage.total_cost,
            summary.billing.as_ref(),
            summary.finish_reason,
        );
        if let Some(billing) = billing {
            delta["billing"] = serde_json::to_value(billing).unwrap_or(Value::Null);
        }
        out.push(("message_delta", delta));
        out.push(("message_stop", json!({"type": "message_stop"})));
        out
    }
}

fn event((name, data): (&'static str, Value)) -> Result<Event, Infallible> {
    let name = match name {
        NAMED_BY_TYPE => data["type"].as_str().unwrap_or("message").to_string(),
        name => name.to_string(),
    };
    Ok(Event::default().event(name).data(data.to_string()))
}

fn error_event(error: ApiError) -> Vec<(&'static str, Value)> {
    let (_, _, body) = AnthropicError(error).body();
    vec![("error", serde_json::to_value(body).unwrap_or(Value::Null))]
}

/// The execution's events as Anthropic's stream.
fn message_events(
    events: impl Stream<Item = ExecutionEvent> + Send + 'static,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let mut translator = MessageStream::default();
    events.flat_map(move |step| {
        let out = match step {
            ExecutionEvent::Chunk(json) => match serde_json::from_str::<Value>(&json) {
                Ok(chunk) => translator.chunk(&chunk),
                Err(_) => error_event(ApiError::contract(
                    Service::Executor,
                    "a provider chunk that is not JSON",
                )),
            },
            ExecutionEvent::Event(json) => match serde_json::from_str::<Value>(&json) {
                Ok(event) => translator.event(event),
                Err(_) => error_event(ApiError::contract(
                    Service::Executor,
                    "a provider event that is not JSON",
                )),
            },
            ExecutionEvent::Delta(_) => Vec::new(),
            ExecutionEvent::Done(mut done) => {
                let usage_chunk = std::mem::take(&mut done.usage_chunk_json);
                let usage_event = std::mem::take(&mut done.usage_event_json);
                match ExecutionSummary::try_from(*done) {
                    Ok(summary) => translator.done(&usage_chunk, &usage_event, &summary),
                    Err(error) => error_event(error),
                }
            }
            ExecutionEvent::Failed(error) => error_event(error),
        };
        futures::stream::iter(out.into_iter().map(event))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn chunks_become_typed_blocks_in_order() {
        let mut stream = MessageStream::default();
        let mut names = Vec::new();
        let chunks = [
            json!({"id": "chatcmpl-1", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}]}),
            json!({"id": "chatcmpl-1", "model": "m", "choices": [{"index": 0, "delta": {"content": " there"}}]}),
            json!({"id": "chatcmpl-1", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "weather", "arguments": ""}}]}}]}),
            json!({"id": "chatcmpl-1", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}}]}),
            json!({"id": "chatcmpl-1", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
        ];
        for chunk in &chunks {
            names.extend(stream.chunk(chunk).into_iter().map(|(name, _)| name));
        }
        let summary = ExecutionSummary::settled_for_test(FinishReason::Stop);
        let end = stream.done("", "", &summary);
        names.extend(end.iter().map(|(name, _)| *name));
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        let delta = &end[1].1;
        assert_eq!(delta["delta"]["stop_reason"], "tool_use");
        assert_eq!(
            delta["usage"],
            json!({"input_tokens": 10, "output_tokens": 5})
        );
        assert_eq!(delta["billing"]["status"], "settled");
        assert_eq!(translate::tool_input("{\"a\":1}"), json!({"a": 1}));
    }
}
