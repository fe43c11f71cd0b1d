//! Which error shape a path answers in, and the retry hint of the model APIs (QUICK_START.md §6).
//!
//! Under `/v1/messages` (its sub-routes and unknown paths below it included) errors are Anthropic's
//! ([`crate::model_api::anthropic_error`]); under every other `/v1/` path OpenAI's ([`crate::model_api::openai_error`]); elsewhere
//! the platform's own REST shape. The answers that no code path of a handler produces — the failed
//! authentication limiter, an unknown route, a method a route does not serve — go through [`ErrorShape`] too,
//! so an SDK always finds the shape it parses.
//!
//! On the model APIs every refusal that cannot succeed when repeated (400, 401, 402, 403, 404, 405, 409, 413,
//! 422) carries `x-should-retry: false`: the Stainless-generated SDKs of OpenAI and Anthropic, and the agents
//! built on them (Claude Code, the openai-agents SDK), otherwise retry 401 and 409 with back-off, and Claude
//! Code retries a revoked key for minutes. 429 and 5xx keep their `Retry-After` and are left retryable.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, SHOULD_RETRY_HEADER};
use crate::model_api::anthropic_error::AnthropicError;
use crate::model_api::openai_error::OpenAiError;

/// The error body a path answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    /// `{"error": "<Title>", "code", "details"}`, the REST API's.
    Platform,
    /// `{"error": {"message", "type", "param", "code"}}`.
    OpenAi,
    /// `{"type": "error", "error": {"type", "message"}}`.
    Anthropic,
}

impl ErrorShape {
    /// The shape of the API `path` belongs to.
    pub fn of(path: &str) -> ErrorShape {
        if path == "/v1/messages" || path.starts_with("/v1/messages/") {
            ErrorShape::Anthropic
        } else if path == "/v1" || path.starts_with("/v1/") {
            ErrorShape::OpenAi
        } else {
            ErrorShape::Platform
        }
    }

    /// `error` as an answer in this shape.
    pub fn respond(self, error: ApiError) -> Response {
        match self {
            ErrorShape::Platform => error.into_response(),
            ErrorShape::OpenAi => OpenAiError(error).into_response(),
            ErrorShape::Anthropic => AnthropicError(error).into_response(),
        }
    }

    fn is_model_api(self) -> bool {
        match self {
            ErrorShape::Platform => false,
            ErrorShape::OpenAi | ErrorShape::Anthropic => true,
        }
    }
}

/// Whether a client repeating the same call could get another answer: a rate limit or a server-side failure
/// can pass, a refusal of the request or of the key cannot.
pub fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
}

/// The layer of the model APIs: `x-should-retry: false` on every client error that is not retryable.
pub async fn retry_hint(request: Request, next: Next) -> Response {
    let shape = ErrorShape::of(request.uri().path());
    let mut response = next.run(request).await;
    let status = response.status();
    if shape.is_model_api() && status.is_client_error() && !is_retryable(status) {
        response
            .headers_mut()
            .insert(SHOULD_RETRY_HEADER, HeaderValue::from_static("false"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_choose_their_api_shape() {
        let cases = [
            ("/v1/messages", ErrorShape::Anthropic),
            ("/v1/messages/count_tokens", ErrorShape::Anthropic),
            ("/v1/messages/batches", ErrorShape::Anthropic),
            ("/v1/messagesx", ErrorShape::OpenAi),
            ("/v1/chat/completions", ErrorShape::OpenAi),
            ("/v1/responses", ErrorShape::OpenAi),
            ("/v1/unknown", ErrorShape::OpenAi),
            ("/v1", ErrorShape::OpenAi),
            ("/v10/x", ErrorShape::Platform),
            ("/billing/account", ErrorShape::Platform),
            ("/execute", ErrorShape::Platform),
        ];
        for (path, shape) in cases {
            assert_eq!(ErrorShape::of(path), shape, "{path}");
        }
    }

    #[test]
    fn only_refusals_that_cannot_pass_are_final() {
        for status in [400, 401, 402, 403, 404, 405, 409, 413, 422] {
            assert!(
                !is_retryable(StatusCode::from_u16(status).unwrap_or_default()),
                "{status}"
            );
        }
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(
                is_retryable(StatusCode::from_u16(status).unwrap_or_default()),
                "{status}"
            );
        }
    }
}
