//! The pages: the customer's ([`customer`]) and the operator's ([`operator`]), the home that sends each to
//! theirs, the static assets, and what both audiences' pages share: how billing-svc's messages are shown
//! ([`display`]), the question a destructive action asks ([`confirm`]), the webhooks page ([`webhooks`]) and the
//! statements ([`statements`]).
//! Amounts are passed to the templates exactly as billing-svc gives them (decimal strings); every page rounds
//! them for reading, keeping the exact figure on hover (the `usd` filter of [`crate::render`]); prices are
//! rates and are shown exactly. A form that takes typed values answers a refusal of what was typed with its
//! page again, the values kept ([`crate::forms::Retry`], [`crate::render::form_page`]). Times are RFC 3339
//! UTC, which the page's script shows in the viewer's time zone.

pub mod customer;
pub mod operator;

mod confirm;
mod display;
mod statements;
mod webhooks;

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::error::PageError;
use crate::viewer::Viewer;

/// `/console/`: the overview of a customer, the operator's overview of every account.
pub async fn home(
    state: axum::extract::State<crate::state::ConsoleState>,
    viewer: Viewer,
) -> Result<Response, PageError> {
    if viewer.operator {
        return Ok(Redirect::to("/console/admin/overview").into_response());
    }
    customer::overview::overview(state, viewer).await
}

/// The console's stylesheet, script and icon, embedded in the binary.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, content_type) = match file.as_str() {
        "console.css" => (
            include_str!("../../static/console.css"),
            "text/css; charset=utf-8",
        ),
        "console.js" => (
            include_str!("../../static/console.js"),
            "text/javascript; charset=utf-8",
        ),
        "favicon.svg" => (include_str!("../../static/favicon.svg"), "image/svg+xml"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}
