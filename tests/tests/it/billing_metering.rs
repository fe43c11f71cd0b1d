//! billing-svc metering: refusals, holds growing chunk by chunk and stopping, idempotent settlement, hold
//! expiry and late settlement, and 200 concurrent executions on one key, on SQLite and PostgreSQL.

use std::collections::HashMap;
use std::time::Duration;

use proto::billing::v1 as pb;
use proto::billing::v1::meter_response::Message as Out;
use rust_decimal::Decimal;
use tests::in_process::Billing;
use tests::{Backend, BillingOf, assert_ledger_invariants, authed, eventually};
use tonic::Code;
use tonic_types::StatusExt;

fn decimal(text: &str) -> Decimal {
    text.parse().expect("decimal")
}

/// The reason and metadata of a refusal's `google.rpc.ErrorInfo`.
fn refusal(status: &tonic::Status) -> (String, HashMap<String, String>) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let info = status.get_details_error_info().expect("ErrorInfo detail");
    assert_eq!(info.domain, "billing");
    (info.reason, info.metadata)
}

async fn holds_in_database<S>(billing: &BillingOf<S>) -> i64 {
    let mut connection = billing
        .database
        .connect()
        .await
        .expect("connect to the test database");
    sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM holds")
        .fetch_one(&mut connection)
        .await
        .expect("count")
}

async fn an_empty_account_is_refused_and_holds_nothing(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (_, key) = billing.create_key(pb::KeyType::Standard).await;

    let status = billing
        .open(&key, "exec-empty", 100, 0)
        .await
        .err()
        .map(tests::grpc_status)
        .expect("refused");

    let (reason, metadata) = refusal(&status);
    assert_eq!(reason, "insufficient_credits");
    assert_eq!(
        metadata.get("current_balance").map(String::as_str),
        Some("0")
    );
    assert_eq!(holds_in_database(&billing).await, 0);
    assert_eq!(billing.account_of(&key).await.held_credits, "0");
    assert_ledger_invariants(&billing.database).await;
}

async fn credit_for_the_input_but_not_a_minimal_output_is_refused(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    // 1000 input tokens cost exactly 0.015; the minimal 16 output tokens would need 0.00072 more.
    billing.add_credits(&id, "0.015").await;

    let status = billing
        .open(&key, "exec-short", 1000, 0)
        .await
        .err()
        .map(tests::grpc_status)
        .expect("refused");

    assert_eq!(refusal(&status).0, "insufficient_credits");
    assert_eq!(holds_in_database(&billing).await, 0);
}

async fn daily_and_monthly_caps_refuse_with_their_reason(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&id, "100").await;
    let mut admin = billing.admin().await;
    let set_limits = |daily: Option<&str>, monthly: Option<&str>| {
        authed(
            &billing.admin_key,
            pb::SetLimitsRequest {
                api_key_id: id.clone(),
                daily_limit: daily.map(str::to_string),
                monthly_limit: monthly.map(str::to_string),
            },
        )
    };
    // Spend 0.10308 today.
    let session = billing
        .open(&key, "exec-spend", 6548, 0)
        .await
        .expect("open");
    session
        .close(6548, 108, pb::UsageStatus::Completed)
        .await
        .expect("close");

    admin
        .set_limits(set_limits(Some("0.1"), None))
        .await
        .expect("daily cap");
    let daily = billing
        .open(&key, "exec-daily", 100, 0)
        .await
        .err()
        .map(tests::grpc_status)
        .expect("over the daily cap");
    admin
        .set_limits(set_limits(None, Some("0.103")))
        .await
        .expect("monthly cap");
    let monthly = billing
        .open(&key, "exec-monthly", 100, 0)
        .await
        .err()
        .map(tests::grpc_status)
        .expect("over the monthly cap");
    admin
        .set_limits(set_limits(Some("1"), Some("1")))
        .await
        .expect("room again");
    let allowed = billing
        .open(&key, "exec-allowed", 100, 0)
        .await
        .expect("under both caps");

    let (daily_reason, daily_metadata) = refusal(&daily);
    assert_eq!(daily_reason, "daily_limit_exceeded");
    assert_eq!(daily_metadata.get("limit").map(String::as_str), Some("0.1"));
    assert_eq!(
        daily_metadata.get("current_balance").map(String::as_str),
        Some("99.89692")
    );
    assert_eq!(refusal(&monthly).0, "monthly_limit_exceeded");
    // The hold itself is capped by what the caps leave: 1 − 0.10308 = 0.89692.
    assert!(decimal(&allowed.opened.held) <= decimal("0.89692"));
    allowed
        .close(100, 10, pb::UsageStatus::Completed)
        .await
        .expect("close");
    assert_eq!(holds_in_database(&billing).await, 0);
    assert_ledger_invariants(&billing.database).await;
}

async fn holds_grow_chunk_by_chunk_until_credit_runs_out(backend: Backend) {
    let billing = Billing::start(backend, &["--hold-chunk-tokens", "100"]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    // 0.015 pays 1000 input tokens; 0.0135 more pays 300 output tokens at 0.045 per 1k.
    billing.add_credits(&id, "0.0285").await;
    let mut session = billing
        .open(&key, "exec-grow", 1000, 0)
        .await
        .expect("open");
    assert_eq!(session.opened.covered_output_tokens, 100);

    let mut answers = Vec::new();
    for output in [20, 60, 160, 260, 300] {
        answers.push(session.progress(output).await.expect("progress"));
    }
    let settlement = session
        .close(1000, 300, pb::UsageStatus::StoppedByCredit)
        .await
        .expect("close");

    let answers_seen: Vec<_> = answers
        .iter()
        .map(|answer| match answer {
            Out::Extended(extended) => ("extended", extended.covered_output_tokens),
            Out::Stop(stop) => ("stop", stop.covered_output_tokens),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        answers_seen,
        [
            ("extended", 100),
            ("extended", 200),
            ("extended", 300),
            ("extended", 300),
            ("stop", 300)
        ]
    );
    match &answers[4] {
        Out::Stop(stop) => assert_eq!(stop.reason, "insufficient_credits"),
        other => panic!("expected stop, got {other:?}"),
    }
    assert_eq!(settlement.balance_after.as_deref(), Some("0"));
    assert_eq!(settlement.usage.expect("usage").overage, "0");
    assert_eq!(billing.account_of(&key).await.held_credits, "0");
    assert_ledger_invariants(&billing.database).await;
}

async fn closing_twice_settles_once(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&id, "10").await;
    let session = billing
        .open(&key, "exec-twice", 6548, 0)
        .await
        .expect("open");
    let first = session
        .close(6548, 108, pb::UsageStatus::Completed)
        .await
        .expect("close");
    let mut metering = billing.metering().await;
    let replay = |input_tokens| {
        authed(
            &billing.service_token,
            pb::SettleRequest {
                api_key_id: id.clone(),
                execution_id: "exec-twice".into(),
                labels: Some(pb::Labels {
                    model: "test-model".into(),
                    ..Default::default()
                }),
                input_tokens,
                output_tokens: 108,
                status: pb::UsageStatus::Completed.into(),
                ..Default::default()
            },
        )
    };

    let second = metering
        .settle(replay(6548))
        .await
        .expect("replay")
        .into_inner();
    let different = metering
        .settle(replay(1))
        .await
        .expect("replay with other figures")
        .into_inner();
    let reopen = billing
        .open(&key, "exec-twice", 10, 0)
        .await
        .err()
        .map(tests::grpc_status)
        .expect("a settled execution id is spent");

    assert!(!first.replayed);
    assert!(second.replayed && different.replayed);
    assert_eq!(second.usage, first.usage);
    assert_eq!(
        different.balance_after, first.balance_after,
        "the first settlement stands"
    );
    assert_eq!(reopen.code(), Code::AlreadyExists);
    assert_eq!(billing.account_of(&key).await.credits_balance, "9.89692");
    assert_ledger_invariants(&billing.database).await;
}

async fn an_abandoned_hold_expires_and_a_late_settle_charges_once(backend: Backend) {
    let billing = Billing::start(
        backend,
        &["--hold-ttl-secs", "1", "--hold-sweep-interval-ms", "50"],
    )
    .await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&id, "10").await;
    let session = billing
        .open(&key, "exec-late", 6548, 0)
        .await
        .expect("open");
    assert_ne!(billing.account_of(&key).await.held_credits, "0");
    session.abandon();

    let released = eventually(Duration::from_secs(10), || async {
        billing.account_of(&key).await.held_credits == "0"
    })
    .await;
    let mut metering = billing.metering().await;
    let late = pb::SettleRequest {
        api_key_id: id.clone(),
        execution_id: "exec-late".into(),
        labels: Some(pb::Labels {
            model: "test-model".into(),
            ..Default::default()
        }),
        input_tokens: 6548,
        output_tokens: 108,
        status: pb::UsageStatus::Completed.into(),
        ..Default::default()
    };
    let first = metering
        .settle(authed(&billing.service_token, late.clone()))
        .await
        .expect("late settle")
        .into_inner();
    let again = metering
        .settle(authed(&billing.service_token, late))
        .await
        .expect("again")
        .into_inner();

    assert!(released, "the hold was released by its TTL");
    assert_eq!(holds_in_database(&billing).await, 0);
    assert_eq!(first.balance_after.as_deref(), Some("9.89692"));
    assert_eq!(
        first.usage.as_ref().expect("usage").overage,
        "0.10308",
        "nothing was held any more"
    );
    assert!(again.replayed);
    assert_eq!(billing.account_of(&key).await.credits_balance, "9.89692");
    assert_ledger_invariants(&billing.database).await;
}

async fn metering_rejects_protocol_and_input_errors(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&id, "10").await;
    let open = |execution_id: &str, model: &str, input: u64| pb::MeterOpen {
        api_key: key.clone(),
        execution_id: execution_id.into(),
        labels: Some(pb::Labels {
            model: model.into(),
            ..Default::default()
        }),
        estimated_input_tokens: input,
        ..Default::default()
    };
    let cases = [
        (open("", "m", 1), "empty execution id"),
        (open(&"x".repeat(129), "m", 1), "execution id too long"),
        (open("e1", "", 1), "empty model"),
        (open("e2", "bad\nmodel", 1), "control character in model"),
        (open("e3", "m", u64::MAX), "absurd token count"),
    ];
    for (request, why) in cases {
        let status = tests::MeterSession::open(
            billing.metering().await,
            &tests::bearer(&billing.service_token),
            request,
        )
        .await
        .err()
        .map(tests::grpc_status)
        .unwrap_or_else(|| panic!("{why}: accepted"));
        assert_eq!(status.code(), Code::InvalidArgument, "{why}: {status:?}");
    }
    let mut metering = billing.metering().await;
    let unknown_status = metering
        .settle(authed(
            &billing.service_token,
            pb::SettleRequest {
                api_key_id: id.clone(),
                execution_id: "e".into(),
                labels: Some(pb::Labels {
                    model: "m".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .expect_err("status is required");
    let unknown_account = metering
        .settle(authed(
            &billing.service_token,
            pb::SettleRequest {
                api_key_id: "nope".into(),
                execution_id: "e".into(),
                labels: Some(pb::Labels {
                    model: "m".into(),
                    ..Default::default()
                }),
                status: pb::UsageStatus::Completed.into(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("unknown account");

    assert_eq!(unknown_status.code(), Code::InvalidArgument);
    assert_eq!(unknown_account.code(), Code::NotFound);
    assert_eq!(holds_in_database(&billing).await, 0);
    assert_ledger_invariants(&billing.database).await;
}

/// 200 executions at once on one key whose credit covers only some: each asks for up to 400 output tokens
/// and stops when billing says so. The total charged never exceeds the credit plus the recorded overage,
/// and every settled execution is recorded exactly once.
async fn concurrent_executions_never_overspend(backend: Backend) {
    const EXECUTIONS: usize = 200;
    let billing = Billing::start(backend, &["--hold-chunk-tokens", "64"]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    // One execution of 500 input + 400 output tokens costs 0.0075 + 0.018 = 0.0255: credit for about 40.
    billing.add_credits(&id, "1").await;
    let metering = billing.metering().await;
    let service_bearer = tests::bearer(&billing.service_token);

    let runs = (0..EXECUTIONS).map(|n| {
        let client = metering.clone();
        let (key, token) = (key.clone(), service_bearer.clone());
        async move {
            let open = pb::MeterOpen {
                api_key: key,
                execution_id: format!("exec-{n}"),
                labels: Some(pb::Labels {
                    model: "test-model".into(),
                    ..Default::default()
                }),
                estimated_input_tokens: 500,
                max_output_tokens: 400,
                ..Default::default()
            };
            let mut session = match tests::MeterSession::open(client, &token, open).await {
                Ok(session) => session,
                Err(error) => {
                    assert_eq!(
                        refusal(&tests::grpc_status(error)).0,
                        "insufficient_credits"
                    );
                    return None;
                }
            };
            let mut covered = session.opened.covered_output_tokens;
            let mut output = 0;
            // Generate 16 tokens at a time up to what the hold covers; stop when billing says stop.
            while output < 400 {
                let next = (output + 16).min(covered).min(400);
                if next == output {
                    break;
                }
                output = next;
                match session.progress(output).await.expect("progress") {
                    Out::Extended(extended) => covered = extended.covered_output_tokens,
                    Out::Stop(_) => break,
                    other => panic!("unexpected {other:?}"),
                }
            }
            // The provider reports a few tokens beyond what the hold covers, as a real stream cut mid-flight does.
            let settlement = session
                .close(500, output + 3, pb::UsageStatus::Completed)
                .await
                .expect("close");
            Some(settlement.usage.expect("usage"))
        }
    });
    let settled: Vec<_> = futures::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect();

    let charged: Decimal = settled.iter().map(|usage| decimal(&usage.charged)).sum();
    let overage: Decimal = settled.iter().map(|usage| decimal(&usage.overage)).sum();
    assert!(
        !settled.is_empty() && settled.len() < EXECUTIONS,
        "credit covers some: {}",
        settled.len()
    );
    assert!(
        charged <= decimal("1") + overage,
        "charged {charged} > credit 1 + overage {overage}"
    );
    let account = billing.account_of(&key).await;
    assert_eq!(decimal(&account.total_spent), charged);
    assert_eq!(account.held_credits, "0");
    let mut connection = billing
        .database
        .connect()
        .await
        .expect("connect to the test database");
    let records: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM usage_records")
        .fetch_one(&mut connection)
        .await
        .expect("count");
    assert_eq!(
        records,
        i64::try_from(settled.len()).expect("count"),
        "each settled execution recorded once"
    );
    assert_ledger_invariants(&billing.database).await;
}

async fn a_hold_survives_a_crash_and_the_replay_settles_it_once(backend: Backend) {
    // A process: it is killed.
    let billing = tests::Billing::start(backend, &["--hold-ttl-secs", "2"]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&id, "10").await;
    let mut session = billing
        .open(&key, "exec-crash", 6548, 0)
        .await
        .expect("open");
    // Keep the hold growing while billing-svc dies: the kill lands in the middle of writes.
    let writing = tokio::spawn(async move {
        for output in (0..).step_by(64).take(10_000) {
            if session.progress(output).await.is_err() {
                break;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (admin_key, service_token) = (billing.admin_key.clone(), billing.service_token.clone());

    let database = billing.stop().await;
    let _ = writing.await;
    let billing = tests::Billing::start_with(
        database,
        admin_key,
        service_token,
        &["--hold-ttl-secs", "2"],
    )
    .await;
    let held_after_restart = billing.account_of(&key).await.held_credits;
    for _ in 0..100 {
        let _ = holds_in_database(&billing).await;
    }
    let settlement = billing
        .metering()
        .await
        .settle(authed(
            &billing.service_token,
            pb::SettleRequest {
                api_key_id: id.clone(),
                execution_id: "exec-crash".into(),
                labels: Some(pb::Labels {
                    model: "test-model".into(),
                    ..Default::default()
                }),
                input_tokens: 6548,
                output_tokens: 108,
                status: pb::UsageStatus::Completed.into(),
                ..Default::default()
            },
        ))
        .await
        .expect("replay after the restart")
        .into_inner();

    assert_ne!(held_after_restart, "0", "the hold survived the crash");
    assert!(!settlement.replayed);
    assert_eq!(settlement.balance_after.as_deref(), Some("9.89692"));
    let account = billing.account_of(&key).await;
    assert_eq!(
        (
            account.credits_balance.as_str(),
            account.held_credits.as_str()
        ),
        ("9.89692", "0")
    );
    assert_ledger_invariants(&billing.database).await;
}

/// An executor-svc of the previous release sends the labels as separate fields of `MeterOpen` and
/// `SettleRequest` (RELIABILITY.md, "Upgrading"): billing-svc still records them.
async fn the_separate_labels_of_the_previous_release_are_recorded(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&id, "10").await;
    let session = tests::MeterSession::open(
        billing.metering().await,
        &tests::bearer(&billing.service_token),
        pb::MeterOpen {
            api_key: key.clone(),
            execution_id: "exec-previous".into(),
            model: "test-model".into(),
            workspace_id: "ws-old".into(),
            session_id: "s-old".into(),
            endpoint: "/v1/chat/completions".into(),
            end_user_id: "user-old".into(),
            estimated_input_tokens: 100,
            ..Default::default()
        },
    )
    .await
    .expect("open");
    let settled = session
        .close(100, 10, pb::UsageStatus::Completed)
        .await
        .expect("close");
    let usage = settled.usage.expect("usage");
    assert_eq!(
        (
            usage.model.as_str(),
            usage.workspace_id.as_str(),
            usage.session_id.as_str(),
            usage.endpoint.as_str(),
            usage.end_user_id.as_str()
        ),
        (
            "test-model",
            "ws-old",
            "s-old",
            "/v1/chat/completions",
            "user-old"
        )
    );

    let replayed = billing
        .metering()
        .await
        .settle(authed(
            &billing.service_token,
            pb::SettleRequest {
                api_key_id: id.clone(),
                execution_id: "exec-previous-spooled".into(),
                model: "test-model".into(),
                workspace_id: "ws-spool".into(),
                endpoint: "/execute".into(),
                input_tokens: 10,
                output_tokens: 1,
                status: pb::UsageStatus::Completed.into(),
                ..Default::default()
            },
        ))
        .await
        .expect("settle")
        .into_inner()
        .usage
        .expect("usage");
    assert_eq!(
        (
            replayed.model.as_str(),
            replayed.workspace_id.as_str(),
            replayed.endpoint.as_str()
        ),
        ("test-model", "ws-spool", "/execute")
    );
    assert_ledger_invariants(&billing.database).await;
}

tests::backend_tests!(
    an_empty_account_is_refused_and_holds_nothing,
    the_separate_labels_of_the_previous_release_are_recorded,
    credit_for_the_input_but_not_a_minimal_output_is_refused,
    daily_and_monthly_caps_refuse_with_their_reason,
    holds_grow_chunk_by_chunk_until_credit_runs_out,
    closing_twice_settles_once,
    an_abandoned_hold_expires_and_a_late_settle_charges_once,
    metering_rejects_protocol_and_input_errors,
    concurrent_executions_never_overspend,
    a_hold_survives_a_crash_and_the_replay_settles_it_once,
);
