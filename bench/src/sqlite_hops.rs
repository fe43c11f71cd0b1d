//! Scenario `sqlite-hops`: what one statement costs through sqlx's SQLite driver, against what SQLite itself
//! takes to run it. sqlx-sqlite runs each connection on a worker thread of its own, and every call is a
//! hand-off to that thread and back (flume channels); billing-svc's profile spends most of its CPU in the
//! kernel's task switches that these cause. The same updates run once as one bound statement per call, as
//! billing-svc sends them, and once as unbound strings of [`STATEMENTS_PER_CALL`] statements per call; the
//! difference is the price of the hand-offs. The batched side is not free of them either: the driver sends
//! each statement's result back on its own, and the caller may wake for any of them.
//!
//! A third side runs the bound updates with `rusqlite`, which calls SQLite in the caller's thread: no
//! hand-off at all, the cost a writer thread that owns its connection would pay.
//!
//! Each side runs inside one transaction, committed after its clock stops, so no fsync is measured. The
//! check: the counter that every update adds 1 to ends at exactly 1 + the updates made.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context;
use harness::Database;
use serde::Serialize;
use sqlx::{AnyConnection, Connection, Executor};

use crate::config::{Plan, STATEMENTS_PER_CALL};
use crate::probe::Probe;

/// billing-svc's settings for every SQLite connection (`store::sqlite_pool`).
const PRAGMAS: [&str; 4] = [
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA busy_timeout = 5000",
];
const UPDATE_BOUND: &str = "UPDATE t SET v = v + $1 WHERE id = 1";
const UPDATE_BOUND_RUSQLITE: &str = "UPDATE t SET v = v + ?1 WHERE id = 1";
const UPDATE_UNBOUND: &str = "UPDATE t SET v = v + 1 WHERE id = 1;";

/// The figures of the run.
#[derive(Debug, Clone, Serialize)]
pub struct SqliteHopsRun {
    /// Measured updates of each side.
    pub updates: u64,
    /// One bound `UPDATE` per call, as billing-svc sends its statements.
    pub one_per_call: Side,
    /// Unbound strings of `STATEMENTS_PER_CALL` updates per call.
    pub many_per_call: Side,
    /// The bound `UPDATE` through rusqlite, in the calling thread (no hand-off).
    pub same_thread: Side,
    /// Wall time per statement, one per call ÷ many per call.
    pub wall_ratio: Option<f64>,
    /// Process CPU per statement, one per call ÷ many per call (null when the batched side took no tick).
    pub cpu_ratio: Option<f64>,
}

/// One side of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub calls: u64,
    pub statements_per_call: u64,
    pub wall_us_per_statement: f64,
    /// CPU time of the whole bench process (user + system, `/proc/self/stat`, which counts in clock ticks of
    /// usually 10 ms: about ±1 tick over the side).
    pub cpu_us_per_statement: f64,
}

/// Measures both sides on a fresh SQLite file; a failed check is pushed to `failures`.
pub async fn run(plan: &Plan, failures: &mut Vec<String>) -> anyhow::Result<SqliteHopsRun> {
    if cfg!(debug_assertions) && !plan.smoke {
        eprintln!("bench: warning: this bench is a debug build, so are its sqlite-hops figures");
    }
    let updates = plan.sqlite_hops_updates;
    eprintln!(
        "bench: sqlite-hops: {updates} updates one per call, then {STATEMENTS_PER_CALL} per call"
    );
    // Spawned, so that the calls are made from a runtime worker like billing-svc's handlers, not from the
    // thread blocked in `block_on`, whose wake-ups take another path.
    let (run, counter, made) = tokio::spawn(measure(updates))
        .await
        .context("the sqlite-hops task")??;
    if u64::try_from(counter).ok() != made.checked_add(1) {
        failures.push(format!(
            "sqlite-hops: the counter is {counter} after {made} updates, expected {}",
            made.saturating_add(1)
        ));
    }
    Ok(run)
}

/// Runs both sides; returns the figures, the final counter and the updates made (warm-up included).
async fn measure(updates: u64) -> anyhow::Result<(SqliteHopsRun, i64, u64)> {
    let database = Database::sqlite()?;
    // The file's folder does not exist yet (billing-svc creates it when it opens a database).
    let path = database.sqlite_path()?;
    let folder = path.parent().context("a SQLite file is in a folder")?;
    std::fs::create_dir_all(folder).context("create the sqlite-hops folder")?;
    let mut connection = AnyConnection::connect(&format!("{}?mode=rwc", database.url))
        .await
        .context("open the sqlite-hops database")?;
    for statement in PRAGMAS.into_iter().chain([
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v BIGINT NOT NULL)",
        "INSERT INTO t (id, v) VALUES (1, 1)",
    ]) {
        connection.execute(statement).await.context(statement)?;
    }
    let batch = UPDATE_UNBOUND.repeat(usize::try_from(STATEMENTS_PER_CALL)?);
    let calls = updates / STATEMENTS_PER_CALL;

    // One unmeasured call of each kind first, so that neither side's clock includes preparing statements.
    let mut transaction = connection.begin().await?;
    sqlx::query(UPDATE_BOUND)
        .bind(1_i64)
        .execute(&mut *transaction)
        .await?;
    let (one_per_call, ()) = timed(updates, 1, async {
        for _ in 0..updates {
            sqlx::query(UPDATE_BOUND)
                .bind(1_i64)
                .execute(&mut *transaction)
                .await?;
        }
        Ok(())
    })
    .await?;
    transaction.commit().await?;

    // `&str` is a persistent query: its prepared statements are cached and reused, as the bound one is.
    let mut transaction = connection.begin().await?;
    transaction.execute(batch.as_str()).await?;
    let (many_per_call, ()) = timed(calls, STATEMENTS_PER_CALL, async {
        for _ in 0..calls {
            transaction.execute(batch.as_str()).await?;
        }
        Ok(())
    })
    .await?;
    transaction.commit().await?;

    connection.close().await?;

    let (same_thread, counter) = timed(updates, 1, async {
        tokio::task::spawn_blocking(move || same_thread_updates(&path, updates))
            .await
            .context("the rusqlite task")?
    })
    .await?;
    let made = 1 + updates + STATEMENTS_PER_CALL + calls * STATEMENTS_PER_CALL + 1 + updates;
    let ratio = |one: f64, many: f64| (many > 0.0).then(|| one / many);
    let run = SqliteHopsRun {
        updates,
        wall_ratio: ratio(
            one_per_call.wall_us_per_statement,
            many_per_call.wall_us_per_statement,
        ),
        cpu_ratio: ratio(
            one_per_call.cpu_us_per_statement,
            many_per_call.cpu_us_per_statement,
        ),
        one_per_call,
        many_per_call,
        same_thread,
    };
    Ok((run, counter, made))
}

/// One unmeasured update, then `updates` bound updates through one cached prepared statement, in one
/// transaction, in this thread. Returns the counter read afterwards. The clock of [`timed`] includes opening
/// the connection and the final commit, with its fsync: a few hundred µs over thousands of updates.
fn same_thread_updates(path: &std::path::Path, updates: u64) -> anyhow::Result<i64> {
    let mut connection = rusqlite::Connection::open(path).context("open with rusqlite")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    let transaction = connection.transaction()?;
    {
        let mut update = transaction.prepare_cached(UPDATE_BOUND_RUSQLITE)?;
        update.execute([1_i64])?;
        for _ in 0..updates {
            update.execute([1_i64])?;
        }
    }
    transaction.commit()?;
    Ok(connection.query_row("SELECT v FROM t WHERE id = 1", [], |row| row.get(0))?)
}

/// Wall and process CPU time of `work`, which makes `calls` calls of `statements_per_call` statements each,
/// and what it returned.
async fn timed<T>(
    calls: u64,
    statements_per_call: u64,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(Side, T)> {
    let probe = Probe::start(vec![std::process::id()], false, Duration::ZERO);
    let started = Instant::now();
    let value = work.await?;
    let wall = started.elapsed();
    let cpu_secs = probe.finish().await.cpu_secs;
    let per_statement_us = |secs: f64| secs * 1e6 / (calls * statements_per_call).max(1) as f64;
    let side = Side {
        calls,
        statements_per_call,
        wall_us_per_statement: per_statement_us(wall.as_secs_f64()),
        cpu_us_per_statement: per_statement_us(cpu_secs),
    };
    Ok((side, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn every_update_reaches_the_counter() {
        let (run, counter, made) = measure(2 * STATEMENTS_PER_CALL).await.unwrap();

        assert_eq!(u64::try_from(counter).unwrap(), made + 1);
        assert_eq!(run.one_per_call.calls, 200);
        assert_eq!(run.many_per_call.calls, 2);
        assert_eq!(run.same_thread.calls, 200);
    }
}
