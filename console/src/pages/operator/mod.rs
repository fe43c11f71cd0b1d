//! The operator's pages (CONSOLE.md, "What each one sees"): the overview of every account (revenue, provider
//! cost and margin by day, by model, and the top accounts), accounts and their keys (create, shown once with
//! a copy button, rotate, revoke), an account's calls (filtered, paged, each with a Refund that fills the
//! refund form) and ledger rows, credits (add with category and expiry, adjust, refund a call), caps, volume
//! tiers, any account's revenue, provider cost and margin by model and by day, the price book (BILLING.md,
//! "Prices": base and charged prices, set, end), events with their deliveries (Redeliver), and the operator's
//! own webhook endpoints. Every form that takes typed values (an account's new key, credit, adjust, refund,
//! caps and volume tiers forms, a key's policy, the price form, the webhook form) answers a refusal of what
//! was typed with its page again, the message beside its field and the values kept
//! ([`crate::forms::Retry`]).
//!
//! Provider cost and margin come only from AdminService, which fills them; they are the operator's figures
//! and no customer page shows them ([`margins`]).
//!
//! One module per page or form, named for what it serves; this one holds their routes.

mod account;
mod accounts;
mod admin_service;
mod caps;
mod credits;
mod events;
mod keys;
mod margins;
mod overview;
mod prices;
mod tiers;
mod webhooks;

use axum::Router;
use axum::routing::{get, post};

use crate::pages::statements;
use crate::state::ConsoleState;

/// The operator's routes, under `/console/admin`.
pub fn routes() -> Router<ConsoleState> {
    Router::new()
        .route("/console/admin/overview", get(overview::overview))
        .route(
            "/console/admin/accounts",
            get(accounts::accounts).post(accounts::create_account),
        )
        .route("/console/admin/accounts/{id}", get(account::account_page))
        .route(
            "/console/admin/accounts/{id}/statements/{file}",
            get(statements::account_statement_pdf),
        )
        .route("/console/admin/accounts/{id}/keys", post(keys::create_key))
        .route(
            "/console/admin/accounts/{id}/credits",
            post(credits::add_credits),
        )
        .route(
            "/console/admin/accounts/{id}/adjustments",
            post(credits::adjust),
        )
        .route(
            "/console/admin/accounts/{id}/refunds",
            post(credits::refund),
        )
        .route(
            "/console/admin/accounts/{id}/limits",
            post(caps::set_limits),
        )
        .route("/console/admin/accounts/{id}/tiers", post(tiers::set_tiers))
        .route(
            "/console/admin/new-key/{reference}",
            get(keys::key_shown_once),
        )
        .route(
            "/console/admin/keys/{id}",
            get(keys::key_page).post(keys::update_key),
        )
        .route("/console/admin/keys/{id}/rotate", post(keys::rotate_key))
        .route("/console/admin/keys/{id}/revoke", post(keys::revoke_key))
        .route(
            "/console/admin/prices",
            get(prices::prices).post(prices::set_price),
        )
        .route("/console/admin/prices/end", post(prices::end_price))
        .route("/console/admin/events", get(events::events))
        .route(
            "/console/admin/webhooks",
            get(webhooks::webhooks).post(webhooks::create_webhook),
        )
        .route(
            "/console/admin/webhooks/{id}/delete",
            post(webhooks::delete_webhook),
        )
        .route(
            "/console/admin/events/{id}/redeliver",
            post(events::redeliver_event),
        )
}
