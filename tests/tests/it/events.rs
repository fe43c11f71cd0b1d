//! The transactional outbox (BILLING.md, "Events and alerts"): every event is written in the transaction of
//! the change that causes it, so a change that did not happen has no event and a retried one has one;
//! `balance.low` fires once per crossing of each threshold, even under 50 concurrent executions, and a top-up
//! re-arms it; cut-offs and caps are events too.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::in_process::Stack;
use tests::{Backend, assert_ledger_invariants, backend_tests};

backend_tests!(
    events_exist_exactly_when_their_change_does,
    balance_low_fires_once_per_crossing_under_concurrency,
    a_cut_off_by_a_cap_is_an_event,
);

async fn admin(stack: &Stack, method: Method, path: &str, body: Option<Value>) -> tests::Answer {
    stack
        .call(method, path, Some(&stack.billing.admin_key), body)
        .await
}

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

async fn events_exist_exactly_when_their_change_does(backend: Backend) {
    let stack = Stack::start(backend).await;
    let (id, key) = stack.create_key("evented", "standard").await;
    let created = events_of(&stack, &key, "key.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["data"]["apiKeyId"], id);
    assert!(created[0]["id"].as_str().unwrap().starts_with("evt_"));

    let body = json!({"amount": 3, "idempotencyKey": "topup-1"});
    for _ in 0..2 {
        let answer = admin(
            &stack,
            Method::POST,
            &format!("/billing/admin/{id}/credits"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }
    let added = events_of(&stack, &key, "credits.added").await;
    assert_eq!(added.len(), 1, "a retried credit is one change, one event");
    assert_eq!(added[0]["data"]["amount"], "3");
    assert_eq!(added[0]["data"]["category"], "paid");

    // Refused changes write nothing, events included.
    let overdraw = admin(
        &stack,
        Method::POST,
        &format!("/billing/admin/{id}/adjustments"),
        Some(json!({"amount": -100, "reason": "too much"})),
    )
    .await;
    assert_eq!(overdraw.status, StatusCode::CONFLICT, "{}", overdraw.text);
    let conflict = admin(
        &stack,
        Method::POST,
        &format!("/billing/admin/{id}/credits"),
        Some(json!({"amount": 4, "idempotencyKey": "topup-1"})),
    )
    .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    let all = stack.get("/billing/events?limit=1000", &key).await;
    assert_eq!(
        all.json["events"].as_array().unwrap().len(),
        2,
        "{}",
        all.text
    );

    let rotated = admin(
        &stack,
        Method::POST,
        &format!("/admin/keys/{id}/rotate"),
        Some(json!({"gracePeriodSecs": 60})),
    )
    .await;
    assert_eq!(rotated.status, StatusCode::CREATED);
    let revoked = admin(&stack, Method::DELETE, &format!("/admin/keys/{id}"), None).await;
    assert_eq!(revoked.status, StatusCode::OK);
    let again = admin(&stack, Method::DELETE, &format!("/admin/keys/{id}"), None).await;
    assert_eq!(again.status, StatusCode::OK);
    // The operator sees the account's events, newest first, whatever the key's state.
    let operator = admin(
        &stack,
        Method::GET,
        &format!("/admin/events?accountId={id}"),
        None,
    )
    .await;
    let kinds: Vec<&str> = operator.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["key.revoked", "key.rotated", "credits.added", "key.created"],
        "revoking twice is one revocation"
    );
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn balance_low_fires_once_per_crossing_under_concurrency(backend: Backend) {
    let stack = Stack::start(backend).await;
    let (id, key) = stack.create_key("alerted", "standard").await;
    stack.add_credits(&id, json!(6.5)).await;
    let set = stack
        .call(
            Method::PUT,
            "/billing/alerts",
            Some(&key),
            Some(json!({"lowBalance": [1, 5]})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert_eq!(set.json["lowBalance"], json!([5, 1]));

    // 0.06 USD per call: 50 calls take the balance from 6.5 to 3.5 (crossing 5), 50 more to 0.5 (crossing 1).
    let call = || {
        stack.post(
            "/v1/chat/completions",
            &key,
            json!({"model": "mock-usage-1000-1000", "messages": [{"role": "user", "content": "hi"}]}),
        )
    };
    for _ in 0..2 {
        let answers = futures::future::join_all((0..50).map(|_| call())).await;
        assert!(
            answers.iter().all(|a| a.status == StatusCode::OK),
            "{:?}",
            answers
                .iter()
                .find(|a| a.status != StatusCode::OK)
                .map(|a| &a.text)
        );
    }
    let thresholds = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .map(|event| event["data"]["threshold"].as_str().unwrap().to_string())
            .collect()
    };
    let low = events_of(&stack, &key, "balance.low").await;
    assert_eq!(thresholds(&low), vec!["5", "1"]);

    // A top-up re-arms both; going below 5 again fires 5 again, once.
    stack.add_credits(&id, json!(10)).await;
    let spend = admin(
        &stack,
        Method::POST,
        &format!("/billing/admin/{id}/adjustments"),
        Some(json!({"amount": -6, "reason": "correction"})),
    )
    .await;
    assert_eq!(spend.status, StatusCode::OK, "{}", spend.text);
    let low = events_of(&stack, &key, "balance.low").await;
    assert_eq!(thresholds(&low), vec!["5", "1", "5"]);

    // Alerts belong to owners.
    let (member_id, member) = {
        let created = admin(
            &stack,
            Method::POST,
            "/admin/keys",
            Some(json!({"name": "member", "keyType": "standard", "accountId": set_account(&stack, &key).await})),
        )
        .await;
        (
            created.json["id"].clone(),
            created.json["key"].as_str().unwrap().to_string(),
        )
    };
    assert!(member_id.is_string());
    let refused = stack
        .call(
            Method::PUT,
            "/billing/alerts",
            Some(&member),
            Some(json!({"lowBalance": [2]})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn set_account(stack: &Stack, key: &str) -> String {
    let account = stack.get("/billing/account", key).await;
    account.json["accountId"].as_str().unwrap().to_string()
}

async fn a_cut_off_by_a_cap_is_an_event(backend: Backend) {
    let stack = Stack::start(backend).await;
    let (id, key) = stack.create_key("capped", "standard").await;
    stack.add_credits(&id, json!(10)).await;
    let limits = admin(
        &stack,
        Method::POST,
        &format!("/billing/admin/{id}/limits"),
        Some(json!({"dailyLimit": 0.05, "monthlyLimit": null})),
    )
    .await;
    assert_eq!(limits.status, StatusCode::OK, "{}", limits.text);
    let answer = stack
        .post(
            "/v1/chat/completions",
            &key,
            json!({"model": "mock-tokens-3000", "messages": [{"role": "user", "content": "a long answer"}]}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.header("x-billing-cut-off"), Some("credit_exhausted"));
    let cut = events_of(&stack, &key, "execution.cut_off").await;
    assert_eq!(cut.len(), 1);
    assert_eq!(cut[0]["data"]["reason"], "daily_limit_exceeded");
    let reached = events_of(&stack, &key, "limit.reached").await;
    assert_eq!(reached.len(), 1);
    assert_eq!(reached[0]["data"]["limit"], "0.05");
    assert_eq!(reached[0]["data"]["scope"], "account");
    assert_ledger_invariants(&stack.billing.database).await;
}
