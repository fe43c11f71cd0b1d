//! The web console (CONSOLE.md): server-rendered pages for customers (their balance, usage, transactions,
//! grants, workspaces, prices, keys, webhooks, alerts and auto-recharge) and for the operator (an overview of
//! revenue and margin, accounts and keys, their calls and ledger, credits and refunds, caps, volume tiers,
//! prices, events with Redeliver, the operator's own webhook endpoints), mounted by the gateway under
//! `/console/`.
//!
//! It reads and writes only through billing-svc's gRPC, like the rest of the gateway, with the caller's
//! console session as bearer ([`viewer`]). Pages are HTML rendered on the server from templates embedded in
//! the binary ([`render`]); a little JavaScript of its own (local times, copy buttons) improves them but
//! nothing needs it. Every asset is served by the console itself: its Content-Security-Policy allows only
//! its own origin.

mod chart;
mod cookies;
mod csv;
mod error;
mod error_page;
mod forms;
mod pages;
mod render;
mod reveal;
mod session;
mod state;
mod viewer;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::{get, post};

pub use error::PageError;
pub use state::ConsoleState;

/// The console's routes, under `/console`, with its security headers: the home, signing in and out, the
/// static assets, then the customer's and the operator's pages.
pub fn router<S: Clone + Send + Sync + 'static>(state: ConsoleState) -> Router<S> {
    Router::new()
        .route("/console", get(pages::home))
        .route("/console/", get(pages::home))
        .route(
            "/console/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/console/sign-out", post(session::sign_out))
        .route("/console/static/{file}", get(pages::asset))
        .merge(pages::customer::routes())
        .merge(pages::operator::routes())
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Only the console's own origin, no framing, no referrer outside it, nothing cached.
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; \
         form-action 'self' https://checkout.stripe.com; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    response
}
