//! Command-line flags, and the plan they resolve to (`--smoke` shrinks every bound to a CI-sized run).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use harness::{Backend, Cluster, KeptLogs, Launcher};

/// How long a service may take to log `listening` (migrations on a fresh database included).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Log lines kept per service, to explain a failure without holding a whole run's logs in memory.
const KEPT_LOG_LINES: usize = 20;
/// How the names of the bench's PostgreSQL databases start (`bench_<uuid>`), to tell them apart on a
/// cluster that outlives the run.
pub const DATABASE_PREFIX: &str = "bench";
/// Statements per call on the batched side of the `sqlite-hops` scenario; `--sqlite-hops-updates` is a
/// multiple of it.
pub const STATEMENTS_PER_CALL: u64 = 100;

/// Measures the billing platform by starting the real service binaries on loopback.
///
/// Full run (release binaries: `cargo build --release -p billing-svc -p executor-svc -p gateway -p mock-model`):
/// `cargo run --release -p bench -- --json target/bench.json`. CI: `cargo run -p bench -- --smoke`.
#[derive(Debug, Clone, Parser)]
#[command(name = "bench", version)]
pub struct Args {
    /// Scenarios to run.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Scenario::Settle, Scenario::Transport, Scenario::E2e, Scenario::SqliteHops, Scenario::UsageApi])]
    pub scenarios: Vec<Scenario>,

    /// Databases the settlement and usage-api scenarios run on.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Backend::Sqlite, Backend::Postgres])]
    pub backends: Vec<Backend>,

    /// Write modes of billing-svc to compare (used only when its `--help` offers `--write-mode`).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [WriteMode::Batched, WriteMode::Naive])]
    pub write_modes: Vec<WriteMode>,

    /// Key sets of the settlement scenario: one hot key, or `--many-keys` keys used round-robin.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [KeySet::Hot, KeySet::Many])]
    pub key_sets: Vec<KeySet>,

    /// How many keys the `many` key set creates (each through AdminService, each credited).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub many_keys: u32,

    /// Concurrent `Meter` streams of the settlement scenario.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: u32,

    /// HTTP/2 connections the settlement streams are spread over.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub connections: u32,

    /// Measured seconds of each settlement run (after the warm-up).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub duration_secs: u64,

    /// Unmeasured seconds before each measured window (connections opened, caches and database pages warm).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub warmup_secs: u64,

    /// Ceiling on the settlements of one run, warm-up included, whatever the duration.
    #[arg(long, default_value_t = 2_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub max_settlements: u64,

    /// Concurrencies of the end-to-end scenario, each measured in turn on the same stack.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 32], value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub e2e_concurrency: Vec<u32>,

    /// `build/start-server.js` of Portkey's OSS gateway (`@portkey-ai/gateway`; `scripts/bench` installs it
    /// into `target/portkey`): the end-to-end scenario then measures the same calls through it too.
    #[arg(long, env = "BENCH_PORTKEY")]
    pub portkey: Option<PathBuf>,

    /// Measured seconds of each end-to-end phase (direct to the mock, then through the gateway).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub e2e_duration_secs: u64,

    /// Ceiling on the requests of one end-to-end phase, warm-up included.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub max_requests: u64,

    /// Database of billing-svc in the end-to-end scenario.
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    pub e2e_backend: Backend,

    /// Updates of each side of the `sqlite-hops` scenario (a multiple of 100, the statements per call of
    /// its batched side).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(100..=10_000_000))]
    pub sqlite_hops_updates: u64,

    /// Usage records the `usage-api` scenario seeds (smoke: at most 20,000).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub usage_api_records: u64,

    /// An existing PostgreSQL cluster (a URL with a database the harness may `CREATE DATABASE` from).
    /// Without it a throwaway cluster is started with `initdb`/`pg_ctl` (and `--smoke` falls back to
    /// `TEST_POSTGRES_URL`, or skips PostgreSQL when that is unset).
    #[arg(long, env = "BENCH_POSTGRES_URL")]
    pub postgres_url: Option<String>,

    /// Folder of `initdb` and `pg_ctl` for the throwaway cluster.
    #[arg(long, default_value = "/usr/lib/postgresql/15/bin")]
    pub pg_bin_dir: PathBuf,

    /// Folder of the service binaries; default: the folder of this executable (target/release when run
    /// with `cargo run --release`).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,

    /// `RUST_LOG` of the services (their logs are read and discarded, as a log shipper would).
    #[arg(long, default_value = "info")]
    pub service_log: String,

    /// Extra environment of every service, `KEY=VALUE`, repeatable (e.g. `DB_MAX_CONNECTIONS=20`, or an
    /// `LD_PRELOAD` for an experiment).
    #[arg(long, value_parser = parse_env_pair)]
    pub service_env: Vec<(String, String)>,

    /// Print the services' log lines to stderr (prefixed with the service's name) instead of discarding them.
    #[arg(long)]
    pub echo_service_logs: bool,

    /// Count the fsync/fdatasync calls of billing-svc (SQLite) or of the throwaway PostgreSQL server during
    /// each measured settlement window, with `perf stat` (needs perf and the right to trace).
    #[arg(long)]
    pub count_fsyncs: bool,

    /// Write every figure as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// A seconds-long run for CI: few keys, short windows, SQLite (PostgreSQL only through
    /// `--postgres-url`/`TEST_POSTGRES_URL`); the invariant checks are the same.
    #[arg(long)]
    pub smoke: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Settlements per second through the `Meter` stream (issue 5 a and b).
    Settle,
    /// The settle load against a null `MeteringService` inside the bench: the transport's and the load
    /// client's own ceiling, no storage.
    Transport,
    /// HTTP `/execute` through the whole stack against the mock model called directly (c and d).
    E2e,
    /// One SQLite statement per call through sqlx's driver against 100 per call, in this process: the
    /// price of the driver's hand-offs to its worker thread.
    SqliteHops,
    /// OpenAI's organization Usage and Costs APIs through the gateway, on `--usage-api-records` seeded
    /// usage records (issue 29).
    UsageApi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    Batched,
    Naive,
}

impl WriteMode {
    pub fn name(self) -> &'static str {
        match self {
            WriteMode::Batched => "batched",
            WriteMode::Naive => "naive",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeySet {
    Hot,
    Many,
}

/// Where PostgreSQL comes from.
#[derive(Debug, Clone)]
pub enum PostgresSource {
    /// Start a throwaway cluster with the binaries of this folder.
    Throwaway { pg_bin_dir: PathBuf },
    /// Use the cluster at this URL.
    Existing { url: String },
}

impl PostgresSource {
    /// The cluster: started now (throwaway), or the existing one.
    pub fn open(&self) -> anyhow::Result<Cluster> {
        match self {
            PostgresSource::Throwaway { pg_bin_dir } => Cluster::throwaway(pg_bin_dir),
            PostgresSource::Existing { url } => Ok(Cluster::existing(url.clone())),
        }
    }
}

/// Every bound of a run, after `--smoke` is applied.
#[derive(Debug, Clone)]
pub struct Plan {
    pub smoke: bool,
    pub scenarios: Vec<Scenario>,
    pub backends: Vec<Backend>,
    pub write_modes: Vec<WriteMode>,
    pub key_sets: Vec<KeySet>,
    pub many_keys: u32,
    pub concurrency: u32,
    pub connections: u32,
    pub duration: Duration,
    pub warmup: Duration,
    pub max_settlements: u64,
    pub e2e_concurrency: Vec<u32>,
    pub portkey: Option<PathBuf>,
    pub e2e_duration: Duration,
    pub max_requests: u64,
    pub e2e_backend: Backend,
    pub sqlite_hops_updates: u64,
    pub usage_api_records: u64,
    pub postgres: Option<PostgresSource>,
    pub bin_dir: PathBuf,
    pub service_log: String,
    pub service_env: Vec<(String, String)>,
    pub echo_service_logs: bool,
    pub count_fsyncs: bool,
    pub json: Option<PathBuf>,
}

impl Args {
    /// Resolves the flags into a plan; `--smoke` caps every bound so that the run takes seconds.
    pub fn plan(self) -> anyhow::Result<Plan> {
        let bin_dir = match self.bin_dir {
            Some(dir) => dir,
            None => std::env::current_exe()
                .context("locate the bench executable")?
                .parent()
                .context("the bench executable has no folder")?
                .to_path_buf(),
        };
        let wants_postgres = ((self.scenarios.contains(&Scenario::Settle)
            || self.scenarios.contains(&Scenario::UsageApi))
            && self.backends.contains(&Backend::Postgres))
            || (self.scenarios.contains(&Scenario::E2e) && self.e2e_backend == Backend::Postgres);
        let postgres = match (self.postgres_url, self.smoke) {
            (Some(url), _) => Some(PostgresSource::Existing { url }),
            (None, true) => std::env::var("TEST_POSTGRES_URL")
                .ok()
                .filter(|url| !url.is_empty())
                .map(|url| PostgresSource::Existing { url }),
            (None, false) => Some(PostgresSource::Throwaway {
                pg_bin_dir: self.pg_bin_dir,
            }),
        }
        .filter(|_| wants_postgres);
        let mut backends = self.backends;
        if postgres.is_none() {
            backends.retain(|backend| *backend == Backend::Sqlite);
        }
        if self.e2e_backend == Backend::Postgres
            && postgres.is_none()
            && self.scenarios.contains(&Scenario::E2e)
        {
            bail!("--e2e-backend postgres needs PostgreSQL: pass --postgres-url");
        }
        if !self.sqlite_hops_updates.is_multiple_of(STATEMENTS_PER_CALL) {
            bail!("--sqlite-hops-updates must be a multiple of {STATEMENTS_PER_CALL}");
        }
        let plan = Plan {
            smoke: self.smoke,
            scenarios: self.scenarios,
            backends,
            write_modes: self.write_modes,
            key_sets: self.key_sets,
            many_keys: self.many_keys,
            concurrency: self.concurrency,
            connections: self.connections,
            duration: Duration::from_secs(self.duration_secs),
            warmup: Duration::from_secs(self.warmup_secs),
            max_settlements: self.max_settlements,
            e2e_concurrency: self.e2e_concurrency,
            portkey: self.portkey,
            e2e_duration: Duration::from_secs(self.e2e_duration_secs),
            max_requests: self.max_requests,
            e2e_backend: self.e2e_backend,
            sqlite_hops_updates: self.sqlite_hops_updates,
            usage_api_records: self.usage_api_records,
            postgres,
            bin_dir,
            service_log: self.service_log,
            service_env: self.service_env,
            echo_service_logs: self.echo_service_logs,
            count_fsyncs: self.count_fsyncs,
            json: self.json,
        };
        Ok(if plan.smoke { plan.smoke() } else { plan })
    }
}

impl Plan {
    /// How the services of this plan are started.
    pub fn launcher(&self) -> Launcher {
        Launcher {
            bin_dir: self.bin_dir.clone(),
            rust_log: self.service_log.clone(),
            extra_env: self.service_env.clone(),
            echo_logs: self.echo_service_logs,
            kept_logs: KeptLogs::Last(KEPT_LOG_LINES),
            start_timeout: START_TIMEOUT,
        }
    }

    /// CI bounds: a second of load per run, a hundred keys, no warm-up, small counts. The checks after
    /// each run are unchanged, so the smoke run still proves the harness and the ledger agree.
    fn smoke(self) -> Plan {
        Plan {
            many_keys: self.many_keys.min(100),
            concurrency: self.concurrency.min(16),
            connections: self.connections.min(2),
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            max_settlements: self.max_settlements.min(2_000),
            e2e_concurrency: self
                .e2e_concurrency
                .iter()
                .map(|concurrency| (*concurrency).min(8))
                .collect(),
            e2e_duration: Duration::from_secs(1),
            max_requests: self.max_requests.min(500),
            sqlite_hops_updates: self.sqlite_hops_updates.min(2_000),
            usage_api_records: self.usage_api_records.min(20_000),
            ..self
        }
    }
}

fn parse_env_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}
