//! The streamed message: Anthropic's SSE, each event an `event: <type>` line and a `data:` line.
//!
//! Order: `message_start` (its `usage` with the prompt's figures and `output_tokens: 1`), `ping`, then per
//! content block `content_block_start`, its deltas and `content_block_stop`: the thinking block's
//! `thinking_delta`s then one `signature_delta`; a text block's `text_delta`s; a `tool_use` block's
//! `input_json_delta`s (`partial_json`). Every delta is one token. Then `message_delta` (`delta.stop_reason`,
//! and `usage` with `output_tokens` and the prompt's `input_tokens`, `cache_creation_input_tokens` and
//! `cache_read_input_tokens`, cumulative as Anthropic sends them) and `message_stop`. Injected failures end
//! the stream early (see [`Ending`]): blocks are then left open, as a broken upstream leaves them.

use std::collections::VecDeque;
use std::io::Write;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::OVERLOADED_MESSAGE;
use super::{Ending, Plan};
use crate::answer::{Answer, Event};
use crate::behaviour::UsageReported;

/// How long an injected mid-stream failure waits for the events before it to reach the client.
const ABORT_FLUSH_DELAY: Duration = Duration::from_millis(50);

/// Streams `plan` as an SSE response.
pub fn response(plan: Plan) -> Response {
    let body = futures::stream::unfold(Streamer::new(plan), |mut streamer| async move {
        let item = streamer.next().await?;
        Some((item, streamer))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// Where the stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Start,
    /// Event `event` of the thinking's pieces followed by the answer's events.
    Events {
        event: usize,
    },
    /// Close the last open block.
    Close,
    Delta,
    Stop,
    ErrorEvent,
    Abort,
    Ended,
}

/// The kind of a delta and the member that holds its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delta {
    Text,
    Thinking,
    InputJson,
}

struct Streamer {
    plan: Plan,
    /// Events written but not yet sent.
    pending: VecDeque<Bytes>,
    stage: Stage,
}

impl Streamer {
    fn new(plan: Plan) -> Streamer {
        Streamer {
            plan,
            pending: VecDeque::new(),
            stage: Stage::Start,
        }
    }

    /// The next SSE event; `None` once the stream is over.
    async fn next(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        loop {
            if let Some(bytes) = self.pending.pop_front() {
                return Some(Ok(bytes));
            }
            self.stage = match self.stage {
                Stage::Start => {
                    self.start();
                    Stage::Events { event: 0 }
                }
                Stage::Events { event } if event >= self.events_to_send() => self.after_events(),
                Stage::Events { event } => {
                    if !self.plan.token_latency.is_zero() {
                        tokio::time::sleep(self.plan.token_latency).await;
                    }
                    self.event(event);
                    Stage::Events { event: event + 1 }
                }
                Stage::Close => {
                    if let Some(index) = self.last_answer_block() {
                        self.push("content_block_stop", &stop_block(index));
                    }
                    Stage::Delta
                }
                Stage::Delta => {
                    self.message_delta();
                    match self.plan.ending {
                        Ending::Abort { .. } => Stage::Abort,
                        Ending::Complete | Ending::StreamError { .. } => Stage::Stop,
                    }
                }
                Stage::Stop => {
                    self.push("message_stop", &json!({ "type": "message_stop" }));
                    Stage::Ended
                }
                Stage::ErrorEvent => {
                    let error = json!({ "type": "error",
                        "error": { "type": "overloaded_error", "message": OVERLOADED_MESSAGE } });
                    self.push("error", &error);
                    Stage::Ended
                }
                // An error from the body stream makes hyper cut the connection mid-response. Hyper drops
                // what it has not written yet, so give it a moment to flush the events sent before.
                Stage::Abort => {
                    tokio::time::sleep(ABORT_FLUSH_DELAY).await;
                    self.stage = Stage::Ended;
                    return Some(Err(std::io::Error::other("injected failure mid-stream")));
                }
                Stage::Ended => return None,
            };
        }
    }

    /// Events sent before the stream ends.
    fn events_to_send(&self) -> usize {
        match self.plan.ending {
            Ending::Complete => self.plan.events(),
            Ending::Abort { after_events, .. } | Ending::StreamError { after_events } => {
                after_events
            }
        }
    }

    fn after_events(&self) -> Stage {
        match self.plan.ending {
            Ending::Complete => Stage::Close,
            Ending::Abort {
                usage_reported: UsageReported::Yes,
                ..
            } => Stage::Delta,
            Ending::Abort {
                usage_reported: UsageReported::No,
                ..
            } => Stage::Abort,
            Ending::StreamError { .. } => Stage::ErrorEvent,
        }
    }

    /// The index of the answer's first block (after the thinking block, if any).
    fn first_answer_block(&self) -> usize {
        usize::from(self.plan.thinking.is_some())
    }

    /// The answer's last block, if it has any.
    fn last_answer_block(&self) -> Option<usize> {
        let first = self.first_answer_block();
        match &self.plan.answer {
            Answer::Content(_) | Answer::Refusal(_) => Some(first),
            Answer::ToolCalls(calls) => calls.len().checked_sub(1).map(|last| first + last),
        }
    }

    fn start(&mut self) {
        let mut usage = self.plan.usage(0);
        usage["output_tokens"] = json!(1);
        let start = json!({ "type": "message_start", "message": {
            "id": self.plan.id, "type": "message", "role": "assistant", "model": self.plan.model,
            "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage,
        } });
        self.push("message_start", &start);
        self.push("ping", &json!({ "type": "ping" }));
        if self.plan.thinking.is_some() {
            let block = json!({ "type": "thinking", "thinking": "", "signature": "" });
            self.push("content_block_start", &start_block(0, block));
            if self.plan.thinking_events() == 0 {
                self.end_thinking();
            }
        } else {
            self.open_answer();
        }
    }

    /// The signature, the end of the thinking block and the start of the answer.
    fn end_thinking(&mut self) {
        let signature = self
            .plan
            .thinking
            .as_ref()
            .map_or_else(String::new, |thinking| thinking.signature.clone());
        let delta = json!({ "type": "content_block_delta", "index": 0,
            "delta": { "type": "signature_delta", "signature": signature } });
        self.push("content_block_delta", &delta);
        self.push("content_block_stop", &stop_block(0));
        self.open_answer();
    }

    /// A text answer's block starts at once; tool calls start with their first event.
    fn open_answer(&mut self) {
        if matches!(self.plan.answer, Answer::Content(_) | Answer::Refusal(_)) {
            let index = self.first_answer_block();
            self.push(
                "content_block_start",
                &start_block(index, json!({ "type": "text", "text": "" })),
            );
        }
    }

    /// The events of stream event `event`.
    fn event(&mut self, event: usize) {
        let thinking_events = self.plan.thinking_events();
        if event < thinking_events {
            if let Some(thinking) = &self.plan.thinking {
                let bytes = delta(0, Delta::Thinking, thinking.text.piece(event).text);
                self.pending.push_back(bytes);
            }
            if event + 1 == thinking_events {
                self.end_thinking();
            }
            return;
        }
        let first = self.first_answer_block();
        let bytes = match self.plan.answer.event(event - thinking_events) {
            Some(Event::Content(piece) | Event::Refusal(piece)) => {
                delta(first, Delta::Text, piece.text)
            }
            Some(Event::ToolCallStart { index, call }) => {
                if index > 0 {
                    let stop = sse("content_block_stop", &stop_block(first + index - 1));
                    self.pending.push_back(stop);
                }
                let block =
                    json!({ "type": "tool_use", "id": call.id, "name": call.name, "input": {} });
                sse("content_block_start", &start_block(first + index, block))
            }
            Some(Event::ToolArguments { index, piece }) => {
                delta(first + index, Delta::InputJson, piece.text)
            }
            None => return,
        };
        self.pending.push_back(bytes);
    }

    fn message_delta(&mut self) {
        let mut usage = self.plan.prompt_usage();
        usage["output_tokens"] = json!(self.plan.output_tokens(self.events_to_send()));
        let delta = json!({ "type": "message_delta",
            "delta": { "stop_reason": self.plan.stop_reason.as_str(), "stop_sequence": null },
            "usage": usage });
        self.push("message_delta", &delta);
    }

    fn push(&mut self, event: &str, data: &Value) {
        self.pending.push_back(sse(event, data));
    }
}

fn start_block(index: usize, block: Value) -> Value {
    json!({ "type": "content_block_start", "index": index, "content_block": block })
}

fn stop_block(index: usize) -> Value {
    json!({ "type": "content_block_stop", "index": index })
}

/// One SSE event.
fn sse(event: &str, data: &Value) -> Bytes {
    let mut out = Vec::with_capacity(128);
    // Writing into a `Vec` cannot fail.
    let _ = write!(out, "event: {event}\ndata: ");
    let _ = serde_json::to_writer(&mut out, data);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// One `content_block_delta` of one token, written straight into its buffer (the hot path of a stream).
fn delta(index: usize, kind: Delta, text: &str) -> Bytes {
    let (kind, member) = match kind {
        Delta::Text => ("text_delta", "text"),
        Delta::Thinking => ("thinking_delta", "thinking"),
        Delta::InputJson => ("input_json_delta", "partial_json"),
    };
    let mut out = Vec::with_capacity(128);
    let _ = write!(
        out,
        "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":{index},\
         \"delta\":{{\"type\":\"{kind}\",\"{member}\":"
    );
    let _ = serde_json::to_writer(&mut out, text);
    out.extend_from_slice(b"}}\n\n");
    Bytes::from(out)
}
