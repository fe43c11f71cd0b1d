//! The one error type of executor-svc and its one mapping to gRPC statuses.

use std::time::Duration;

use tonic::{Code, Status};

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
    /// The model could not be reached or failed (5xx, 429, broken stream, bad credentials of ours).
    #[error("the model is unavailable: {0}")]
    UpstreamUnavailable(String),
    /// The model refused the request as invalid (4xx such as an unknown model).
    #[error("the model rejected the request: {0}")]
    UpstreamRejected(String),
    /// A bug or an environment failure on our side; details are logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
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
            ExecutorError::UpstreamRejected(message) => {
                Status::invalid_argument(format!("the model rejected the request: {message}"))
            }
            ExecutorError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                Status::internal("internal error")
            }
        }
    }
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
            (
                ExecutorError::UpstreamRejected("404".into()),
                Code::InvalidArgument,
            ),
            (ExecutorError::Internal("boom".into()), Code::Internal),
        ];
        for (error, code) in cases {
            let label = error.to_string();
            assert_eq!(Status::from(error).code(), code, "{label}");
        }
    }
}
