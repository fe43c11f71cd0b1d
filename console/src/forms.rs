//! Reading what a visitor typed into a form or a filter: optional fields, lists, UTC days and ranges of them.

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

/// The longest range of days a filter may ask for.
const MAX_RANGE_DAYS: i64 = 366;

/// A range of whole UTC days, both ends included, as a filter's `From` and `To` fields give it: an empty
/// `From` is `default_from`, an empty `To` is `today`; at most a year.
pub fn day_range(
    from: &str,
    to: &str,
    default_from: NaiveDate,
    today: NaiveDate,
) -> Result<(NaiveDate, NaiveDate), PageError> {
    let from = match optional(from) {
        Some(text) => day("From", &text)?,
        None => default_from,
    };
    let to = match optional(to) {
        Some(text) => day("To", &text)?,
        None => today,
    };
    if from > to {
        return Err(PageError::Invalid("From must not be after To".to_string()));
    }
    if (to - from).num_days() > MAX_RANGE_DAYS {
        return Err(PageError::Invalid(
            "the range may be at most a year".to_string(),
        ));
    }
    Ok((from, to))
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
