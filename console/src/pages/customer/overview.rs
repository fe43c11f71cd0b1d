//! The customer's overview (CONSOLE.md, "What each one sees"): balance, holds, spend against the caps, a
//! low-balance warning, and the top-up form that starts a Stripe Checkout.

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use proto::billing::v1 as pb;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;

use crate::error::PageError;
use crate::forms;
use crate::pages::customer::account_service::{client, payments_configured, this_month};
use crate::pages::display::{account, by_model, key_spend, totals};
use crate::render::form_page;
use crate::state::ConsoleState;
use crate::viewer::Viewer;

/// The overview: balance, holds, spend against the caps, a low-balance warning and top-up.
pub async fn overview(
    State(state): State<ConsoleState>,
    viewer: Viewer,
) -> Result<Response, PageError> {
    viewer.require_customer()?;
    overview_view(&state, &viewer, None).await
}

/// The overview; with `retry`, its top-up form sent back with the amount typed and why it was refused.
async fn overview_view(
    state: &ConsoleState,
    viewer: &Viewer,
    retry: Option<forms::Retry>,
) -> Result<Response, PageError> {
    let mut billing = client(state);
    let account_pb = billing
        .get_account(viewer.request(pb::GetAccountRequest {}))
        .await?
        .into_inner();
    let stats = billing
        .get_stats(viewer.request(pb::GetStatsRequest {
            range: Some(this_month()),
            api_key_id: None,
        }))
        .await?
        .into_inner();
    let payments = payments_configured(state, viewer).await?;
    // A member's spend is its key's: shown against the key's own caps (its policy), beside the account's.
    // (`ListKeys` answers a member with itself alone.)
    let own_key = if viewer.owner() {
        None
    } else {
        billing
            .list_keys(viewer.request(pb::ListAccountKeysRequest {}))
            .await?
            .into_inner()
            .keys
            .first()
            .map(key_spend)
    };
    let decimal = |text: &str| text.parse::<Decimal>().unwrap_or_default();
    let available = decimal(&account_pb.credits_balance) - decimal(&account_pb.held_credits);
    let highest_alert = account_pb
        .low_balance_alerts
        .iter()
        .map(|threshold| decimal(threshold))
        .max();
    let low = available <= Decimal::ZERO || highest_alert.is_some_and(|alert| available < alert);
    let data = json!({
        "account": account(&account_pb),
        "today": totals(stats.today.as_ref())["cost"],
        "month": totals(stats.this_month.as_ref())["cost"],
        "models": by_model(&stats),
        "forecast": stats.forecast.as_ref().map(|forecast| json!({
            "month_end": forecast.month_end,
            "last_7_days": forecast.last_7_days,
        })),
        "low": low,
        "payments": payments,
        "own_key": own_key,
    });
    form_page("overview.html", viewer, "Overview", "overview", data, retry)
}

#[derive(Debug, Deserialize)]
pub struct TopUpForm {
    csrf: String,
    amount: String,
}

/// The top-up form's field ([`forms::Retry`]).
const TOP_UP_FIELDS: forms::Fields = &[("amount", &["amount"])];

/// Starts a Checkout top-up and sends the browser to Stripe's page; a refusal of the amount typed sends the
/// overview back with it.
pub async fn top_up(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Form(form): Form<TopUpForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_owner()?;
    let session = client(&state)
        .create_checkout(viewer.request(pb::CreateCheckoutRequest {
            amount: form.amount.trim().to_string(),
        }))
        .await;
    match session {
        Ok(session) => Ok(Redirect::to(&session.into_inner().checkout_url).into_response()),
        Err(status) => {
            let values = json!({"amount": form.amount});
            let retry = forms::Retry::of(status.into(), "top_up", TOP_UP_FIELDS, values)?;
            overview_view(&state, &viewer, Some(retry)).await
        }
    }
}
