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

/// A form answered with its own page again after a refusal of what was typed: the values kept (never a
/// secret: forms holding one are not retried), and the message beside the field it names, or above the form
/// when it names none. Any other failure stays an error page, and a success still redirects. Every form of
/// the console that takes typed values answers this way ([`crate::render::form_page`] renders the page).
#[derive(Debug)]
pub struct Retry {
    /// The form, as the template names it (`credits`, `adjust`, …).
    pub form: &'static str,
    /// What was typed, by field name.
    pub values: serde_json::Value,
    /// The input the message is about (its `name`), when it names one of the form's.
    pub field: Option<String>,
    pub message: String,
    pub status: axum::http::StatusCode,
}

/// A form's fields: the input's name, then the words a message may open with to name it (billing-svc says
/// `invalid amount: …`; the console's own checks name the field's label, `Expires: …`).
pub type Fields = &'static [(&'static str, &'static [&'static str])];

impl Retry {
    /// The form sent back when `error` is about what was typed: the console's own check, or billing-svc's
    /// INVALID_ARGUMENT or OUT_OF_RANGE. Any other error is given back, to be shown as an error page.
    pub fn of(
        error: PageError,
        form: &'static str,
        fields: Fields,
        values: serde_json::Value,
    ) -> Result<Retry, PageError> {
        let field = match &error {
            PageError::InvalidField { field, .. } => Some(field.clone()),
            PageError::Invalid(message) => named_field(message, fields).map(str::to_string),
            PageError::Api(status)
                if matches!(
                    status.code(),
                    tonic::Code::InvalidArgument | tonic::Code::OutOfRange
                ) =>
            {
                named_field(status.message(), fields).map(str::to_string)
            }
            PageError::Api(_)
            | PageError::SignedOut
            | PageError::Forbidden(_)
            | PageError::Csrf
            | PageError::Render(_)
            | PageError::Pdf(_) => return Err(error),
        };
        Ok(Retry {
            form,
            values,
            field,
            message: error.to_string(),
            status: error.http_status(),
        })
    }

    /// The retry as the templates read it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "form": self.form, "values": self.values, "field": self.field, "message": self.message,
        })
    }
}

/// The field a message opens with (`invalid amount: …`, `amount must …`, `Expires: …`), if it is one of
/// `fields`.
fn named_field(message: &str, fields: Fields) -> Option<&'static str> {
    let message = message.trim().to_lowercase();
    let subject = message.strip_prefix("invalid ").unwrap_or(&message);
    fields.iter().find_map(|(name, words)| {
        words
            .iter()
            .any(|word| {
                subject
                    .strip_prefix(word)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', ' ', ',']))
            })
            .then_some(*name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: Fields = &[
        ("amount", &["amount"]),
        ("expires_at", &["expires_at", "expires"]),
    ];

    #[test]
    fn a_message_is_placed_beside_the_field_it_names() {
        let cases = [
            (
                "invalid amount: not a decimal",
                Some("amount"),
                "billing-svc's wording",
            ),
            (
                "Expires: enter a day as YYYY-MM-DD",
                Some("expires_at"),
                "the console's own label",
            ),
            (
                "invalid expires_at: in the past",
                Some("expires_at"),
                "billing-svc's field name",
            ),
            ("amounts differ", None, "a longer word is not the field"),
            ("no category \"x\"", None, "no field named: above the form"),
        ];
        for (message, expected, case) in cases {
            assert_eq!(named_field(message, FIELDS), expected, "{case}");
        }
    }

    #[test]
    fn only_errors_about_what_was_typed_are_retried() {
        let values = serde_json::json!({});
        let field = |error: PageError| {
            Retry::of(error, "credits", FIELDS, values.clone()).map(|retry| retry.field)
        };
        let invalid = PageError::Api(tonic::Status::invalid_argument("invalid amount: negative"));
        assert_eq!(field(invalid).ok(), Some(Some("amount".to_string())));
        let own_check = PageError::InvalidField {
            field: "tier_percent_2".to_string(),
            message: "Tier 2 percent off: enter a number".to_string(),
        };
        assert_eq!(
            field(own_check).ok(),
            Some(Some("tier_percent_2".to_string())),
            "a field the console's own check names"
        );
        let unavailable = PageError::Api(tonic::Status::unavailable("down"));
        assert!(matches!(field(unavailable), Err(PageError::Api(_))));
        assert!(matches!(field(PageError::Csrf), Err(PageError::Csrf)));
    }
}
