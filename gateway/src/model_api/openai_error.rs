//! OpenAI's error shape `{"error": {"message", "type", "param", "code"}}` for `/v1/*`, so OpenAI SDKs raise
//! their usual exceptions. Errors of the model provider come out as the provider wrote them (its message,
//! `type`, `code` and `param`); the platform's own errors are typed by their status.

use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, SHOULD_RETRY_HEADER, error_response};

/// The same errors in OpenAI's shape.
#[derive(Debug)]
pub struct OpenAiError(pub ApiError);

impl From<ApiError> for OpenAiError {
    fn from(error: ApiError) -> OpenAiError {
        OpenAiError(error)
    }
}

impl From<JsonRejection> for OpenAiError {
    fn from(rejection: JsonRejection) -> OpenAiError {
        OpenAiError(rejection.into())
    }
}

/// `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiErrorBody {
    pub error: OpenAiErrorObject,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiErrorObject {
    pub message: String,
    /// The provider's `type` for its own errors; else `invalid_request_error`, `authentication_error`,
    /// `permission_error`, `insufficient_quota`, `rate_limit_error` or `api_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The provider's `param` for its own errors; else null.
    pub param: Option<String>,
    /// The provider's `code` for its own errors (null when it sent none); else `invalid_api_key` for 401,
    /// the credit reason for 402, `rate_limit_exceeded` for the failed-authentication limiter, the key
    /// limit's code (e.g. `concurrency_limit_exceeded`) for a key's own limits, or the gateway's
    /// snake_case code.
    pub code: Option<String>,
}

/// The OpenAI `type` of a status the platform answers itself.
fn kind_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        402 => "insufficient_quota",
        403 => "permission_error",
        429 => "rate_limit_error",
        status if status >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

impl OpenAiError {
    /// The status, `Retry-After` and OpenAI's error body; logs the error like [`ApiError::body`].
    pub fn body(&self) -> (StatusCode, Option<u64>, OpenAiErrorBody) {
        let description = self.0.describe();
        self.0.log(description.status);
        let error = match &self.0 {
            ApiError::Provider(failure) => OpenAiErrorObject {
                message: failure.message.clone(),
                kind: failure
                    .kind
                    .clone()
                    .unwrap_or_else(|| kind_of(description.status).to_string()),
                param: failure.param.clone(),
                code: failure.code.clone(),
            },
            _ => {
                let code = match (description.status.as_u16(), description.code) {
                    (401, _) => "invalid_api_key",
                    (429, "rate_limited") => "rate_limit_exceeded",
                    (_, code) => code,
                };
                let message = match &description.message {
                    Some(text) => format!("{}: {text}", description.title),
                    None => description.title.to_string(),
                };
                OpenAiErrorObject {
                    message,
                    kind: kind_of(description.status).to_string(),
                    param: None,
                    code: Some(code.to_string()),
                }
            }
        };
        (
            description.status,
            description.retry_after_secs,
            OpenAiErrorBody { error },
        )
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let (status, retry_after_secs, body) = self.body();
        error_response(status, retry_after_secs, body)
    }
}

/// The errors of `/v1/responses`: OpenAI's shape, except that a refusal for credit or a spend cap is answered
/// as OpenAI's own API answers an account without credit, 429 with type `insufficient_quota` (the code still
/// names the reason, e.g. `insufficient_credits`), never retried (`x-should-retry: false`, no `Retry-After`).
/// Codex, the Responses API's main client, retries a 402 five times but stops at once on that answer,
/// printing "Quota exceeded. Check your plan and billing details." (the choice, and what each agent prints,
/// are in QUICK_START.md §6). The other OpenAI routes keep 402.
#[derive(Debug)]
pub struct ResponsesError(pub ApiError);

impl From<ApiError> for ResponsesError {
    fn from(error: ApiError) -> ResponsesError {
        ResponsesError(error)
    }
}

impl From<OpenAiError> for ResponsesError {
    fn from(error: OpenAiError) -> ResponsesError {
        ResponsesError(error.0)
    }
}

impl IntoResponse for ResponsesError {
    fn into_response(self) -> Response {
        let credit = matches!(self.0, ApiError::CreditRefused { .. });
        let (status, retry_after_secs, body) = OpenAiError(self.0).body();
        if credit {
            let mut response = error_response(StatusCode::TOO_MANY_REQUESTS, None, body);
            response
                .headers_mut()
                .insert(SHOULD_RETRY_HEADER, HeaderValue::from_static("false"));
            response
        } else {
            error_response(status, retry_after_secs, body)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::error::ProviderFailure;
    use std::collections::HashMap;
    use tonic::Code;
    use tonic_types::{ErrorDetails, StatusExt};

    fn refusal(reason: &str, metadata: &[(&str, &str)]) -> tonic::Status {
        let metadata: HashMap<String, String> = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        tonic::Status::with_error_details(
            Code::ResourceExhausted,
            "refused",
            ErrorDetails::with_error_info(reason, "billing", metadata),
        )
    }

    #[test]
    fn openai_shape_uses_openai_types() {
        let cases = [
            (
                ApiError::billing(tonic::Status::unauthenticated("unknown key")),
                401,
                "authentication_error",
                "invalid_api_key",
            ),
            (
                ApiError::executor(refusal("insufficient_credits", &[("current_balance", "0")])),
                402,
                "insufficient_quota",
                "insufficient_credits",
            ),
            (
                ApiError::executor(tonic::Status::resource_exhausted("slow")),
                429,
                "rate_limit_error",
                "rate_limit_exceeded",
            ),
            (
                ApiError::executor(tonic::Status::invalid_argument("no messages")),
                400,
                "invalid_request_error",
                "invalid_request",
            ),
            (
                ApiError::executor(tonic::Status::unavailable("down")),
                503,
                "api_error",
                "service_unavailable",
            ),
        ];
        for (error, status, kind, code) in cases {
            let (http, _, body) = OpenAiError(error).body();
            assert_eq!(http.as_u16(), status);
            assert_eq!(body.error.kind, kind);
            assert_eq!(body.error.code.as_deref(), Some(code));
            assert!(body.error.param.is_none());
        }
    }

    fn provider(http_status: u16, metadata: &[(&str, &str)]) -> ApiError {
        let mut all: HashMap<String, String> = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.insert("http_status".into(), http_status.to_string());
        ApiError::executor(tonic::Status::with_error_details(
            Code::Unknown,
            "Invalid value for 'messages'.",
            ErrorDetails::with_error_info("provider_error", "provider", all),
        ))
    }

    #[test]
    fn provider_errors_keep_their_status_type_code_and_retry_after() {
        let error = provider(
            400,
            &[
                ("type", "invalid_request_error"),
                ("param", "messages"),
                ("code", "invalid_value"),
            ],
        );
        let (status, retry_after, body) = OpenAiError(error).body();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(retry_after, None);
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"error": {"message": "Invalid value for 'messages'.", "type": "invalid_request_error", "param": "messages", "code": "invalid_value"}})
        );
        let limited = provider(429, &[("type", "requests"), ("retry_after_secs", "2")]);
        let response = OpenAiError(limited).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "2");
        for (upstream, client) in [
            (500, 502),
            (503, 502),
            (401, 502),
            (403, 502),
            (404, 404),
            (422, 422),
        ] {
            let ApiError::Provider(failure) = provider(upstream, &[]) else {
                panic!("a provider error")
            };
            assert_eq!(failure.client_status().as_u16(), client, "{upstream}");
            assert!(matches!(failure, ProviderFailure { .. }));
        }
        let (status, body) = provider(429, &[("retry_after_secs", "3")]).body();
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body.code, "provider_error");
        assert_eq!(body.details["retryAfterSecs"], 3);
    }
}
