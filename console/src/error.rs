//! What can go wrong on a page, and the HTTP status each is answered with: a refusal from billing-svc gets
//! the status matching its code, never a 500 for what a visitor sent. How each is shown (a signed-out visitor
//! goes to the sign-in page, anything else is an error page in words) is [`crate::error_page`]'s.
//!
//! Only the session's own check (`ConsoleService/CurrentSession`, made for every page by
//! [`crate::viewer::Viewer`]) can end a session: a refusal of any other call, whatever its code, is about what
//! that call asked (a revoked key cannot be rotated: FAILED_PRECONDITION with reason `key_revoked`) and is
//! shown on the page, the visitor still signed in.

use axum::http::StatusCode;
use proto::refusal::Refusal;
use tonic::Code;
use tonic_types::StatusExt;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No session, or it ended (sign-out, expiry, the key revoked).
    #[error("signed out")]
    SignedOut,
    /// The page is for owners (or the operator) only.
    #[error("this page is for {0} only")]
    Forbidden(&'static str),
    /// A form without its CSRF token, or with another session's.
    #[error("the form is out of date: reload the page and send it again")]
    Csrf,
    /// A value the visitor typed is not valid.
    #[error("{0}")]
    Invalid(String),
    /// A value typed into the input named `field` is not valid: the console's own check of a field whose name
    /// no fixed list holds (a row of the volume tiers form), shown beside that input.
    #[error("{message}")]
    InvalidField { field: String, message: String },
    /// billing-svc refused or failed.
    #[error("{}", .0.message())]
    Api(tonic::Status),
    /// A template failed to render (a bug).
    #[error("the page could not be rendered")]
    Render(#[from] minijinja::Error),
    /// A statement's PDF could not be drawn from billing-svc's answer.
    #[error("the statement's PDF could not be drawn: {0}")]
    Pdf(#[from] statement_pdf::RenderError),
}

impl From<tonic::Status> for PageError {
    /// A refusal of a page's call is shown on the page; it never ends the session (see the module's notes).
    fn from(status: tonic::Status) -> PageError {
        PageError::Api(status)
    }
}

impl PageError {
    /// The refusal of the session's own check: UNAUTHENTICATED ends the session, anything else is shown.
    pub fn from_session_check(status: tonic::Status) -> PageError {
        match status.code() {
            Code::Unauthenticated => PageError::SignedOut,
            _ => PageError::Api(status),
        }
    }

    /// billing-svc refused to change a key because it is revoked (FAILED_PRECONDITION, reason `key_revoked`).
    pub fn is_key_revoked(&self) -> bool {
        match self {
            PageError::Api(status) => {
                status.code() == Code::FailedPrecondition
                    && status.get_details_error_info().is_some_and(|info| {
                        Refusal::parse(&info.reason) == Some(Refusal::KeyRevoked)
                    })
            }
            PageError::SignedOut
            | PageError::Forbidden(_)
            | PageError::Csrf
            | PageError::Invalid(_)
            | PageError::InvalidField { .. }
            | PageError::Render(_)
            | PageError::Pdf(_) => false,
        }
    }

    /// The HTTP status the page is answered with.
    pub fn http_status(&self) -> StatusCode {
        match self {
            PageError::SignedOut => StatusCode::SEE_OTHER,
            PageError::Forbidden(_) | PageError::Csrf => StatusCode::FORBIDDEN,
            PageError::Invalid(_) | PageError::InvalidField { .. } => StatusCode::BAD_REQUEST,
            PageError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
            PageError::Pdf(_) => StatusCode::BAD_GATEWAY,
            PageError::Api(status) => match status.code() {
                Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
                Code::NotFound => StatusCode::NOT_FOUND,
                Code::PermissionDenied => StatusCode::FORBIDDEN,
                Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => {
                    StatusCode::CONFLICT
                }
                Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
                Code::Unavailable | Code::DeadlineExceeded => StatusCode::SERVICE_UNAVAILABLE,
                Code::Unauthenticated => StatusCode::UNAUTHORIZED,
                Code::Ok
                | Code::Cancelled
                | Code::Unknown
                | Code::Unimplemented
                | Code::Internal
                | Code::DataLoss => StatusCode::BAD_GATEWAY,
            },
        }
    }
}
