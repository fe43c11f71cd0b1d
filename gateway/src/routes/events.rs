//! Events: the outbox as the customer sees its own and the operator sees every account's, and the operator's
//! redelivery.
//!
//! Customer routes (`/billing/…`, billing.v1.AccountService) take the customer's key; operator routes
//! (`/billing/admin/…`, billing.v1.AdminService) take the `ADMIN_API_KEY`: billing-svc checks either (401
//! unknown, 403 the wrong kind of key).

use axum::Json;
use axum::extract::State;
use proto::billing::v1 as pb;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::extract::{CallContext, PathParams, QueryParams};
use crate::json::{EventPage, Redelivery};
use crate::openapi::{AdminErrors, CustomerErrors};
use crate::routes::query::page_limit;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct EventQuery {
    /// Only events of this type, e.g. `balance.low`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// Page size, 1..=1000; default 100.
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// The account's events (credits, expiries, low balance, cut-offs, key changes), newest first.
#[utoipa::path(
    get,
    path = "/billing/events",
    tag = "billing",
    security(("bearer" = [])),
    params(EventQuery),
    responses((status = 200, body = EventPage), CustomerErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn events(
    State(state): State<AppState>,
    context: CallContext,
    QueryParams(query): QueryParams<EventQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let request = context.request(pb::ListAccountEventsRequest {
        r#type: query.kind,
        limit: page_limit(query.limit)?,
        cursor: query.cursor,
    });
    let response = state
        .account()
        .list_events(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(response.try_into()?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct AdminEventQuery {
    /// Only this account's events (a key id means its account).
    pub account_id: Option<String>,
    /// Only events of this type, e.g. `balance.low`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// Page size, 1..=1000; default 100.
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// Events of every account (or one), newest first.
#[utoipa::path(
    get,
    path = "/admin/events",
    tag = "admin",
    security(("bearer" = [])),
    params(AdminEventQuery),
    responses((status = 200, body = EventPage), AdminErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn admin_events(
    State(state): State<AppState>,
    context: CallContext,
    QueryParams(query): QueryParams<AdminEventQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let request = context.request(pb::ListEventsRequest {
        account_id: query.account_id,
        r#type: query.kind,
        limit: query.limit.unwrap_or(0),
        cursor: query.cursor,
    });
    let response = state
        .admin()
        .list_events(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(response.try_into()?))
}

/// Posts one event again, now, to every enabled endpoint subscribed to it; answers the attempts.
#[utoipa::path(
    post,
    path = "/admin/events/{id}/redeliver",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The event's id (`evt_…`)")),
    responses((status = 200, body = Redelivery), AdminErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn redeliver(
    State(state): State<AppState>,
    context: CallContext,
    PathParams(id): PathParams<String>,
) -> Result<Json<Redelivery>, ApiError> {
    let request = context.request(pb::RedeliverEventRequest { event_id: id });
    let response = state
        .admin()
        .redeliver_event(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(Redelivery {
        attempts: response
            .attempts
            .into_iter()
            .map(TryInto::try_into)
            .collect::<Result<_, _>>()?,
    }))
}
