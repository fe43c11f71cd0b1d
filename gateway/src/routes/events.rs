//! Events: the outbox as the customer sees its own and the operator sees every account's, and the operator's
//! redelivery.
//!
//! Customer routes (`/billing/…`, billing.v1.AccountService) take the customer's key; operator routes
//! (`/billing/admin/…`, billing.v1.AdminService) take the `ADMIN_API_KEY`: billing-svc checks either (401
//! unknown, 403 the wrong kind of key).

use axum::Json;
use axum::extract::State;
use proto::billing::v1 as pb;
use proto::ids::EventId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Service};
use crate::extract::{CallContext, PathId, QueryParams};
use crate::openapi::{AdminErrors, CustomerErrors};
use crate::routes::billing_call::billing;
use crate::routes::query::page_limit;
use crate::state::AppState;
use crate::timestamp::Timestamp;
use crate::wire::{contract, time};

/// One event (BILLING.md, "Events and alerts"), as webhooks deliver it: `{id, type, timestamp, data}`, plus
/// its account.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// `evt_…`, unique: receivers dedupe by it.
    pub id: String,
    /// e.g. `credits.added`, `balance.low`, `key.rotated`.
    #[serde(rename = "type")]
    pub kind: String,
    pub timestamp: Timestamp,
    pub account_id: String,
    /// What happened: amounts as decimal strings of USD, ids, times as RFC 3339.
    #[schema(value_type = Object)]
    pub data: Value,
    /// Every attempt to deliver it to a webhook endpoint, oldest first.
    pub deliveries: Vec<DeliveryAttempt>,
}

/// One attempt to post an event to a webhook endpoint.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAttempt {
    pub endpoint_id: String,
    /// 1 for the first attempt at this endpoint.
    pub attempt: u64,
    pub at: Timestamp,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u32>,
    /// Why it failed.
    pub error: Option<String>,
    pub duration_ms: u64,
    pub succeeded: bool,
}

impl TryFrom<pb::DeliveryAttempt> for DeliveryAttempt {
    type Error = ApiError;

    fn try_from(attempt: pb::DeliveryAttempt) -> Result<DeliveryAttempt, ApiError> {
        Ok(DeliveryAttempt {
            at: time("delivery.at", attempt.at)?,
            endpoint_id: attempt.endpoint_id,
            attempt: attempt.attempt,
            status: attempt.status,
            error: attempt.error,
            duration_ms: attempt.duration_ms,
            succeeded: attempt.succeeded,
        })
    }
}

/// The attempts of a redelivery.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Redelivery {
    pub attempts: Vec<DeliveryAttempt>,
}

impl TryFrom<pb::Event> for Event {
    type Error = ApiError;

    fn try_from(event: pb::Event) -> Result<Event, ApiError> {
        Ok(Event {
            data: serde_json::from_str(&event.data_json)
                .map_err(|error| contract(Service::Billing, format!("data_json: {error}")))?,
            timestamp: time("event.created_at", event.created_at)?,
            deliveries: event
                .deliveries
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
            id: event.id,
            kind: event.r#type,
            account_id: event.account_id,
        })
    }
}

/// A page of events, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    pub events: Vec<Event>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl TryFrom<pb::ListEventsResponse> for EventPage {
    type Error = ApiError;

    fn try_from(response: pb::ListEventsResponse) -> Result<EventPage, ApiError> {
        Ok(EventPage {
            events: response
                .events
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
            next_cursor: response.next_cursor,
        })
    }
}

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
    let response = billing(state.account().list_events(request)).await?;
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
    let response = billing(state.admin().list_events(request)).await?;
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
    PathId(id): PathId<EventId>,
) -> Result<Json<Redelivery>, ApiError> {
    let request = context.request(pb::RedeliverEventRequest {
        event_id: id.into(),
    });
    let response = billing(state.admin().redeliver_event(request)).await?;
    Ok(Json(Redelivery {
        attempts: response
            .attempts
            .into_iter()
            .map(TryInto::try_into)
            .collect::<Result<_, _>>()?,
    }))
}
