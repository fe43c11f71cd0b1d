//! An account's credit forms (BILLING.md, "Credit grants"): add credits (with a category and an expiry),
//! adjust the balance, refund a call.

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

/// The fields of the credit forms, and the words a refusal names each by ([`forms::Retry`]).
const CREDITS_FIELDS: forms::Fields = &[
    ("amount", &["amount"]),
    ("category", &["category"]),
    ("expires_at", &["expires_at", "expires"]),
    ("description", &["description"]),
];
const ADJUST_FIELDS: forms::Fields = &[("amount", &["amount"]), ("reason", &["reason"])];
const REFUND_FIELDS: forms::Fields = &[
    ("usage_record_id", &["usage_record_id", "usage record"]),
    ("amount", &["amount"]),
    ("reason", &["reason"]),
];

#[derive(Debug, Deserialize)]
pub struct CreditsForm {
    csrf: String,
    amount: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    expires_at: String,
    #[serde(default)]
    description: String,
}

pub async fn add_credits(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CreditsForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    let sent = async {
        let category = match form.category.as_str() {
            "" | "paid" => pb::GrantCategory::Paid,
            "promotional" => pb::GrantCategory::Promotional,
            other => return Err(PageError::Invalid(format!("no category {other:?}"))),
        };
        client(&state)
            .add_credits(viewer.request(pb::AddCreditsRequest {
                api_key_id: id.clone(),
                amount: form.amount.trim().to_string(),
                description: forms::optional(&form.description),
                idempotency_key: None,
                category: category.into(),
                expires_at: forms::optional_day("Expires", &form.expires_at)?,
                priority: None,
            }))
            .await?;
        Ok(())
    };
    let values = json!({"amount": form.amount, "category": form.category,
                        "expires_at": form.expires_at, "description": form.description});
    answer(
        &state,
        &viewer,
        &id,
        sent.await,
        ("credits", "credits"),
        CREDITS_FIELDS,
        values,
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct AdjustForm {
    csrf: String,
    amount: String,
    reason: String,
}

pub async fn adjust(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<AdjustForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    let sent = client(&state)
        .adjust_credits(viewer.request(pb::AdjustCreditsRequest {
            api_key_id: id.clone(),
            amount: form.amount.trim().to_string(),
            reason: form.reason.trim().to_string(),
            idempotency_key: None,
        }))
        .await
        .map(drop)
        .map_err(PageError::from);
    let values = json!({"amount": form.amount, "reason": form.reason});
    answer(
        &state,
        &viewer,
        &id,
        sent,
        ("adjust", "adjusted"),
        ADJUST_FIELDS,
        values,
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct RefundForm {
    csrf: String,
    usage_record_id: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
}

pub async fn refund(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<RefundForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    let sent = client(&state)
        .refund(viewer.request(pb::RefundRequest {
            api_key_id: id.clone(),
            usage_record_id: form.usage_record_id.trim().to_string(),
            amount: forms::optional(&form.amount),
            reason: forms::optional(&form.reason),
        }))
        .await
        .map(drop)
        .map_err(PageError::from);
    let values = json!({"usage_record_id": form.usage_record_id, "amount": form.amount,
                        "reason": form.reason});
    answer(
        &state,
        &viewer,
        &id,
        sent,
        ("refund", "refunded"),
        REFUND_FIELDS,
        values,
    )
    .await
}
