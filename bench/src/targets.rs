//! The performance targets (issues 16 and 27), as ratios and figures inside one run: each figure is set against its ceiling
//! measured in the same run on the same machine, so that a noisy shared machine moves both sides alike.
//! They are reported, never asserted: speed is judged from the table, not by failing a run.

use serde::Serialize;

use crate::config::KeySet;
use crate::e2e::E2eRun;
use crate::settle::SettleRun;
use crate::transport::TransportRun;
use crate::usage_api::UsageApiRun;

/// Settlements per second with one hot key, as a share of the transport ceiling.
const HOT_SHARE: f64 = 0.40;
/// The same with many keys.
const MANY_SHARE: f64 = 0.25;
/// At concurrency 1 (issue 27): what the platform may add at p50 and p99, and its CPU per request, in ms.
const SINGLE_ADDED_P50_MS: f64 = 1.5;
const SINGLE_ADDED_P99_MS: f64 = 3.0;
const SINGLE_CPU_MS: f64 = 1.0;
/// At the highest concurrency: what it may add at p50, in ms, and its throughput as a multiple of Portkey's.
const LOADED_ADDED_P50_MS: f64 = 10.0;
const PORTKEY_MULTIPLE: f64 = 2.0;
/// Peak resident memory of every service, in MB.
const PEAK_RSS_MB: f64 = 100.0;
/// Issue 29: the slowest of the runs of a 30-day `1d` usage or costs page of an account holding 1,000,000
/// usage records, in ms (release build). Scaled linearly with the account's records, never below 100 ms, so
/// that a smaller `--usage-api-records` has a bound of the same rate.
const USAGE_API_MAX_MS_PER_MILLION: f64 = 2_000.0;
const USAGE_API_FLOOR_MS: f64 = 100.0;

/// One target: the figure, the goal, and whether it was met (null when the run did not measure it).
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub name: String,
    pub value: Option<f64>,
    pub goal: String,
    pub met: Option<bool>,
}

/// Every target the run measured.
pub fn evaluate(
    settle: &[SettleRun],
    transport: Option<&TransportRun>,
    e2e: Option<&E2eRun>,
    usage_api: &[UsageApiRun],
) -> Vec<Target> {
    let mut targets = Vec::new();
    let ceiling = transport.map(|run| run.settlements_per_sec);
    for run in settle.iter().filter(|run| run.write_mode != "naive") {
        let share = match run.key_set {
            KeySet::Hot => HOT_SHARE,
            KeySet::Many => MANY_SHARE,
        };
        let value = ceiling
            .filter(|ceiling| *ceiling > 0.0)
            .map(|ceiling| run.settlements_per_sec / ceiling);
        targets.push(Target {
            name: format!(
                "settle/s ÷ transport, {} {} keys",
                run.backend.name(),
                run.keys
            ),
            value,
            goal: format!("≥ {share:.2}"),
            met: value.map(|value| value >= share),
        });
        targets.push(at_most(
            format!(
                "billing-svc peak RSS MB, settle {} {} keys",
                run.backend.name(),
                run.keys
            ),
            Some(run.billing_peak_rss_mb),
            PEAK_RSS_MB,
        ));
    }
    if let Some(e2e) = e2e {
        for level in &e2e.levels {
            let at = level.concurrency;
            if at == 1 {
                targets.push(at_most(
                    "e2e added p50 ms, concurrency 1".to_string(),
                    Some(level.added_p50_ms),
                    SINGLE_ADDED_P50_MS,
                ));
                targets.push(at_most(
                    "e2e added p99 ms, concurrency 1".to_string(),
                    Some(level.added_p99_ms),
                    SINGLE_ADDED_P99_MS,
                ));
                targets.push(at_most(
                    "e2e platform CPU ms per request, concurrency 1".to_string(),
                    Some(level.platform_cpu_ms_per_request),
                    SINGLE_CPU_MS,
                ));
            } else {
                targets.push(at_most(
                    format!("e2e added p50 ms, concurrency {at}"),
                    Some(level.added_p50_ms),
                    LOADED_ADDED_P50_MS,
                ));
                let multiple = level
                    .portkey
                    .as_ref()
                    .filter(|portkey| portkey.requests_per_sec > 0.0)
                    .map(|portkey| level.gateway.requests_per_sec / portkey.requests_per_sec);
                targets.push(Target {
                    name: format!("e2e req/s ÷ Portkey's, concurrency {at}"),
                    value: multiple,
                    goal: format!("≥ {PORTKEY_MULTIPLE:.1}"),
                    met: multiple.map(|multiple| multiple >= PORTKEY_MULTIPLE),
                });
            }
        }
        for (name, mb) in e2e
            .peak_rss_mb
            .iter()
            .filter(|(name, _)| *name != "portkey")
        {
            targets.push(at_most(
                format!("{name} peak RSS MB, e2e"),
                Some(*mb),
                PEAK_RSS_MB,
            ));
        }
    }
    for run in usage_api {
        let limit = usage_api_bound_ms(run.records);
        for (name, query) in [("completions", &run.completions), ("costs", &run.costs)] {
            targets.push(at_most(
                format!(
                    "usage-api {name} max ms, {} {} records",
                    run.backend.name(),
                    run.records
                ),
                Some(query.latency.max_ms),
                limit,
            ));
        }
    }
    targets
}

/// The bound of a usage-api page on a table of `records` records, in ms.
fn usage_api_bound_ms(records: u64) -> f64 {
    (USAGE_API_MAX_MS_PER_MILLION * records as f64 / 1_000_000.0).max(USAGE_API_FLOOR_MS)
}

fn at_most(name: String, value: Option<f64>, limit: f64) -> Target {
    Target {
        name,
        value,
        goal: format!("≤ {limit}"),
        met: value.map(|value| value <= limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_is_met_at_the_limit_and_not_above() {
        assert_eq!(at_most("x".into(), Some(5.0), 5.0).met, Some(true));
        assert_eq!(at_most("x".into(), Some(5.1), 5.0).met, Some(false));
        assert_eq!(at_most("x".into(), None, 5.0).met, None);
    }

    #[test]
    fn the_usage_api_bound_is_two_seconds_per_million_records_and_at_least_the_floor() {
        assert_eq!(usage_api_bound_ms(1_000_000), 2_000.0);
        assert_eq!(usage_api_bound_ms(20_000), 100.0);
        assert_eq!(usage_api_bound_ms(500_000), 1_000.0);
    }
}
