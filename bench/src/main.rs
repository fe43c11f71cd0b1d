//! `bench`: the benchmark harness of the billing platform (BENCHMARKS.md says how to read it).
//!
//! It starts the real service binaries as processes on loopback (no fixed ports, each ready when it logs
//! `listening`), drives them, prints a table, optionally writes JSON, and checks the ledger in SQL after
//! every run. A broken invariant or a failed operation makes the exit status non-zero: a benchmark that
//! loses money is a failed benchmark, however fast it was. The `transport` and `sqlite-hops` scenarios start
//! no service: they measure the same load against a null server inside this process (see `transport`), and
//! sqlx's SQLite driver on its own (see `sqlite_hops`).

mod billing;
mod binaries;
mod config;
mod e2e;
mod load;
mod portkey;
mod probe;
mod report;
mod settle;
mod sqlite_hops;
mod stats;
mod targets;
mod transport;
mod usage_api;

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;

use crate::config::{Args, Plan, PostgresSource, Scenario};
use crate::report::{Machine, Report};

fn main() -> ExitCode {
    let plan = match Args::parse().plan() {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("bench: {error:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("bench: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(plan)) {
        Ok(report) if report.failures.is_empty() => ExitCode::SUCCESS,
        Ok(_) => {
            eprintln!("bench: FAILED: a check did not hold (see above)");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("bench: FAILED: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(plan: Plan) -> anyhow::Result<Report> {
    // Only these scenarios start the service binaries.
    let needs_services = plan.scenarios.iter().any(|scenario| {
        matches!(
            scenario,
            Scenario::Settle | Scenario::E2e | Scenario::UsageApi
        )
    });
    let write_mode_flag = if needs_services {
        let launcher = plan.launcher();
        binaries::check(&launcher)?;
        if !plan.smoke && !plan.bin_dir.ends_with("release") {
            eprintln!(
                "bench: warning: the services in {} are not release builds; build them with `{}` and \
                 run `cargo run --release -p bench`",
                plan.bin_dir.display(),
                binaries::BUILD_COMMAND
            );
        }
        let write_mode_flag = binaries::billing_has_write_mode(&launcher)?;
        if !write_mode_flag {
            eprintln!(
                "bench: billing-svc has no --write-mode flag: measuring its current path once (ratio n/a)"
            );
        }
        write_mode_flag
    } else {
        false
    };
    // The plan asks for a cluster only when a chosen scenario runs on PostgreSQL.
    let cluster = plan
        .postgres
        .as_ref()
        .map(PostgresSource::open)
        .transpose()?;

    let mut failures = Vec::new();
    let mut settle_runs = Vec::new();
    if plan.scenarios.contains(&Scenario::Settle) {
        for &backend in &plan.backends {
            settle_runs.extend(
                settle::run_backend(
                    &plan,
                    backend,
                    cluster.as_ref(),
                    write_mode_flag,
                    &mut failures,
                )
                .await?,
            );
        }
    }
    let transport = if plan.scenarios.contains(&Scenario::Transport) {
        Some(transport::run(&plan, &mut failures).await?)
    } else {
        None
    };
    let e2e = if plan.scenarios.contains(&Scenario::E2e) {
        Some(e2e::run(&plan, cluster.as_ref(), &mut failures).await?)
    } else {
        None
    };
    let sqlite_hops = if plan.scenarios.contains(&Scenario::SqliteHops) {
        Some(sqlite_hops::run(&plan, &mut failures).await?)
    } else {
        None
    };

    let usage_api = if plan.scenarios.contains(&Scenario::UsageApi) {
        usage_api::run(&plan, cluster.as_ref(), &mut failures).await?
    } else {
        Vec::new()
    };

    let report = Report {
        generated_at_unix_secs: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs()),
        machine: Machine::probe(),
        git_commit: report::git_commit(),
        smoke: plan.smoke,
        bin_dir: plan.bin_dir.display().to_string(),
        write_mode_flag,
        ratios: report::ratios(&settle_runs),
        targets: targets::evaluate(&settle_runs, transport.as_ref(), e2e.as_ref(), &usage_api),
        settle: settle_runs,
        transport,
        e2e,
        sqlite_hops,
        usage_api,
        failures,
    };
    report.print();
    if let Some(path) = &plan.json {
        report.write_json(path)?;
        eprintln!("bench: figures written to {}", path.display());
    }
    Ok(report)
}
