//! Scenarios c and d: `POST /execute` through gateway → executor-svc → billing-svc → mock model, against
//! the mock model called directly (`POST /v1/chat/completions`, not streamed) with the same prompt, at the
//! same concurrency. The difference of the latency percentiles is what the platform adds. The peak RSS of
//! every process is read at the end. Afterwards: the ledger invariants, and one usage record per `/execute`
//! that succeeded.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use harness::{Backend, Cluster, Database, ServiceProcess};
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::billing::Billing;
use crate::config::{DATABASE_PREFIX, Plan};
use crate::load::{self, Outcome, Timing};
use crate::probe::Probe;
use crate::stats::Percentiles;

/// The same short chat turn on both paths (the mock answers 16 tokens by default).
const PROMPT: &str = "Write one sentence about the sea.";
const MODEL: &str = "gpt-4o-mini";

/// One phase (direct or through the gateway).
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub requests: u64,
    pub requests_total: u64,
    pub window_secs: f64,
    pub requests_per_sec: f64,
    pub latency: Percentiles,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl From<Outcome> for Phase {
    fn from(outcome: Outcome) -> Phase {
        Phase {
            requests_per_sec: outcome.per_sec(),
            requests: outcome.measured,
            requests_total: outcome.succeeded,
            window_secs: outcome.window.as_secs_f64(),
            latency: outcome.first,
            errors: outcome.errors,
            first_error: outcome.first_error,
        }
    }
}

/// The figures of the end-to-end scenario.
#[derive(Debug, Clone, Serialize)]
pub struct E2eRun {
    pub backend: Backend,
    pub concurrency: u32,
    pub direct: Phase,
    pub gateway: Phase,
    /// Gateway p50 minus direct p50.
    pub added_p50_ms: f64,
    /// Gateway p99 minus direct p99.
    pub added_p99_ms: f64,
    /// `VmHWM` of each process at the end of both phases, in MiB.
    pub peak_rss_mb: BTreeMap<String, f64>,
    /// CPU time of each platform service (billing-svc, executor-svc, gateway) over the gateway phase,
    /// warm-up included, per `/execute` that succeeded in it, in ms.
    pub cpu_ms_per_request: BTreeMap<String, f64>,
    /// Their sum: what one request costs the platform.
    pub platform_cpu_ms_per_request: f64,
}

/// The whole stack, each service a process on a free loopback port.
struct Stack {
    billing: Billing,
    mock: ServiceProcess,
    executor: ServiceProcess,
    gateway: ServiceProcess,
    _spool: tempfile::TempDir,
}

impl Stack {
    async fn start(plan: &Plan, database: &Database) -> anyhow::Result<Stack> {
        let launcher = plan.launcher();
        // The default write mode of billing-svc: what an operator runs.
        let billing = Billing::start(&launcher, database, None).await?;
        let mock =
            ServiceProcess::start(&launcher, "mock-model", &["--listen", "127.0.0.1:0"], &[])
                .await?;
        let spool = tempfile::Builder::new()
            .prefix("bench-spool.")
            .tempdir()
            .context("create the executor's spool folder")?;
        let billing_url = billing.process.url();
        let model_url = format!("{}/v1", mock.url());
        let spool_path = spool.path().join("spool").display().to_string();
        let executor = ServiceProcess::start(
            &launcher,
            "executor-svc",
            &["--listen", "127.0.0.1:0"],
            &[
                ("BILLING_URL", billing_url.as_str()),
                ("SERVICE_TOKEN", billing.service_token.as_str()),
                ("OPENAI_BASE_URL", model_url.as_str()),
                ("EXECUTOR_SPOOL_PATH", spool_path.as_str()),
            ],
        )
        .await?;
        let executor_url = executor.url();
        let gateway = ServiceProcess::start(
            &launcher,
            "gateway",
            &["--listen", "127.0.0.1:0"],
            &[
                ("BILLING_URL", billing_url.as_str()),
                ("EXECUTOR_URL", executor_url.as_str()),
            ],
        )
        .await?;
        Ok(Stack {
            billing,
            mock,
            executor,
            gateway,
            _spool: spool,
        })
    }

    /// The platform's services (not the mock model), whose CPU a request costs.
    fn platform(&self) -> [&ServiceProcess; 3] {
        [&self.billing.process, &self.executor, &self.gateway]
    }

    fn peak_rss_mb(&self) -> anyhow::Result<BTreeMap<String, f64>> {
        [
            &self.billing.process,
            &self.executor,
            &self.gateway,
            &self.mock,
        ]
        .into_iter()
        .map(|process| {
            Ok((
                process.name.clone(),
                process.peak_rss_bytes()? as f64 / 1_048_576.0,
            ))
        })
        .collect()
    }

    async fn stop(self) {
        self.gateway.kill().await;
        self.executor.kill().await;
        self.mock.kill().await;
        self.billing.stop().await;
    }
}

/// Sends one JSON POST and fails unless the answer is 200 with a JSON body that has `field`.
async fn post(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    body: String,
    field: &str,
) -> anyhow::Result<Timing> {
    let started = Instant::now();
    let mut request = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let text = response.text().await.context("read the body")?;
    let elapsed = started.elapsed();
    if status != StatusCode::OK {
        bail!("POST {url}: {status}: {text}");
    }
    let parsed: Value =
        serde_json::from_str(&text).with_context(|| format!("JSON body: {text}"))?;
    if parsed.get(field).is_none() {
        bail!("POST {url}: no `{field}` in {text}");
    }
    Ok(Timing {
        first: elapsed,
        second: None,
    })
}

/// Creates a standard key through the gateway's admin routes and credits it; returns the plain key.
async fn funded_key(
    http: &reqwest::Client,
    gateway_url: &str,
    admin_key: &str,
) -> anyhow::Result<String> {
    let created = http
        .post(format!("{gateway_url}/admin/keys"))
        .bearer_auth(admin_key)
        .json(&json!({"name": "bench", "keyType": "standard"}))
        .send()
        .await
        .context("POST /admin/keys")?;
    if created.status() != StatusCode::CREATED {
        bail!("POST /admin/keys answered {}", created.status());
    }
    let created: Value = created.json().await.context("POST /admin/keys body")?;
    let (Some(id), Some(key)) = (created["id"].as_str(), created["key"].as_str()) else {
        bail!("POST /admin/keys: no id or key in {created}");
    };
    let credited = http
        .post(format!("{gateway_url}/billing/admin/{id}/credits"))
        .bearer_auth(admin_key)
        .json(&json!({"amount": 1_000_000}))
        .send()
        .await
        .context("POST /billing/admin/{id}/credits")?;
    if credited.status() != StatusCode::OK {
        bail!(
            "POST /billing/admin/{id}/credits answered {}",
            credited.status()
        );
    }
    Ok(key.to_string())
}

/// Runs both phases on a fresh stack; check failures are pushed to `failures`.
pub async fn run(
    plan: &Plan,
    cluster: Option<&Cluster>,
    failures: &mut Vec<String>,
) -> anyhow::Result<E2eRun> {
    let database = Database::create(plan.e2e_backend, cluster, DATABASE_PREFIX).await?;
    let stack = Stack::start(plan, &database).await?;
    // Keep-alive pool as large as the concurrency, so no request waits for a connection or a handshake.
    let concurrency = usize::try_from(plan.e2e_concurrency).context("concurrency")?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(concurrency)
        .build()
        .context("HTTP client")?;
    let key = funded_key(&http, &stack.gateway.url(), &stack.billing.admin_key).await?;

    let direct_url = format!("{}/v1/chat/completions", stack.mock.url());
    let direct_body =
        json!({"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "stream": false});
    eprintln!(
        "bench: e2e direct to mock-model, concurrency={} for {:?} (+{:?} warm-up)",
        plan.e2e_concurrency, plan.e2e_duration, plan.warmup
    );
    let direct = phase(plan, http.clone(), direct_url, None, direct_body, "choices").await;

    let gateway_url = format!("{}/execute", stack.gateway.url());
    let gateway_body = json!({"prompt": PROMPT, "model": MODEL});
    eprintln!(
        "bench: e2e through the gateway ({}), concurrency={} for {:?} (+{:?} warm-up)",
        plan.e2e_backend.name(),
        plan.e2e_concurrency,
        plan.e2e_duration,
        plan.warmup
    );
    let probes: Vec<(String, Probe)> = stack
        .platform()
        .into_iter()
        .map(|process| {
            let probe = Probe::start(vec![process.pid], false, plan.e2e_duration);
            (process.name.clone(), probe)
        })
        .collect();
    let gateway = phase(plan, http, gateway_url, Some(key), gateway_body, "usage").await;
    let requests = gateway.requests_total.max(1) as f64;
    let mut cpu_ms_per_request = BTreeMap::new();
    for (name, probe) in probes {
        let cost = probe.finish().await;
        cpu_ms_per_request.insert(name, cost.cpu_secs * 1000.0 / requests);
    }
    let platform_cpu_ms_per_request = cpu_ms_per_request.values().sum();
    let peak_rss_mb = stack.peak_rss_mb()?;

    for (name, phase) in [("direct", &direct), ("gateway", &gateway)] {
        if phase.errors > 0 {
            failures.push(format!(
                "e2e {name}: {} failed requests, first: {}",
                phase.errors,
                phase.first_error.as_deref().unwrap_or("?")
            ));
        }
    }
    if let Err(error) = database.check_ledger_invariants().await {
        failures.push(format!("{error:#}"));
    }
    let recorded = database.usage_records().await?;
    if recorded != gateway.requests_total {
        failures.push(format!(
            "e2e: {recorded} usage records, but {} /execute calls succeeded",
            gateway.requests_total
        ));
    }
    stack.stop().await;
    if let (Backend::Postgres, Some(cluster)) = (plan.e2e_backend, cluster) {
        cluster.drop_database(&database.url).await?;
    }
    Ok(E2eRun {
        backend: plan.e2e_backend,
        concurrency: plan.e2e_concurrency,
        added_p50_ms: gateway.latency.p50_ms - direct.latency.p50_ms,
        added_p99_ms: gateway.latency.p99_ms - direct.latency.p99_ms,
        direct,
        gateway,
        peak_rss_mb,
        cpu_ms_per_request,
        platform_cpu_ms_per_request,
    })
}

async fn phase(
    plan: &Plan,
    http: reqwest::Client,
    url: String,
    bearer: Option<String>,
    body: Value,
    field: &'static str,
) -> Phase {
    // Serialised once: the client shares the machine's two cores with the services it measures.
    let body = body.to_string();
    load::run(
        plan.e2e_concurrency,
        plan.warmup,
        plan.e2e_duration,
        plan.max_requests,
        move |_| {
            let http = http.clone();
            let url = url.clone();
            let bearer = bearer.clone();
            let body = body.clone();
            async move { post(&http, &url, bearer.as_deref(), body, field).await }
        },
    )
    .await
    .into()
}
