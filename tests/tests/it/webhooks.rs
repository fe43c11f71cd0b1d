//! Webhook delivery (WEBHOOKS.md), received by the official `standardwebhooks` Python library: every
//! delivery carries the Standard Webhooks headers and a signature the library verifies; a receiver that
//! fails its first attempts gets each event later, once per id; an endpoint that never answers is
//! disabled and the operator's endpoint is told; a private target is refused by default; the operator can
//! redeliver an event.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::in_process::{Billing, Stack};
use tests::webhook_receiver::WebhookReceiver as Receiver;
use tests::{Backend, assert_ledger_invariants, backend_tests, eventually};

backend_tests!(
    deliveries_are_verified_by_standardwebhooks_and_retried_until_received,
    an_endpoint_that_never_answers_is_disabled_and_the_operator_is_told,
    committed_events_are_delivered_after_billing_is_killed,
);

/// billing-svc delivering quickly: loopback targets allowed, retries after 1 s, twice.
async fn stack(backend: Backend) -> Stack {
    let billing = Billing::start(
        backend,
        &[
            "--webhook-allow-private-targets",
            "--webhook-retry-schedule-secs",
            "1,1",
            "--webhook-poll-interval-ms",
            "50",
            "--webhook-timeout-secs",
            "2",
        ],
    )
    .await;
    Stack::start_on(billing, &[]).await
}

async fn admin(stack: &Stack, method: Method, path: &str, body: Option<Value>) -> tests::Answer {
    stack
        .call(method, path, Some(&stack.billing.admin_key), body)
        .await
}

async fn deliveries_are_verified_by_standardwebhooks_and_retried_until_received(backend: Backend) {
    let stack = stack(backend).await;
    let receiver = Receiver::start(2).await;
    let (id, key) = stack.create_key("hooked", "standard").await;
    let created = stack
        .post("/billing/webhooks", &key, json!({"url": receiver.url}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let secret = created.json["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    receiver.trust(secret);
    let listed = stack.get("/billing/webhooks", &key).await;
    assert!(
        listed.json["webhooks"][0].get("secret").is_none(),
        "the secret is shown once"
    );

    for amount in [1, 2, 3] {
        stack.add_credits(&id, json!(amount)).await;
    }
    // Three events; the first two requests fail, so the first event is delivered on its third attempt.
    let delivered = receiver
        .wait_for_deliveries(3, Duration::from_secs(20))
        .await;
    assert!(delivered, "{:?}", receiver.received());
    let received = receiver.received();
    assert!(
        received.iter().all(|entry| entry["verified"] == true),
        "{received:?}"
    );
    let ok = receiver.delivered();
    let amounts: Vec<&str> = ok
        .iter()
        .map(|entry| entry["data"]["amount"].as_str().unwrap())
        .collect();
    assert_eq!(amounts, vec!["1", "2", "3"], "in order, each once");
    assert!(ok.iter().all(|entry| entry["type"] == "credits.added"));
    assert_eq!(
        received.len(),
        5,
        "two failed attempts, then one delivery per event"
    );

    // Each event shows its attempts: the first one failed twice.
    let events = stack.get("/billing/events?type=credits.added", &key).await;
    let oldest = events.json["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let attempts: Vec<bool> = oldest["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| attempt["succeeded"].as_bool().unwrap())
        .collect();
    assert_eq!(attempts, vec![false, false, true]);

    // The operator redelivers an event: the receiver gets the same id again and dedupes by it.
    let event_id = oldest["id"].as_str().unwrap();
    let again = admin(
        &stack,
        Method::POST,
        &format!("/admin/events/{event_id}/redeliver"),
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json["attempts"][0]["succeeded"], true);
    assert_eq!(
        receiver
            .received()
            .iter()
            .filter(|entry| entry["id"] == event_id)
            .count(),
        4
    );
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn an_endpoint_that_never_answers_is_disabled_and_the_operator_is_told(backend: Backend) {
    let stack = stack(backend).await;
    let operator = Receiver::start(0).await;
    let created = admin(
        &stack,
        Method::POST,
        "/admin/webhooks",
        Some(json!({"url": operator.url, "eventTypes": ["webhook.disabled"]})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    operator.trust(created.json["secret"].as_str().unwrap());

    let (id, key) = stack.create_key("dead receiver", "standard").await;
    // Nothing listens on this port: every attempt fails.
    let dead = stack
        .post(
            "/billing/webhooks",
            &key,
            json!({"url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    assert_eq!(dead.status, StatusCode::CREATED, "{}", dead.text);
    stack.add_credits(&id, json!(1)).await;
    let told = eventually(Duration::from_secs(20), || async {
        operator
            .received()
            .iter()
            .any(|entry| entry["type"] == "webhook.disabled")
    })
    .await;
    assert!(told, "{:?}", operator.received());
    let notice = operator
        .received()
        .into_iter()
        .find(|entry| entry["type"] == "webhook.disabled")
        .unwrap();
    assert_eq!(notice["verified"], true);
    assert_eq!(notice["data"]["attempts"], 3);
    let listed = stack.get("/billing/webhooks", &key).await;
    assert!(
        listed.json["webhooks"][0]["disabledAt"].is_string(),
        "{}",
        listed.text
    );
}

/// Without `WEBHOOK_ALLOW_PRIVATE_TARGETS`, an endpoint on a loopback or private address is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_targets_are_refused_by_default() {
    let stack = Stack::start(Backend::Sqlite).await;
    let (_, key) = stack.create_key("ssrf", "standard").await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/hook",
        "ftp://example.com/hook",
    ] {
        let refused = stack
            .post("/billing/webhooks", &key, json!({"url": url}))
            .await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{url}: {}",
            refused.text
        );
    }
}

/// Events committed but not yet delivered when billing-svc is killed (SIGKILL) are delivered, each once,
/// by the restarted process.
async fn committed_events_are_delivered_after_billing_is_killed(backend: Backend) {
    use proto::billing::v1 as pb;

    let args = [
        "--webhook-allow-private-targets",
        "--webhook-retry-schedule-secs",
        "1",
        "--webhook-poll-interval-ms",
        "50",
        "--webhook-timeout-secs",
        "1",
    ];
    // A process: it is killed.
    let billing = tests::Billing::start(backend, &args).await;
    let receiver = Receiver::start(1).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    let endpoint = billing
        .account()
        .await
        .create_webhook(credits_subscription(&receiver, &key))
        .await
        .unwrap()
        .into_inner();
    receiver.trust(endpoint.secret.as_deref().unwrap());
    billing.add_credits(&id, "1").await;
    billing.add_credits(&id, "2").await;
    // The first attempt fails; the retry is a second away when the process dies.
    let first_failed = eventually(Duration::from_secs(5), || async {
        !receiver.received().is_empty()
    })
    .await;
    assert!(first_failed);
    let (admin_key, service_token) = (billing.admin_key.clone(), billing.service_token.clone());
    let database = billing.stop().await;
    assert_eq!(
        receiver.received().len(),
        1,
        "nothing delivered before the kill"
    );

    let restarted = tests::Billing::start_with(database, admin_key, service_token, &args).await;
    let delivered = receiver
        .wait_for_deliveries(2, Duration::from_secs(20))
        .await;
    assert!(delivered, "{:?}", receiver.received());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ok = receiver.delivered();
    let amounts: Vec<&str> = ok
        .iter()
        .map(|entry| entry["data"]["amount"].as_str().unwrap())
        .collect();
    assert_eq!(
        amounts,
        vec!["1", "2"],
        "each committed event once, in order"
    );
    assert!(ok.iter().all(|entry| entry["verified"] == true));
    assert_ledger_invariants(&restarted.database).await;
}

/// Two billing-svc processes on one PostgreSQL database commit events out of their `seq` order: a credit
/// on the first replica inserts its event and is held there for 1.5 s (a trigger the test adds sleeps
/// after the insert), while a credit on the second replica commits at once. Deliveries keep a cursor in
/// the outbox, so an event that commits after a later one was delivered would be skipped for ever; both
/// must reach the operator's endpoint (the outbox's commit order, `events::insert_at_commit`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_committed_after_a_later_one_is_still_delivered() {
    use proto::billing::v1 as pb;
    use tests::TestDatabase;

    let args = [
        "--webhook-allow-private-targets",
        "--webhook-poll-interval-ms",
        "10",
        "--webhook-timeout-secs",
        "2",
    ];
    // Processes, as replicas are deployed: nothing but the database is shared.
    let first = tests::Billing::start(Backend::Postgres, &args).await;
    let database = TestDatabase::existing(Backend::Postgres, first.database.url.clone());
    let (admin_key, service_token) = (first.admin_key.clone(), first.service_token.clone());
    let second =
        tests::Billing::start_with(database, admin_key.clone(), service_token, &args).await;
    let receiver = Receiver::start(0).await;
    let endpoint = first
        .admin()
        .await
        .create_webhook(credits_subscription(&receiver, &admin_key))
        .await
        .unwrap()
        .into_inner();
    receiver.trust(endpoint.secret.as_deref().unwrap());
    let (slow_key, _) = first.create_key(pb::KeyType::Standard).await;
    let (fast_key, _) = first.create_key(pb::KeyType::Standard).await;
    let mut connection = first.database.connect().await.unwrap();
    let slow_account: String = sqlx::query_scalar("SELECT account_id FROM api_keys WHERE id = $1")
        .bind(&slow_key)
        .fetch_one(&mut connection)
        .await
        .unwrap();
    // The slow account's events sleep inside their insert: their `seq` is taken, the commit is not.
    for statement in [
        format!(
            "CREATE FUNCTION slow_event() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.account_id = '{slow_account}' THEN PERFORM pg_sleep(1.5); END IF; RETURN NEW; END $$"
        ),
        "CREATE TRIGGER slow_event AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION slow_event()"
            .into(),
    ] {
        sqlx::query(&statement).execute(&mut connection).await.unwrap();
    }

    let slow = async { first.add_credits(&slow_key, "1").await };
    let fast = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        second.add_credits(&fast_key, "2").await
    };
    futures::future::join(slow, fast).await;
    let both = receiver
        .wait_for_deliveries(2, Duration::from_secs(10))
        .await;
    let amounts: Vec<Value> = receiver
        .received()
        .into_iter()
        .map(|entry| entry["data"]["amount"].clone())
        .collect();
    assert!(both, "both credits delivered, got {amounts:?}");
    assert_eq!(amounts, vec![json!("1"), json!("2")], "in commit order");
    assert_ledger_invariants(&first.database).await;
}

/// A request subscribing `receiver` to `credits.added`, authorised by `secret` (an owner or the admin key).
fn credits_subscription(
    receiver: &Receiver,
    secret: &str,
) -> tonic::Request<proto::billing::v1::CreateWebhookRequest> {
    tests::authed(
        secret,
        proto::billing::v1::CreateWebhookRequest {
            url: receiver.url.clone(),
            event_types: vec!["credits.added".into()],
        },
    )
}
