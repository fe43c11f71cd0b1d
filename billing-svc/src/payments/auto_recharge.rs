//! Auto-recharge (WEBHOOKS.md, "Stripe's webhook (payments)"): when a settlement takes an account's available
//! credit below its threshold, billing-svc charges the saved card `amount`, at most one charge in flight and
//! never past `monthlyMax` in a UTC month; three failures in a row turn it off.
//!
//! Like a `balance.low` threshold, the threshold fires once per crossing: a charge starts when available
//! credit goes below it, and the next one only after credit is back at or above it (the charge landing, or
//! any other credit). A failed charge therefore is not retried on every following call, which would decline
//! the same card three times in a second and turn auto-recharge off; the next crossing tries again.
//!
//! The settings and the state live in one JSON column of the account, saved with its money in the
//! settlement's transaction.

use serde::{Deserialize, Serialize};

use crate::error::BillingError;
use crate::time::{self, Millis};
use money::Money;

/// Failures in a row that turn auto-recharge off.
pub const MAX_FAILURES: u32 = 3;

/// An account's auto-recharge: its settings and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoRecharge {
    pub enabled: bool,
    pub threshold: Money,
    pub amount: Money,
    pub monthly_max: Money,
    /// The threshold may fire: available credit was at or above it since the last charge started.
    pub armed: bool,
    /// Failed charges since the last success.
    pub failures: u32,
    /// The charge in flight (its id), if one is.
    pub in_flight: Option<String>,
    /// The UTC month `month_charged` counts.
    pub month_start: Millis,
    /// What charges started this month add up to (failed ones taken out).
    pub month_charged: Money,
}

/// What a crossing of the threshold does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossing {
    /// Start a charge of `amount`.
    Charge(Money),
    /// No charge: it would pass `monthlyMax` this month.
    MonthlyMaxReached,
}

/// The settings a customer asks for.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub enabled: bool,
    pub threshold: Money,
    pub amount: Money,
    pub monthly_max: Money,
}

impl AutoRecharge {
    /// Applies new settings over the current state (its month and the charge in flight carry over; turning
    /// it on again clears past failures). The threshold starts armed: when credit is already below it, the
    /// next settlement starts a charge.
    pub fn configure(
        current: Option<&AutoRecharge>,
        settings: Settings,
        now: Millis,
    ) -> Result<AutoRecharge, BillingError> {
        if settings.threshold.is_negative() {
            return Err(BillingError::invalid("threshold", "must not be negative"));
        }
        crate::payments::stripe::api::cents_of(settings.amount)?;
        if settings.monthly_max < settings.amount {
            return Err(BillingError::invalid(
                "monthly_max",
                "must be at least the amount of one recharge",
            ));
        }
        let mut next = AutoRecharge {
            enabled: settings.enabled,
            threshold: settings.threshold,
            amount: settings.amount,
            monthly_max: settings.monthly_max,
            armed: true,
            failures: 0,
            in_flight: None,
            month_start: time::month_start(now),
            month_charged: Money::ZERO,
        };
        if let Some(current) = current {
            next.in_flight = current.in_flight.clone();
            if current.month_start == next.month_start {
                next.month_charged = current.month_charged;
            }
            let turned_on = settings.enabled && !current.enabled;
            if !turned_on {
                next.failures = current.failures;
            }
        }
        Ok(next)
    }

    /// Moves the threshold to `available` credit: returns what the crossing does when it went below an armed
    /// threshold (the threshold is then disarmed), and re-arms it when credit is back at or above it.
    pub fn cross(&mut self, available: Money, now: Millis) -> Option<Crossing> {
        if available >= self.threshold {
            self.armed = true;
            return None;
        }
        if !self.enabled || !self.armed || self.in_flight.is_some() {
            return None;
        }
        self.armed = false;
        let month = time::month_start(now);
        if month != self.month_start {
            self.month_start = month;
            self.month_charged = Money::ZERO;
        }
        match self.month_charged.checked_add(self.amount) {
            Some(total) if total <= self.monthly_max => Some(Crossing::Charge(self.amount)),
            _ => Some(Crossing::MonthlyMaxReached),
        }
    }

    /// A charge `id` of `amount` starts ([`AutoRecharge::cross`] checked that it fits the month).
    pub fn start(&mut self, id: &str, amount: Money) {
        self.in_flight = Some(id.to_string());
        if let Some(total) = self.month_charged.checked_add(amount) {
            self.month_charged = total;
        }
    }

    /// The charge `id` succeeded.
    pub fn succeeded(&mut self, id: &str) {
        if self.in_flight.as_deref() == Some(id) {
            self.in_flight = None;
        }
        self.failures = 0;
    }

    /// The charge `id` of `amount`, started at `started_at`, failed: it no longer counts against the month.
    /// Returns true when this failure turned auto-recharge off.
    pub fn failed(&mut self, id: &str, amount: Money, started_at: Millis) -> bool {
        if self.in_flight.as_deref() == Some(id) {
            self.in_flight = None;
        }
        if time::month_start(started_at) == self.month_start {
            self.month_charged = self
                .month_charged
                .checked_sub(amount)
                .filter(|left| !left.is_negative())
                .unwrap_or(Money::ZERO);
        }
        self.failures += 1;
        if self.enabled && self.failures >= MAX_FAILURES {
            self.enabled = false;
            return true;
        }
        false
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    enabled: bool,
    threshold_nanos: i64,
    amount_nanos: i64,
    monthly_max_nanos: i64,
    armed: bool,
    failures: u32,
    in_flight: Option<String>,
    month_start: Millis,
    month_charged_nanos: i64,
}

pub fn to_json(recharge: &AutoRecharge) -> String {
    let stored = Stored {
        enabled: recharge.enabled,
        threshold_nanos: recharge.threshold.nanos(),
        amount_nanos: recharge.amount.nanos(),
        monthly_max_nanos: recharge.monthly_max.nanos(),
        armed: recharge.armed,
        failures: recharge.failures,
        in_flight: recharge.in_flight.clone(),
        month_start: recharge.month_start,
        month_charged_nanos: recharge.month_charged.nanos(),
    };
    serde_json::to_string(&stored).unwrap_or_else(|_| "null".to_string())
}

pub fn from_json(text: &str) -> Result<AutoRecharge, serde_json::Error> {
    let stored: Stored = serde_json::from_str(text)?;
    Ok(AutoRecharge {
        enabled: stored.enabled,
        threshold: Money::from_nanos(stored.threshold_nanos),
        amount: Money::from_nanos(stored.amount_nanos),
        monthly_max: Money::from_nanos(stored.monthly_max_nanos),
        armed: stored.armed,
        failures: stored.failures,
        in_flight: stored.in_flight,
        month_start: stored.month_start,
        month_charged: Money::from_nanos(stored.month_charged_nanos),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn usd(units: i64) -> Money {
        Money::from_nanos(units * 1_000_000_000)
    }

    const NOV: Millis = 1_795_478_400_000; // 2026-11-24T00:00:00Z
    const DEC: Millis = NOV + 10 * 86_400_000;

    fn on(threshold: i64, amount: i64, monthly_max: i64) -> AutoRecharge {
        let settings = Settings {
            enabled: true,
            threshold: usd(threshold),
            amount: usd(amount),
            monthly_max: usd(monthly_max),
        };
        AutoRecharge::configure(None, settings, NOV).unwrap()
    }

    #[test]
    fn a_crossing_charges_once_and_the_next_waits_for_credit_to_come_back() {
        let mut recharge = on(5, 20, 100);
        assert_eq!(recharge.cross(usd(6), NOV), None);
        assert_eq!(recharge.cross(usd(4), NOV), Some(Crossing::Charge(usd(20))));
        recharge.start("evt_1", usd(20));
        assert_eq!(recharge.cross(usd(3), NOV), None, "one in flight");
        recharge.succeeded("evt_1");
        assert_eq!(recharge.cross(usd(2), NOV), None, "not re-armed yet");
        assert_eq!(recharge.cross(usd(22), NOV), None);
        assert_eq!(recharge.cross(usd(4), NOV), Some(Crossing::Charge(usd(20))));
        assert_eq!(from_json(&to_json(&recharge)).unwrap(), recharge);
    }

    #[test]
    fn the_monthly_max_holds_within_a_utc_month_and_resets_with_the_next() {
        let mut recharge = on(5, 20, 40);
        for id in ["evt_1", "evt_2"] {
            assert_eq!(recharge.cross(usd(4), NOV), Some(Crossing::Charge(usd(20))));
            recharge.start(id, usd(20));
            recharge.succeeded(id);
            recharge.cross(usd(24), NOV);
        }
        assert_eq!(
            recharge.cross(usd(4), NOV),
            Some(Crossing::MonthlyMaxReached)
        );
        recharge.cross(usd(24), NOV);
        assert_eq!(recharge.cross(usd(4), DEC), Some(Crossing::Charge(usd(20))));
    }

    #[test]
    fn three_failures_in_a_row_turn_it_off_and_a_failure_frees_the_month() {
        let mut recharge = on(5, 20, 20);
        for (round, id) in ["evt_1", "evt_2", "evt_3"].into_iter().enumerate() {
            recharge.cross(usd(24), NOV);
            assert_eq!(recharge.cross(usd(4), NOV), Some(Crossing::Charge(usd(20))));
            recharge.start(id, usd(20));
            assert_eq!(recharge.failed(id, usd(20), NOV), round == 2);
        }
        assert!(!recharge.enabled);
        assert_eq!(recharge.month_charged, Money::ZERO);
        recharge.cross(usd(24), NOV);
        assert_eq!(recharge.cross(usd(4), NOV), None, "off");
    }

    #[test]
    fn bad_settings_are_refused() {
        let settings = |threshold: i64, amount: i64, monthly_max: i64| Settings {
            enabled: true,
            threshold: usd(threshold),
            amount: usd(amount),
            monthly_max: usd(monthly_max),
        };
        assert!(AutoRecharge::configure(None, settings(-1, 20, 40), NOV).is_err());
        assert!(AutoRecharge::configure(None, settings(5, 0, 40), NOV).is_err());
        assert!(AutoRecharge::configure(None, settings(5, 20, 10), NOV).is_err());
    }
}
