//! How a statement writes its figures: dollars exactly (never rounded), counts with thousands separators,
//! and its dates in UTC.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use money::Money;

/// `amount` in dollars with thousands separators and at least two decimals: `$1,234.50`, `-$0.10`, and as
/// many decimals as the amount has beyond two (at most nine, `$0.000123456`), so nothing is rounded.
pub(crate) fn dollars(amount: Money) -> String {
    // Money's text is a plain decimal without trailing zeros (`-1234.5`); only its digits are regrouped.
    let text = amount.to_string();
    let digits = text.strip_prefix('-').unwrap_or(&text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let sign = if amount.is_negative() { "-" } else { "" };
    format!("{sign}${}.{fraction:0<2}", grouped(whole))
}

/// `count` with thousands separators: `1,234,567`.
pub(crate) fn count(count: u64) -> String {
    grouped(&count.to_string())
}

/// `YYYY-MM` as the month's name and year: `November 2026`; `None` when it is not a month.
pub(crate) fn month_title(month: &str) -> Option<String> {
    let (year, month) = month.split_once('-')?;
    if year.len() != 4 || month.len() != 2 {
        return None;
    }
    let first = NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)?;
    Some(first.format("%B %Y").to_string())
}

/// The days of the period `[start, end)`: `2026-11-01 to 2026-11-30 (UTC)`.
pub(crate) fn period(start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    // The end is exclusive (the next month's first instant), so the last day is the one just before it.
    let last = end - TimeDelta::nanoseconds(1);
    format!(
        "{} to {} (UTC)",
        start.format("%Y-%m-%d"),
        last.format("%Y-%m-%d")
    )
}

/// `2026-12-01 00:05 UTC`.
pub(crate) fn minute(instant: DateTime<Utc>) -> String {
    instant.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// ASCII `digits` with a comma every three from the right.
fn grouped(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_show_two_decimals_or_every_decimal_the_amount_has() {
        let cases = [
            ("0", "$0.00", "zero"),
            ("-0.000000000", "$0.00", "a negative zero has no sign"),
            ("12.5", "$12.50", "one decimal is padded to two"),
            (
                "-12.345000000",
                "-$12.345",
                "trailing zeros go, the third decimal stays",
            ),
            (
                "0.000000001",
                "$0.000000001",
                "one nano-dollar is shown, not rounded away",
            ),
            ("1234567.89", "$1,234,567.89", "thousands are grouped"),
            ("-1000", "-$1,000.00", "a negative whole amount"),
            (
                "999.999999999",
                "$999.999999999",
                "nine decimals, no separator below a thousand",
            ),
        ];
        for (text, expected, why) in cases {
            let amount = Money::parse_decimal(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(dollars(amount), expected, "{why}");
        }
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        let cases = [
            (0, "0"),
            (999, "999"),
            (1_000, "1,000"),
            (12_345_678, "12,345,678"),
        ];
        for (value, expected) in cases {
            assert_eq!(count(value), expected);
        }
    }

    #[test]
    fn months_are_named_and_malformed_months_refused() {
        assert_eq!(month_title("2026-11").as_deref(), Some("November 2026"));
        for bad in ["2026-13", "2026-1", "26-11", "november", ""] {
            assert_eq!(month_title(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_period_ends_on_the_day_before_its_exclusive_end() {
        let midnight = |year, month| {
            NaiveDate::from_ymd_opt(year, month, 1)
                .and_then(|day| day.and_hms_opt(0, 0, 0))
                .expect("a valid date")
                .and_utc()
        };
        let (start, end) = (midnight(2026, 11), midnight(2026, 12));

        assert_eq!(period(start, end), "2026-11-01 to 2026-11-30 (UTC)");
    }
}
