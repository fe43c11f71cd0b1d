//! Team accounts and key policies (API_KEY_MANAGEMENT.md, "Keys"): several keys spend one balance, roles
//! decide what a key sees, per-key limits (concurrency, requests and tokens per minute, caps, models, expiry)
//! are enforced by billing-svc in the open transaction, rotation keeps the key with a grace period, and a
//! database made by the previous release upgrades in place.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tests::in_process::{Billing, Stack};
use tests::{Backend, TestDatabase, assert_ledger_invariants, backend_tests, bearer};

backend_tests!(
    keys_of_one_account_spend_one_balance_and_roles_decide_what_they_see,
    a_concurrency_limit_holds_and_a_finished_execution_frees_its_slot,
    requests_per_minute_and_tokens_per_minute_refuse_with_retry_after,
    a_model_outside_the_allow_list_is_refused_before_anything_is_held,
    a_key_cap_stops_that_key_while_the_account_goes_on,
    rotation_keeps_the_old_secret_for_the_grace_period_only,
    an_expired_key_is_refused_on_its_next_call,
    a_key_is_told_a_week_and_a_day_before_it_expires,
    a_database_of_the_previous_release_upgrades_in_place,
);

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn amount(value: &Value) -> Decimal {
    dec(&value.to_string())
}

async fn admin(stack: &Stack, method: Method, path: &str, body: Option<Value>) -> tests::Answer {
    stack
        .call(method, path, Some(&stack.billing.admin_key), body)
        .await
}

/// A team account with `credit` USD; returns its id.
async fn team(stack: &Stack, credit: &str) -> String {
    let created = admin(
        stack,
        Method::POST,
        "/admin/accounts",
        Some(json!({"name": "team"})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json["accountId"].as_str().unwrap().to_string();
    stack.add_credits(&id, json!(dec(credit))).await;
    id
}

/// A standard key in `account` with `extra` fields (role, policy); returns `(id, plain key)`.
async fn team_key(stack: &Stack, account: &str, extra: Value) -> (String, String) {
    let mut body = json!({"name": "dev", "keyType": "standard", "accountId": account});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let created = admin(stack, Method::POST, "/admin/keys", Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.json["accountId"], account);
    (
        created.json["id"].as_str().unwrap().to_string(),
        created.json["key"].as_str().unwrap().to_string(),
    )
}

async fn chat(stack: &Stack, key: &str, model: &str) -> tests::Answer {
    stack
        .post(
            "/v1/chat/completions",
            key,
            json!({"model": model, "messages": [{"role": "user", "content": "hello there"}],
                   "max_tokens": 20}),
        )
        .await
}

async fn keys_of_one_account_spend_one_balance_and_roles_decide_what_they_see(backend: Backend) {
    let stack = Stack::start(backend).await;
    let account = team(&stack, "10").await;
    let (owner_id, owner) = team_key(&stack, &account, json!({"role": "owner"})).await;
    let (member_id, member) = team_key(&stack, &account, json!({})).await;

    for key in [&owner, &member] {
        let answer = chat(&stack, key, "mock").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }
    let seen_by_owner = stack.get("/billing/account", &owner).await;
    let seen_by_member = stack.get("/billing/account", &member).await;
    assert_eq!(seen_by_owner.json["accountId"], account);
    assert_eq!(seen_by_owner.json["role"], "owner");
    assert_eq!(seen_by_member.json["role"], "member");
    assert_eq!(seen_by_member.json["apiKeyId"], member_id);
    let balance = amount(&seen_by_owner.json["creditsBalance"]);
    assert_eq!(balance, amount(&seen_by_member.json["creditsBalance"]));
    let spent = amount(&seen_by_owner.json["totalSpent"]);
    assert!(spent > Decimal::ZERO);
    assert_eq!(balance + spent, dec("10"), "one balance paid both keys");

    let usage_of = |answer: &tests::Answer| -> Vec<String> {
        answer.json["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|record| record["apiKeyId"].as_str().unwrap().to_string())
            .collect()
    };
    let owner_usage = stack.get("/billing/usage", &owner).await;
    assert_eq!(usage_of(&owner_usage).len(), 2, "{}", owner_usage.text);
    let member_usage = stack.get("/billing/usage", &member).await;
    assert_eq!(usage_of(&member_usage), vec![member_id.clone()]);
    // A member cannot widen its view; an owner can narrow its own.
    let member_asks_owner = stack
        .get(&format!("/billing/usage?apiKeyId={owner_id}"), &member)
        .await;
    assert_eq!(usage_of(&member_asks_owner), vec![member_id.clone()]);
    let owner_narrows = stack
        .get(&format!("/billing/usage?apiKeyId={member_id}"), &owner)
        .await;
    assert_eq!(usage_of(&owner_narrows), vec![member_id.clone()]);
    let member_stats = stack.get("/billing/stats", &member).await;
    assert_eq!(member_stats.json["totals"]["requests"], 1);

    let owner_keys = stack.get("/billing/keys", &owner).await;
    assert_eq!(
        owner_keys.json["keys"].as_array().unwrap().len(),
        2,
        "{}",
        owner_keys.text
    );
    let member_keys = stack.get("/billing/keys", &member).await;
    let member_keys = member_keys.json["keys"].as_array().unwrap();
    assert_eq!(member_keys.len(), 1);
    assert_eq!(member_keys[0]["id"], member_id);
    assert!(amount(&member_keys[0]["spentToday"]) > Decimal::ZERO);

    let view = admin(
        &stack,
        Method::GET,
        &format!("/admin/accounts/{account}"),
        None,
    )
    .await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.text);
    assert_eq!(view.json["keys"].as_array().unwrap().len(), 2);
    let listed = admin(&stack, Method::GET, "/admin/accounts?limit=1", None).await;
    assert_eq!(listed.json["accounts"].as_array().unwrap().len(), 1);
    assert!(listed.json["nextCursor"].is_string() || listed.json["nextCursor"].is_null());
    // The seed's shape still works: a key created without accountId has its own account, and a key id
    // names its account under /billing/admin/:id.
    let (solo_id, solo) = stack.create_key("solo", "standard").await;
    stack.add_credits(&solo_id, json!(1)).await;
    let solo_account = stack.get("/billing/account", &solo).await;
    assert_eq!(solo_account.json["role"], "owner");
    assert_eq!(amount(&solo_account.json["creditsBalance"]), dec("1"));
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn a_concurrency_limit_holds_and_a_finished_execution_frees_its_slot(backend: Backend) {
    let stack = Stack::start(backend).await;
    let account = team(&stack, "10").await;
    let (_, key) = team_key(&stack, &account, json!({"policy": {"maxConcurrent": 2}})).await;
    let calls = (0..10).map(|_| chat(&stack, &key, "mock-stall-1500"));
    let answers = futures::future::join_all(calls).await;
    let ok = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK)
        .count();
    let refused: Vec<_> = answers
        .iter()
        .filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(
        ok,
        2,
        "{:?}",
        answers.iter().map(|a| &a.text).collect::<Vec<_>>()
    );
    assert_eq!(refused.len(), 8);
    for answer in refused {
        assert_eq!(
            answer.json["error"]["code"], "concurrency_limit_exceeded",
            "{}",
            answer.text
        );
        assert!(answer.header("retry-after").is_some());
    }
    let again = chat(&stack, &key, "mock").await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn requests_per_minute_and_tokens_per_minute_refuse_with_retry_after(backend: Backend) {
    let stack = Stack::start(backend).await;
    let account = team(&stack, "10").await;
    let (_, rpm) = team_key(
        &stack,
        &account,
        json!({"policy": {"requestsPerMinute": 3}}),
    )
    .await;
    // OpenAI's rate-limit headers say where the key stands, this call counted, whole and streamed.
    for remaining in ["2", "1"] {
        let answer = chat(&stack, &rpm, "mock").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(answer.header("x-ratelimit-limit-requests"), Some("3"));
        assert_eq!(
            answer.header("x-ratelimit-remaining-requests"),
            Some(remaining)
        );
        assert!(
            answer
                .header("x-ratelimit-reset-requests")
                .unwrap()
                .ends_with('s')
        );
        assert!(answer.header("x-ratelimit-limit-tokens").is_none());
    }
    let streamed = stack
        .post(
            "/v1/chat/completions",
            &rpm,
            json!({"model": "mock", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(streamed.status, StatusCode::OK, "{}", streamed.text);
    assert_eq!(streamed.header("x-ratelimit-remaining-requests"), Some("0"));
    let fourth = chat(&stack, &rpm, "mock").await;
    assert_eq!(
        fourth.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        fourth.text
    );
    assert_eq!(fourth.json["error"]["code"], "requests_per_minute_exceeded");
    let retry: u64 = fourth.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // The REST shape says the same, with the limit in details.
    let rest = stack
        .post("/execute", &rpm, json!({"prompt": "hi", "model": "mock"}))
        .await;
    assert_eq!(rest.status, StatusCode::TOO_MANY_REQUESTS, "{}", rest.text);
    assert_eq!(rest.json["code"], "requests_per_minute_exceeded");
    assert_eq!(rest.json["details"]["limit"], 3);

    // mock-usage-<in>-<out>: the provider reports 400 tokens per call; after three, 1,200 > 1,000.
    let (_, tpm) = team_key(
        &stack,
        &account,
        json!({"policy": {"tokensPerMinute": 1000}}),
    )
    .await;
    for _ in 0..3 {
        let answer = chat(&stack, &tpm, "mock-usage-300-100").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(answer.header("x-ratelimit-limit-tokens"), Some("1000"));
        assert!(answer.header("x-ratelimit-remaining-tokens").is_some());
    }
    let fourth = chat(&stack, &tpm, "mock-usage-300-100").await;
    assert_eq!(
        fourth.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        fourth.text
    );
    assert_eq!(fourth.json["error"]["code"], "tokens_per_minute_exceeded");
    assert!(fourth.header("retry-after").is_some());
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn a_model_outside_the_allow_list_is_refused_before_anything_is_held(backend: Backend) {
    let stack = Stack::start(backend).await;
    let account = team(&stack, "10").await;
    let (_, key) = team_key(
        &stack,
        &account,
        json!({"policy": {"allowedModels": ["mock"]}}),
    )
    .await;
    let refused = chat(&stack, &key, "mock-tokens-5").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert_eq!(refused.json["error"]["code"], "model_not_allowed");
    let account_now = stack.get("/billing/account", &key).await;
    assert_eq!(amount(&account_now.json["heldCredits"]), Decimal::ZERO);
    assert_eq!(amount(&account_now.json["totalSpent"]), Decimal::ZERO);
    assert_eq!(
        account_now.json["policy"]["allowedModels"],
        json!(["mock"]),
        "{}",
        account_now.text
    );
    let allowed = chat(&stack, &key, "mock").await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.text);
    let models = stack.get("/v1/models", &key).await;
    let ids: Vec<_> = models.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| model["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec!["mock".to_string()]);
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn a_key_cap_stops_that_key_while_the_account_goes_on(backend: Backend) {
    let stack = Stack::start(backend).await;
    let account = team(&stack, "10").await;
    let (capped_id, capped) =
        team_key(&stack, &account, json!({"policy": {"dailyLimit": 0.0001}})).await;
    let (_, free) = team_key(&stack, &account, json!({})).await;
    let refused = stack
        .post(
            "/execute",
            &capped,
            json!({"prompt": "hello", "model": "mock"}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        refused.text
    );
    assert_eq!(refused.json["code"], "daily_limit_exceeded");
    assert_eq!(refused.json["details"]["scope"], "key");
    assert_eq!(amount(&refused.json["details"]["limit"]), dec("0.0001"));
    let works = chat(&stack, &free, "mock").await;
    assert_eq!(works.status, StatusCode::OK, "{}", works.text);
    // Raising the key's cap (PATCH replaces the policy) lets it spend again.
    let patched = admin(
        &stack,
        Method::PATCH,
        &format!("/admin/keys/{capped_id}"),
        Some(json!({"policy": {"dailyLimit": 5}})),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(amount(&patched.json["policy"]["dailyLimit"]), dec("5"));
    let after = chat(&stack, &capped, "mock").await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.text);
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn rotation_keeps_the_old_secret_for_the_grace_period_only(backend: Backend) {
    let stack = Stack::start(backend).await;
    let (id, old) = stack.create_key("rotating", "standard").await;
    stack.add_credits(&id, json!(5)).await;
    let rotated = admin(
        &stack,
        Method::POST,
        &format!("/admin/keys/{id}/rotate"),
        Some(json!({"gracePeriodSecs": 2})),
    )
    .await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{}", rotated.text);
    assert_eq!(rotated.json["id"], id);
    let new = rotated.json["key"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    for key in [&old, &new] {
        let answer = chat(&stack, key, "mock").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let refused = chat(&stack, &old, "mock").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.text);
    let refused_rest = stack.get("/billing/account", &old).await;
    assert_eq!(refused_rest.status, StatusCode::UNAUTHORIZED);
    assert_eq!(chat(&stack, &new, "mock").await.status, StatusCode::OK);

    // Without a grace period the old secret is refused at once, on every route, over gRPC too.
    let again = admin(
        &stack,
        Method::POST,
        &format!("/admin/keys/{id}/rotate"),
        Some(json!({})),
    )
    .await;
    let newest = again.json["key"].as_str().unwrap().to_string();
    assert_eq!(
        chat(&stack, &new, "mock").await.status,
        StatusCode::UNAUTHORIZED
    );
    let mut account = stack.billing.account().await;
    let mut request = tonic::Request::new(proto::billing::v1::GetAccountRequest {});
    request.metadata_mut().insert("authorization", bearer(&new));
    assert_eq!(
        account.get_account(request).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    assert_eq!(chat(&stack, &newest, "mock").await.status, StatusCode::OK);

    // A revoked key cannot be rotated or changed: 409 `key_revoked`, the key's state, never a 401 that
    // would read as the operator's own credentials refused (gRPC: FAILED_PRECONDITION).
    let revoked = admin(&stack, Method::DELETE, &format!("/admin/keys/{id}"), None).await;
    assert!(revoked.status.is_success(), "{}", revoked.text);
    for (method, path, body) in [
        (Method::POST, format!("/admin/keys/{id}/rotate"), json!({})),
        (
            Method::PATCH,
            format!("/admin/keys/{id}"),
            json!({"name": "renamed"}),
        ),
    ] {
        let refused = admin(&stack, method, &path, Some(body)).await;
        assert_eq!(
            refused.status,
            StatusCode::CONFLICT,
            "{path}: {}",
            refused.text
        );
        assert_eq!(
            refused.json["code"], "key_revoked",
            "{path}: {}",
            refused.text
        );
    }
    let status = stack
        .billing
        .admin()
        .await
        .rotate_key(tests::authed(
            &stack.billing.admin_key,
            proto::billing::v1::RotateKeyRequest {
                id: id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn an_expired_key_is_refused_on_its_next_call(backend: Backend) {
    let stack = Stack::start(backend).await;
    let account = team(&stack, "1").await;
    let soon = rfc3339_in(1);
    let (_, key) = team_key(&stack, &account, json!({"policy": {"expiresAt": soon}})).await;
    assert_eq!(chat(&stack, &key, "mock").await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let refused = chat(&stack, &key, "mock").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.text);
}

/// `key.expiring` (BILLING.md, "Events and alerts"): 7 days and 1 day before `expiresAt`, each once; a key
/// that already expires within a day gets only the 1-day notice; a new `expiresAt` gets its notices again.
async fn a_key_is_told_a_week_and_a_day_before_it_expires(backend: Backend) {
    let billing = Billing::start(backend, &["--hold-sweep-interval-ms", "100"]).await;
    let stack = Stack::start_on(billing, &[]).await;
    let account = team(&stack, "1").await;
    let expiring = |secs: u64| json!({"policy": {"expiresAt": rfc3339_in(secs)}});
    let (in_3_days, _) = team_key(&stack, &account, expiring(3 * 86_400)).await;
    let (in_12_hours, _) = team_key(&stack, &account, expiring(12 * 3_600)).await;
    team_key(&stack, &account, expiring(30 * 86_400)).await;
    let notices = || async {
        let page = admin(
            &stack,
            Method::GET,
            &format!("/admin/events?accountId={account}&type=key.expiring"),
            None,
        )
        .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let mut notices: Vec<(String, String)> = page.json["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| {
                let data = &event["data"];
                (
                    data["keyId"].as_str().unwrap().to_string(),
                    data["within"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        notices.sort();
        notices
    };
    let mut expected = vec![
        (in_3_days.clone(), "7d".to_string()),
        (in_12_hours.clone(), "1d".to_string()),
    ];
    expected.sort();
    for _ in 0..100 {
        if notices().await.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        notices().await,
        expected,
        "each notice once, none for 30 days away"
    );

    let patched = admin(
        &stack,
        Method::PATCH,
        &format!("/admin/keys/{in_12_hours}"),
        Some(expiring(5 * 86_400)),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    expected.push((in_12_hours, "7d".to_string()));
    expected.sort();
    for _ in 0..100 {
        if notices().await.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(notices().await, expected);
    assert_ledger_invariants(&stack.billing.database).await;
}

/// RFC 3339 UTC, `secs` seconds from now.
fn rfc3339_in(secs: u64) -> String {
    let at = std::time::SystemTime::now() + Duration::from_secs(secs);
    let stamp = prost_types::Timestamp::from(at);
    let json = serde_json::to_value(gateway::timestamp::Timestamp(stamp)).unwrap();
    json.as_str().unwrap().to_string()
}

/// The fixtures made by the release before accounts became first-class (tests/fixtures/make-v1-fixture.sh
/// against its billing-svc, then `sqlite3 … .dump` and `pg_dump --inserts`):
/// alice (standard) with 10 USD bought, -0.5 adjusted, two executions settled, one refunded 0.01, a daily
/// cap of 8 and an execution left open; bob (internal) with one execution.
async fn a_database_of_the_previous_release_upgrades_in_place(backend: Backend) {
    let (database, _dir) = TestDatabase::from_fixture(backend, "billing-v1").await;
    let billing = Billing::start_on(database, &["--hold-sweep-interval-ms", "50"]).await;
    let mut admin = billing.admin().await;
    let keys = admin
        .list_keys(tests::authed(
            &billing.admin_key,
            proto::billing::v1::ListKeysRequest {
                include_revoked: true,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert_eq!(keys.len(), 2);
    let alice = keys.iter().find(|key| key.name == "fixture alice").unwrap();
    assert_eq!(alice.role(), proto::billing::v1::Role::Owner);
    let view = admin
        .get_account(tests::authed(
            &billing.admin_key,
            proto::billing::v1::GetAccountAdminRequest {
                account_id: alice.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let account = view.account.unwrap();
    assert_eq!(account.account_id, alice.account_id);
    assert_eq!(account.name, "fixture alice");
    assert_eq!(dec(&account.credits_balance), dec("9.4125"));
    assert_eq!(dec(&account.total_spent), dec("0.0875"));
    assert_eq!(account.daily_limit.as_deref().map(dec), Some(dec("8")));
    // The balance became one paid grant without expiry (migration 0003).
    let grants = admin
        .list_grants(tests::authed(
            &billing.admin_key,
            proto::billing::v1::ListGrantsRequest {
                api_key_id: alice.id.clone(),
                include_spent: true,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .grants;
    assert_eq!(grants.len(), 1);
    assert_eq!(
        grants[0].category(),
        proto::billing::v1::GrantCategory::Paid
    );
    assert_eq!(dec(&grants[0].remaining), dec("9.4125"));
    assert!(grants[0].expires_at.is_none());
    let stats = admin
        .get_account_stats(tests::authed(
            &billing.admin_key,
            proto::billing::v1::GetAccountStatsRequest {
                api_key_id: alice.id.clone(),
                range: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.totals.unwrap().requests, 2);
    // The open execution's hold (long expired) is released by the sweeper; the books balance throughout.
    assert_ledger_invariants(&billing.database).await;
    let released = tests::eventually(Duration::from_secs(10), || async {
        let mut connection = billing
            .database
            .connect()
            .await
            .expect("connect to the test database");
        let holds: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM holds")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        holds == 0
    })
    .await;
    assert!(released);
    assert_ledger_invariants(&billing.database).await;
}

/// Three billing-svc processes on one PostgreSQL database: a key's concurrency and per-minute limits are
/// counted in the open transaction under the account's row lock, so they stay exact whichever process
/// each execution opens on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_limits_are_exact_across_three_replicas_on_one_postgresql() {
    use proto::billing::v1 as pb;

    let first = tests::Billing::start(Backend::Postgres, &[]).await;
    let url = first.database.url.clone();
    let mut replicas = vec![first];
    for _ in 0..2 {
        let (admin_key, service_token) = (
            replicas[0].admin_key.clone(),
            replicas[0].service_token.clone(),
        );
        replicas.push(
            tests::Billing::start_with(
                TestDatabase::existing(Backend::Postgres, url.clone()),
                admin_key,
                service_token,
                &[],
            )
            .await,
        );
    }
    let key_with = |policy: pb::KeyPolicy| {
        let billing = &replicas[0];
        async move {
            let created = billing
                .admin()
                .await
                .create_key(tests::authed(
                    &billing.admin_key,
                    pb::CreateKeyRequest {
                        name: "replicated".into(),
                        key_type: pb::KeyType::Standard.into(),
                        policy: Some(policy),
                        ..Default::default()
                    },
                ))
                .await
                .unwrap()
                .into_inner();
            let id = created.api_key.unwrap().id;
            billing.add_credits(&id, "10").await;
            created.key
        }
    };
    let reason = |status: &tonic::Status| {
        tonic_types::StatusExt::get_details_error_info(status)
            .map(|info| info.reason)
            .unwrap_or_default()
    };

    // Concurrency 2: nine opens at once, three on each replica.
    let key = key_with(pb::KeyPolicy {
        max_concurrent: Some(2),
        ..Default::default()
    })
    .await;
    let opens = (0..9).map(|n| {
        let (billing, key) = (&replicas[n % 3], key.clone());
        async move { billing.open(&key, &format!("conc-{n}"), 10, 50).await }
    });
    let results = futures::future::join_all(opens).await;
    let (open, refused): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    assert_eq!(open.len(), 2, "exactly the limit is in flight");
    for refusal in refused {
        let Err(error) = refusal else { unreachable!() };
        let status = tests::grpc_status(error);
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(reason(&status), "concurrency_limit_exceeded");
    }
    for session in open {
        session
            .unwrap()
            .close(10, 20, pb::UsageStatus::Completed)
            .await
            .unwrap();
    }
    // A finished execution frees its slot, on any replica.
    let again = replicas[2].open(&key, "conc-again", 10, 50).await.unwrap();
    again
        .close(10, 20, pb::UsageStatus::Completed)
        .await
        .unwrap();

    // Three requests per minute: six executions at once, spread over the replicas.
    let key = key_with(pb::KeyPolicy {
        requests_per_minute: Some(3),
        ..Default::default()
    })
    .await;
    let runs = (0..6).map(|n| {
        let (billing, key) = (&replicas[n % 3], key.clone());
        async move {
            let session = billing.open(&key, &format!("rpm-{n}"), 10, 50).await?;
            session.close(10, 20, pb::UsageStatus::Completed).await
        }
    });
    let results = futures::future::join_all(runs).await;
    let settled = results.iter().filter(|result| result.is_ok()).count();
    assert_eq!(settled, 3, "{results:?}");
    for result in results {
        if let Err(error) = result {
            let status = tests::grpc_status(error);
            assert_eq!(reason(&status), "requests_per_minute_exceeded");
        }
    }
    assert_ledger_invariants(&replicas[0].database).await;
}
