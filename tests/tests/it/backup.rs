//! `billing-svc backup --to FILE` while billing-svc is under load: the copy is consistent (the one ledger
//! audit passes on it, also through `billing-svc audit`), holds everything acknowledged before the backup
//! started, and serves when a billing-svc is started on it (the restore). Bad targets and a PostgreSQL URL
//! are refused with a message; `billing-svc audit` fails on a broken ledger.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use proto::billing::v1 as pb;
use rust_decimal::Decimal;
use tests::{Backend, Billing, TestDatabase, assert_ledger_invariants, binary_path};

/// Runs `billing-svc backup` with `args` on `database_url`; its exit status and what it printed.
async fn backup(database_url: &str, args: &[&str]) -> (bool, String) {
    let mut command = vec!["backup"];
    command.extend_from_slice(args);
    billing_command(database_url, &command).await
}

/// Runs `billing-svc <args>` on `database_url`; its exit status and what it printed.
async fn billing_command(database_url: &str, args: &[&str]) -> (bool, String) {
    let run = tokio::process::Command::new(binary_path("billing-svc"))
        .args(args)
        .env_clear()
        .env("DATABASE_URL", database_url)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the backup ends in time")
        .expect("run billing-svc backup");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn balance(account: &pb::Account) -> Decimal {
    account.credits_balance.parse().expect("decimal balance")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_is_consistent_complete_and_serves_once_restored() {
    let billing = Arc::new(Billing::start(Backend::Sqlite, &[]).await);
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&id, "100").await;

    // Load: credits and metered executions on the key until told to stop (bounded in count too).
    let stop = Arc::new(AtomicBool::new(false));
    let credited = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (billing, stop, credited, id, key) = (
            billing.clone(),
            stop.clone(),
            credited.clone(),
            id.clone(),
            key.clone(),
        );
        load.push(tokio::spawn(async move {
            for round in 0..2_000 {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                if worker == 0 {
                    billing.add_credits(&id, "1").await;
                    credited.fetch_add(1, Ordering::AcqRel);
                } else {
                    let execution = format!("backup-{worker}-{round}");
                    let session = billing.open(&key, &execution, 100, 50).await.expect("open");
                    session
                        .close(100, 50, pb::UsageStatus::Completed)
                        .await
                        .expect("settle");
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let credited_before = credited.load(Ordering::Acquire);
    let folder = tempfile::tempdir().expect("backup folder");
    let target = folder.path().join("billing-backup.db");
    let target_text = target.display().to_string();

    let (ok, printed) = backup(&billing.database.url, &["--to", &target_text]).await;

    stop.store(true, Ordering::Release);
    for worker in load {
        worker.await.expect("load worker");
    }
    assert!(ok, "the backup succeeds under load: {printed}");
    assert!(printed.contains("audited"), "{printed}");
    assert!(!folder.path().join("billing-backup.db.partial").exists());

    // The restore: a billing-svc started on a copy of the backup serves the account as it was.
    let restored_file = folder.path().join("restored.db");
    std::fs::copy(&target, &restored_file).expect("copy the backup into place");
    let restored_db = TestDatabase::existing(
        Backend::Sqlite,
        format!("sqlite://{}", restored_file.display()),
    );
    assert_ledger_invariants(&restored_db).await;
    let (audited, printed) = billing_command(&restored_db.url, &["audit"]).await;
    assert!(
        audited,
        "billing-svc audit passes on the restored copy: {printed}"
    );
    let restored = Billing::start_with(
        restored_db,
        billing.admin_key.clone(),
        billing.service_token.clone(),
        &[],
    )
    .await;
    let account = restored.account_of(&key).await;
    // Balance + spent is every credit in the copy: at least those acknowledged before the backup started,
    // at most all of them.
    let credits = balance(&account) + account.total_spent.parse::<Decimal>().expect("decimal");
    let (floor, ceiling) = (
        Decimal::from(100 + credited_before),
        Decimal::from(100 + credited.load(Ordering::Acquire)),
    );
    assert!(
        floor <= credits && credits <= ceiling,
        "credits in the copy {credits}, expected between {floor} and {ceiling}"
    );
    restored.add_credits(&id, "1").await;
    assert_ledger_invariants(&restored.database).await;
    assert_ledger_invariants(&billing.database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_refuses_what_it_cannot_do_with_a_message() {
    let billing = Billing::start(Backend::Sqlite, &[]).await;
    let folder = tempfile::tempdir().expect("folder");
    let existing = folder.path().join("taken.db");
    std::fs::write(&existing, b"not yours").expect("a file in the way");
    let existing_text = existing.display().to_string();
    let missing_db = format!("sqlite://{}/none.db", folder.path().display());
    let fresh = folder.path().join("fresh.db").display().to_string();

    let cases = [
        (
            billing.database.url.as_str(),
            existing_text.as_str(),
            "exists",
            "an existing target is never overwritten",
        ),
        (
            missing_db.as_str(),
            fresh.as_str(),
            "no SQLite database",
            "a missing database is named",
        ),
        (
            "postgres://postgres@127.0.0.1:1/billing",
            fresh.as_str(),
            "pg_dump",
            "PostgreSQL is backed up with pg_dump",
        ),
    ];
    for (url, to, expected, why) in cases {
        let (ok, printed) = backup(url, &["--to", to]).await;
        assert!(!ok, "{why}: {printed}");
        assert!(printed.contains(expected), "{why}: {printed}");
    }
    assert_eq!(std::fs::read(&existing).expect("still there"), b"not yours");
    assert!(!folder.path().join("fresh.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_command_fails_on_a_broken_ledger() {
    let billing = Billing::start(Backend::Sqlite, &[]).await;
    let (id, _) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&id, "5").await;
    let database = billing.stop().await;
    let (passed, printed) = billing_command(&database.url, &["audit"]).await;
    assert!(passed, "{printed}");

    // A balance changed behind the ledger's back.
    let mut connection = database.connect().await.expect("connect");
    sqlx::query("UPDATE billing_accounts SET credits_balance = credits_balance + 1")
        .execute(&mut connection)
        .await
        .expect("tamper");
    drop(connection);
    let (passed, printed) = billing_command(&database.url, &["audit"]).await;
    assert!(!passed, "{printed}");
    assert!(printed.contains("credits_balance"), "{printed}");
}
