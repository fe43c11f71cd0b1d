//! Monthly statements (BILLING.md, "Statements") through the gateway, on both backends. A month is made of
//! real movements of every kind (a purchase, a promotional grant that expires, calls on two models with a
//! volume tier, a refund, an adjustment), then moved into the past by rewriting the account's row times in
//! ledger order (the backdating the month needs; nothing else is touched). Checked: opening + every movement
//! = closing = the ledger at the month's end, to the nano-dollar; usage by model and token class equals the
//! records; the next month starts where it ended; a closed month never changes; the PDF has the same
//! figures (pypdf extracts them) and draws (pypdfium2 renders it); `statement.ready` once; who may read.
//! Across a month boundary, the organization Costs API and the two statements split the same calls alike.

use chrono::{Datelike, TimeZone, Utc};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sqlx::Row;
use tests::docs_harness::run_bash;
use tests::in_process::Stack;
use tests::{Backend, assert_ledger_invariants, backend_tests};

backend_tests!(
    a_month_with_every_movement_kind_closes_at_the_ledger,
    a_month_boundary_splits_statements_and_costs_alike,
);

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const SECOND_MODEL: &str = "statement-model-2";

fn dec(value: &Value) -> Decimal {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
        .parse()
        .unwrap_or_else(|_| panic!("not a decimal: {value}"))
}

/// `(YYYY-MM, its first millisecond)` of the month `back` months before now's.
fn month_back(back: i32) -> (String, i64) {
    let now = Utc::now();
    let months = now.year() * 12 + now.month0() as i32 - back;
    let (year, month) = (months / 12, months % 12 + 1);
    let start = Utc
        .with_ymd_and_hms(year, month as u32, 1, 0, 0, 0)
        .unwrap()
        .timestamp_millis();
    (format!("{year:04}-{month:02}"), start)
}

async fn admin(stack: &Stack, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut request = reqwest::Client::new()
        .request(method, stack.url(path))
        .bearer_auth(&stack.billing.admin_key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// An account with an owner key and a member key: `(account id, owner, member)`.
async fn account(stack: &Stack, name: &str) -> (String, String, String) {
    let created = admin(
        stack,
        reqwest::Method::POST,
        "/admin/accounts",
        Some(json!({"name": name})),
    )
    .await;
    let id = created["accountId"].as_str().unwrap().to_string();
    let key = |role: &'static str| {
        let id = id.clone();
        async move {
            let key = admin(
                stack,
                reqwest::Method::POST,
                "/admin/keys",
                Some(json!({"name": role, "keyType": "standard", "accountId": id, "role": role})),
            )
            .await;
            key["key"].as_str().unwrap().to_string()
        }
    };
    let owner = key("owner").await;
    let member = key("member").await;
    (id, owner, member)
}

async fn chat(stack: &Stack, key: &str, model: &str, words: usize) {
    let response = reqwest::Client::new()
        .post(stack.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "word ".repeat(words)}]}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_eq!(status, StatusCode::OK, "{}", response.text().await.unwrap());
}

/// Moves the account's ledger rows to `stamps` (one per row, in ledger order, increasing) and each usage
/// record with its deduction (they share their time), and its creation to an hour before the first.
async fn backdate(stack: &Stack, account_id: &str, stamps: &[i64]) {
    let mut connection = stack.billing.database.connect().await.unwrap();
    let rows =
        sqlx::query("SELECT id, timestamp FROM transactions WHERE account_id = $1 ORDER BY id")
            .bind(account_id)
            .fetch_all(&mut connection)
            .await
            .unwrap();
    assert_eq!(rows.len(), stamps.len(), "one time per ledger row");
    for (row, stamp) in rows.iter().zip(stamps) {
        let (id, old): (i64, i64) = (row.get(0), row.get(1));
        sqlx::query("UPDATE transactions SET timestamp = $1 WHERE id = $2")
            .bind(stamp)
            .bind(id)
            .execute(&mut connection)
            .await
            .unwrap();
        sqlx::query(
            "UPDATE usage_records SET timestamp = $1 WHERE account_id = $2 AND timestamp = $3",
        )
        .bind(stamp)
        .bind(account_id)
        .bind(old)
        .execute(&mut connection)
        .await
        .unwrap();
    }
    sqlx::query("UPDATE billing_accounts SET created_at = $1 WHERE id = $2")
        .bind(stamps[0] - HOUR)
        .bind(account_id)
        .execute(&mut connection)
        .await
        .unwrap();
    // The times were moved on purpose: the rows are sealed again (BILLING.md, "The hash chain").
    tests::reseal_ledger_chain(&stack.billing.database, account_id).await;
}

async fn scalar(stack: &Stack, sql: &str, account_id: &str, from: i64, to: i64) -> i64 {
    let mut connection = stack.billing.database.connect().await.unwrap();
    sqlx::query_scalar(sql)
        .bind(account_id)
        .bind(from)
        .bind(to)
        .fetch_one(&mut connection)
        .await
        .unwrap()
}

fn nanos(value: &Value) -> i64 {
    let amount = dec(value) * Decimal::from(1_000_000_000);
    assert!(amount.fract().is_zero(), "{value} has more than 9 decimals");
    amount.try_into().unwrap()
}

/// Checks one statement against the ledger of `[from, to)`.
async fn assert_statement_is_the_ledger(
    stack: &Stack,
    account_id: &str,
    statement: &Value,
    from: i64,
    to: i64,
) {
    let opening = scalar(
        stack,
        "SELECT COALESCE((SELECT balance_after FROM transactions WHERE account_id = $1 AND timestamp < $2 \
         AND $3 = $3 ORDER BY timestamp DESC, id DESC LIMIT 1), 0)",
        account_id,
        from,
        to,
    )
    .await;
    let closing = scalar(
        stack,
        "SELECT COALESCE((SELECT balance_after FROM transactions WHERE account_id = $1 AND timestamp < $3 \
         AND $2 = $2 ORDER BY timestamp DESC, id DESC LIMIT 1), 0)",
        account_id,
        from,
        to,
    )
    .await;
    assert_eq!(
        nanos(&statement["openingBalance"]),
        opening,
        "{statement:#}"
    );
    assert_eq!(
        nanos(&statement["closingBalance"]),
        closing,
        "{statement:#}"
    );
    let mut sum = opening;
    for (field, kind) in [
        ("credits", "credit_purchase"),
        ("grants", "credit_grant"),
        ("usage", "usage_deduction"),
        ("refunds", "refund"),
        ("adjustments", "credit_adjustment"),
        ("expiries", "credit_expiry"),
    ] {
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM transactions WHERE account_id = $1 \
             AND timestamp >= $2 AND timestamp < $3 AND type = '{kind}'"
        );
        let amount = scalar(stack, &sql, account_id, from, to).await;
        let count_sql = sql.replace("COALESCE(SUM(amount), 0)", "COUNT(*)");
        let count = scalar(stack, &count_sql, account_id, from, to).await;
        assert_eq!(
            nanos(&statement[field]["amount"]),
            amount,
            "{field}: {statement:#}"
        );
        assert_eq!(statement[field]["count"].as_i64(), Some(count), "{field}");
        sum += amount;
    }
    assert_eq!(sum, closing, "opening + movements == closing");
    let models = statement["usageByModel"].as_array().unwrap();
    let charged: i64 = models.iter().map(|model| nanos(&model["charged"])).sum();
    assert_eq!(
        charged,
        -nanos(&statement["usage"]["amount"]),
        "usage by model == usage"
    );
    let discounts: i64 = models
        .iter()
        .map(|model| nanos(&model["volumeDiscount"]))
        .sum();
    assert_eq!(nanos(&statement["volumeDiscounts"]), discounts);
    for model in models {
        let name = model["model"].as_str().unwrap();
        for (field, column) in [
            ("requests", "COUNT(*)"),
            ("inputTokens", "SUM(input_tokens)"),
            ("outputTokens", "SUM(output_tokens)"),
            ("cachedInputTokens", "SUM(cached_input_tokens)"),
            ("charged", "SUM(charged)"),
            ("volumeDiscount", "SUM(discount)"),
            ("inputCost", "SUM(input_cost)"),
        ] {
            let sql = format!(
                "SELECT CAST({column} AS BIGINT) FROM usage_records WHERE account_id = $1 AND timestamp >= $2 \
                 AND timestamp < $3 AND model = '{name}'"
            );
            let expected = scalar(stack, &sql, account_id, from, to).await;
            let got = if field.ends_with("Tokens") || field == "requests" {
                model[field].as_i64().unwrap()
            } else {
                nanos(&model[field])
            };
            assert_eq!(got, expected, "{name} {field}");
        }
    }
}

async fn statement(stack: &Stack, key: &str, month: &str) -> Value {
    let answer = stack
        .get(&format!("/billing/statements/{month}"), key)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{month}: {}", answer.text);
    answer.json
}

/// pypdf's page count and text of a PDF, and how many of the first page's pixels pdfium draws dark.
const PDF_SCRIPT: &str = r#"
import sys, pypdf, pypdfium2
reader = pypdf.PdfReader("statement.pdf")
print("pages", len(reader.pages))
print("text", " ".join(page.extract_text() for page in reader.pages).replace("\n", " "))
bitmap = pypdfium2.PdfDocument("statement.pdf")[0].render(scale=1, grayscale=True)
dark = sum(1 for byte in bytes(bitmap.buffer) if byte < 128)
print("dark", dark, bitmap.width, bitmap.height)
"#;

async fn a_month_with_every_movement_kind_closes_at_the_ledger(backend: Backend) {
    let stack = Stack::start(backend).await;
    let (account_id, owner, member) = account(&stack, "Acme Research").await;
    admin(
        &stack,
        reqwest::Method::POST,
        "/admin/prices",
        Some(
            json!({"model": SECOND_MODEL, "baseInputPricePer1k": 0.02, "baseOutputPricePer1k": 0.06,
                    "requestFee": 0.001}),
        ),
    )
    .await;
    admin(
        &stack,
        reqwest::Method::PATCH,
        &format!("/admin/accounts/{account_id}"),
        Some(json!({"discountTiers": [{"fromMonthlySpend": 0, "percentOff": 10}]})),
    )
    .await;
    stack.add_credits(&account_id, json!(10)).await;
    let soon = (Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    admin(
        &stack,
        reqwest::Method::POST,
        &format!("/billing/admin/{account_id}/credits"),
        Some(
            json!({"amount": "0.5", "category": "promotional", "expiresAt": soon, "priority": 500}),
        ),
    )
    .await;
    for words in [20, 40] {
        chat(&stack, &owner, "gpt-4o-mini", words).await;
        chat(&stack, &owner, SECOND_MODEL, words).await;
    }
    let records = stack.get("/billing/usage?limit=10", &owner).await;
    let record_id = records.json["records"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin(
        &stack,
        reqwest::Method::POST,
        &format!("/billing/admin/{account_id}/refunds"),
        Some(json!({"usageRecordId": record_id, "amount": "0.0001"})),
    )
    .await;
    admin(
        &stack,
        reqwest::Method::POST,
        &format!("/billing/admin/{account_id}/adjustments"),
        Some(json!({"amount": "-0.25", "reason": "goodwill reversed"})),
    )
    .await;
    let expired = tests::eventually(std::time::Duration::from_secs(15), || async {
        let mut connection = stack.billing.database.connect().await.unwrap();
        let count: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM transactions WHERE account_id = $1 AND type = 'credit_expiry'",
        )
        .bind(&account_id)
        .fetch_one(&mut connection)
        .await
        .unwrap();
        count == 1
    })
    .await;
    assert!(expired, "the promotional grant expired");

    // Into the month before last (closed, and not the one that closed last): its tenth day on.
    let (month, start) = month_back(2);
    let (next_month, next_start) = month_back(1);
    let (current, current_start) = month_back(0);
    let rows: i64 = scalar(
        &stack,
        "SELECT CAST(COUNT(*) AS BIGINT) FROM transactions WHERE account_id = $1 AND $2 = $2 AND $3 = $3",
        &account_id,
        0,
        0,
    )
    .await;
    let stamps: Vec<i64> = (0..rows).map(|row| start + 9 * DAY + row * HOUR).collect();
    backdate(&stack, &account_id, &stamps).await;

    let first = statement(&stack, &owner, &month).await;
    assert_eq!(first["object"], "statement");
    assert_eq!(first["closed"], true);
    assert_eq!(first["number"], 1);
    assert_eq!(first["month"], month.as_str());
    assert_eq!(first["accountName"], "Acme Research");
    assert_eq!(first["currency"], "usd");
    assert_statement_is_the_ledger(&stack, &account_id, &first, start, next_start).await;
    for field in [
        "credits",
        "grants",
        "usage",
        "refunds",
        "adjustments",
        "expiries",
    ] {
        assert!(
            first[field]["count"].as_i64().unwrap() >= 1,
            "{field} in {first:#}"
        );
    }
    assert_eq!(first["usageByModel"].as_array().unwrap().len(), 2);
    assert!(dec(&first["volumeDiscounts"]) > Decimal::ZERO, "{first:#}");

    // The next month starts where it ended, and so does the current one (with a call of its own).
    let second = statement(&stack, &owner, &next_month).await;
    assert_eq!(second["number"], 2);
    assert_eq!(second["closed"], true);
    assert_eq!(second["openingBalance"], first["closingBalance"]);
    assert_eq!(second["closingBalance"], first["closingBalance"]);
    chat(&stack, &owner, "gpt-4o-mini", 10).await;
    let open = statement(&stack, &owner, &current).await;
    assert_eq!(open["closed"], false);
    assert_eq!(open["number"], 3);
    assert_eq!(open["openingBalance"], first["closingBalance"]);
    assert_eq!(open["usage"]["count"], 1);
    let now = Utc::now().timestamp_millis() + 1;
    assert_statement_is_the_ledger(&stack, &account_id, &open, current_start, now).await;
    let balance = stack.get("/billing/account", &owner).await.json["creditsBalance"].clone();
    assert_eq!(dec(&open["closingBalance"]), dec(&balance));

    // The list: newest first, each month once.
    let list = stack.get("/billing/statements", &owner).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let months: Vec<&str> = list.json["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["month"].as_str().unwrap())
        .collect();
    assert_eq!(
        months,
        [current.as_str(), next_month.as_str(), month.as_str()]
    );
    assert_eq!(
        list.json["statements"][2]["closingBalance"],
        first["closingBalance"]
    );

    // A closed month never changes: a row moved into it afterwards is not in its statement.
    admin(
        &stack,
        reqwest::Method::POST,
        &format!("/billing/admin/{account_id}/adjustments"),
        Some(json!({"amount": "1", "reason": "late"})),
    )
    .await;
    let mut connection = stack.billing.database.connect().await.unwrap();
    sqlx::query("UPDATE transactions SET timestamp = $1 WHERE id = (SELECT MAX(id) FROM transactions WHERE account_id = $2)")
        .bind(start + 20 * DAY)
        .bind(&account_id)
        .execute(&mut connection)
        .await
        .unwrap();
    tests::reseal_ledger_chain(&stack.billing.database, &account_id).await;
    let again = statement(&stack, &owner, &month).await;
    assert_eq!(again, first, "a closed month never changes");

    // statement.ready: once, for the month that closed last (the older one was frozen when read).
    let events = stack.get("/billing/events?limit=100", &owner).await;
    let ready: Vec<&Value> = events.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["type"] == "statement.ready")
        .collect();
    assert_eq!(ready.len(), 1, "{}", events.text);
    assert_eq!(ready[0]["data"]["month"], next_month.as_str());

    // Who may read: the owner, the operator naming the account; not a member, not a customer naming one.
    let operator = stack
        .get(
            &format!("/billing/statements/{month}?accountId={account_id}"),
            &stack.billing.admin_key,
        )
        .await;
    assert_eq!(operator.status, StatusCode::OK, "{}", operator.text);
    assert_eq!(operator.json, first);
    for (path, key, status) in [
        (format!("/billing/statements/{month}"), member.as_str(), 403),
        (
            format!("/billing/statements/{month}?accountId={account_id}"),
            owner.as_str(),
            403,
        ),
        (
            format!("/billing/statements/{month}"),
            stack.billing.admin_key.as_str(),
            400,
        ),
        (
            "/billing/statements/2026-13".to_string(),
            owner.as_str(),
            400,
        ),
        (
            "/billing/statements/2001-01".to_string(),
            owner.as_str(),
            400,
        ),
        (
            "/billing/statements/2999-01".to_string(),
            owner.as_str(),
            400,
        ),
        ("/billing/statements".to_string(), "tb_not_a_key", 401),
    ] {
        let answer = stack.get(&path, key).await;
        assert_eq!(answer.status.as_u16(), status, "{path}: {}", answer.text);
    }

    // The PDF: its figures are the JSON's, and it draws.
    let pdf = reqwest::Client::new()
        .get(stack.url(&format!("/billing/statements/{month}.pdf")))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status(), StatusCode::OK);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let bytes = pdf.bytes().await.unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("statement.pdf"), &bytes).unwrap();
    // Kept for people to look at, as the console's screenshots are.
    let kept =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/statement-pdfs");
    if std::fs::create_dir_all(&kept).is_ok() {
        let _ = std::fs::write(kept.join(format!("{}.pdf", backend.name())), &bytes);
    }
    let output = run_bash(
        &format!("python3 - <<'PY'\n{PDF_SCRIPT}\nPY"),
        dir.path(),
        &[],
    )
    .await;
    output.assert_success("reading the statement's PDF");
    assert!(output.stdout.contains("pages 1\n"), "{}", output.stdout);
    let dollars = |value: &Value| {
        let amount = dec(value).normalize();
        let text = if amount.scale() < 2 {
            format!("{:.2}", amount)
        } else {
            amount.to_string()
        };
        format!("${}", text.trim_start_matches('-'))
    };
    for expected in [
        "Acme Research".to_string(),
        "No. 1".to_string(),
        "Closed".to_string(),
        dollars(&first["closingBalance"]),
        dollars(&first["usage"]["amount"]),
        dollars(&first["credits"]["amount"]),
        dollars(&first["usageByModel"][0]["charged"]),
        SECOND_MODEL.to_string(),
    ] {
        assert!(
            output.stdout.contains(&expected),
            "{expected} not in the PDF: {}",
            output.stdout
        );
    }
    let dark: u64 = output
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("dark "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap();
    assert!(dark > 5_000, "the page draws text: {}", output.stdout);
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn a_month_boundary_splits_statements_and_costs_alike(backend: Backend) {
    let stack = Stack::start(backend).await;
    let (account_id, owner, _) = account(&stack, "Boundary").await;
    stack.add_credits(&account_id, json!(5)).await;
    for words in [10, 20, 30, 40] {
        chat(&stack, &owner, "gpt-4o-mini", words).await;
    }
    // The credit and two calls in the month before last's last hour; two calls in last month's first.
    let (month, start) = month_back(2);
    let (next_month, boundary) = month_back(1);
    let stamps = [
        boundary - 2 * HOUR,
        boundary - HOUR,
        boundary - 1,
        boundary,
        boundary + HOUR,
    ];
    backdate(&stack, &account_id, &stamps).await;

    let before = statement(&stack, &owner, &month).await;
    let after = statement(&stack, &owner, &next_month).await;
    assert_statement_is_the_ledger(&stack, &account_id, &before, start, boundary).await;
    assert_eq!(before["usage"]["count"], 2);
    assert_eq!(after["usage"]["count"], 2);
    assert_eq!(after["openingBalance"], before["closingBalance"]);

    // The Costs API in days and hours around the boundary: each side equals its statement's usage.
    let seconds = |ms: i64| ms / 1000;
    // Those hours are long closed, so the APIs read them from their hourly sums (BILLING.md, "How it stays
    // fast"); a range whose ends cut hours reads those ends from the records.
    for (width, limit, start_time, end_time) in [
        ("1d", 2, boundary - DAY, boundary + DAY),
        ("1h", 168, boundary - 2 * HOUR, boundary + DAY),
        ("1h", 168, boundary - 90 * 60_000, boundary + 90 * 60_000),
        ("1m", 1440, boundary - 90 * 60_000, boundary + 90 * 60_000),
    ] {
        let path = format!(
            "/v1/organization/costs?start_time={}&end_time={}&bucket_width={width}&limit={limit}",
            seconds(start_time),
            seconds(end_time)
        );
        let costs = stack.get(&path, &owner).await;
        assert_eq!(costs.status, StatusCode::OK, "{}", costs.text);
        let (mut left, mut right) = (Decimal::ZERO, Decimal::ZERO);
        for bucket in costs.json["data"].as_array().unwrap() {
            let sum: Decimal = bucket["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|result| dec(&result["amount"]["value"]))
                .sum();
            if bucket["end_time"].as_i64().unwrap() <= seconds(boundary) {
                left += sum;
            } else {
                assert!(
                    bucket["start_time"].as_i64().unwrap() >= seconds(boundary),
                    "aligned buckets"
                );
                right += sum;
            }
        }
        assert_eq!(
            left,
            -dec(&before["usage"]["amount"]),
            "{width} before the boundary"
        );
        assert_eq!(
            right,
            -dec(&after["usage"]["amount"]),
            "{width} after the boundary"
        );
    }
    assert_ledger_invariants(&stack.billing.database).await;
}
