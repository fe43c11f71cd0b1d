//! A closed-loop load: `concurrency` workers each run one operation after another until the deadline or
//! the maximum count, whichever comes first. Operations started during the warm-up complete but are not
//! measured; the measured window runs from the end of the warm-up to the moment the last worker stops.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::stats::{Percentiles, Samples};

/// The latencies of one operation: up to two phases (open and settle; or one for an HTTP request).
pub struct Timing {
    pub first: Duration,
    pub second: Option<Duration>,
}

/// What a finished load measured.
#[derive(Debug)]
pub struct Outcome {
    /// Operations that succeeded, warm-up included (what the database must show).
    pub succeeded: u64,
    /// Operations that succeeded and started inside the measured window.
    pub measured: u64,
    pub window: Duration,
    pub first: Percentiles,
    pub second: Percentiles,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Outcome {
    pub fn per_sec(&self) -> f64 {
        if self.window.is_zero() {
            0.0
        } else {
            self.measured as f64 / self.window.as_secs_f64()
        }
    }
}

/// The bounds of a load, shared by its workers.
struct Budget {
    measured_from: Instant,
    deadline: Instant,
    max: u64,
    issued: AtomicU64,
}

impl Budget {
    /// The sequence number of the next operation, or None when the load is over.
    fn next(&self) -> Option<u64> {
        if Instant::now() >= self.deadline {
            return None;
        }
        let sequence = self.issued.fetch_add(1, Ordering::Relaxed);
        (sequence < self.max).then_some(sequence)
    }
}

#[derive(Default)]
struct Tally {
    succeeded: u64,
    measured: u64,
    first: Samples,
    second: Samples,
    errors: u64,
    first_error: Option<String>,
}

/// Runs `operation(sequence)` from `concurrency` workers for `warmup + duration`, at most `max` times.
pub async fn run<F, Fut>(
    concurrency: u32,
    warmup: Duration,
    duration: Duration,
    max: u64,
    operation: F,
) -> Outcome
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Timing>> + Send,
{
    let start = Instant::now();
    let budget = Arc::new(Budget {
        measured_from: start + warmup,
        deadline: start + warmup + duration,
        max,
        issued: AtomicU64::new(0),
    });
    let operation = Arc::new(operation);
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let budget = budget.clone();
            let operation = operation.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while let Some(sequence) = budget.next() {
                    let started = Instant::now();
                    match operation(sequence).await {
                        Ok(timing) => {
                            tally.succeeded += 1;
                            if started >= budget.measured_from {
                                tally.measured += 1;
                                tally.first.record(timing.first);
                                if let Some(second) = timing.second {
                                    tally.second.record(second);
                                }
                            }
                        }
                        Err(error) => {
                            tally.errors += 1;
                            tally
                                .first_error
                                .get_or_insert_with(|| format!("{error:#}"));
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for worker in workers {
        match worker.await {
            Ok(tally) => {
                total.succeeded += tally.succeeded;
                total.measured += tally.measured;
                total.first.extend(tally.first);
                total.second.extend(tally.second);
                total.errors += tally.errors;
                if total.first_error.is_none() {
                    total.first_error = tally.first_error;
                }
            }
            Err(join_error) => {
                total.errors += 1;
                total
                    .first_error
                    .get_or_insert_with(|| format!("a load worker died: {join_error}"));
            }
        }
    }
    Outcome {
        succeeded: total.succeeded,
        measured: total.measured,
        window: Instant::now().saturating_duration_since(budget.measured_from),
        first: total.first.percentiles(),
        second: total.second.percentiles(),
        errors: total.errors,
        first_error: total.first_error,
    }
}
