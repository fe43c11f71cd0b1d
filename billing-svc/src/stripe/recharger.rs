//! Sends auto-recharge's charges to Stripe (DESIGN §12), outside any ledger transaction: the settlement that
//! starts a charge only writes it down (`pending`), and this worker, polling, asks Stripe for an off-session
//! PaymentIntent with the charge's id as Idempotency-Key.
//!
//! Each pending charge is leased to one billing-svc process at a time. When Stripe cannot be asked (down,
//! overloaded, a timeout) the lease lapses and the charge is asked again [`LEASE`] later with the same
//! Idempotency-Key, so Stripe charges once however often it is asked. A declined card ends the charge as
//! failed; an accepted one waits for Stripe's webhook, which brings the credit.

use std::time::Duration;

use tokio::sync::watch;

use super::{ChargeOutcome, OffSessionCharge, StripeApi};
use crate::error::BillingError;
use crate::ledger::Ledger;
use crate::store::Shard;
use crate::store::recharges::{self, Recharge};
use crate::time;

/// How long a process may take to ask Stripe about one charge before another may try.
const LEASE: Duration = Duration::from_secs(30);
/// Charges taken per round.
const ROUND: i64 = 16;

/// The worker.
pub struct Recharger {
    ledger: Ledger,
    stripe: Option<StripeApi>,
    poll_interval: Duration,
}

impl Recharger {
    pub fn new(ledger: Ledger, stripe: Option<StripeApi>, poll_interval: Duration) -> Recharger {
        Recharger {
            ledger,
            stripe,
            poll_interval,
        }
    }

    /// Polls for pending charges until told to stop.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(self.poll_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    if let Err(error) = self.round().await {
                        tracing::warn!(%error, "auto-recharge round failed; will retry");
                    }
                }
                _ = stop.changed() => return,
            }
        }
    }

    async fn round(&self) -> Result<(), BillingError> {
        let now = time::now_ms();
        let lease_until = now + i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
        let claimed = self
            .ledger
            .store()
            .write(Shard::Recharges, move |batch| {
                Box::pin(async move {
                    Ok(
                        recharges::claim_pending(batch.connection(), now, lease_until, ROUND)
                            .await?,
                    )
                })
            })
            .await?;
        for recharge in claimed {
            if let Err(error) = self.charge(&recharge).await {
                tracing::warn!(recharge_id = %recharge.id, %error, "auto-recharge not sent; will retry");
            }
        }
        Ok(())
    }

    /// Asks Stripe for one charge and records how it answered.
    async fn charge(&self, recharge: &Recharge) -> Result<(), BillingError> {
        let Some(stripe) = &self.stripe else {
            self.ledger
                .recharge_failed(&recharge.id, None, "payments are not configured")
                .await?;
            return Ok(());
        };
        let customer = {
            let mut connection = self.ledger.store().reader().acquire().await?;
            recharges::customer_of(&mut connection, &recharge.account_id).await?
        };
        let card = match &customer {
            Some(customer) => stripe.saved_card(customer).await?,
            None => None,
        };
        let (Some(customer_id), Some(card)) = (customer, card) else {
            self.ledger
                .recharge_failed(&recharge.id, None, "no saved card")
                .await?;
            return Ok(());
        };
        let outcome = stripe
            .charge_saved_card(&OffSessionCharge {
                recharge_id: &recharge.id,
                account_id: recharge.account_id.as_str(),
                customer_id: &customer_id,
                card: &card,
                amount: recharge.amount,
            })
            .await?;
        match outcome {
            ChargeOutcome::Accepted { payment_intent_id } => {
                tracing::info!(recharge_id = %recharge.id, %payment_intent_id, "auto-recharge charged");
                self.ledger
                    .recharge_charged(recharge, &payment_intent_id)
                    .await
            }
            ChargeOutcome::Declined {
                payment_intent_id,
                reason,
            } => {
                self.ledger
                    .recharge_failed(&recharge.id, payment_intent_id.as_deref(), &reason)
                    .await?;
                Ok(())
            }
        }
    }
}
