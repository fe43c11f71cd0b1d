//! The figures of a run: printed as tables, written as JSON, with the machine they were measured on.

use std::path::Path;

use anyhow::Context;
use harness::Backend;
use serde::Serialize;

use crate::config::KeySet;
use crate::config::STATEMENTS_PER_CALL;
use crate::e2e::E2eRun;
use crate::settle::SettleRun;
use crate::sqlite_hops::SqliteHopsRun;
use crate::targets::Target;
use crate::transport::TransportRun;
use crate::usage_api::UsageApiRun;

#[derive(Debug, Serialize)]
pub struct Report {
    pub generated_at_unix_secs: u64,
    pub machine: Machine,
    pub git_commit: Option<String>,
    pub smoke: bool,
    pub bin_dir: String,
    /// Whether billing-svc offered `--write-mode` (otherwise one run per case on its current path).
    pub write_mode_flag: bool,
    pub settle: Vec<SettleRun>,
    pub ratios: Vec<Ratio>,
    /// The settle load against the in-process null server: the transport's and the client's ceiling.
    pub transport: Option<TransportRun>,
    pub e2e: Option<E2eRun>,
    /// One statement per call through sqlx's SQLite driver against `STATEMENTS_PER_CALL` per call.
    pub sqlite_hops: Option<SqliteHopsRun>,
    pub usage_api: Vec<UsageApiRun>,
    /// The figures against their targets (ratios inside this run).
    pub targets: Vec<Target>,
    /// Every failed check; the run exits non-zero when this is not empty.
    pub failures: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub memory_mb: u64,
}

/// Batched against naive settlements per second, for one backend and key set.
#[derive(Debug, Serialize)]
pub struct Ratio {
    pub backend: Backend,
    pub key_set: KeySet,
    pub batched_per_sec: Option<f64>,
    pub naive_per_sec: Option<f64>,
    /// `batched / naive`; null when either side was not measured.
    pub ratio: Option<f64>,
}

impl Machine {
    /// What `/proc` says about this machine (the figures only mean something next to it).
    pub fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: cpuinfo
                .lines()
                .find_map(|line| line.strip_prefix("model name"))
                .and_then(|rest| rest.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
                .unwrap_or_default(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|release| release.trim().to_string())
                .unwrap_or_default(),
            memory_mb: harness::kilobytes_field(&meminfo, "MemTotal:").map_or(0, |kb| kb / 1024),
        }
    }
}

/// `HEAD` of the checkout, when git is there.
pub fn git_commit() -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Pairs the batched and naive runs of each backend and key set.
pub fn ratios(runs: &[SettleRun]) -> Vec<Ratio> {
    let mut ratios: Vec<Ratio> = Vec::new();
    for run in runs {
        if ratios
            .iter()
            .any(|ratio| ratio.backend == run.backend && ratio.key_set == run.key_set)
        {
            continue;
        }
        let rate = |mode: &str| {
            runs.iter()
                .find(|other| {
                    other.backend == run.backend
                        && other.key_set == run.key_set
                        && other.write_mode == mode
                })
                .map(|other| other.settlements_per_sec)
        };
        let (batched, naive) = (rate("batched"), rate("naive"));
        ratios.push(Ratio {
            backend: run.backend,
            key_set: run.key_set,
            batched_per_sec: batched,
            naive_per_sec: naive,
            ratio: batched
                .zip(naive)
                .filter(|(_, naive)| *naive > 0.0)
                .map(|(batched, naive)| batched / naive),
        });
    }
    ratios
}

fn key_set_label(key_set: KeySet, keys: u32) -> String {
    match key_set {
        KeySet::Hot => "1 hot".to_string(),
        KeySet::Many => format!("{keys}"),
    }
}

fn or_na(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "n/a".to_string(), |value| format!("{value:.decimals$}"))
}

impl Report {
    /// The tables, as printed at the end of a run.
    pub fn print(&self) {
        println!(
            "\nmachine: {} CPUs ({}), {} MB, Linux {}; commit {}; binaries {}{}",
            self.machine.cpus,
            self.machine.cpu_model,
            self.machine.memory_mb,
            self.machine.kernel,
            self.git_commit.as_deref().unwrap_or("?"),
            self.bin_dir,
            if self.smoke {
                "; SMOKE run (not figures)"
            } else {
                ""
            }
        );
        if !self.settle.is_empty() {
            println!(
                "\nsettlements through Meter (open + close per stream; latencies in ms; CPU in ms, context \
                 switches of billing-svc and fsyncs per settlement)\n\
                 {:<9} {:>6} {:>8} {:>5} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>6} {:>7} {:>8} {:>8} {:>7} {:>7}",
                "backend",
                "keys",
                "mode",
                "conc",
                "settle/s",
                "open p50",
                "open p99",
                "settl p50",
                "settl p99",
                "count",
                "errors",
                "RSS MB",
                "svc CPU",
                "db CPU",
                "ctx sw",
                "fsyncs"
            );
            for run in &self.settle {
                println!(
                    "{:<9} {:>6} {:>8} {:>5} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>8} {:>6} {:>7.1} {:>8.3} {:>8} {:>7.1} {:>7}",
                    run.backend.name(),
                    key_set_label(run.key_set, run.keys),
                    run.write_mode,
                    run.concurrency,
                    run.settlements_per_sec,
                    run.open_latency.p50_ms,
                    run.open_latency.p99_ms,
                    run.settle_latency.p50_ms,
                    run.settle_latency.p99_ms,
                    run.settlements,
                    run.errors,
                    run.billing_peak_rss_mb,
                    run.billing_cpu_ms_per_settlement,
                    or_na(run.database_cpu_ms_per_settlement, 3),
                    run.billing_context_switches_per_settlement,
                    or_na(run.fsyncs_per_settlement, 2)
                );
            }
            println!(
                "\nbatched / naive\n{:<9} {:>6} {:>10} {:>10} {:>7}",
                "backend", "keys", "batched/s", "naive/s", "ratio"
            );
            for ratio in &self.ratios {
                println!(
                    "{:<9} {:>6} {:>10} {:>10} {:>7}",
                    ratio.backend.name(),
                    match ratio.key_set {
                        KeySet::Hot => "hot",
                        KeySet::Many => "many",
                    },
                    or_na(ratio.batched_per_sec, 0),
                    or_na(ratio.naive_per_sec, 0),
                    or_na(ratio.ratio, 1)
                );
            }
            if !self.write_mode_flag {
                println!(
                    "(billing-svc has no --write-mode flag yet: one run on its current path, ratio n/a)"
                );
            }
        }
        if let Some(run) = &self.transport {
            println!(
                "\ntransport only: the same load against a null MeteringService in this process (own runtime, \
                 {} workers; no storage; latencies in ms; CPU in ms and context switches of the server's threads \
                 per settlement)\n\
                 {:>5} {:>5} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>6} {:>10} {:>10} {:>10}",
                run.server_worker_threads,
                "conc",
                "conns",
                "settle/s",
                "open p50",
                "open p99",
                "settl p50",
                "settl p99",
                "count",
                "errors",
                "client CPU",
                "server CPU",
                "srv ctx sw"
            );
            println!(
                "{:>5} {:>5} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>8} {:>6} {:>10.3} {:>10.3} {:>10.1}",
                run.concurrency,
                run.connections,
                run.settlements_per_sec,
                run.open_latency.p50_ms,
                run.open_latency.p99_ms,
                run.settle_latency.p50_ms,
                run.settle_latency.p99_ms,
                run.settlements,
                run.errors,
                run.client_cpu_ms_per_settlement,
                run.server_cpu_ms_per_settlement,
                run.server_context_switches_per_settlement
            );
        }
        if let Some(e2e) = &self.e2e {
            for level in &e2e.levels {
                println!(
                    "\nend to end, POST /v1/chat/completions, concurrency {} (billing on {}; latencies in ms; CPU \
                     per request of the path's own processes, warm-up included)\n{:<26} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>9}",
                    level.concurrency,
                    e2e.backend.name(),
                    "path",
                    "req/s",
                    "p50",
                    "p99",
                    "added50",
                    "added99",
                    "count",
                    "errors",
                    "CPU ms"
                );
                let direct = (&level.direct, None, None);
                let gateway = (
                    &level.gateway,
                    Some((level.added_p50_ms, level.added_p99_ms)),
                    Some(level.platform_cpu_ms_per_request),
                );
                let mut rows = vec![
                    ("mock-model direct", direct),
                    ("platform (gateway)", gateway),
                ];
                if let Some(portkey) = &level.portkey {
                    let added = level.portkey_added_p50_ms.zip(level.portkey_added_p99_ms);
                    rows.push((
                        "Portkey OSS gateway",
                        (portkey, added, level.portkey_cpu_ms_per_request),
                    ));
                }
                for (name, (phase, added, cpu)) in rows {
                    let (added50, added99) = added
                        .map_or((String::from("-"), String::from("-")), |(p50, p99)| {
                            (format!("{p50:.2}"), format!("{p99:.2}"))
                        });
                    println!(
                        "{:<26} {:>9.0} {:>8.2} {:>8.2} {:>8} {:>8} {:>8} {:>6} {:>9}",
                        name,
                        phase.requests_per_sec,
                        phase.latency.p50_ms,
                        phase.latency.p99_ms,
                        added50,
                        added99,
                        phase.requests,
                        phase.errors,
                        cpu.map_or(String::from("-"), |cpu| format!("{cpu:.3}"))
                    );
                }
                let cpu: Vec<String> = level
                    .cpu_ms_per_request
                    .iter()
                    .map(|(name, ms)| format!("{name} {ms:.3}"))
                    .collect();
                println!("platform CPU per request (ms): {}", cpu.join(", "));
            }
            let rss: Vec<String> = e2e
                .peak_rss_mb
                .iter()
                .map(|(name, mb)| format!("{name} {mb:.1}"))
                .collect();
            println!("peak RSS (MB, VmHWM): {}", rss.join(", "));
        }
        if let Some(run) = &self.sqlite_hops {
            println!(
                "\none statement per call vs {STATEMENTS_PER_CALL} per call (sqlx SQLite driver) vs the caller's \
                 thread (rusqlite); one transaction, no fsync; {} updates each; wall and bench-process CPU in µs \
                 per statement\n\
                 {:<28} {:>8} {:>9} {:>9}",
                run.updates, "statements per call", "calls", "wall µs", "CPU µs"
            );
            for (name, side) in [
                ("1, bound".to_string(), &run.one_per_call),
                (
                    format!("{STATEMENTS_PER_CALL}, unbound"),
                    &run.many_per_call,
                ),
                ("1, bound, rusqlite".to_string(), &run.same_thread),
            ] {
                println!(
                    "{:<28} {:>8} {:>9.2} {:>9.2}",
                    name, side.calls, side.wall_us_per_statement, side.cpu_us_per_statement
                );
            }
            println!(
                "{:<28} {:>8} {:>9} {:>9}",
                "ratio 1 / many",
                "",
                or_na(run.wall_ratio, 1),
                or_na(run.cpu_ratio, 1)
            );
        }
        if !self.usage_api.is_empty() {
            println!(
                "\nusage and costs APIs through the gateway: a 30-day 1d page (limit 31) of the big account, owner key\n\
                 (the first read sums the seeded records' closed hours and is timed apart)\n\
                 {:<9} {:>10} {:>10} {:>8} {:>12} {:<24} {:>5} {:>9} {:>9}",
                "backend",
                "records",
                "big acct",
                "seed s",
                "1st read s",
                "query",
                "runs",
                "p50 ms",
                "max ms"
            );
            for run in &self.usage_api {
                for (name, query) in [
                    ("completions by model", &run.completions),
                    ("costs by line_item", &run.costs),
                ] {
                    println!(
                        "{:<9} {:>10} {:>10} {:>8.1} {:>12.2} {:<24} {:>5} {:>9.1} {:>9.1}",
                        run.backend.name(),
                        run.records,
                        run.big_account_records,
                        run.seed_secs,
                        run.first_read_secs,
                        name,
                        query.runs,
                        query.latency.p50_ms,
                        query.latency.max_ms
                    );
                }
            }
        }
        if !self.targets.is_empty() {
            println!(
                "\ntargets (ratios inside this run)\n{:<52} {:>9} {:<12} met",
                "figure", "value", "goal"
            );
            for target in &self.targets {
                println!(
                    "{:<52} {:>9} {:<12} {}",
                    target.name,
                    or_na(target.value, 3),
                    target.goal,
                    match target.met {
                        Some(true) => "yes",
                        Some(false) => "NO",
                        None => "-",
                    }
                );
            }
        }
        if self.failures.is_empty() {
            let mut held = Vec::new();
            if !self.settle.is_empty() || self.e2e.is_some() {
                held.push("ledger invariants and usage-record counts hold after every run");
            }
            if self.transport.is_some() {
                held.push("the null server's Settled answers equal the settlements received");
            }
            if !self.usage_api.is_empty() {
                held.push(
                    "the usage and costs pages sum exactly to SQL's sums; ledger invariants hold after usage-api",
                );
            }
            if self.sqlite_hops.is_some() {
                held.push("the sqlite-hops counter equals 1 + the updates made");
            }
            println!("\nchecks: {}", held.join("; "));
        } else {
            println!("\nFAILED CHECKS:");
            for failure in &self.failures {
                println!("  - {failure}");
            }
        }
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("create {}", folder.display()))?;
        }
        let text = serde_json::to_string_pretty(self).context("serialise the report")?;
        std::fs::write(path, text + "\n").with_context(|| format!("write {}", path.display()))
    }
}
