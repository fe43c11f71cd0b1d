//! Stripe's webhook (WEBHOOKS.md, "Stripe's webhook (payments)"): a correctly signed
//! `checkout.session.completed` credits its account once, even delivered three times at once; a bad or stale
//! signature is 400 and writes nothing; event types the platform does not use are 200 and ignored; without
//! Stripe settings the webhook is 503. The signatures are made and checked by the official `stripe` Python
//! library.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::docs_harness::docs_tools_bin;
use tests::fake_stripe::FakeStripe;
use tests::in_process::{Billing, Stack};
use tests::{Backend, assert_ledger_invariants, backend_tests};

backend_tests!(
    a_paid_checkout_session_credits_once_however_often_it_is_delivered,
    bad_and_stale_signatures_write_nothing,
    a_top_up_goes_through_checkout_and_lands_with_the_webhook,
);

pub(crate) const SECRET: &str = "whsec_test_0123456789abcdef";

/// `Stripe-Signature` for `payload` at `age_secs` in the past, computed by the `stripe` library and checked
/// with its own `Webhook.construct_event` when fresh.
pub(crate) async fn stripe_signature(payload: &str, age_secs: i64) -> String {
    let script = r#"
import sys, time, stripe
from stripe._webhook import WebhookSignature
payload, secret, age = sys.stdin.read(), sys.argv[1], int(sys.argv[2])
t = int(time.time()) - age
header = f"t={t},v1={WebhookSignature._compute_signature(f'{t}.{payload}', secret)}"
if age == 0:
    stripe.Webhook.construct_event(payload, header, secret)
print(header)
"#;
    let mut child = tokio::process::Command::new(docs_tools_bin().join("python3"))
        .args(["-c", script, SECRET, &age_secs.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(payload.as_bytes()).await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// A paid session of `account`, whose card Stripe saved on the customer `cus_<session>`.
pub(crate) fn checkout_completed(session: &str, account: &str, cents: i64) -> String {
    json!({
        "id": format!("evt_{session}"), "object": "event", "type": "checkout.session.completed",
        "data": {"object": {"id": session, "object": "checkout.session", "client_reference_id": account,
                            "amount_total": cents, "currency": "usd", "payment_status": "paid",
                            "customer": format!("cus_{session}")}}
    })
    .to_string()
}

pub(crate) async fn deliver(stack: &Stack, payload: &str, signature: &str) -> tests::Answer {
    let response = stack
        .http
        .post(stack.url("/webhooks/stripe"))
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(payload.to_string())
        .send()
        .await
        .unwrap();
    tests::gateway_answer(response).await
}

async fn stack_with_stripe(backend: Backend) -> Stack {
    let billing = Billing::start(backend, &["--stripe-webhook-secret", SECRET]).await;
    Stack::start_on(billing, &[]).await
}

pub(crate) async fn account_of(stack: &Stack, key: &str) -> Value {
    stack.get("/billing/account", key).await.json
}

async fn a_paid_checkout_session_credits_once_however_often_it_is_delivered(backend: Backend) {
    let stack = stack_with_stripe(backend).await;
    let (_, key) = stack.create_key("paying", "standard").await;
    let account = account_of(&stack, &key).await["accountId"]
        .as_str()
        .unwrap()
        .to_string();
    let payload = checkout_completed("cs_test_1", &account, 2500);
    let signature = stripe_signature(&payload, 0).await;
    let deliveries = (0..3).map(|_| deliver(&stack, &payload, &signature));
    for answer in futures::future::join_all(deliveries).await {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(answer.json["credited"], true);
    }
    let now = account_of(&stack, &key).await;
    assert_eq!(now["creditsBalance"], json!(25));
    let purchases = stack
        .get("/billing/transactions?type=credit_purchase", &key)
        .await;
    let rows = purchases.json["transactions"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "one credit for three deliveries");
    assert_eq!(rows[0]["idempotencyKey"], "stripe:cs_test_1");

    // A paid session the platform did not create (no account named) is acknowledged and ignored.
    let foreign =
        checkout_completed("cs_other_shop", "", 990).replace(r#""client_reference_id":"","#, "");
    let answer = deliver(&stack, &foreign, &stripe_signature(&foreign, 0).await).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json["credited"], false);

    // A type the platform does not use is acknowledged and ignored.
    let other =
        json!({"id": "evt_other", "type": "customer.created", "data": {"object": {"id": "cus_1"}}})
            .to_string();
    let answer = deliver(&stack, &other, &stripe_signature(&other, 0).await).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json["credited"], false);
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn bad_and_stale_signatures_write_nothing(backend: Backend) {
    let stack = stack_with_stripe(backend).await;
    let (_, key) = stack.create_key("forged", "standard").await;
    let account = account_of(&stack, &key).await["accountId"]
        .as_str()
        .unwrap()
        .to_string();
    let payload = checkout_completed("cs_test_2", &account, 100_000);
    let good = stripe_signature(&payload, 0).await;
    let stale = stripe_signature(&payload, 600).await;
    let tampered = payload.replace("100000", "999999");
    for (body, signature) in [
        (payload.as_str(), stale.as_str()),
        (tampered.as_str(), good.as_str()),
        (payload.as_str(), "t=1,v1=deadbeef"),
        (payload.as_str(), ""),
    ] {
        let answer = deliver(&stack, body, signature).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
        assert_eq!(answer.json["code"], "invalid_signature");
    }
    assert_eq!(account_of(&stack, &key).await["creditsBalance"], json!(0));
    assert_ledger_invariants(&stack.billing.database).await;
}

/// Without STRIPE_WEBHOOK_SECRET billing-svc refuses payments: 404 (no payments here, not a server fault),
/// nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_stripe_settings_the_webhook_is_unavailable() {
    let stack = Stack::start(Backend::Sqlite).await;
    let answer = deliver(&stack, "{}", "t=1,v1=00").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text);
    assert_eq!(answer.json["code"], "payments_not_configured");
}

/// A stack whose billing-svc talks to `fake` as Stripe, with more billing-svc arguments.
pub(crate) async fn stack_with_fake_stripe(
    backend: Backend,
    fake: &FakeStripe,
    more: &[&str],
) -> Stack {
    let mut args = vec![
        "--stripe-webhook-secret",
        SECRET,
        "--stripe-secret-key",
        "sk_test_0123456789abcdef",
        "--stripe-api-base",
        &fake.api_base,
        "--public-base-url",
        "https://billing.example.com",
    ];
    args.extend_from_slice(more);
    let billing = Billing::start(backend, &args).await;
    Stack::start_on(billing, &[]).await
}

async fn a_top_up_goes_through_checkout_and_lands_with_the_webhook(backend: Backend) {
    let fake = FakeStripe::start().await;
    let stack = stack_with_fake_stripe(backend, &fake, &[]).await;
    let (_, key) = stack.create_key("topping up", "standard").await;
    let account = account_of(&stack, &key).await["accountId"]
        .as_str()
        .unwrap()
        .to_string();

    let checkout = stack
        .post("/billing/checkout", &key, json!({"amount": 25}))
        .await;
    assert_eq!(checkout.status, StatusCode::CREATED, "{}", checkout.text);
    let session = checkout.json["sessionId"].as_str().unwrap().to_string();
    assert!(
        checkout.json["checkoutUrl"]
            .as_str()
            .unwrap()
            .ends_with(&session)
    );
    let sent = fake.requests().remove(0);
    assert_eq!(sent["path"], "/v1/checkout/sessions");
    assert_eq!(sent["authorization"], "Bearer sk_test_0123456789abcdef");
    assert!(sent["idempotency_key"].is_string());
    let form = &sent["form"];
    assert_eq!(form["mode"], "payment");
    assert_eq!(form["client_reference_id"], account.as_str());
    assert_eq!(form["line_items[0][price_data][unit_amount]"], "2500");
    assert_eq!(form["line_items[0][price_data][currency]"], "usd");
    assert_eq!(
        form["payment_intent_data[setup_future_usage]"],
        "off_session"
    );
    assert!(
        form["success_url"]
            .as_str()
            .unwrap()
            .starts_with("https://billing.example.com/")
    );
    assert_eq!(
        account_of(&stack, &key).await["creditsBalance"],
        json!(0),
        "nothing before payment"
    );

    // Stripe reports the payment: the credit lands.
    let payload = checkout_completed(&session, &account, 2500);
    let answer = deliver(&stack, &payload, &stripe_signature(&payload, 0).await).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(account_of(&stack, &key).await["creditsBalance"], json!(25));

    // Amounts Stripe cannot charge are refused before calling it.
    for amount in [json!(0.3), json!(0.005)] {
        let refused = stack
            .post("/billing/checkout", &key, json!({"amount": amount}))
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    }
    assert_ledger_invariants(&stack.billing.database).await;
}

/// Without STRIPE_SECRET_KEY a top-up is 404 `payments_not_configured`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_stripe_settings_a_top_up_is_unavailable() {
    let stack = Stack::start(Backend::Sqlite).await;
    let (_, key) = stack.create_key("no stripe", "standard").await;
    let answer = stack
        .post("/billing/checkout", &key, json!({"amount": 10}))
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text);
    assert_eq!(answer.json["code"], "payments_not_configured");
}
