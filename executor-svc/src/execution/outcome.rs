//! What an execution ends with: the [`Outcome`] (output, token counts, costs, where the charge stands, why
//! the output ended) and, for a streaming client, the [`StreamEvent`]s that lead to it.

use proto::billing::v1::{MeterOpened, RateLimitStatus};
use proto::ending::FinishReason;
use proto::executor::v1::{RateLimit, RateLimits};

use crate::error::ExecutorError;
use proto::ids::ExecutionId;

/// Where the charge stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillingView {
    /// Internal key: never charged, no billing block.
    Internal,
    Settled {
        balance_after: Option<String>,
        total_spent: Option<String>,
    },
    /// Spooled; replayed until billing-svc acknowledges it.
    Pending,
}

/// A finished execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub execution_id: ExecutionId,
    pub model: String,
    /// The first choice's text (streams send it as deltas too).
    pub output: String,
    /// Unary [`Shape::ChatCompletion`](super::request::Shape::ChatCompletion) calls: the provider's answer
    /// as a `chat.completion`.
    pub chat_completion: Option<String>,
    /// Streamed [`Shape::ChatCompletion`](super::request::Shape::ChatCompletion) calls: the provider's usage
    /// chunk as it sent it.
    pub usage_chunk: Option<String>,
    /// Unary calls served natively by an Anthropic provider: its answer as a `message`.
    pub message: Option<String>,
    /// Streams served natively by an Anthropic provider: its `message_delta` event, held back.
    pub usage_event: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// As billing-svc recorded them; `None` while the settlement is pending.
    pub costs: Option<Costs>,
    pub billing: BillingView,
    pub finish: FinishReason,
    /// The key's per-minute limits as they stood at open.
    pub rate_limits: Option<RateLimits>,
}

/// The costs of an execution as decimal USD strings, from billing-svc's usage record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Costs {
    pub input: String,
    pub output: String,
    pub total: String,
}

/// What a streaming client receives, in order: deltas or chunks, then one final result.
#[derive(Debug)]
pub enum StreamEvent {
    /// [`Shape::Text`](super::request::Shape::Text): a piece of the first choice's text.
    Delta(String),
    /// [`Shape::ChatCompletion`](super::request::Shape::ChatCompletion): a provider chunk as it sent it.
    Chunk(String),
    /// [`Shape::ChatCompletion`](super::request::Shape::ChatCompletion) served natively by an Anthropic
    /// provider: one of its events as it sent it.
    Event(String),
    /// First, when the key has per-minute limits: where it stands against them.
    Limits(RateLimits),
    Done(Box<Result<Outcome, ExecutorError>>),
}

/// The key's per-minute limits billing-svc reported at open, if it has any.
pub fn rate_limits(opened: &MeterOpened) -> Option<RateLimits> {
    let window = |status: &RateLimitStatus| RateLimit {
        limit: status.limit,
        remaining: status.remaining,
        reset_secs: status.reset_secs,
    };
    (opened.requests.is_some() || opened.tokens.is_some()).then(|| RateLimits {
        requests: opened.requests.as_ref().map(window),
        tokens: opened.tokens.as_ref().map(window),
    })
}
