//! The web console (CONSOLE.md): server-rendered pages for customers (their balance, usage, transactions,
//! grants, workspaces, prices, keys, webhooks, alerts and auto-recharge) and for the operator (an overview of
//! revenue and margin, accounts and keys, their calls and ledger, credits and refunds, caps, volume tiers,
//! prices, events with Redeliver, the operator's own webhook endpoints), mounted by the gateway under
//! `/console/`.
//!
//! It reads and writes only through billing-svc's gRPC, like the rest of the gateway, with the caller's
//! console session as bearer ([`session`]). Pages are HTML rendered on the server from templates embedded in
//! the binary ([`render`]); a little JavaScript of its own (local times, copy buttons) improves them but
//! nothing needs it. Every asset is served by the console itself: its Content-Security-Policy allows only
//! its own origin.

mod chart;
mod csv;
mod error;
mod forms;
mod pages;
mod render;
mod reveal;
mod session;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::{get, post};
use tonic::transport::Channel;

pub use error::PageError;

/// What the console's handlers share.
#[derive(Clone)]
pub struct ConsoleState {
    /// The gateway's channel to billing-svc.
    billing: Channel,
    /// Secrets waiting for the one page that shows them ([`reveal`]).
    reveals: Arc<reveal::Reveals>,
}

impl ConsoleState {
    pub fn new(billing: Channel) -> ConsoleState {
        ConsoleState {
            billing,
            reveals: Arc::default(),
        }
    }
}

/// The console's routes, under `/console`, with its security headers.
pub fn router<S: Clone + Send + Sync + 'static>(state: ConsoleState) -> Router<S> {
    use pages::{customer, operator};
    Router::new()
        .route("/console", get(pages::home))
        .route("/console/", get(pages::home))
        .route(
            "/console/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/console/sign-out", post(session::sign_out))
        .route("/console/static/{file}", get(pages::asset))
        .route("/console/usage", get(customer::usage))
        .route("/console/usage.csv", get(customer::usage_csv))
        .route("/console/usage/chart.svg", get(customer::usage_chart))
        .route("/console/transactions", get(customer::transactions))
        .route("/console/transactions.csv", get(customer::transactions_csv))
        .route("/console/grants", get(customer::grants))
        .route("/console/workspaces", get(customer::workspaces))
        .route("/console/keys", get(customer::keys))
        .route(
            "/console/webhooks",
            get(customer::webhooks).post(customer::create_webhook),
        )
        .route(
            "/console/webhooks/{id}/delete",
            post(customer::delete_webhook),
        )
        .route("/console/prices", get(customer::prices))
        .route("/console/settings", get(customer::settings))
        .route("/console/alerts", post(customer::set_alerts))
        .route("/console/auto-recharge", post(customer::set_auto_recharge))
        .route("/console/top-up", post(customer::top_up))
        .route("/console/admin/overview", get(operator::overview))
        .route(
            "/console/admin/accounts",
            get(operator::accounts).post(operator::create_account),
        )
        .route("/console/admin/accounts/{id}", get(operator::account_page))
        .route(
            "/console/admin/accounts/{id}/keys",
            post(operator::create_key),
        )
        .route(
            "/console/admin/accounts/{id}/credits",
            post(operator::add_credits),
        )
        .route(
            "/console/admin/accounts/{id}/adjustments",
            post(operator::adjust),
        )
        .route(
            "/console/admin/accounts/{id}/refunds",
            post(operator::refund),
        )
        .route(
            "/console/admin/accounts/{id}/limits",
            post(operator::set_limits),
        )
        .route(
            "/console/admin/accounts/{id}/tiers",
            post(operator::set_tiers),
        )
        .route(
            "/console/admin/new-key/{reference}",
            get(operator::key_shown_once),
        )
        .route(
            "/console/admin/keys/{id}",
            get(operator::key_page).post(operator::update_key),
        )
        .route(
            "/console/admin/keys/{id}/rotate",
            post(operator::rotate_key),
        )
        .route(
            "/console/admin/keys/{id}/revoke",
            post(operator::revoke_key),
        )
        .route(
            "/console/admin/prices",
            get(operator::prices).post(operator::set_price),
        )
        .route("/console/admin/prices/end", post(operator::end_price))
        .route("/console/admin/events", get(operator::events))
        .route(
            "/console/admin/webhooks",
            get(operator::webhooks).post(operator::create_webhook),
        )
        .route(
            "/console/admin/webhooks/{id}/delete",
            post(operator::delete_webhook),
        )
        .route(
            "/console/admin/events/{id}/redeliver",
            post(operator::redeliver_event),
        )
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
