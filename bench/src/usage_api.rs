//! Scenario `usage-api` (issue 29): OpenAI's organization Usage and Costs APIs on a large table. The whole
//! stack is started on a fresh database; three keys are created through the gateway's admin routes (a big
//! account with two keys, its owner's among them, and a small account with one); then `--usage-api-records`
//! usage records, spread over the last 30 days across four models, the keys and five end users, are written
//! straight in SQL (multi-row INSERTs in one transaction; nine in ten for the big account). No ledger rows
//! go with them: the audit links no usage record to a transaction, so it holds unchanged and still runs
//! after the scenario. The first read sums the big account's closed hours into `usage_hourly` (BILLING.md,
//! "Usage and Costs APIs") and is timed apart. Then a 30-day `1d` page grouped by model (completions) and by
//! line item (costs) is read through the gateway with the owner key, several times each, and every answer's
//! sums are checked against the same sums in SQL, exactly.

use anyhow::{Context, bail, ensure};
use harness::{Backend, Cluster, Database};
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::time::Instant;

use crate::config::{DATABASE_PREFIX, Plan};
use crate::e2e::{Stack, create_key};
use crate::stats::{Percentiles, Samples};

/// Models, end users and rows per INSERT of the seed.
const MODELS: [&str; 4] = ["gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet", "o3-mini"];
const END_USERS: [&str; 5] = ["", "alice", "bob", "carol", "dave"];
const ROWS_PER_INSERT: usize = 1_000;

/// One timed query.
#[derive(Debug, Clone, Serialize)]
pub struct Query {
    pub path: String,
    pub runs: usize,
    pub latency: Percentiles,
}

/// The figures of the scenario on one backend.
#[derive(Debug, Clone, Serialize)]
pub struct UsageApiRun {
    pub backend: Backend,
    pub records: u64,
    /// Records of the big account (the rest are the small account's).
    pub big_account_records: u64,
    pub seed_secs: f64,
    /// The first page read after the seed, which sums the account's closed hours into `usage_hourly` (the
    /// seeded records were never summed: they were written in SQL, not settled), in seconds.
    pub first_read_secs: f64,
    pub completions: Query,
    pub costs: Query,
}

/// Runs the scenario on every backend of the plan; check failures are pushed to `failures`.
pub async fn run(
    plan: &Plan,
    cluster: Option<&Cluster>,
    failures: &mut Vec<String>,
) -> anyhow::Result<Vec<UsageApiRun>> {
    let mut runs = Vec::new();
    for &backend in &plan.backends {
        if backend == Backend::Postgres && cluster.is_none() {
            eprintln!("bench: usage-api: no PostgreSQL cluster, skipping PostgreSQL");
            continue;
        }
        runs.push(run_backend(plan, backend, cluster, failures).await?);
    }
    Ok(runs)
}

async fn run_backend(
    plan: &Plan,
    backend: Backend,
    cluster: Option<&Cluster>,
    failures: &mut Vec<String>,
) -> anyhow::Result<UsageApiRun> {
    let database = Database::create(backend, cluster, DATABASE_PREFIX).await?;
    let stack = Stack::start(plan, &database).await?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .context("HTTP client")?;
    let gateway_url = stack.gateway.url();
    let admin_key = stack.billing.admin_key.clone();
    let owner = create_key(
        &http,
        &gateway_url,
        &admin_key,
        json!({"name": "usage big", "keyType": "standard"}),
    )
    .await?;
    let mut connection = database.connect().await?;
    let big_account: String = sqlx::query_scalar("SELECT account_id FROM api_keys WHERE id = $1")
        .bind(&owner.id)
        .fetch_one(&mut connection)
        .await
        .context("the big account's id")?;
    let member = create_key(
        &http,
        &gateway_url,
        &admin_key,
        json!({"name": "usage big 2", "keyType": "standard", "accountId": big_account}),
    )
    .await?;
    let small = create_key(
        &http,
        &gateway_url,
        &admin_key,
        json!({"name": "usage small", "keyType": "standard"}),
    )
    .await?;
    let small_account: String = sqlx::query_scalar("SELECT account_id FROM api_keys WHERE id = $1")
        .bind(&small.id)
        .fetch_one(&mut connection)
        .await
        .context("the small account's id")?;

    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("clock")?
            .as_millis(),
    )
    .context("clock")?;
    let start_secs = now_ms / 1000 - 30 * 86_400;
    let start_ms = start_secs * 1000;
    // Every record falls in [start, now - 1 minute).
    let span_ms = now_ms - 60_000 - start_ms;
    let records = plan.usage_api_records;
    eprintln!(
        "bench: usage-api ({}): seeding {records} usage records over 30 days",
        backend.name()
    );
    let seeding = Instant::now();
    let big_keys = [owner.id.as_str(), member.id.as_str()];
    let mut big_records = 0u64;
    if backend == Backend::Sqlite {
        // Keep the transaction's dirty pages in memory (1 GiB at most) rather than spilling them to the WAL
        // and reading them back: this connection only, the services' own are unchanged.
        sqlx::query("PRAGMA cache_size = -1048576")
            .execute(&mut connection)
            .await
            .context("PRAGMA cache_size")?;
    }
    let mut tx = connection.begin().await.context("begin the seed")?;
    let mut sql = String::with_capacity(ROWS_PER_INSERT * 220);
    let mut index = 0u64;
    while index < records {
        sql.clear();
        sql.push_str(
            "INSERT INTO usage_records (account_id, api_key_id, execution_id, session_id, workspace_id, \
             timestamp, input_tokens, output_tokens, total_tokens, input_cost, output_cost, total_cost, \
             charged, overage, model, duration_ms, status, endpoint, key_type, request_fee, end_user_id) VALUES ",
        );
        let end = (index + ROWS_PER_INSERT as u64).min(records);
        for row in index..end {
            let n = row as i64;
            // Nine in ten for the big account, alternating its two keys.
            let (account, key) = if row % 10 == 9 {
                (small_account.as_str(), small.id.as_str())
            } else {
                big_records += 1;
                (big_account.as_str(), big_keys[(row % 2) as usize])
            };
            let model = MODELS[(row % 4) as usize];
            let user = END_USERS[(row % 5) as usize];
            // Spread evenly over the span, in a scrambled order.
            let timestamp =
                start_ms + (n.wrapping_mul(7_919) % records as i64) * span_ms / records as i64;
            let input = 50 + n % 500;
            let output = 10 + n % 200;
            let input_cost = input * 150;
            let output_cost = output * 600;
            let fee = if row % 4 == 3 { 1_000 } else { 0 };
            let charged = input_cost + output_cost + fee;
            if row > index {
                sql.push(',');
            }
            use std::fmt::Write as _;
            write!(
                sql,
                "('{account}','{key}','usage-api-{row}','s','ws-{}',{timestamp},{input},{output},{},{input_cost},\
                 {output_cost},{charged},{charged},0,'{model}',100,'completed','/v1/chat/completions','standard',{fee},'{user}')",
                row % 3,
                input + output
            )
            .context("format a row")?;
        }
        sqlx::query(&sql)
            .execute(&mut *tx)
            .await
            .context("seed usage records")?;
        index = end;
    }
    tx.commit().await.context("commit the seed")?;
    let seed_secs = seeding.elapsed().as_secs_f64();
    eprintln!("bench: usage-api: seeded in {seed_secs:.1} s");
    if backend == Backend::Postgres {
        sqlx::query("ANALYZE usage_records")
            .execute(&mut connection)
            .await
            .context("ANALYZE")?;
    }

    // The expected sums, straight from SQL over the big account's records in the range.
    let (expected_requests, expected_input, expected_charged): (i64, i64, i64) = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT), \
         CAST(COALESCE(SUM(charged), 0) AS BIGINT) FROM usage_records \
         WHERE account_id = $1 AND timestamp >= $2 AND endpoint <> '/v1/embeddings'",
    )
    .bind(&big_account)
    .bind(start_ms)
    .fetch_one(&mut connection)
    .await
    .context("the expected sums")?;
    drop(connection);
    if u64::try_from(expected_requests).ok() != Some(big_records) {
        failures.push(format!(
            "usage-api {}: SQL counts {expected_requests} records of the big account in the range, {big_records} were seeded",
            backend.name()
        ));
    }

    let runs = if plan.smoke { 2 } else { 5 };
    let completions_path = format!(
        "/v1/organization/usage/completions?start_time={start_secs}&bucket_width=1d&limit=31&group_by=model"
    );
    let costs_path = format!(
        "/v1/organization/costs?start_time={start_secs}&bucket_width=1d&limit=31&group_by=line_item"
    );
    // The first read sums the account's closed hours, as the sweeper would have done hour by hour had the
    // records been settled; it is timed apart (and checked like the others).
    let (first_read, body) = get(&http, &gateway_url, &completions_path, &owner.plain).await?;
    let first_read_secs = first_read.as_secs_f64();
    if usage_sums(&body)? != (expected_requests, expected_input) {
        failures.push(format!(
            "usage-api {}: the first completions page does not sum to SQL",
            backend.name()
        ));
    }
    let mut completions = Samples::default();
    let mut costs = Samples::default();
    for _ in 0..runs {
        let (elapsed, body) = get(&http, &gateway_url, &completions_path, &owner.plain).await?;
        completions.record(elapsed);
        let (requests, input) = usage_sums(&body)?;
        if (requests, input) != (expected_requests, expected_input) {
            failures.push(format!(
                "usage-api {}: completions sum {requests} requests, {input} input tokens; SQL {expected_requests}, {expected_input}",
                backend.name()
            ));
        }
        let (elapsed, body) = get(&http, &gateway_url, &costs_path, &owner.plain).await?;
        costs.record(elapsed);
        let charged = cost_sum_nanos(&body)?;
        if charged != i128::from(expected_charged) {
            failures.push(format!(
                "usage-api {}: costs sum {charged} nano-dollars; SQL {expected_charged}",
                backend.name()
            ));
        }
    }

    if let Err(error) = database.check_ledger_invariants().await {
        failures.push(format!("{error:#}"));
    }
    stack.stop().await;
    if let (Backend::Postgres, Some(cluster)) = (backend, cluster) {
        cluster.drop_database(&database.url).await?;
    }
    Ok(UsageApiRun {
        backend,
        records,
        big_account_records: big_records,
        seed_secs,
        first_read_secs,
        completions: Query {
            path: completions_path,
            runs,
            latency: completions.percentiles(),
        },
        costs: Query {
            path: costs_path,
            runs,
            latency: costs.percentiles(),
        },
    })
}

/// One GET with the owner key: its time and its JSON body (a page with no more pages).
async fn get(
    http: &reqwest::Client,
    gateway_url: &str,
    path: &str,
    key: &str,
) -> anyhow::Result<(std::time::Duration, Value)> {
    let started = Instant::now();
    let response = http
        .get(format!("{gateway_url}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .with_context(|| format!("GET {path}"))?;
    let status = response.status();
    let text = response.text().await.context("read the body")?;
    let elapsed = started.elapsed();
    ensure!(status == StatusCode::OK, "GET {path}: {status}: {text}");
    let body: Value = serde_json::from_str(&text).with_context(|| format!("JSON body: {text}"))?;
    ensure!(
        body["has_more"] == json!(false),
        "GET {path}: more than one page"
    );
    Ok((elapsed, body))
}

fn results(body: &Value) -> impl Iterator<Item = &Value> {
    body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|bucket| bucket["results"].as_array().into_iter().flatten())
}

/// The requests and input tokens of every result of every bucket.
fn usage_sums(body: &Value) -> anyhow::Result<(i64, i64)> {
    let mut sums = (0i64, 0i64);
    for result in results(body) {
        sums.0 += result["num_model_requests"]
            .as_i64()
            .context("num_model_requests")?;
        sums.1 += result["input_tokens"].as_i64().context("input_tokens")?;
    }
    Ok(sums)
}

/// The amounts of every result of every bucket, in nano-dollars, read from their exact decimal text.
fn cost_sum_nanos(body: &Value) -> anyhow::Result<i128> {
    let mut sum = 0i128;
    for result in results(body) {
        let value = &result["amount"]["value"];
        let text = match value {
            Value::Number(number) => number.to_string(),
            Value::String(text) => text.clone(),
            _ => bail!("amount.value is not a number: {result}"),
        };
        sum += nanos(&text).with_context(|| format!("amount.value {text}"))?;
    }
    Ok(sum)
}

/// A decimal amount of dollars (at most 9 decimals) as nano-dollars, exactly.
fn nanos(text: &str) -> anyhow::Result<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    ensure!(fraction.len() <= 9, "more than 9 decimals");
    let whole: i128 = if whole.is_empty() { 0 } else { whole.parse()? };
    let fraction: i128 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse()?
    };
    let value = whole * 1_000_000_000 + fraction;
    Ok(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_read_as_exact_nanos() {
        assert_eq!(nanos("1.5").unwrap(), 1_500_000_000);
        assert_eq!(nanos("0.000000001").unwrap(), 1);
        assert_eq!(nanos("12").unwrap(), 12_000_000_000);
        assert_eq!(nanos("-0.25").unwrap(), -250_000_000);
        assert!(nanos("0.0000000001").is_err());
    }
}
