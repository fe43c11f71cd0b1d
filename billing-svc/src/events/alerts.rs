//! `balance.low` thresholds (BILLING.md, "Events and alerts"): each fires once when the account's balance
//! crosses below it and re-arms when credit brings the balance back to it or above. The balance (settled
//! credit) is what is compared, not the available credit: holds come and go with every call in flight, and
//! counting them would fire a threshold again each time a call ends and another starts.

use serde::{Deserialize, Serialize};

use crate::error::BillingError;
use money::Money;

/// Most thresholds an account may have.
pub const MAX_THRESHOLDS: usize = 10;

/// One threshold and whether it may fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowBalance {
    pub threshold: Money,
    pub armed: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    threshold_nanos: i64,
    armed: bool,
}

/// The thresholds to store: distinct, non-negative, highest first; each armed when the balance is at or
/// above it.
pub fn configure(thresholds: &[Money], balance: Money) -> Result<Vec<LowBalance>, BillingError> {
    if thresholds.len() > MAX_THRESHOLDS {
        return Err(BillingError::invalid(
            "low_balance",
            format!("at most {MAX_THRESHOLDS} thresholds"),
        ));
    }
    if thresholds.iter().any(|threshold| threshold.is_negative()) {
        return Err(BillingError::invalid("low_balance", "must not be negative"));
    }
    let mut sorted = thresholds.to_vec();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    Ok(sorted
        .into_iter()
        .map(|threshold| LowBalance {
            threshold,
            armed: balance >= threshold,
        })
        .collect())
}

/// Moves the alerts from `before` to `after`: returns the thresholds that fired (now disarmed), and re-arms
/// those the balance is back at or above.
pub fn cross(alerts: &mut [LowBalance], after: Money) -> Vec<Money> {
    let mut fired = Vec::new();
    for alert in alerts {
        if alert.armed && after < alert.threshold {
            alert.armed = false;
            fired.push(alert.threshold);
        } else if !alert.armed && after >= alert.threshold {
            alert.armed = true;
        }
    }
    fired
}

pub fn to_json(alerts: &[LowBalance]) -> String {
    let stored: Vec<Stored> = alerts
        .iter()
        .map(|alert| Stored {
            threshold_nanos: alert.threshold.nanos(),
            armed: alert.armed,
        })
        .collect();
    serde_json::to_string(&stored).unwrap_or_else(|_| "[]".to_string())
}

pub fn from_json(text: &str) -> Result<Vec<LowBalance>, serde_json::Error> {
    let stored: Vec<Stored> = serde_json::from_str(text)?;
    Ok(stored
        .into_iter()
        .map(|alert| LowBalance {
            threshold: Money::from_nanos(alert.threshold_nanos),
            armed: alert.armed,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn usd(units: i64) -> Money {
        Money::from_nanos(units * 1_000_000_000)
    }

    #[test]
    fn each_threshold_fires_once_per_crossing_and_a_top_up_re_arms_it() {
        let mut alerts = configure(&[usd(1), usd(5), usd(5)], usd(10)).unwrap();
        assert_eq!(alerts.len(), 2);
        assert_eq!(cross(&mut alerts, usd(6)), vec![]);
        assert_eq!(
            cross(&mut alerts, Money::from_nanos(4_900_000_000)),
            vec![usd(5)]
        );
        assert_eq!(cross(&mut alerts, usd(4)), vec![], "already fired");
        assert_eq!(cross(&mut alerts, Money::ZERO), vec![usd(1)]);
        assert_eq!(cross(&mut alerts, usd(20)), vec![], "a top-up re-arms both");
        assert_eq!(cross(&mut alerts, usd(3)), vec![usd(5)]);
        assert_eq!(from_json(&to_json(&alerts)).unwrap(), alerts);
    }

    #[test]
    fn thresholds_below_the_balance_start_armed_and_bad_ones_are_refused() {
        let alerts = configure(&[usd(5), usd(1)], usd(3)).unwrap();
        assert_eq!(
            alerts,
            vec![
                LowBalance {
                    threshold: usd(5),
                    armed: false
                },
                LowBalance {
                    threshold: usd(1),
                    armed: true
                },
            ]
        );
        assert!(configure(&[Money::from_nanos(-1)], usd(3)).is_err());
        assert!(configure(&[usd(1); 11], usd(3)).is_err());
    }
}
