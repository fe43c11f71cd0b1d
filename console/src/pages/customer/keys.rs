//! The account's keys, as an owner sees them: names, roles, spend, policies and whether each still works.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use proto::billing::v1 as pb;
use serde_json::json;

use crate::error::PageError;
use crate::pages::customer::account_service::client;
use crate::pages::display::key_spend;
use crate::render::page;
use crate::state::ConsoleState;
use crate::viewer::Viewer;

/// The account's keys (owners).
pub async fn keys(
    State(state): State<ConsoleState>,
    viewer: Viewer,
) -> Result<Response, PageError> {
    viewer.require_owner()?;
    let list = client(&state)
        .list_keys(viewer.request(pb::ListAccountKeysRequest {}))
        .await?
        .into_inner();
    let data = json!({"keys": list.keys.iter().map(key_spend).collect::<Vec<_>>()});
    Ok(page("keys.html", &viewer, "Keys", "keys", data)?.into_response())
}
