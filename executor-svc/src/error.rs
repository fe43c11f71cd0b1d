//! The one error type of executor-svc and its one mapping to gRPC statuses.

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::provider_error::ProviderError;

/// The `google.rpc.ErrorInfo` domain of the provider's own errors.
pub const PROVIDER_ERROR_DOMAIN: &str = "provider";
/// Their reason.
pub const PROVIDER_ERROR_REASON: &str = "provider_error";

/// Why an execution did not produce a response.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// No `authorization: Bearer <key>` metadata.
    #[error("missing or malformed authorization metadata")]
    MissingApiKey,
    /// The request itself is wrong (message kept for the caller).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// billing-svc refused to open the execution: bad key, credit or caps, reused execution id. Forwarded
    /// with the same code, message and details so the gateway can turn it into a 401/402/409.
    #[error("billing refused the execution: {}", .0.message())]
    BillingRefused(Status),
    /// billing-svc could not be reached (or did not answer in time) before the model was called.
    #[error("billing-svc is unavailable: {0}")]
    BillingUnavailable(String),
    /// The model did not answer (or stalled mid-stream) for longer than the configured timeout.
    #[error("the model did not answer within {0:?}")]
    UpstreamTimeout(Duration),
    /// The model could not be reached, or its stream broke or made no sense.
    #[error("the model is unavailable: {0}")]
    UpstreamUnavailable(String),
    /// The model answered with an error (an HTTP error status, or an error event inside its stream).
    #[error("the model provider answered {}: {}", .0.http_status, .0.message)]
    Provider(ProviderError),
    /// No route of `PROVIDERS_FILE` serves the model.
    #[error("no route serves the model {0:?}")]
    ModelNotRouted(String),
    /// The provider speaks Anthropic's Messages API, which has no embeddings.
    #[error("the provider {0:?} (Anthropic's Messages API) serves no embeddings")]
    EmbeddingsNotServed(String),
    /// The provider is at its `max_concurrent`.
    #[error("the provider {0:?} is at its max_concurrent")]
    ProviderBusy(String),
    /// The settlement spool cannot be written (a full disk): a standard key's execution is refused, since
    /// its settlement could be lost if billing-svc did not take it at the end.
    #[error("the settlement spool cannot be written")]
    SpoolUnwritable,
    /// A bug or an environment failure on our side; details are logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ExecutorError {
    /// Whether a call that failed this way before the provider's first chunk goes to the route's next
    /// provider: the provider could not be reached, did not answer in time, was busy or rate-limited, or
    /// failed on its side. A refusal of the request itself would be the same anywhere.
    pub fn tries_next_provider(&self) -> bool {
        match self {
            ExecutorError::UpstreamTimeout(_)
            | ExecutorError::UpstreamUnavailable(_)
            | ExecutorError::ProviderBusy(_)
            | ExecutorError::EmbeddingsNotServed(_) => true,
            ExecutorError::Provider(error) => error.http_status == 429 || error.http_status >= 500,
            ExecutorError::MissingApiKey
            | ExecutorError::InvalidRequest(_)
            | ExecutorError::BillingRefused(_)
            | ExecutorError::BillingUnavailable(_)
            | ExecutorError::ModelNotRouted(_)
            | ExecutorError::SpoolUnwritable
            | ExecutorError::Internal(_) => false,
        }
    }

    /// Whether a provider failing this way is down (unreachable, too slow, failing on its side), as
    /// opposed to busy, rate-limited or refusing the request.
    pub fn means_provider_down(&self) -> bool {
        match self {
            ExecutorError::UpstreamTimeout(_) | ExecutorError::UpstreamUnavailable(_) => true,
            ExecutorError::Provider(error) => error.http_status >= 500,
            ExecutorError::MissingApiKey
            | ExecutorError::InvalidRequest(_)
            | ExecutorError::BillingRefused(_)
            | ExecutorError::BillingUnavailable(_)
            | ExecutorError::ModelNotRouted(_)
            | ExecutorError::EmbeddingsNotServed(_)
            | ExecutorError::ProviderBusy(_)
            | ExecutorError::SpoolUnwritable
            | ExecutorError::Internal(_) => false,
        }
    }
}

impl From<ExecutorError> for Status {
    fn from(error: ExecutorError) -> Status {
        match error {
            ExecutorError::MissingApiKey => {
                Status::unauthenticated("missing API key: send `authorization: Bearer <key>`")
            }
            ExecutorError::InvalidRequest(message) => Status::invalid_argument(message),
            ExecutorError::BillingRefused(status) => {
                // Rebuilt rather than returned as is: a client-side status also carries the transport's
                // response headers, which must not leak into our own trailers.
                Status::with_details(
                    status.code(),
                    status.message().to_string(),
                    tonic::codegen::Bytes::copy_from_slice(status.details()),
                )
            }
            ExecutorError::BillingUnavailable(_) => {
                Status::unavailable("billing is unavailable; the execution was not started")
            }
            ExecutorError::UpstreamTimeout(timeout) => Status::new(
                Code::DeadlineExceeded,
                format!("the model did not answer within {} s", timeout.as_secs()),
            ),
            ExecutorError::UpstreamUnavailable(message) => {
                Status::unavailable(format!("the model is unavailable: {message}"))
            }
            ExecutorError::Provider(error) => provider_status(error),
            ExecutorError::ModelNotRouted(model) => Status::not_found(format!(
                "no provider serves the model {model:?} (see the operator's PROVIDERS_FILE routes)"
            )),
            ExecutorError::EmbeddingsNotServed(provider) => Status::invalid_argument(format!(
                "this model's provider {provider:?} speaks Anthropic's Messages API, which has no embeddings"
            )),
            ExecutorError::ProviderBusy(provider) => Status::unavailable(format!(
                "every provider of this model is busy (the last, {provider:?}, is at its max_concurrent); \
                 retry later"
            )),
            ExecutorError::SpoolUnwritable => Status::unavailable(
                "executor-svc cannot write its settlement spool (is its disk full?); executions of \
                 standard keys are refused until it can, retry later",
            ),
            ExecutorError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

/// The gRPC code of a provider's HTTP status (see executor.proto).
fn provider_code(http_status: u16) -> Code {
    match http_status {
        400 | 422 => Code::InvalidArgument,
        404 => Code::NotFound,
        408 => Code::DeadlineExceeded,
        409 => Code::Aborted,
        413 => Code::OutOfRange,
        429 => Code::ResourceExhausted,
        // 401/403 mean the platform's own provider credentials are wrong: not the client's doing.
        401 | 403 => Code::Unavailable,
        status if status >= 500 => Code::Unavailable,
        _ => Code::FailedPrecondition,
    }
}

/// A provider error as a status whose `ErrorInfo` keeps what the provider said.
fn provider_status(error: ProviderError) -> Status {
    let mut metadata = HashMap::from([("http_status".to_string(), error.http_status.to_string())]);
    for (key, value) in [
        ("type", error.kind),
        ("code", error.code),
        ("param", error.param),
        (
            "retry_after_secs",
            error.retry_after_secs.map(|secs| secs.to_string()),
        ),
    ] {
        if let Some(value) = value {
            metadata.insert(key.to_string(), value);
        }
    }
    Status::with_error_details(
        provider_code(error.http_status),
        error.message,
        ErrorDetails::with_error_info(PROVIDER_ERROR_REASON, PROVIDER_ERROR_DOMAIN, metadata),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn billing_refusals_keep_code_message_and_details() {
        let refused = Status::with_details(
            Code::ResourceExhausted,
            "insufficient credits",
            vec![1, 2, 3].into(),
        );
        let forwarded = Status::from(ExecutorError::BillingRefused(refused));
        assert_eq!(forwarded.code(), Code::ResourceExhausted);
        assert_eq!(forwarded.message(), "insufficient credits");
        assert_eq!(forwarded.details(), &[1, 2, 3]);
    }

    fn provider(http_status: u16) -> ExecutorError {
        ExecutorError::Provider(ProviderError {
            http_status,
            message: "why".into(),
            kind: Some("requests".into()),
            code: None,
            param: None,
            retry_after_secs: Some(2),
        })
    }

    #[test]
    fn provider_errors_keep_status_message_and_retry_after() {
        let status = Status::from(provider(429));
        assert_eq!(status.message(), "why");
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.domain, PROVIDER_ERROR_DOMAIN);
        assert_eq!(info.metadata["http_status"], "429");
        assert_eq!(info.metadata["type"], "requests");
        assert_eq!(info.metadata["retry_after_secs"], "2");
        assert!(!info.metadata.contains_key("code"));
    }

    #[test]
    fn each_error_has_its_code() {
        let cases = [
            (ExecutorError::MissingApiKey, Code::Unauthenticated),
            (
                ExecutorError::InvalidRequest("x".into()),
                Code::InvalidArgument,
            ),
            (
                ExecutorError::BillingUnavailable("down".into()),
                Code::Unavailable,
            ),
            (
                ExecutorError::UpstreamTimeout(Duration::from_secs(1)),
                Code::DeadlineExceeded,
            ),
            (
                ExecutorError::UpstreamUnavailable("503".into()),
                Code::Unavailable,
            ),
            (provider(400), Code::InvalidArgument),
            (provider(404), Code::NotFound),
            (provider(429), Code::ResourceExhausted),
            (provider(401), Code::Unavailable),
            (provider(503), Code::Unavailable),
            (provider(418), Code::FailedPrecondition),
            (ExecutorError::Internal("boom".into()), Code::Internal),
        ];
        for (error, code) in cases {
            let label = error.to_string();
            assert_eq!(Status::from(error).code(), code, "{label}");
        }
    }
}
