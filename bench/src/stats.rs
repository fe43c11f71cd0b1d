//! Latency samples and their percentiles (nearest rank over every sample: exact, no histogram buckets).

use std::time::Duration;

use serde::Serialize;

/// Percentiles of one latency, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub samples: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Latencies recorded in microseconds; one per operation of the measured window.
#[derive(Debug, Default)]
pub struct Samples(Vec<u64>);

impl Samples {
    pub fn record(&mut self, latency: Duration) {
        self.0
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    pub fn percentiles(mut self) -> Percentiles {
        self.0.sort_unstable();
        let samples = &self.0;
        let rank = |fraction: f64| -> f64 {
            if samples.is_empty() {
                return 0.0;
            }
            // Nearest rank: the smallest sample with at least `fraction` of the samples at or below it.
            let count = samples.len() as f64;
            let index = ((fraction * count).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[index] as f64 / 1000.0
        };
        Percentiles {
            samples: samples.len() as u64,
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            max_ms: samples.last().map_or(0.0, |&max| max as f64 / 1000.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples = Samples::default();
        for ms in 1..=100 {
            samples.record(Duration::from_millis(ms));
        }
        let percentiles = samples.percentiles();
        assert_eq!(percentiles.samples, 100);
        assert_eq!(percentiles.p50_ms, 50.0);
        assert_eq!(percentiles.p99_ms, 99.0);
        assert_eq!(percentiles.max_ms, 100.0);
        assert_eq!(Samples::default().percentiles().p99_ms, 0.0);
    }
}
