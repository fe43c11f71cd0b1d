//! SQLite storage faults: the database locked by another process beyond the busy timeout and the disk
//! full while running, and a read-only file system at start. A running service must give the client a
//! clear, retryable error that leaks no SQL, write nothing half-way (the ledger invariants hold and the
//! balance is exactly the sum of what was acknowledged) and work again once the fault is gone; a start
//! that cannot write must fail with a message naming `DATABASE_URL`.
//!
//! The disk-full and read-only cases mount a small tmpfs, which needs root (CI runs as root); elsewhere
//! they say so and skip.

use std::process::Stdio;
use std::time::Duration;

use proto::billing::v1 as pb;
use rust_decimal::Decimal;
use tests::tmpfs::{Tmpfs, fill};
use tests::{Backend, Billing, assert_ledger_invariants, authed, binary_path};
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::Code;

/// Words that would show a database error leaking to a client.
const LEAKS: &[&str] = &[
    "sql",
    "SQL",
    "INSERT",
    "UPDATE",
    "SELECT",
    "constraint",
    "database is",
];

fn assert_clean_error(status: &tonic::Status) {
    assert!(
        [Code::Unavailable, Code::Internal].contains(&status.code()),
        "{status:?}"
    );
    for leak in LEAKS {
        assert!(
            !status.message().contains(leak),
            "the message leaks {leak:?}: {status:?}"
        );
    }
}

async fn add_credits(billing: &Billing, id: &str, amount: &str) -> Result<(), tonic::Status> {
    billing
        .admin()
        .await
        .add_credits(authed(
            &billing.admin_key,
            pb::AddCreditsRequest {
                api_key_id: id.into(),
                amount: amount.into(),
                ..Default::default()
            },
        ))
        .await
        .map(|_| ())
}

async fn balance(billing: &Billing, key: &str) -> Decimal {
    billing
        .account_of(key)
        .await
        .credits_balance
        .parse()
        .expect("decimal balance")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_by_another_process_is_unavailable_and_writes_nothing() {
    let billing = Billing::start(Backend::Sqlite, &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&id, "10").await;
    let path = billing
        .database
        .url
        .strip_prefix("sqlite://")
        .expect("a sqlite url")
        .to_string();

    // Another process takes the write lock for longer than billing-svc's 5 s busy timeout.
    let script = "import sqlite3, sys, time\n\
                  c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
                  c.execute('BEGIN EXCLUSIVE')\n\
                  print('locked', flush=True)\n\
                  time.sleep(float(sys.argv[2]))\n\
                  c.execute('ROLLBACK')\n";
    let mut locker = tokio::process::Command::new("python3")
        .args(["-c", script, &path, "7"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3");
    let mut lines = BufReader::new(locker.stdout.take().expect("stdout")).lines();
    assert_eq!(
        lines.next_line().await.expect("read").as_deref(),
        Some("locked")
    );

    let refused = add_credits(&billing, &id, "5")
        .await
        .expect_err("the database is locked");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert_clean_error(&refused);
    assert!(locker.wait().await.expect("locker exits").success());

    add_credits(&billing, &id, "1")
        .await
        .expect("works once the lock is gone");
    assert_eq!(balance(&billing, &key).await, Decimal::from(11));
    assert_ledger_invariants(&billing.database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_is_a_clean_error_and_writes_nothing() {
    let Some(tmpfs) = Tmpfs::mount("4m") else {
        return;
    };
    let billing = Billing::start_on(tmpfs.database(), &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&id, "10").await;
    let filler = fill(tmpfs.dir.path());

    // Writes go on until the journal needs a page the disk does not have.
    let mut acknowledged = Decimal::from(10);
    let mut refused = None;
    for _ in 0..500 {
        match add_credits(&billing, &id, "1").await {
            Ok(()) => acknowledged += Decimal::ONE,
            Err(status) => {
                refused = Some(status);
                break;
            }
        }
    }
    let refused = refused.expect("a full disk refuses writes");
    assert_clean_error(&refused);

    std::fs::remove_file(filler).expect("free the disk");
    add_credits(&billing, &id, "1")
        .await
        .expect("works once there is room");
    acknowledged += Decimal::ONE;
    assert_eq!(balance(&billing, &key).await, acknowledged);
    assert_ledger_invariants(&billing.database).await;
}

/// Runs billing-svc on `url`, which must fail to start; returns everything it printed.
async fn failed_start(url: &str) -> String {
    let run = tokio::process::Command::new(binary_path("billing-svc"))
        .args(["--listen", "127.0.0.1:0"])
        .env_clear()
        .env("DATABASE_URL", url)
        .env("ADMIN_API_KEY", "admin-key-for-a-start-test")
        .env("SERVICE_TOKEN", "service-token-for-a-start-test")
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("billing-svc gives up in time")
        .expect("run billing-svc");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !output.status.success(),
        "billing-svc must not start: {text}"
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_on_a_read_only_file_system_fails_at_start_naming_database_url() {
    let Some(tmpfs) = Tmpfs::mount("8m") else {
        return;
    };
    let billing = Billing::start_on(tmpfs.database(), &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&id, "10").await;
    let (admin_key, service_token) = (billing.admin_key.clone(), billing.service_token.clone());
    // Killed, so that nothing holds the files open and the file system can turn read-only.
    let database = billing.stop().await;
    tmpfs.remount("ro");

    let existing = failed_start(&database.url).await;
    let missing = failed_start(&format!("{}-missing.db", database.url)).await;

    assert!(existing.contains("DATABASE_URL"), "{existing}");
    assert!(missing.contains("DATABASE_URL"), "{missing}");
    tmpfs.remount("rw");
    let billing = Billing::start_with(database, admin_key, service_token, &[]).await;
    assert_eq!(balance(&billing, &key).await, Decimal::from(10));
    assert_ledger_invariants(&billing.database).await;
}
