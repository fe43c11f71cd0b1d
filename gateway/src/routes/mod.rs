//! The routes, each documented by its `#[utoipa::path]` and registered through one `OpenApiRouter`, so
//! the router and `/openapi.json` cannot diverge.

pub mod account;
pub mod admin;
pub mod anthropic;
pub mod chat_call;
pub mod execute;
pub mod openai;
pub mod ops;
pub mod stripe;

use axum::http::Uri;
use axum::response::Response;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::error_shape::ErrorShape;
use crate::openapi::ApiDoc;
use crate::state::AppState;

/// Every route with its documentation (see [`crate::openapi::ROUTES`]).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(execute::execute))
        .routes(routes!(openai::chat::chat_completions))
        .routes(routes!(openai::embeddings::embeddings))
        .routes(routes!(openai::models::models))
        .routes(routes!(openai::responses::responses))
        .routes(routes!(anthropic::messages::messages))
        .routes(routes!(anthropic::messages::count_tokens))
        .routes(routes!(account::account))
        .routes(routes!(account::stats))
        .routes(routes!(account::usage))
        .routes(routes!(account::transactions))
        .routes(routes!(account::workspaces))
        .routes(routes!(account::keys))
        .routes(routes!(account::grants))
        .routes(routes!(account::prices))
        .routes(routes!(account::events))
        .routes(routes!(account::alerts))
        .routes(routes!(account::checkout))
        .routes(routes!(
            account::set_auto_recharge,
            account::get_auto_recharge
        ))
        .routes(routes!(account::create_webhook, account::list_webhooks))
        .routes(routes!(account::delete_webhook))
        .routes(routes!(admin::create_account, admin::list_accounts))
        .routes(routes!(admin::get_account, admin::update_account))
        .routes(routes!(admin::account_usage))
        .routes(routes!(admin::account_transactions))
        .routes(routes!(admin::platform_stats))
        .routes(routes!(admin::create_key, admin::list_keys))
        .routes(routes!(admin::revoke_key, admin::update_key))
        .routes(routes!(admin::rotate_key))
        .routes(routes!(admin::list_prices, admin::set_price))
        .routes(routes!(admin::end_price))
        .routes(routes!(admin::add_credits))
        .routes(routes!(admin::adjust_credits))
        .routes(routes!(admin::refund))
        .routes(routes!(admin::set_limits))
        .routes(routes!(admin::account_stats))
        .routes(routes!(admin::grants))
        .routes(routes!(admin::events))
        .routes(routes!(admin::alerts))
        .routes(routes!(admin::create_webhook, admin::list_webhooks))
        .routes(routes!(admin::delete_webhook))
        .routes(routes!(admin::redeliver))
        .routes(routes!(stripe::webhook))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::openapi_json))
}

/// Any path no route matches, in the error shape of the API the path belongs to.
pub async fn route_not_found(uri: Uri) -> Response {
    ErrorShape::of(uri.path()).respond(ApiError::RouteNotFound)
}

/// A known path with a method it does not serve, in the error shape of its API.
pub async fn method_not_allowed(uri: Uri) -> Response {
    ErrorShape::of(uri.path()).respond(ApiError::MethodNotAllowed)
}
