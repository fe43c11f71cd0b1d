//! executor-svc end to end: real billing-svc, executor-svc and mock-model processes over loopback.
//! Exact charges of unary and streamed executions, credit running out mid-stream, 100 concurrent streams
//! on one small key, internal keys, upstream failures, settlements spooled while billing-svc is down and
//! replayed exactly once (across an executor restart too), and refusals that never reach the model.

use std::time::Duration;

use proto::billing::v1 as pb;
use proto::executor::v1 as ex;
use proto::executor::v1::execute_stream_response::Message as Event;
use rust_decimal::Decimal;
use tests::reliability::text_request;
use tests::tmpfs::{Tmpfs, fill};
use tests::{
    Backend, Billing, Executor, MockModel, assert_ledger_invariants, authed, eventually,
    restart_billing_at,
};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_types::StatusExt;

/// Billing's hold TTL in these tests: short, so that abandoned holds go quickly.
const BILLING_ARGS: &[&str] = &["--hold-ttl-secs", "2"];

fn decimal(text: &str) -> Decimal {
    text.parse().unwrap_or_else(|_| panic!("decimal: {text:?}"))
}

/// billing-svc, a mock model and an executor-svc wired together, with the executor's spool folder.
struct Stack {
    billing: Billing,
    model: MockModel,
    executor: Executor,
    spool: tempfile::TempDir,
}

async fn stack(backend: Backend) -> Stack {
    let billing = Billing::start(backend, BILLING_ARGS).await;
    let model = MockModel::start().await;
    let spool = tempfile::tempdir().expect("spool dir");
    let executor = Executor::start(&billing, &model, spool.path(), &[]).await;
    Stack {
        billing,
        model,
        executor,
        spool,
    }
}

/// A standard key holding `credits` USD.
async fn funded_key(billing: &Billing, credits: &str) -> (String, String) {
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&id, credits).await;
    (id, key)
}

fn request(key: &str, model: &str, prompt: &str) -> tonic::Request<ex::ExecuteRequest> {
    limited_request(key, model, prompt, None)
}

/// `/execute` as the gateway sends it (see `text_request`), with an output limit when one is given.
fn limited_request(
    key: &str,
    model: &str,
    prompt: &str,
    max_tokens: Option<u32>,
) -> tonic::Request<ex::ExecuteRequest> {
    authed(
        key,
        ex::ExecuteRequest {
            workspace_id: "ws-1".into(),
            session_id: "session-1".into(),
            endpoint: "/execute".into(),
            ..text_request(prompt, model, max_tokens)
        },
    )
}

/// Runs a streamed execution: the concatenated deltas and the final message (or the error status).
async fn stream(
    executor: &Executor,
    request: tonic::Request<ex::ExecuteRequest>,
) -> (String, Result<ex::ExecuteResponse, tonic::Status>) {
    let mut client = executor.client().await;
    let mut events = match client.execute_stream(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => return (String::new(), Err(status)),
    };
    let mut output = String::new();
    loop {
        match events.message().await {
            Ok(Some(ex::ExecuteStreamResponse {
                message: Some(Event::Delta(delta)),
            })) => output.push_str(&delta),
            Ok(Some(ex::ExecuteStreamResponse {
                message: Some(Event::Done(done)),
            })) => {
                assert!(
                    events.message().await.expect("clean end").is_none(),
                    "nothing after done"
                );
                return (output, Ok(done));
            }
            Ok(other) => panic!("unexpected stream message {other:?}"),
            Err(status) => return (output, Err(status)),
        }
    }
}

async fn usage_records(billing: &Billing) -> i64 {
    let mut connection = billing
        .database
        .connect()
        .await
        .expect("connect to the test database");
    sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM usage_records")
        .fetch_one(&mut connection)
        .await
        .expect("count usage records")
}

/// Output tokens of mock-model text: each word and each "." is one token.
fn mock_tokens(text: &str) -> u64 {
    (text.split_whitespace().count() + text.matches('.').count()) as u64
}

fn usage(response: &ex::ExecuteResponse) -> &ex::Usage {
    response.usage.as_ref().expect("usage")
}

fn billing_block(response: &ex::ExecuteResponse) -> &ex::Billing {
    response.billing.as_ref().expect("billing block")
}

async fn unary_execution_charges_the_reported_usage_exactly(backend: Backend) {
    let stack = stack(backend).await;
    let (_, key) = funded_key(&stack.billing, "10").await;

    let response = stack
        .executor
        .client()
        .await
        .execute(request(
            &key,
            "mock-usage-6548-108",
            "Summarise the quarterly report.",
        ))
        .await
        .expect("execute")
        .into_inner();

    let usage = usage(&response);
    assert_eq!(
        (usage.input_tokens, usage.output_tokens, usage.total_tokens),
        (6548, 108, 6656)
    );
    assert_eq!(
        (usage.input_cost.as_deref(), usage.output_cost.as_deref()),
        (Some("0.09822"), Some("0.00486"))
    );
    assert_eq!(
        decimal(usage.total_cost.as_deref().expect("settled cost")),
        decimal("0.10308")
    );
    assert_eq!(
        billing_block(&response).status(),
        ex::BillingStatus::Settled
    );
    assert_eq!(
        decimal(
            billing_block(&response)
                .balance_after
                .as_deref()
                .expect("balance")
        ),
        decimal("9.89692")
    );
    assert_eq!(
        decimal(
            billing_block(&response)
                .total_spent
                .as_deref()
                .expect("total spent")
        ),
        decimal("0.10308")
    );
    assert_eq!(response.finish_reason(), ex::FinishReason::Stop);
    assert!(
        response.output.starts_with(" The quick brown fox"),
        "{:?}",
        response.output
    );
    assert!(response.execution_id.starts_with("exec_"));
    let account = stack.billing.account_of(&key).await;
    assert_eq!(decimal(&account.credits_balance), decimal("9.89692"));
    assert_eq!(decimal(&account.held_credits), Decimal::ZERO);
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn streamed_execution_sends_deltas_then_usage_and_billing(backend: Backend) {
    let stack = stack(backend).await;
    let (_, key) = funded_key(&stack.billing, "10").await;

    let (output, done) = stream(
        &stack.executor,
        request(&key, "mock-usage-6548-108", "Summarise it."),
    )
    .await;

    let done = done.expect("a final message");
    assert!(done.output.is_empty(), "the output went out as deltas");
    assert_eq!(mock_tokens(&output), 108, "{output:?}");
    assert_eq!(
        (usage(&done).input_tokens, usage(&done).output_tokens),
        (6548, 108)
    );
    assert_eq!(
        decimal(usage(&done).total_cost.as_deref().expect("settled cost")),
        decimal("0.10308")
    );
    assert_eq!(
        decimal(
            billing_block(&done)
                .balance_after
                .as_deref()
                .expect("balance")
        ),
        decimal("9.89692")
    );
    assert_eq!(done.finish_reason(), ex::FinishReason::Stop);
    assert_eq!(usage_records(&stack.billing).await, 1);
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn credit_running_out_mid_stream_stops_the_stream_cleanly(backend: Backend) {
    let stack = stack(backend).await;
    // "Hello" is 8 prompt tokens (0.00012); 0.003 leaves room for 64 output tokens at 0.000045 each.
    let (_, key) = funded_key(&stack.billing, "0.003").await;

    let asked = limited_request(&key, "mock-tokens-2000", "Hello", Some(2000));
    let (output, done) = stream(&stack.executor, asked).await;

    let done = done.expect("a clean end, not an error");
    assert_eq!(done.finish_reason(), ex::FinishReason::CreditExhausted);
    let delivered = mock_tokens(&output);
    assert_eq!(
        usage(&done).output_tokens,
        delivered,
        "charged for what was delivered"
    );
    assert!(
        delivered > 0 && delivered < 2000,
        "cut off mid-stream after {delivered} tokens"
    );
    let account = stack.billing.account_of(&key).await;
    assert!(
        decimal(&account.credits_balance) >= Decimal::ZERO,
        "overspent: {account:?}"
    );
    assert!(decimal(usage(&done).total_cost.as_deref().expect("settled cost")) <= decimal("0.003"));
    assert_eq!(decimal(&account.held_credits), Decimal::ZERO);
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn concurrent_streams_on_one_small_key_never_overspend(backend: Backend) {
    let stack = stack(backend).await;
    // Each execution wants 8 + 200 tokens (0.00912): the credit covers about five of them.
    let credit = decimal("0.05");
    let (_, key) = funded_key(&stack.billing, "0.05").await;

    let runs = (0..100).map(|_| {
        let key = key.clone();
        let executor = &stack.executor;
        async move {
            let asked = limited_request(&key, "mock-tokens-200-latency-2", "Hello", Some(200));
            stream(executor, asked).await
        }
    });
    let results = futures::future::join_all(runs).await;

    let mut settled = 0i64;
    let mut charged = Decimal::ZERO;
    for (_, result) in &results {
        match result {
            Ok(done) => {
                settled += 1;
                charged += decimal(usage(done).total_cost.as_deref().expect("settled cost"));
                assert_eq!(billing_block(done).status(), ex::BillingStatus::Settled);
            }
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert_eq!(
                    status.get_details_error_info().expect("ErrorInfo").reason,
                    "insufficient_credits"
                );
            }
        }
    }
    assert!(settled > 0, "some executions ran");
    assert_eq!(
        usage_records(&stack.billing).await,
        settled,
        "every execution settled exactly once"
    );
    let account = stack.billing.account_of(&key).await;
    assert!(charged <= credit, "charged {charged} out of {credit}");
    assert_eq!(decimal(&account.credits_balance), credit - charged);
    assert_eq!(decimal(&account.held_credits), Decimal::ZERO);
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn internal_key_gets_output_and_usage_but_no_billing(backend: Backend) {
    let stack = stack(backend).await;
    let (_, key) = stack.billing.create_key(pb::KeyType::Internal).await;

    let response = stack
        .executor
        .client()
        .await
        .execute(request(&key, "mock-usage-6548-108", "Internal job"))
        .await
        .expect("execute")
        .into_inner();

    assert!(!response.output.is_empty());
    assert_eq!(
        (
            usage(&response).input_tokens,
            usage(&response).output_tokens
        ),
        (6548, 108)
    );
    assert_eq!(
        decimal(
            usage(&response)
                .total_cost
                .as_deref()
                .expect("settled cost")
        ),
        decimal("0.10308"),
        "cost is recorded"
    );
    assert!(
        response.billing.is_none(),
        "no billing block for internal keys"
    );
    let account = stack.billing.account_of(&key).await;
    assert_eq!(decimal(&account.credits_balance), Decimal::ZERO);
    assert_eq!(decimal(&account.total_spent), Decimal::ZERO);
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn upstream_error_before_any_token_is_not_charged(backend: Backend) {
    let stack = stack(backend).await;
    let (_, key) = funded_key(&stack.billing, "10").await;

    let status = stack
        .executor
        .client()
        .await
        .execute(request(&key, "mock-fail-500", "Hello"))
        .await
        .expect_err("the model failed");

    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let account = stack.billing.account_of(&key).await;
    assert_eq!(decimal(&account.credits_balance), decimal("10"));
    assert_eq!(
        decimal(&account.held_credits),
        Decimal::ZERO,
        "the hold is released at once"
    );
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn upstream_failure_after_reported_usage_is_charged_that_usage(backend: Backend) {
    let stack = stack(backend).await;
    let (_, key) = funded_key(&stack.billing, "10").await;

    let (output, result) =
        stream(&stack.executor, request(&key, "mock-abortusage-5", "Hello")).await;

    assert_eq!(
        result.expect_err("the stream broke").code(),
        Code::Unavailable
    );
    assert_eq!(mock_tokens(&output), 5);
    // 8 input tokens (0.00012) + 5 output tokens (0.000225), as the provider reported.
    let account = stack.billing.account_of(&key).await;
    assert_eq!(decimal(&account.credits_balance), decimal("9.999655"));
    assert_eq!(decimal(&account.held_credits), Decimal::ZERO);
    assert_ledger_invariants(&stack.billing.database).await;
}

/// Runs a slow streamed execution and kills billing-svc (SIGKILL, keeping its database) once output flows:
/// the execution finishes within its hold and its settlement is spooled. Returns the final message and
/// billing's database, address and secrets for a restart.
async fn execution_outliving_billing(
    billing: Billing,
    executor: &Executor,
    key: &str,
) -> (
    ex::ExecuteResponse,
    tests::TestDatabase,
    String,
    String,
    String,
) {
    let mut client = executor.client().await;
    let mut events = client
        .execute_stream(request(key, "mock-tokens-20-latency-50", "Hello"))
        .await
        .expect("stream starts")
        .into_inner();
    let first = events
        .message()
        .await
        .expect("first event")
        .expect("an event");
    assert!(matches!(first.message, Some(Event::Delta(_))), "{first:?}");

    let (addr, admin_key, service_token) = (
        billing.process.addr.clone(),
        billing.admin_key.clone(),
        billing.service_token.clone(),
    );
    let database = billing.stop().await;

    let done = loop {
        match events
            .message()
            .await
            .expect("no error")
            .expect("a final message")
        {
            ex::ExecuteStreamResponse {
                message: Some(Event::Done(done)),
            } => break done,
            ex::ExecuteStreamResponse {
                message: Some(Event::Delta(_)),
            } => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(
        billing_block(&done).status(),
        ex::BillingStatus::Pending,
        "{done:?}"
    );
    assert!(billing_block(&done).balance_after.is_none());
    assert_eq!(
        (usage(&done).input_tokens, usage(&done).output_tokens),
        (8, 20)
    );
    assert_eq!(
        usage(&done).total_cost,
        None,
        "only billing-svc prices usage: no cost before the settlement"
    );
    (done, database, addr, admin_key, service_token)
}

/// Waits for the one usage record of the replayed settlement and checks the charge: 8 input and 20 output
/// tokens = 0.00012 + 0.0009.
async fn assert_charged_once(billing: &Billing, key: &str) {
    // Polled through billing-svc, not by opening the SQLite file from this process over and over while
    // billing-svc writes: see RELIABILITY.md, "SQLite file opened by another process".
    let replayed = eventually(Duration::from_secs(15), || async {
        billing.account_of(key).await.total_spent != "0"
    })
    .await;
    assert!(replayed, "the spooled settlement was replayed");
    let account = billing.account_of(key).await;
    assert_eq!(decimal(&account.credits_balance), decimal("9.99898"));
    assert_eq!(decimal(&account.total_spent), decimal("0.00102"));
    assert_eq!(usage_records(billing).await, 1);
    assert_ledger_invariants(&billing.database).await;
}

async fn settlement_is_spooled_while_billing_is_down_and_replayed_once(backend: Backend) {
    let Stack {
        billing,
        model: _model,
        executor,
        spool: _spool,
    } = stack(backend).await;
    let (_, key) = funded_key(&billing, "10").await;

    let (_, database, addr, admin_key, service_token) =
        execution_outliving_billing(billing, &executor, &key).await;
    let billing = restart_billing_at(database, &addr, admin_key, service_token, BILLING_ARGS).await;

    assert_charged_once(&billing, &key).await;
}

async fn spooled_settlement_survives_an_executor_restart(backend: Backend) {
    let Stack {
        billing,
        model,
        executor,
        spool,
    } = stack(backend).await;
    let (_, key) = funded_key(&billing, "10").await;

    let (_, database, addr, admin_key, service_token) =
        execution_outliving_billing(billing, &executor, &key).await;
    let status = executor
        .process
        .terminate()
        .await
        .expect("executor-svc stops after SIGTERM");
    assert!(status.success(), "graceful shutdown: {status:?}");
    let billing = restart_billing_at(database, &addr, admin_key, service_token, BILLING_ARGS).await;
    let _executor = Executor::start(&billing, &model, spool.path(), &[]).await;

    assert_charged_once(&billing, &key).await;
}

async fn billing_down_at_open_refuses_standard_keys_without_calling_the_model(backend: Backend) {
    let Stack {
        billing,
        model,
        executor,
        spool: _spool,
    } = stack(backend).await;
    let (_, key) = funded_key(&billing, "10").await;
    let _database = billing.stop().await;

    let status = executor
        .client()
        .await
        .execute(request(&key, "mock", "Hello"))
        .await
        .expect_err("refused");

    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(model.requests().await, 0, "the model was never called");
}

async fn billing_refusals_are_forwarded_and_the_model_is_not_called(backend: Backend) {
    let stack = stack(backend).await;
    let (_, empty_key) = stack.billing.create_key(pb::KeyType::Standard).await;

    let refused = stack
        .executor
        .client()
        .await
        .execute(request(&empty_key, "mock", "Hello"))
        .await
        .expect_err("no credit");
    let unknown = stack
        .executor
        .client()
        .await
        .execute(request(
            &format!("tb_prod_{}", "0".repeat(64)),
            "mock",
            "Hello",
        ))
        .await
        .expect_err("unknown key");

    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let info = refused
        .get_details_error_info()
        .expect("ErrorInfo forwarded");
    assert_eq!(
        (info.domain.as_str(), info.reason.as_str()),
        ("billing", "insufficient_credits")
    );
    assert_eq!(unknown.code(), Code::Unauthenticated, "{unknown:?}");
    assert_eq!(
        stack.model.requests().await,
        0,
        "the model was never called"
    );
}

async fn a_reused_idempotency_key_is_refused_and_charged_once(backend: Backend) {
    let stack = stack(backend).await;
    let (_, key) = funded_key(&stack.billing, "10").await;
    let idempotent = || {
        let mut asked = request(&key, "mock", "Hello");
        asked.get_mut().idempotency_key = Some("order-42".into());
        asked
    };

    let first = stack
        .executor
        .client()
        .await
        .execute(idempotent())
        .await
        .expect("first run")
        .into_inner();
    let second = stack
        .executor
        .client()
        .await
        .execute(idempotent())
        .await
        .expect_err("a retry");

    assert!(first.execution_id.starts_with("idem_"));
    assert_eq!(second.code(), Code::AlreadyExists, "{second:?}");
    assert_eq!(usage_records(&stack.billing).await, 1);
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn executor_reports_serving_on_grpc_health(backend: Backend) {
    let stack = stack(backend).await;
    let channel = tonic::transport::Endpoint::from_shared(stack.executor.process.url())
        .expect("valid url")
        .connect()
        .await
        .expect("connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);

    let answer = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "executor.v1.ExecutorService".into(),
        })
        .await
        .expect("health check")
        .into_inner();

    assert_eq!(
        answer.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
}

async fn executor_health(executor: &Executor, service: &str) -> ServingStatus {
    let channel = tonic::transport::Endpoint::from_shared(executor.process.url())
        .expect("valid url")
        .connect()
        .await
        .expect("connect");
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status()
}

/// The executor's service and the server as a whole (what the gateway's `/readyz` asks).
const EXECUTOR_SERVICES: [&str; 2] = ["executor.v1.ExecutorService", ""];

/// The spool's disk fills while billing-svc is down: the execution's settlement cannot be spooled, so it
/// is answered pending and kept in memory (and still reaches billing-svc once it is back, once). While the
/// spool cannot be written, new executions of standard keys are refused before the model is called and
/// the executor reports not serving; once the disk has room again it serves and charges as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_disk_refuses_standard_executions_until_there_is_room() {
    let Some(tmpfs) = Tmpfs::mount("1m") else {
        return;
    };
    let billing = Billing::start(Backend::Sqlite, BILLING_ARGS).await;
    let model = MockModel::start().await;
    let executor = Executor::start(&billing, &model, &tmpfs.dir.path().join("spool"), &[]).await;
    let (_, key) = funded_key(&billing, "10").await;
    let filler = fill(tmpfs.dir.path());

    let (_, database, addr, admin_key, service_token) =
        execution_outliving_billing(billing, &executor, &key).await;
    let billing = restart_billing_at(database, &addr, admin_key, service_token, BILLING_ARGS).await;
    assert_charged_once(&billing, &key).await;

    let refused = executor
        .client()
        .await
        .execute(request(&key, "mock-tokens-5", "Hello"))
        .await
        .expect_err("refused while the spool cannot be written");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("spool"), "{refused:?}");
    for service in EXECUTOR_SERVICES {
        assert_eq!(
            executor_health(&executor, service).await,
            ServingStatus::NotServing,
            "{service:?}"
        );
    }
    let (_, internal_key) = billing.create_key(pb::KeyType::Internal).await;
    executor
        .client()
        .await
        .execute(request(&internal_key, "mock-tokens-5", "Hello"))
        .await
        .expect("internal keys are never charged: they run");

    std::fs::remove_file(filler).expect("free the disk");
    let serving = eventually(Duration::from_secs(15), || async {
        executor_health(&executor, EXECUTOR_SERVICES[0]).await == ServingStatus::Serving
            && executor_health(&executor, EXECUTOR_SERVICES[1]).await == ServingStatus::Serving
    })
    .await;
    assert!(serving, "the executor serves again once the spool has room");
    let done = executor
        .client()
        .await
        .execute(request(&key, "mock-tokens-5", "Hello"))
        .await
        .expect("runs again")
        .into_inner();
    assert_eq!(
        billing_block(&done).status(),
        ex::BillingStatus::Settled,
        "{done:?}"
    );
    // The refused execution's hold was settled at once with no tokens: nothing was charged for it.
    let account = billing.account_of(&key).await;
    assert_eq!(decimal(&account.held_credits), Decimal::ZERO);
    assert_ledger_invariants(&billing.database).await;
}

tests::backend_tests!(
    executor_reports_serving_on_grpc_health,
    unary_execution_charges_the_reported_usage_exactly,
    streamed_execution_sends_deltas_then_usage_and_billing,
    credit_running_out_mid_stream_stops_the_stream_cleanly,
    concurrent_streams_on_one_small_key_never_overspend,
    internal_key_gets_output_and_usage_but_no_billing,
    upstream_error_before_any_token_is_not_charged,
    upstream_failure_after_reported_usage_is_charged_that_usage,
    settlement_is_spooled_while_billing_is_down_and_replayed_once,
    spooled_settlement_survives_an_executor_restart,
    billing_down_at_open_refuses_standard_keys_without_calling_the_model,
    billing_refusals_are_forwarded_and_the_model_is_not_called,
    a_reused_idempotency_key_is_refused_and_charged_once,
);
