//! Payments: a Stripe Checkout top-up and auto-recharge settings of the customer's account (WEBHOOKS.md,
//! "Stripe's webhook (payments)"; the webhook itself is `stripe.rs`).
//!
//! Customer routes (`/billing/…`, billing.v1.AccountService) take the customer's key; operator routes
//! (`/billing/admin/…`, billing.v1.AdminService) take the `ADMIN_API_KEY`: billing-svc checks either (401
//! unknown, 403 the wrong kind of key).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use proto::billing::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, Service};
use crate::extract::{CallContext, JsonBody};
use crate::openapi::CustomerWriteErrors;
use crate::routes::billing_call::billing;
use crate::state::AppState;
use crate::timestamp::Timestamp;
use crate::wire::{money, time};
use money::Money;

/// Auto-recharge's settings: when a settlement takes available credit below `threshold`, the card saved by a
/// Checkout payment is charged `amount`, never past `monthlyMax` in a UTC month.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutoRechargeBody {
    pub enabled: bool,
    /// USD, >= 0.
    pub threshold: Money,
    /// USD charged each time, whole cents, 0.50..=100000.
    pub amount: Money,
    /// USD the charges may add up to in a UTC month, at least `amount`.
    pub monthly_max: Money,
}

/// Auto-recharge as it stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoRecharge {
    /// False until settings were saved once (the amounts are then 0).
    pub configured: bool,
    pub enabled: bool,
    pub threshold: Money,
    pub amount: Money,
    pub monthly_max: Money,
    /// What the charges started this UTC month add up to (failed ones not counted).
    pub charged_this_month: Money,
    /// Failed charges since the last success; the third turns auto-recharge off.
    pub consecutive_failures: u32,
    /// The id of the charge waiting for Stripe, if one is (at most one at a time).
    pub in_flight: Option<String>,
    /// A card is saved (by a Checkout payment) for off-session charges.
    pub saved_card: bool,
    /// The latest charges, newest first.
    pub recent: Vec<AutoRechargeCharge>,
}

/// One charge auto-recharge started.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoRechargeCharge {
    /// The id of the `balance.low` event that started it, sent to Stripe as the Idempotency-Key.
    pub id: String,
    pub amount: Money,
    /// `pending`, `charged` (waiting for Stripe's webhook), `succeeded` or `failed`.
    pub status: String,
    pub payment_intent_id: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl TryFrom<pb::AutoRecharge> for AutoRecharge {
    type Error = ApiError;

    fn try_from(recharge: pb::AutoRecharge) -> Result<AutoRecharge, ApiError> {
        let usd = |field: &str, text: &str| money(Service::Billing, field, text);
        Ok(AutoRecharge {
            configured: recharge.configured,
            enabled: recharge.enabled,
            threshold: usd("threshold", &recharge.threshold)?,
            amount: usd("amount", &recharge.amount)?,
            monthly_max: usd("monthly_max", &recharge.monthly_max)?,
            charged_this_month: usd("charged_this_month", &recharge.charged_this_month)?,
            consecutive_failures: recharge.consecutive_failures,
            in_flight: recharge.in_flight,
            saved_card: recharge.saved_card,
            recent: recharge
                .recent
                .into_iter()
                .map(|charge| {
                    Ok(AutoRechargeCharge {
                        amount: usd("recent.amount", &charge.amount)?,
                        created_at: time("recent.created_at", charge.created_at)?,
                        updated_at: time("recent.updated_at", charge.updated_at)?,
                        id: charge.id,
                        status: charge.status,
                        payment_intent_id: charge.payment_intent_id,
                        error: charge.error,
                    })
                })
                .collect::<Result<_, ApiError>>()?,
        })
    }
}

/// A top-up through Stripe Checkout.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckoutBody {
    /// USD, whole cents, 0.50..=100000.
    pub amount: Money,
}

/// Where to pay a top-up.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Checkout {
    /// Send the customer here; the credit lands when Stripe reports the payment.
    pub checkout_url: String,
    pub session_id: String,
}

/// Starts a top-up through Stripe Checkout (owner keys only); 404 `payments_not_configured` without
/// Stripe settings.
#[utoipa::path(
    post,
    path = "/billing/checkout",
    tag = "billing",
    security(("bearer" = [])),
    request_body = CheckoutBody,
    responses((status = 201, body = Checkout), CustomerWriteErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn checkout(
    State(state): State<AppState>,
    context: CallContext,
    JsonBody(body): JsonBody<CheckoutBody>,
) -> Result<(StatusCode, Json<Checkout>), ApiError> {
    let request = context.request(pb::CreateCheckoutRequest {
        amount: body.amount.to_string(),
    });
    let session = billing(state.account().create_checkout(request)).await?;
    Ok((
        StatusCode::CREATED,
        Json(Checkout {
            checkout_url: session.checkout_url,
            session_id: session.session_id,
        }),
    ))
}

/// Sets auto-recharge (owner keys only). Turning it on needs a card saved by a Checkout payment (409
/// otherwise); 404 `payments_not_configured` without Stripe settings.
#[utoipa::path(
    put,
    path = "/billing/auto-recharge",
    tag = "billing",
    security(("bearer" = [])),
    request_body = AutoRechargeBody,
    responses((status = 200, body = AutoRecharge), CustomerWriteErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn set_auto_recharge(
    State(state): State<AppState>,
    context: CallContext,
    JsonBody(body): JsonBody<AutoRechargeBody>,
) -> Result<Json<AutoRecharge>, ApiError> {
    let request = context.request(pb::SetAutoRechargeRequest {
        enabled: body.enabled,
        threshold: body.threshold.to_string(),
        amount: body.amount.to_string(),
        monthly_max: body.monthly_max.to_string(),
    });
    let recharge = billing(state.account().set_auto_recharge(request)).await?;
    Ok(Json(recharge.try_into()?))
}

/// Auto-recharge's settings, where it stands and its latest charges (owner keys only).
#[utoipa::path(
    get,
    path = "/billing/auto-recharge",
    tag = "billing",
    security(("bearer" = [])),
    responses((status = 200, body = AutoRecharge), CustomerWriteErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn get_auto_recharge(
    State(state): State<AppState>,
    context: CallContext,
) -> Result<Json<AutoRecharge>, ApiError> {
    let request = context.request(pb::GetAutoRechargeRequest {});
    let recharge = billing(state.account().get_auto_recharge(request)).await?;
    Ok(Json(recharge.try_into()?))
}
