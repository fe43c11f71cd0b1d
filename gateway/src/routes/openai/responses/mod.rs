//! `POST /v1/responses`: OpenAI's Responses API, translated to a chat completion
//! ([`request`], and back: [`answer`]) and run through the same metered execution as `/v1/chat/completions`;
//! the answer is translated back, as a `response` object or as the Responses API's typed stream events.

mod answer;
mod request;

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde_json::{Map, Value, json};

use self::answer::{Status, call_item, custom_input, message_item, response_id};
use self::request::{ToolNames, ToolOrigin};
use super::OpenAiJson;
use crate::error::{ApiError, Service};
use crate::execution::{self, ExecutionEvent};
use crate::extract::OpenAiCallContext;
use crate::model_api::billing::chunk_billing;
use crate::model_api::execution_summary::ExecutionSummary;
use crate::model_api::openai_error::{OpenAiError, ResponsesError};
use crate::openapi::OpenAiErrors;
use crate::routes::chat_call;
use crate::state::AppState;
use proto::ending::FinishReason;

/// The endpoint recorded on usage records.
const ENDPOINT: &str = "/v1/responses";

/// OpenAI's Responses API on any chat-completions upstream: `input` (a string or items), `instructions`,
/// function `tools`, `tool_choice`, `max_output_tokens`, `text.format`, … Non-streamed, a `response` object;
/// streamed, its typed events (`response.created`, `response.output_item.added`,
/// `response.output_text.delta`, `response.function_call_arguments.delta`, …, `response.completed` or
/// `response.incomplete` with `usage`). When credit or a cap ends the answer, the response is
/// `incomplete` (`max_output_tokens`) and the billing figures say `credit_exhausted` (`x-billing-*` headers,
/// or a `billing` object in the last event). The platform stores no response: `previous_response_id` is
/// refused with 400. Errors are OpenAI's shape.
#[utoipa::path(
    post,
    path = "/v1/responses",
    tag = "openai",
    security(("bearer" = [])),
    request_body(content = Object, description = "A Responses API request", content_type = "application/json"),
    responses(
        (status = 200, description = "A `response` (JSON), or its events when `stream` is true"),
        OpenAiErrors,
    )
)]
#[tracing::instrument(skip_all)]
pub async fn responses(
    State(state): State<AppState>,
    OpenAiCallContext(context): OpenAiCallContext,
    headers: HeaderMap,
    OpenAiJson(body): OpenAiJson<Map<String, Value>>,
) -> Result<Response, ResponsesError> {
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let translated =
        request::to_chat(&body).map_err(|refused| ApiError::InvalidRequest(refused.0))?;
    let request = chat_call::request(
        Value::Object(translated.chat).to_string(),
        &headers,
        ENDPOINT,
        body.get("user").and_then(Value::as_str),
    )?;
    let mut response = if stream {
        let (limits, events) = execution::start_stream(&state, &context, request).await?;
        chat_call::sse(
            limits.as_ref(),
            response_events(events, body, translated.tools),
        )
    } else {
        let finished = chat_call::run(&state, &context, request).await?;
        let completion: Value = serde_json::from_str(&finished.completion).map_err(|_| {
            ApiError::contract(Service::Executor, "a chat completion that is not JSON")
        })?;
        let answer = answer::to_response(
            &completion,
            &body,
            &translated.tools,
            finished.summary.finish_reason == FinishReason::CreditExhausted,
        );
        (finished.headers, answer.to_string()).into_response()
    };
    chat_call::dropped_tools_header(&translated.dropped_tools, &mut response);
    Ok(response)
}

/// `GET /v1/responses` asking for a WebSocket (`Upgrade: websocket`), the Responses API's WebSocket mode
/// that Codex tries first when a provider says it supports WebSockets: refused with 426 Upgrade Required
/// (OpenAI's error shape, `x-should-retry: false`), the one answer on which Codex falls back to `POST
/// /v1/responses` at once (it retries 404, 405 and 501 seven times). No key is needed to learn that. A GET
/// without the upgrade is what it is on every route that does not serve it: 405 with `Allow: POST`. Not an
/// operation of the REST API, so not in `/openapi.json`.
pub async fn websocket(headers: HeaderMap) -> Response {
    let upgrade = headers
        .get(header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"));
    if upgrade {
        return OpenAiError(ApiError::WebSocketNotServed).into_response();
    }
    let mut response = OpenAiError(ApiError::MethodNotAllowed).into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// An output item being streamed.
#[derive(Debug, Clone)]
enum Item {
    Message {
        id: String,
        text: String,
    },
    Call {
        call_id: String,
        origin: ToolOrigin,
        arguments: String,
    },
}

/// Turns the provider's chat chunks into the Responses API's stream.
#[derive(Debug)]
struct ResponseStream {
    request: Map<String, Value>,
    /// What each chat function name stands for in the request.
    tool_names: ToolNames,
    id: String,
    model: Value,
    created_at: u64,
    sequence: u64,
    started: bool,
    /// Output items, in order; the last one may be open.
    items: Vec<Item>,
    open: bool,
    /// Output index of each chat tool call index.
    tools: HashMap<u64, usize>,
    finish_reason: Option<String>,
}

type Out = Vec<(&'static str, Value)>;

impl ResponseStream {
    fn new(request: Map<String, Value>, tool_names: ToolNames) -> ResponseStream {
        ResponseStream {
            request,
            tool_names,
            id: String::new(),
            model: Value::Null,
            created_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_secs()),
            sequence: 0,
            started: false,
            items: Vec::new(),
            open: false,
            tools: HashMap::new(),
            finish_reason: None,
        }
    }

    fn emit(&mut self, out: &mut Out, kind: &'static str, mut data: Value) {
        data["type"] = kind.into();
        data["sequence_number"] = self.sequence.into();
        self.sequence += 1;
        out.push((kind, data));
    }

    fn snapshot(&self, output: Vec<Value>, status: Status) -> Value {
        answer::response(
            &self.id,
            self.created_at,
            &self.model,
            &self.request,
            output,
            status,
        )
    }

    fn start(&mut self, completion_id: &str, model: &Value, out: &mut Out) {
        if self.started {
            return;
        }
        self.started = true;
        self.id = response_id(completion_id);
        self.model = model.clone();
        let created = self.snapshot(Vec::new(), Status::InProgress);
        self.emit(out, "response.created", json!({"response": created}));
        let progress = self.snapshot(Vec::new(), Status::InProgress);
        self.emit(out, "response.in_progress", json!({"response": progress}));
    }

    fn item_json(&self, item: &Item, status: &str) -> Value {
        match item {
            Item::Message { id, text } => message_item(id, text, false, status),
            Item::Call {
                call_id,
                origin,
                arguments,
            } => call_item(call_id, origin, arguments, status),
        }
    }

    /// Ends the open item with its `done` events.
    fn close(&mut self, out: &mut Out) {
        if !self.open {
            return;
        }
        self.open = false;
        let index = self.items.len() - 1;
        let item = self.items[index].clone();
        match &item {
            Item::Message { id, text } => {
                let part = json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []});
                self.emit(
                    out,
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
                );
                self.emit(
                    out,
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
                );
            }
            Item::Call {
                call_id,
                origin: ToolOrigin::Function { name, .. },
                arguments,
            } => self.emit(
                out,
                "response.function_call_arguments.done",
                json!({"item_id": format!("fc_{call_id}"), "output_index": index, "arguments": arguments, "name": name}),
            ),
            // A custom tool's input is the string inside the chat arguments: it is whole only now.
            Item::Call {
                call_id,
                origin: ToolOrigin::Custom { .. },
                arguments,
            } => {
                let item_id = format!("ctc_{call_id}");
                let input = custom_input(arguments);
                self.emit(
                    out,
                    "response.custom_tool_call_input.delta",
                    json!({"item_id": item_id, "output_index": index, "delta": input}),
                );
                self.emit(
                    out,
                    "response.custom_tool_call_input.done",
                    json!({"item_id": item_id, "output_index": index, "input": input}),
                );
            }
        }
        let done = self.item_json(&item, "completed");
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": index, "item": done}),
        );
    }

    fn open_item(&mut self, item: Item, out: &mut Out) -> usize {
        self.close(out);
        let index = self.items.len();
        let added = self.item_json(&item, "in_progress");
        let added = match &item {
            // An item starts empty: its text arrives as deltas.
            Item::Message { .. } => {
                let mut added = added;
                added["content"] = json!([]);
                added
            }
            Item::Call { .. } => added,
        };
        self.items.push(item.clone());
        self.open = true;
        self.emit(
            out,
            "response.output_item.added",
            json!({"output_index": index, "item": added}),
        );
        if let Item::Message { id, .. } = &item {
            self.emit(
                out,
                "response.content_part.added",
                json!({"item_id": id, "output_index": index, "content_index": 0,
                       "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}),
            );
        }
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
            let index = match self.items.last() {
                Some(Item::Message { .. }) if self.open => self.items.len() - 1,
                _ => {
                    let id = format!("msg_{}_{}", self.id, self.items.len());
                    self.open_item(
                        Item::Message {
                            id,
                            text: String::new(),
                        },
                        &mut out,
                    )
                }
            };
            let item_id = match &mut self.items[index] {
                Item::Message { id, text: whole } => {
                    whole.push_str(text);
                    id.clone()
                }
                Item::Call { .. } => String::new(),
            };
            self.emit(
                &mut out,
                "response.output_text.delta",
                json!({"item_id": item_id, "output_index": index, "content_index": 0, "delta": text, "logprobs": []}),
            );
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let position = call["index"].as_u64().unwrap_or(0);
            let index = match self.tools.get(&position) {
                Some(index) => *index,
                None => {
                    let item = Item::Call {
                        call_id: call["id"].as_str().unwrap_or_default().to_string(),
                        origin: self
                            .tool_names
                            .origin(call["function"]["name"].as_str().unwrap_or_default()),
                        arguments: String::new(),
                    };
                    let index = self.open_item(item, &mut out);
                    self.tools.insert(position, index);
                    index
                }
            };
            if let Some(arguments) = call["function"]["arguments"]
                .as_str()
                .filter(|arguments| !arguments.is_empty())
            {
                match &mut self.items[index] {
                    Item::Call {
                        call_id,
                        origin,
                        arguments: whole,
                    } => {
                        whole.push_str(arguments);
                        // A custom tool's input is streamed when the call closes (see `close`).
                        if let ToolOrigin::Function { .. } = origin {
                            let item_id = format!("fc_{call_id}");
                            self.emit(
                                &mut out,
                                "response.function_call_arguments.delta",
                                json!({"item_id": item_id, "output_index": index, "delta": arguments}),
                            );
                        }
                    }
                    Item::Message { .. } => {}
                }
            }
        }
        if let Some(finish) = choice["finish_reason"].as_str() {
            self.finish_reason = Some(finish.to_string());
        }
        out
    }

    fn done(&mut self, usage_chunk: &str, summary: &ExecutionSummary) -> Out {
        let mut out = Vec::new();
        self.start(
            &summary.execution_id,
            &Value::from(summary.model.clone()),
            &mut out,
        );
        self.close(&mut out);
        let status = Status::of_end(
            summary.finish_reason == FinishReason::CreditExhausted,
            self.finish_reason.as_deref(),
        );
        let output = self
            .items
            .iter()
            .map(|item| self.item_json(item, "completed"))
            .collect();
        let mut response = self.snapshot(output, status);
        response["usage"] = match serde_json::from_str::<Value>(usage_chunk) {
            Ok(chunk) if chunk["usage"].is_object() => answer::usage(&chunk["usage"]),
            _ => answer::usage(&json!({
                "prompt_tokens": summary.usage.input_tokens,
                "completion_tokens": summary.usage.output_tokens,
                "total_tokens": summary.usage.total_tokens,
            })),
        };
        if let Some(billing) = chunk_billing(
            summary.usage.total_cost,
            summary.billing.as_ref(),
            summary.finish_reason,
        ) {
            response["billing"] = serde_json::to_value(billing).unwrap_or(Value::Null);
        }
        let kind = match status {
            Status::Incomplete(_) => "response.incomplete",
            Status::Completed | Status::InProgress => "response.completed",
        };
        self.emit(&mut out, kind, json!({"response": response}));
        out
    }

    fn failed(&mut self, error: ApiError) -> Out {
        let (_, _, body) = OpenAiError(error).body();
        let mut out = Vec::new();
        let error = serde_json::to_value(body.error).unwrap_or(Value::Null);
        self.emit(
            &mut out,
            "error",
            json!({"code": error["code"], "message": error["message"], "param": error["param"]}),
        );
        out
    }
}

fn event((name, data): (&'static str, Value)) -> Result<Event, Infallible> {
    Ok(Event::default().event(name).data(data.to_string()))
}

/// The execution's events as the Responses API's stream.
fn response_events(
    events: impl Stream<Item = ExecutionEvent> + Send + 'static,
    request: Map<String, Value>,
    tool_names: ToolNames,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let mut translator = ResponseStream::new(request, tool_names);
    events.flat_map(move |step| {
        let out = match step {
            ExecutionEvent::Chunk(json) => match serde_json::from_str::<Value>(&json) {
                Ok(chunk) => translator.chunk(&chunk),
                Err(_) => translator.failed(ApiError::contract(
                    Service::Executor,
                    "a provider chunk that is not JSON",
                )),
            },
            // Only `/v1/messages` asks for Anthropic events.
            ExecutionEvent::Delta(_) | ExecutionEvent::Event(_) => Vec::new(),
            ExecutionEvent::Done(mut done) => {
                let usage_chunk = std::mem::take(&mut done.usage_chunk_json);
                match ExecutionSummary::try_from(*done) {
                    Ok(summary) => translator.done(&usage_chunk, &summary),
                    Err(error) => translator.failed(error),
                }
            }
            ExecutionEvent::Failed(error) => translator.failed(error),
        };
        futures::stream::iter(out.into_iter().map(event))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn chunk(delta: Value, finish: Option<&str>) -> Value {
        json!({"id": "chatcmpl-1", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    }

    /// A streamed answer calling a namespaced function and a custom tool comes out as Codex reads it: a
    /// `function_call` with its `namespace` whose arguments stream as deltas, and a `custom_tool_call` whose
    /// input arrives whole when the call closes; a credit cut-off ends it `incomplete` (`credit_exhausted`).
    #[test]
    fn namespaced_and_custom_calls_stream_as_their_items() {
        let request = json!({"model": "m", "input": "x", "tools": [
            {"type": "namespace", "name": "agents", "tools": [{"type": "function", "name": "close", "parameters": {}}]},
            {"type": "custom", "name": "apply_patch"},
        ]});
        let translated = request::to_chat(request.as_object().unwrap()).unwrap();
        let mut stream =
            ResponseStream::new(request.as_object().unwrap().clone(), translated.tools);
        let mut events = Vec::new();
        for chunk in [
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "agents__close", "arguments": "{\"id\":"}}]}),
                None,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "7}"}}]}),
                None,
            ),
            chunk(
                json!({"tool_calls": [{"index": 1, "id": "call_2", "function": {"name": "apply_patch", "arguments": "{\"input\":\"*** Begin"}}]}),
                None,
            ),
            chunk(
                json!({"tool_calls": [{"index": 1, "function": {"arguments": " Patch\"}"}}]}),
                Some("tool_calls"),
            ),
        ] {
            events.extend(stream.chunk(&chunk));
        }
        let summary = ExecutionSummary::settled_for_test(FinishReason::CreditExhausted);
        events.extend(stream.done("", &summary));
        let names: Vec<&str> = events.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.custom_tool_call_input.delta",
                "response.custom_tool_call_input.done",
                "response.output_item.done",
                "response.incomplete",
            ]
        );
        let added = &events[2].1["item"];
        assert_eq!(
            (&added["name"], &added["namespace"]),
            (&json!("close"), &json!("agents"))
        );
        assert_eq!(events[5].1["arguments"], "{\"id\":7}");
        assert_eq!(events[9].1["input"], "*** Begin Patch");
        let custom = &events[10].1["item"];
        assert_eq!(custom["type"], "custom_tool_call");
        assert_eq!(custom["input"], "*** Begin Patch");
        let response = &events[11].1["response"];
        assert_eq!(response["incomplete_details"]["reason"], "credit_exhausted");
        assert_eq!(response["output"][0]["namespace"], "agents");
        assert_eq!(response["output"][1]["call_id"], "call_2");
    }
}
