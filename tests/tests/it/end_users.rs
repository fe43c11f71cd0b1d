//! End users (BILLING.md, "End users"), on both backends through the gateway: the end user a
//! call names (`user` on chat completions, responses and embeddings, `metadata.user_id` on messages, or the
//! `x-end-user-id` header, which wins) is recorded on its usage record; usage listings filter by it, the
//! stats group by it (highest cost first, sums equal to the records'), and each key's last use is the time
//! of its latest record.

use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tests::in_process::Stack;
use tests::{Backend, assert_ledger_invariants, backend_tests};

backend_tests!(every_api_records_the_end_user_and_usage_reads_group_by_it);

fn dec(value: &Value) -> Decimal {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
        .parse()
        .unwrap()
}

/// Posts `body` to `path` with `key` and, when given, `x-end-user-id`.
async fn post(
    stack: &Stack,
    path: &str,
    key: &str,
    body: Value,
    header: Option<&str>,
) -> StatusCode {
    let mut request = reqwest::Client::new()
        .request(Method::POST, stack.url(path))
        .bearer_auth(key)
        .json(&body);
    if let Some(header) = header {
        request = request.header("x-end-user-id", header);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(
        status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
        "{path}: {status} {text}"
    );
    status
}

async fn every_api_records_the_end_user_and_usage_reads_group_by_it(backend: Backend) {
    let stack = Stack::start(backend).await;
    let key = stack.funded_key("app", "50").await;
    let chat = |user: Option<&str>| {
        let mut body =
            json!({"model": "mock", "messages": [{"role": "user", "content": "hello there"}]});
        if let Some(user) = user {
            body["user"] = json!(user);
        }
        body
    };
    // Claude Code's metadata.user_id is a JSON text of ~150 characters: recorded as its SHA-256.
    let long_id = format!(
        "{{\"device_id\":\"{}\",\"session\":\"abc\"}}",
        "d".repeat(140)
    );
    let hashed = hex::encode(Sha256::digest(long_id.as_bytes()));
    let calls: Vec<(&str, Value, Option<&str>, &str)> = vec![
        ("/v1/chat/completions", chat(Some("alice")), None, "alice"),
        ("/v1/chat/completions", chat(Some("alice")), None, "alice"),
        (
            "/v1/responses",
            json!({"model": "mock", "input": "hello", "user": "bob"}),
            None,
            "bob",
        ),
        (
            "/v1/messages",
            json!({"model": "mock", "max_tokens": 50, "metadata": {"user_id": long_id},
                   "messages": [{"role": "user", "content": "hello"}]}),
            None,
            &hashed,
        ),
        // The header wins over the body.
        (
            "/v1/chat/completions",
            chat(Some("alice")),
            Some("carol"),
            "carol",
        ),
        (
            "/v1/embeddings",
            json!({"model": "text-embedding-3-small", "input": "some text", "user": "dave"}),
            None,
            "dave",
        ),
        (
            "/execute",
            json!({"prompt": "hi", "model": "mock"}),
            Some("erin"),
            "erin",
        ),
        ("/v1/chat/completions", chat(None), None, ""),
    ];
    for (path, body, header, _) in &calls {
        assert_eq!(
            post(&stack, path, &key, body.clone(), *header).await,
            StatusCode::OK
        );
    }
    // A header longer than 128 characters is refused before anything is held.
    let before = stack.get("/billing/usage", &key).await.json["records"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        post(
            &stack,
            "/v1/chat/completions",
            &key,
            chat(None),
            Some(&"x".repeat(129))
        )
        .await,
        StatusCode::BAD_REQUEST
    );

    let records = stack.get("/billing/usage", &key).await.json["records"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(records.len(), before);
    // Newest first: the records name the calls' end users in reverse order.
    let recorded: Vec<&str> = records
        .iter()
        .map(|record| record["endUserId"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = calls.iter().rev().map(|call| call.3).collect();
    assert_eq!(recorded, expected);

    // Filters: one end user, and the calls that named none.
    let alice = stack.get("/billing/usage?endUserId=alice", &key).await;
    assert_eq!(alice.json["records"].as_array().unwrap().len(), 2);
    let nobody = stack.get("/billing/usage?endUserId=", &key).await;
    let nobody = nobody.json["records"].as_array().unwrap();
    assert_eq!(nobody.len(), 1);
    assert_eq!(nobody[0]["endUserId"], "");

    // The stats by end user: one entry per end user, sums equal to the records', highest cost first.
    let stats = stack.get("/billing/stats", &key).await.json;
    let by_end_user = stats["byEndUser"].as_array().unwrap();
    assert_eq!(by_end_user.len(), 7, "{by_end_user:#?}");
    for entry in by_end_user {
        let id = entry["endUserId"].as_str().unwrap();
        let of_user: Vec<&Value> = records
            .iter()
            .filter(|record| record["endUserId"] == id)
            .collect();
        assert_eq!(entry["totals"]["requests"], json!(of_user.len()), "{id}");
        let cost: Decimal = of_user.iter().map(|record| dec(&record["totalCost"])).sum();
        assert_eq!(dec(&entry["totals"]["totalCost"]), cost, "{id}");
    }
    let costs: Vec<Decimal> = by_end_user
        .iter()
        .map(|entry| dec(&entry["totals"]["totalCost"]))
        .collect();
    assert!(costs.windows(2).all(|pair| pair[0] >= pair[1]), "{costs:?}");

    // The key's last use is its latest record's time.
    let keys = stack.get("/billing/keys", &key).await.json;
    assert_eq!(keys["keys"][0]["lastUsedAt"], records[0]["timestamp"]);
    assert_ledger_invariants(&stack.billing.database).await;
}
