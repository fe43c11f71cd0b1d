//! The few calls billing-svc makes to Stripe's REST API: Checkout Sessions, the saved card, off-session
//! PaymentIntents.

use serde_json::Value;

use crate::error::BillingError;
use lifecycle::secret::{ExposeSecret, SecretString};
use money::Money;

/// The few calls billing-svc makes to Stripe's REST API: a small typed client over reqwest (the
/// workspace's HTTP client) rather than a Stripe SDK crate, whose generated API surface would add minutes
/// of build for the one or two endpoints used.
#[derive(Clone)]
pub struct StripeApi {
    base: String,
    secret_key: SecretString,
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
        secret_key: SecretString,
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
        let request = self
            .http
            .post(format!("{}/v1/checkout/sessions", self.base))
            .header(
                "idempotency-key",
                format!("checkout-{}", uuid::Uuid::new_v4()),
            )
            .body(body);
        let (status, answer) = self.send(request).await?;
        if !status.is_success() {
            return Err(refused(status, &answer));
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

    /// The customer's most recently saved card.
    pub async fn saved_card(&self, customer_id: &str) -> Result<Option<String>, BillingError> {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("customer", customer_id)
            .append_pair("type", "card")
            .append_pair("limit", "1")
            .finish();
        let request = self
            .http
            .get(format!("{}/v1/payment_methods?{query}", self.base));
        let (status, answer) = self.send(request).await?;
        if !status.is_success() {
            return Err(refused(status, &answer));
        }
        Ok(answer["data"][0]["id"].as_str().map(str::to_string))
    }

    /// Charges `amount` off-session to the saved `card` of `customer_id` for the auto-recharge
    /// `recharge_id`, which is also the Idempotency-Key: asked again (after a timeout, by another process),
    /// Stripe answers the same PaymentIntent and charges once. An error that says nothing about the card
    /// (Stripe unreachable, overloaded, or refusing the platform's key) is an `Err`: the charge is asked
    /// again later.
    pub async fn charge_saved_card(
        &self,
        charge: &OffSessionCharge<'_>,
    ) -> Result<ChargeOutcome, BillingError> {
        let cents = cents_of(charge.amount)?.to_string();
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("amount", &cents)
            .append_pair("currency", "usd")
            .append_pair("customer", charge.customer_id)
            .append_pair("payment_method", charge.card)
            .append_pair("off_session", "true")
            .append_pair("confirm", "true")
            .append_pair("description", "API credits (auto-recharge)")
            .append_pair("metadata[account_id]", charge.account_id)
            .append_pair("metadata[auto_recharge_id]", charge.recharge_id)
            .finish();
        let request = self
            .http
            .post(format!("{}/v1/payment_intents", self.base))
            .header("idempotency-key", charge.recharge_id)
            .body(body);
        let (status, answer) = self.send(request).await?;
        if status.is_success() {
            let id = answer["id"].as_str().map(str::to_string);
            return Ok(match (answer["status"].as_str(), id) {
                (Some("succeeded" | "processing"), Some(payment_intent_id)) => {
                    ChargeOutcome::Accepted { payment_intent_id }
                }
                (status, payment_intent_id) => ChargeOutcome::Declined {
                    payment_intent_id,
                    reason: answer["last_payment_error"]["message"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| {
                            format!("the payment is {}", status.unwrap_or("in no known state"))
                        }),
                },
            });
        }
        // A card error (402) or a request Stripe will never accept (400, 404) ends the charge; anything
        // else is asked again.
        match status.as_u16() {
            400 | 402 | 404 => Ok(ChargeOutcome::Declined {
                payment_intent_id: answer["error"]["payment_intent"]["id"]
                    .as_str()
                    .map(str::to_string),
                reason: decline_reason(&answer),
            }),
            _ => Err(refused(status, &answer)),
        }
    }

    /// A PaymentIntent as Stripe has it now.
    pub async fn payment_intent(&self, id: &str) -> Result<Value, BillingError> {
        let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        let request = self
            .http
            .get(format!("{}/v1/payment_intents/{id}", self.base));
        let (status, answer) = self.send(request).await?;
        if !status.is_success() {
            return Err(refused(status, &answer));
        }
        Ok(answer)
    }

    /// Sends a call with the secret key; answers its status and JSON body.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, Value), BillingError> {
        let response = request
            .bearer_auth(self.secret_key.expose_secret())
            .header("content-type", "application/x-www-form-urlencoded")
            .send()
            .await
            .map_err(|error| {
                BillingError::PaymentProvider(format!("Stripe is unreachable: {error}"))
            })?;
        let status = response.status();
        let text = response.text().await.map_err(|error| {
            BillingError::PaymentProvider(format!("Stripe's answer broke off: {error}"))
        })?;
        let answer = serde_json::from_str(&text).map_err(|error| {
            BillingError::PaymentProvider(format!("Stripe answered {status} without JSON: {error}"))
        })?;
        Ok((status, answer))
    }
}

/// An off-session charge of a saved card.
#[derive(Debug, Clone, Copy)]
pub struct OffSessionCharge<'a> {
    pub recharge_id: &'a str,
    pub account_id: &'a str,
    pub customer_id: &'a str,
    pub card: &'a str,
    pub amount: Money,
}

/// How Stripe answered a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// The PaymentIntent succeeded or is processing: its webhook brings the credit.
    Accepted { payment_intent_id: String },
    /// The card was declined, needs the customer, or the request can never succeed.
    Declined {
        payment_intent_id: Option<String>,
        reason: String,
    },
}

fn refused(status: reqwest::StatusCode, answer: &Value) -> BillingError {
    let message = answer["error"]["message"].as_str().unwrap_or("no message");
    BillingError::PaymentProvider(format!("Stripe answered {status}: {message}"))
}

/// Stripe's error message, with its decline code when it gives one.
fn decline_reason(answer: &Value) -> String {
    let error = &answer["error"];
    let message = error["message"].as_str().unwrap_or("declined");
    match error["decline_code"].as_str().or(error["code"].as_str()) {
        Some(code) => format!("{message} ({code})"),
        None => message.to_string(),
    }
}

/// Whole US cents of an amount: at least 0.50 (Stripe's minimum charge), at most 100,000, two decimals.
pub fn cents_of(amount: Money) -> Result<i64, BillingError> {
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
