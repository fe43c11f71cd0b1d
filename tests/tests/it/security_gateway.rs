//! Security through the whole stack: plain keys never at rest (database files and tables) nor in any
//! service's logs after a full journey; a key reaches nothing of another key through REST or gRPC; admin
//! routes refuse customer keys; revocation takes effect on the next call everywhere; repeated failed
//! authentication is answered 429 per client IP while keys already accepted keep working.

use proto::billing::v1 as pb;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Row;
use tests::{Answer, Backend, Billing, Stack, assert_ledger_invariants, authed};
use tonic::Code;

fn assert_status(answer: &Answer, status: StatusCode, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.text);
    if !code.is_empty() {
        assert_eq!(answer.json["code"], code, "{}", answer.text);
    }
}

/// Everything the database holds, as text: the SQLite files' bytes, or every PostgreSQL row as JSON.
async fn database_contents(billing: &Billing) -> String {
    match billing.database.backend {
        Backend::Sqlite => {
            let path = billing
                .database
                .url
                .strip_prefix("sqlite://")
                .expect("a sqlite url");
            let folder = std::path::Path::new(path).parent().expect("a folder");
            let mut text = String::new();
            for entry in std::fs::read_dir(folder).expect("read the database folder") {
                let bytes = std::fs::read(entry.expect("entry").path()).expect("read a file");
                text.push_str(&String::from_utf8_lossy(&bytes));
            }
            text
        }
        Backend::Postgres => {
            let mut connection = billing
                .database
                .connect()
                .await
                .expect("connect to the test database");
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
                 WHERE table_schema = 'public'",
            )
            .fetch_all(&mut connection)
            .await
            .expect("list tables");
            assert!(tables.iter().any(|table| table == "api_keys"), "{tables:?}");
            let mut text = String::new();
            for table in tables {
                let rows = sqlx::query(&format!(
                    "SELECT CAST(row_to_json(t) AS TEXT) FROM \"{table}\" t"
                ))
                .fetch_all(&mut connection)
                .await
                .expect("read a table");
                for row in rows {
                    text.push_str(&row.get::<String, _>(0));
                    text.push('\n');
                }
            }
            text
        }
    }
}

async fn plain_keys_never_at_rest_or_in_logs_after_a_full_journey(backend: Backend) {
    let stack = Stack::start(backend).await;
    let (id, key) = stack.create_key("journey", "standard").await;
    let (internal_id, internal) = stack.create_key("internal job", "internal").await;
    stack.add_credits(&id, json!(10)).await;
    let guessed = format!("tb_prod_{}", "ab".repeat(32));

    for body in [
        json!({"prompt": "Hello", "model": "mock"}),
        json!({"prompt": "Hello", "model": "mock", "stream": true}),
    ] {
        assert_status(
            &stack.post("/execute", &key, body.clone()).await,
            StatusCode::OK,
            "",
        );
        assert_status(
            &stack.post("/execute", &internal, body).await,
            StatusCode::OK,
            "",
        );
    }
    let chat = json!({"model": "mock", "messages": [{"role": "user", "content": "Hi"}]});
    assert_status(
        &stack.post("/v1/chat/completions", &key, chat.clone()).await,
        StatusCode::OK,
        "",
    );
    for path in [
        "/billing/account",
        "/billing/usage",
        "/billing/transactions",
        "/billing/stats",
        "/billing/workspaces",
    ] {
        assert_status(&stack.get(path, &key).await, StatusCode::OK, "");
    }
    assert_status(
        &stack.get("/billing/account", &guessed).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_status(
        &stack.post("/v1/chat/completions", &guessed, chat).await,
        StatusCode::UNAUTHORIZED,
        "",
    );
    let revoked = stack
        .call(
            Method::DELETE,
            &format!("/admin/keys/{internal_id}"),
            Some(&stack.billing.admin_key),
            None,
        )
        .await;
    assert!(revoked.status.is_success(), "{}", revoked.text);
    assert_status(
        &stack.get("/billing/account", &internal).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_status(
        &stack.get("/admin/keys", &stack.billing.admin_key).await,
        StatusCode::OK,
        "",
    );

    let secrets = [
        key.as_str(),
        internal.as_str(),
        guessed.as_str(),
        stack.billing.admin_key.as_str(),
        stack.billing.service_token.as_str(),
    ];
    let at_rest = database_contents(&stack.billing).await;
    assert!(at_rest.contains(&id), "the scan reads the ledger's data");
    let services = [
        &stack.billing.process,
        &stack.mock,
        &stack.executor,
        &stack.gateway,
    ];
    let mut lines = 0;
    for secret in secrets {
        // A key's random part alone is as secret as the whole key.
        let random_part = &secret[secret.len() - 32..];
        assert!(
            !at_rest.contains(random_part),
            "a secret is stored in the database"
        );
        for service in services {
            for line in service.logs() {
                lines += 1;
                assert!(
                    !line.contains(random_part),
                    "{} logged a secret: {line}",
                    service.name
                );
            }
        }
    }
    assert!(lines > 0, "the services logged something");
}

async fn a_key_reaches_nothing_of_another_key_through_rest_or_grpc(backend: Backend) {
    let stack = Stack::start(backend).await;
    let (a_id, a) = stack.create_key("tenant a", "standard").await;
    let (b_id, b) = stack.create_key("tenant b", "standard").await;
    stack.add_credits(&a_id, json!(10)).await;
    stack.add_credits(&b_id, json!(10)).await;
    let ran = stack
        .post("/execute", &b, json!({"prompt": "Hello", "model": "mock"}))
        .await;
    assert_status(&ran, StatusCode::OK, "");
    let b_usage = stack.get("/billing/usage", &b).await;
    let b_record = b_usage.json["records"][0].clone();
    let b_record_id = b_record["id"].as_str().expect("record id").to_string();
    let b_before = stack.get("/billing/account", &b).await.json;

    // Reads: A sees only its own (empty) history.
    let usage = stack.get("/billing/usage", &a).await;
    assert_eq!(usage.json["records"], json!([]), "{}", usage.text);
    let transactions = stack.get("/billing/transactions", &a).await;
    for transaction in transactions.json["transactions"]
        .as_array()
        .expect("a list")
    {
        assert!(!transaction.to_string().contains(&b_id), "{transaction}");
    }
    let workspaces = stack.get("/billing/workspaces", &a).await;
    assert!(
        !workspaces.text.contains(&b_record_id),
        "{}",
        workspaces.text
    );

    // Writes and admin reads on B: refused to A, as to any customer key.
    let admin_routes: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            format!("/billing/admin/{b_id}/refunds"),
            Some(json!({"usageRecordId": b_record_id})),
        ),
        (
            Method::POST,
            format!("/billing/admin/{b_id}/credits"),
            Some(json!({"amount": 1})),
        ),
        (
            Method::POST,
            format!("/billing/admin/{b_id}/adjustments"),
            Some(json!({"amount": -1, "reason": "x"})),
        ),
        (
            Method::POST,
            format!("/billing/admin/{b_id}/limits"),
            Some(json!({"dailyLimit": 0, "monthlyLimit": 0})),
        ),
        (Method::GET, format!("/billing/admin/{b_id}/stats"), None),
        (Method::DELETE, format!("/admin/keys/{b_id}"), None),
        (Method::GET, "/admin/keys".to_string(), None),
        (
            Method::POST,
            "/admin/keys".to_string(),
            Some(json!({"name": "mine", "keyType": "internal"})),
        ),
        (Method::GET, "/admin/prices".to_string(), None),
        (
            Method::POST,
            "/admin/prices".to_string(),
            Some(json!({"model": "*", "baseInputPricePer1k": 0, "baseOutputPricePer1k": 0})),
        ),
    ];
    for (method, path, body) in admin_routes {
        let answer = stack.call(method.clone(), &path, Some(&a), body).await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{method} {path} with a customer key: {}",
            answer.text
        );
    }

    // gRPC, straight at billing-svc: A can neither refund B's record nor settle in B's name.
    let refund = stack
        .billing
        .admin()
        .await
        .refund(authed(
            &a,
            pb::RefundRequest {
                usage_record_id: b_record_id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("a customer key cannot refund");
    assert_eq!(refund.code(), Code::PermissionDenied, "{refund:?}");
    let settle = stack
        .billing
        .metering()
        .await
        .settle(authed(
            &a,
            pb::SettleRequest {
                api_key_id: b_id.clone(),
                execution_id: "forged".into(),
                labels: Some(pb::Labels {
                    model: "mock".into(),
                    ..Default::default()
                }),
                input_tokens: 1_000_000,
                output_tokens: 1_000_000,
                ..Default::default()
            },
        ))
        .await
        .expect_err("a customer key cannot settle");
    assert_eq!(settle.code(), Code::PermissionDenied, "{settle:?}");
    let listed = stack
        .billing
        .account()
        .await
        .list_usage(authed(&a, pb::ListUsageRequest::default()))
        .await
        .expect("list usage")
        .into_inner();
    assert!(listed.records.is_empty(), "{listed:?}");

    let b_after = stack.get("/billing/account", &b).await.json;
    assert_eq!(b_before, b_after, "B's account is untouched");
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn revocation_takes_effect_on_the_next_call_everywhere(backend: Backend) {
    let stack = Stack::start(backend).await;
    let (id, key) = stack.create_key("soon revoked", "standard").await;
    stack.add_credits(&id, json!(10)).await;
    let run = json!({"prompt": "Hello", "model": "mock"});
    assert_status(
        &stack.post("/execute", &key, run.clone()).await,
        StatusCode::OK,
        "",
    );

    let revoked = stack
        .call(
            Method::DELETE,
            &format!("/admin/keys/{id}"),
            Some(&stack.billing.admin_key),
            None,
        )
        .await;
    assert!(revoked.status.is_success(), "{}", revoked.text);

    assert_status(
        &stack.get("/billing/account", &key).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_status(
        &stack.post("/execute", &key, run).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let chat = json!({"model": "mock", "messages": [{"role": "user", "content": "Hi"}]});
    let openai = stack.post("/v1/chat/completions", &key, chat).await;
    assert_eq!(openai.status, StatusCode::UNAUTHORIZED, "{}", openai.text);
    let grpc = stack
        .billing
        .account()
        .await
        .get_account(authed(&key, pb::GetAccountRequest {}))
        .await
        .expect_err("revoked");
    assert_eq!(grpc.code(), Code::Unauthenticated);
    let channel = tests::reliability::grpc_channel(&stack.executor.url()).await;
    let executed =
        proto::executor::v1::executor_service_client::ExecutorServiceClient::new(channel)
            .execute(authed(
                &key,
                tests::reliability::text_request("Hello", "mock", None),
            ))
            .await
            .expect_err("revoked");
    assert_eq!(executed.code(), Code::Unauthenticated);
    assert_eq!(
        tests::reliability::row_count(&stack.billing.database, "usage_records").await,
        1,
        "nothing ran after the revocation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentication_is_rate_limited_without_locking_out_accepted_keys() {
    let billing = Billing::start(Backend::Sqlite, &[]).await;
    let stack = Stack::start_on(
        billing,
        &[
            ("GATEWAY_AUTH_FAILURE_BURST", "5"),
            ("GATEWAY_AUTH_FAILURE_REFILL_PER_MIN", "6"),
        ],
    )
    .await;
    let (id, key) = stack.create_key("valid", "standard").await;
    assert_status(
        &stack.get("/billing/account", &key).await,
        StatusCode::OK,
        "",
    );

    for attempt in 0..5 {
        let guess = format!("tb_prod_{attempt:064x}");
        assert_status(
            &stack.get("/billing/account", &guess).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
    let throttled = stack
        .get("/billing/account", &format!("tb_prod_{:064x}", 99))
        .await;
    assert_status(&throttled, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let retry_after: u64 = throttled
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=11).contains(&retry_after), "{retry_after}");
    let missing = stack
        .call(Method::GET, "/billing/account", None, None)
        .await;
    assert_status(&missing, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let chat = json!({"model": "mock", "messages": [{"role": "user", "content": "Hi"}]});
    let openai = stack
        .post("/v1/chat/completions", "tb_prod_nope", chat)
        .await;
    assert_eq!(openai.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        openai.json["error"]["type"], "rate_limit_error",
        "{}",
        openai.text
    );

    // Keys already accepted, the admin key included, and unauthenticated routes are unaffected.
    assert_status(
        &stack.get("/billing/account", &key).await,
        StatusCode::OK,
        "",
    );
    assert_status(
        &stack.get("/admin/keys", &stack.billing.admin_key).await,
        StatusCode::OK,
        "",
    );
    let health = stack.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, StatusCode::OK);

    // A key revoked since it was accepted is a stranger again.
    let revoked = stack
        .call(
            Method::DELETE,
            &format!("/admin/keys/{id}"),
            Some(&stack.billing.admin_key),
            None,
        )
        .await;
    assert!(revoked.status.is_success());
    assert_status(
        &stack.get("/billing/account", &key).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_status(
        &stack.get("/billing/account", &key).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
}

tests::backend_tests!(
    plain_keys_never_at_rest_or_in_logs_after_a_full_journey,
    a_key_reaches_nothing_of_another_key_through_rest_or_grpc,
    revocation_takes_effect_on_the_next_call_everywhere,
);
