//! Sends auto-recharge's charges to Stripe (WEBHOOKS.md, "Stripe's webhook (payments)"), outside any ledger
//! transaction: the settlement that starts a charge only writes it down (`pending`), and this worker,
//! polling, asks Stripe for an off-session PaymentIntent with the charge's id as Idempotency-Key.
//!
//! Each pending charge is leased to one billing-svc process at a time. When Stripe cannot be asked (down,
//! overloaded, a timeout) the lease lapses and the charge is asked again [`LEASE`] later with the same
//! Idempotency-Key, so Stripe charges once however often it is asked. A declined card ends the charge as
//! failed; an accepted one waits for Stripe's webhook, which brings the credit.
//!
//! A webhook can be lost (an endpoint misconfigured in Stripe's dashboard, a delivery that gave up), and a
//! charge waiting forever would hold the account's one charge in flight and never credit what was paid: a
//! charge still waiting `reconcile_after` after Stripe took it is looked up at Stripe. Succeeded, it is
//! credited exactly as the webhook would (the same idempotency key, so a webhook arriving later credits
//! nothing more); declined or cancelled, it fails; still processing, it is looked up again a lease later.

use std::time::Duration;

use serde_json::Value;

use tokio::sync::watch;

use super::{ChargeOutcome, OffSessionCharge, StripeApi};
use crate::error::BillingError;
use crate::ledger::Ledger;
use crate::payments::recharges::{self, Recharge, Status};
use crate::store::Shard;
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
    reconcile_after: Duration,
}

impl Recharger {
    pub fn new(
        ledger: Ledger,
        stripe: Option<StripeApi>,
        poll_interval: Duration,
        reconcile_after: Duration,
    ) -> Recharger {
        Recharger {
            ledger,
            stripe,
            poll_interval,
            reconcile_after,
        }
    }

    /// Polls for pending charges until told to stop.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        lifecycle::every(self.poll_interval, stop, "auto-recharge round", || {
            self.round()
        })
        .await;
    }

    async fn round(&self) -> Result<(), BillingError> {
        let now = time::now_ms();
        for recharge in self.claim(Status::Pending, now).await? {
            if let Err(error) = self.charge(&recharge).await {
                tracing::warn!(recharge_id = %recharge.id, %error, "auto-recharge not sent; will retry");
            }
        }
        let waited = i64::try_from(self.reconcile_after.as_millis()).unwrap_or(i64::MAX);
        for recharge in self
            .claim(Status::Charged, now.saturating_sub(waited))
            .await?
        {
            if let Err(error) = self.reconcile(&recharge).await {
                tracing::warn!(recharge_id = %recharge.id, %error, "auto-recharge not looked up; will retry");
            }
        }
        Ok(())
    }

    /// Leases the charges in `status` last changed at or before `changed_before`.
    async fn claim(
        &self,
        status: Status,
        changed_before: i64,
    ) -> Result<Vec<Recharge>, BillingError> {
        let now = time::now_ms();
        let lease_until = now + i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
        self.ledger
            .store()
            .write(Shard::Recharges, move |batch| {
                Box::pin(async move {
                    Ok(recharges::sql::claim(
                        batch.connection().await?,
                        status,
                        changed_before,
                        now,
                        lease_until,
                        ROUND,
                    )
                    .await?)
                })
            })
            .await
    }

    /// Settles a charge whose webhook did not come, from what Stripe says of its PaymentIntent.
    async fn reconcile(&self, recharge: &Recharge) -> Result<(), BillingError> {
        let (Some(stripe), Some(payment_intent_id)) = (&self.stripe, &recharge.payment_intent_id)
        else {
            return Ok(());
        };
        let intent = stripe.payment_intent(payment_intent_id).await?;
        match intent["status"].as_str() {
            Some("succeeded") => {
                let payment = super::payment(
                    &intent,
                    &Value::from(recharge.account_id.as_str()),
                    &intent["amount_received"],
                    None,
                    Some(recharge.id.clone()),
                )?;
                self.ledger.stripe_payment(payment).await?;
                tracing::info!(recharge_id = %recharge.id, "auto-recharge credited from Stripe's record (no webhook came)");
            }
            Some("requires_payment_method" | "canceled") => {
                let reason = intent["last_payment_error"]["message"]
                    .as_str()
                    .unwrap_or("the payment did not go through");
                self.ledger
                    .recharge_failed(&recharge.id, Some(payment_intent_id), reason)
                    .await?;
            }
            // Processing, or waiting for the customer: looked up again when the lease lapses.
            _ => {}
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
            recharges::sql::customer_of(&mut connection, &recharge.account_id).await?
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
