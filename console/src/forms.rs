//! Reading what a visitor typed into a form or a filter: optional fields, lists, and UTC days.

use chrono::{Duration, NaiveDate, NaiveTime};

use crate::error::PageError;

/// A field left empty is absent.
pub fn optional(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// A comma-separated list, without empty items.
pub fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

/// A `YYYY-MM-DD` day.
pub fn day(field: &str, text: &str) -> Result<NaiveDate, PageError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| PageError::Invalid(format!("{field}: enter a day as YYYY-MM-DD")))
}

/// The start of a UTC day.
pub fn start_of(day: NaiveDate) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: day.and_time(NaiveTime::MIN).and_utc().timestamp(),
        nanos: 0,
    }
}

/// The start of the UTC day after `day` (the end of a range that includes `day`).
pub fn end_of(day: NaiveDate) -> prost_types::Timestamp {
    start_of(day + Duration::days(1))
}

/// An optional day as the start of that UTC day.
pub fn optional_day(field: &str, text: &str) -> Result<Option<prost_types::Timestamp>, PageError> {
    optional(text)
        .map(|text| day(field, &text).map(start_of))
        .transpose()
}
