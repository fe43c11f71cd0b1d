//! Events of the outbox and the `balance.low` thresholds.

use proto::billing::v1 as billing_pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::*;
use crate::error::{ApiError, Service};
use crate::money::Usd;

/// One event (DESIGN §11), as webhooks deliver it: `{id, type, timestamp, data}`, plus its account.
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
}

impl TryFrom<billing_pb::Event> for Event {
    type Error = ApiError;

    fn try_from(event: billing_pb::Event) -> Result<Event, ApiError> {
        Ok(Event {
            data: serde_json::from_str(&event.data_json)
                .map_err(|error| contract(Service::Billing, format!("data_json: {error}")))?,
            timestamp: time("event.created_at", event.created_at)?,
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
