//! Stripe (WEBHOOKS.md, "Stripe's webhook (payments)"): the webhook's signature check and the events it acts
//! on ([`handle`]), the small client of Stripe's REST API ([`api`]), and the worker that sends
//! auto-recharge's charges ([`recharger`]).
//!
//! `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]` where each `v1` may be HMAC-SHA256 of
//! `<t>.<raw body>` keyed by the endpoint's `whsec_` secret (used as is, as Stripe does). A signature is
//! accepted when any `v1` matches (constant-time) and `t` is within five minutes of now.
//!
//! Events used: `checkout.session.completed` with `payment_status: "paid"` credits the session's
//! `amount_total` to the account in `client_reference_id`; `payment_intent.succeeded` credits a payment
//! intent carrying `metadata.account_id` (the ones billing-svc creates itself; a Checkout payment's intent
//! carries none, so a Checkout payment is credited once, by its session). A session or intent that names
//! no account was not created by the platform (something else sold on the same Stripe account) and is
//! acknowledged and ignored. Each credit is a paid grant whose idempotency key is the Stripe object's id:
//! replays and concurrent deliveries credit once; it emits `payment.succeeded` (and, for an auto-recharge's
//! intent, `auto_recharge.succeeded`). A Checkout payment also records the Stripe customer whose card it
//! saved, for auto-recharge. `payment_intent.payment_failed` of an auto-recharge's intent ends that charge
//! as failed. Other types are acknowledged and ignored.

pub mod api;
pub mod recharger;

pub use api::{ChargeOutcome, CheckoutSession, OffSessionCharge, StripeApi};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::credits::ops::LedgerWrite;
use crate::error::BillingError;
use crate::ledger::Ledger;
use crate::payments::ops::StripePayment;
use money::Money;
use proto::ids::AccountId;

/// How old (or how far in the future) a signature's timestamp may be.
pub const TOLERANCE_SECS: i64 = 300;

/// Checks a `Stripe-Signature` header against the raw body.
pub fn verify(
    secret: &str,
    payload: &[u8],
    header: &str,
    now_secs: i64,
) -> Result<(), BillingError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.push(value.to_string()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(BillingError::InvalidSignature)?;
    if (now_secs - timestamp).abs() > TOLERANCE_SECS {
        return Err(BillingError::InvalidSignature);
    }
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) else {
        return Err(BillingError::InvalidSignature);
    };
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(payload);
    let expected = hex::encode(mac.finalize().into_bytes());
    let matches = signatures
        .iter()
        .any(|signature| bool::from(signature.as_bytes().ct_eq(expected.as_bytes())));
    if matches {
        Ok(())
    } else {
        Err(BillingError::InvalidSignature)
    }
}

/// What an event did.
#[derive(Debug)]
pub enum Handled {
    Credited(Box<LedgerWrite>),
    /// An auto-recharge's payment failed (recorded once, however often the event comes).
    PaymentFailed,
    Ignored,
}

/// Applies a verified event.
pub async fn handle(ledger: &Ledger, payload: &[u8]) -> Result<(String, Handled), BillingError> {
    let event: Value = serde_json::from_slice(payload)
        .map_err(|_| BillingError::invalid("payload", "is not a JSON Stripe event"))?;
    let kind = event["type"].as_str().unwrap_or_default().to_string();
    let object = &event["data"]["object"];
    // Sessions and intents the platform did not create (no account named) belong to something else sold
    // on the same Stripe account: acknowledged and left alone.
    let text = |value: &Value| value.as_str().map(str::to_string);
    let (account, cents, customer_id, recharge_id) = match kind.as_str() {
        "checkout.session.completed"
            if object["payment_status"] == "paid" && object["client_reference_id"].is_string() =>
        {
            (
                &object["client_reference_id"],
                &object["amount_total"],
                text(&object["customer"]),
                None,
            )
        }
        "payment_intent.succeeded" if object["metadata"]["account_id"].is_string() => (
            &object["metadata"]["account_id"],
            &object["amount_received"],
            None,
            text(&object["metadata"]["auto_recharge_id"]),
        ),
        "payment_intent.payment_failed" if object["metadata"]["auto_recharge_id"].is_string() => {
            let reason = object["last_payment_error"]["message"]
                .as_str()
                .unwrap_or("the payment failed");
            ledger
                .recharge_failed(
                    object["metadata"]["auto_recharge_id"]
                        .as_str()
                        .unwrap_or_default(),
                    object["id"].as_str(),
                    reason,
                )
                .await?;
            return Ok((kind, Handled::PaymentFailed));
        }
        _ => return Ok((kind, Handled::Ignored)),
    };
    let payment = payment(object, account, cents, customer_id, recharge_id)?;
    let written = ledger.stripe_payment(payment).await?;
    Ok((kind, Handled::Credited(Box::new(written))))
}

/// The payment a paid Checkout Session or a succeeded PaymentIntent (`object`) stands for: `account` and
/// `cents` are the object's fields naming them.
pub fn payment(
    object: &Value,
    account: &Value,
    cents: &Value,
    customer_id: Option<String>,
    recharge_id: Option<String>,
) -> Result<StripePayment, BillingError> {
    let (Some(account), Some(cents), Some(object_id)) =
        (account.as_str(), cents.as_i64(), object["id"].as_str())
    else {
        return Err(BillingError::invalid(
            "payload",
            "the event lacks its account, amount or id",
        ));
    };
    if object["currency"]
        .as_str()
        .is_some_and(|currency| currency != "usd")
    {
        return Err(BillingError::invalid(
            "payload",
            "only USD payments are credited",
        ));
    }
    let amount = cents
        .checked_mul(10_000_000)
        .filter(|nanos| *nanos > 0)
        .map(Money::from_nanos)
        .ok_or_else(|| {
            BillingError::invalid("payload", "the amount is not a positive number of cents")
        })?;
    Ok(StripePayment {
        account_id: AccountId::from(account),
        amount,
        object_id: object_id.to_string(),
        customer_id,
        recharge_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(secret: &str, payload: &str, t: i64) -> String {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) else {
            return String::new();
        };
        mac.update(format!("{t}.{payload}").as_bytes());
        format!(
            "t={t},v1=00ff,v1={}",
            hex::encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn a_signature_is_checked_against_the_raw_body_and_the_time() {
        let (secret, body, now) = ("whsec_test", r#"{"id":"evt_1"}"#, 1_700_000_000);
        assert!(verify(secret, body.as_bytes(), &signed(secret, body, now), now).is_ok());
        assert!(
            verify(
                secret,
                body.as_bytes(),
                &signed(secret, body, now - 301),
                now
            )
            .is_err()
        );
        assert!(
            verify(
                secret,
                b"{\"id\":\"evt_2\"}",
                &signed(secret, body, now),
                now
            )
            .is_err()
        );
        assert!(
            verify(
                "whsec_other",
                body.as_bytes(),
                &signed(secret, body, now),
                now
            )
            .is_err()
        );
        assert!(verify(secret, body.as_bytes(), "v1=abc", now).is_err());
    }
}
