//! The performance targets (issue 16), as ratios inside one run: each figure is set against its ceiling
//! measured in the same run on the same machine, so that a noisy shared machine moves both sides alike.
//! They are reported, never asserted: speed is judged from the table, not by failing a run.

use serde::Serialize;

use crate::config::KeySet;
use crate::e2e::E2eRun;
use crate::settle::SettleRun;
use crate::transport::TransportRun;

/// Settlements per second with one hot key, as a share of the transport ceiling.
const HOT_SHARE: f64 = 0.40;
/// The same with many keys.
const MANY_SHARE: f64 = 0.25;
/// `/execute` requests per second as a share of the mock model called directly.
const E2E_SHARE: f64 = 0.15;
/// What the platform may add at p50, in ms.
const ADDED_P50_MS: f64 = 5.0;
/// Peak resident memory of every service, in MB.
const PEAK_RSS_MB: f64 = 100.0;

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
        let value = (e2e.direct.requests_per_sec > 0.0)
            .then(|| e2e.gateway.requests_per_sec / e2e.direct.requests_per_sec);
        targets.push(Target {
            name: "e2e req/s ÷ mock direct".to_string(),
            value,
            goal: format!("≥ {E2E_SHARE:.2}"),
            met: value.map(|value| value >= E2E_SHARE),
        });
        targets.push(at_most(
            "e2e added p50 ms".to_string(),
            Some(e2e.added_p50_ms),
            ADDED_P50_MS,
        ));
        for (name, mb) in &e2e.peak_rss_mb {
            targets.push(at_most(
                format!("{name} peak RSS MB, e2e"),
                Some(*mb),
                PEAK_RSS_MB,
            ));
        }
        targets.push(Target {
            name: "e2e platform CPU ms per request".to_string(),
            value: Some(e2e.platform_cpu_ms_per_request),
            goal: "≤ half of the previous binaries (run both with --bin-dir)".to_string(),
            met: None,
        });
    }
    targets
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
}
