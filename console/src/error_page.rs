//! How a [`PageError`] is answered: a signed-out visitor goes to the sign-in page, the session cookie
//! removed; any other error is the error page, saying in words what went wrong, with its HTTP status
//! ([`PageError::http_status`]).

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::json;

use crate::cookies::clear_cookie;
use crate::error::PageError;
use crate::render::public_page;

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if let PageError::SignedOut = self {
            return ([clear_cookie()], Redirect::to("/console/sign-in")).into_response();
        }
        if let PageError::Render(error) = &self {
            tracing::error!(error = ?error, "console page failed to render");
        }
        let status = self.http_status();
        let message = self.to_string();
        match error_page(status, &message) {
            Ok(page) => (status, page).into_response(),
            Err(_) => (status, message).into_response(),
        }
    }
}

/// The page of an error.
fn error_page(status: StatusCode, message: &str) -> Result<Html<String>, PageError> {
    public_page(
        "error.html",
        json!({
            "status": status.as_u16(),
            "reason": status.canonical_reason().unwrap_or("Error"),
            "message": message,
        }),
    )
}
