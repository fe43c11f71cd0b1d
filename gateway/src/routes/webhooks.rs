//! Webhook endpoints: the customer's (its own account's events) and the operator's (every account's events).
//!
//! Customer routes (`/billing/…`, billing.v1.AccountService) take the customer's key; operator routes
//! (`/billing/admin/…`, billing.v1.AdminService) take the `ADMIN_API_KEY`: billing-svc checks either (401
//! unknown, 403 the wrong kind of key).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use proto::billing::v1 as pb;
use proto::ids::WebhookId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::{CallContext, JsonBody, PathId};
use crate::openapi::{AdminErrors, CustomerWriteErrors};
use crate::routes::billing_call::billing;
use crate::state::AppState;
use crate::timestamp::Timestamp;
use crate::wire::time;

/// A webhook endpoint. Deliveries follow the Standard Webhooks specification (WEBHOOKS section of
/// BILLING.md): headers `webhook-id`, `webhook-timestamp`, `webhook-signature`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpoint {
    pub id: String,
    /// Null for the operator's endpoints (every account's events).
    pub account_id: Option<String>,
    pub url: String,
    /// The event types it receives; empty = all.
    pub event_types: Vec<String>,
    pub created_at: Timestamp,
    /// Set when its last retry failed; it receives nothing more.
    pub disabled_at: Option<Timestamp>,
    /// The `whsec_` signing secret: only in the answer to its creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl TryFrom<pb::WebhookEndpoint> for WebhookEndpoint {
    type Error = ApiError;

    fn try_from(endpoint: pb::WebhookEndpoint) -> Result<WebhookEndpoint, ApiError> {
        Ok(WebhookEndpoint {
            created_at: time("webhook.created_at", endpoint.created_at)?,
            disabled_at: endpoint.disabled_at.map(Timestamp),
            account_id: Some(endpoint.account_id).filter(|id| !id.is_empty()),
            id: endpoint.id,
            url: endpoint.url,
            event_types: endpoint.event_types,
            secret: endpoint.secret,
        })
    }
}

/// Webhook endpoints.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookList {
    pub webhooks: Vec<WebhookEndpoint>,
}

impl TryFrom<pb::ListWebhooksResponse> for WebhookList {
    type Error = ApiError;

    fn try_from(response: pb::ListWebhooksResponse) -> Result<WebhookList, ApiError> {
        Ok(WebhookList {
            webhooks: response
                .endpoints
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// A new webhook endpoint.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhookBody {
    /// http(s); private and loopback addresses are refused unless billing-svc allows them.
    pub url: String,
    /// The event types it receives, e.g. `["balance.low"]`; absent or empty = all.
    #[serde(default)]
    pub event_types: Vec<String>,
}

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
    let endpoint = billing(state.account().create_webhook(request)).await?;
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
    let response = billing(state.account().list_webhooks(request)).await?;
    Ok(Json(response.try_into()?))
}

/// Removes one of the account's webhook endpoints (owner keys only).
#[utoipa::path(
    delete,
    path = "/billing/webhooks/{id}",
    tag = "billing",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The endpoint's id (`we_…`)")),
    responses((status = 204, description = "Removed"), CustomerWriteErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    context: CallContext,
    PathId(id): PathId<WebhookId>,
) -> Result<StatusCode, ApiError> {
    let request = context.request(pb::DeleteWebhookRequest { id: id.into() });
    billing(state.account().delete_webhook(request)).await?;
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
    let endpoint = billing(state.admin().create_webhook(request)).await?;
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
    let response = billing(state.admin().list_webhooks(request)).await?;
    Ok(Json(response.try_into()?))
}

/// Removes an operator webhook endpoint.
#[utoipa::path(
    delete,
    path = "/admin/webhooks/{id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The endpoint's id (`we_…`)")),
    responses((status = 204, description = "Removed"), AdminErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn admin_delete_webhook(
    State(state): State<AppState>,
    context: CallContext,
    PathId(id): PathId<WebhookId>,
) -> Result<StatusCode, ApiError> {
    let request = context.request(pb::DeleteWebhookRequest { id: id.into() });
    billing(state.admin().delete_webhook(request)).await?;
    Ok(StatusCode::NO_CONTENT)
}
