//! The streamed answer: `chat.completion.chunk` SSE events as OpenAI sends them.
//!
//! Order: a role chunk per choice (for tool calls the role rides on the first call's chunk instead), then
//! the events of the choices interleaved (event `i` of choice 0, event `i` of choice 1, …), one piece of
//! one token per chunk, then a finish chunk per choice, the usage chunk (`choices: []`) when
//! `stream_options.include_usage` is set, and `data: [DONE]`. With `include_usage` every other chunk
//! carries `"usage": null`. Injected failures end the stream early (see [`Ending`]). Chunks are written
//! straight into one buffer each, as this path runs in load benchmarks.

use std::io::Write;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::request::Logprobs;
use super::{Ending, Plan, SYSTEM_FINGERPRINT, logprobs};
use crate::answer::{Answer, Event};
use crate::behaviour::UsageReported;

/// How long an injected mid-stream failure waits for the chunks before it to reach the client.
const ABORT_FLUSH_DELAY: Duration = Duration::from_millis(50);

/// The error event of `streamerror-<n>`, as OpenAI sends it mid-stream.
const STREAM_ERROR_EVENT: &[u8] = b"data: {\"error\":{\"message\":\"The server had an error while \
processing your request. Sorry about that!\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n";

const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";

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
    Roles { choice: u32 },
    Events { event: usize, choice: u32 },
    Finishes { choice: u32 },
    Usage,
    Done,
    ErrorEvent,
    Abort,
    Ended,
}

struct Streamer {
    plan: Plan,
    /// `data: {"id":…,"system_fingerprint":…,"choices":[`, the same for every chunk.
    prefix: Vec<u8>,
    include_usage: bool,
    stage: Stage,
}

impl Streamer {
    fn new(plan: Plan) -> Streamer {
        let envelope = json!({
            "id": plan.id,
            "object": "chat.completion.chunk",
            "created": plan.created,
            "model": plan.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
        });
        let mut prefix = Json(Vec::with_capacity(192));
        prefix.raw("data: ");
        prefix.value(&envelope);
        // Reopen the envelope object to append `choices` last, where OpenAI has it.
        prefix.0.pop();
        prefix.raw(",\"choices\":[");
        let include_usage = matches!(
            plan.ending,
            Ending::Complete {
                include_usage: true
            }
        );
        let stage = if starts_with_role_chunks(&plan.answer) {
            Stage::Roles { choice: 0 }
        } else {
            Stage::Events {
                event: 0,
                choice: 0,
            }
        };
        Streamer {
            plan,
            prefix: prefix.0,
            include_usage,
            stage,
        }
    }

    /// The next SSE event; `None` once the stream is over.
    async fn next(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        loop {
            let (item, next) = match self.stage {
                Stage::Roles { choice } => (
                    Some(self.role_chunk(choice)),
                    self.after_choice(choice, Stage::Roles { choice: choice + 1 }, || {
                        Stage::Events {
                            event: 0,
                            choice: 0,
                        }
                    }),
                ),
                Stage::Events { event, choice } => {
                    if event >= self.events_to_send() {
                        (None, self.after_events())
                    } else {
                        if choice == 0 && !self.plan.token_latency.is_zero() {
                            tokio::time::sleep(self.plan.token_latency).await;
                        }
                        let next = self.after_choice(
                            choice,
                            Stage::Events {
                                event,
                                choice: choice + 1,
                            },
                            || Stage::Events {
                                event: event + 1,
                                choice: 0,
                            },
                        );
                        (self.event_chunk(event, choice), next)
                    }
                }
                Stage::Finishes { choice } => (
                    Some(self.finish_chunk(choice)),
                    self.after_choice(choice, Stage::Finishes { choice: choice + 1 }, || {
                        if self.include_usage {
                            Stage::Usage
                        } else {
                            Stage::Done
                        }
                    }),
                ),
                Stage::Usage => (
                    Some(self.usage_chunk()),
                    match self.plan.ending {
                        Ending::Abort { .. } => Stage::Abort,
                        Ending::Complete { .. } | Ending::StreamError { .. } => Stage::Done,
                    },
                ),
                Stage::Done => (Some(Bytes::from_static(DONE_EVENT)), Stage::Ended),
                Stage::ErrorEvent => (Some(Bytes::from_static(STREAM_ERROR_EVENT)), Stage::Ended),
                // An error from the body stream makes hyper cut the connection mid-response. Hyper drops
                // what it has not written yet, so give it a moment to flush the chunks sent before.
                Stage::Abort => {
                    tokio::time::sleep(ABORT_FLUSH_DELAY).await;
                    self.stage = Stage::Ended;
                    return Some(Err(std::io::Error::other("injected failure mid-stream")));
                }
                Stage::Ended => return None,
            };
            self.stage = next;
            if let Some(bytes) = item {
                return Some(Ok(bytes));
            }
        }
    }

    /// `same` for the next choice, or `after` once every choice had its turn.
    fn after_choice(&self, choice: u32, same: Stage, after: impl FnOnce() -> Stage) -> Stage {
        if choice + 1 < self.plan.choices {
            same
        } else {
            after()
        }
    }

    /// Events each choice sends before the stream ends.
    fn events_to_send(&self) -> usize {
        match self.plan.ending {
            Ending::Complete { .. } => self.plan.answer.events(),
            Ending::Abort { after_events, .. } | Ending::StreamError { after_events } => {
                after_events
            }
        }
    }

    fn after_events(&self) -> Stage {
        match self.plan.ending {
            Ending::Complete { .. } => Stage::Finishes { choice: 0 },
            Ending::Abort {
                usage_reported: UsageReported::Yes,
                ..
            } => Stage::Usage,
            Ending::Abort {
                usage_reported: UsageReported::No,
                ..
            } => Stage::Abort,
            Ending::StreamError { .. } => Stage::ErrorEvent,
        }
    }

    /// One chunk holding one choice, written by `choice`.
    fn chunk(&self, choice: impl FnOnce(&mut Json)) -> Bytes {
        let mut out = Json(Vec::with_capacity(self.prefix.len() + 160));
        out.0.extend_from_slice(&self.prefix);
        choice(&mut out);
        out.raw(if self.include_usage {
            "],\"usage\":null}\n\n"
        } else {
            "]}\n\n"
        });
        Bytes::from(out.0)
    }

    fn role_chunk(&self, choice: u32) -> Bytes {
        let delta = match &self.plan.answer {
            Answer::Content(_) => json!({ "role": "assistant", "content": "", "refusal": null }),
            Answer::Refusal(_) => json!({ "role": "assistant", "content": null, "refusal": "" }),
            Answer::ToolCalls(_) => {
                json!({ "role": "assistant", "content": null, "refusal": null })
            }
        };
        self.chunk(|out| out.choice(choice, &delta, None))
    }

    fn finish_chunk(&self, choice: u32) -> Bytes {
        let reason = self.plan.finish_reason.as_str();
        self.chunk(|out| {
            out.raw("{\"index\":");
            out.number(choice);
            out.raw(",\"delta\":{},\"logprobs\":null,\"finish_reason\":");
            out.string(reason);
            out.raw("}");
        })
    }

    fn usage_chunk(&self) -> Bytes {
        let usage = self.plan.usage(self.events_to_send());
        let mut out = Json(Vec::with_capacity(self.prefix.len() + 320));
        out.0.extend_from_slice(&self.prefix);
        out.raw("],\"usage\":");
        out.value(&usage);
        out.raw("}\n\n");
        Bytes::from(out.0)
    }

    fn event_chunk(&self, event: usize, choice: u32) -> Option<Bytes> {
        let event = self.plan.answer.event(event)?;
        let top = match self.plan.logprobs {
            Logprobs::On { top } => Some(top),
            Logprobs::Off => None,
        };
        Some(match event {
            Event::Content(piece) => self.chunk(|out| {
                out.piece_choice(choice, PieceField::Content, piece.text, top);
            }),
            Event::Refusal(piece) => self.chunk(|out| {
                out.piece_choice(choice, PieceField::Refusal, piece.text, top);
            }),
            Event::ToolCallStart { index, call } => {
                let start = json!({
                    "index": index,
                    "id": call.id,
                    "type": "function",
                    "function": { "name": call.name, "arguments": "" },
                });
                let delta = if index == 0 {
                    json!({ "role": "assistant", "content": null, "tool_calls": [start] })
                } else {
                    json!({ "tool_calls": [start] })
                };
                self.chunk(|out| out.choice(choice, &delta, None))
            }
            Event::ToolArguments { index, piece } => self.chunk(|out| {
                out.raw("{\"index\":");
                out.number(choice);
                out.raw(",\"delta\":{\"tool_calls\":[{\"index\":");
                out.number(index);
                out.raw(",\"function\":{\"arguments\":");
                out.string(piece.text);
                out.raw("}}]},\"logprobs\":null,\"finish_reason\":null}");
            }),
        })
    }
}

/// Whether the stream opens with a role chunk per choice.
fn starts_with_role_chunks(answer: &Answer) -> bool {
    match answer {
        Answer::Content(_) | Answer::Refusal(_) => true,
        Answer::ToolCalls(calls) => calls.is_empty(),
    }
}

/// Which field of the delta a text piece extends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PieceField {
    Content,
    Refusal,
}

/// A JSON text being written into a buffer. Writing into a `Vec` cannot fail, so results are dropped.
struct Json(Vec<u8>);

impl Json {
    fn raw(&mut self, text: &str) {
        self.0.extend_from_slice(text.as_bytes());
    }

    fn number(&mut self, number: impl std::fmt::Display) {
        let _ = write!(self.0, "{number}");
    }

    fn string(&mut self, text: &str) {
        let _ = serde_json::to_writer(&mut self.0, text);
    }

    fn value(&mut self, value: &Value) {
        let _ = serde_json::to_writer(&mut self.0, value);
    }

    /// `{"index":…,"delta":<delta>,"logprobs":<logprobs or null>,"finish_reason":null}`.
    fn choice(&mut self, choice: u32, delta: &Value, logprobs: Option<&Value>) {
        self.raw("{\"index\":");
        self.number(choice);
        self.raw(",\"delta\":");
        self.value(delta);
        self.raw(",\"logprobs\":");
        match logprobs {
            Some(logprobs) => self.value(logprobs),
            None => self.raw("null"),
        }
        self.raw(",\"finish_reason\":null}");
    }

    /// A choice whose delta is one piece of `field`, with its logprobs if asked.
    fn piece_choice(
        &mut self,
        choice: u32,
        field: PieceField,
        piece: &str,
        top_logprobs: Option<u8>,
    ) {
        self.raw("{\"index\":");
        self.number(choice);
        self.raw(match field {
            PieceField::Content => ",\"delta\":{\"content\":",
            PieceField::Refusal => ",\"delta\":{\"refusal\":",
        });
        self.string(piece);
        self.raw("},\"logprobs\":");
        match top_logprobs {
            Some(top) => {
                let entries = Value::Array(vec![logprobs::entry(piece, top)]);
                let logprobs = match field {
                    PieceField::Content => json!({ "content": entries, "refusal": null }),
                    PieceField::Refusal => json!({ "content": null, "refusal": entries }),
                };
                self.value(&logprobs);
            }
            None => self.raw("null"),
        }
        self.raw(",\"finish_reason\":null}");
    }
}
