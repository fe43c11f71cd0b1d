//! Per-request behaviour, chosen by the request's `model` name so that any client (executor-svc included)
//! can drive it without special headers.
//!
//! The name is split on `-`; these directives are recognised anywhere in it, everything else is ignored
//! (so `gpt-4o-mini` or `mock` behave normally):
//!
//! | directive | effect |
//! |---|---|
//! | `tokens-<n>` | emit `n` output tokens (still capped by the request's `max_tokens`); in JSON mode, `n` words inside the object; a Messages thinking block comes on top |
//! | `latency-<ms>` | wait `ms` milliseconds before each streamed token (once per token position, whatever `n`) |
//! | `usage-<prompt>-<completion>` | report exactly these usage figures (chat completions: 0 cached tokens unless `cached-<n>`, 0 reasoning tokens, the prompt cache neither read nor written; Messages: `input_tokens` and `output_tokens`, no cache read or write); emits `completion` tokens unless `tokens-<n>` says otherwise |
//! | `cached-<n>` | chat completions: report `prompt_tokens_details.cached_tokens` = min(`n`, prompt tokens) instead of what the prompt cache says, which is neither read nor written (combines with `usage-<p>-<c>`); Messages ignores it |
//! | `fail-<status>` | answer HTTP `status` (e.g. 500, 429) with the API's error body for it, before any token (see below) |
//! | `abort-<n>` | stream `n` tokens, then break the connection without a usage chunk (Messages: without `message_delta`) |
//! | `abortusage-<n>` | stream `n` tokens and the usage chunk (Messages: `message_delta`), then break the connection without `[DONE]` (`message_stop`) |
//! | `streamerror-<n>` | stream `n` tokens, then one SSE `error` event, then end the body cleanly (no `[DONE]`, no usage); HTTP 500 when not streamed |
//! | `stall-<ms>` | wait `ms` milliseconds before answering at all (status and headers included) |
//! | `parallel` | with tools, call every tool at once (one call per tool) unless `parallel_tool_calls` is false (Messages: `disable_parallel_tool_use`) |
//! | `refuse` | answer a refusal (`message.refusal`; Messages: the refusal as text with `stop_reason: "refusal"`) instead of content or tool calls |
//!
//! `fail-<status>` and `stall-<ms>` also apply to `POST /v1/embeddings` and `POST /v1/messages/count_tokens`.
//! When `fail`, `abort`, `abortusage` and `streamerror` are combined, the last one in the name wins.
//!
//! On `/v1/messages` the bodies are Anthropic's (see [`crate::messages::error`]): 400 `invalid_request_error`,
//! 401 `authentication_error`, 402 `billing_error`, 403 `permission_error`, 404 `not_found_error`, 413
//! `request_too_large`, 429 `rate_limit_error` with `retry-after`, 500 (and other 5xx) `api_error`, 504
//! `timeout_error`, 503 and 529 `overloaded_error`; `streamerror-<n>` sends
//! `event: error` / `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`.
//!
//! Example: `mock-usage-6548-108` reports 6,548 prompt and 108 completion tokens;
//! `mock-usage-6548-108-cached-2048` reports 2,048 of the 6,548 prompt tokens as cached.

/// What one request asks of the mock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Behaviour {
    pub output_tokens: Option<u32>,
    pub token_latency_ms: Option<u64>,
    pub forced_usage: Option<ForcedUsage>,
    /// `cached_tokens` to report instead of the prompt cache's (chat completions).
    pub forced_cached_tokens: Option<u32>,
    pub failure: Option<Failure>,
    /// Wait before answering at all.
    pub stall_ms: Option<u64>,
    pub tool_calls: ToolCallFanOut,
    pub reply: Reply,
}

/// How many tools one answer calls when the request offers tools.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ToolCallFanOut {
    /// One call: the tool `tool_choice` names, else the first tool.
    #[default]
    One,
    /// One call per tool, unless the request sets `parallel_tool_calls: false`.
    EveryTool,
}

/// What kind of answer the model gives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Reply {
    /// Content, or tool calls when the request offers tools.
    #[default]
    Answer,
    /// A refusal, whatever the request.
    Refuse,
}

/// Usage figures to report instead of the counted ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForcedUsage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// An injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Answer this HTTP status before the first token.
    BeforeFirstToken { status: u16 },
    /// Break the stream after `after_tokens` tokens; `usage_reported` sends the usage chunk first.
    MidStream {
        after_tokens: u32,
        usage_reported: UsageReported,
    },
    /// Send an SSE error event after `after_tokens` tokens and end the stream cleanly.
    StreamError { after_tokens: u32 },
}

/// Whether a broken stream reported its usage before breaking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageReported {
    Yes,
    No,
}

impl Behaviour {
    /// Reads the directives of a model name (see the module docs).
    pub fn from_model(model: &str) -> Behaviour {
        let parts: Vec<&str> = model.split('-').collect();
        let number = |index: usize| parts.get(index).and_then(|part| part.parse::<u64>().ok());
        let small = |index: usize| number(index).and_then(|value| u32::try_from(value).ok());
        let mut behaviour = Behaviour::default();
        for (index, part) in parts.iter().enumerate() {
            match *part {
                "tokens" => behaviour.output_tokens = small(index + 1).or(behaviour.output_tokens),
                "latency" => {
                    behaviour.token_latency_ms = number(index + 1).or(behaviour.token_latency_ms)
                }
                "usage" => {
                    if let (Some(prompt_tokens), Some(completion_tokens)) =
                        (small(index + 1), small(index + 2))
                    {
                        behaviour.forced_usage = Some(ForcedUsage {
                            prompt_tokens,
                            completion_tokens,
                        });
                    }
                }
                "cached" => {
                    behaviour.forced_cached_tokens =
                        small(index + 1).or(behaviour.forced_cached_tokens)
                }
                "fail" => {
                    if let Some(status) =
                        number(index + 1).and_then(|value| u16::try_from(value).ok())
                    {
                        behaviour.failure = Some(Failure::BeforeFirstToken { status });
                    }
                }
                "abort" | "abortusage" => {
                    let usage_reported = if *part == "abort" {
                        UsageReported::No
                    } else {
                        UsageReported::Yes
                    };
                    if let Some(after_tokens) = small(index + 1) {
                        behaviour.failure = Some(Failure::MidStream {
                            after_tokens,
                            usage_reported,
                        });
                    }
                }
                "streamerror" => {
                    if let Some(after_tokens) = small(index + 1) {
                        behaviour.failure = Some(Failure::StreamError { after_tokens });
                    }
                }
                "stall" => behaviour.stall_ms = number(index + 1).or(behaviour.stall_ms),
                "parallel" => behaviour.tool_calls = ToolCallFanOut::EveryTool,
                "refuse" => behaviour.reply = Reply::Refuse,
                _ => {}
            }
        }
        behaviour
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn plain_model_names_have_no_directives() {
        for model in [
            "gpt-4o-mini",
            "mock",
            "",
            "tokens",
            "usage-1",
            "fail-abc",
            "stall",
            "streamerror-x",
            "parallels",
            "refused",
            "cached",
            "cached-many",
        ] {
            assert_eq!(
                Behaviour::from_model(model),
                Behaviour::default(),
                "{model}"
            );
        }
    }

    #[test]
    fn directives_are_read_anywhere_in_the_name() {
        let behaviour = Behaviour::from_model("mock-usage-6548-108-latency-5");
        assert_eq!(
            behaviour.forced_usage,
            Some(ForcedUsage {
                prompt_tokens: 6548,
                completion_tokens: 108
            })
        );
        assert_eq!(behaviour.token_latency_ms, Some(5));
        assert_eq!(
            Behaviour::from_model("mock-tokens-40").output_tokens,
            Some(40)
        );
        assert_eq!(
            Behaviour::from_model("mock-fail-429").failure,
            Some(Failure::BeforeFirstToken { status: 429 })
        );
        assert_eq!(
            Behaviour::from_model("mock-abortusage-3").failure,
            Some(Failure::MidStream {
                after_tokens: 3,
                usage_reported: UsageReported::Yes
            })
        );
        assert_eq!(
            Behaviour::from_model("mock-abort-7").failure,
            Some(Failure::MidStream {
                after_tokens: 7,
                usage_reported: UsageReported::No
            })
        );
    }

    #[test]
    fn cached_tokens_are_forced_alone_or_with_forced_usage() {
        assert_eq!(
            Behaviour::from_model("mock-cached-1024").forced_cached_tokens,
            Some(1024)
        );
        assert_eq!(
            Behaviour::from_model("mock-usage-6548-108-cached-2048"),
            Behaviour {
                forced_usage: Some(ForcedUsage {
                    prompt_tokens: 6548,
                    completion_tokens: 108
                }),
                forced_cached_tokens: Some(2048),
                ..Behaviour::default()
            }
        );
    }

    #[test]
    fn failure_and_timing_directives_are_parsed() {
        assert_eq!(
            Behaviour::from_model("mock-streamerror-3").failure,
            Some(Failure::StreamError { after_tokens: 3 })
        );
        assert_eq!(Behaviour::from_model("mock-stall-100").stall_ms, Some(100));
        assert_eq!(
            Behaviour::from_model("mock-stall-100-fail-500"),
            Behaviour {
                stall_ms: Some(100),
                failure: Some(Failure::BeforeFirstToken { status: 500 }),
                ..Behaviour::default()
            }
        );
    }

    #[test]
    fn answer_shape_directives_are_parsed() {
        assert_eq!(
            Behaviour::from_model("mock-parallel").tool_calls,
            ToolCallFanOut::EveryTool
        );
        assert_eq!(Behaviour::from_model("mock-refuse").reply, Reply::Refuse);
        let both = Behaviour::from_model("gpt-4o-mini-parallel-refuse-tokens-4");
        assert_eq!(
            (both.tool_calls, both.reply, both.output_tokens),
            (ToolCallFanOut::EveryTool, Reply::Refuse, Some(4))
        );
    }
}
