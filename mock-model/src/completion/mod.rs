//! `POST /v1/chat/completions`: deterministic answers (words, JSON, refusals, tool calls), `n` choices,
//! logprobs, honest usage and injected failures, streamed as SSE or whole.
//!
//! The body is read as JSON and recorded whole (see [`crate::recording`]) before anything else; the
//! model name's directives (see [`crate::behaviour`]) then stall or fail the request before the rest of the
//! body is checked (see [`request`]). Prompt tokens follow [`crate::prompt`]; what each choice says and
//! how it is counted follows [`crate::answer`]. With `n` choices every choice says the same, prompt tokens
//! are counted once and completion tokens are the sum over the choices.
//!
//! `usage` = `{prompt_tokens, completion_tokens, total_tokens, prompt_tokens_details: {cached_tokens,
//! audio_tokens: 0}, completion_tokens_details: {reasoning_tokens, audio_tokens: 0,
//! accepted_prediction_tokens: 0, rejected_prediction_tokens: 0}}`, the same streamed (in the usage chunk)
//! and whole:
//! - `cached_tokens`: the prompt's prefix read from the automatic prompt cache, as OpenAI caches prompts
//!   of 1,024 tokens or more: 0 the first time, then the longest cached prefix (at a message boundary) in
//!   whole 128-token blocks, 1,024, 1,152, …, never more than `prompt_tokens` (see [`cache`]);
//! - `reasoning_tokens`: with `reasoning_effort`, the share of `completion_tokens` reported as thought
//!   (`none` and `minimal` 0 %, `low` 25 %, `medium` 50 %, `high` 75 %, `xhigh` 90 %, rounded down; see
//!   [`reasoning`]), inside `completion_tokens` as OpenAI counts it; the answer's text and
//!   `completion_tokens` are the same as without `reasoning_effort`; 0 without it.
//!
//! `usage-<p>-<c>` reports `p` and `c` with 0 cached and 0 reasoning tokens, and neither reads nor writes
//! the cache; `cached-<n>` reports `cached_tokens` = min(`n`, `prompt_tokens`) instead of the cache's
//! figure, forced usage or not (see [`crate::behaviour`]).

pub mod cache;
pub mod logprobs;
pub mod reasoning;
pub mod request;
mod stream;
mod whole;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::AppState;
use crate::answer::{Answer, Ask, FinishReason};
use crate::behaviour::{Behaviour, Failure, UsageReported};
use crate::config::Config;
use crate::error::ApiError;
use crate::tools::CallIds;
use cache::{ChatPrompt, ChatPromptCache};
use reasoning::ReasoningEffort;
use request::{ChatRequest, Logprobs, Streaming};

/// The route, as recorded.
pub const PATH: &str = "/v1/chat/completions";

/// The `system_fingerprint` of every completion and chunk.
pub const SYSTEM_FINGERPRINT: &str = "fp_mock";

/// The handler.
pub async fn chat_completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let serial = state.chat_completions.fetch_add(1, Ordering::Relaxed) + 1;
    match respond(&state, serial, &headers, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn respond(
    state: &AppState,
    serial: u64,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let body: Arc<Value> =
        Arc::new(serde_json::from_slice(body).map_err(|_| ApiError::unparsable_body())?);
    state.recorder.record(PATH, headers, Arc::clone(&body));
    let model = ChatRequest::model(&body)?;
    let behaviour = Behaviour::from_model(model);
    tracing::debug!(model, serial, "chat completion");
    if let Some(stall_ms) = behaviour.stall_ms {
        tokio::time::sleep(Duration::from_millis(stall_ms)).await;
    }
    if let Some(Failure::BeforeFirstToken { status }) = behaviour.failure {
        return Err(ApiError::injected(status));
    }
    let request = ChatRequest::parse(&body)?;
    let plan = Plan::new(
        &state.config,
        &state.chat_prompt_cache,
        &request,
        behaviour,
        serial,
    );
    match request.stream {
        Streaming::Yes { .. } => Ok(stream::response(plan)),
        Streaming::No => match plan.ending {
            Ending::Complete { .. } => Ok(whole::response(&plan)),
            Ending::Abort { .. } | Ending::StreamError { .. } => {
                Err(ApiError::InjectedMidCompletion)
            }
        },
    }
}

/// What a completion will do, decided before the first byte goes out.
#[derive(Debug, Clone)]
struct Plan {
    id: String,
    model: String,
    created: u64,
    /// What every choice says.
    answer: Answer,
    finish_reason: FinishReason,
    choices: u32,
    prompt_tokens: u32,
    /// `prompt_tokens_details.cached_tokens`, at most `prompt_tokens`.
    cached_tokens: u32,
    /// Reported completion tokens; `None` = the tokens actually emitted.
    forced_completion_tokens: Option<u32>,
    /// What sets `reasoning_tokens`; `None` reports 0 (no `reasoning_effort`, or forced usage).
    reasoning_effort: Option<ReasoningEffort>,
    token_latency: Duration,
    logprobs: Logprobs,
    ending: Ending,
}

/// How a streamed completion ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// A finish chunk per choice, the usage chunk if asked, `[DONE]`.
    Complete { include_usage: bool },
    /// Break the connection after this many events per choice.
    Abort {
        after_events: usize,
        usage_reported: UsageReported,
    },
    /// An SSE error event after this many events per choice, then a clean end.
    StreamError { after_events: usize },
}

impl Plan {
    fn new(
        config: &Config,
        cache: &ChatPromptCache,
        request: &ChatRequest<'_>,
        behaviour: Behaviour,
        serial: u64,
    ) -> Plan {
        let ask = Ask {
            tools: &request.tools,
            tool_choice: request.tool_choice,
            parallel_tool_calls: request.parallel_tool_calls,
            turn: request.turn(),
            format: request.format,
            max_tokens: request.max_tokens,
        };
        let (answer, finish_reason) = Answer::plan(
            &ask,
            &behaviour,
            config.output_tokens,
            CallIds::chat(serial),
        );
        let events = answer.events();
        let ending = match (behaviour.failure, request.stream) {
            (
                Some(Failure::MidStream {
                    after_tokens,
                    usage_reported,
                }),
                _,
            ) => Ending::Abort {
                after_events: (after_tokens as usize).min(events),
                usage_reported,
            },
            (Some(Failure::StreamError { after_tokens }), _) => Ending::StreamError {
                after_events: (after_tokens as usize).min(events),
            },
            (Some(Failure::BeforeFirstToken { .. }) | None, Streaming::Yes { include_usage }) => {
                Ending::Complete { include_usage }
            }
            (Some(Failure::BeforeFirstToken { .. }) | None, Streaming::No) => Ending::Complete {
                include_usage: false,
            },
        };
        let (prompt_tokens, cached_tokens) = prompt_usage(cache, request, behaviour);
        Plan {
            id: format!("chatcmpl-mock-{serial}"),
            model: request.model.to_owned(),
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_secs()),
            answer,
            finish_reason,
            choices: request.choices,
            prompt_tokens,
            cached_tokens,
            forced_completion_tokens: behaviour.forced_usage.map(|usage| usage.completion_tokens),
            reasoning_effort: match behaviour.forced_usage {
                Some(_) => None,
                None => request.reasoning_effort,
            },
            token_latency: Duration::from_millis(
                behaviour
                    .token_latency_ms
                    .unwrap_or(config.token_latency_ms),
            ),
            logprobs: request.logprobs,
            ending,
        }
    }

    /// The usage object once every choice has sent its first `events` events.
    fn usage(&self, events: usize) -> Value {
        let completion = self.forced_completion_tokens.unwrap_or_else(|| {
            self.answer
                .tokens_of_first(events)
                .saturating_mul(self.choices)
        });
        let reasoning = self
            .reasoning_effort
            .map_or(0, |effort| effort.reasoning_tokens(completion));
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": u64::from(self.prompt_tokens) + u64::from(completion),
            "prompt_tokens_details": { "cached_tokens": self.cached_tokens, "audio_tokens": 0 },
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        })
    }
}

/// `prompt_tokens` and `cached_tokens`: forced by the model name, else counted and read from the cache
/// (see the module docs).
fn prompt_usage(
    cache: &ChatPromptCache,
    request: &ChatRequest<'_>,
    behaviour: Behaviour,
) -> (u32, u32) {
    let (prompt_tokens, cached_tokens) = match behaviour.forced_usage {
        Some(usage) => (usage.prompt_tokens, 0),
        None => {
            let prompt = ChatPrompt::new(request);
            let cached_tokens = match behaviour.forced_cached_tokens {
                // The forced figure stands in for the cache, which is left alone.
                Some(_) => 0,
                None => cache.apply(&prompt, Instant::now()),
            };
            (prompt.tokens(), cached_tokens)
        }
    };
    let cached_tokens = behaviour
        .forced_cached_tokens
        .unwrap_or(cached_tokens)
        .min(prompt_tokens);
    (prompt_tokens, cached_tokens)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::answer::{Content, REFUSAL};
    use crate::tokens;
    use clap::Parser;

    fn plan(body: Value) -> Plan {
        plan_with(&ChatPromptCache::default(), body)
    }

    fn plan_with(cache: &ChatPromptCache, body: Value) -> Plan {
        let config = Config::parse_from(["mock-model"]);
        let request = ChatRequest::parse(&body).unwrap();
        Plan::new(
            &config,
            cache,
            &request,
            Behaviour::from_model(request.model),
            1,
        )
    }

    fn usage(plan: &Plan) -> Value {
        plan.usage(plan.answer.events())
    }

    #[test]
    fn n_choices_sum_completion_tokens_and_count_the_prompt_once() {
        let messages = json!([{ "role": "user", "content": "Hello world" }]);
        let one = plan(json!({ "model": "mock-tokens-5", "messages": messages }));
        let three = plan(json!({ "model": "mock-tokens-5", "messages": messages, "n": 3 }));
        let usage = usage(&three);
        assert_eq!(usage["prompt_tokens"], json!(9));
        assert_eq!(usage["completion_tokens"], json!(15));
        assert_eq!(usage["total_tokens"], json!(24));
        assert_eq!(
            one.usage(one.answer.events())["completion_tokens"],
            json!(5)
        );
    }

    #[test]
    fn forced_usage_is_reported_as_is_with_no_cached_or_reasoning_tokens() {
        let plan = plan(json!({
            "model": "mock-usage-6548-108", "n": 2, "reasoning_effort": "high",
            "messages": [{ "role": "user", "content": "Hi" }],
        }));
        let usage = usage(&plan);
        assert_eq!(
            (
                usage["prompt_tokens"].clone(),
                usage["completion_tokens"].clone()
            ),
            (json!(6548), json!(108))
        );
        assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], json!(0));
        assert_eq!(
            usage["completion_tokens_details"]["reasoning_tokens"],
            json!(0)
        );
        assert_eq!(plan.answer.events(), 108);
    }

    #[test]
    fn the_same_long_request_twice_reports_its_cached_prefix_the_second_time() {
        let cache = ChatPromptCache::default();
        let body = json!({ "model": "mock", "messages": [
            { "role": "system", "content": " cat".repeat(1_300) },
            { "role": "user", "content": "Hi" },
        ] });
        let first = usage(&plan_with(&cache, body.clone()));
        let second = usage(&plan_with(&cache, body));
        assert_eq!(first["prompt_tokens_details"]["cached_tokens"], json!(0));
        let cached = second["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap();
        assert!(cached >= 1_024 && cached.is_multiple_of(128), "{cached}");
        assert!(cached <= second["prompt_tokens"].as_u64().unwrap());
        assert_eq!(first["prompt_tokens"], second["prompt_tokens"]);
    }

    #[test]
    fn the_cached_directive_forces_cached_tokens_up_to_the_prompt() {
        let hi = json!([{ "role": "user", "content": "Hi" }]);
        let cases = [
            ("mock-cached-5", 8, 5),
            ("mock-cached-100", 8, 8),
            ("mock-usage-6548-108-cached-2048", 6548, 2048),
            ("mock-cached-9000-usage-6548-108", 6548, 6548),
        ];
        for (model, prompt_tokens, cached_tokens) in cases {
            let cache = ChatPromptCache::default();
            for call in ["first", "second"] {
                let usage = usage(&plan_with(
                    &cache,
                    json!({ "model": model, "messages": hi }),
                ));
                assert_eq!(usage["prompt_tokens"], json!(prompt_tokens), "{model}");
                assert_eq!(
                    usage["prompt_tokens_details"]["cached_tokens"],
                    json!(cached_tokens),
                    "{model}, {call} call"
                );
            }
        }
    }

    #[test]
    fn reasoning_tokens_are_a_share_of_the_unchanged_completion_by_effort() {
        let hi = json!([{ "role": "user", "content": "Hi" }]);
        let without = plan(json!({ "model": "mock-tokens-10", "n": 2, "messages": hi }));
        assert_eq!(
            usage(&without)["completion_tokens_details"]["reasoning_tokens"],
            json!(0)
        );
        let cases = [
            ("none", 0),
            ("minimal", 0),
            ("low", 5),
            ("medium", 10),
            ("high", 15),
        ];
        for (effort, reasoning_tokens) in cases {
            let plan = plan(json!({ "model": "mock-tokens-10", "n": 2, "messages": hi,
                "reasoning_effort": effort }));
            let usage = usage(&plan);
            assert_eq!(usage["completion_tokens"], json!(20), "{effort}");
            assert_eq!(
                usage["completion_tokens_details"]["reasoning_tokens"],
                json!(reasoning_tokens),
                "{effort}"
            );
            assert_eq!(plan.answer, without.answer, "{effort}: the same answer");
        }
        let cut = plan(json!({ "model": "mock-tokens-7", "messages": hi,
            "reasoning_effort": "high" }));
        assert_eq!(
            usage(&cut)["completion_tokens_details"]["reasoning_tokens"],
            json!(5),
            "75 % of 7, rounded down"
        );
    }

    #[test]
    fn a_tool_call_is_answered_unless_the_last_message_is_a_tool_result() {
        let tools = json!([{ "type": "function", "function": { "name": "lookup" } }]);
        let asked = plan(json!({
            "model": "mock", "tools": tools,
            "messages": [{ "role": "user", "content": "Use lookup, please" }],
        }));
        assert!(matches!(asked.answer, Answer::ToolCalls(ref calls) if calls.len() == 1));
        assert_eq!(asked.finish_reason, FinishReason::ToolCalls);
        assert_eq!(
            asked.answer.tokens(),
            tokens::count("lookup") + tokens::count("{}")
        );
        let answered = plan(json!({
            "model": "mock", "tools": tools,
            "messages": [
                { "role": "user", "content": "Look it up" },
                { "role": "assistant", "tool_calls": [{ "id": "call_1", "type": "function",
                  "function": { "name": "lookup", "arguments": "{}" } }] },
                { "role": "tool", "tool_call_id": "call_1", "content": "42" },
            ],
        }));
        assert!(matches!(
            answered.answer,
            Answer::Content(Content::Words { count: 16 })
        ));
        assert_eq!(answered.finish_reason, FinishReason::Stop);
    }

    #[test]
    fn refusals_win_and_are_counted_with_tiktoken() {
        let plan = plan(json!({
            "model": "mock-refuse",
            "tools": [{ "type": "function", "function": { "name": "lookup" } }],
            "messages": [{ "role": "user", "content": "Hi" }],
        }));
        assert!(matches!(plan.answer, Answer::Refusal(_)));
        assert_eq!(plan.answer.tokens(), tokens::count(REFUSAL));
        assert_eq!(plan.finish_reason, FinishReason::Stop);
    }
}
