//! Auto-recharge (WEBHOOKS.md, "Stripe's webhook (payments)") against the local fake Stripe, which answers
//! the charges and sends back signed events like Stripe: a crossing of the threshold under 50 concurrent
//! executions creates exactly one PaymentIntent whose Idempotency-Key is the crossing's event id, its success
//! credits once, `monthlyMax` stops the next one, and three declined charges in a row turn auto-recharge off
//! with `auto_recharge.failed`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::fake_stripe::FakeStripe;
use tests::in_process::Stack;
use tests::{Backend, assert_ledger_invariants, backend_tests};

use crate::stripe::{
    SECRET, account_of, checkout_completed, deliver, stack_with_fake_stripe, stripe_signature,
};

backend_tests!(
    a_crossing_charges_the_saved_card_once_and_the_monthly_max_holds,
    three_declined_charges_turn_auto_recharge_off,
    a_charge_whose_webhook_never_comes_is_settled_from_stripes_record,
);

/// The account's events of `kind`, oldest first.
async fn events_of(stack: &Stack, key: &str, kind: &str) -> Vec<Value> {
    let page = stack
        .get(&format!("/billing/events?type={kind}&limit=1000"), key)
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let mut events = page.json["events"].as_array().unwrap().clone();
    events.reverse();
    events
}

/// Waits (at most 30 s) until the account has `count` events of `kind`.
async fn wait_for_events(stack: &Stack, key: &str, kind: &str, count: usize) -> Vec<Value> {
    for _ in 0..300 {
        let events = events_of(stack, key, kind).await;
        if events.len() >= count {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {count} {kind} events after 30 s");
}

/// A key whose account has paid `cents` through Checkout (saving a card), and its account id.
async fn paying_customer(stack: &Stack, session: &str, cents: i64) -> (String, String, String) {
    let (id, key) = stack.create_key("recharging", "standard").await;
    let account = account_of(stack, &key).await["accountId"]
        .as_str()
        .unwrap()
        .to_string();
    let payload = checkout_completed(session, &account, cents);
    let paid = deliver(stack, &payload, &stripe_signature(&payload, 0).await).await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.text);
    (id, key, account)
}

async fn set_auto_recharge(stack: &Stack, key: &str, body: Value) -> tests::Answer {
    stack
        .call(Method::PUT, "/billing/auto-recharge", Some(key), Some(body))
        .await
}

async fn adjust(stack: &Stack, id: &str, amount: Value) {
    let answer = stack
        .call(
            Method::POST,
            &format!("/billing/admin/{id}/adjustments"),
            Some(&stack.billing.admin_key),
            Some(json!({"amount": amount, "reason": "test"})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
}

async fn a_crossing_charges_the_saved_card_once_and_the_monthly_max_holds(backend: Backend) {
    let fake = FakeStripe::start().await;
    let stack = stack_with_fake_stripe(backend, &fake, &[]).await;
    fake.send_events_to(&stack.url("/webhooks/stripe"), SECRET)
        .await;

    // Without a saved card it can be read but not turned on.
    let (_, unpaid) = stack.create_key("no card yet", "standard").await;
    let before = stack.get("/billing/auto-recharge", &unpaid).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.text);
    assert_eq!(before.json["configured"], false);
    assert_eq!(before.json["savedCard"], false);
    let settings = json!({"enabled": true, "threshold": 4, "amount": 5, "monthlyMax": 7.5});
    let refused = set_auto_recharge(&stack, &unpaid, settings.clone()).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert!(refused.text.contains("saved card"), "{}", refused.text);
    for bad in [
        json!({"enabled": true, "threshold": 4, "amount": 5, "monthlyMax": 4}),
        json!({"enabled": true, "threshold": -1, "amount": 5, "monthlyMax": 10}),
        json!({"enabled": true, "threshold": 4, "amount": 0.001, "monthlyMax": 10}),
    ] {
        let answer = set_auto_recharge(&stack, &unpaid, bad).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    }

    // A Checkout payment of 5 USD saves the card; auto-recharge goes on.
    let (_, key, account) = paying_customer(&stack, "cs_saves_card", 500).await;
    let set = set_auto_recharge(&stack, &key, settings).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert_eq!(set.json["enabled"], true);
    assert_eq!(set.json["savedCard"], true);
    assert_eq!(set.json["monthlyMax"], json!(7.5));

    // 0.06 USD per call: 50 concurrent calls take the balance from 5 to 2, crossing 4 once.
    let call = || {
        stack.post(
            "/v1/chat/completions",
            &key,
            json!({"model": "mock-usage-1000-1000", "messages": [{"role": "user", "content": "hi"}]}),
        )
    };
    let answers = futures::future::join_all((0..50).map(|_| call())).await;
    assert!(answers.iter().all(|a| a.status == StatusCode::OK));

    let succeeded = wait_for_events(&stack, &key, "auto_recharge.succeeded", 1).await;
    let charges = fake.requests_to("/v1/payment_intents");
    assert_eq!(charges.len(), 1, "one PaymentIntent for one crossing");
    let charge = &charges[0];
    let recharge_id = succeeded[0]["data"]["rechargeId"].as_str().unwrap();
    assert_eq!(charge["idempotency_key"], recharge_id);
    let low = events_of(&stack, &key, "balance.low").await;
    assert_eq!(low.len(), 1);
    assert_eq!(
        low[0]["id"], recharge_id,
        "the Idempotency-Key is the event id"
    );
    assert_eq!(low[0]["data"]["autoRecharge"], true);
    let form = &charge["form"];
    assert_eq!(form["amount"], "500");
    assert_eq!(form["currency"], "usd");
    assert_eq!(form["customer"], "cus_cs_saves_card");
    assert_eq!(form["payment_method"], "pm_card_cus_cs_saves_card");
    assert_eq!(form["off_session"], "true");
    assert_eq!(form["confirm"], "true");
    assert_eq!(form["metadata[account_id]"], account.as_str());
    assert_eq!(charge["authorization"], "Bearer sk_test_0123456789abcdef");

    // The credit landed once, with payment.succeeded for both payments.
    assert_eq!(account_of(&stack, &key).await["creditsBalance"], json!(7));
    let purchases = stack
        .get("/billing/transactions?type=credit_purchase", &key)
        .await;
    let rows = purchases.json["transactions"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{}", purchases.text);
    let payments = events_of(&stack, &key, "payment.succeeded").await;
    assert_eq!(payments.len(), 2);
    assert_eq!(payments[1]["data"]["source"], "auto_recharge");
    let state = stack.get("/billing/auto-recharge", &key).await;
    assert_eq!(state.json["chargedThisMonth"], json!(5));
    assert_eq!(state.json["inFlight"], Value::Null);
    assert_eq!(state.json["recent"][0]["status"], "succeeded");
    assert_eq!(state.json["recent"][0]["id"], recharge_id);

    // The next crossing would pass monthlyMax (5 + 5 > 7.5): no charge, and the customer is told why.
    adjust(&stack, &account, json!(-4)).await;
    let stopped = wait_for_events(&stack, &key, "auto_recharge.failed", 1).await;
    assert_eq!(stopped[0]["data"]["reason"], "monthly_max_reached");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fake.requests_to("/v1/payment_intents").len(), 1);
    assert_eq!(account_of(&stack, &key).await["creditsBalance"], json!(3));

    // Members may not see or change it.
    let member = stack
        .call(
            Method::POST,
            "/admin/keys",
            Some(&stack.billing.admin_key),
            Some(json!({"name": "member", "keyType": "standard", "accountId": account})),
        )
        .await;
    let member = member.json["key"].as_str().unwrap().to_string();
    let forbidden = stack.get("/billing/auto-recharge", &member).await;
    assert_eq!(
        forbidden.status,
        StatusCode::FORBIDDEN,
        "{}",
        forbidden.text
    );
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn three_declined_charges_turn_auto_recharge_off(backend: Backend) {
    let fake = FakeStripe::start().await;
    let stack = stack_with_fake_stripe(backend, &fake, &[]).await;
    fake.send_events_to(&stack.url("/webhooks/stripe"), SECRET)
        .await;
    fake.decline_charges(true).await;
    let (_, key, account) = paying_customer(&stack, "cs_declines", 500).await;
    let set = set_auto_recharge(
        &stack,
        &key,
        json!({"enabled": true, "threshold": 4, "amount": 5, "monthlyMax": 100}),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);

    // Each round: a debit crosses 4, the charge is declined, a credit re-arms the threshold.
    for round in 1..=3 {
        adjust(&stack, &account, json!(-2)).await;
        let failed = wait_for_events(&stack, &key, "auto_recharge.failed", round).await;
        let last = &failed[round - 1]["data"];
        assert!(
            last["reason"]
                .as_str()
                .unwrap()
                .contains("insufficient funds"),
            "{last}"
        );
        assert_eq!(last["consecutiveFailures"], round);
        assert_eq!(last["disabled"], round == 3);
        adjust(&stack, &account, json!(2)).await;
    }
    // Stripe also reports each decline by webhook: still one failure per charge.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        events_of(&stack, &key, "auto_recharge.failed").await.len(),
        3
    );
    assert_eq!(events_of(&stack, &key, "payment.failed").await.len(), 3);
    let charges = fake.requests_to("/v1/payment_intents");
    assert_eq!(charges.len(), 3);
    let keys: std::collections::HashSet<_> = charges
        .iter()
        .map(|charge| charge["idempotency_key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), 3, "a new Idempotency-Key per charge");

    let state = stack.get("/billing/auto-recharge", &key).await;
    assert_eq!(state.json["enabled"], false);
    assert_eq!(state.json["consecutiveFailures"], 3);
    assert_eq!(state.json["chargedThisMonth"], json!(0));
    assert_eq!(state.json["recent"][0]["status"], "failed");

    // Off: the next crossing charges nothing.
    adjust(&stack, &account, json!(-2)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fake.requests_to("/v1/payment_intents").len(), 3);

    // Turned on again, with a card that works, the next crossing charges.
    fake.decline_charges(false).await;
    adjust(&stack, &account, json!(2)).await;
    let again = set_auto_recharge(
        &stack,
        &key,
        json!({"enabled": true, "threshold": 4, "amount": 5, "monthlyMax": 100}),
    )
    .await;
    assert_eq!(again.json["consecutiveFailures"], 0);
    adjust(&stack, &account, json!(-2)).await;
    wait_for_events(&stack, &key, "auto_recharge.succeeded", 1).await;
    assert_eq!(account_of(&stack, &key).await["creditsBalance"], json!(8));
    assert_ledger_invariants(&stack.billing.database).await;
}

/// Stripe took the charge but its webhook never comes (here the fake sends none): after
/// `AUTO_RECHARGE_RECONCILE_SECS` billing-svc looks the PaymentIntent up and credits it; Stripe's event,
/// delivered late, credits nothing more.
async fn a_charge_whose_webhook_never_comes_is_settled_from_stripes_record(backend: Backend) {
    let fake = FakeStripe::start().await;
    let stack =
        stack_with_fake_stripe(backend, &fake, &["--auto-recharge-reconcile-secs", "1"]).await;
    let (_, key, account) = paying_customer(&stack, "cs_no_webhook", 500).await;
    let set = set_auto_recharge(
        &stack,
        &key,
        json!({"enabled": true, "threshold": 4, "amount": 5, "monthlyMax": 100}),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    adjust(&stack, &account, json!(-2)).await;
    let succeeded = wait_for_events(&stack, &key, "auto_recharge.succeeded", 1).await;
    assert_eq!(account_of(&stack, &key).await["creditsBalance"], json!(8));
    let charges = fake.requests_to("/v1/payment_intents");
    assert_eq!(charges.len(), 1);
    let intent_id = succeeded[0]["data"]["paymentIntentId"].as_str().unwrap();
    assert!(
        fake.requests()
            .iter()
            .any(|request| request["path"] == format!("/v1/payment_intents/{intent_id}")),
        "billing-svc looked the intent up"
    );

    // The webhook arrives after all: acknowledged, nothing more credited.
    let late = json!({
        "id": "evt_late", "object": "event", "type": "payment_intent.succeeded",
        "data": {"object": {"id": intent_id, "object": "payment_intent", "amount_received": 500, "currency": "usd",
                            "status": "succeeded",
                            "metadata": {"account_id": account, "auto_recharge_id": succeeded[0]["data"]["rechargeId"]}}},
    })
    .to_string();
    let answer = deliver(&stack, &late, &stripe_signature(&late, 0).await).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(account_of(&stack, &key).await["creditsBalance"], json!(8));
    assert_eq!(
        events_of(&stack, &key, "auto_recharge.succeeded")
            .await
            .len(),
        1
    );
    assert_ledger_invariants(&stack.billing.database).await;
}
