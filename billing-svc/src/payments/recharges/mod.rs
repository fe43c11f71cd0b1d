//! The charges auto-recharge starts, one per `balance.low` event that asked for one (WEBHOOKS.md, "Stripe's
//! webhook (payments)"); their SQL is in [`sql`].

pub mod sql;

use proto::ids::AccountId;

use crate::time::Millis;
use money::Money;

/// Where a charge stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not yet accepted by Stripe.
    Pending,
    /// Stripe took the PaymentIntent; its webhook says how it ends.
    Charged,
    Succeeded,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Charged => "charged",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Status> {
        [
            Status::Pending,
            Status::Charged,
            Status::Succeeded,
            Status::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }

    /// It has not ended yet.
    pub fn is_open(self) -> bool {
        matches!(self, Status::Pending | Status::Charged)
    }
}

/// One charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recharge {
    /// The id of the `balance.low` event that started it: the PaymentIntent's Idempotency-Key.
    pub id: String,
    pub account_id: AccountId,
    pub amount: Money,
    pub status: Status,
    pub payment_intent_id: Option<String>,
    pub error: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}
