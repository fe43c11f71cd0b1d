//! OpenAI's organization Usage and Costs APIs (BILLING.md, "Usage and Costs APIs"), on both backends through
//! the gateway: real calls (chat completions with and without `user`, embeddings, two keys, two workspaces, a
//! model with a request fee) and, for every bucket width and every grouping, each bucket's figures equal the
//! sums of the usage records whose own timestamps fall in it; the costs equal the ledger's usage deductions
//! exactly; pages of one bucket follow `next_page` to the end; who may read (an owner key, the operator with
//! `accountId`) and what is refused, in OpenAI's error shape; and the official OpenAI Python SDK reads them.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tests::docs_harness::run_bash;
use tests::in_process::Stack;
use tests::{Backend, assert_ledger_invariants, backend_tests};

backend_tests!(
    usage_and_costs_equal_the_records_for_every_width_and_grouping,
    who_may_read_and_what_is_refused,
    the_official_openai_sdk_reads_usage_and_costs,
);

fn dec(value: &Value) -> Decimal {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
        .parse()
        .unwrap()
}

/// The fee-charging model's price: the seed's prices plus a fee per call.
const FEE_MODEL: &str = "fee-usage-300-20";

/// What a test reads with: an account with two owner keys and a member key.
struct Account {
    id: String,
    owner: String,
    owner_id: String,
    second: String,
    second_id: String,
    member: String,
}

async fn admin_post(stack: &Stack, path: &str, body: Value) -> Value {
    let answer = stack.post(path, &stack.billing.admin_key, body).await;
    assert!(answer.status.is_success(), "{path}: {}", answer.text);
    answer.json
}

async fn account(stack: &Stack) -> Account {
    let created = admin_post(stack, "/admin/accounts", json!({"name": "finance"})).await;
    let id = created["accountId"].as_str().unwrap().to_string();
    stack.add_credits(&id, json!(50)).await;
    let key = |role: &'static str| {
        let id = id.clone();
        async move {
            let key = admin_post(
                stack,
                "/admin/keys",
                json!({"name": role, "keyType": "standard", "accountId": id, "role": role}),
            )
            .await;
            (
                key["id"].as_str().unwrap().to_string(),
                key["key"].as_str().unwrap().to_string(),
            )
        }
    };
    let (owner_id, owner) = key("owner").await;
    let (second_id, second) = key("owner").await;
    let (_, member) = key("member").await;
    Account {
        id,
        owner,
        owner_id,
        second,
        second_id,
        member,
    }
}

/// Posts a model call with `key`, in `workspace` when given.
async fn call(stack: &Stack, key: &str, path: &str, body: Value, workspace: Option<&str>) {
    let mut request = reqwest::Client::new()
        .post(stack.url(path))
        .bearer_auth(key)
        .json(&body);
    if let Some(workspace) = workspace {
        request = request.header("x-workspace-id", workspace);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{path}: {text}");
}

/// The calls of every test: two keys, two workspaces (and none), end users (and none), three chat models
/// (one with cached tokens, one with a request fee) and embeddings. Returns every usage record.
async fn make_calls(stack: &Stack, account: &Account) -> Vec<Value> {
    admin_post(
        stack,
        "/admin/prices",
        json!({"model": FEE_MODEL, "baseInputPricePer1k": 0.01, "baseOutputPricePer1k": 0.03,
               "requestFee": 0.0005}),
    )
    .await;
    let chat = |model: &str, user: Option<&str>| {
        let mut body =
            json!({"model": model, "messages": [{"role": "user", "content": "hello there"}]});
        if let Some(user) = user {
            body["user"] = json!(user);
        }
        body
    };
    let embed = |user: Option<&str>| {
        let mut body = json!({"model": "text-embedding-3-small", "input": "some text to embed"});
        if let Some(user) = user {
            body["user"] = json!(user);
        }
        body
    };
    let (one, two) = (account.owner.as_str(), account.second.as_str());
    let calls: Vec<(&str, &str, Value, Option<&str>)> = vec![
        (
            one,
            "/v1/chat/completions",
            chat("mock", Some("alice")),
            Some("ws-a"),
        ),
        (one, "/v1/chat/completions", chat("mock", None), None),
        (
            two,
            "/v1/chat/completions",
            chat("mock", Some("bob")),
            Some("ws-b"),
        ),
        (
            two,
            "/v1/chat/completions",
            chat("mock-usage-1000-50-cached-400", Some("alice")),
            Some("ws-a"),
        ),
        (
            one,
            "/v1/chat/completions",
            chat(FEE_MODEL, Some("bob")),
            Some("ws-b"),
        ),
        (
            two,
            "/v1/chat/completions",
            chat(FEE_MODEL, None),
            Some("ws-a"),
        ),
        (one, "/v1/embeddings", embed(Some("alice")), Some("ws-a")),
        (two, "/v1/embeddings", embed(None), None),
        (
            account.member.as_str(),
            "/v1/chat/completions",
            chat("mock", Some("carol")),
            Some("ws-b"),
        ),
    ];
    for (key, path, body, workspace) in calls {
        call(stack, key, path, body, workspace).await;
    }
    let records = stack.get("/billing/usage?limit=1000", one).await;
    assert_eq!(records.status, StatusCode::OK, "{}", records.text);
    let records = records.json["records"].as_array().unwrap().clone();
    assert_eq!(records.len(), 9);
    records
}

/// A record's time in Unix milliseconds.
fn millis(record: &Value) -> i64 {
    let time: prost_types::Timestamp = record["timestamp"].as_str().unwrap().parse().unwrap();
    time.seconds * 1000 + i64::from(time.nanos / 1_000_000)
}

/// The range every query reads: from a second before the first record to a second after the last, so the
/// first and last buckets are cut to it.
fn range(records: &[Value]) -> (i64, i64) {
    let first = records.iter().map(millis).min().unwrap();
    let last = records.iter().map(millis).max().unwrap();
    (first / 1000 - 1, last / 1000 + 2)
}

/// Every bucket of a query, following `next_page` to the end; checks each page's shape.
async fn all_buckets(stack: &Stack, key: &str, path_and_query: &str) -> Vec<Value> {
    let mut buckets = Vec::new();
    let mut page: Option<String> = None;
    for _ in 0..100 {
        let url = match &page {
            Some(page) => format!("{path_and_query}&page={page}"),
            None => path_and_query.to_string(),
        };
        let answer = stack.get(&url, key).await;
        assert_eq!(answer.status, StatusCode::OK, "{url}: {}", answer.text);
        let body = answer.json;
        assert_eq!(body["object"], "page");
        buckets.extend(body["data"].as_array().unwrap().iter().cloned());
        assert_eq!(
            body["has_more"],
            json!(!body["next_page"].is_null()),
            "{body}"
        );
        match body["next_page"].as_str() {
            Some(next) => page = Some(next.to_string()),
            None => return buckets,
        }
    }
    panic!("{path_and_query}: more than 100 pages");
}

/// The value of `field` of a record as a result names it when grouped by it (`user_id`: null for none).
fn group_value(record: &Value, field: &str) -> Value {
    let value = match field {
        "model" => &record["model"],
        "api_key_id" => &record["apiKeyId"],
        "user_id" => &record["endUserId"],
        "project_id" => &record["workspaceId"],
        other => panic!("{other}"),
    };
    if field == "user_id" && value == "" {
        Value::Null
    } else {
        value.clone()
    }
}

const USAGE_FIELDS: [&str; 4] = ["model", "api_key_id", "user_id", "project_id"];

/// Checks buckets tile `[start, end)` and their results against the records each bucket holds.
fn check_buckets(
    buckets: &[Value],
    (start, end): (i64, i64),
    records: &[Value],
    expected: impl Fn(&[&Value]) -> Vec<Value>,
    label: &str,
) {
    assert_eq!(buckets[0]["start_time"], json!(start), "{label}");
    assert_eq!(buckets.last().unwrap()["end_time"], json!(end), "{label}");
    for pair in buckets.windows(2) {
        assert_eq!(pair[0]["end_time"], pair[1]["start_time"], "{label}");
    }
    let mut seen = 0;
    for bucket in buckets {
        assert_eq!(bucket["object"], "bucket");
        let (from, to) = (
            bucket["start_time"].as_i64().unwrap() * 1000,
            bucket["end_time"].as_i64().unwrap() * 1000,
        );
        let inside: Vec<&Value> = records
            .iter()
            .filter(|record| (from..to).contains(&millis(record)))
            .collect();
        seen += inside.len();
        assert_eq!(
            bucket["results"].as_array().unwrap(),
            &expected(&inside),
            "{label}: bucket {from}"
        );
    }
    assert_eq!(seen, records.len(), "{label}: every record in a bucket");
}

/// The results a usage report should give for `records`, grouped by `groups`, in the order of their
/// grouped values (model, key, end user, workspace).
fn usage_results(records: &[&Value], groups: &[&str], embeddings: bool) -> Vec<Value> {
    let mut by_group: BTreeMap<Vec<String>, Vec<&Value>> = BTreeMap::new();
    for record in records {
        let is_embedding = record["endpoint"] == "/v1/embeddings";
        if is_embedding != embeddings {
            continue;
        }
        // The order billing-svc sorts by: model, key, end user ("" first), workspace.
        let sort_key = USAGE_FIELDS
            .iter()
            .filter(|field| groups.contains(field))
            .map(|field| match group_value(record, field) {
                Value::Null => String::new(),
                value => value.as_str().unwrap().to_string(),
            })
            .collect();
        by_group.entry(sort_key).or_default().push(record);
    }
    by_group
        .values()
        .map(|group| {
            let sum = |field: &str| -> u64 {
                group
                    .iter()
                    .map(|record| record[field].as_u64().unwrap())
                    .sum()
            };
            let named = |field: &str| {
                if groups.contains(&field) {
                    group_value(group[0], field)
                } else {
                    Value::Null
                }
            };
            let mut result = if embeddings {
                json!({"object": "organization.usage.embeddings.result",
                       "input_tokens": sum("inputTokens"), "num_model_requests": group.len()})
            } else {
                json!({"object": "organization.usage.completions.result",
                       "input_tokens": sum("inputTokens"), "output_tokens": sum("outputTokens"),
                       "input_cached_tokens": sum("cachedInputTokens"),
                       "input_audio_tokens": sum("audioInputTokens"),
                       "output_audio_tokens": sum("audioOutputTokens"),
                       "num_model_requests": group.len(), "batch": null})
            };
            for field in USAGE_FIELDS {
                result[field] = named(field);
            }
            result
        })
        .collect()
}

/// The results the costs report should give for `records`, grouped by `groups` (line items per model:
/// input, output, and the request fee when there is one).
fn cost_results(records: &[&Value], groups: &[&str]) -> Vec<Value> {
    let line_items = groups.contains(&"line_item");
    let mut by_group: BTreeMap<Vec<String>, Vec<&Value>> = BTreeMap::new();
    for record in records {
        let mut sort_key = Vec::new();
        if line_items {
            sort_key.push(record["model"].as_str().unwrap().to_string());
        }
        for field in ["api_key_id", "project_id"] {
            if groups.contains(&field) {
                sort_key.push(group_value(record, field).as_str().unwrap().to_string());
            }
        }
        by_group.entry(sort_key).or_default().push(record);
    }
    let mut results = Vec::new();
    for group in by_group.values() {
        let sum = |field: &str| -> Decimal { group.iter().map(|record| dec(&record[field])).sum() };
        let named = |field: &str| {
            if groups.contains(&field) {
                group_value(group[0], field)
            } else {
                Value::Null
            }
        };
        let result = |amount: Decimal, line_item: Value| {
            json!({"object": "organization.costs.result",
                   "amount": {"value": number(amount), "currency": "usd"}, "line_item": line_item,
                   "project_id": named("project_id"), "api_key_id": named("api_key_id")})
        };
        if line_items {
            let model = group[0]["model"].as_str().unwrap();
            results.push(result(sum("inputCost"), json!(format!("{model}, input"))));
            results.push(result(sum("outputCost"), json!(format!("{model}, output"))));
            let fees = sum("requestFee");
            if !fees.is_zero() {
                results.push(result(fees, json!(format!("{model}, request fee"))));
            }
        } else {
            results.push(result(sum("charged"), Value::Null));
        }
    }
    results
}

/// `amount` as an exact JSON number.
fn number(amount: Decimal) -> Value {
    serde_json::from_str(&amount.to_string()).unwrap()
}

/// JSON numbers compared as decimals: `0.0150` and `0.015` are one amount.
fn normalise(value: &Value) -> Value {
    match value {
        Value::Number(_) => json!(dec(value).normalize().to_string()),
        Value::Array(items) => Value::Array(items.iter().map(normalise).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), normalise(value)))
                .collect(),
        ),
        other => other.clone(),
    }
}

async fn usage_and_costs_equal_the_records_for_every_width_and_grouping(backend: Backend) {
    let stack = Stack::start(backend).await;
    let account = account(&stack).await;
    let records = make_calls(&stack, &account).await;
    // Every record of a standard key charged its total cost, which is its input, output and fee.
    for record in &records {
        assert_eq!(dec(&record["charged"]), dec(&record["totalCost"]));
        assert_eq!(
            dec(&record["totalCost"]),
            dec(&record["inputCost"]) + dec(&record["outputCost"]) + dec(&record["requestFee"])
        );
    }
    assert!(
        records
            .iter()
            .any(|record| dec(&record["requestFee"]) > Decimal::ZERO)
    );
    assert!(
        records
            .iter()
            .any(|record| record["cachedInputTokens"] == 400)
    );
    let (start, end) = range(&records);
    let key = &account.owner;

    for width in ["1m", "1h", "1d"] {
        let base = format!("start_time={start}&end_time={end}&bucket_width={width}");
        let groupings: [&[&str]; 6] = [
            &[],
            &["model"],
            &["api_key_id"],
            &["user_id"],
            &["project_id"],
            &["model", "api_key_id", "user_id", "project_id"],
        ];
        for groups in groupings {
            // Lists both ways: repeated, and with brackets.
            let group_query: String = groups
                .iter()
                .enumerate()
                .map(|(index, group)| {
                    let name = if index % 2 == 0 {
                        "group_by"
                    } else {
                        "group_by[]"
                    };
                    format!("&{name}={group}")
                })
                .collect();
            for (path, embeddings) in [
                ("/v1/organization/usage/completions", false),
                ("/v1/organization/usage/embeddings", true),
            ] {
                let url = format!("{path}?{base}{group_query}");
                let buckets = all_buckets(&stack, key, &url).await;
                check_buckets(
                    &buckets,
                    (start, end),
                    &records,
                    |inside| usage_results(inside, groups, embeddings),
                    &url,
                );
                // One bucket per page gives the same buckets.
                let paged = all_buckets(&stack, key, &format!("{url}&limit=1")).await;
                assert_eq!(paged, buckets, "{url}");
            }
        }
        let cost_groupings: [&[&str]; 5] = [
            &[],
            &["line_item"],
            &["project_id"],
            &["api_key_id"],
            &["line_item", "api_key_id", "project_id"],
        ];
        let mut totals = Vec::new();
        for groups in cost_groupings {
            let group_query: String = groups
                .iter()
                .map(|group| format!("&group_by={group}"))
                .collect();
            let url = format!("/v1/organization/costs?{base}{group_query}");
            let buckets = all_buckets(&stack, key, &url).await;
            let normalised: Vec<Value> = buckets
                .iter()
                .map(|bucket| {
                    let mut bucket = bucket.clone();
                    bucket["results"] = normalise(&bucket["results"]);
                    bucket
                })
                .collect();
            check_buckets(
                &normalised,
                (start, end),
                &records,
                |inside| cost_results(inside, groups).iter().map(normalise).collect(),
                &url,
            );
            let total: Decimal = buckets
                .iter()
                .flat_map(|bucket| bucket["results"].as_array().unwrap().iter())
                .map(|result| dec(&result["amount"]["value"]))
                .sum();
            totals.push(total);
        }
        // Every grouping adds up to one total: what the ledger's usage deductions took, exactly.
        let deductions = stack
            .get("/billing/transactions?type=usage_deduction&limit=1000", key)
            .await;
        let deducted: Decimal = deductions.json["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| -dec(&row["amount"]))
            .sum();
        assert!(deducted > Decimal::ZERO);
        assert!(
            totals.iter().all(|total| *total == deducted),
            "{width}: {totals:?} vs {deducted}"
        );
    }

    // Filters: one model, one key, one end user, one workspace.
    let base = format!("start_time={start}&end_time={end}");
    let filtered = |query: &str| format!("/v1/organization/usage/completions?{base}&{query}");
    for (query, field, allowed) in [
        (
            "models=mock&models[]=text-embedding-3-small".to_string(),
            "model",
            vec!["mock", "text-embedding-3-small"],
        ),
        (
            format!("api_key_ids={}", account.second_id),
            "apiKeyId",
            vec![account.second_id.as_str()],
        ),
        (
            "user_ids[]=alice&user_ids[]=carol".to_string(),
            "endUserId",
            vec!["alice", "carol"],
        ),
        ("project_ids=ws-b".to_string(), "workspaceId", vec!["ws-b"]),
    ] {
        let url = filtered(&query);
        let buckets = all_buckets(&stack, key, &url).await;
        let kept: Vec<Value> = records
            .iter()
            .filter(|record| allowed.iter().any(|value| record[field] == *value))
            .cloned()
            .collect();
        check_buckets(
            &buckets,
            (start, end),
            &kept,
            |inside| usage_results(inside, &[], false),
            &url,
        );
    }
    let costs = all_buckets(
        &stack,
        key,
        &format!(
            "/v1/organization/costs?{base}&project_ids=ws-a&api_key_ids={}",
            account.owner_id
        ),
    )
    .await;
    let expected: Decimal = records
        .iter()
        .filter(|record| {
            record["workspaceId"] == "ws-a" && record["apiKeyId"] == account.owner_id.as_str()
        })
        .map(|record| dec(&record["charged"]))
        .sum();
    let got: Decimal = costs
        .iter()
        .flat_map(|bucket| bucket["results"].as_array().unwrap().iter())
        .map(|result| dec(&result["amount"]["value"]))
        .sum();
    assert_eq!(got, expected);

    // Without end_time the range ends now; 1m buckets from ten minutes before: empty ones included.
    let recent = all_buckets(
        &stack,
        key,
        &format!(
            "/v1/organization/usage/completions?start_time={}&bucket_width=1m&limit=3",
            start - 600
        ),
    )
    .await;
    assert!(recent.len() >= 11, "{}", recent.len());
    assert!(recent.iter().any(|bucket| bucket["results"] == json!([])));
    let requests: u64 = recent
        .iter()
        .flat_map(|bucket| bucket["results"].as_array().unwrap().iter())
        .map(|result| result["num_model_requests"].as_u64().unwrap())
        .sum();
    assert_eq!(requests, 7);
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn who_may_read_and_what_is_refused(backend: Backend) {
    let stack = Stack::start(backend).await;
    let account = account(&stack).await;
    let records = make_calls(&stack, &account).await;
    let (start, end) = range(&records);
    let query = format!("start_time={start}&end_time={end}&group_by=model");
    let path = format!("/v1/organization/usage/completions?{query}");
    let owner = stack.get(&path, &account.owner).await;
    assert_eq!(owner.status, StatusCode::OK, "{}", owner.text);

    // The operator reads the same with the account's id, or one of its keys' ids.
    let admin = &stack.billing.admin_key;
    for id in [&account.id, &account.owner_id] {
        let operator = stack.get(&format!("{path}&accountId={id}"), admin).await;
        assert_eq!(operator.status, StatusCode::OK, "{}", operator.text);
        assert_eq!(operator.json, owner.json);
    }
    // Another account's owner sees only its own (nothing).
    let other = stack.funded_key("other", "1").await;
    let elsewhere = stack.get(&path, &other).await;
    assert_eq!(elsewhere.status, StatusCode::OK);
    assert!(
        elsewhere.json["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|bucket| bucket["results"] == json!([]))
    );

    // Refusals, in OpenAI's error shape.
    let refusals: Vec<(String, &str, StatusCode, &str)> = vec![
        (
            path.clone(),
            account.member.as_str(),
            StatusCode::FORBIDDEN,
            "permission_error",
        ),
        (
            format!("{path}&accountId={}", account.id),
            account.owner.as_str(),
            StatusCode::FORBIDDEN,
            "permission_error",
        ),
        (
            path.clone(),
            admin.as_str(),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            format!("{path}&accountId=00000000-0000-0000-0000-000000000000"),
            admin.as_str(),
            StatusCode::NOT_FOUND,
            "invalid_request_error",
        ),
        (
            path.clone(),
            "tb_not_a_key",
            StatusCode::UNAUTHORIZED,
            "authentication_error",
        ),
        (
            format!("{path}&bucket_width=1w"),
            account.owner.as_str(),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            "/v1/organization/usage/completions?bucket_width=1d".to_string(),
            account.owner.as_str(),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            format!("{path}&bucket_width=1h&limit=169"),
            account.owner.as_str(),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            format!("{path}&limit=0"),
            account.owner.as_str(),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            format!("{path}&page=page_1"),
            account.owner.as_str(),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            format!("/v1/organization/usage/completions?start_time={end}&end_time={start}"),
            account.owner.as_str(),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            format!("/v1/organization/usage/completions?{query}&group_by=line_item"),
            account.owner.as_str(),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            format!("/v1/organization/costs?start_time={start}&group_by=model"),
            account.owner.as_str(),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            format!("/v1/organization/costs?start_time={start}&bucket_width=1d&limit=181"),
            account.owner.as_str(),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
    ];
    for (url, key, status, kind) in refusals {
        let answer = stack.get(&url, key).await;
        assert_eq!(answer.status, status, "{url}: {}", answer.text);
        assert_eq!(answer.json["error"]["type"], kind, "{url}: {}", answer.text);
        assert!(answer.json["error"]["message"].is_string(), "{url}");
    }
    // The costs API takes up to 180 days a page.
    let long = stack
        .get(
            &format!("/v1/organization/costs?start_time={start}&limit=180"),
            &account.owner,
        )
        .await;
    assert_eq!(long.status, StatusCode::OK, "{}", long.text);
    assert_ledger_invariants(&stack.billing.database).await;
}

/// The official OpenAI Python SDK (the docs venv's): the owner's key as its admin key, and the operator's
/// with `accountId` as an extra query parameter.
const SDK_SCRIPT: &str = r#"
import json, os
from decimal import Decimal
from openai import OpenAI
def read(key, extra):
    client = OpenAI(base_url=os.environ["BASE_URL"], admin_api_key=key, api_key=key, max_retries=0)
    usage = client.admin.organization.usage
    start, end = int(os.environ["START"]), int(os.environ["END"])
    completions = usage.completions(start_time=start, end_time=end, bucket_width="1h",
                                    group_by=["model", "user_id"], extra_query=extra)
    embeddings = usage.embeddings(start_time=start, end_time=end, extra_query=extra)
    costs = usage.costs(start_time=start, end_time=end, group_by=["line_item"], extra_query=extra)
    results = [result for bucket in completions.data for result in bucket.results]
    cost = sum((Decimal(repr(result.amount.value)) for bucket in costs.data for result in bucket.results),
               Decimal(0))
    return {
        "requests": sum(result.num_model_requests for result in results),
        "input": sum(result.input_tokens for result in results),
        "groups": sorted({(result.model, result.user_id or "") for result in results}),
        "embeddings": sum(result.num_model_requests for bucket in embeddings.data for result in bucket.results),
        "cost": str(cost),
        "line_items": sorted({result.line_item for bucket in costs.data for result in bucket.results}),
    }
print(json.dumps({"owner": read(os.environ["OWNER"], None),
                  "operator": read(os.environ["ADMIN"], {"accountId": os.environ["ACCOUNT"]})}))
"#;

async fn the_official_openai_sdk_reads_usage_and_costs(backend: Backend) {
    let stack = Stack::start(backend).await;
    let account = account(&stack).await;
    let records = make_calls(&stack, &account).await;
    let (start, end) = range(&records);
    let dir = tempfile::tempdir().unwrap();
    let script = format!("python3 - <<'PY'\n{SDK_SCRIPT}\nPY");
    let base_url = stack.url("/v1");
    let (start, end) = (start.to_string(), end.to_string());
    let output = run_bash(
        &script,
        dir.path(),
        &[
            ("BASE_URL", base_url.as_str()),
            ("OWNER", account.owner.as_str()),
            ("ADMIN", stack.billing.admin_key.as_str()),
            ("ACCOUNT", account.id.as_str()),
            ("START", start.as_str()),
            ("END", end.as_str()),
        ],
    )
    .await;
    output.assert_success("the OpenAI SDK script");
    let result: Value = serde_json::from_str(output.stdout.trim()).unwrap();
    assert_eq!(result["owner"], result["operator"]);
    let read = &result["owner"];
    let chats: Vec<&Value> = records
        .iter()
        .filter(|record| record["endpoint"] != "/v1/embeddings")
        .collect();
    assert_eq!(read["requests"], json!(chats.len()));
    assert_eq!(
        read["input"],
        json!(
            chats
                .iter()
                .map(|record| record["inputTokens"].as_u64().unwrap())
                .sum::<u64>()
        )
    );
    let mut groups: Vec<Value> = chats
        .iter()
        .map(|record| json!([record["model"], record["endUserId"]]))
        .collect();
    groups.sort_by_key(Value::to_string);
    groups.dedup();
    let mut read_groups = read["groups"].as_array().unwrap().clone();
    read_groups.sort_by_key(Value::to_string);
    assert_eq!(read_groups, groups);
    assert_eq!(read["embeddings"], 2);
    let charged: Decimal = records.iter().map(|record| dec(&record["charged"])).sum();
    assert_eq!(dec(&read["cost"]), charged);
    assert!(
        read["line_items"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("{FEE_MODEL}, request fee")))
    );
}
