//! Time as stored: Unix milliseconds, UTC. Conversions to protobuf timestamps and the UTC day and month
//! boundaries the spend caps count from.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::error::BillingError;

/// Unix milliseconds.
pub type Millis = i64;

pub fn now_ms() -> Millis {
    Utc::now().timestamp_millis()
}

pub fn to_timestamp(ms: Millis) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

/// RFC 3339 UTC with milliseconds, as events carry times (`2025-01-31T12:00:00.000Z`).
pub fn to_rfc3339(ms: Millis) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Accepts timestamps between year 1970 and 9999, truncated to the millisecond.
pub fn from_timestamp(
    field: &'static str,
    ts: &prost_types::Timestamp,
) -> Result<Millis, BillingError> {
    const MAX_SECONDS: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    if !(0..=MAX_SECONDS).contains(&ts.seconds) || !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(BillingError::invalid(field, "timestamp out of range"));
    }
    Ok(ts.seconds * 1000 + i64::from(ts.nanos / 1_000_000))
}

/// Start of the UTC day containing `ms`.
pub fn day_start(ms: Millis) -> Millis {
    ms - ms.rem_euclid(86_400_000)
}

/// `YYYY-MM-DD` of the UTC day `days` days after 1970-01-01 (as [`crate::usage::sql::GroupBy::Day`]
/// groups); the text as given when it is no number.
pub fn day_name(days: &str) -> String {
    days.parse::<i64>()
        .ok()
        .and_then(|days| DateTime::<Utc>::from_timestamp_millis(days.checked_mul(86_400_000)?))
        .map_or_else(
            || days.to_string(),
            |day| day.format("%Y-%m-%d").to_string(),
        )
}

/// Start of the UTC month containing `ms`.
pub fn month_start(ms: Millis) -> Millis {
    let date = DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.date_naive())
        .unwrap_or_default();
    NaiveDate::from_ymd_opt(date.year(), date.month(), 1)
        .and_then(|first| first.and_hms_opt(0, 0, 0))
        .map(|midnight| midnight.and_utc().timestamp_millis())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_boundaries() {
        // 2026-11-24T13:45:00Z
        let ms = 1_795_527_900_000;
        assert_eq!(day_start(ms), 1_795_478_400_000); // 2026-11-24T00:00:00Z
        assert_eq!(month_start(ms), 1_793_491_200_000); // 2026-11-01T00:00:00Z
    }

    #[test]
    fn timestamps_round_trip() {
        let ms = 1_795_527_900_123;
        assert_eq!(from_timestamp("t", &to_timestamp(ms)).ok(), Some(ms));
        let bad = prost_types::Timestamp {
            seconds: -1,
            nanos: 0,
        };
        assert!(from_timestamp("t", &bad).is_err());
    }
}
