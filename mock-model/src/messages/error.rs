//! Every error `/v1/messages` answers, in Anthropic's shape `{"type":"error","error":{"type","message"}}`,
//! with the types and headers api.anthropic.com sends for each status (`fail-<status>` included).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::fields::{Expected, FieldError};

/// Seconds a rate-limited client is told to wait (`retry-after`).
const RETRY_AFTER_SECS: &str = "2";

/// The message of `overloaded_error`, as Anthropic words it (HTTP 529 and the mid-stream `error` event).
pub const OVERLOADED_MESSAGE: &str = "Overloaded";

/// The message of `api_error`, as Anthropic words it.
const API_ERROR_MESSAGE: &str = "Internal server error";

/// An error answer of the Messages API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnthropicError {
    /// The request is malformed: HTTP 400, `invalid_request_error`.
    InvalidRequest { message: String },
    /// `fail-<status>`: this status with the body Anthropic sends for it.
    Injected { status: StatusCode },
    /// A mid-stream failure directive on a request that is not streamed: HTTP 500, `api_error`.
    InjectedMidCompletion,
}

impl AnthropicError {
    pub fn invalid(message: impl Into<String>) -> AnthropicError {
        AnthropicError::InvalidRequest {
            message: message.into(),
        }
    }

    /// `fail-<status>`; a number that is no HTTP status becomes 500.
    pub fn injected(status: u16) -> AnthropicError {
        AnthropicError::Injected {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// `<param>: Field required`, Anthropic's (pydantic's) words for a missing member.
    pub fn missing(param: &str) -> AnthropicError {
        AnthropicError::invalid(format!("{param}: Field required"))
    }

    /// A member Anthropic's API does not define, refused as it refuses one.
    pub fn extra(param: &str) -> AnthropicError {
        AnthropicError::invalid(format!("{param}: Extra inputs are not permitted"))
    }

    /// A tagged union member (`thinking`, `tool_choice`, …) whose `type` is none of `expected`.
    pub fn unknown_tag(param: &str, tag: &str, expected: &[&str]) -> AnthropicError {
        let expected: Vec<String> = expected.iter().map(|tag| format!("'{tag}'")).collect();
        AnthropicError::invalid(format!(
            "{param}: Input tag '{tag}' found using 'type' does not match any of the expected tags: {}",
            expected.join(", ")
        ))
    }
}

/// Anthropic's (pydantic's) words for a malformed member.
impl From<FieldError> for AnthropicError {
    fn from(error: FieldError) -> AnthropicError {
        match error {
            FieldError::BodyNotAnObject => {
                AnthropicError::invalid("Input should be a valid dictionary")
            }
            // Pydantic does not name the type it found.
            FieldError::WrongType {
                param, expected, ..
            } => {
                let expected = match expected {
                    Expected::Boolean => "a valid boolean",
                    Expected::String => "a valid string",
                    Expected::Array => "a valid list",
                    Expected::Object => "a valid dictionary",
                    Expected::Integer => "a valid integer",
                    Expected::Number => "a valid number",
                };
                AnthropicError::invalid(format!("{param}: Input should be {expected}"))
            }
            FieldError::OutOfRange {
                param,
                min,
                max,
                got,
            } => {
                let bound = if got < min {
                    format!("greater than or equal to {min}")
                } else {
                    format!("less than or equal to {max}")
                };
                AnthropicError::invalid(format!("{param}: Input should be {bound}"))
            }
        }
    }
}

impl IntoResponse for AnthropicError {
    fn into_response(self) -> Response {
        match self {
            AnthropicError::InvalidRequest { message } => (
                StatusCode::BAD_REQUEST,
                body("invalid_request_error", &message),
            )
                .into_response(),
            AnthropicError::Injected { status } => injected(status),
            AnthropicError::InjectedMidCompletion => (
                StatusCode::INTERNAL_SERVER_ERROR,
                body("api_error", API_ERROR_MESSAGE),
            )
                .into_response(),
        }
    }
}

/// The answer api.anthropic.com gives with this status.
fn injected(status: StatusCode) -> Response {
    let (kind, message) = match status.as_u16() {
        400 => (
            "invalid_request_error",
            "Injected failure: invalid request.",
        ),
        401 => ("authentication_error", "invalid x-api-key"),
        402 => (
            "billing_error",
            "Your credit balance is too low to access the Anthropic API.",
        ),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        404 => ("not_found_error", "Not found"),
        413 => (
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
        ),
        429 => (
            "rate_limit_error",
            "This request would exceed the rate limit for your organization. Please try again later.",
        ),
        504 => ("timeout_error", "Request timed out"),
        503 | 529 => ("overloaded_error", OVERLOADED_MESSAGE),
        _ if status.is_server_error() => ("api_error", API_ERROR_MESSAGE),
        _ => ("invalid_request_error", "Injected failure."),
    };
    let mut response = (status, body(kind, message)).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECS),
        );
    }
    response
}

/// Anthropic's error body.
pub fn body(kind: &str, message: &str) -> Json<Value> {
    Json(json!({ "type": "error", "error": { "type": kind, "message": message } }))
}
