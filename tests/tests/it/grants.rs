//! Credit grants (BILLING.md, "Credit grants"): promotional credit is spent before paid credit and every
//! deduction names the grants that paid it; the service expires a grant's remainder by itself, without
//! breaking a hold placed before; a refund comes back as paid credit; idempotent credits make one grant; two
//! billing-svc processes sweeping one database expire each grant once.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tests::in_process::{Billing, Stack};
use tests::{Backend, TestDatabase, assert_ledger_invariants, backend_tests};

backend_tests!(
    promotional_credit_is_spent_first_and_each_deduction_names_its_grants,
    a_grant_expires_by_itself_and_a_hold_placed_before_still_settles,
    a_refund_is_a_paid_grant_and_an_idempotent_credit_one_grant,
    two_processes_sweeping_one_database_expire_each_grant_once,
);

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn amount(value: &Value) -> Decimal {
    dec(value.to_string().trim_matches('"'))
}

/// RFC 3339 UTC, `millis` milliseconds from now.
fn rfc3339_in(millis: u64) -> String {
    let at = std::time::SystemTime::now() + Duration::from_millis(millis);
    let json = serde_json::to_value(gateway::timestamp::Timestamp(prost_types::Timestamp::from(
        at,
    )))
    .unwrap();
    json.as_str().unwrap().to_string()
}

async fn credit(stack: &Stack, id: &str, body: Value) -> Value {
    let answer = stack
        .call(
            Method::POST,
            &format!("/billing/admin/{id}/credits"),
            Some(&stack.billing.admin_key),
            Some(body),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.json
}

/// One call the provider reports as 1,000 + 1,000 tokens: 0.015 + 0.045 = 0.06 USD at the default price.
async fn call_costing_six_cents(stack: &Stack, key: &str) {
    let answer = stack
        .post(
            "/v1/chat/completions",
            key,
            json!({"model": "mock-usage-1000-1000", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
}

async fn deductions(stack: &Stack, key: &str) -> Vec<Value> {
    let page = stack
        .get("/billing/transactions?type=usage_deduction", key)
        .await;
    let mut rows = page.json["transactions"].as_array().unwrap().clone();
    rows.reverse();
    rows
}

async fn promotional_credit_is_spent_first_and_each_deduction_names_its_grants(backend: Backend) {
    let stack = Stack::start(backend).await;
    let (id, key) = stack.create_key("granted", "standard").await;
    let paid = credit(&stack, &id, json!({"amount": 5})).await;
    assert_eq!(paid["transaction"]["type"], "credit_purchase");
    assert_eq!(paid["grant"]["category"], "paid");
    assert_eq!(paid["grant"]["priority"], 100);
    let promo = credit(
        &stack,
        &id,
        json!({"amount": 0.1, "category": "promotional", "expiresAt": rfc3339_in(3_600_000)}),
    )
    .await;
    assert_eq!(promo["transaction"]["type"], "credit_grant");
    assert_eq!(promo["grant"]["priority"], 0);
    let (paid_id, promo_id) = (
        paid["grant"]["id"].as_str().unwrap().to_string(),
        promo["grant"]["id"].as_str().unwrap().to_string(),
    );

    // The promotional grant (priority 0) pays first, though the paid one is older.
    let listed = stack.get("/billing/grants", &key).await;
    let order: Vec<&str> = listed.json["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|grant| grant["id"].as_str().unwrap())
        .collect();
    assert_eq!(order, vec![promo_id.as_str(), paid_id.as_str()]);

    call_costing_six_cents(&stack, &key).await;
    call_costing_six_cents(&stack, &key).await;
    let rows = deductions(&stack, &key).await;
    assert_eq!(rows.len(), 2);
    let paid_by = |row: &Value| -> Vec<(String, Decimal)> {
        row["metadata"]["grants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|grant| {
                (
                    grant["grant_id"].as_str().unwrap().to_string(),
                    amount(&grant["amount"]),
                )
            })
            .collect()
    };
    assert_eq!(paid_by(&rows[0]), vec![(promo_id.clone(), dec("0.06"))]);
    assert_eq!(
        paid_by(&rows[1]),
        vec![
            (promo_id.clone(), dec("0.04")),
            (paid_id.clone(), dec("0.02"))
        ]
    );

    let listed = stack.get("/billing/grants", &key).await;
    let grants = listed.json["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 1, "the spent promotional grant is left out");
    assert_eq!(amount(&grants[0]["remaining"]), dec("4.98"));
    let all = stack.get("/billing/grants?includeSpent=true", &key).await;
    assert_eq!(all.json["grants"].as_array().unwrap().len(), 2);
    let admin_view = stack
        .call(
            Method::GET,
            &format!("/billing/admin/{id}/grants"),
            Some(&stack.billing.admin_key),
            None,
        )
        .await;
    assert_eq!(admin_view.json, listed.json);
    let account = stack.get("/billing/account", &key).await;
    assert_eq!(amount(&account.json["creditsBalance"]), dec("4.98"));
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn a_grant_expires_by_itself_and_a_hold_placed_before_still_settles(backend: Backend) {
    let billing = Billing::start(backend, &["--hold-sweep-interval-ms", "100"]).await;
    let stack = Stack::start_on(billing, &[]).await;
    let (id, key) = stack.create_key("expiring", "standard").await;
    credit(
        &stack,
        &id,
        json!({"amount": 1, "category": "promotional", "expiresAt": rfc3339_in(2_000)}),
    )
    .await;
    // A call that holds credit now and answers after the grant has expired (the mock waits 3 s).
    let slow = stack.post(
        "/v1/chat/completions",
        &key,
        json!({"model": "mock-stall-3000-usage-1000-1000", "messages": [{"role": "user", "content": "hi"}]}),
    );
    let answer = slow.await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);

    let expiries = stack
        .get("/billing/transactions?type=credit_expiry", &key)
        .await;
    let expiries = expiries.json["transactions"].as_array().unwrap().clone();
    assert_eq!(expiries.len(), 1, "one expiry");
    assert_eq!(
        amount(&expiries[0]["amount"]),
        dec("-1"),
        "the whole remainder"
    );
    // The hold placed before the expiry still settles: no grant covers more output, so the answer is cut
    // off within the hold, and the settlement, finding no grant left, records its charge as overage.
    assert_eq!(answer.header("x-billing-cut-off"), Some("credit_exhausted"));
    let charged = dec(answer.header("x-billing-cost").unwrap());
    assert!(charged > Decimal::ZERO);
    let account = stack.get("/billing/account", &key).await;
    assert_eq!(amount(&account.json["overage"]), charged);
    assert_eq!(amount(&account.json["creditsBalance"]), -charged);
    let refused = stack
        .post("/execute", &key, json!({"prompt": "hi", "model": "mock"}))
        .await;
    assert_eq!(refused.status, StatusCode::PAYMENT_REQUIRED);
    // The next grant pays the overage first.
    let paid = credit(&stack, &id, json!({"amount": 5})).await;
    assert_eq!(amount(&paid["grant"]["remaining"]), dec("5") - charged);
    assert_eq!(amount(&paid["account"]["overage"]), Decimal::ZERO);
    assert_eq!(
        amount(&paid["account"]["creditsBalance"]),
        dec("5") - charged
    );
    assert_eq!(
        amount(&paid["transaction"]["metadata"]["overage_paid"]),
        charged
    );
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn a_refund_is_a_paid_grant_and_an_idempotent_credit_one_grant(backend: Backend) {
    let stack = Stack::start(backend).await;
    let (id, key) = stack.create_key("refunded", "standard").await;
    let body = json!({"amount": 2, "category": "promotional", "idempotencyKey": "promo-1"});
    let first = credit(&stack, &id, body.clone()).await;
    let again = credit(&stack, &id, body).await;
    assert_eq!(first["grant"]["id"], again["grant"]["id"]);
    assert_eq!(first["transaction"]["id"], again["transaction"]["id"]);
    let listed = stack.get("/billing/grants", &key).await;
    assert_eq!(listed.json["grants"].as_array().unwrap().len(), 1);

    call_costing_six_cents(&stack, &key).await;
    let usage = stack.get("/billing/usage", &key).await;
    let record = usage.json["records"][0]["id"].as_str().unwrap().to_string();
    let refund = stack
        .call(
            Method::POST,
            &format!("/billing/admin/{id}/refunds"),
            Some(&stack.billing.admin_key),
            Some(json!({"usageRecordId": record})),
        )
        .await;
    assert_eq!(refund.status, StatusCode::OK, "{}", refund.text);
    assert_eq!(refund.json["grant"]["category"], "paid");
    assert!(refund.json["grant"]["expiresAt"].is_null());
    assert_eq!(amount(&refund.json["grant"]["amount"]), dec("0.06"));
    assert_eq!(amount(&refund.json["account"]["creditsBalance"]), dec("2"));
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn two_processes_sweeping_one_database_expire_each_grant_once(backend: Backend) {
    use proto::billing::v1 as pb;

    // Processes, as replicas are deployed: nothing but the database is shared.
    let sweep = ["--hold-sweep-interval-ms", "20"];
    let first = tests::Billing::start(backend, &sweep).await;
    let second = tests::Billing::start_with(
        TestDatabase::existing(backend, first.database.url.clone()),
        first.admin_key.clone(),
        first.service_token.clone(),
        &sweep,
    )
    .await;
    let (id, key) = first.create_key(pb::KeyType::Standard).await;
    let soon = prost_types::Timestamp::from(std::time::SystemTime::now() + Duration::from_secs(1));
    for n in 0..5 {
        first
            .admin()
            .await
            .add_credits(tests::authed(
                &first.admin_key,
                pb::AddCreditsRequest {
                    api_key_id: id.clone(),
                    amount: format!("1.{n}"),
                    category: pb::GrantCategory::Promotional.into(),
                    expires_at: Some(soon),
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
    }
    let expired = tests::eventually(Duration::from_secs(10), || async {
        let mut connection = first
            .database
            .connect()
            .await
            .expect("connect to the test database");
        let count: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM transactions WHERE type = 'credit_expiry'",
        )
        .fetch_one(&mut connection)
        .await
        .unwrap();
        count >= 5
    })
    .await;
    assert!(expired);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut connection = first
        .database
        .connect()
        .await
        .expect("connect to the test database");
    let (count, total): (i64, i64) = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT), CAST(SUM(amount) AS BIGINT) FROM transactions \
         WHERE type = 'credit_expiry'",
    )
    .fetch_one(&mut connection)
    .await
    .unwrap();
    assert_eq!(count, 5, "each grant expired once");
    assert_eq!(total, -6_000_000_000, "exactly what the grants held");
    assert_eq!(
        dec(&first.account_of(&key).await.credits_balance),
        Decimal::ZERO
    );
    drop(second);
    assert_ledger_invariants(&first.database).await;
}
