//! `POST /webhooks/stripe`: Stripe's webhook, passed to billing-svc as the exact bytes Stripe sent with its
//! `Stripe-Signature` header. The gateway holds no Stripe secret and reads nothing of the body.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use proto::billing::v1 as pb;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::openapi::StripeErrors;
use crate::routes::billing_call::billing;
use crate::state::AppState;

/// What the webhook did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StripeReceipt {
    /// The event's type.
    pub event_type: String,
    /// Whether it credited an account (a replay answers true again and credits nothing more).
    pub credited: bool,
}

/// Stripe's webhook endpoint: `checkout.session.completed` (paid) credits the session's account once;
/// other event types are acknowledged and ignored.
#[utoipa::path(
    post,
    path = "/webhooks/stripe",
    tag = "payments",
    request_body(content = String, content_type = "application/json", description = "The Stripe event, as Stripe sent it"),
    params(("Stripe-Signature" = String, Header, description = "Stripe's signature of the body")),
    responses((status = 200, body = StripeReceipt), StripeErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<StripeReceipt>, ApiError> {
    let signature = headers
        .get("stripe-signature")
        .and_then(|value| value.to_str().ok())
        .ok_or(ApiError::InvalidSignature)?
        .to_string();
    let response = billing(
        state
            .payments()
            .handle_stripe_webhook(pb::StripeWebhookRequest {
                payload: body.to_vec(),
                signature,
            }),
    )
    .await?;
    Ok(Json(StripeReceipt {
        event_type: response.event_type,
        credited: response.credited.is_some(),
    }))
}
