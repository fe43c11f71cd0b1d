//! Stripe's webhook (DESIGN §12): the signature check and the events that add credit.
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
//! acknowledged and ignored. Each credit is a paid grant whose
//! idempotency key is the Stripe object's id: replays and concurrent deliveries credit once. Other types
//! are acknowledged and ignored.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::Secret;
use crate::error::BillingError;
use crate::ledger::{GrantTerms, Ledger, LedgerWrite};
use crate::money::Money;

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
    let credit = match kind.as_str() {
        "checkout.session.completed"
            if object["payment_status"] == "paid" && object["client_reference_id"].is_string() =>
        {
            Some((
                object["client_reference_id"].as_str(),
                object["amount_total"].as_i64(),
            ))
        }
        "payment_intent.succeeded" if object["metadata"]["account_id"].is_string() => Some((
            object["metadata"]["account_id"].as_str(),
            object["amount_received"].as_i64(),
        )),
        _ => None,
    };
    let Some((account, cents)) = credit else {
        return Ok((kind, Handled::Ignored));
    };
    let (Some(account), Some(cents), Some(object_id)) = (account, cents, object["id"].as_str())
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
    let written = ledger
        .add_credits(
            account,
            amount,
            GrantTerms::paid(),
            Some(&format!("Stripe payment {object_id}")),
            Some(&format!("stripe:{object_id}")),
        )
        .await?;
    Ok((kind, Handled::Credited(Box::new(written))))
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

/// The few calls billing-svc makes to Stripe's REST API: a small typed client over reqwest (the
/// workspace's HTTP client) rather than a Stripe SDK crate, whose generated API surface would add minutes
/// of build for the one or two endpoints used.
#[derive(Clone)]
pub struct StripeApi {
    base: String,
    secret_key: Secret,
    public_base_url: String,
    http: reqwest::Client,
}

/// A Checkout Session to pay.
#[derive(Debug, Clone)]
pub struct CheckoutSession {
    pub id: String,
    pub url: String,
}

impl StripeApi {
    pub fn new(
        base: &str,
        secret_key: Secret,
        public_base_url: &str,
    ) -> Result<StripeApi, BillingError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|error| BillingError::invalid("STRIPE_API_BASE", error.to_string()))?;
        Ok(StripeApi {
            base: base.trim_end_matches('/').to_string(),
            secret_key,
            public_base_url: public_base_url.trim_end_matches('/').to_string(),
            http,
        })
    }

    /// Creates a Checkout Session (payment mode, USD) for `amount` to be credited to `account_id`, saving
    /// the card for later off-session payments.
    pub async fn create_checkout_session(
        &self,
        account_id: &str,
        amount: Money,
    ) -> Result<CheckoutSession, BillingError> {
        let cents = cents_of(amount)?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("mode", "payment")
            .append_pair("client_reference_id", account_id)
            .append_pair("line_items[0][quantity]", "1")
            .append_pair("line_items[0][price_data][currency]", "usd")
            .append_pair("line_items[0][price_data][unit_amount]", &cents.to_string())
            .append_pair(
                "line_items[0][price_data][product_data][name]",
                "API credits",
            )
            .append_pair("payment_intent_data[setup_future_usage]", "off_session")
            .append_pair("customer_creation", "always")
            .append_pair(
                "success_url",
                &format!("{}/console/?checkout=success", self.public_base_url),
            )
            .append_pair(
                "cancel_url",
                &format!("{}/console/?checkout=cancelled", self.public_base_url),
            )
            .finish();
        let response = self
            .http
            .post(format!("{}/v1/checkout/sessions", self.base))
            .bearer_auth(self.secret_key.expose())
            .header("content-type", "application/x-www-form-urlencoded")
            .header(
                "idempotency-key",
                format!("checkout-{}", uuid::Uuid::new_v4()),
            )
            .body(body)
            .send()
            .await
            .map_err(|error| {
                BillingError::PaymentProvider(format!("Stripe is unreachable: {error}"))
            })?;
        let status = response.status();
        let text = response.text().await.map_err(|error| {
            BillingError::PaymentProvider(format!("Stripe's answer broke off: {error}"))
        })?;
        let answer: Value = serde_json::from_str(&text).map_err(|error| {
            BillingError::PaymentProvider(format!("Stripe answered no JSON: {error}"))
        })?;
        if !status.is_success() {
            let message = answer["error"]["message"].as_str().unwrap_or("no message");
            return Err(BillingError::PaymentProvider(format!(
                "Stripe answered {status}: {message}"
            )));
        }
        match (answer["id"].as_str(), answer["url"].as_str()) {
            (Some(id), Some(url)) => Ok(CheckoutSession {
                id: id.to_string(),
                url: url.to_string(),
            }),
            _ => Err(BillingError::PaymentProvider(
                "Stripe's session has no id or url".into(),
            )),
        }
    }
}

/// Whole US cents of an amount: at least 0.50 (Stripe's minimum charge), at most 100,000, two decimals.
fn cents_of(amount: Money) -> Result<i64, BillingError> {
    let nanos = amount.nanos();
    if nanos % 10_000_000 != 0 {
        return Err(BillingError::invalid("amount", "must be whole cents"));
    }
    let cents = nanos / 10_000_000;
    if !(50..=10_000_000).contains(&cents) {
        return Err(BillingError::invalid(
            "amount",
            "must be between 0.50 and 100000 USD",
        ));
    }
    Ok(cents)
}
