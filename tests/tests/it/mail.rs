//! Email (BILLING.md, "Email") against a real SMTP server on loopback (aiosmtpd, [`SmtpReceiver`]), with
//! billing-svc as a process, on both backends: a `balance.low` mail arrives once, in HTML and text, and a
//! kill -9 and restart of billing-svc sends it no second time; mail waits while the SMTP server is down and
//! goes out when it comes up, every failed attempt recorded; the weekly usage report (trend and forecast)
//! and "statement ready" are mailed when their time comes; without SMTP_URL nothing is attempted.

use std::time::Duration;

use proto::billing::v1 as pb;
use serde_json::Value;
use tests::smtp_receiver::SmtpReceiver;
use tests::{Backend, Billing, authed, backend_tests};

backend_tests!(
    a_low_balance_is_mailed_once_across_a_kill,
    mail_waits_for_the_smtp_server,
    the_weekly_report_and_the_statement_are_mailed,
    without_smtp_nothing_is_attempted,
);

const ADDRESS: &str = "finance@customer.test";

fn mail_args(smtp: &str) -> Vec<String> {
    vec![
        "--smtp-url".into(),
        smtp.into(),
        "--mail-from".into(),
        "Example Billing <billing@operator.test>".into(),
        "--mail-poll-interval-ms".into(),
        "50".into(),
        "--mail-retry-schedule-secs".into(),
        "1,1,1,1,1,1,1,1,1,1".into(),
        "--hold-sweep-interval-ms".into(),
        "100".into(),
    ]
}

async fn start(backend: Backend, args: &[String]) -> Billing {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Billing::start(backend, &args).await
}

async fn restart(billing: Billing, args: &[String]) -> Billing {
    let (admin_key, service_token) = (billing.admin_key.clone(), billing.service_token.clone());
    let database = billing.stop().await;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Billing::start_with(database, admin_key, service_token, &args).await
}

/// An account with 10 USD, the address, and a `balance.low` threshold of 5 USD: `(key id, key, account id)`.
async fn account(billing: &Billing) -> (String, String, String) {
    let (key_id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&key_id, "10").await;
    let account_id = billing.account_of(&key).await.account_id;
    let mut admin = billing.admin().await;
    let updated = admin
        .update_account(authed(
            &billing.admin_key,
            pb::UpdateAccountRequest {
                account_id: account_id.clone(),
                email: Some(ADDRESS.into()),
                discount_tiers: None,
            },
        ))
        .await
        .expect("set the email address")
        .into_inner();
    assert_eq!(updated.email, ADDRESS);
    admin
        .set_alerts(authed(
            &billing.admin_key,
            pb::SetAlertsRequest {
                api_key_id: key_id.clone(),
                low_balance: vec!["5".into()],
            },
        ))
        .await
        .expect("set the alert");
    (key_id, key, account_id)
}

async fn adjust(billing: &Billing, key_id: &str, amount: &str) {
    billing
        .admin()
        .await
        .adjust_credits(authed(
            &billing.admin_key,
            pb::AdjustCreditsRequest {
                api_key_id: key_id.into(),
                amount: amount.into(),
                reason: "test".into(),
                idempotency_key: None,
            },
        ))
        .await
        .expect("adjust");
}

async fn attempts(billing: &Billing) -> Vec<(String, Option<String>, i64)> {
    let mut connection = billing.database.connect().await.unwrap();
    sqlx::query_as("SELECT event_id, error, succeeded FROM mail_attempts ORDER BY at, attempt")
        .fetch_all(&mut connection)
        .await
        .unwrap()
}

async fn event_ids(billing: &Billing, kind: &str) -> Vec<String> {
    let mut connection = billing.database.connect().await.unwrap();
    sqlx::query_scalar("SELECT id FROM events WHERE type = $1 ORDER BY seq")
        .bind(kind)
        .fetch_all(&mut connection)
        .await
        .unwrap()
}

/// `YYYY-MM` of the month before `now`'s.
fn previous_month(now: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Datelike;
    let first = now.date_naive().with_day(1).unwrap();
    (first - chrono::Duration::days(1))
        .format("%Y-%m")
        .to_string()
}

/// `YYYY-MM-DD` of a time.
fn monday_name(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

fn text(mail: &Value, field: &str) -> String {
    mail[field].as_str().unwrap_or_default().to_string()
}

async fn a_low_balance_is_mailed_once_across_a_kill(backend: Backend) {
    let smtp = SmtpReceiver::start().await;
    let args = mail_args(&smtp.url);
    let billing = start(backend, &args).await;
    let (key_id, _, account_id) = account(&billing).await;
    adjust(&billing, &key_id, "-6").await;
    assert!(
        smtp.wait_for(1, Duration::from_secs(15)).await,
        "the low balance mail"
    );
    let mail = smtp.received()[0].clone();
    let low = event_ids(&billing, "balance.low").await;
    assert_eq!(low.len(), 1);
    assert_eq!(mail["rcpt"], serde_json::json!([ADDRESS]));
    assert_eq!(text(&mail, "message_id"), format!("<{}@billing>", low[0]));
    assert_eq!(text(&mail, "subject"), "Your balance is below $5.00");
    assert_eq!(
        text(&mail, "from"),
        "Example Billing <billing@operator.test>"
    );
    assert_eq!(text(&mail, "content_type"), "multipart/alternative");
    assert!(text(&mail, "text").contains("Balance: $4.00"), "{mail:#}");
    assert!(text(&mail, "text").contains(&account_id), "{mail:#}");
    assert!(text(&mail, "html").contains("<p>"), "{mail:#}");

    // kill -9 and start again on the same database: the mail is not sent again.
    let billing = restart(billing, &args).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(smtp.received().len(), 1, "mailed once");
    // The next mail still comes, once: used up.
    adjust(&billing, &key_id, "-4").await;
    assert!(
        smtp.wait_for(2, Duration::from_secs(15)).await,
        "the depleted mail"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = smtp.received();
    assert_eq!(received.len(), 2);
    assert_eq!(text(&received[1], "subject"), "Your balance is used up");
    assert_ne!(received[0]["message_id"], received[1]["message_id"]);
}

async fn mail_waits_for_the_smtp_server(backend: Backend) {
    let mut smtp = SmtpReceiver::down();
    let args = mail_args(&smtp.url);
    let billing = start(backend, &args).await;
    let (key_id, _, _) = account(&billing).await;
    adjust(&billing, &key_id, "-6").await;
    let failed = tests::eventually(Duration::from_secs(15), || async {
        attempts(&billing).await.len() >= 2
    })
    .await;
    assert!(failed, "attempts while the server is down");
    assert!(
        attempts(&billing)
            .await
            .iter()
            .all(|(_, error, succeeded)| *succeeded == 0 && error.is_some())
    );
    smtp.start_again().await;
    assert!(
        smtp.wait_for(1, Duration::from_secs(15)).await,
        "delivered once the server is up"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.received().len(), 1);
    let attempts = attempts(&billing).await;
    assert_eq!(
        attempts.last().map(|attempt| attempt.2),
        Some(1),
        "{attempts:?}"
    );
    assert_eq!(attempts.iter().filter(|attempt| attempt.2 == 1).count(), 1);
}

async fn the_weekly_report_and_the_statement_are_mailed(backend: Backend) {
    let smtp = SmtpReceiver::start().await;
    let args = mail_args(&smtp.url);
    let billing = start(backend, &args).await;
    let (_, key, account_id) = account(&billing).await;
    // Three calls, moved to last week (one on its Monday, two on its Wednesday); the account is 40 days
    // old, its credit bought then: its last month closed and its last week ended while it existed.
    for n in 0..3 {
        let meter = billing
            .open(&key, &format!("weekly-{n}"), 1000, 100)
            .await
            .unwrap();
        meter
            .close(1000, 100, pb::UsageStatus::Completed)
            .await
            .unwrap();
    }
    let day = 86_400_000_i64;
    let now = chrono::Utc::now();
    let monday = now.date_naive().week(chrono::Weekday::Mon).first_day();
    let last_monday = monday
        .and_hms_opt(1, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis()
        - 7 * day;
    {
        let mut connection = billing.database.connect().await.unwrap();
        sqlx::query("UPDATE billing_accounts SET created_at = $1 WHERE id = $2")
            .bind(now.timestamp_millis() - 40 * day)
            .bind(&account_id)
            .execute(&mut connection)
            .await
            .unwrap();
        sqlx::query("UPDATE transactions SET timestamp = $1 WHERE account_id = $2 AND type = 'credit_purchase'")
            .bind(now.timestamp_millis() - 40 * day)
            .bind(&account_id)
            .execute(&mut connection)
            .await
            .unwrap();
        for (n, at) in [
            last_monday,
            last_monday + 2 * day,
            last_monday + 2 * day + 60_000,
        ]
        .into_iter()
        .enumerate()
        {
            let record = format!("weekly-{n}");
            let old: i64 =
                sqlx::query_scalar("SELECT timestamp FROM usage_records WHERE execution_id = $1")
                    .bind(&record)
                    .fetch_one(&mut connection)
                    .await
                    .unwrap();
            for table in ["usage_records", "transactions"] {
                sqlx::query(&format!(
                    "UPDATE {table} SET timestamp = $1 WHERE account_id = $2 AND timestamp = $3"
                ))
                .bind(at)
                .bind(&account_id)
                .bind(old)
                .execute(&mut connection)
                .await
                .unwrap();
            }
        }
    }
    // The sweeper of this process already looked at last month and last week: a new process looks again.
    let billing = restart(billing, &args).await;
    assert!(
        smtp.wait_for(2, Duration::from_secs(20)).await,
        "{:?}",
        smtp.received()
    );
    let received = smtp.received();
    let subject = |start: &str| {
        received
            .iter()
            .find(|mail| text(mail, "subject").starts_with(start))
            .unwrap_or_else(|| panic!("no mail \"{start}…\": {received:#?}"))
            .clone()
    };
    let report = subject("Your usage, week of ");
    // 1,000 input and 100 output tokens at the default prices: 0.0195 USD a call.
    assert!(
        text(&report, "text").contains("spent $0.0585 on 3 requests"),
        "{report:#}"
    );
    assert!(
        text(&report, "text").contains(&format!(
            "{}  {}  $0.039",
            monday_name(last_monday + 2 * day),
            "\u{2588}".repeat(20)
        )),
        "{report:#}"
    );
    assert!(
        text(&report, "text").contains(&format!(
            "{}  {}{}  $0.0195",
            monday_name(last_monday),
            "\u{2588}".repeat(10),
            "\u{2591}".repeat(10)
        )),
        "{report:#}"
    );
    assert!(
        text(&report, "text").contains("the month ends near $"),
        "{report:#}"
    );
    assert!(
        text(&report, "html").contains("aria-label=\"Spend by day\""),
        "{report:#}"
    );
    let statement = subject("Your statement for ");
    let last_month = billing
        .account()
        .await
        .get_statement(authed(
            &billing.admin_key,
            pb::GetStatementRequest {
                account_id: Some(account_id.clone()),
                month: previous_month(now),
            },
        ))
        .await
        .expect("last month's statement")
        .into_inner();
    let closing = money::Money::parse_decimal(&last_month.closing_balance).unwrap();
    assert!(
        text(&statement, "text").contains(&format!(
            "Statement No. {} of test key for {} is closed.",
            last_month.number, last_month.month
        )),
        "{statement:#}"
    );
    assert!(
        text(&statement, "text").contains(&format!("closing balance {}.", closing.dollars())),
        "{statement:#}"
    );
    // Once each, however often the sweeper runs.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(smtp.received().len(), 2);
    assert_eq!(event_ids(&billing, "usage.weekly_report").await.len(), 1);
    assert_eq!(event_ids(&billing, "statement.ready").await.len(), 1);
}

async fn without_smtp_nothing_is_attempted(backend: Backend) {
    let billing = Billing::start(backend, &["--hold-sweep-interval-ms", "100"]).await;
    let (key_id, _, _) = account(&billing).await;
    let cursor = || async {
        let mut connection = billing.database.connect().await.unwrap();
        sqlx::query_as::<_, (i64, i64)>("SELECT delivered_seq, failures FROM mail_cursor")
            .fetch_one(&mut connection)
            .await
            .unwrap()
    };
    let before = cursor().await;
    adjust(&billing, &key_id, "-6").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        event_ids(&billing, "balance.low").await.len(),
        1,
        "the event is written"
    );
    assert!(attempts(&billing).await.is_empty(), "nothing attempted");
    assert_eq!(cursor().await, before, "the cursor never moved");
}
