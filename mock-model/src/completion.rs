//! `POST /v1/chat/completions`: deterministic output, honest usage, injected failures.
//!
//! Output token `i` is the `i`-th word of a fixed sentence; every word is exactly one `cl100k_base` token,
//! so a client counting the streamed text with tiktoken finds the same completion tokens as reported.
//! Prompt tokens follow OpenAI's cookbook rule over `cl100k_base`: 3 per message, plus the tokens of its
//! role, content and name (1 more when a name is given), plus 3 for the reply's priming.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::behaviour::{Behaviour, Failure, UsageReported};

/// The words output tokens cycle through; each is one `cl100k_base` token.
pub const WORDS: [&str; 10] = [
    " The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ".",
];

/// How long an injected mid-stream failure waits for the chunks before it to reach the client.
const ABORT_FLUSH_DELAY: Duration = Duration::from_millis(50);

/// The most output tokens one completion produces, whatever it asks for.
pub const MAX_OUTPUT_TOKENS: u32 = 100_000;

/// The subset of an OpenAI chat completion request the mock reads.
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    #[serde(default)]
    pub messages: Vec<ChatMessage>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    /// A string, or an array of content parts whose `text` fields are read.
    #[serde(default)]
    pub content: Value,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// Prompt tokens of a conversation (see the module docs for the rule).
pub fn prompt_tokens(messages: &[ChatMessage]) -> u32 {
    let bpe = tiktoken_rs::cl100k_base_singleton();
    let count = |text: &str| bpe.encode_ordinary(text).len();
    let mut total = 3usize;
    for message in messages {
        total += 3 + count(&message.role) + count(&content_text(&message.content));
        if let Some(name) = &message.name {
            total += 1 + count(name);
        }
    }
    u32::try_from(total).unwrap_or(u32::MAX)
}

/// The text of a message's content: the string itself or its text parts joined.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// What a completion will do, decided before the first byte goes out.
#[derive(Debug, Clone)]
struct Plan {
    id: String,
    model: String,
    created: u64,
    /// Tokens to emit.
    tokens: u32,
    finish_reason: &'static str,
    prompt_tokens: u32,
    /// Reported completion tokens; `None` = the tokens actually emitted.
    forced_completion_tokens: Option<u32>,
    token_latency: Duration,
    include_usage: bool,
    /// Break the stream after this many tokens.
    abort_after: Option<(u32, UsageReported)>,
}

impl Plan {
    fn new(state: &AppState, request: &ChatRequest, behaviour: Behaviour, serial: u64) -> Plan {
        let wanted = behaviour
            .output_tokens
            .or(behaviour.forced_usage.map(|usage| usage.completion_tokens))
            .unwrap_or(state.config.output_tokens)
            .min(MAX_OUTPUT_TOKENS);
        let limit = request.max_completion_tokens.or(request.max_tokens);
        let (tokens, finish_reason) = match limit {
            Some(limit) if limit < wanted => (limit, "length"),
            _ => (wanted, "stop"),
        };
        let abort_after = match behaviour.failure {
            Some(Failure::MidStream {
                after_tokens,
                usage_reported,
            }) => Some((after_tokens.min(tokens), usage_reported)),
            Some(Failure::BeforeFirstToken { .. }) | None => None,
        };
        Plan {
            id: format!("chatcmpl-mock-{serial}"),
            model: request.model.clone(),
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_secs()),
            tokens,
            finish_reason,
            prompt_tokens: behaviour.forced_usage.map_or_else(
                || prompt_tokens(&request.messages),
                |usage| usage.prompt_tokens,
            ),
            forced_completion_tokens: behaviour.forced_usage.map(|usage| usage.completion_tokens),
            token_latency: Duration::from_millis(
                behaviour
                    .token_latency_ms
                    .unwrap_or(state.config.token_latency_ms),
            ),
            include_usage: request
                .stream_options
                .as_ref()
                .and_then(|options| options.include_usage)
                .unwrap_or(false),
            abort_after,
        }
    }

    fn usage(&self, emitted: u32) -> Value {
        let completion = self.forced_completion_tokens.unwrap_or(emitted);
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": u64::from(self.prompt_tokens) + u64::from(completion),
        })
    }

    fn text(&self, tokens: u32) -> String {
        (0..tokens)
            .map(|index| WORDS[index as usize % WORDS.len()])
            .collect()
    }

    fn chunk(&self, choices: Value, usage: Option<Value>) -> Bytes {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        });
        if let Some(usage) = usage {
            chunk["usage"] = usage;
        }
        Bytes::from(format!("data: {chunk}\n\n"))
    }
}

/// One piece of a streamed answer.
#[derive(Debug, Clone, Copy)]
enum Step {
    Token(u32),
    Finish,
    Usage(u32),
    Done,
    Abort,
}

fn steps(plan: &Plan) -> Vec<Step> {
    if let Some((after, usage_reported)) = plan.abort_after {
        let mut steps: Vec<Step> = (0..after).map(Step::Token).collect();
        if usage_reported == UsageReported::Yes {
            steps.push(Step::Usage(after));
        }
        steps.push(Step::Abort);
        return steps;
    }
    let mut steps: Vec<Step> = (0..plan.tokens).map(Step::Token).collect();
    steps.push(Step::Finish);
    if plan.include_usage {
        steps.push(Step::Usage(plan.tokens));
    }
    steps.push(Step::Done);
    steps
}

/// The handler.
pub async fn chat_completions(
    State(state): State<AppState>,
    Json(request): Json<ChatRequest>,
) -> Response {
    let serial = state.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let behaviour = Behaviour::from_model(&request.model);
    tracing::debug!(model = %request.model, serial, "chat completion");
    if let Some(Failure::BeforeFirstToken { status }) = behaviour.failure {
        return error_response(status, "injected failure before the first token");
    }
    let plan = Plan::new(&state, &request, behaviour, serial);
    if request.stream.unwrap_or(false) {
        streamed(plan)
    } else {
        whole(plan)
    }
}

fn streamed(plan: Plan) -> Response {
    let steps = steps(&plan);
    let body = futures::stream::unfold((plan, steps.into_iter()), |(plan, mut steps)| async move {
        let step = steps.next()?;
        let item = match step {
            Step::Token(index) => {
                if !plan.token_latency.is_zero() {
                    tokio::time::sleep(plan.token_latency).await;
                }
                let delta = if index == 0 {
                    json!({ "role": "assistant", "content": WORDS[0] })
                } else {
                    json!({ "content": WORDS[index as usize % WORDS.len()] })
                };
                Ok(plan.chunk(
                    json!([{ "index": 0, "delta": delta, "finish_reason": null }]),
                    None,
                ))
            }
            Step::Finish => Ok(plan.chunk(
                json!([{ "index": 0, "delta": {}, "finish_reason": plan.finish_reason }]),
                None,
            )),
            Step::Usage(emitted) => Ok(plan.chunk(json!([]), Some(plan.usage(emitted)))),
            Step::Done => Ok(Bytes::from_static(b"data: [DONE]\n\n")),
            // An error from the body stream makes hyper cut the connection mid-response. Hyper drops
            // what it has not written yet, so give it a moment to flush the chunks sent before.
            Step::Abort => {
                tokio::time::sleep(ABORT_FLUSH_DELAY).await;
                Err(std::io::Error::other("injected failure mid-stream"))
            }
        };
        Some((item, (plan, steps)))
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

fn whole(plan: Plan) -> Response {
    if plan.abort_after.is_some() {
        return error_response(500, "injected failure mid-completion");
    }
    let body = json!({
        "id": plan.id,
        "object": "chat.completion",
        "created": plan.created,
        "model": plan.model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": plan.text(plan.tokens), "refusal": null },
            "finish_reason": plan.finish_reason,
            "logprobs": null,
        }],
        "usage": plan.usage(plan.tokens),
    });
    Json(body).into_response()
}

/// An OpenAI-style error body with the given HTTP status.
fn error_response(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let kind = if status == StatusCode::TOO_MANY_REQUESTS {
        "rate_limit_exceeded"
    } else {
        "server_error"
    };
    let body =
        json!({ "error": { "message": message, "type": kind, "param": null, "code": null } });
    (status, Json(body)).into_response()
}

/// `GET /v1/models`.
pub async fn models() -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{ "id": "mock", "object": "model", "created": 0, "owned_by": "mock-model" }],
    }))
}

/// `GET /stats`: how many chat completions were requested since start.
pub async fn stats(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "requests": state.requests.load(Ordering::Relaxed) }))
}

/// `GET /healthz`.
pub async fn healthz() -> &'static str {
    "ok"
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn every_word_is_one_cl100k_token() {
        let bpe = tiktoken_rs::cl100k_base_singleton();
        for word in WORDS {
            assert_eq!(bpe.encode_ordinary(word).len(), 1, "{word:?}");
        }
    }

    #[test]
    fn prompt_tokens_follow_the_cookbook_rule() {
        let messages = vec![ChatMessage {
            role: "user".into(),
            content: json!("Hello world"),
            name: None,
        }];
        // 3 (priming) + 3 (message) + 1 ("user") + 2 ("Hello world").
        assert_eq!(prompt_tokens(&messages), 9);
    }
}
