//! Exact US-dollar amounts at the HTTP edge: parsed from billing's decimal strings or from client JSON
//! (number or string), written to JSON as numbers with exactly their decimal digits.
//!
//! `serde_json` is built with `arbitrary_precision`, so a `serde_json::Number` keeps the text it was
//! parsed from and is written back verbatim: `0.10308` leaves as `0.10308`, never as the nearest binary
//! float. No `f64` is ever involved.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// Money travels in nano-dollars at most: billing stores integer 1e-9 USD.
pub const MAX_DECIMAL_PLACES: u32 = 9;

/// Why a text is not an acceptable amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("`{0}` is not a decimal number")]
    NotANumber(String),
    #[error("`{0}` has more than {MAX_DECIMAL_PLACES} decimal places")]
    TooPrecise(String),
}

/// An exact amount of US dollars, at most nine decimal places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usd(Decimal);

impl Usd {
    /// The decimal string billing.v1 and executor.v1 carry (no exponent, trailing zeros removed).
    pub fn to_wire(self) -> String {
        self.0.normalize().to_string()
    }

    /// Parses a JSON number's text, which may use an exponent (`1e-3`).
    fn from_json_number(text: &str) -> Result<Usd, MoneyError> {
        let decimal = if text.contains(['e', 'E']) {
            Decimal::from_scientific(text)
        } else {
            Decimal::from_str_exact(text)
        }
        .map_err(|_| MoneyError::NotANumber(text.to_string()))?;
        Self::checked(decimal, text)
    }

    fn checked(decimal: Decimal, text: &str) -> Result<Usd, MoneyError> {
        let normalized = decimal.normalize();
        if normalized.scale() > MAX_DECIMAL_PLACES {
            return Err(MoneyError::TooPrecise(text.to_string()));
        }
        Ok(Usd(normalized))
    }
}

/// Plain decimal notation only: an optional `-`, digits, optionally `.` and digits. `rust_decimal` alone
/// would also take `1_000` or `+1`, which no client or service of ours writes.
impl FromStr for Usd {
    type Err = MoneyError;

    fn from_str(text: &str) -> Result<Usd, MoneyError> {
        let unsigned = text.strip_prefix('-').unwrap_or(text);
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
        let digits_only = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits_only(whole) || !digits_only(fraction) {
            return Err(MoneyError::NotANumber(text.to_string()));
        }
        let decimal =
            Decimal::from_str_exact(text).map_err(|_| MoneyError::NotANumber(text.to_string()))?;
        Self::checked(decimal, text)
    }
}

impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_wire())
    }
}

impl Serialize for Usd {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let number =
            serde_json::Number::from_str(&self.to_wire()).map_err(serde::ser::Error::custom)?;
        number.serialize(serializer)
    }
}

/// Accepts a JSON number (kept exact) or a string holding a plain decimal.
impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Usd, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::Number(number) => {
                Usd::from_json_number(&number.to_string()).map_err(serde::de::Error::custom)
            }
            serde_json::Value::String(text) => text.parse().map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!(
                "expected an amount as a number or a decimal string, found {other}"
            ))),
        }
    }
}

impl utoipa::PartialSchema for Usd {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .description(Some(
                "Exact amount of US dollars, at most 9 decimal places, written as a JSON number with exactly \
                 its decimal digits (e.g. 0.10308). In request bodies a string holding a plain decimal \
                 (\"0.10308\") is accepted too.",
            ))
            .examples([serde_json::json!(0.10308)])
            .into()
    }
}

impl utoipa::ToSchema for Usd {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Usd")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn amounts_are_written_as_exact_json_numbers() {
        for (wire, json) in [
            ("0.10308", "0.10308"),
            ("9.89692", "9.89692"),
            ("9.896920000", "9.89692"),
            ("0", "0"),
            ("0.000000000", "0"),
            ("-2.5", "-2.5"),
            ("10", "10"),
            ("0.000000001", "0.000000001"),
            ("12345678901234567.123456789", "12345678901234567.123456789"),
        ] {
            let usd: Usd = wire.parse().unwrap();
            assert_eq!(serde_json::to_string(&usd).unwrap(), json, "wire {wire}");
        }
    }

    #[test]
    fn amounts_inside_objects_keep_their_digits() {
        let body = serde_json::json!({ "totalCost": "placeholder" });
        let mut object = body.as_object().cloned().unwrap();
        object.insert(
            "totalCost".into(),
            serde_json::to_value("0.10308".parse::<Usd>().unwrap()).unwrap(),
        );
        assert_eq!(
            serde_json::to_string(&object).unwrap(),
            r#"{"totalCost":0.10308}"#
        );
    }

    #[test]
    fn amounts_are_read_from_numbers_and_strings() {
        for (json, wire) in [
            ("0.10308", "0.10308"),
            ("\"0.10308\"", "0.10308"),
            ("10", "10"),
            ("1e-3", "0.001"),
            ("2.50", "2.5"),
            ("0.1234567890", "0.123456789"),
            ("\"-1.5\"", "-1.5"),
        ] {
            let usd: Usd = serde_json::from_str(json).unwrap();
            assert_eq!(usd.to_wire(), wire, "json {json}");
        }
    }

    #[test]
    fn bad_amounts_are_refused_with_a_reason() {
        for (json, why) in [
            ("0.1234567891", "more than 9 decimal places"),
            ("\"0.0000000001\"", "more than 9 decimal places"),
            ("\"1_000\"", "underscore"),
            ("\"+1\"", "plus sign"),
            ("\" 1\"", "whitespace"),
            ("\"1.\"", "dangling point"),
            ("\".5\"", "missing whole part"),
            ("\"NaN\"", "not a number"),
            ("\"\"", "empty"),
            ("true", "boolean"),
            ("null", "null"),
            ("1e400", "out of range"),
        ] {
            assert!(
                serde_json::from_str::<Usd>(json).is_err(),
                "{json} must be refused: {why}"
            );
        }
    }
}
