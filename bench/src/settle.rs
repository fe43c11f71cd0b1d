//! Scenarios a and b: settlements per second through the real `Meter` stream, per backend, key set and
//! write mode, each run followed by the ledger checks in SQL.
//!
//! One database per backend: its keys are created once (with the first write mode) and every run uses
//! them, billing-svc being restarted on the same database for each write mode. A run's execution ids
//! share a prefix, so its settlements can be counted in `usage_records` whatever ran before it. The load
//! itself, `drive`, also serves the `transport` scenario.

use std::sync::Arc;

use anyhow::Context;
use harness::{Backend, Cluster, Database};
use proto::billing::v1::metering_service_client::MeteringServiceClient;
use serde::Serialize;
use tokio::time::Instant;

use crate::billing::{self, Billing, Key};
use crate::config::{DATABASE_PREFIX, KeySet, Plan, WriteMode};
use crate::load;
use crate::probe::{self, Probe};
use crate::stats::Percentiles;

/// Credit of the hot key: far more than `--max-settlements` executions cost (0.00375 USD each).
const HOT_KEY_CREDIT_USD: &str = "1000000";
/// Credit of each of the many keys.
const MANY_KEYS_CREDIT_USD: &str = "1000";

/// The figures of one settlement run.
#[derive(Debug, Clone, Serialize)]
pub struct SettleRun {
    pub backend: Backend,
    pub key_set: KeySet,
    pub keys: u32,
    /// `batched`, `naive`, or `current` when billing-svc has no `--write-mode` flag.
    pub write_mode: String,
    pub concurrency: u32,
    /// Settlements started in the measured window.
    pub settlements: u64,
    /// Settlements received, warm-up included; the database must hold exactly these.
    pub settlements_total: u64,
    pub window_secs: f64,
    pub settlements_per_sec: f64,
    /// Open sent to Opened received (the hold is durable).
    pub open_latency: Percentiles,
    /// Close sent to Settled received (the settlement is durable).
    pub settle_latency: Percentiles,
    pub errors: u64,
    pub first_error: Option<String>,
    pub billing_peak_rss_mb: f64,
    /// CPU time of billing-svc in the measured window, per measured settlement.
    pub billing_cpu_ms_per_settlement: f64,
    /// Context switches of billing-svc's threads (voluntary + involuntary, summed over
    /// `/proc/<pid>/task/*/status`) in the measured window, per measured settlement.
    pub billing_context_switches_per_settlement: f64,
    /// CPU time of the PostgreSQL server (throwaway cluster only), per measured settlement.
    pub database_cpu_ms_per_settlement: Option<f64>,
    /// fsync + fdatasync calls of the process that makes commits durable (billing-svc on SQLite, the
    /// PostgreSQL server), per measured settlement; with `--count-fsyncs` only.
    pub fsyncs_per_settlement: Option<f64>,
}

/// The keys of one database.
struct Keys {
    hot: Option<Key>,
    many: Vec<Key>,
}

/// Runs every (write mode, key set) of `backend`. Failures of the checks are pushed to `failures`; a
/// service that cannot start ends the scenario with an error.
pub async fn run_backend(
    plan: &Plan,
    backend: Backend,
    cluster: Option<&Cluster>,
    has_write_mode: bool,
    failures: &mut Vec<String>,
) -> anyhow::Result<Vec<SettleRun>> {
    let database = Database::create(backend, cluster, DATABASE_PREFIX).await?;
    let modes: Vec<Option<WriteMode>> = if has_write_mode {
        plan.write_modes.iter().copied().map(Some).collect()
    } else {
        vec![None]
    };
    let mut keys: Option<Keys> = None;
    let mut runs = Vec::new();
    for mode in modes {
        let billing = Billing::start(&plan.launcher(), &database, mode).await?;
        let keys = match &keys {
            Some(keys) => keys,
            None => keys.insert(seed(plan, backend, &billing).await?),
        };
        for &key_set in &plan.key_sets {
            let target = Target {
                billing: &billing,
                cluster,
            };
            let run = run_once(plan, backend, mode, key_set, keys, &target).await?;
            if run.errors > 0 {
                failures.push(format!(
                    "settle {} {:?} {}: {} failed settlements, first: {}",
                    backend.name(),
                    key_set,
                    run.write_mode,
                    run.errors,
                    run.first_error.as_deref().unwrap_or("?")
                ));
            }
            if let Err(error) = check(&database, &run, &prefix(backend, mode, key_set)).await {
                failures.push(format!("{error:#}"));
            }
            runs.push(run);
        }
        billing.stop().await;
    }
    if let (Backend::Postgres, Some(cluster)) = (backend, cluster) {
        cluster.drop_database(&database.url).await?;
    }
    Ok(runs)
}

async fn seed(plan: &Plan, backend: Backend, billing: &Billing) -> anyhow::Result<Keys> {
    let started = Instant::now();
    let hot = if plan.key_sets.contains(&KeySet::Hot) {
        billing
            .create_funded_keys(1, HOT_KEY_CREDIT_USD)
            .await?
            .pop()
    } else {
        None
    };
    let many = if plan.key_sets.contains(&KeySet::Many) {
        billing
            .create_funded_keys(plan.many_keys, MANY_KEYS_CREDIT_USD)
            .await?
    } else {
        Vec::new()
    };
    eprintln!(
        "bench: {} keys created and credited on {} in {:.1}s",
        many.len() + usize::from(hot.is_some()),
        backend.name(),
        started.elapsed().as_secs_f64()
    );
    Ok(Keys { hot, many })
}

fn mode_name(mode: Option<WriteMode>) -> &'static str {
    mode.map_or("current", WriteMode::name)
}

fn prefix(backend: Backend, mode: Option<WriteMode>, key_set: KeySet) -> String {
    let key_set = match key_set {
        KeySet::Hot => "hot",
        KeySet::Many => "many",
    };
    format!("bench-{}-{}-{key_set}-", backend.name(), mode_name(mode))
}

/// The service a run measures, and the PostgreSQL cluster behind it when there is one.
struct Target<'a> {
    billing: &'a Billing,
    cluster: Option<&'a Cluster>,
}

/// Starts the cost probes when the warm-up ends: billing-svc, and the PostgreSQL server when this harness
/// runs it. fsyncs are counted where commits are flushed: in billing-svc for SQLite, in the server for
/// PostgreSQL.
fn probe_window(
    plan: &Plan,
    backend: Backend,
    target: &Target<'_>,
) -> tokio::task::JoinHandle<(Probe, Option<Probe>)> {
    let billing_pid = target.billing.process.pid;
    let server = target.cluster.filter(|_| backend == Backend::Postgres);
    let server_pids = server
        .and_then(Cluster::postmaster_pid)
        .map(probe::with_children);
    let (warmup, window, count_fsyncs) = (plan.warmup, plan.duration, plan.count_fsyncs);
    tokio::spawn(async move {
        tokio::time::sleep(warmup).await;
        let billing = Probe::start(
            vec![billing_pid],
            count_fsyncs && backend == Backend::Sqlite,
            window,
        );
        let server = server_pids.map(|pids| Probe::start(pids, count_fsyncs, window));
        (billing, server)
    })
}

async fn run_once(
    plan: &Plan,
    backend: Backend,
    mode: Option<WriteMode>,
    key_set: KeySet,
    keys: &Keys,
    target: &Target<'_>,
) -> anyhow::Result<SettleRun> {
    let billing = target.billing;
    let plain_keys: Arc<Vec<String>> = Arc::new(match key_set {
        KeySet::Hot => keys.hot.iter().map(|key| key.plain.clone()).collect(),
        KeySet::Many => keys.many.iter().map(|key| key.plain.clone()).collect(),
    });
    anyhow::ensure!(
        !plain_keys.is_empty(),
        "no keys were created for {key_set:?}"
    );
    eprintln!(
        "bench: settle {} {:?} keys={} mode={} concurrency={} for {:?} (+{:?} warm-up)",
        backend.name(),
        key_set,
        plain_keys.len(),
        mode_name(mode),
        plan.concurrency,
        plan.duration,
        plan.warmup
    );
    let (outcome, probes) = drive(
        plan,
        &billing.process.url(),
        &billing.service_token,
        plain_keys,
        prefix(backend, mode, key_set),
        || probe_window(plan, backend, target),
    )
    .await?;
    let (billing_probe, server_probe) = probes.await.context("the probe task")?;
    let billing_cost = billing_probe.finish().await;
    let server_cost = match server_probe {
        Some(probe) => Some(probe.finish().await),
        None => None,
    };
    let per_settlement = |value: f64| value / outcome.measured.max(1) as f64;
    let fsyncs = match backend {
        Backend::Sqlite => billing_cost.fsyncs,
        Backend::Postgres => server_cost.as_ref().and_then(|cost| cost.fsyncs),
    };
    let billing_peak_rss_mb = billing.process.peak_rss_bytes()? as f64 / 1_048_576.0;
    let settlements_per_sec = outcome.per_sec();
    eprintln!("bench:   {settlements_per_sec:.0} settlements/s");
    Ok(SettleRun {
        backend,
        key_set,
        keys: u32::try_from(match key_set {
            KeySet::Hot => 1,
            KeySet::Many => keys.many.len(),
        })
        .context("key count")?,
        write_mode: mode_name(mode).to_string(),
        concurrency: plan.concurrency,
        settlements: outcome.measured,
        settlements_total: outcome.succeeded,
        window_secs: outcome.window.as_secs_f64(),
        settlements_per_sec,
        open_latency: outcome.first,
        settle_latency: outcome.second,
        errors: outcome.errors,
        first_error: outcome.first_error,
        billing_peak_rss_mb,
        billing_cpu_ms_per_settlement: per_settlement(billing_cost.cpu_secs * 1000.0),
        billing_context_switches_per_settlement: per_settlement(
            billing_cost.context_switches as f64,
        ),
        database_cpu_ms_per_settlement: server_cost
            .map(|cost| per_settlement(cost.cpu_secs * 1000.0)),
        fsyncs_per_settlement: fsyncs.map(|count| per_settlement(count as f64)),
    })
}

/// The settlement load of this scenario and of `transport`: `plan.connections` HTTP/2 connections to the
/// `MeteringService` at `url`, then `plan.concurrency` streams in a closed loop, each one
/// `billing::settle_once` with the next key (round-robin) and the execution id `{prefix}{sequence}`.
/// `start_probes` runs once the connections are up, right before the load, so that the window it measures
/// starts with the load's.
pub async fn drive<P>(
    plan: &Plan,
    url: &str,
    service_token: &str,
    plain_keys: Arc<Vec<String>>,
    prefix: String,
    start_probes: impl FnOnce() -> P,
) -> anyhow::Result<(load::Outcome, P)> {
    let mut clients = Vec::new();
    for _ in 0..plan.connections {
        clients.push(MeteringServiceClient::new(
            harness::grpc::connect(url).await?,
        ));
    }
    let clients = Arc::new(clients);
    let service_bearer = harness::grpc::bearer(service_token)?;
    let prefix = Arc::new(prefix);
    let probes = start_probes();
    let outcome = load::run(
        plan.concurrency,
        plan.warmup,
        plan.duration,
        plan.max_settlements,
        move |sequence| {
            let clients = clients.clone();
            let plain_keys = plain_keys.clone();
            let service_bearer = service_bearer.clone();
            let prefix = prefix.clone();
            async move {
                // Round-robin: consecutive executions, hence concurrent ones, hit different accounts.
                let index = usize::try_from(sequence).unwrap_or(usize::MAX);
                let client = clients[index % clients.len()].clone();
                let key = &plain_keys[index % plain_keys.len()];
                billing::settle_once(client, &service_bearer, key, format!("{prefix}{sequence}"))
                    .await
            }
        },
    )
    .await;
    Ok((outcome, probes))
}

/// The ledger invariants, then "each settlement received is recorded exactly once".
async fn check(database: &Database, run: &SettleRun, prefix: &str) -> anyhow::Result<()> {
    database.check_ledger_invariants().await?;
    database
        .check_usage_count(prefix, run.settlements_total)
        .await
        .with_context(|| {
            format!(
                "settle {} {:?} {}",
                run.backend.name(),
                run.key_set,
                run.write_mode
            )
        })
}
