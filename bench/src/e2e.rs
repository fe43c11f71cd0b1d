//! Scenarios c and d: `POST /v1/chat/completions` (not streamed) through gateway → executor-svc →
//! billing-svc → mock model with a funded standard key, against the same request sent to the mock model
//! directly and, with `--portkey`, through Portkey's OSS gateway (no auth, no billing), at each concurrency of
//! `--e2e-concurrency` (1 and 32). The difference of the latency percentiles is what each adds; the CPU of
//! each side's processes over its phase, per request, is what a request costs it. The peak RSS of every
//! process is read at the end. Afterwards: the ledger invariants, and one usage record per call through the
//! gateway that succeeded.

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
use crate::portkey::Portkey;
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

/// The figures of one concurrency.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub concurrency: u32,
    pub direct: Phase,
    pub gateway: Phase,
    /// Through Portkey's gateway, when `--portkey` was given.
    pub portkey: Option<Phase>,
    /// Gateway p50 minus direct p50.
    pub added_p50_ms: f64,
    /// Gateway p99 minus direct p99.
    pub added_p99_ms: f64,
    pub portkey_added_p50_ms: Option<f64>,
    pub portkey_added_p99_ms: Option<f64>,
    /// CPU time of each platform service (billing-svc, executor-svc, gateway) over the gateway phase,
    /// warm-up included, per call that succeeded in it, in ms.
    pub cpu_ms_per_request: BTreeMap<String, f64>,
    /// Their sum: what one request costs the platform.
    pub platform_cpu_ms_per_request: f64,
    /// The same for Portkey's one process over its phase.
    pub portkey_cpu_ms_per_request: Option<f64>,
}

/// The figures of the end-to-end scenario.
#[derive(Debug, Clone, Serialize)]
pub struct E2eRun {
    pub backend: Backend,
    pub levels: Vec<Level>,
    /// `VmHWM` of each process at the end of every phase, in MiB.
    pub peak_rss_mb: BTreeMap<String, f64>,
}

/// The whole stack, each service a process on a free loopback port.
pub(crate) struct Stack {
    pub(crate) billing: Billing,
    mock: ServiceProcess,
    executor: ServiceProcess,
    pub(crate) gateway: ServiceProcess,
    _spool: tempfile::TempDir,
}

impl Stack {
    pub(crate) async fn start(plan: &Plan, database: &Database) -> anyhow::Result<Stack> {
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

    pub(crate) async fn stop(self) {
        self.gateway.kill().await;
        self.executor.kill().await;
        self.mock.kill().await;
        self.billing.stop().await;
    }
}

/// Where a phase sends its requests: a URL and the headers that go with it.
#[derive(Clone)]
struct Target {
    url: String,
    headers: Vec<(&'static str, String)>,
}

/// Sends one JSON POST and fails unless the answer is 200 with a JSON body that has `choices`.
async fn post(http: &reqwest::Client, target: &Target, body: String) -> anyhow::Result<Timing> {
    let (url, field) = (&target.url, "choices");
    let started = Instant::now();
    let mut request = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    for (name, value) in &target.headers {
        request = request.header(*name, value);
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

/// A key created through the gateway.
pub(crate) struct CreatedKey {
    pub(crate) id: String,
    pub(crate) plain: String,
}

/// Creates a key through the gateway's admin routes (`body` as `POST /admin/keys` takes it).
pub(crate) async fn create_key(
    http: &reqwest::Client,
    gateway_url: &str,
    admin_key: &str,
    body: Value,
) -> anyhow::Result<CreatedKey> {
    let created = http
        .post(format!("{gateway_url}/admin/keys"))
        .bearer_auth(admin_key)
        .json(&body)
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
    Ok(CreatedKey {
        id: id.to_string(),
        plain: key.to_string(),
    })
}

/// Creates a standard key through the gateway's admin routes and credits it; returns the plain key.
async fn funded_key(
    http: &reqwest::Client,
    gateway_url: &str,
    admin_key: &str,
) -> anyhow::Result<String> {
    let CreatedKey { id, plain } = create_key(
        http,
        gateway_url,
        admin_key,
        json!({"name": "bench", "keyType": "standard"}),
    )
    .await?;
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
    Ok(plain)
}

/// Runs every phase at every concurrency on one fresh stack; check failures are pushed to `failures`.
pub async fn run(
    plan: &Plan,
    cluster: Option<&Cluster>,
    failures: &mut Vec<String>,
) -> anyhow::Result<E2eRun> {
    let database = Database::create(plan.e2e_backend, cluster, DATABASE_PREFIX).await?;
    let stack = Stack::start(plan, &database).await?;
    let portkey = match &plan.portkey {
        Some(script) => Some(Portkey::start(script).await?),
        None => None,
    };
    // Keep-alive pool as large as the highest concurrency, so no request waits for a connection or a
    // handshake.
    let most = plan.e2e_concurrency.iter().copied().max().unwrap_or(1);
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(usize::try_from(most).context("concurrency")?)
        .build()
        .context("HTTP client")?;
    let key = funded_key(&http, &stack.gateway.url(), &stack.billing.admin_key).await?;
    // The same request on every path.
    let body =
        json!({"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "stream": false});
    let model_base = format!("{}/v1", stack.mock.url());
    let direct = Target {
        url: format!("{model_base}/chat/completions"),
        headers: Vec::new(),
    };
    let gateway = Target {
        url: format!("{}/v1/chat/completions", stack.gateway.url()),
        headers: vec![("authorization", format!("Bearer {key}"))],
    };
    let through_portkey = portkey.as_ref().map(|portkey| {
        let mut headers = Portkey::route_headers(&model_base);
        headers.push(("authorization", "Bearer unused".to_string()));
        Target {
            url: portkey.chat_url(),
            headers,
        }
    });

    let mut levels = Vec::new();
    let mut succeeded_through_gateway = 0;
    for &concurrency in &plan.e2e_concurrency {
        eprintln!(
            "bench: e2e at concurrency {concurrency}, each phase {:?} (+{:?} warm-up): direct, gateway ({}){}",
            plan.e2e_duration,
            plan.warmup,
            plan.e2e_backend.name(),
            if portkey.is_some() { ", Portkey" } else { "" }
        );
        let direct_phase = phase(plan, concurrency, http.clone(), direct.clone(), &body).await;
        let pids: Vec<(String, u32)> = stack
            .platform()
            .into_iter()
            .map(|process| (process.name.clone(), process.pid))
            .collect();
        let (gateway_phase, cpu_ms_per_request) =
            measured_phase(plan, concurrency, &http, &gateway, &body, &pids).await;
        succeeded_through_gateway += gateway_phase.requests_total;
        let (portkey_phase, portkey_cpu) = match (&portkey, &through_portkey) {
            (Some(portkey), Some(target)) => {
                let pids = [("portkey".to_string(), portkey.pid)];
                let (phase, cpu) =
                    measured_phase(plan, concurrency, &http, target, &body, &pids).await;
                (Some(phase), cpu.get("portkey").copied())
            }
            _ => (None, None),
        };
        for (name, phase) in [
            ("direct", Some(&direct_phase)),
            ("gateway", Some(&gateway_phase)),
            ("portkey", portkey_phase.as_ref()),
        ] {
            if let Some(phase) = phase.filter(|phase| phase.errors > 0) {
                failures.push(format!(
                    "e2e {name} at concurrency {concurrency}: {} failed requests, first: {}",
                    phase.errors,
                    phase.first_error.as_deref().unwrap_or("?")
                ));
            }
        }
        let added = |phase: &Phase| {
            (
                phase.latency.p50_ms - direct_phase.latency.p50_ms,
                phase.latency.p99_ms - direct_phase.latency.p99_ms,
            )
        };
        let (added_p50_ms, added_p99_ms) = added(&gateway_phase);
        let portkey_added = portkey_phase.as_ref().map(added);
        levels.push(Level {
            concurrency,
            added_p50_ms,
            added_p99_ms,
            portkey_added_p50_ms: portkey_added.map(|added| added.0),
            portkey_added_p99_ms: portkey_added.map(|added| added.1),
            platform_cpu_ms_per_request: cpu_ms_per_request.values().sum(),
            cpu_ms_per_request,
            portkey_cpu_ms_per_request: portkey_cpu,
            direct: direct_phase,
            gateway: gateway_phase,
            portkey: portkey_phase,
        });
    }
    let mut peak_rss_mb = stack.peak_rss_mb()?;
    if let Some(portkey) = portkey {
        peak_rss_mb.insert("portkey".to_string(), portkey.peak_rss_mb()?);
        portkey.stop().await;
    }

    if let Err(error) = database.check_ledger_invariants().await {
        failures.push(format!("{error:#}"));
    }
    let recorded = database.usage_records().await?;
    if recorded != succeeded_through_gateway {
        failures.push(format!(
            "e2e: {recorded} usage records, but {succeeded_through_gateway} calls through the gateway succeeded"
        ));
    }
    stack.stop().await;
    if let (Backend::Postgres, Some(cluster)) = (plan.e2e_backend, cluster) {
        cluster.drop_database(&database.url).await?;
    }
    Ok(E2eRun {
        backend: plan.e2e_backend,
        levels,
        peak_rss_mb,
    })
}

/// A phase with the CPU of `processes` (name, pid) over it, warm-up included, per call that succeeded, in ms.
async fn measured_phase(
    plan: &Plan,
    concurrency: u32,
    http: &reqwest::Client,
    target: &Target,
    body: &Value,
    processes: &[(String, u32)],
) -> (Phase, BTreeMap<String, f64>) {
    let probes: Vec<(String, Probe)> = processes
        .iter()
        .map(|(name, pid)| {
            (
                name.clone(),
                Probe::start(vec![*pid], false, plan.e2e_duration),
            )
        })
        .collect();
    let measured = phase(plan, concurrency, http.clone(), target.clone(), body).await;
    let requests = measured.requests_total.max(1) as f64;
    let mut cpu = BTreeMap::new();
    for (name, probe) in probes {
        let cost = probe.finish().await;
        cpu.insert(name, cost.cpu_secs * 1000.0 / requests);
    }
    (measured, cpu)
}

async fn phase(
    plan: &Plan,
    concurrency: u32,
    http: reqwest::Client,
    target: Target,
    body: &Value,
) -> Phase {
    // Serialised once: the client shares the machine's two cores with the services it measures.
    let body = body.to_string();
    load::run(
        concurrency,
        plan.warmup,
        plan.e2e_duration,
        plan.max_requests,
        move |_| {
            let http = http.clone();
            let target = target.clone();
            let body = body.clone();
            async move { post(&http, &target, body).await }
        },
    )
    .await
    .into()
}
