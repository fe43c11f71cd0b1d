//! A provider's health as this executor saw it since it started: attempts, failures, fallbacks, time to the
//! first item, and whether it counts as down ([`ProviderStatus`], for `/readyz` and `/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::ExecutorError;

/// Failed attempts in a row, the provider down each time, after which a provider counts as down.
const DOWN_AFTER_FAILURES: u64 = 3;

/// What this executor saw of a provider since it started (see [`ProviderStatus`]).
#[derive(Debug, Default)]
pub(super) struct Health {
    pub(super) attempts: AtomicU64,
    pub(super) failures: AtomicU64,
    pub(super) fallbacks: AtomicU64,
    pub(super) first_item_micros: AtomicU64,
    /// Attempts in a row that failed with the provider down; 0 after a success.
    pub(super) down_in_a_row: AtomicU64,
}

/// A provider's health, for `/readyz` and `/metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderStatus {
    pub name: String,
    pub kind: &'static str,
    /// Not down: fewer than [`DOWN_AFTER_FAILURES`] attempts in a row failed with the provider down.
    pub up: bool,
    pub attempts: u64,
    pub failures: u64,
    pub fallbacks: u64,
    /// Time to the first item, summed over successful attempts.
    pub first_item_seconds_sum: f64,
}

impl Health {
    /// Counts an attempt that ended with `result` after `elapsed`.
    pub(super) fn record<T>(&self, result: &Result<T, ExecutorError>, elapsed: Duration) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(_) => {
                let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
                self.first_item_micros.fetch_add(micros, Ordering::Relaxed);
                self.down_in_a_row.store(0, Ordering::Relaxed);
            }
            Err(error) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                if error.means_provider_down() {
                    self.down_in_a_row.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.down_in_a_row.store(0, Ordering::Relaxed);
                }
            }
        }
    }

    pub(super) fn is_up(&self) -> bool {
        self.down_in_a_row.load(Ordering::Relaxed) < DOWN_AFTER_FAILURES
    }
}
