//! Payments in the ledger (WEBHOOKS.md, "Stripe's webhook (payments)"): Stripe's credits with the events they
//! cause, auto-recharge's settings, the charges it starts, and how they end. Each is one account transaction:
//! the credit, the charge's new status, auto-recharge's state and the events are written together or not at
//! all.

use proto::ids::{AccountId, EventId};
use serde_json::json;

use crate::accounts::Account;
use crate::credits::ops::{LedgerWrite, replayed};
use crate::credits::transactions::{self, TransactionType};
use crate::error::BillingError;
use crate::events::EventType;
use crate::ledger::{Entry, GrantEffect, GrantTerms, Ledger, emit};
use crate::payments::auto_recharge::{AutoRecharge, Crossing, Settings};
use crate::payments::recharges::{self, Recharge, Status};
use crate::store::{Batch, Shard};
use crate::time::{self, Millis};
use money::Money;

/// Charges listed with the settings.
const RECENT_RECHARGES: i64 = 10;

/// A payment Stripe says succeeded.
#[derive(Debug, Clone)]
pub struct StripePayment {
    /// The account the platform named when it created the session or intent.
    pub account_id: AccountId,
    pub amount: Money,
    /// The Checkout Session or PaymentIntent id: the credit's idempotency key.
    pub object_id: String,
    /// The Stripe customer whose card was saved (a Checkout payment).
    pub customer_id: Option<String>,
    /// The auto-recharge that created the PaymentIntent.
    pub recharge_id: Option<String>,
}

/// An account's auto-recharge as the API shows it.
#[derive(Debug, Clone)]
pub struct AutoRechargeView {
    pub settings: Option<AutoRecharge>,
    /// A card is saved for off-session charges.
    pub saved_card: bool,
    /// The latest charges, newest first.
    pub recent: Vec<Recharge>,
}

impl Ledger {
    /// Credits a successful Stripe payment once (replays return the first credit and change nothing), with
    /// `payment.succeeded`, and for an auto-recharge its end and `auto_recharge.succeeded`.
    pub async fn stripe_payment(
        &self,
        payment: StripePayment,
    ) -> Result<LedgerWrite, BillingError> {
        let account_id = payment.account_id.clone();
        self.store
            .write(Shard::Account(&account_id), move |batch| {
                Box::pin(async move { stripe_payment_in(batch, payment).await })
            })
            .await
    }

    /// Stripe took an auto-recharge's PaymentIntent: it now waits for the webhook (which may have come
    /// first, and then already ended it).
    pub async fn recharge_charged(
        &self,
        recharge: &Recharge,
        payment_intent_id: &str,
    ) -> Result<(), BillingError> {
        let (id, payment_intent_id) = (recharge.id.clone(), payment_intent_id.to_string());
        self.store
            .write(Shard::Account(&recharge.account_id), move |batch| {
                Box::pin(async move {
                    let Some(mut recharge) =
                        recharges::sql::by_id(batch.connection().await?, &id).await?
                    else {
                        return Err(BillingError::NotFound("auto-recharge"));
                    };
                    if recharge.status == Status::Pending {
                        recharge.status = Status::Charged;
                        recharge.payment_intent_id = Some(payment_intent_id);
                        recharge.updated_at = time::now_ms();
                        recharges::sql::save(batch.connection().await?, &recharge).await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// An auto-recharge failed (Stripe refused the charge, or its webhook says the payment failed): once
    /// per charge, `payment.failed` and `auto_recharge.failed`, and the third failure in a row turns
    /// auto-recharge off. Returns false when the charge had already ended.
    pub async fn recharge_failed(
        &self,
        recharge_id: &str,
        payment_intent_id: Option<&str>,
        reason: &str,
    ) -> Result<bool, BillingError> {
        let (id, payment_intent_id, reason) = (
            recharge_id.to_string(),
            payment_intent_id.map(str::to_string),
            reason.to_string(),
        );
        let account_id = {
            let mut connection = self.store.reader().acquire().await?;
            recharges::sql::by_id(&mut connection, &id)
                .await?
                .ok_or(BillingError::NotFound("auto-recharge"))?
                .account_id
        };
        self.store
            .write(Shard::Account(&account_id.clone()), move |batch| {
                Box::pin(async move {
                    let now = time::now_ms();
                    let mut account = batch.lock(&account_id).await?;
                    let Some(mut recharge) = recharges::sql::by_id(batch.connection().await?, &id).await? else {
                        return Err(BillingError::NotFound("auto-recharge"));
                    };
                    if !recharge.status.is_open() {
                        return Ok(false);
                    }
                    recharge.status = Status::Failed;
                    recharge.payment_intent_id = payment_intent_id.or(recharge.payment_intent_id);
                    recharge.error = Some(reason.clone());
                    recharge.updated_at = now;
                    recharges::sql::save(batch.connection().await?, &recharge).await?;
                    let mut state = account.auto_recharge.take();
                    let (failures, disabled) = match &mut state {
                        Some(state) => {
                            let disabled =
                                state.failed(&recharge.id, recharge.amount, recharge.created_at);
                            (state.failures, disabled)
                        }
                        None => (0, false),
                    };
                    account.auto_recharge = state;
                    let payment = json!({
                        "paymentIntentId": recharge.payment_intent_id, "amount": recharge.amount.to_string(),
                        "reason": reason, "source": "auto_recharge",
                    });
                    emit(batch, &account.id, EventType::PaymentFailed, payment, now);
                    let failed = json!({
                        "rechargeId": recharge.id, "paymentIntentId": recharge.payment_intent_id,
                        "amount": recharge.amount.to_string(), "reason": reason,
                        "consecutiveFailures": failures, "disabled": disabled,
                    });
                    emit(batch, &account.id, EventType::AutoRechargeFailed, failed, now);
                    batch.save(&account);
                    tracing::info!(recharge_id = %recharge.id, failures, disabled, "auto-recharge failed");
                    Ok(true)
                })
            })
            .await
    }

    /// Sets the auto-recharge of the account `id` names (a key id: its account). Turning it on needs a card
    /// saved by a Checkout payment.
    pub async fn set_auto_recharge(
        &self,
        id: &str,
        settings: Settings,
    ) -> Result<AutoRechargeView, BillingError> {
        let (account_id, _) = self.resolve(id).await?;
        self.store
            .write(Shard::Account(&account_id.clone()), move |batch| {
                Box::pin(async move {
                    let now = time::now_ms();
                    let mut account = batch.lock(&account_id).await?;
                    let configured =
                        AutoRecharge::configure(account.auto_recharge.as_ref(), settings, now)?;
                    let saved_card =
                        recharges::sql::customer_of(batch.connection().await?, &account_id)
                            .await?
                            .is_some();
                    if settings.enabled && !saved_card {
                        return Err(BillingError::NoSavedCard);
                    }
                    account.auto_recharge = Some(configured);
                    batch.save(&account);
                    let recent = recharges::sql::of_account(
                        batch.connection().await?,
                        &account_id,
                        RECENT_RECHARGES,
                    )
                    .await?;
                    Ok(AutoRechargeView {
                        settings: account.auto_recharge,
                        saved_card,
                        recent,
                    })
                })
            })
            .await
    }

    /// The auto-recharge of the account `id` names.
    pub async fn auto_recharge(&self, id: &str) -> Result<AutoRechargeView, BillingError> {
        let (account_id, _) = self.resolve(id).await?;
        let mut connection = self.store.reader().acquire().await?;
        let account = crate::accounts::sql::by_id(&mut connection, &account_id)
            .await?
            .ok_or(BillingError::NotFound("account"))?;
        Ok(AutoRechargeView {
            settings: account.auto_recharge,
            saved_card: recharges::sql::customer_of(&mut connection, &account_id)
                .await?
                .is_some(),
            recent: recharges::sql::of_account(&mut connection, &account_id, RECENT_RECHARGES)
                .await?,
        })
    }

    /// What a balance change does to auto-recharge: when available credit crossed below its threshold, a
    /// charge starts, identified by the crossing's `balance.low` event (one of `fired`, the thresholds that
    /// just fired, or a new one), or `auto_recharge.failed` says the month's maximum stops it.
    pub(crate) async fn auto_recharge_crossing(
        batch: &mut Batch,
        account: &mut Account,
        fired: &[(Money, EventId)],
        now: Millis,
    ) -> Result<(), BillingError> {
        let Some(mut state) = account.auto_recharge.take() else {
            return Ok(());
        };
        match state.cross(account.available(), now) {
            None => {}
            Some(Crossing::Charge(amount)) => {
                let event_id = match fired
                    .iter()
                    .find(|(threshold, _)| *threshold == state.threshold)
                {
                    Some((_, id)) => id.clone(),
                    None => {
                        let data = json!({
                            "threshold": state.threshold.to_string(),
                            "balance": account.credits_balance.to_string(),
                            "available": account.available().to_string(), "autoRecharge": true,
                        });
                        emit(batch, &account.id, EventType::BalanceLow, data, now)
                    }
                };
                let recharge = Recharge {
                    id: event_id.as_str().to_string(),
                    account_id: account.id.clone(),
                    amount,
                    status: Status::Pending,
                    payment_intent_id: None,
                    error: None,
                    created_at: now,
                    updated_at: now,
                };
                recharges::sql::insert(batch.connection().await?, &recharge).await?;
                state.start(&recharge.id, amount);
            }
            Some(Crossing::MonthlyMaxReached) => {
                let data = json!({
                    "amount": state.amount.to_string(), "reason": "monthly_max_reached",
                    "monthlyMax": state.monthly_max.to_string(),
                    "chargedThisMonth": state.month_charged.to_string(),
                    "consecutiveFailures": state.failures, "disabled": false,
                });
                emit(batch, &account.id, EventType::AutoRechargeFailed, data, now);
            }
        }
        account.auto_recharge = Some(state);
        Ok(())
    }
}

/// The transaction of one Stripe credit.
async fn stripe_payment_in(
    batch: &mut Batch,
    payment: StripePayment,
) -> Result<LedgerWrite, BillingError> {
    let now = time::now_ms();
    let mut account = batch.lock(&payment.account_id).await?;
    let idempotency_key = format!("stripe:{}", payment.object_id);
    if let Some(first) = transactions::sql::by_idempotency_key(
        batch.connection().await?,
        &account.id,
        &idempotency_key,
    )
    .await?
    {
        return replayed(batch, first, account).await;
    }
    let source = if payment.recharge_id.is_some() {
        "auto_recharge"
    } else {
        "checkout"
    };
    let entry = Entry {
        kind: TransactionType::CreditPurchase,
        grant: GrantEffect::Add(GrantTerms::paid()),
        api_key_id: None,
        amount: payment.amount,
        description: format!("Stripe payment {}", payment.object_id),
        metadata: json!({ "stripe_id": payment.object_id, "source": source }),
        idempotency_key: Some(idempotency_key),
    };
    let (transaction, grant) = Ledger::post(batch, &mut account, entry, now).await?;
    if let Some(customer_id) = &payment.customer_id {
        recharges::sql::set_customer(batch.connection().await?, &account.id, customer_id).await?;
    }
    let data = json!({
        "paymentId": payment.object_id, "amount": payment.amount.to_string(), "source": source,
        "transactionId": transaction.id.to_string(),
    });
    emit(batch, &account.id, EventType::PaymentSucceeded, data, now);
    if let Some(recharge_id) = &payment.recharge_id {
        recharge_succeeded(batch, &mut account, recharge_id, &payment.object_id, now).await?;
    }
    batch.save(&account);
    Ok(LedgerWrite {
        transaction,
        account,
        grant,
    })
}

/// An auto-recharge's payment landed: the charge ends, the failures in a row start again from zero.
async fn recharge_succeeded(
    batch: &mut Batch,
    account: &mut Account,
    recharge_id: &str,
    payment_intent_id: &str,
    now: Millis,
) -> Result<(), BillingError> {
    let Some(mut recharge) = recharges::sql::by_id(batch.connection().await?, recharge_id).await?
    else {
        return Ok(());
    };
    if recharge.account_id != account.id {
        return Err(BillingError::invalid(
            "payload",
            "the payment's auto-recharge belongs to another account",
        ));
    }
    recharge.status = Status::Succeeded;
    recharge.payment_intent_id = Some(payment_intent_id.to_string());
    recharge.error = None;
    recharge.updated_at = now;
    recharges::sql::save(batch.connection().await?, &recharge).await?;
    if let Some(state) = &mut account.auto_recharge {
        state.succeeded(recharge_id);
    }
    let data = json!({
        "rechargeId": recharge.id, "paymentIntentId": payment_intent_id,
        "amount": recharge.amount.to_string(), "balanceAfter": account.credits_balance.to_string(),
    });
    emit(
        batch,
        &account.id,
        EventType::AutoRechargeSucceeded,
        data,
        now,
    );
    Ok(())
}
