//! Every error the gateway answers with: one enum, one exhaustive table from gRPC codes to HTTP statuses,
//! and the body shape `{error, code, details}` (QUICK_START.md §8; OpenAI's shape for `/v1` is in
//! [`crate::model_api::openai_error`]). Errors of the model provider keep the provider's status and message.

mod status_details;

use status_details::title;
pub use status_details::{CreditRefusal, KeyRateLimit, ProviderFailure};

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use tonic::Code;
use tonic_types::StatusExt;
use utoipa::ToSchema;

use proto::refusal::Refusal;

use money::Money;

/// The downstream service a gRPC call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Billing,
    Executor,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Billing => "billing",
            Service::Executor => "executor",
        }
    }
}

/// Everything the gateway can answer with other than success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A downstream call failed with a gRPC status (credit refusals excepted).
    #[error("{} answered {}: {}", service.name(), status.code(), status.message())]
    Downstream {
        service: Service,
        status: tonic::Status,
    },

    /// Billing refused to spend: no credit, or a daily/monthly cap reached.
    #[error("credit refused: {}", refusal.reason.as_str())]
    CreditRefused { refusal: CreditRefusal },

    /// A rate or concurrency limit of the calling key.
    #[error("key limit reached: {}", .0.refusal.as_str())]
    KeyRateLimited(KeyRateLimit),

    /// A Stripe webhook whose signature does not match its body or is too old.
    #[error("invalid Stripe signature")]
    InvalidSignature,

    /// billing-svc has no Stripe settings.
    #[error("payments are not configured")]
    PaymentsNotConfigured,

    /// The calling key may not use this model (its policy's allow-list).
    #[error("model {model:?} not allowed for this key")]
    ModelNotAllowed { model: String },

    /// An operation on a key (rotate, update) named a revoked key.
    #[error("the key is revoked")]
    KeyRevoked,

    /// No price row prices the model: refused before anything was held (BILLING.md, "Prices").
    #[error("model {model:?} has no price")]
    ModelNotPriced { model: String },

    /// The model provider answered with an error (passed on as it meant it).
    #[error("the model provider answered {}: {}", .0.http_status, .0.message)]
    Provider(ProviderFailure),

    /// A query string, path segment or header the client sent is not valid.
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// The body was refused before reaching a handler (syntax, shape, content type or size).
    #[error("body refused ({status}): {message}")]
    BodyRejected { status: StatusCode, message: String },

    /// The `Authorization` header cannot travel as gRPC metadata (not visible ASCII).
    #[error("malformed Authorization header")]
    MalformedAuthorization,

    /// A route that needs a key was called without an `Authorization` header.
    #[error("missing Authorization header")]
    MissingAuthorization,

    #[error("no route")]
    RouteNotFound,

    /// `/readyz`: a downstream is not serving; each service's probe result.
    #[error("not ready: billing {billing}, executor {executor}")]
    NotReady {
        billing: &'static str,
        executor: &'static str,
        /// Routes (their model pattern) none of whose providers is up.
        unserved_routes: Vec<String>,
    },

    /// A failure of the gateway itself.
    #[error("internal error: {0}")]
    Internal(String),

    #[error("method not allowed")]
    MethodNotAllowed,

    /// A WebSocket upgrade on a route served over plain HTTP only (`GET /v1/responses`).
    #[error("WebSocket upgrade refused")]
    WebSocketNotServed,

    /// Too many failed authentications from the client's address (see [`crate::auth_limit`]).
    #[error("too many failed authentications; retry in {retry_after_secs} s")]
    TooManyFailedAuthentications { retry_after_secs: u64 },

    /// A downstream answered with something the contract does not allow (a missing field, a bad amount).
    #[error("{} broke the contract: {message}", service.name())]
    ContractViolation { service: Service, message: String },
}

/// The HTTP face of one gRPC code: status, human title and stable snake_case code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpMapping {
    pub status: StatusCode,
    pub title: &'static str,
    pub code: &'static str,
}

/// THE table from gRPC codes to HTTP. RESOURCE_EXHAUSTED carrying a credit reason never gets here: it
/// becomes [`ApiError::CreditRefused`] (402) when the status is received.
pub fn http_mapping(code: Code) -> HttpMapping {
    let (status, title, code) = match code {
        // An OK status is never an error; receiving one as such is our bug.
        Code::Ok => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Error",
            "internal_error",
        ),
        Code::Cancelled => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Request Cancelled",
            "cancelled",
        ),
        Code::Unknown => (StatusCode::BAD_GATEWAY, "Bad Gateway", "bad_gateway"),
        Code::InvalidArgument => (
            StatusCode::BAD_REQUEST,
            "Invalid Request",
            "invalid_request",
        ),
        Code::DeadlineExceeded => (StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout", "timeout"),
        Code::NotFound => (StatusCode::NOT_FOUND, "Not Found", "not_found"),
        Code::AlreadyExists => (StatusCode::CONFLICT, "Conflict", "already_exists"),
        Code::PermissionDenied => (StatusCode::FORBIDDEN, "Forbidden", "forbidden"),
        Code::ResourceExhausted => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests",
            "rate_limited",
        ),
        Code::FailedPrecondition => (
            StatusCode::CONFLICT,
            "Failed Precondition",
            "failed_precondition",
        ),
        Code::Aborted => (StatusCode::CONFLICT, "Conflict", "aborted"),
        Code::OutOfRange => (StatusCode::BAD_REQUEST, "Out Of Range", "out_of_range"),
        Code::Unimplemented => (
            StatusCode::NOT_IMPLEMENTED,
            "Not Implemented",
            "not_implemented",
        ),
        Code::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Error",
            "internal_error",
        ),
        Code::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
            "service_unavailable",
        ),
        Code::DataLoss => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Error",
            "internal_error",
        ),
        Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "Unauthorized", "unauthorized"),
    };
    HttpMapping {
        status,
        title,
        code,
    }
}

/// Whether `status` was made by the client side from a broken connection (a replica killed or restarting
/// mid-call), not sent by the service: tonic gives such a status the transport error as its source, and
/// `UNKNOWN` or `INTERNAL` as its code, which would read as a 502 or a 500. Nothing about the request was
/// wrong and the service is just unavailable, so it is answered as `UNAVAILABLE` (503). A status the
/// service sent has no source and keeps its code.
fn connection_broke(status: &tonic::Status) -> bool {
    matches!(status.code(), Code::Unknown | Code::Internal)
        && std::error::Error::source(status).is_some()
}

/// Whether a downstream's message may be shown to the client. Messages of server-side failures can carry
/// internals (SQL, addresses); they are logged instead.
fn message_is_public(code: Code) -> bool {
    match code {
        Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::ResourceExhausted
        | Code::FailedPrecondition
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unauthenticated
        | Code::DeadlineExceeded => true,
        Code::Ok
        | Code::Cancelled
        | Code::Unknown
        | Code::Unimplemented
        | Code::Internal
        | Code::Unavailable
        | Code::DataLoss => false,
    }
}

impl ApiError {
    /// A failed call to billing-svc.
    pub fn billing(status: tonic::Status) -> ApiError {
        Self::from_status(Service::Billing, status)
    }

    /// A failed call to executor-svc.
    pub fn executor(status: tonic::Status) -> ApiError {
        Self::from_status(Service::Executor, status)
    }

    fn from_status(service: Service, status: tonic::Status) -> ApiError {
        if connection_broke(&status) {
            return ApiError::Downstream {
                service,
                status: tonic::Status::unavailable(format!(
                    "the connection to {} broke: {}",
                    service.name(),
                    status.message()
                )),
            };
        }
        if let Some(failure) = ProviderFailure::from_status(&status) {
            return ApiError::Provider(failure);
        }
        if status.code() == Code::ResourceExhausted {
            if let Some(refusal) = CreditRefusal::from_status(&status) {
                return ApiError::CreditRefused { refusal };
            }
            if let Some(limit) = KeyRateLimit::from_status(&status) {
                return ApiError::KeyRateLimited(limit);
            }
        }
        if let Some(info) = status.get_details_error_info()
            && let Some(refusal) = Refusal::parse(&info.reason)
        {
            let model = || info.metadata.get("model").cloned().unwrap_or_default();
            match (status.code(), refusal) {
                (_, Refusal::InvalidSignature) => return ApiError::InvalidSignature,
                (_, Refusal::PaymentsNotConfigured) => return ApiError::PaymentsNotConfigured,
                (Code::PermissionDenied, Refusal::ModelNotAllowed) => {
                    return ApiError::ModelNotAllowed { model: model() };
                }
                (Code::NotFound, Refusal::ModelNotPriced) => {
                    return ApiError::ModelNotPriced { model: model() };
                }
                (Code::FailedPrecondition, Refusal::KeyRevoked) => return ApiError::KeyRevoked,
                _ => {}
            }
        }
        ApiError::Downstream { service, status }
    }

    pub fn contract(service: Service, message: impl Into<String>) -> ApiError {
        ApiError::ContractViolation {
            service,
            message: message.into(),
        }
    }

    /// Status, title, code, a message for the client and structured details: the content of both body
    /// shapes.
    pub fn describe(&self) -> ErrorDescription {
        let mut details = Map::new();
        let mut message = None;
        let mut retry_after_secs = None;
        let (status, title, code) = match self {
            ApiError::Provider(failure) => {
                message = Some(failure.message.clone());
                retry_after_secs = failure.retry_after_secs;
                details.insert("providerStatus".into(), Value::from(failure.http_status));
                for (key, value) in [
                    ("type", &failure.kind),
                    ("code", &failure.code),
                    ("param", &failure.param),
                ] {
                    if let Some(value) = value {
                        details.insert(key.into(), Value::from(value.clone()));
                    }
                }
                if let Some(secs) = failure.retry_after_secs {
                    details.insert("retryAfterSecs".into(), Value::from(secs));
                }
                let status = failure.client_status();
                let title = status.canonical_reason().unwrap_or("Provider Error");
                (status, title, "provider_error")
            }
            ApiError::Downstream { service, status } => {
                let mapping = http_mapping(status.code());
                if message_is_public(status.code()) && !status.message().is_empty() {
                    message = Some(status.message().to_string());
                }
                if mapping.status.is_server_error() {
                    details.insert("service".into(), Value::from(service.name()));
                }
                (mapping.status, mapping.title, mapping.code)
            }
            ApiError::CreditRefused { refusal } => {
                if let Some(balance) = refusal.current_balance {
                    details.insert("currentBalance".into(), money_value(balance));
                }
                if let Some(limit) = refusal.limit {
                    details.insert("limit".into(), money_value(limit));
                }
                if let Some(scope) = &refusal.scope {
                    details.insert("scope".into(), Value::from(scope.clone()));
                }
                (
                    StatusCode::PAYMENT_REQUIRED,
                    title(refusal.reason),
                    refusal.reason.as_str(),
                )
            }
            ApiError::KeyRateLimited(limit) => {
                message = Some(format!(
                    "this API key's limit is reached; retry in {} s",
                    limit.retry_after_secs
                ));
                retry_after_secs = Some(limit.retry_after_secs);
                if let Some(value) = limit.limit {
                    details.insert("limit".into(), Value::from(value));
                }
                details.insert("retryAfterSecs".into(), Value::from(limit.retry_after_secs));
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    title(limit.refusal),
                    limit.refusal.as_str(),
                )
            }
            ApiError::ModelNotAllowed { model } => {
                message = Some(format!(
                    "the model {model:?} is not allowed for this API key"
                ));
                details.insert("model".into(), Value::from(model.clone()));
                (
                    StatusCode::FORBIDDEN,
                    title(Refusal::ModelNotAllowed),
                    Refusal::ModelNotAllowed.as_str(),
                )
            }
            ApiError::KeyRevoked => {
                message =
                    Some("the key is revoked: a revoked key cannot be rotated or changed".into());
                (
                    StatusCode::CONFLICT,
                    title(Refusal::KeyRevoked),
                    Refusal::KeyRevoked.as_str(),
                )
            }
            ApiError::ModelNotPriced { model } => {
                message = Some(format!(
                    "the model {model:?} has no price: the operator has not priced it yet"
                ));
                details.insert("model".into(), Value::from(model.clone()));
                (
                    StatusCode::NOT_FOUND,
                    title(Refusal::ModelNotPriced),
                    Refusal::ModelNotPriced.as_str(),
                )
            }
            ApiError::InvalidSignature => {
                message = Some(
                    "the Stripe-Signature header does not match the body, or is older than 5 minutes"
                        .into(),
                );
                (
                    StatusCode::BAD_REQUEST,
                    title(Refusal::InvalidSignature),
                    Refusal::InvalidSignature.as_str(),
                )
            }
            // Not a fault of the service: this platform takes no payments (as a missing route would say).
            ApiError::PaymentsNotConfigured => (
                StatusCode::NOT_FOUND,
                title(Refusal::PaymentsNotConfigured),
                Refusal::PaymentsNotConfigured.as_str(),
            ),
            ApiError::InvalidRequest(text) => {
                message = Some(text.clone());
                (
                    StatusCode::BAD_REQUEST,
                    "Invalid Request",
                    "invalid_request",
                )
            }
            ApiError::BodyRejected {
                status,
                message: text,
            } => {
                message = Some(text.clone());
                let (title, code) = match *status {
                    StatusCode::PAYLOAD_TOO_LARGE => ("Payload Too Large", "payload_too_large"),
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                        ("Unsupported Media Type", "unsupported_media_type")
                    }
                    StatusCode::UNPROCESSABLE_ENTITY => ("Invalid Body", "invalid_body"),
                    _ => ("Malformed JSON", "malformed_json"),
                };
                (*status, title, code)
            }
            ApiError::MissingAuthorization => {
                message = Some("send `Authorization: Bearer <key>`".into());
                (StatusCode::UNAUTHORIZED, "Unauthorized", "unauthorized")
            }
            ApiError::MalformedAuthorization => {
                message =
                    Some("the Authorization header must be `Bearer <key>` in visible ASCII".into());
                (StatusCode::UNAUTHORIZED, "Unauthorized", "unauthorized")
            }
            ApiError::RouteNotFound => (StatusCode::NOT_FOUND, "Not Found", "route_not_found"),
            ApiError::NotReady {
                billing,
                executor,
                unserved_routes,
            } => {
                details.insert("billing".into(), Value::from(*billing));
                details.insert("executor".into(), Value::from(*executor));
                if !unserved_routes.is_empty() {
                    details.insert(
                        "unservedRoutes".into(),
                        Value::from(unserved_routes.clone()),
                    );
                }
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service Unavailable",
                    "not_ready",
                )
            }
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Error",
                "internal_error",
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "Method Not Allowed",
                "method_not_allowed",
            ),
            ApiError::WebSocketNotServed => {
                message = Some(
                    "this gateway serves the Responses API over HTTP only: POST /v1/responses (streamed as server-sent events)"
                        .into(),
                );
                (
                    StatusCode::UPGRADE_REQUIRED,
                    "WebSocket Not Supported",
                    "websocket_not_supported",
                )
            }
            ApiError::TooManyFailedAuthentications {
                retry_after_secs: secs,
            } => {
                message =
                    Some("too many failed authentications from this address; retry later".into());
                retry_after_secs = Some(*secs);
                details.insert("retryAfterSecs".into(), Value::from(*secs));
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too Many Requests",
                    "rate_limited",
                )
            }
            ApiError::ContractViolation { service, .. } => {
                details.insert("service".into(), Value::from(service.name()));
                (StatusCode::BAD_GATEWAY, "Bad Gateway", "bad_gateway")
            }
        };
        if let Some(text) = &message {
            details.insert("message".into(), Value::from(text.clone()));
        }
        ErrorDescription {
            status,
            title,
            code,
            message,
            details,
            retry_after_secs,
        }
    }

    pub(crate) fn log(&self, status: StatusCode) {
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::debug!(error = %self, "request refused");
        }
    }
}

/// A money amount as a JSON value (exact, see [`money::Money`]).
fn money_value(amount: Money) -> Value {
    serde_json::to_value(amount).unwrap_or(Value::Null)
}

/// What both body shapes are built from.
#[derive(Debug, Clone)]
pub struct ErrorDescription {
    pub status: StatusCode,
    pub title: &'static str,
    pub code: &'static str,
    pub message: Option<String>,
    pub details: Map<String, Value>,
    /// Sent as `Retry-After` (whole seconds).
    pub retry_after_secs: Option<u64>,
}

/// The retry hint the OpenAI and Anthropic SDKs read before their own rules (see [`crate::model_api::error_shape`]).
pub const SHOULD_RETRY_HEADER: HeaderName = HeaderName::from_static("x-should-retry");

/// `status` with a `Retry-After` header when there is one to send, and `body` as JSON.
pub fn error_response(
    status: StatusCode,
    retry_after_secs: Option<u64>,
    body: impl Serialize,
) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Some(secs) = retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// The error body of every route but `/v1/*`: `{"error": "<Human Title>", "code": "<snake_code>",
/// "details": {...}}`. `details.message` explains client errors; 402 carries `currentBalance` (and
/// `limit` for caps); 5xx from a downstream names the `service`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": "Insufficient Credits", "code": "insufficient_credits", "details": {"currentBalance": 0}}))]
pub struct ErrorBody {
    /// Human-readable title, e.g. "Insufficient Credits".
    pub error: String,
    /// Stable snake_case code, e.g. `insufficient_credits`, `unauthorized`, `not_found`.
    pub code: String,
    /// Structured details; always an object, possibly empty.
    #[schema(value_type = Object)]
    pub details: Map<String, Value>,
}

impl ApiError {
    /// The status and the body (QUICK_START.md §8); logs the error (5xx as errors, the rest at debug).
    pub fn body(&self) -> (StatusCode, ErrorBody) {
        let (description, body) = self.described_body();
        (description.status, body)
    }

    fn described_body(&self) -> (ErrorDescription, ErrorBody) {
        let description = self.describe();
        self.log(description.status);
        let body = ErrorBody {
            error: description.title.to_string(),
            code: description.code.to_string(),
            details: description.details.clone(),
        };
        (description, body)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (description, body) = self.described_body();
        error_response(description.status, description.retry_after_secs, body)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        ApiError::BodyRejected {
            status: rejection.status(),
            message: rejection.body_text(),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::InvalidRequest(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::InvalidRequest(rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use std::collections::HashMap;
    use tonic_types::{ErrorDetails, StatusExt};

    #[test]
    fn every_grpc_code_maps_to_one_http_status() {
        let table = [
            (Code::Ok, 500),
            (Code::Cancelled, 503),
            (Code::Unknown, 502),
            (Code::InvalidArgument, 400),
            (Code::DeadlineExceeded, 504),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::ResourceExhausted, 429),
            (Code::FailedPrecondition, 409),
            (Code::Aborted, 409),
            (Code::OutOfRange, 400),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Unavailable, 503),
            (Code::DataLoss, 500),
            (Code::Unauthenticated, 401),
        ];
        for (code, http) in table {
            assert_eq!(http_mapping(code).status.as_u16(), http, "{code:?}");
            let response = ApiError::billing(tonic::Status::new(code, "why")).into_response();
            assert_eq!(
                response.status().as_u16(),
                http,
                "{code:?} through ApiError"
            );
        }
    }

    #[test]
    fn a_broken_connection_is_503_and_a_status_the_service_sent_keeps_its_code() {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset");
        let broken = tonic::Status::from_error(Box::new(reset));
        assert_eq!(broken.code(), Code::Unknown, "what tonic makes of it");
        let (status, body) = body_of(ApiError::executor(broken));
        assert_eq!(status, 503, "{body}");
        assert!(body.contains(r#""code":"service_unavailable""#), "{body}");
        for (sent, http) in [
            (tonic::Status::unknown("the service said so"), 502),
            (tonic::Status::internal("a bug"), 500),
        ] {
            assert_eq!(body_of(ApiError::executor(sent)).0, http);
        }
    }

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

    fn body_of(error: ApiError) -> (u16, String) {
        let (status, body) = error.body();
        (status.as_u16(), serde_json::to_string(&body).unwrap())
    }

    #[test]
    fn insufficient_credits_is_402_with_the_exact_balance() {
        let (status, body) = body_of(ApiError::executor(refusal(
            "insufficient_credits",
            &[("current_balance", "0")],
        )));
        assert_eq!(status, 402);
        assert_eq!(
            body,
            r#"{"error":"Insufficient Credits","code":"insufficient_credits","details":{"currentBalance":0}}"#
        );
    }

    #[test]
    fn caps_are_402_with_balance_and_limit() {
        let status = refusal(
            "daily_limit_exceeded",
            &[("current_balance", "9.89692"), ("limit", "0.1")],
        );
        let (code, body) = body_of(ApiError::executor(status));
        assert_eq!(code, 402);
        assert_eq!(
            body,
            r#"{"error":"Daily Limit Exceeded","code":"daily_limit_exceeded","details":{"currentBalance":9.89692,"limit":0.1}}"#
        );
        let monthly = refusal(
            "monthly_limit_exceeded",
            &[("current_balance", "1"), ("limit", "2")],
        );
        assert_eq!(body_of(ApiError::executor(monthly)).0, 402);
    }

    #[test]
    fn resource_exhausted_without_a_credit_reason_is_429() {
        assert_eq!(body_of(ApiError::executor(refusal("quota", &[]))).0, 429);
        let plain = tonic::Status::resource_exhausted("slow down");
        assert_eq!(body_of(ApiError::executor(plain)).0, 429);
    }

    #[test]
    fn server_side_messages_stay_private() {
        let (_, body) = body_of(ApiError::billing(tonic::Status::internal(
            "SELECT * FROM secrets",
        )));
        assert!(!body.contains("SELECT"), "{body}");
        let (_, body) = body_of(ApiError::billing(tonic::Status::not_found("no key abc")));
        assert!(body.contains("no key abc"), "{body}");
    }
}
