//! The hash-chained ledger (DESIGN §19), on both backends with billing-svc as a process: every ledger row is
//! chained to its account's previous one, `GET`-able as the account's head; with the service stopped, each
//! kind of tampering — an amount edited with consistent balance and grant edits (which the SQL invariants
//! cannot see), an edited time, a deleted row, two rows swapped, a row appended with a correctly computed
//! hash, a hash emptied (which a restart must not fill in) — fails `billing-svc audit`, which names the row;
//! undone, the audit passes again.

use std::time::Duration;

use billing_svc::credits::transactions::chain;
use proto::billing::v1 as pb;
use sqlx::Row;
use tests::{Backend, Billing, TestDatabase, authed, backend_tests, binary_path};

backend_tests!(tampering_with_any_row_fails_the_audit_naming_it);

/// `billing-svc audit` on `url`: whether it passed, and what it printed.
async fn audit(url: &str) -> (bool, String) {
    let run = tokio::process::Command::new(binary_path("billing-svc"))
        .arg("audit")
        .env_clear()
        .env("DATABASE_URL", url)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the audit ends in time")
        .expect("run billing-svc audit");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

async fn exec(database: &TestDatabase, sql: &str, binds: &[i64]) {
    let mut connection = database.connect().await.unwrap();
    let mut query = sqlx::query(sql);
    for bind in binds {
        query = query.bind(*bind);
    }
    query
        .execute(&mut connection)
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
}

async fn assert_broken_at(database: &TestDatabase, what: &str, expected: &str) {
    let (passed, printed) = audit(&database.url).await;
    assert!(!passed, "{what}: the audit passed: {printed}");
    assert!(
        printed.contains(expected),
        "{what}: the audit should say {expected:?}: {printed}"
    );
}

async fn assert_passes(database: &TestDatabase, what: &str) {
    let (passed, printed) = audit(&database.url).await;
    assert!(passed, "{what}: {printed}");
}

async fn tampering_with_any_row_fails_the_audit_naming_it(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (key_id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&key_id, "10").await;
    for n in 0..3 {
        let meter = billing
            .open(&key, &format!("chain-{n}"), 1000, 100)
            .await
            .unwrap();
        meter
            .close(1000, 100, pb::UsageStatus::Completed)
            .await
            .unwrap();
    }
    billing
        .admin()
        .await
        .adjust_credits(authed(
            &billing.admin_key,
            pb::AdjustCreditsRequest {
                api_key_id: key_id.clone(),
                amount: "-0.5".into(),
                reason: "test".into(),
                idempotency_key: None,
            },
        ))
        .await
        .unwrap();
    // Another account's rows interleave with this one's.
    let (other_id, _) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&other_id, "3").await;

    // The head: the latest row and its hash, as the rows list them.
    let head = billing
        .account()
        .await
        .get_ledger_head(authed(&key, pb::GetLedgerHeadRequest {}))
        .await
        .unwrap()
        .into_inner();
    let rows = billing
        .account()
        .await
        .list_transactions(authed(
            &key,
            pb::ListTransactionsRequest {
                limit: 100,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .transactions;
    assert_eq!(rows.len(), 5);
    assert_eq!(head.transaction_id.as_deref(), Some(rows[0].id.as_str()));
    assert_eq!(head.hash, rows[0].hash);
    assert_eq!(
        rows[4].prev_hash,
        chain::GENESIS,
        "the first row starts the chain"
    );
    for pair in rows.windows(2) {
        assert_eq!(
            pair[0].prev_hash, pair[1].hash,
            "each row chains to the one before"
        );
    }
    let account_id = billing.account_of(&key).await.account_id;
    let database = billing.stop().await;
    assert_passes(&database, "the untouched database").await;

    let ids: Vec<i64> = {
        let mut connection = database.connect().await.unwrap();
        sqlx::query("SELECT id FROM transactions WHERE account_id = $1 ORDER BY id")
            .bind(&account_id)
            .fetch_all(&mut connection)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<i64, _>(0))
            .collect()
    };
    let (first, second, third, last) = (ids[0], ids[1], ids[2], ids[4]);
    let bind_account = |sql: &str| sql.replace("$account", &format!("'{account_id}'"));

    // 1. The credit's amount edited, with every balance after it, the account and a grant edited to match:
    //    the SQL invariants hold, the chain does not.
    let edit = |sign: i64| {
        let delta = sign * 1_000_000;
        [
            (
                bind_account("UPDATE transactions SET amount = amount + $1 WHERE id = $2"),
                vec![delta, first],
            ),
            (
                bind_account(
                    "UPDATE transactions SET balance_after = balance_after + $1 WHERE account_id = $account AND id >= $2",
                ),
                vec![delta, first],
            ),
            (
                bind_account(
                    "UPDATE billing_accounts SET credits_balance = credits_balance + $1 WHERE id = $account",
                ),
                vec![delta],
            ),
            (
                bind_account(
                    "UPDATE credit_grants SET remaining = remaining + $1 WHERE id = (SELECT MIN(id) FROM credit_grants WHERE account_id = $account AND remaining > 1000000000)",
                ),
                vec![delta],
            ),
        ]
    };
    for (sql, binds) in edit(1) {
        exec(&database, &sql, &binds).await;
    }
    let (_, printed) = audit(&database.url).await;
    assert!(
        !printed.contains(" accounts whose") && !printed.contains(" transactions whose"),
        "the balances were made to match: {printed}"
    );
    assert_broken_at(
        &database,
        "an edited amount",
        &format!("ledger row {first} was changed"),
    )
    .await;
    for (sql, binds) in edit(-1) {
        exec(&database, &sql, &binds).await;
    }
    assert_passes(&database, "the amount restored").await;

    // 2. A time edited.
    exec(
        &database,
        "UPDATE transactions SET timestamp = timestamp - $1 WHERE id = $2",
        &[1000, third],
    )
    .await;
    assert_broken_at(
        &database,
        "an edited time",
        &format!("ledger row {third} was changed"),
    )
    .await;
    exec(
        &database,
        "UPDATE transactions SET timestamp = timestamp + $1 WHERE id = $2",
        &[1000, third],
    )
    .await;
    assert_passes(&database, "the time restored").await;

    // 3. Two rows swapped (their ids exchanged).
    let swap = async |a: i64, b: i64| {
        exec(
            &database,
            "UPDATE transactions SET id = $1 WHERE id = $2",
            &[-1, a],
        )
        .await;
        exec(
            &database,
            "UPDATE transactions SET id = $1 WHERE id = $2",
            &[a, b],
        )
        .await;
        exec(
            &database,
            "UPDATE transactions SET id = $1 WHERE id = $2",
            &[b, -1],
        )
        .await;
    };
    swap(second, third).await;
    assert_broken_at(
        &database,
        "two rows swapped",
        &format!("ledger row {second} does not follow"),
    )
    .await;
    swap(second, third).await;
    assert_passes(&database, "the rows back in order").await;

    // 4. A row deleted (kept to put back).
    let saved = {
        let mut connection = database.connect().await.unwrap();
        sqlx::query(
            "SELECT id, account_id, api_key_id, type, amount, balance_after, total_spent_after, description, \
             metadata, timestamp, idempotency_key, prev_hash, hash FROM transactions WHERE id = $1",
        )
        .bind(second)
        .fetch_one(&mut connection)
        .await
        .unwrap()
    };
    exec(
        &database,
        "DELETE FROM transactions WHERE id = $1",
        &[second],
    )
    .await;
    assert_broken_at(
        &database,
        "a deleted row",
        &format!("ledger row {third} does not follow"),
    )
    .await;
    {
        let mut connection = database.connect().await.unwrap();
        sqlx::query(
            "INSERT INTO transactions (id, account_id, api_key_id, type, amount, balance_after, total_spent_after, \
             description, metadata, timestamp, idempotency_key, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(saved.get::<i64, _>(0))
        .bind(saved.get::<String, _>(1))
        .bind(saved.get::<Option<String>, _>(2))
        .bind(saved.get::<String, _>(3))
        .bind(saved.get::<i64, _>(4))
        .bind(saved.get::<i64, _>(5))
        .bind(saved.get::<i64, _>(6))
        .bind(saved.get::<String, _>(7))
        .bind(saved.get::<String, _>(8))
        .bind(saved.get::<i64, _>(9))
        .bind(saved.get::<Option<String>, _>(10))
        .bind(saved.get::<String, _>(11))
        .bind(saved.get::<String, _>(12))
        .execute(&mut connection)
        .await
        .unwrap();
    }
    assert_passes(&database, "the row put back").await;

    // 5. A row appended after the last, its hash computed the documented way: the chain holds to it, but the
    //    account's head (and the head a customer kept) is the old last row.
    let forged_id = last + 1_000;
    {
        let mut connection = database.connect().await.unwrap();
        let last_hash: String = sqlx::query_scalar("SELECT hash FROM transactions WHERE id = $1")
            .bind(last)
            .fetch_one(&mut connection)
            .await
            .unwrap();
        let forged = billing_svc::credits::transactions::Transaction {
            id: forged_id,
            account_id: account_id.clone().into(),
            api_key_id: None,
            kind: billing_svc::credits::transactions::TransactionType::CreditAdjustment,
            amount: money::Money::from_nanos(0),
            balance_after: money::Money::from_nanos(0),
            total_spent_after: money::Money::from_nanos(0),
            description: "forged".into(),
            metadata: "{}".into(),
            timestamp: 0,
            idempotency_key: None,
            prev_hash: last_hash.clone(),
            hash: String::new(),
        };
        let hash = chain::hash(&forged, &last_hash);
        sqlx::query(
            "INSERT INTO transactions (id, account_id, type, amount, balance_after, total_spent_after, description, \
             metadata, timestamp, prev_hash, hash) VALUES ($1, $2, 'credit_adjustment', 0, 0, 0, 'forged', '{}', 0, $3, $4)",
        )
        .bind(forged_id)
        .bind(&account_id)
        .bind(&last_hash)
        .bind(&hash)
        .execute(&mut connection)
        .await
        .unwrap();
    }
    assert_broken_at(
        &database,
        "an appended row",
        &format!("not its last ledger row {forged_id}'s hash"),
    )
    .await;
    exec(
        &database,
        "DELETE FROM transactions WHERE id = $1",
        &[forged_id],
    )
    .await;
    assert_passes(&database, "the forged row removed").await;

    // 6. A row's hash emptied, as if it were written before the chain: the service, started again, does not
    //    fill it in (only rows after an account's last chained row are chained at start), so the audit still
    //    names it; the service chains on meanwhile.
    exec(
        &database,
        "UPDATE transactions SET hash = '' WHERE id = $1",
        &[second],
    )
    .await;
    let billing = Billing::start_on(database, &[]).await;
    billing.add_credits(&other_id, "1").await;
    let database = billing.stop().await;
    assert_broken_at(
        &database,
        "an emptied hash",
        &format!("ledger row {second} was changed"),
    )
    .await;
    {
        let mut connection = database.connect().await.unwrap();
        sqlx::query("UPDATE transactions SET hash = $1 WHERE id = $2")
            .bind(saved.get::<String, _>(12))
            .bind(second)
            .execute(&mut connection)
            .await
            .unwrap();
    }
    assert_passes(&database, "after a restart, the hash restored").await;
}
