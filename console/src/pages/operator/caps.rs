//! An account's caps form: its daily and monthly spend limits (BILLING.md, "Limits").

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use proto::billing::v1 as pb;
use serde::Deserialize;
use serde_json::json;

use crate::error::PageError;
use crate::forms;
use crate::pages::operator::account::answer;
use crate::pages::operator::admin_service::client;
use crate::state::ConsoleState;
use crate::viewer::Viewer;

/// The caps form's fields, and the words a refusal names each by ([`forms::Retry`]).
const LIMITS_FIELDS: forms::Fields = &[
    ("daily_limit", &["daily_limit", "daily"]),
    ("monthly_limit", &["monthly_limit", "monthly"]),
];

#[derive(Debug, Deserialize)]
pub struct LimitsForm {
    csrf: String,
    #[serde(default)]
    daily_limit: String,
    #[serde(default)]
    monthly_limit: String,
}

pub async fn set_limits(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<LimitsForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    let sent = client(&state)
        .set_limits(viewer.request(pb::SetLimitsRequest {
            api_key_id: id.clone(),
            daily_limit: forms::optional(&form.daily_limit),
            monthly_limit: forms::optional(&form.monthly_limit),
        }))
        .await
        .map(drop)
        .map_err(PageError::from);
    let values = json!({"daily_limit": form.daily_limit, "monthly_limit": form.monthly_limit});
    answer(
        &state,
        &viewer,
        &id,
        sent,
        ("limits", "limits"),
        LIMITS_FIELDS,
        values,
    )
    .await
}
