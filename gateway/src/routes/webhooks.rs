//! Webhook endpoints: the customer's (its own account's events) and the operator's (every account's events).
//!
//! Customer routes (`/billing/…`, billing.v1.AccountService) take the customer's key; operator routes
//! (`/billing/admin/…`, billing.v1.AdminService) take the `ADMIN_API_KEY`: billing-svc checks either (401
//! unknown, 403 the wrong kind of key).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use proto::billing::v1 as pb;

use crate::error::ApiError;
use crate::extract::{CallContext, JsonBody, PathParams};
use crate::json::{CreateWebhookBody, WebhookEndpoint, WebhookList};
use crate::openapi::{AdminErrors, CustomerWriteErrors};
use crate::state::AppState;

/// Registers a webhook endpoint for the account's events (owner keys only); the answer holds its signing
/// `secret`, shown this once.
#[utoipa::path(
    post,
    path = "/billing/webhooks",
    tag = "billing",
    security(("bearer" = [])),
    request_body = CreateWebhookBody,
    responses((status = 201, body = WebhookEndpoint), CustomerWriteErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn create_webhook(
    State(state): State<AppState>,
    context: CallContext,
    JsonBody(body): JsonBody<CreateWebhookBody>,
) -> Result<(StatusCode, Json<WebhookEndpoint>), ApiError> {
    let request = context.request(pb::CreateWebhookRequest {
        url: body.url,
        event_types: body.event_types,
    });
    let endpoint = state
        .account()
        .create_webhook(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok((StatusCode::CREATED, Json(endpoint.try_into()?)))
}

/// The account's webhook endpoints (never their secrets; owner keys only).
#[utoipa::path(
    get,
    path = "/billing/webhooks",
    tag = "billing",
    security(("bearer" = [])),
    responses((status = 200, body = WebhookList), CustomerWriteErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn list_webhooks(
    State(state): State<AppState>,
    context: CallContext,
) -> Result<Json<WebhookList>, ApiError> {
    let request = context.request(pb::ListWebhooksRequest {});
    let response = state
        .account()
        .list_webhooks(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(response.try_into()?))
}

/// Removes one of the account's webhook endpoints (owner keys only).
#[utoipa::path(
    delete,
    path = "/billing/webhooks/{id}",
    tag = "billing",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses((status = 204, description = "Removed"), CustomerWriteErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    context: CallContext,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let request = context.request(pb::DeleteWebhookRequest { id });
    state
        .account()
        .delete_webhook(request)
        .await
        .map_err(ApiError::billing)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Registers an operator webhook endpoint: it receives every account's events. The answer holds its
/// signing `secret`, shown this once.
#[utoipa::path(
    post,
    path = "/admin/webhooks",
    tag = "admin",
    security(("bearer" = [])),
    request_body = CreateWebhookBody,
    responses((status = 201, body = WebhookEndpoint), AdminErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn admin_create_webhook(
    State(state): State<AppState>,
    context: CallContext,
    JsonBody(body): JsonBody<CreateWebhookBody>,
) -> Result<(StatusCode, Json<WebhookEndpoint>), ApiError> {
    let request = context.request(pb::CreateWebhookRequest {
        url: body.url,
        event_types: body.event_types,
    });
    let endpoint = state
        .admin()
        .create_webhook(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok((StatusCode::CREATED, Json(endpoint.try_into()?)))
}

/// The operator's webhook endpoints (never their secrets).
#[utoipa::path(
    get,
    path = "/admin/webhooks",
    tag = "admin",
    security(("bearer" = [])),
    responses((status = 200, body = WebhookList), AdminErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn admin_list_webhooks(
    State(state): State<AppState>,
    context: CallContext,
) -> Result<Json<WebhookList>, ApiError> {
    let request = context.request(pb::ListWebhooksRequest {});
    let response = state
        .admin()
        .list_webhooks(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(response.try_into()?))
}

/// Removes an operator webhook endpoint.
#[utoipa::path(
    delete,
    path = "/admin/webhooks/{id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses((status = 204, description = "Removed"), AdminErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn admin_delete_webhook(
    State(state): State<AppState>,
    context: CallContext,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let request = context.request(pb::DeleteWebhookRequest { id });
    state
        .admin()
        .delete_webhook(request)
        .await
        .map_err(ApiError::billing)?;
    Ok(StatusCode::NO_CONTENT)
}
