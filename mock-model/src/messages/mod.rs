//! `POST /v1/messages` (also `?beta=true`) and `POST /v1/messages/count_tokens`: Anthropic's Messages API,
//! spoken natively like api.anthropic.com, so a gateway can pass Claude requests through unchanged.
//!
//! The body is read as JSON and recorded whole (see [`crate::recording`]) before anything else; the model
//! name's directives (see [`crate::behaviour`]) then stall or fail the request (with Anthropic's error
//! bodies, see [`error`]) before the rest is checked (see [`request`]). What the answer says is planned by
//! [`crate::answer`] exactly as for chat completions (tools by [`crate::tools`]), after a thinking block
//! when thinking is on (see [`thinking`]); prompt tokens follow [`prompt`] and split into cache reads,
//! cache writes and uncached input as [`cache`] says.
//!
//! Answer: `{"id": "msg_mock_<serial>", "type": "message", "role": "assistant", "model", "content": [...],
//! "stop_reason", "stop_sequence": null, "usage"}` with content blocks `thinking` `{thinking, signature}`,
//! `text` `{text}` (words, a JSON object, or the refusal) and `tool_use` `{id: "toolu_mock_<serial>_<i>",
//! name, input}`; `stop_reason` `end_turn`, `max_tokens` (`max_tokens` cut the answer), `tool_use` or
//! `refusal` (the `refuse` directive). `usage` = `{input_tokens, cache_creation_input_tokens,
//! cache_read_input_tokens, cache_creation: {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens},
//! output_tokens, service_tier: "standard"}`; `output_tokens` counts the thinking and the answer.
//! `usage-<p>-<c>` reports `input_tokens` p and `output_tokens` c, with no cache read or write.
//!
//! Streamed (`"stream": true`) as Anthropic's SSE (the order is in `messages/stream.rs`). The injected
//! failures: `abort-<n>` breaks the connection after `n` events (a token each, or a tool call's start),
//! `abortusage-<n>` after the `message_delta` that follows them, `streamerror-<n>` sends `event: error`
//! with an `overloaded_error` after them; not streamed, they answer 500 `api_error`.
//!
//! `count_tokens` answers `{"input_tokens": n}`, the whole prompt as `/v1/messages` counts it (cached or
//! not), and neither reads nor writes the cache; `max_tokens` is optional there.

pub mod cache;
pub mod error;
pub mod prompt;
pub mod request;
mod stream;
pub mod thinking;
mod whole;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::AppState;
use crate::answer::{Answer, Ask, FinishReason};
use crate::behaviour::{Behaviour, Failure, UsageReported};
use crate::config::Config;
use crate::tools::CallIds;
use cache::{PromptCache, PromptUsage};
use error::AnthropicError;
use prompt::Prompt;
use request::{MessagesRequest, Purpose, Thinking as ThinkingMode};
use thinking::Thinking;

/// The route, as recorded.
pub const PATH: &str = "/v1/messages";
/// The token counting route, as recorded.
pub const COUNT_TOKENS_PATH: &str = "/v1/messages/count_tokens";

/// `POST /v1/messages`.
pub async fn messages(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let serial = state.messages.fetch_add(1, Ordering::Relaxed) + 1;
    match respond(&state, serial, &headers, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// `POST /v1/messages/count_tokens`.
pub async fn count_tokens(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.count_tokens.fetch_add(1, Ordering::Relaxed);
    let counted = async {
        let body = receive(&state, COUNT_TOKENS_PATH, &headers, &body).await?;
        let request = MessagesRequest::parse(&body, Purpose::CountTokens)?;
        Ok::<_, AnthropicError>(Prompt::new(&request).tokens())
    };
    match counted.await {
        Ok(input_tokens) => Json(json!({ "input_tokens": input_tokens })).into_response(),
        Err(error) => error.into_response(),
    }
}

/// Parses and records the body, then acts on the model name's stall and `fail` directives.
async fn receive(
    state: &AppState,
    path: &'static str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Arc<Value>, AnthropicError> {
    let body: Arc<Value> = Arc::new(serde_json::from_slice(body).map_err(|_| {
        AnthropicError::invalid("There was an error parsing the body: it is not valid JSON.")
    })?);
    state.recorder.record(path, headers, Arc::clone(&body));
    let behaviour = Behaviour::from_model(MessagesRequest::model(&body)?);
    if let Some(stall_ms) = behaviour.stall_ms {
        tokio::time::sleep(Duration::from_millis(stall_ms)).await;
    }
    if let Some(Failure::BeforeFirstToken { status }) = behaviour.failure {
        return Err(AnthropicError::injected(status));
    }
    Ok(body)
}

async fn respond(
    state: &AppState,
    serial: u64,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, AnthropicError> {
    let body = receive(state, PATH, headers, body).await?;
    let request = MessagesRequest::parse(&body, Purpose::Message)?;
    let behaviour = Behaviour::from_model(request.model);
    tracing::debug!(model = request.model, serial, "message");
    let plan = Plan::new(
        &state.config,
        &state.prompt_cache,
        &request,
        behaviour,
        serial,
    );
    match (request.stream, plan.ending) {
        (true, _) => Ok(stream::response(plan)),
        (false, Ending::Complete) => Ok(whole::response(&plan)),
        (false, Ending::Abort { .. } | Ending::StreamError { .. }) => {
            Err(AnthropicError::InjectedMidCompletion)
        }
    }
}

/// Why a message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    ToolUse,
    Refusal,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::MaxTokens => "max_tokens",
            StopReason::ToolUse => "tool_use",
            StopReason::Refusal => "refusal",
        }
    }
}

/// How a streamed message ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Every block closed, `message_delta`, `message_stop`.
    Complete,
    /// Break the connection after this many events (after `message_delta` if `usage_reported`).
    Abort {
        after_events: usize,
        usage_reported: UsageReported,
    },
    /// `event: error` after this many events, then a clean end.
    StreamError { after_events: usize },
}

/// What a message will do, decided before the first byte goes out.
#[derive(Debug, Clone)]
struct Plan {
    id: String,
    model: String,
    thinking: Option<Thinking>,
    answer: Answer,
    stop_reason: StopReason,
    prompt: PromptUsage,
    /// Reported output tokens; `None` = the tokens actually emitted.
    forced_output_tokens: Option<u32>,
    token_latency: Duration,
    ending: Ending,
}

impl Plan {
    fn new(
        config: &Config,
        cache: &PromptCache,
        request: &MessagesRequest<'_>,
        behaviour: Behaviour,
        serial: u64,
    ) -> Plan {
        let thinking = match request.thinking {
            ThinkingMode::Enabled { .. } | ThinkingMode::Adaptive => {
                Some(Thinking::new(request.max_tokens))
            }
            ThinkingMode::Disabled => None,
        };
        let thinking_tokens = thinking
            .as_ref()
            .map_or(0, |thinking| thinking.text.tokens());
        let ask = Ask {
            tools: &request.tools,
            tool_choice: request.tool_choice,
            parallel_tool_calls: request.parallel_tool_calls,
            turn: request.turn(),
            format: request.format,
            max_tokens: request
                .max_tokens
                .map(|limit| limit.saturating_sub(thinking_tokens)),
        };
        let (answer, finish_reason) = Answer::plan(
            &ask,
            &behaviour,
            config.output_tokens,
            CallIds::messages(serial),
        );
        let stop_reason = match (finish_reason, &answer) {
            _ if thinking.as_ref().is_some_and(Thinking::is_cut) => StopReason::MaxTokens,
            (FinishReason::Length, _) => StopReason::MaxTokens,
            (FinishReason::ToolCalls, _) => StopReason::ToolUse,
            (FinishReason::Stop, Answer::Refusal(_)) => StopReason::Refusal,
            (FinishReason::Stop, Answer::Content(_) | Answer::ToolCalls(_)) => StopReason::EndTurn,
        };
        let prompt = match behaviour.forced_usage {
            Some(usage) => PromptUsage {
                uncached: usage.prompt_tokens.into(),
                ..PromptUsage::default()
            },
            None => cache.apply(&Prompt::new(request), Instant::now()),
        };
        let events = thinking.as_ref().map_or(0, |thinking| thinking.text.len()) + answer.events();
        let ending = match behaviour.failure {
            Some(Failure::MidStream {
                after_tokens,
                usage_reported,
            }) => Ending::Abort {
                after_events: (after_tokens as usize).min(events),
                usage_reported,
            },
            Some(Failure::StreamError { after_tokens }) => Ending::StreamError {
                after_events: (after_tokens as usize).min(events),
            },
            Some(Failure::BeforeFirstToken { .. }) | None => Ending::Complete,
        };
        Plan {
            id: format!("msg_mock_{serial}"),
            model: request.model.to_owned(),
            thinking,
            answer,
            stop_reason,
            prompt,
            forced_output_tokens: behaviour.forced_usage.map(|usage| usage.completion_tokens),
            token_latency: Duration::from_millis(
                behaviour
                    .token_latency_ms
                    .unwrap_or(config.token_latency_ms),
            ),
            ending,
        }
    }

    /// Thinking pieces, each one event of the stream before the answer's.
    fn thinking_events(&self) -> usize {
        self.thinking
            .as_ref()
            .map_or(0, |thinking| thinking.text.len())
    }

    /// Events of the whole message: the thinking's pieces, then the answer's events.
    fn events(&self) -> usize {
        self.thinking_events() + self.answer.events()
    }

    /// Output tokens once the first `events` events are out.
    fn output_tokens(&self, events: usize) -> u32 {
        self.forced_output_tokens.unwrap_or_else(|| {
            let thinking_events = self.thinking_events();
            let thinking = self.thinking.as_ref().map_or(0, |thinking| {
                thinking.text.tokens_of_first(events.min(thinking_events))
            });
            thinking.saturating_add(
                self.answer
                    .tokens_of_first(events.saturating_sub(thinking_events)),
            )
        })
    }

    /// The prompt's usage members, as `message_delta` carries them.
    fn prompt_usage(&self) -> Value {
        json!({
            "input_tokens": self.prompt.uncached,
            "cache_creation_input_tokens": self.prompt.written(),
            "cache_read_input_tokens": self.prompt.read,
        })
    }

    /// The whole `usage` object once the first `events` events are out.
    fn usage(&self, events: usize) -> Value {
        json!({
            "input_tokens": self.prompt.uncached,
            "cache_creation_input_tokens": self.prompt.written(),
            "cache_read_input_tokens": self.prompt.read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.prompt.written_5m,
                "ephemeral_1h_input_tokens": self.prompt.written_1h,
            },
            "output_tokens": self.output_tokens(events),
            "service_tier": "standard",
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::answer::{Content, REFUSAL};
    use crate::tokens;
    use clap::Parser;

    fn plan(body: Value) -> Plan {
        let config = Config::parse_from(["mock-model"]);
        let request = MessagesRequest::parse(&body, Purpose::Message).unwrap();
        let behaviour = Behaviour::from_model(request.model);
        Plan::new(&config, &PromptCache::default(), &request, behaviour, 1)
    }

    #[test]
    fn thinking_opens_the_answer_and_counts_in_output_tokens() {
        let plan = plan(json!({ "model": "mock-tokens-4", "max_tokens": 2048,
            "thinking": { "type": "enabled", "budget_tokens": 1024 },
            "messages": [{ "role": "user", "content": "Hi" }] }));
        let thinking = plan.thinking.as_ref().unwrap();
        assert_eq!(thinking.text.text(), thinking::THINKING);
        assert_eq!(
            plan.output_tokens(plan.events()),
            tokens::count(thinking::THINKING) + 4
        );
        assert_eq!(plan.stop_reason, StopReason::EndTurn);
        let off = super::tests::plan(json!({ "model": "mock", "max_tokens": 20,
            "thinking": { "type": "disabled" }, "messages": [{ "role": "user", "content": "Hi" }] }));
        assert!(off.thinking.is_none());
    }

    #[test]
    fn max_tokens_cuts_the_thinking_first_then_the_answer() {
        let thinking_tokens = tokens::count(thinking::THINKING);
        let plan = plan(json!({ "model": "mock", "max_tokens": thinking_tokens + 3,
            "thinking": { "type": "adaptive" }, "messages": [{ "role": "user", "content": "Hi" }] }));
        assert!(matches!(
            plan.answer,
            Answer::Content(Content::Words { count: 3 })
        ));
        assert_eq!(plan.stop_reason, StopReason::MaxTokens);
        assert_eq!(plan.output_tokens(plan.events()), thinking_tokens + 3);
    }

    #[test]
    fn tools_are_called_by_the_chat_rules_with_toolu_ids() {
        let tools = json!([{ "name": "get_weather", "input_schema": { "type": "object",
            "properties": { "city": { "type": "string" } }, "required": ["city"] } }]);
        let asked = plan(json!({ "model": "mock", "max_tokens": 100, "tools": tools,
            "messages": [{ "role": "user", "content": "What is the weather in `Oslo`?" }] }));
        let Answer::ToolCalls(calls) = &asked.answer else {
            panic!("expected a tool call, got {:?}", asked.answer)
        };
        assert_eq!(calls[0].id, "toolu_mock_1_0");
        assert_eq!(calls[0].arguments.text(), r#"{"city":"Oslo"}"#);
        assert_eq!(asked.stop_reason, StopReason::ToolUse);
        let answered = plan(
            json!({ "model": "mock", "max_tokens": 100, "tools": tools, "messages": [
            { "role": "user", "content": "What is the weather in Oslo?" },
            { "role": "assistant", "content": [{ "type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": { "city": "Oslo" } }] },
            { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "toolu_1", "content": "Rain" }] },
        ] }),
        );
        assert!(matches!(
            answered.answer,
            Answer::Content(Content::Words { count: 16 })
        ));
        assert_eq!(answered.stop_reason, StopReason::EndTurn);
    }

    #[test]
    fn refusals_stop_with_refusal_and_forced_usage_skips_the_cache() {
        let refused = plan(json!({ "model": "mock-refuse", "max_tokens": 100,
            "messages": [{ "role": "user", "content": "Hi" }] }));
        assert_eq!(refused.stop_reason, StopReason::Refusal);
        assert_eq!(
            refused.output_tokens(refused.events()),
            tokens::count(REFUSAL)
        );
        let forced = plan(json!({ "model": "mock-usage-6548-108", "max_tokens": 500,
            "system": [{ "type": "text", "text": "Hi", "cache_control": { "type": "ephemeral" } }],
            "messages": [{ "role": "user", "content": "Hi" }] }));
        assert_eq!(
            forced.prompt,
            PromptUsage {
                uncached: 6548,
                ..PromptUsage::default()
            }
        );
        assert_eq!(forced.output_tokens(forced.events()), 108);
    }
}
