//! billing-svc ledger: the seed's figures, internal keys, credits, adjustments, refunds, limits, prices,
//! queries and their pagination, on SQLite and PostgreSQL.

use proto::billing::v1 as pb;
use sqlx::Connection;
use tests::in_process::Billing;
use tests::{Backend, assert_ledger_invariants, authed};
use tonic::Code;

/// Opens and closes one execution with the provider's usage.
async fn execute(
    billing: &Billing,
    key: &str,
    execution_id: &str,
    input: u64,
    output: u64,
) -> pb::Settlement {
    let session = billing
        .open(key, execution_id, input, 0)
        .await
        .expect("open");
    session
        .close(input, output, pb::UsageStatus::Completed)
        .await
        .expect("close")
}

async fn seed_example_is_exact(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&id, "10").await;

    let settlement = execute(&billing, &key, "exec-seed", 6548, 108).await;

    let usage = settlement.usage.expect("usage");
    assert_eq!(
        (usage.input_tokens, usage.output_tokens, usage.total_tokens),
        (6548, 108, 6656)
    );
    assert_eq!(usage.input_cost, "0.09822");
    assert_eq!(usage.output_cost, "0.00486");
    assert_eq!(usage.total_cost, "0.10308");
    assert_eq!(usage.charged, "0.10308");
    assert_eq!(settlement.balance_after.as_deref(), Some("9.89692"));
    assert_eq!(settlement.total_spent.as_deref(), Some("0.10308"));
    let account = billing.account_of(&key).await;
    assert_eq!(account.credits_balance, "9.89692");
    assert_eq!(account.total_spent, "0.10308");
    assert_eq!(account.held_credits, "0");
    assert_ledger_invariants(&billing.database).await;
}

async fn internal_key_records_cost_and_charges_nothing(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (_, key) = billing.create_key(pb::KeyType::Internal).await;

    let session = billing
        .open(&key, "exec-internal", 6548, 0)
        .await
        .expect("internal keys need no credit");
    assert_eq!(session.opened.key_type, pb::KeyType::Internal as i32);
    assert_eq!(session.opened.held, "0");
    let settlement = session
        .close(6548, 108, pb::UsageStatus::Completed)
        .await
        .expect("close");

    let usage = settlement.usage.expect("usage");
    assert_eq!(usage.total_cost, "0.10308");
    assert_eq!(usage.charged, "0");
    assert_eq!(usage.key_type, pb::KeyType::Internal as i32);
    assert_eq!(settlement.balance_after, None);
    assert_eq!(settlement.total_spent, None);
    let account = billing.account_of(&key).await;
    assert_eq!(
        (
            account.credits_balance.as_str(),
            account.total_spent.as_str()
        ),
        ("0", "0")
    );
    let transactions = billing
        .account()
        .await
        .list_transactions(authed(&key, pb::ListTransactionsRequest::default()))
        .await
        .expect("list")
        .into_inner();
    assert!(
        transactions.transactions.is_empty(),
        "an internal key has no ledger rows"
    );
    assert_ledger_invariants(&billing.database).await;
}

async fn credits_with_one_idempotency_key_apply_once(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    let mut admin = billing.admin().await;
    let request = |amount: &str| {
        authed(
            &billing.admin_key,
            pb::AddCreditsRequest {
                api_key_id: id.clone(),
                amount: amount.into(),
                description: Some("order 42".into()),
                idempotency_key: Some("order-42".into()),
                ..Default::default()
            },
        )
    };

    let first = admin
        .add_credits(request("25.5"))
        .await
        .expect("first")
        .into_inner();
    let again = admin
        .add_credits(request("25.50"))
        .await
        .expect("retry")
        .into_inner();
    let conflict = admin
        .add_credits(request("30"))
        .await
        .expect_err("other amount, same key");

    assert_eq!(
        first.transaction, again.transaction,
        "a retry returns the first result"
    );
    assert_eq!(conflict.code(), Code::AlreadyExists);
    assert_eq!(billing.account_of(&key).await.credits_balance, "25.5");
    assert_ledger_invariants(&billing.database).await;
}

async fn concurrent_credits_with_one_idempotency_key_apply_once(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    let admin = billing.admin().await;
    let calls = (0..20).map(|_| {
        let mut admin = admin.clone();
        let request = authed(
            &billing.admin_key,
            pb::AddCreditsRequest {
                api_key_id: id.clone(),
                amount: "5".into(),
                idempotency_key: Some("same".into()),
                ..Default::default()
            },
        );
        async move { admin.add_credits(request).await }
    });
    let results = futures::future::join_all(calls).await;

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(billing.account_of(&key).await.credits_balance, "5");
    assert_ledger_invariants(&billing.database).await;
}

async fn invalid_amounts_are_refused_and_write_nothing(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    let mut admin = billing.admin().await;
    let cases = [
        ("0", "zero"),
        ("-1", "negative"),
        ("abc", "not a number"),
        ("1e3", "exponent"),
        ("0.0000000001", "more than nine decimals"),
        ("1000000000.5", "above one billion"),
        ("99999999999999999999999999999999", "overflowing"),
        ("", "empty"),
        (" ", "blank"),
    ];
    for (amount, why) in cases {
        let status = admin
            .add_credits(authed(
                &billing.admin_key,
                pb::AddCreditsRequest {
                    api_key_id: id.clone(),
                    amount: amount.into(),
                    ..Default::default()
                },
            ))
            .await
            .expect_err(why);
        assert_eq!(status.code(), Code::InvalidArgument, "{why}: {status:?}");
    }
    let unknown = admin
        .add_credits(authed(
            &billing.admin_key,
            pb::AddCreditsRequest {
                api_key_id: "no-such-key".into(),
                amount: "1".into(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("unknown account");
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(billing.account_of(&key).await.credits_balance, "0");
    assert_ledger_invariants(&billing.database).await;
}

async fn adjustments_move_the_balance_with_a_reason(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&id, "10").await;
    let mut admin = billing.admin().await;
    let adjust = |amount: &str, reason: &str| {
        authed(
            &billing.admin_key,
            pb::AdjustCreditsRequest {
                api_key_id: id.clone(),
                amount: amount.into(),
                reason: reason.into(),
                idempotency_key: None,
            },
        )
    };

    let down = admin
        .adjust_credits(adjust("-2.25", "goodwill correction"))
        .await
        .expect("down")
        .into_inner();
    let up = admin
        .adjust_credits(adjust("0.5", "promo"))
        .await
        .expect("up")
        .into_inner();
    let overdraw = admin
        .adjust_credits(adjust("-100", "too much"))
        .await
        .expect_err("overdraw");
    let no_reason = admin
        .adjust_credits(adjust("1", "  "))
        .await
        .expect_err("reason required");
    let control = admin
        .adjust_credits(adjust("1", "bad\u{0}reason"))
        .await
        .expect_err("control characters");

    assert_eq!(down.transaction.expect("tx").balance_after, "7.75");
    assert_eq!(up.account.expect("account").credits_balance, "8.25");
    assert_eq!(overdraw.code(), Code::FailedPrecondition);
    assert_eq!(no_reason.code(), Code::InvalidArgument);
    assert_eq!(control.code(), Code::InvalidArgument);
    assert_eq!(billing.account_of(&key).await.credits_balance, "8.25");
    assert_ledger_invariants(&billing.database).await;
}

async fn refunds_give_back_at_most_the_charge_once(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    let (other_id, other_key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&id, "10").await;
    billing.add_credits(&other_id, "10").await;
    let usage = execute(&billing, &key, "exec-refund", 6548, 108)
        .await
        .usage
        .expect("usage");
    let other_usage = execute(&billing, &other_key, "exec-other", 10, 10)
        .await
        .usage
        .expect("usage");
    let mut admin = billing.admin().await;
    let refund = |api_key_id: &str, record: &str, amount: Option<&str>| {
        authed(
            &billing.admin_key,
            pb::RefundRequest {
                api_key_id: api_key_id.into(),
                usage_record_id: record.into(),
                amount: amount.map(str::to_string),
                reason: Some("model error".into()),
            },
        )
    };

    let too_much = admin
        .refund(refund(&id, &usage.id, Some("0.2")))
        .await
        .expect_err("above the charge");
    let first = admin
        .refund(refund(&id, &usage.id, Some("0.1")))
        .await
        .expect("refund")
        .into_inner();
    let again = admin
        .refund(refund(&id, &usage.id, Some("0.1")))
        .await
        .expect("same refund again")
        .into_inner();
    let different = admin
        .refund(refund(&id, &usage.id, Some("0.00308")))
        .await
        .expect_err("a second refund");
    let cross = admin
        .refund(refund(&id, &other_usage.id, None))
        .await
        .expect_err("another key's record");

    assert_eq!(too_much.code(), Code::FailedPrecondition);
    assert_eq!(first.transaction, again.transaction);
    assert_eq!(different.code(), Code::AlreadyExists);
    assert_eq!(cross.code(), Code::NotFound);
    let account = billing.account_of(&key).await;
    assert_eq!(account.credits_balance, "9.99692");
    assert_eq!(account.total_spent, "0.00308");
    assert_ledger_invariants(&billing.database).await;
}

async fn limits_are_set_and_cleared(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    let mut admin = billing.admin().await;
    let limits = |daily: Option<&str>, monthly: Option<&str>| {
        authed(
            &billing.admin_key,
            pb::SetLimitsRequest {
                api_key_id: id.clone(),
                daily_limit: daily.map(str::to_string),
                monthly_limit: monthly.map(str::to_string),
            },
        )
    };

    let set = admin
        .set_limits(limits(Some("1.5"), Some("20")))
        .await
        .expect("set")
        .into_inner();
    let negative = admin
        .set_limits(limits(Some("-1"), None))
        .await
        .expect_err("negative");
    let cleared = admin
        .set_limits(limits(None, Some("20")))
        .await
        .expect("clear daily")
        .into_inner();

    assert_eq!(
        (set.daily_limit.as_deref(), set.monthly_limit.as_deref()),
        (Some("1.5"), Some("20"))
    );
    assert_eq!(negative.code(), Code::InvalidArgument);
    assert_eq!(cleared.daily_limit, None);
    assert_eq!(
        billing.account_of(&key).await.monthly_limit.as_deref(),
        Some("20")
    );
}

async fn a_price_change_never_alters_a_recorded_cost(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&id, "10").await;
    let before = execute(&billing, &key, "exec-before", 1000, 1000)
        .await
        .usage
        .expect("usage");
    let mut admin = billing.admin().await;

    let price = admin
        .set_price(authed(
            &billing.admin_key,
            pb::SetPriceRequest {
                model: "test-model".into(),
                base_input_price_per_1k: "0.02".into(),
                base_output_price_per_1k: "0.06".into(),
                markup: Some("2".into()),
                ..Default::default()
            },
        ))
        .await
        .expect("set price")
        .into_inner();
    let after = execute(&billing, &key, "exec-after", 1000, 1000)
        .await
        .usage
        .expect("usage");
    let prices = admin
        .list_prices(authed(&billing.admin_key, pb::ListPricesRequest {}))
        .await
        .expect("list");
    let past = admin
        .set_price(authed(
            &billing.admin_key,
            pb::SetPriceRequest {
                model: "test-model".into(),
                base_input_price_per_1k: "1".into(),
                base_output_price_per_1k: "1".into(),
                markup: None,
                effective_from: Some(prost_types::Timestamp {
                    seconds: 1_000_000,
                    nanos: 0,
                }),
                ..Default::default()
            },
        ))
        .await
        .expect_err("a price may not rewrite the past");

    assert_eq!(
        (
            price.input_price_per_1k.as_str(),
            price.output_price_per_1k.as_str()
        ),
        ("0.04", "0.12")
    );
    assert_eq!(before.total_cost, "0.06"); // 1k × 0.015 + 1k × 0.045
    assert_eq!(after.total_cost, "0.16"); // 1k × 0.04 + 1k × 0.12
    assert_eq!(past.code(), Code::InvalidArgument);
    assert_eq!(
        prices.into_inner().prices.len(),
        2,
        "the seed's default and the new row"
    );
    let records = billing
        .account()
        .await
        .list_usage(authed(&key, pb::ListUsageRequest::default()))
        .await
        .expect("usage")
        .into_inner()
        .records;
    let recorded: Vec<_> = records
        .iter()
        .map(|r| (r.execution_id.as_str(), r.total_cost.as_str()))
        .collect();
    assert_eq!(recorded, [("exec-after", "0.16"), ("exec-before", "0.06")]);
    assert_ledger_invariants(&billing.database).await;
}

async fn usage_and_transactions_paginate_and_filter(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&id, "10").await;
    for n in 0..5 {
        let session = billing.metering().await;
        let open = pb::MeterOpen {
            api_key: key.clone(),
            execution_id: format!("exec-{n}"),
            labels: Some(pb::Labels {
                model: if n % 2 == 0 { "model-a" } else { "model-b" }.into(),
                workspace_id: if n < 3 { "ws-a" } else { "ws-b" }.into(),
                session_id: "s".into(),
                endpoint: "/execute".into(),
                ..Default::default()
            }),
            estimated_input_tokens: 100,
            max_output_tokens: 0,
            ..Default::default()
        };
        let session =
            tests::MeterSession::open(session, &tests::bearer(&billing.service_token), open)
                .await
                .expect("open");
        session
            .close(100, 10, pb::UsageStatus::Completed)
            .await
            .expect("close");
    }
    let mut account = billing.account().await;

    let mut seen = Vec::new();
    let mut cursor = None;
    for _ in 0..10 {
        let page = account
            .list_usage(authed(
                &key,
                pb::ListUsageRequest {
                    limit: 2,
                    cursor: cursor.clone(),
                    ..Default::default()
                },
            ))
            .await
            .expect("page")
            .into_inner();
        seen.extend(page.records.into_iter().map(|r| r.execution_id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let by_workspace = account
        .list_usage(authed(
            &key,
            pb::ListUsageRequest {
                workspace_id: Some("ws-b".into()),
                ..Default::default()
            },
        ))
        .await
        .expect("filter")
        .into_inner();
    let by_model = account
        .list_usage(authed(
            &key,
            pb::ListUsageRequest {
                model: Some("model-a".into()),
                ..Default::default()
            },
        ))
        .await
        .expect("filter")
        .into_inner();
    let future = prost_types::Timestamp {
        seconds: 4_000_000_000,
        nanos: 0,
    };
    let by_time = account
        .list_usage(authed(
            &key,
            pb::ListUsageRequest {
                range: Some(pb::TimeRange {
                    from: Some(future),
                    to: None,
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("filter")
        .into_inner();
    let too_big = account
        .list_usage(authed(
            &key,
            pb::ListUsageRequest {
                limit: 1001,
                ..Default::default()
            },
        ))
        .await
        .expect_err("limit above 1000");
    let bad_cursor = account
        .list_usage(authed(
            &key,
            pb::ListUsageRequest {
                cursor: Some("nope".into()),
                ..Default::default()
            },
        ))
        .await
        .expect_err("bad cursor");
    let deductions = account
        .list_transactions(authed(
            &key,
            pb::ListTransactionsRequest {
                r#type: pb::TransactionType::UsageDeduction.into(),
                ..Default::default()
            },
        ))
        .await
        .expect("transactions")
        .into_inner();
    let first_transaction = account
        .list_transactions(authed(
            &key,
            pb::ListTransactionsRequest {
                limit: 1,
                ..Default::default()
            },
        ))
        .await
        .expect("transactions")
        .into_inner();
    let workspaces = account
        .list_workspace_usage(authed(&key, pb::ListWorkspaceUsageRequest::default()))
        .await
        .expect("workspaces")
        .into_inner()
        .workspaces;
    let stats = account
        .get_stats(authed(&key, pb::GetStatsRequest::default()))
        .await
        .expect("stats")
        .into_inner();

    assert_eq!(seen, ["exec-4", "exec-3", "exec-2", "exec-1", "exec-0"]);
    assert_eq!(by_workspace.records.len(), 2);
    assert_eq!(by_model.records.len(), 3);
    assert!(by_time.records.is_empty());
    assert_eq!(too_big.code(), Code::InvalidArgument);
    assert_eq!(bad_cursor.code(), Code::InvalidArgument);
    assert_eq!(deductions.transactions.len(), 5);
    assert_eq!(first_transaction.transactions.len(), 1);
    assert!(first_transaction.next_cursor.is_some());
    let workspace_requests: Vec<_> = workspaces
        .iter()
        .map(|w| {
            (
                w.workspace_id.as_str(),
                w.totals.as_ref().map_or(0, |t| t.requests),
            )
        })
        .collect();
    assert_eq!(workspace_requests, [("ws-a", 3), ("ws-b", 2)]);
    let totals = stats.totals.expect("totals");
    // Each execution: 100 × 0.015/1k + 10 × 0.045/1k = 0.0015 + 0.00045.
    assert_eq!(
        (
            totals.requests,
            totals.total_tokens,
            totals.total_cost.as_str()
        ),
        (5, 550, "0.00975")
    );
    assert_eq!(stats.today.expect("today").requests, 5);
    assert_eq!(stats.this_month.expect("month").requests, 5);
    let models: Vec<_> = stats
        .by_model
        .iter()
        .map(|m| {
            (
                m.model.as_str(),
                m.totals.as_ref().map_or(0, |t| t.requests),
            )
        })
        .collect();
    assert_eq!(models, [("model-a", 3), ("model-b", 2)]);
    assert_eq!(stats.credits_balance, "9.99025");
    assert_ledger_invariants(&billing.database).await;
}

async fn admin_reads_any_accounts_stats(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&id, "1").await;
    execute(&billing, &key, "exec-stats", 1000, 0).await;

    let stats = billing
        .admin()
        .await
        .get_account_stats(authed(
            &billing.admin_key,
            pb::GetAccountStatsRequest {
                api_key_id: id.clone(),
                range: None,
            },
        ))
        .await
        .expect("stats")
        .into_inner();
    let unknown = billing
        .admin()
        .await
        .get_account_stats(authed(
            &billing.admin_key,
            pb::GetAccountStatsRequest {
                api_key_id: "nope".into(),
                range: None,
            },
        ))
        .await
        .expect_err("unknown account");

    assert_eq!(stats.totals.expect("totals").total_cost, "0.015");
    assert_eq!(stats.credits_balance, "0.985");
    assert_eq!(unknown.code(), Code::NotFound);
}

async fn keys_are_listed_without_secrets_and_revoked(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    let mut admin = billing.admin().await;
    let custom = admin
        .create_key(authed(
            &billing.admin_key,
            pb::CreateKeyRequest {
                name: "ci".into(),
                key_type: pb::KeyType::Internal.into(),
                prefix: Some("tb_ci_".into()),
                expires_at: None,
                ..Default::default()
            },
        ))
        .await
        .expect("custom prefix")
        .into_inner();
    let bad_prefix = admin
        .create_key(authed(
            &billing.admin_key,
            pb::CreateKeyRequest {
                name: "x".into(),
                key_type: pb::KeyType::Standard.into(),
                prefix: Some("Bad-".into()),
                expires_at: None,
                ..Default::default()
            },
        ))
        .await
        .expect_err("bad prefix");
    let no_type = admin
        .create_key(authed(
            &billing.admin_key,
            pb::CreateKeyRequest {
                name: "x".into(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("key type required");

    let listed = admin
        .list_keys(authed(
            &billing.admin_key,
            pb::ListKeysRequest {
                include_revoked: false,
            },
        ))
        .await
        .expect("list")
        .into_inner()
        .keys;
    admin
        .revoke_key(authed(
            &billing.admin_key,
            pb::RevokeKeyRequest { id: id.clone() },
        ))
        .await
        .expect("revoke");
    let after = admin
        .list_keys(authed(
            &billing.admin_key,
            pb::ListKeysRequest {
                include_revoked: false,
            },
        ))
        .await
        .expect("list")
        .into_inner()
        .keys;
    let unknown = admin
        .revoke_key(authed(
            &billing.admin_key,
            pb::RevokeKeyRequest { id: "nope".into() },
        ))
        .await
        .expect_err("unknown");

    assert!(key.starts_with("tb_prod_") && key.len() == "tb_prod_".len() + 64);
    assert!(custom.key.starts_with("tb_ci_"));
    assert_eq!(bad_prefix.code(), Code::InvalidArgument);
    assert_eq!(no_type.code(), Code::InvalidArgument);
    assert_eq!(listed.len(), 2);
    let listing = format!("{listed:?}");
    assert!(
        !listing.contains(&key[8..]) && !listing.contains(&custom.key[6..]),
        "a listing shows no key"
    );
    assert_eq!(after.len(), 1);
    assert_eq!(unknown.code(), Code::NotFound);
    let mut connection = billing
        .database
        .connect()
        .await
        .expect("connect to the test database");
    let stored: Vec<String> = sqlx::query_scalar("SELECT key_hash FROM api_keys")
        .fetch_all(&mut connection)
        .await
        .expect("hashes");
    assert!(
        stored
            .iter()
            .all(|hash| hash.len() == 64 && !hash.contains(&key[8..]))
    );
}

/// Another process (a backup, `sqlite3`, this test) opening and closing the database while billing-svc
/// writes must not lose a write: a plain open/close of the SQLite file inside billing-svc once dropped its
/// POSIX locks, so the other process's close deleted the live WAL.
async fn writes_survive_another_process_reading_the_database(backend: Backend) {
    // A process: in this one SQLite would share its locks with the reader's connections.
    let billing = tests::Billing::start(backend, &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    let reader = {
        let database_url = billing.database.url.clone();
        tokio::spawn(async move {
            for _ in 0..300 {
                let mut connection = sqlx::AnyConnection::connect(&database_url)
                    .await
                    .expect("connect");
                let _: i64 =
                    sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM transactions")
                        .fetch_one(&mut connection)
                        .await
                        .expect("count");
                connection.close().await.expect("close");
            }
        })
    };

    for _ in 0..30 {
        billing.add_credits(&id, "1").await;
    }
    reader.await.expect("reader");

    assert_eq!(billing.account_of(&key).await.credits_balance, "30");
    let mut connection = billing
        .database
        .connect()
        .await
        .expect("connect to the test database");
    let rows: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM transactions")
        .fetch_one(&mut connection)
        .await
        .expect("count");
    assert_eq!(rows, 30, "every acknowledged credit is in the database");
    assert_ledger_invariants(&billing.database).await;
}

tests::backend_tests!(
    seed_example_is_exact,
    internal_key_records_cost_and_charges_nothing,
    credits_with_one_idempotency_key_apply_once,
    concurrent_credits_with_one_idempotency_key_apply_once,
    invalid_amounts_are_refused_and_write_nothing,
    adjustments_move_the_balance_with_a_reason,
    refunds_give_back_at_most_the_charge_once,
    limits_are_set_and_cleared,
    a_price_change_never_alters_a_recorded_cost,
    usage_and_transactions_paginate_and_filter,
    admin_reads_any_accounts_stats,
    keys_are_listed_without_secrets_and_revoked,
    writes_survive_another_process_reading_the_database,
);
