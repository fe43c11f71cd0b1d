//! gateway tests: the public REST API end to end (billing-svc, mock-model, executor-svc and the gateway
//! in the test process), on SQLite and PostgreSQL; in [`processes`], what needs the services as processes
//! (a request id in executor-svc's logs, SIGTERM).
//!
//! The mock model reports exactly the usage a model name asks for: `mock-usage-6548-108` is the seed's
//! example of BILLING.md, "Rounding and the cost of a call" (6,548 input and 108 output tokens, 0.10308 USD
//! at the seed prices).

use std::collections::BTreeSet;
use std::str::FromStr;

use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tests::in_process::Stack;
use tests::{Answer, Backend, assert_ledger_invariants, backend_tests};

const SEED_MODEL: &str = "mock-usage-6548-108";

/// A JSON number as an exact decimal; panics on anything but a number.
fn usd(value: &Value) -> Decimal {
    assert!(value.is_number(), "{value} is not a JSON number");
    Decimal::from_str_exact(&value.to_string()).unwrap_or_else(|e| panic!("{value}: {e}"))
}

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

fn assert_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.text);
    assert_eq!(answer.json["code"], code, "{}", answer.text);
    assert!(
        answer.json["error"].is_string() && answer.json["details"].is_object(),
        "{}",
        answer.text
    );
}

/// The reference execution's `usage`, exactly as BILLING.md ("Rounding and the cost of a call") gives it.
const SEED_USAGE: &str = r#""usage":{"inputTokens":6548,"outputTokens":108,"totalTokens":6656,"inputCost":0.09822,"outputCost":0.00486,"totalCost":0.10308}"#;

async fn seed_figures_are_exact_through_rest(backend: Backend) {
    let stack = Stack::start(backend).await;
    let (standard_id, standard) = stack.create_key("standard", "standard").await;
    let (_, internal) = stack.create_key("internal", "internal").await;
    let credited = stack.add_credits(&standard_id, json!(10)).await;
    assert_eq!(usd(&credited.json["account"]["creditsBalance"]), dec("10"));

    let run = stack
        .post(
            "/execute",
            &standard,
            json!({"prompt": "Summarise.", "model": SEED_MODEL}),
        )
        .await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text);
    assert!(run.text.contains(SEED_USAGE), "{}", run.text);
    assert!(
        run.text
            .contains(r#""billing":{"balanceAfter":9.89692,"totalSpent":0.10308}"#),
        "{}",
        run.text
    );
    assert!(run.json["output"].is_string());
    assert_eq!(run.json["finishReason"], "stop");

    let internal_run = stack
        .post(
            "/execute",
            &internal,
            json!({"prompt": "Summarise.", "model": SEED_MODEL}),
        )
        .await;
    assert_eq!(internal_run.status, StatusCode::OK, "{}", internal_run.text);
    assert!(
        internal_run.text.contains(SEED_USAGE),
        "{}",
        internal_run.text
    );
    assert!(
        internal_run.json.get("billing").is_none(),
        "{}",
        internal_run.text
    );

    let account = stack.get("/billing/account", &standard).await;
    assert!(
        account.text.contains(r#""creditsBalance":9.89692"#),
        "{}",
        account.text
    );
    assert!(
        account.text.contains(r#""totalSpent":0.10308"#),
        "{}",
        account.text
    );

    let (_, empty) = stack.create_key("empty", "standard").await;
    let refused = stack
        .post(
            "/execute",
            &empty,
            json!({"prompt": "Hello", "model": SEED_MODEL}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(
        refused.text,
        r#"{"error":"Insufficient Credits","code":"insufficient_credits","details":{"currentBalance":0}}"#
    );
    assert_ledger_invariants(&stack.billing.database).await;
}

/// Creates a key through `POST /admin/keys` and checks what the answer shows: every field, the plain key
/// among them (the only time it is shown).
async fn create_key_shown_once(stack: &Stack, name: &str) -> (String, String) {
    let created = stack
        .post(
            "/admin/keys",
            &stack.billing.admin_key,
            json!({"name": name, "keyType": "standard"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    for field in [
        "id",
        "name",
        "keyType",
        "prefix",
        "hint",
        "createdAt",
        "key",
        "account",
    ] {
        assert!(
            created.json.get(field).is_some(),
            "{field} missing: {}",
            created.text
        );
    }
    assert_eq!(created.json["keyType"], "standard");
    (
        created.json["id"].as_str().unwrap().to_string(),
        created.json["key"].as_str().unwrap().to_string(),
    )
}

/// Runs the seed's reference execution (0.10308 USD) through `/execute`, not streamed; the answer.
async fn execute_seed(stack: &Stack, key: &str) -> Answer {
    let run = stack
        .post(
            "/execute",
            key,
            json!({"prompt": "Summarise.", "model": SEED_MODEL}),
        )
        .await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text);
    run
}

/// Keys of both types; the plain key is shown once, the listing never shows it; the admin routes need
/// the admin key (a customer key is 403, no key or an unknown one 401).
async fn keys_are_shown_once_and_admin_routes_need_the_admin_key(backend: Backend) {
    let stack = Stack::start(backend).await;
    let admin = stack.billing.admin_key.clone();

    let (_, alice) = create_key_shown_once(&stack, "alice").await;
    assert!(alice.starts_with("tb_prod_"), "{alice}");
    let (_, internal) = stack.create_key("ops", "internal").await;
    assert!(internal.starts_with("tb_internal_"), "{internal}");
    stack.create_key("bob", "standard").await;
    let listed = stack.get("/admin/keys", &admin).await;
    assert_eq!(
        listed.json["keys"].as_array().unwrap().len(),
        3,
        "{}",
        listed.text
    );
    assert!(
        !listed.text.contains(&alice),
        "the listing leaks a plain key"
    );

    assert_error(&stack.get("/admin/keys", &alice).await, 403, "forbidden");
    assert_error(
        &stack.call(Method::GET, "/admin/keys", None, None).await,
        401,
        "unauthorized",
    );
    assert_error(
        &stack.get("/billing/account", "tb_prod_unknown").await,
        401,
        "unauthorized",
    );
    assert_ledger_invariants(&stack.billing.database).await;
}

/// Credits: a number or a string, exact; the idempotency key makes a retry harmless and a different
/// amount under it a conflict; more than nine decimals, or an array for the body, is refused.
async fn credits_are_exact_and_a_retried_top_up_is_applied_once(backend: Backend) {
    let stack = Stack::start(backend).await;
    let admin = stack.billing.admin_key.clone();
    let (alice_id, _) = stack.create_key("alice", "standard").await;
    let (bob_id, _) = stack.create_key("bob", "standard").await;

    let body =
        json!({"amount": "10.000000000", "description": "top-up", "idempotencyKey": "topup-1"});
    let first = stack
        .post(
            &format!("/billing/admin/{alice_id}/credits"),
            &admin,
            body.clone(),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.json["transaction"]["type"], "credit_purchase");
    let retry = stack
        .post(&format!("/billing/admin/{alice_id}/credits"), &admin, body)
        .await;
    assert_eq!(
        retry.json["transaction"]["id"], first.json["transaction"]["id"],
        "{}",
        retry.text
    );
    let conflict = stack
        .post(
            &format!("/billing/admin/{alice_id}/credits"),
            &admin,
            json!({"amount": 5, "idempotencyKey": "topup-1"}),
        )
        .await;
    assert_error(&conflict, 409, "already_exists");
    let too_precise = stack
        .post(
            &format!("/billing/admin/{alice_id}/credits"),
            &admin,
            json!({"amount": "0.0000000001"}),
        )
        .await;
    assert_error(&too_precise, 422, "invalid_body");
    // An array is not an object, though serde would read it as the fields in order (schemathesis found
    // `["x"]` creating an account named "x").
    let positional = stack
        .post(
            &format!("/billing/admin/{alice_id}/credits"),
            &admin,
            json!(["5"]),
        )
        .await;
    assert_error(&positional, 422, "invalid_body");
    stack.add_credits(&bob_id, json!(1)).await;
    assert_ledger_invariants(&stack.billing.database).await;
}

/// Each way of calling a model reports what the call cost and the balance after it: `/execute` unary and
/// streamed (deltas, one result, done), chat completions with the billing in headers and, streamed, in the
/// usage chunk; an internal key's call has usage but no billing.
async fn every_execution_api_reports_its_billing(backend: Backend) {
    let stack = Stack::start(backend).await;
    let alice = stack.funded_key("alice", "10").await;
    let (_, internal) = stack.create_key("ops", "internal").await;

    let run = execute_seed(&stack, &alice).await;
    assert_eq!(usd(&run.json["billing"]["balanceAfter"]), dec("9.89692"));

    let streamed = stack
        .post(
            "/execute",
            &alice,
            json!({"prompt": "Tell me more.", "model": SEED_MODEL, "stream": true}),
        )
        .await;
    assert_eq!(streamed.status, StatusCode::OK, "{}", streamed.text);
    assert!(
        streamed
            .header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = streamed.events();
    let names: Vec<_> = events
        .iter()
        .map(|e| e.event.clone().unwrap_or_default())
        .collect();
    assert!(
        names.len() >= 3 && names[..names.len() - 2].iter().all(|n| n == "delta"),
        "{names:?}"
    );
    assert_eq!(&names[names.len() - 2..], ["result", "done"]);
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let text: String = events[..events.len() - 2]
        .iter()
        .map(|e| e.json()["delta"].as_str().unwrap().to_string())
        .collect();
    assert!(!text.is_empty());
    let result = events[events.len() - 2].json();
    assert_eq!(usd(&result["usage"]["totalCost"]), dec("0.10308"));
    assert_eq!(usd(&result["billing"]["balanceAfter"]), dec("9.79384"));
    assert!(
        events[events.len() - 2]
            .data
            .contains(r#""balanceAfter":9.79384"#)
    );

    let chat = stack
        .post(
            "/v1/chat/completions",
            &alice,
            json!({"model": SEED_MODEL, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(chat.status, StatusCode::OK, "{}", chat.text);
    assert_eq!(chat.json["object"], "chat.completion");
    assert_eq!(chat.json["choices"][0]["message"]["role"], "assistant");
    assert_eq!(chat.json["choices"][0]["finish_reason"], "stop");
    assert_eq!(chat.json["usage"]["prompt_tokens"], 6548);
    assert_eq!(chat.json["usage"]["completion_tokens"], 108);
    assert_eq!(chat.json["usage"]["total_tokens"], 6656);
    assert_eq!(chat.header("x-billing-cost"), Some("0.10308"));
    assert_eq!(chat.header("x-billing-balance-after"), Some("9.69076"));
    assert_eq!(chat.header("x-billing-total-spent"), Some("0.30924"));

    let chat_stream = stack
        .post(
            "/v1/chat/completions",
            &alice,
            json!({"model": SEED_MODEL, "stream": true, "stream_options": {"include_usage": true},
                   "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(chat_stream.status, StatusCode::OK, "{}", chat_stream.text);
    let chunks = chat_stream.events();
    assert_eq!(chunks.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = chunks[..chunks.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk"),
        "{chunks:?}"
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], 6548);
    assert_eq!(
        usd(&usage_chunk["billing"]["balance_after"]),
        dec("9.58768")
    );
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "stop"
    );

    let internal_chat = stack
        .post(
            "/v1/chat/completions",
            &internal,
            json!({"model": SEED_MODEL, "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(
        internal_chat.status,
        StatusCode::OK,
        "{}",
        internal_chat.text
    );
    assert!(internal_chat.header("x-billing-balance-after").is_none());
    assert_ledger_invariants(&stack.billing.database).await;
}

/// The account, stats, usage pages and filters, transactions and workspaces after four calls of 0.10308
/// USD on 10 USD bought (one on `/execute` in workspace `ws-a`, one streamed, two chat completions); an
/// internal key's call is not the account's.
async fn usage_reads_page_filter_and_total_an_accounts_calls(backend: Backend) {
    let stack = Stack::start(backend).await;
    let admin = stack.billing.admin_key.clone();
    let (alice_id, alice) = stack.create_key("alice", "standard").await;
    stack.add_credits(&alice_id, json!("10.000000000")).await;
    let (_, internal) = stack.create_key("ops", "internal").await;
    let calls = [
        (
            "/execute",
            json!({"prompt": "Summarise.", "model": SEED_MODEL, "workspaceId": "ws-a", "sessionId": "s-1"}),
        ),
        (
            "/execute",
            json!({"prompt": "Tell me more.", "model": SEED_MODEL, "stream": true}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": SEED_MODEL, "messages": [{"role": "user", "content": "Hi"}]}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": SEED_MODEL, "stream": true, "stream_options": {"include_usage": true},
                   "messages": [{"role": "user", "content": "Hi"}]}),
        ),
    ];
    for (path, body) in calls {
        let answer = stack.post(path, &alice, body).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }
    let internal_chat = stack
        .post(
            "/v1/chat/completions",
            &internal,
            json!({"model": SEED_MODEL, "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(
        internal_chat.status,
        StatusCode::OK,
        "{}",
        internal_chat.text
    );

    let account = stack.get("/billing/account", &alice).await;
    assert_eq!(
        usd(&account.json["creditsBalance"]),
        dec("9.58768"),
        "{}",
        account.text
    );
    assert_eq!(usd(&account.json["totalSpent"]), dec("0.41232"));
    assert_eq!(usd(&account.json["heldCredits"]), dec("0"));
    assert_eq!(account.json["keyType"], "standard");

    let stats = stack.get("/billing/stats", &alice).await;
    assert_eq!(stats.json["totals"]["requests"], 4, "{}", stats.text);
    assert_eq!(usd(&stats.json["totals"]["totalCost"]), dec("0.41232"));
    assert_eq!(stats.json["byModel"][0]["model"], SEED_MODEL);
    assert_eq!(stats.json["today"]["requests"], 4);

    let page_one = stack.get("/billing/usage?limit=3", &alice).await;
    assert_eq!(
        page_one.json["records"].as_array().unwrap().len(),
        3,
        "{}",
        page_one.text
    );
    let cursor = page_one.json["nextCursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let page_two = stack
        .get(&format!("/billing/usage?limit=3&cursor={cursor}"), &alice)
        .await;
    assert_eq!(
        page_two.json["records"].as_array().unwrap().len(),
        1,
        "{}",
        page_two.text
    );
    assert!(page_two.json["nextCursor"].is_null());
    let ids: BTreeSet<_> = page_one.json["records"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page_two.json["records"].as_array().unwrap())
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 4, "pages overlap");
    let by_workspace = stack.get("/billing/usage?workspaceId=ws-a", &alice).await;
    assert_eq!(
        by_workspace.json["records"].as_array().unwrap().len(),
        1,
        "{}",
        by_workspace.text
    );
    assert_eq!(by_workspace.json["records"][0]["endpoint"], "/execute");
    assert_eq!(by_workspace.json["records"][0]["sessionId"], "s-1");
    let by_model = stack.get("/billing/usage?model=other", &alice).await;
    assert_eq!(by_model.json["records"], json!([]));
    let future = stack
        .get("/billing/usage?from=2999-01-01T00:00:00Z", &alice)
        .await;
    assert_eq!(future.json["records"], json!([]), "{}", future.text);
    let bad_from = stack.get("/billing/usage?from=yesterday", &alice).await;
    assert_error(&bad_from, 400, "invalid_request");

    let deductions = stack
        .get("/billing/transactions?type=usage_deduction", &alice)
        .await;
    assert_eq!(
        deductions.json["transactions"].as_array().unwrap().len(),
        4,
        "{}",
        deductions.text
    );
    let purchases = stack
        .get("/billing/transactions?type=credit_purchase", &alice)
        .await;
    assert_eq!(
        purchases.json["transactions"].as_array().unwrap().len(),
        1,
        "{}",
        purchases.text
    );
    assert_eq!(usd(&purchases.json["transactions"][0]["amount"]), dec("10"));

    let workspaces = stack.get("/billing/workspaces", &alice).await;
    let ws_a = workspaces.json["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["workspaceId"] == "ws-a")
        .unwrap_or_else(|| panic!("no ws-a: {}", workspaces.text));
    assert_eq!(ws_a["totals"]["requests"], 1);

    let admin_stats = stack
        .get(&format!("/billing/admin/{alice_id}/stats"), &admin)
        .await;
    assert_eq!(
        admin_stats.json["totals"]["requests"], 4,
        "{}",
        admin_stats.text
    );
    assert_ledger_invariants(&stack.billing.database).await;
}

/// Refunds: part of a usage record back (10 - 0.10308 + 0.1), then more than is left of it is refused;
/// another key's record is not found, nor an unknown account.
async fn a_refund_returns_part_of_a_record_and_never_more_than_it(backend: Backend) {
    let stack = Stack::start(backend).await;
    let admin = stack.billing.admin_key.clone();
    let (alice_id, alice) = stack.create_key("alice", "standard").await;
    stack.add_credits(&alice_id, json!(10)).await;
    let (bob_id, _) = stack.create_key("bob", "standard").await;
    execute_seed(&stack, &alice).await;
    let usage = stack.get("/billing/usage", &alice).await;
    let record_id = usage.json["records"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no usage record: {}", usage.text))
        .to_string();

    let refund = stack
        .post(
            &format!("/billing/admin/{alice_id}/refunds"),
            &admin,
            json!({"usageRecordId": record_id, "amount": 0.1}),
        )
        .await;
    assert_eq!(refund.status, StatusCode::OK, "{}", refund.text);
    assert_eq!(
        usd(&refund.json["account"]["creditsBalance"]),
        dec("9.99692")
    );
    let too_much = stack
        .post(
            &format!("/billing/admin/{alice_id}/refunds"),
            &admin,
            json!({"usageRecordId": record_id, "amount": 1}),
        )
        .await;
    assert_eq!(too_much.status.as_u16(), 409, "{}", too_much.text);
    let foreign = stack
        .post(
            &format!("/billing/admin/{bob_id}/refunds"),
            &admin,
            json!({"usageRecordId": record_id}),
        )
        .await;
    assert_error(&foreign, 404, "not_found");
    let unknown = stack
        .get(
            &format!("/billing/admin/{}/stats", uuid::Uuid::new_v4()),
            &admin,
        )
        .await;
    assert_error(&unknown, 404, "not_found");
    assert_ledger_invariants(&stack.billing.database).await;
}

/// Caps: a daily limit below today's spend (three calls, 0.30924 USD) refuses every API with 402 and the
/// figures, until it is cleared.
async fn a_daily_cap_below_todays_spend_refuses_every_api(backend: Backend) {
    let stack = Stack::start(backend).await;
    let admin = stack.billing.admin_key.clone();
    let (alice_id, alice) = stack.create_key("alice", "standard").await;
    stack.add_credits(&alice_id, json!(10)).await;
    for _ in 0..3 {
        execute_seed(&stack, &alice).await;
    }

    let limited = stack
        .post(
            &format!("/billing/admin/{alice_id}/limits"),
            &admin,
            json!({"dailyLimit": "0.3", "monthlyLimit": null}),
        )
        .await;
    assert_eq!(limited.status, StatusCode::OK, "{}", limited.text);
    assert_eq!(usd(&limited.json["dailyLimit"]), dec("0.3"));
    assert!(limited.json["monthlyLimit"].is_null());
    let capped = stack
        .post(
            "/execute",
            &alice,
            json!({"prompt": "Again", "model": SEED_MODEL}),
        )
        .await;
    assert_error(&capped, 402, "daily_limit_exceeded");
    assert_eq!(usd(&capped.json["details"]["limit"]), dec("0.3"));
    assert_eq!(
        usd(&capped.json["details"]["currentBalance"]),
        dec("9.69076")
    );
    let capped_chat = stack
        .post(
            "/v1/chat/completions",
            &alice,
            json!({"model": SEED_MODEL, "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(
        capped_chat.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        capped_chat.text
    );
    assert_eq!(capped_chat.json["error"]["type"], "insufficient_quota");
    assert_eq!(capped_chat.json["error"]["code"], "daily_limit_exceeded");
    let capped_stream = stack
        .post(
            "/execute",
            &alice,
            json!({"prompt": "Again", "model": SEED_MODEL, "stream": true}),
        )
        .await;
    assert_error(&capped_stream, 402, "daily_limit_exceeded");
    let cleared = stack
        .post(
            &format!("/billing/admin/{alice_id}/limits"),
            &admin,
            json!({"dailyLimit": null, "monthlyLimit": null}),
        )
        .await;
    assert!(cleared.json["dailyLimit"].is_null(), "{}", cleared.text);
    assert_ledger_invariants(&stack.billing.database).await;
}

/// Revocation: the key is refused at once, everywhere (our shape and OpenAI's); another key is untouched;
/// revoking an unknown key is not found.
async fn a_revoked_key_is_refused_at_once_and_others_go_on(backend: Backend) {
    let stack = Stack::start(backend).await;
    let admin = stack.billing.admin_key.clone();
    let (alice_id, alice) = stack.create_key("alice", "standard").await;
    stack.add_credits(&alice_id, json!(10)).await;
    let bob = stack.funded_key("bob", "1").await;
    execute_seed(&stack, &alice).await;

    let revoked = stack
        .call(
            Method::DELETE,
            &format!("/admin/keys/{alice_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    assert!(revoked.json["revokedAt"].is_string(), "{}", revoked.text);
    assert_error(
        &stack
            .post(
                "/execute",
                &alice,
                json!({"prompt": "Hi", "model": SEED_MODEL}),
            )
            .await,
        401,
        "unauthorized",
    );
    assert_error(
        &stack.get("/billing/account", &alice).await,
        401,
        "unauthorized",
    );
    let revoked_chat = stack
        .post(
            "/v1/chat/completions",
            &alice,
            json!({"messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(revoked_chat.status, StatusCode::UNAUTHORIZED);
    assert_eq!(revoked_chat.json["error"]["type"], "authentication_error");
    assert_eq!(revoked_chat.json["error"]["code"], "invalid_api_key");
    assert_eq!(
        stack.get("/billing/account", &bob).await.status,
        StatusCode::OK
    );
    assert_error(
        &stack
            .call(
                Method::DELETE,
                &format!("/admin/keys/{}", uuid::Uuid::new_v4()),
                Some(&admin),
                None,
            )
            .await,
        404,
        "not_found",
    );
    assert_ledger_invariants(&stack.billing.database).await;
}

/// Ids in a path are checked for their form at the edge (API_KEY_MANAGEMENT.md, "Over REST"): a malformed
/// id is 400 naming the form, after the credential is checked (401 first) and before billing-svc is asked;
/// a well-formed id of nothing is 404.
async fn a_malformed_path_id_is_refused_at_the_edge(backend: Backend) {
    let stack = Stack::start(backend).await;
    let admin = stack.billing.admin_key.clone();
    let (key_id, key) = stack.create_key("alice", "standard").await;
    let cases = [
        (
            Method::GET,
            "/admin/accounts/acct_1".to_string(),
            "an account id or an API key id (a UUID)",
        ),
        (
            Method::DELETE,
            "/admin/keys/tb_prod_1234".to_string(),
            "an API key id (a UUID)",
        ),
        (
            Method::GET,
            format!("/billing/admin/{}/stats", key_id.replace('-', "")),
            "an API key id (a UUID)",
        ),
        (
            Method::GET,
            "/admin/accounts/nope/usage".to_string(),
            "an account id (a UUID)",
        ),
        (
            Method::POST,
            "/admin/events/evt_123/redeliver".to_string(),
            "an event id (evt_ and 32 hex digits)",
        ),
        (
            Method::DELETE,
            format!("/admin/webhooks/evt_{}", "0".repeat(32)),
            "a webhook endpoint id (we_ and 32 hex digits)",
        ),
    ];
    for (method, path, form) in cases {
        let refused = stack.call(method.clone(), &path, Some(&admin), None).await;
        assert_error(&refused, 400, "invalid_request");
        assert!(
            refused.json["details"]["message"]
                .as_str()
                .is_some_and(|message| message.contains(form)),
            "{path}: {}",
            refused.text
        );
        let anonymous = stack.call(method, &path, None, None).await;
        assert_error(&anonymous, 401, "unauthorized");
    }
    let customer = stack
        .call(Method::DELETE, "/billing/webhooks/x", Some(&key), None)
        .await;
    assert_error(&customer, 400, "invalid_request");
    let unknown = stack
        .call(
            Method::DELETE,
            &format!("/billing/webhooks/we_{}", "0".repeat(32)),
            Some(&key),
            None,
        )
        .await;
    assert_error(&unknown, 404, "not_found");
    let either = stack
        .get(&format!("/admin/accounts/{key_id}"), &admin)
        .await;
    assert_eq!(either.status, StatusCode::OK, "{}", either.text);
}

backend_tests!(
    seed_figures_are_exact_through_rest,
    a_malformed_path_id_is_refused_at_the_edge,
    keys_are_shown_once_and_admin_routes_need_the_admin_key,
    credits_are_exact_and_a_retried_top_up_is_applied_once,
    every_execution_api_reports_its_billing,
    usage_reads_page_filter_and_total_an_accounts_calls,
    a_refund_returns_part_of_a_record_and_never_more_than_it,
    a_daily_cap_below_todays_spend_refuses_every_api,
    a_revoked_key_is_refused_at_once_and_others_go_on,
);

/// `/openapi.json` is OpenAPI 3, lists exactly the routes of `gateway::openapi::ROUTES`, and the gateway
/// serves each of them (no `route_not_found`, no 405).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_served_route() {
    let stack = Stack::start(Backend::Sqlite).await;
    let document = stack.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(document.status, StatusCode::OK);
    assert!(
        document.json["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        document.json["openapi"]
    );
    let mut documented = BTreeSet::new();
    for (path, item) in document.json["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let expected: BTreeSet<_> = gateway::openapi::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, expected);

    for (method, path) in gateway::openapi::ROUTES {
        let concrete = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let body = (method == Method::POST).then(|| json!({}));
        let answer = stack
            .call(
                method.clone(),
                &concrete,
                Some(&stack.billing.admin_key),
                body,
            )
            .await;
        assert_ne!(
            answer.json["code"], "route_not_found",
            "{method} {path} is not served"
        );
        assert_ne!(
            answer.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert!(
            !answer.status.is_server_error() || path == &"/readyz",
            "{method} {path}: {}",
            answer.text
        );
    }
    let ready = stack.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    let metrics = stack.call(Method::GET, "/metrics", None, None).await;
    assert!(
        metrics.text.contains("gateway_http_requests_total"),
        "{}",
        metrics.text
    );
}

/// What needs the services as real processes.
mod processes {
    use super::*;

    /// The `x-request-id` a client sends comes back on the answer and reaches executor-svc (its logs).
    async fn a_request_id_is_carried_through_to_executor_svc(backend: Backend) {
        let stack = tests::Stack::start(backend).await;
        let alice = stack.funded_key("alice", "10").await;
        let run = stack
            .http
            .post(stack.url("/execute"))
            .bearer_auth(&alice)
            .header("x-request-id", "journey-1")
            .json(&json!({"prompt": "Summarise.", "model": SEED_MODEL, "workspaceId": "ws-a", "sessionId": "s-1"}))
            .send()
            .await
            .unwrap();
        let run = tests::gateway_answer(run).await;
        assert_eq!(run.status, StatusCode::OK, "{}", run.text);
        assert_eq!(run.request_id(), "journey-1");
        let executor_logs = stack.executor.logs();
        assert!(
            executor_logs.iter().any(|line| line.contains("journey-1")),
            "the request id did not reach executor-svc"
        );
        assert_eq!(usd(&run.json["billing"]["balanceAfter"]), dec("9.89692"));
        assert_ledger_invariants(&stack.billing.database).await;
    }

    backend_tests!(a_request_id_is_carried_through_to_executor_svc);

    /// SIGTERM while a stream is running: the gateway stops accepting, lets the stream finish (so its
    /// settlement is reported to the client) and exits cleanly.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_lets_a_running_stream_finish() {
        let stack = tests::Stack::start(Backend::Sqlite).await;
        let (id, key) = stack.create_key("slow", "standard").await;
        stack.add_credits(&id, json!(10)).await;
        let mut response = stack
            .http
            .post(stack.url("/execute"))
            .bearer_auth(&key)
            .json(&json!({"prompt": "Slowly.", "model": "mock-usage-6548-108-latency-10", "stream": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let mut text = String::new();
        while !text.contains("event: delta") {
            let chunk = response
                .chunk()
                .await
                .unwrap()
                .expect("a first delta before the end");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }

        let tests::Stack { gateway, .. } = stack;
        let read_rest = async {
            while let Some(chunk) = response.chunk().await.unwrap() {
                text.push_str(&String::from_utf8_lossy(&chunk));
            }
            text
        };
        let (status, text) = tokio::join!(gateway.terminate(), read_rest);
        let status = status.expect("the gateway stops after SIGTERM");
        assert!(status.success(), "gateway exit: {status:?}");
        let events = tests::parse_sse(&text);
        let result = events
            .iter()
            .find(|e| e.event.as_deref() == Some("result"))
            .expect("a result event");
        assert_eq!(
            usd(&result.json()["billing"]["balanceAfter"]),
            dec("9.89692")
        );
        assert_eq!(events.last().unwrap().data, "[DONE]");
    }
}
