//! The customer's pages (CONSOLE.md, "What each one sees"): overview, usage (chart, records, CSV),
//! transactions (CSV), grants, workspaces, the prices the account pays; for owners the account's keys,
//! webhooks, alerts and auto-recharge, monthly statements (PDF), and top-ups.
//!
//! One module per page, named for what it serves; this one holds their routes.

mod account_service;
mod grants;
mod keys;
pub(super) mod overview;
mod prices;
mod settings;
mod transactions;
mod usage;
mod webhooks;
mod workspaces;

use axum::Router;
use axum::routing::{get, post};

use crate::pages::statements;
use crate::state::ConsoleState;

/// The customer's routes, under `/console` (the overview is the console's home, [`super::home`]).
pub fn routes() -> Router<ConsoleState> {
    Router::new()
        .route("/console/usage", get(usage::usage))
        .route("/console/usage.csv", get(usage::usage_csv))
        .route("/console/usage/chart.svg", get(usage::usage_chart))
        .route("/console/transactions", get(transactions::transactions))
        .route(
            "/console/transactions.csv",
            get(transactions::transactions_csv),
        )
        .route("/console/grants", get(grants::grants))
        .route("/console/workspaces", get(workspaces::workspaces))
        .route("/console/keys", get(keys::keys))
        .route(
            "/console/webhooks",
            get(webhooks::webhooks).post(webhooks::create_webhook),
        )
        .route(
            "/console/webhooks/{id}/delete",
            post(webhooks::delete_webhook),
        )
        .route("/console/prices", get(prices::prices))
        .route("/console/statements", get(statements::statements))
        .route("/console/statements/{file}", get(statements::statement_pdf))
        .route("/console/settings", get(settings::settings))
        .route("/console/alerts", post(settings::set_alerts))
        .route("/console/auto-recharge", post(settings::set_auto_recharge))
        .route("/console/top-up", post(overview::top_up))
}
