//! Every error the mock answers, in OpenAI's error shape `{"error":{"message","type","param","code"}}`,
//! with the bodies and headers a real provider sends for the injected statuses (`fail-<status>`).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::fields::{Expected, FieldError, JsonType};

/// Seconds a rate-limited client is told to wait (`Retry-After`).
const RETRY_AFTER_SECS: &str = "2";

/// The message of a server error, as OpenAI words it.
const SERVER_ERROR_MESSAGE: &str = "The server had an error while processing your request.";

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The request is malformed: HTTP 400, `invalid_request_error`.
    InvalidRequest {
        message: String,
        param: Option<String>,
        code: Option<&'static str>,
    },
    /// Nothing at this path, or nothing recorded yet: HTTP 404.
    NotFound { message: String },
    /// `fail-<status>`: this status with the body a real provider sends for it.
    Injected { status: StatusCode },
    /// A mid-stream failure directive on a request that is not streamed: HTTP 500.
    InjectedMidCompletion,
    /// The mock itself failed (the cause is logged where it happened): HTTP 500.
    Internal,
}

impl ApiError {
    /// `fail-<status>`; a number that is no HTTP status becomes 500.
    pub fn injected(status: u16) -> ApiError {
        ApiError::Injected {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// The body is not JSON at all.
    pub fn unparsable_body() -> ApiError {
        ApiError::InvalidRequest {
            message: "We could not parse the JSON body of your request. (HINT: This likely means you \
                      aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)"
                .into(),
            param: None,
            code: None,
        }
    }

    pub fn missing(param: &str) -> ApiError {
        ApiError::InvalidRequest {
            message: format!("Missing required parameter: '{param}'."),
            param: Some(param.into()),
            code: Some("missing_required_parameter"),
        }
    }

    pub fn invalid_type(param: &str, expected: &str, got: &Value) -> ApiError {
        ApiError::wrong_type(param, expected, JsonType::of(got))
    }

    fn wrong_type(param: &str, expected: &str, got: JsonType) -> ApiError {
        ApiError::InvalidRequest {
            message: format!(
                "Invalid type for '{param}': expected {expected}, but got {} instead.",
                json_type(got)
            ),
            param: Some(param.into()),
            code: Some("invalid_type"),
        }
    }

    pub fn invalid_value(param: &str, message: String) -> ApiError {
        ApiError::InvalidRequest {
            message,
            param: Some(param.into()),
            code: Some("invalid_value"),
        }
    }

    /// A parameter OpenAI does not know, refused as OpenAI refuses it.
    pub fn unrecognized(param: &str) -> ApiError {
        ApiError::InvalidRequest {
            message: format!("Unrecognized request argument supplied: {param}"),
            param: None,
            code: None,
        }
    }

    pub fn empty_array(param: &str) -> ApiError {
        ApiError::InvalidRequest {
            message: format!(
                "Invalid '{param}': empty array. Expected an array with minimum length 1, but got an \
                 empty array instead."
            ),
            param: Some(param.into()),
            code: Some("empty_array"),
        }
    }

    /// A number or an array length outside `min..=max`.
    pub fn out_of_range(param: &str, min: f64, max: f64, got: f64) -> ApiError {
        let (what, code, bound) = if got < min {
            (
                "below minimum",
                "integer_below_min_value",
                format!(">= {min}"),
            )
        } else {
            (
                "above maximum",
                "integer_above_max_value",
                format!("<= {max}"),
            )
        };
        ApiError::InvalidRequest {
            message: format!(
                "Invalid '{param}': integer {what} value. Expected a value {bound}, but got {got} instead."
            ),
            param: Some(param.into()),
            code: Some(code),
        }
    }
}

/// OpenAI's words for a malformed member.
impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> ApiError {
        match error {
            FieldError::BodyNotAnObject => ApiError::InvalidRequest {
                message: "The request body must be a JSON object.".into(),
                param: None,
                code: None,
            },
            FieldError::WrongType {
                param,
                expected,
                got,
            } => {
                let expected = match expected {
                    Expected::Boolean => "a boolean",
                    Expected::String => "a string",
                    Expected::Array => "an array",
                    Expected::Object => "an object",
                    Expected::Integer => "an integer",
                    Expected::Number => "a number",
                };
                ApiError::wrong_type(&param, expected, got)
            }
            FieldError::OutOfRange {
                param,
                min,
                max,
                got,
            } => ApiError::out_of_range(&param, min, max, got),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::InvalidRequest {
                message,
                param,
                code,
            } => (
                StatusCode::BAD_REQUEST,
                body(&message, "invalid_request_error", param.as_deref(), code),
            )
                .into_response(),
            ApiError::NotFound { message } => (
                StatusCode::NOT_FOUND,
                body(&message, "invalid_request_error", None, None),
            )
                .into_response(),
            ApiError::Injected { status } => injected(status),
            ApiError::InjectedMidCompletion | ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                body(SERVER_ERROR_MESSAGE, "server_error", None, None),
            )
                .into_response(),
        }
    }
}

/// The answer a real provider gives with this status.
fn injected(status: StatusCode) -> Response {
    match status.as_u16() {
        429 => {
            let mut response = (
                status,
                body(
                    "Rate limit reached for requests",
                    "requests",
                    None,
                    Some("rate_limit_exceeded"),
                ),
            )
                .into_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
            response
        }
        400 => (
            status,
            body(
                "Invalid value for 'messages'.",
                "invalid_request_error",
                Some("messages"),
                Some("invalid_value"),
            ),
        )
            .into_response(),
        401 => (
            status,
            body(
                "Incorrect API key provided.",
                "invalid_request_error",
                None,
                Some("invalid_api_key"),
            ),
        )
            .into_response(),
        404 => (
            status,
            body(
                "The model does not exist or you do not have access to it.",
                "invalid_request_error",
                None,
                Some("model_not_found"),
            ),
        )
            .into_response(),
        _ if status.is_server_error() => (
            status,
            body(SERVER_ERROR_MESSAGE, "server_error", None, None),
        )
            .into_response(),
        _ => {
            let message = format!("Injected failure with HTTP status {}.", status.as_u16());
            (status, body(&message, "invalid_request_error", None, None)).into_response()
        }
    }
}

/// OpenAI's error body.
pub fn body(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Json<Value> {
    Json(json!({ "error": { "message": message, "type": kind, "param": param, "code": code } }))
}

/// How OpenAI names a JSON type in its messages.
fn json_type(got: JsonType) -> &'static str {
    match got {
        JsonType::Null => "null",
        JsonType::Boolean => "a boolean",
        JsonType::Integer => "an integer",
        JsonType::Decimal => "a decimal",
        JsonType::String => "a string",
        JsonType::Array => "an array",
        JsonType::Object => "an object",
    }
}
