//! The routes, each documented by its `#[utoipa::path]` and registered through one `OpenApiRouter`, so
//! the router and `/openapi.json` cannot diverge. One module per resource holds the routes of both
//! audiences (the customer's `/billing/…` and the operator's `/billing/admin/…`) and their request and
//! response types; what several share is `query.rs` (query strings) and `billing_call.rs` (a call to
//! billing-svc), with [`crate::wire`] (reading billing-svc's and executor-svc's messages). The model APIs are
//! `openai/`, `anthropic/`, `chat_call.rs` and `execute.rs`, on what they share in [`crate::model_api`].

pub mod accounts;
pub mod anthropic;
pub mod billing_call;
pub mod chat_call;
pub mod credits;
pub mod events;
pub mod execute;
pub mod keys;
pub mod openai;
pub mod ops;
pub mod payments;
pub mod prices;
pub mod query;
pub mod statements;
pub mod stripe;
pub mod usage;
pub mod webhooks;

use axum::http::Uri;
use axum::response::Response;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::model_api::error_shape::ErrorShape;
use crate::openapi::ApiDoc;
use crate::state::AppState;

/// Every route with its documentation (see [`crate::openapi::ROUTES`]).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(execute::execute))
        .routes(routes!(openai::chat::chat_completions))
        .routes(routes!(openai::embeddings::embeddings))
        .routes(routes!(openai::models::models))
        .routes(routes!(openai::organization::usage_completions))
        .routes(routes!(openai::organization::usage_embeddings))
        .routes(routes!(openai::organization::costs))
        .routes(routes!(openai::responses::responses))
        .routes(routes!(anthropic::messages::messages))
        .routes(routes!(anthropic::messages::count_tokens))
        .routes(routes!(accounts::account))
        .routes(routes!(usage::stats))
        .routes(routes!(usage::usage))
        .routes(routes!(credits::transactions))
        .routes(routes!(credits::ledger_head))
        .routes(routes!(usage::workspaces))
        .routes(routes!(keys::keys))
        .routes(routes!(credits::grants))
        .routes(routes!(prices::prices))
        .routes(routes!(events::events))
        .routes(routes!(statements::statements))
        .routes(routes!(statements::statement))
        .routes(routes!(accounts::alerts))
        .routes(routes!(payments::checkout))
        .routes(routes!(
            payments::set_auto_recharge,
            payments::get_auto_recharge
        ))
        .routes(routes!(webhooks::create_webhook, webhooks::list_webhooks))
        .routes(routes!(webhooks::delete_webhook))
        .routes(routes!(accounts::create_account, accounts::list_accounts))
        .routes(routes!(accounts::get_account, accounts::update_account))
        .routes(routes!(usage::account_usage))
        .routes(routes!(credits::account_transactions))
        .routes(routes!(usage::platform_stats))
        .routes(routes!(keys::create_key, keys::list_keys))
        .routes(routes!(keys::revoke_key, keys::update_key))
        .routes(routes!(keys::rotate_key))
        .routes(routes!(prices::list_prices, prices::set_price))
        .routes(routes!(prices::end_price))
        .routes(routes!(credits::add_credits))
        .routes(routes!(credits::adjust_credits))
        .routes(routes!(credits::refund))
        .routes(routes!(accounts::set_limits))
        .routes(routes!(usage::account_stats))
        .routes(routes!(credits::admin_grants))
        .routes(routes!(events::admin_events))
        .routes(routes!(accounts::admin_alerts))
        .routes(routes!(
            webhooks::admin_create_webhook,
            webhooks::admin_list_webhooks
        ))
        .routes(routes!(webhooks::admin_delete_webhook))
        .routes(routes!(events::redeliver))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::collections::BTreeSet;

    use super::*;
    use crate::openapi::ROUTES;

    /// The whole document: fixed parts and every routed operation.
    fn openapi() -> utoipa::openapi::OpenApi {
        router().into_openapi()
    }

    #[test]
    fn the_document_lists_exactly_the_routes() {
        let document = serde_json::to_value(openapi()).unwrap();
        assert!(document["openapi"].as_str().unwrap().starts_with("3."));
        let mut documented = BTreeSet::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
        let expected: BTreeSet<_> = ROUTES
            .iter()
            .map(|(method, path)| (method.to_string(), path.to_string()))
            .collect();
        assert_eq!(documented, expected);
    }

    fn collect_refs(value: &serde_json::Value, refs: &mut BTreeSet<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, child) in map {
                    match (key.as_str(), child.as_str()) {
                        ("$ref", Some(target)) => {
                            refs.insert(target.to_string());
                        }
                        _ => collect_refs(child, refs),
                    }
                }
            }
            serde_json::Value::Array(items) => {
                items.iter().for_each(|child| collect_refs(child, refs))
            }
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves() {
        let document = serde_json::to_value(openapi()).unwrap();
        let mut refs = BTreeSet::new();
        collect_refs(&document, &mut refs);
        assert!(!refs.is_empty());
        for target in refs {
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{target}"));
            assert!(
                document["components"]["schemas"].get(name).is_some(),
                "dangling {target}"
            );
        }
    }

    #[test]
    fn every_operation_documents_its_errors_and_parameters() {
        let document = serde_json::to_value(openapi()).unwrap();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let responses = operation["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|s| s.starts_with('2')),
                    "{method} {path}: no success"
                );
                let params: Vec<_> = operation["parameters"]
                    .as_array()
                    .map(|list| {
                        list.iter()
                            .map(|p| p["name"].as_str().unwrap().to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                if path.contains("{id}") {
                    assert!(
                        params.contains(&"id".to_string()),
                        "{method} {path}: `id` undocumented"
                    );
                }
                // Operations routes need no key; Stripe's webhook is authenticated by its signature.
                let keyless = [
                    "/healthz",
                    "/readyz",
                    "/metrics",
                    "/openapi.json",
                    "/webhooks/stripe",
                ];
                if !keyless.contains(&path.as_str()) {
                    assert!(responses.contains_key("401"), "{method} {path}: no 401");
                    assert!(
                        operation.get("security").is_some(),
                        "{method} {path}: no security"
                    );
                }
            }
        }
    }
}
