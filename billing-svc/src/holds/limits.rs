//! A key's rate and concurrency limits (BILLING.md, "Limits"), decided from what the open transaction read:
//! the key's active holds and its usage settled in the last minute. Counted from the database inside the
//! transaction that opens the execution (under the account lock), so they are exact across replicas.

use crate::error::{BillingError, RateLimit};
use crate::holds::sql::KeyHolds;
use crate::keys::policy::Policy;
use crate::time::Millis;
use crate::usage::sql::RecentUsage;

/// The window of per-minute limits.
pub const WINDOW_MS: Millis = 60_000;

/// Where a key stands against one per-minute limit, this execution counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: u64,
    pub remaining: u64,
    /// Whole seconds until the oldest counted use leaves the window.
    pub reset_secs: u64,
}

/// A key's per-minute limits as they stand after admitting an execution (absent: no such limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateStatus {
    pub requests: Option<Window>,
    pub tokens: Option<Window>,
}

/// Refuses an execution of `input_tokens` when it would exceed a limit of `policy`; else says where the
/// key stands with it counted.
pub fn check(
    policy: &Policy,
    holds: &KeyHolds,
    recent: &RecentUsage,
    input_tokens: u64,
    now: Millis,
) -> Result<RateStatus, BillingError> {
    let mut status = RateStatus::default();
    if let Some(max) = policy.max_concurrent
        && holds.count >= u64::from(max)
    {
        // A slot frees when any execution in flight ends: try again shortly.
        return Err(refusal(RateLimit::Concurrency, u64::from(max), 1));
    }
    if let Some(limit) = policy.requests_per_minute {
        let opened = holds.opened_since.saturating_add(recent.opened);
        let first = earliest(holds.first_opened_at, recent.first_opened_at);
        if opened >= u64::from(limit) {
            return Err(refusal(
                RateLimit::RequestsPerMinute,
                u64::from(limit),
                seconds_until_out_of_window(first, now),
            ));
        }
        status.requests = Some(Window {
            limit: u64::from(limit),
            remaining: u64::from(limit) - opened - 1,
            reset_secs: seconds_until_out_of_window(Some(first.unwrap_or(now)), now),
        });
    }
    if let Some(limit) = policy.tokens_per_minute {
        let used = holds.tokens.saturating_add(recent.tokens);
        let reset_secs = seconds_until_out_of_window(recent.first_settled_at, now);
        if used.saturating_add(input_tokens) > limit {
            return Err(refusal(RateLimit::TokensPerMinute, limit, reset_secs));
        }
        status.tokens = Some(Window {
            limit,
            remaining: limit - used - input_tokens,
            reset_secs,
        });
    }
    Ok(status)
}

fn refusal(kind: RateLimit, limit: u64, retry_after_secs: u64) -> BillingError {
    BillingError::RateLimited {
        kind,
        limit,
        retry_after_secs,
    }
}

fn earliest(a: Option<Millis>, b: Option<Millis>) -> Option<Millis> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whole seconds (at least 1) until what happened at `first` leaves the window.
fn seconds_until_out_of_window(first: Option<Millis>, now: Millis) -> u64 {
    let Some(first) = first else { return 1 };
    let millis = first.saturating_add(WINDOW_MS).saturating_sub(now);
    u64::try_from(millis.saturating_add(999) / 1000)
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn policy() -> Policy {
        Policy {
            requests_per_minute: Some(3),
            tokens_per_minute: Some(1000),
            max_concurrent: Some(2),
            ..Policy::default()
        }
    }

    fn reason(result: Result<RateStatus, BillingError>) -> Option<(&'static str, u64)> {
        match result {
            Err(BillingError::RateLimited {
                kind,
                retry_after_secs,
                ..
            }) => Some((kind.reason().as_str(), retry_after_secs)),
            _ => None,
        }
    }

    #[test]
    fn each_limit_refuses_at_its_bound() {
        let now = 1_000_000;
        let idle = (KeyHolds::default(), RecentUsage::default());
        let status = check(&policy(), &idle.0, &idle.1, 10, now).unwrap();
        assert_eq!(
            status.requests,
            Some(Window {
                limit: 3,
                remaining: 2,
                reset_secs: 60
            })
        );
        assert_eq!(status.tokens.map(|window| window.remaining), Some(990));

        let busy = KeyHolds {
            count: 2,
            ..KeyHolds::default()
        };
        assert_eq!(
            reason(check(&policy(), &busy, &idle.1, 10, now)),
            Some(("concurrency_limit_exceeded", 1))
        );

        let recent = RecentUsage {
            opened: 2,
            first_opened_at: Some(now - 45_500),
            ..RecentUsage::default()
        };
        let one_open = KeyHolds {
            count: 1,
            opened_since: 1,
            first_opened_at: Some(now - 10_000),
            ..KeyHolds::default()
        };
        assert_eq!(
            reason(check(&policy(), &one_open, &recent, 10, now)),
            Some(("requests_per_minute_exceeded", 15))
        );

        let tokens = RecentUsage {
            tokens: 900,
            first_settled_at: Some(now - 59_000),
            ..RecentUsage::default()
        };
        assert_eq!(
            check(&policy(), &idle.0, &tokens, 100, now)
                .unwrap()
                .tokens
                .map(|window| (window.remaining, window.reset_secs)),
            Some((0, 1))
        );
        assert_eq!(
            reason(check(&policy(), &idle.0, &tokens, 101, now)),
            Some(("tokens_per_minute_exceeded", 1))
        );
    }

    #[test]
    fn no_policy_no_limit() {
        let holds = KeyHolds {
            count: 1_000,
            opened_since: 1_000,
            tokens: u64::MAX,
            ..KeyHolds::default()
        };
        assert_eq!(
            check(&Policy::default(), &holds, &RecentUsage::default(), 1, 0).unwrap(),
            RateStatus::default()
        );
    }
}
