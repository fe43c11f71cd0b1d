//! The account's alerts and auto-recharge (owners): the `balance.low` thresholds (BILLING.md, "Events and
//! alerts"), the auto-recharge settings and its recent charges (WEBHOOKS.md, "Stripe's webhook (payments)").

use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use proto::billing::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::PageError;
use crate::forms;
use crate::pages::customer::account_service::client;
use crate::pages::display::{notice, time};
use crate::render::form_page;
use crate::state::ConsoleState;
use crate::viewer::Viewer;

#[derive(Debug, Deserialize, Default)]
pub struct DoneQuery {
    done: Option<String>,
}

/// Alerts and auto-recharge (owners).
pub async fn settings(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Query(query): Query<DoneQuery>,
) -> Result<Response, PageError> {
    viewer.require_owner()?;
    settings_view(&state, &viewer, query.done.as_deref(), None).await
}

/// The alerts and auto-recharge page, its notice after a form named by `done`; with `retry`, one of its forms
/// sent back with what was typed and why it was refused.
async fn settings_view(
    state: &ConsoleState,
    viewer: &Viewer,
    done: Option<&str>,
    retry: Option<forms::Retry>,
) -> Result<Response, PageError> {
    let mut billing = client(state);
    let account_pb = billing
        .get_account(viewer.request(pb::GetAccountRequest {}))
        .await?
        .into_inner();
    let recharge = billing
        .get_auto_recharge(viewer.request(pb::GetAutoRechargeRequest {}))
        .await?
        .into_inner();
    let recent: Vec<Value> = recharge
        .recent
        .iter()
        .map(|charge| {
            json!({"created_at": time(charge.created_at.as_ref()), "amount": charge.amount,
                   "status": charge.status, "error": charge.error})
        })
        .collect();
    let data = json!({
        "notice": notice(done),
        "low_balance": account_pb.low_balance_alerts.join(", "),
        "recharge": {
            "payments": recharge.payments_configured, "saved_card": recharge.saved_card,
            "enabled": recharge.enabled, "threshold": recharge.threshold, "amount": recharge.amount,
            "monthly_max": recharge.monthly_max, "charged_this_month": recharge.charged_this_month,
            "consecutive_failures": recharge.consecutive_failures, "recent": recent,
        },
    });
    form_page(
        "settings.html",
        viewer,
        "Alerts and auto-recharge",
        "settings",
        data,
        retry,
    )
}

#[derive(Debug, Deserialize)]
pub struct AlertsForm {
    csrf: String,
    #[serde(default)]
    low_balance: String,
}

/// The alerts form's field ([`forms::Retry`]).
const ALERTS_FIELDS: forms::Fields = &[("low_balance", &["low_balance", "thresholds"])];

/// Replaces the `balance.low` thresholds; a refusal of what was typed (a threshold that is not an amount)
/// sends the form back as typed.
pub async fn set_alerts(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Form(form): Form<AlertsForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_owner()?;
    let sent = client(&state)
        .set_alerts(viewer.request(pb::SetAccountAlertsRequest {
            low_balance: forms::list(&form.low_balance),
        }))
        .await;
    match sent {
        Ok(_) => Ok(Redirect::to("/console/settings?done=alerts").into_response()),
        Err(status) => {
            let values = json!({"low_balance": form.low_balance});
            let retry = forms::Retry::of(status.into(), "alerts", ALERTS_FIELDS, values)?;
            settings_view(&state, &viewer, None, Some(retry)).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct AutoRechargeForm {
    csrf: String,
    #[serde(default)]
    enabled: Option<String>,
    threshold: String,
    amount: String,
    monthly_max: String,
}

/// The auto-recharge form's fields, by billing-svc's names for them ([`forms::Retry`]).
const RECHARGE_FIELDS: forms::Fields = &[
    ("threshold", &["threshold"]),
    ("amount", &["amount"]),
    ("monthly_max", &["monthly_max"]),
];

/// Saves the auto-recharge settings; a refusal of what was typed sends the form back as typed.
pub async fn set_auto_recharge(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Form(form): Form<AutoRechargeForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_owner()?;
    let sent = client(&state)
        .set_auto_recharge(viewer.request(pb::SetAutoRechargeRequest {
            enabled: form.enabled.is_some(),
            threshold: form.threshold.trim().to_string(),
            amount: form.amount.trim().to_string(),
            monthly_max: form.monthly_max.trim().to_string(),
        }))
        .await;
    match sent {
        Ok(_) => Ok(Redirect::to("/console/settings?done=recharge").into_response()),
        Err(status) => {
            let values = json!({
                "enabled": form.enabled.is_some(), "threshold": form.threshold,
                "amount": form.amount, "monthly_max": form.monthly_max,
            });
            let retry = forms::Retry::of(status.into(), "recharge", RECHARGE_FIELDS, values)?;
            settings_view(&state, &viewer, None, Some(retry)).await
        }
    }
}
