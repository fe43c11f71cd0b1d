//! Events of the outbox and the `balance.low` thresholds.

use proto::billing::v1 as billing_pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::*;
use crate::error::{ApiError, Service};
use crate::money::Usd;

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

impl TryFrom<billing_pb::DeliveryAttempt> for DeliveryAttempt {
    type Error = ApiError;

    fn try_from(attempt: billing_pb::DeliveryAttempt) -> Result<DeliveryAttempt, ApiError> {
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

impl TryFrom<billing_pb::WebhookEndpoint> for WebhookEndpoint {
    type Error = ApiError;

    fn try_from(endpoint: billing_pb::WebhookEndpoint) -> Result<WebhookEndpoint, ApiError> {
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

impl TryFrom<billing_pb::ListWebhooksResponse> for WebhookList {
    type Error = ApiError;

    fn try_from(response: billing_pb::ListWebhooksResponse) -> Result<WebhookList, ApiError> {
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

impl TryFrom<billing_pb::Event> for Event {
    type Error = ApiError;

    fn try_from(event: billing_pb::Event) -> Result<Event, ApiError> {
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

impl TryFrom<billing_pb::ListEventsResponse> for EventPage {
    type Error = ApiError;

    fn try_from(response: billing_pb::ListEventsResponse) -> Result<EventPage, ApiError> {
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

/// The `balance.low` thresholds of an account: each fires once when the balance crosses below it, and
/// again only after credit brought the balance back to it or above.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Alerts {
    /// USD amounts, at most 10, each >= 0; `[]` clears them. Answered highest first.
    pub low_balance: Vec<Usd>,
}

impl TryFrom<billing_pb::Alerts> for Alerts {
    type Error = ApiError;

    fn try_from(alerts: billing_pb::Alerts) -> Result<Alerts, ApiError> {
        Ok(Alerts {
            low_balance: alerts
                .low_balance
                .iter()
                .map(|amount| money(Service::Billing, "low_balance", amount))
                .collect::<Result<_, _>>()?,
        })
    }
}
