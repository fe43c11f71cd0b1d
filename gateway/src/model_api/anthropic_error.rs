//! Anthropic's error shape `{"type": "error", "error": {"type", "message"}}` for `/v1/messages`, so the
//! Anthropic SDKs raise their usual exceptions (`AuthenticationError`, `RateLimitError`, …). The type follows
//! the status as Anthropic's API uses them; a credit refusal is 402 `billing_error` with a message that says
//! which limit refused and what is left.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, error_response};

/// An [`ApiError`] in Anthropic's shape.
#[derive(Debug)]
pub struct AnthropicError(pub ApiError);

impl From<ApiError> for AnthropicError {
    fn from(error: ApiError) -> AnthropicError {
        AnthropicError(error)
    }
}

/// `{"type": "error", "error": {"type", "message"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnthropicErrorBody {
    /// Always `error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub error: AnthropicErrorObject,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnthropicErrorObject {
    /// `invalid_request_error`, `authentication_error`, `billing_error`, `permission_error`,
    /// `not_found_error`, `request_too_large`, `rate_limit_error`, `api_error` or `overloaded_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: String,
}

/// Anthropic's error type for a status.
fn kind_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        status if status >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

impl AnthropicError {
    /// The status, `Retry-After` and the body; logs the error like [`ApiError::body`].
    pub fn body(&self) -> (StatusCode, Option<u64>, AnthropicErrorBody) {
        let description = self.0.describe();
        self.0.log(description.status);
        let message = match &self.0 {
            ApiError::Provider(failure) => failure.message.clone(),
            _ => match &description.message {
                Some(text) => format!("{}: {text}", description.title),
                // A refusal's figures (e.g. the current balance, the cap) say why, in words.
                None if !description.details.is_empty() => {
                    let figures: Vec<String> = description
                        .details
                        .iter()
                        .map(|(name, value)| format!("{name} {value}"))
                        .collect();
                    format!("{} ({})", description.title, figures.join(", "))
                }
                None => description.title.to_string(),
            },
        };
        let body = AnthropicErrorBody {
            kind: "error",
            error: AnthropicErrorObject {
                kind: kind_of(description.status),
                message,
            },
        };
        (description.status, description.retry_after_secs, body)
    }
}

impl IntoResponse for AnthropicError {
    fn into_response(self) -> Response {
        let (status, retry_after_secs, body) = self.body();
        error_response(status, retry_after_secs, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_anthropic_types() {
        let cases = [
            (
                ApiError::billing(tonic::Status::unauthenticated("unknown key")),
                401,
                "authentication_error",
            ),
            (
                ApiError::executor(tonic::Status::invalid_argument("no messages")),
                400,
                "invalid_request_error",
            ),
            (
                ApiError::executor(tonic::Status::unavailable("down")),
                503,
                "overloaded_error",
            ),
        ];
        for (error, status, kind) in cases {
            let (http, _, body) = AnthropicError(error).body();
            assert_eq!(http.as_u16(), status);
            assert_eq!(body.kind, "error");
            assert_eq!(body.error.kind, kind);
        }
    }
}
