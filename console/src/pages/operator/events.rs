//! Events of every account (WEBHOOKS.md), newest first, each with its deliveries, and Redeliver on an event
//! whose last attempt at an endpoint failed; how an event's deliveries are summed up on an account's page
//! and the overview.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use proto::billing::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::PageError;
use crate::forms;
use crate::pages::display::{notice, time};
use crate::pages::operator::admin_service::client;
use crate::render::page;
use crate::state::ConsoleState;
use crate::viewer::Viewer;

#[derive(Debug, Deserialize, Default)]
pub struct EventsQuery {
    #[serde(default)]
    account_id: String,
    #[serde(default, rename = "type")]
    kind: String,
    cursor: Option<String>,
    done: Option<String>,
}

/// Events of every account (or one, of a type), newest first, each with its deliveries: the endpoint's URL
/// (the operator's endpoints by URL; an account's endpoint, which AdminService does not list, by its id),
/// and a Redeliver button on an event whose last attempt at an endpoint failed.
pub async fn events(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Query(query): Query<EventsQuery>,
) -> Result<Response, PageError> {
    viewer.require_operator()?;
    let mut admin = client(&state);
    let list = admin
        .list_events(viewer.request(pb::ListEventsRequest {
            account_id: forms::optional(&query.account_id),
            r#type: forms::optional(&query.kind),
            limit: 50,
            cursor: query.cursor.clone(),
        }))
        .await?
        .into_inner();
    let urls: HashMap<String, String> = admin
        .list_webhooks(viewer.request(pb::ListWebhooksRequest {}))
        .await?
        .into_inner()
        .endpoints
        .into_iter()
        .map(|endpoint| (endpoint.id, endpoint.url))
        .collect();
    let rows: Vec<Value> = list
        .events
        .iter()
        .map(|event| event_row(event, &urls))
        .collect();
    let data = json!({
        "events": rows, "next": list.next_cursor, "account_id": query.account_id, "type": query.kind,
        "notice": notice(query.done.as_deref()),
    });
    Ok(page("admin_events.html", &viewer, "Events", "events", data)?.into_response())
}

/// One event as an account's page lists it: its type and time, and how its deliveries went (the last attempt
/// at each endpoint counts).
pub(super) fn event_summary(event: &pb::Event) -> Value {
    let last_succeeded = last_attempts(event);
    let failed = last_succeeded
        .values()
        .filter(|succeeded| !**succeeded)
        .count();
    json!({
        "id": event.id, "created_at": time(event.created_at.as_ref()), "type": event.r#type,
        "account_id": event.account_id,
        "events_link": format!(
            "/console/admin/events?account_id={}&type={}",
            url::form_urlencoded::byte_serialize(event.account_id.as_bytes()).collect::<String>(),
            url::form_urlencoded::byte_serialize(event.r#type.as_bytes()).collect::<String>()
        ),
        "endpoints": last_succeeded.len(), "failed": failed,
        "delivered": last_succeeded.len() - failed, "attempts": event.deliveries.len(),
    })
}

/// Whether the last attempt at each endpoint of an event succeeded (attempts come oldest first, so the last
/// one per endpoint wins).
fn last_attempts(event: &pb::Event) -> HashMap<&str, bool> {
    event
        .deliveries
        .iter()
        .map(|attempt| (attempt.endpoint_id.as_str(), attempt.succeeded))
        .collect()
}

/// One event as the events page shows it. It may be delivered again when the last attempt at some endpoint
/// failed.
fn event_row(event: &pb::Event, urls: &HashMap<String, String>) -> Value {
    let last_succeeded = last_attempts(event);
    let deliveries: Vec<Value> = event
        .deliveries
        .iter()
        .map(|attempt| {
            json!({"attempt": attempt.attempt, "at": time(attempt.at.as_ref()), "succeeded": attempt.succeeded,
                   "status": attempt.status, "error": attempt.error, "endpoint_id": attempt.endpoint_id,
                   "url": urls.get(&attempt.endpoint_id)})
        })
        .collect();
    json!({
        "id": event.id, "created_at": time(event.created_at.as_ref()), "type": event.r#type,
        "account_id": event.account_id, "data": event.data_json, "deliveries": deliveries,
        "failed": last_succeeded.values().any(|succeeded| !succeeded),
    })
}

#[derive(Debug, Deserialize)]
pub struct RedeliverForm {
    csrf: String,
    #[serde(default)]
    account_id: String,
    #[serde(default, rename = "type")]
    kind: String,
}

/// Posts an event again, now, to every enabled endpoint subscribed to it (AdminService/RedeliverEvent), then
/// back to the events page with the same filter (post/redirect/get).
pub async fn redeliver_event(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<RedeliverForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    client(&state)
        .redeliver_event(viewer.request(pb::RedeliverEventRequest { event_id: id }))
        .await?;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("account_id", &form.account_id)
        .append_pair("type", &form.kind)
        .append_pair("done", "redelivered")
        .finish();
    Ok(Redirect::to(&format!("/console/admin/events?{query}")).into_response())
}
