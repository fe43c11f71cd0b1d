//! What can go wrong on a page, and how each is shown: a signed-out visitor goes to the sign-in page, a
//! refusal from billing-svc is shown in words with the matching HTTP status, never a 500 for what a visitor
//! sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use tonic::Code;

use crate::render;
use crate::session;

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
    /// billing-svc refused or failed.
    #[error("{}", .0.message())]
    Api(tonic::Status),
    /// A template failed to render (a bug).
    #[error("the page could not be rendered")]
    Render(#[from] minijinja::Error),
}

impl From<tonic::Status> for PageError {
    fn from(status: tonic::Status) -> PageError {
        match status.code() {
            Code::Unauthenticated => PageError::SignedOut,
            _ => PageError::Api(status),
        }
    }
}

impl PageError {
    fn status(&self) -> StatusCode {
        match self {
            PageError::SignedOut => StatusCode::SEE_OTHER,
            PageError::Forbidden(_) | PageError::Csrf => StatusCode::FORBIDDEN,
            PageError::Invalid(_) => StatusCode::BAD_REQUEST,
            PageError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
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

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if let PageError::SignedOut = self {
            return ([session::clear_cookie()], Redirect::to("/console/sign-in")).into_response();
        }
        if let PageError::Render(error) = &self {
            tracing::error!(error = ?error, "console page failed to render");
        }
        let status = self.status();
        let message = self.to_string();
        match render::error_page(status, &message) {
            Ok(page) => (status, page).into_response(),
            Err(_) => (status, message).into_response(),
        }
    }
}
