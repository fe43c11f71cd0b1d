//! Payments: a Stripe Checkout top-up and auto-recharge settings of the customer's account (Stripe's webhook is
//! `stripe.rs`).
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

use crate::error::ApiError;
use crate::extract::{CallContext, JsonBody};
use crate::json::{AutoRecharge, AutoRechargeBody};
use crate::money::Usd;
use crate::openapi::CustomerWriteErrors;
use crate::state::AppState;

/// A top-up through Stripe Checkout.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckoutBody {
    /// USD, whole cents, 0.50..=100000.
    pub amount: Usd,
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
        amount: body.amount.to_wire(),
    });
    let session = state
        .account()
        .create_checkout(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
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
        threshold: body.threshold.to_wire(),
        amount: body.amount.to_wire(),
        monthly_max: body.monthly_max.to_wire(),
    });
    let recharge = state
        .account()
        .set_auto_recharge(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
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
    let recharge = state
        .account()
        .get_auto_recharge(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(recharge.try_into()?))
}
