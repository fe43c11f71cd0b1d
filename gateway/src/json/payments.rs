//! Auto-recharge's settings and charges (WEBHOOKS.md, "Stripe's webhook (payments)").

use proto::billing::v1 as billing_pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::*;
use crate::error::{ApiError, Service};
use crate::money::Usd;

/// Auto-recharge's settings: when a settlement takes available credit below `threshold`, the card saved by a
/// Checkout payment is charged `amount`, never past `monthlyMax` in a UTC month.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutoRechargeBody {
    pub enabled: bool,
    /// USD, >= 0.
    pub threshold: Usd,
    /// USD charged each time, whole cents, 0.50..=100000.
    pub amount: Usd,
    /// USD the charges may add up to in a UTC month, at least `amount`.
    pub monthly_max: Usd,
}

/// Auto-recharge as it stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoRecharge {
    /// False until settings were saved once (the amounts are then 0).
    pub configured: bool,
    pub enabled: bool,
    pub threshold: Usd,
    pub amount: Usd,
    pub monthly_max: Usd,
    /// What the charges started this UTC month add up to (failed ones not counted).
    pub charged_this_month: Usd,
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
    pub amount: Usd,
    /// `pending`, `charged` (waiting for Stripe's webhook), `succeeded` or `failed`.
    pub status: String,
    pub payment_intent_id: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl TryFrom<billing_pb::AutoRecharge> for AutoRecharge {
    type Error = ApiError;

    fn try_from(recharge: billing_pb::AutoRecharge) -> Result<AutoRecharge, ApiError> {
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
