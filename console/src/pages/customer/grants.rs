//! The customer's credit grants (BILLING.md, "Credit grants"): those holding credit in spending order, then
//! spent and expired ones.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use proto::billing::v1 as pb;
use serde_json::json;

use crate::error::PageError;
use crate::pages::customer::account_service::{client, payments_configured};
use crate::pages::display::grant;
use crate::render::page;
use crate::state::ConsoleState;
use crate::viewer::Viewer;

/// The account's grants: those holding credit in spending order, then spent and expired ones.
pub async fn grants(
    State(state): State<ConsoleState>,
    viewer: Viewer,
) -> Result<Response, PageError> {
    viewer.require_customer()?;
    let list = client(&state)
        .list_grants(viewer.request(pb::ListAccountGrantsRequest {
            include_spent: true,
        }))
        .await?
        .into_inner();
    let payments = payments_configured(&state, &viewer).await?;
    let data = json!({
        "grants": list.grants.iter().map(grant).collect::<Vec<_>>(),
        "payments": payments,
    });
    Ok(page("grants.html", &viewer, "Grants", "grants", data)?.into_response())
}
