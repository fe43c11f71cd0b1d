//! The customer's spend this month per workspace.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use proto::billing::v1 as pb;
use serde_json::{Value, json};

use crate::error::PageError;
use crate::pages::customer::account_service::{client, this_month};
use crate::pages::display::totals;
use crate::render::page;
use crate::state::ConsoleState;
use crate::viewer::Viewer;

/// Spend this month per workspace.
pub async fn workspaces(
    State(state): State<ConsoleState>,
    viewer: Viewer,
) -> Result<Response, PageError> {
    viewer.require_customer()?;
    let list = client(&state)
        .list_workspace_usage(viewer.request(pb::ListWorkspaceUsageRequest {
            range: Some(this_month()),
            api_key_id: None,
        }))
        .await?
        .into_inner();
    let rows: Vec<Value> = list
        .workspaces
        .iter()
        .map(|workspace| {
            let mut row = totals(workspace.totals.as_ref());
            row["id"] = workspace.workspace_id.clone().into();
            row
        })
        .collect();
    Ok(page(
        "workspaces.html",
        &viewer,
        "Workspaces",
        "workspaces",
        json!({"workspaces": rows}),
    )?
    .into_response())
}
