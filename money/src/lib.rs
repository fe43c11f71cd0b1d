//! money: an exact amount of US dollars with at most nine decimals (nano-dollars), its text and JSON forms,
//! and the one place where costs are rounded (BILLING.md, "Amounts" and "Rounding").
//!
//! Amounts live as [`Money`] (a `Decimal`) in code, travel as decimal strings on gRPC, are stored as integer
//! nano-dollars by billing-svc and written as exact JSON numbers by the gateway. billing-svc builds amounts
//! only through checked conversions, so an amount it cannot store exactly is refused instead of being
//! rounded or wrapped silently.
//!
//! `serde_json` is built with `arbitrary_precision` (the workspace's `Cargo.toml`), so a
//! `serde_json::Number` keeps the text it was parsed from and is written back verbatim: `0.10308` leaves as
//! `0.10308`, never as the nearest binary float. No `f64` is ever involved.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Digits after the decimal point that an amount may carry: billing stores integer 1e-9 USD.
pub const MAX_DECIMAL_PLACES: u32 = 9;
/// Nano-dollars per dollar.
const NANOS_PER_DOLLAR: i64 = 1_000_000_000;
/// The largest amount a single request may carry: one billion dollars. Keeps every sum of amounts far from
/// the `i64` nano-dollar limit (about 9.2 billion dollars).
const MAX_REQUEST_AMOUNT_NANOS: i64 = 1_000_000_000 * NANOS_PER_DOLLAR;

/// Why a text is not an acceptable amount. The message is a predicate (`is not a decimal number`): a caller
/// puts the field's name, or with [`MoneyError::naming`] the text refused, in front of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("is not a decimal number")]
    NotANumber,
    #[error("has more than {MAX_DECIMAL_PLACES} decimal places")]
    TooPrecise,
    #[error("is out of range")]
    OutOfRange,
}

impl MoneyError {
    /// The refusal naming the text refused, as the gateway words it: ``"`1.` is not a decimal number"``.
    pub fn naming(&self, text: &str) -> String {
        format!("`{text}` {self}")
    }
}

/// An exact amount of US dollars, at most nine decimal places.
///
/// Every amount billing-svc builds ([`Money::from_nanos`], [`Money::from_decimal`],
/// [`Money::parse_request_amount`], the checked arithmetic, [`token_cost`]) is a whole number of
/// nano-dollars within the `i64` range. The gateway's readers ([`Money::parse_decimal`] and the JSON
/// representation) check only the nine decimals and leave the range to billing-svc, which refuses an amount
/// too large with its own message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(Decimal);

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// The amount stored as `nanos` nano-dollars.
    pub fn from_nanos(nanos: i64) -> Money {
        Money(Decimal::new(nanos, MAX_DECIMAL_PLACES).normalize())
    }

    /// Nano-dollars, exactly, for every amount billing-svc builds (see [`Money`]); an amount beyond the
    /// `i64` range saturates.
    pub fn nanos(self) -> i64 {
        let scaled = self.0 * Decimal::from(NANOS_PER_DOLLAR);
        // Construction checked scale and range, so this conversion is exact.
        i64::try_from(scaled).unwrap_or(if self.0.is_sign_negative() {
            i64::MIN
        } else {
            i64::MAX
        })
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    pub fn is_negative(self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    pub fn is_positive(self) -> bool {
        self.0.is_sign_positive() && !self.0.is_zero()
    }

    pub fn decimal(self) -> Decimal {
        self.0
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        Money::from_decimal(self.0.checked_add(other.0)?).ok()
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        Money::from_decimal(self.0.checked_sub(other.0)?).ok()
    }

    pub fn negated(self) -> Money {
        // The i64 range is symmetric but for i64::MIN, which construction never produces from requests.
        Money(-self.0)
    }

    /// Accepts a decimal that is a whole number of nano-dollars within the `i64` range.
    pub fn from_decimal(value: Decimal) -> Result<Money, MoneyError> {
        let value = nano_precise(value)?;
        let nanos = value
            .checked_mul(Decimal::from(NANOS_PER_DOLLAR))
            .and_then(|scaled| i64::try_from(scaled).ok())
            .ok_or(MoneyError::OutOfRange)?;
        Ok(Money::from_nanos(nanos))
    }

    /// Parses an amount sent by a client to billing-svc: `-?digits(.digits)?` (no exponent, no `+`,
    /// surrounding whitespace ignored), at most nine decimals and at most one billion dollars either way.
    pub fn parse_request_amount(text: &str) -> Result<Money, MoneyError> {
        let text = text.trim();
        let Some(fraction) = plain_decimal_fraction(text) else {
            return Err(MoneyError::NotANumber);
        };
        // Well formed but beyond what a Decimal holds: too many digits one way or the other.
        let value = Decimal::from_str_exact(text).map_err(|_| {
            if fraction.len() > MAX_DECIMAL_PLACES as usize {
                MoneyError::TooPrecise
            } else {
                MoneyError::OutOfRange
            }
        })?;
        let money = Money::from_decimal(value)?;
        if money.nanos().abs() > MAX_REQUEST_AMOUNT_NANOS {
            return Err(MoneyError::OutOfRange);
        }
        Ok(money)
    }

    /// Parses a plain decimal (`-?digits(.digits)?`, nothing around it) with at most nine decimals, of any
    /// size a `Decimal` holds: how the gateway reads billing-svc's strings and the strings clients send in
    /// JSON. `rust_decimal` alone would also take `1_000` or `+1`, which no client or service of ours writes.
    pub fn parse_decimal(text: &str) -> Result<Money, MoneyError> {
        if plain_decimal_fraction(text).is_none() {
            return Err(MoneyError::NotANumber);
        }
        let decimal = Decimal::from_str_exact(text).map_err(|_| MoneyError::NotANumber)?;
        Ok(Money(nano_precise(decimal)?))
    }

    /// Parses a JSON number's text, which may use an exponent (`1e-3`), like [`Money::parse_decimal`].
    pub fn parse_json_number(text: &str) -> Result<Money, MoneyError> {
        let decimal = if text.contains(['e', 'E']) {
            Decimal::from_scientific(text)
        } else {
            Decimal::from_str_exact(text)
        }
        .map_err(|_| MoneyError::NotANumber)?;
        Ok(Money(nano_precise(decimal)?))
    }
}

/// The fraction digits of a plain decimal, `-?digits(.digits)?` (`"0"` without a point); `None` when the
/// text is not one.
fn plain_decimal_fraction(text: &str) -> Option<&str> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
    let digits_only = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    (digits_only(whole) && digits_only(fraction)).then_some(fraction)
}

/// `value` without trailing zeros, if it has at most nine decimals.
fn nano_precise(value: Decimal) -> Result<Decimal, MoneyError> {
    let value = value.normalize();
    if value.scale() > MAX_DECIMAL_PLACES {
        return Err(MoneyError::TooPrecise);
    }
    Ok(value)
}

impl fmt::Display for Money {
    /// Plain decimal, no trailing zeros, no exponent: `0.10308`, `10`, `-2.5`. This is the decimal string
    /// billing.v1 and executor.v1 carry.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.normalize())
    }
}

/// A client's amount: [`Money::parse_request_amount`].
impl FromStr for Money {
    type Err = MoneyError;

    fn from_str(text: &str) -> Result<Money, MoneyError> {
        Money::parse_request_amount(text)
    }
}

/// A JSON number with exactly the amount's decimal digits.
impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let number =
            serde_json::Number::from_str(&self.to_string()).map_err(serde::ser::Error::custom)?;
        number.serialize(serializer)
    }
}

/// Accepts a JSON number (kept exact, [`Money::parse_json_number`]) or a string holding a plain decimal
/// ([`Money::parse_decimal`]).
impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Money, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::Number(number) => {
                let text = number.to_string();
                Money::parse_json_number(&text)
                    .map_err(|error| serde::de::Error::custom(error.naming(&text)))
            }
            serde_json::Value::String(text) => Money::parse_decimal(&text)
                .map_err(|error| serde::de::Error::custom(error.naming(&text))),
            other => Err(serde::de::Error::custom(format!(
                "expected an amount as a number or a decimal string, found {other}"
            ))),
        }
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Money {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
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

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Money {
    /// `Usd`: the schema's name in the published `/openapi.json`, kept for its clients.
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Usd")
    }
}

/// The cost of token classes, each `(tokens, price per 1,000 tokens)`, times `multiplier` (the markup, less
/// any volume discount).
///
/// This is the only place where money is rounded: the exact sum `Σ tokens × price × multiplier / 1000` is
/// rounded once to the nearest nano-dollar, halves away from zero (BILLING.md, "Rounding"). `None` when the
/// result does not fit.
pub fn token_cost(classes: &[(u64, Money)], multiplier: Decimal) -> Option<Money> {
    let mut sum = Decimal::ZERO;
    for (tokens, price_per_1k) in classes {
        if *tokens == 0 {
            continue;
        }
        sum = sum.checked_add(Decimal::from(*tokens).checked_mul(price_per_1k.decimal())?)?;
    }
    let exact = sum
        .checked_mul(multiplier)?
        .checked_div(Decimal::from(1000))?;
    let rounded =
        exact.round_dp_with_strategy(MAX_DECIMAL_PLACES, RoundingStrategy::MidpointAwayFromZero);
    Money::from_decimal(rounded).ok()
}

/// `amount × part / whole`, rounded like [`token_cost`] (to the nano-dollar, halves away from zero): an
/// estimate shown to people (a month-end forecast from a run rate), never charged. `None` when `whole` is
/// not positive or the result does not fit.
pub fn prorate(amount: Money, part: i64, whole: i64) -> Option<Money> {
    if whole <= 0 {
        return None;
    }
    let exact = amount
        .decimal()
        .checked_mul(Decimal::from(part))?
        .checked_div(Decimal::from(whole))?;
    let rounded =
        exact.round_dp_with_strategy(MAX_DECIMAL_PLACES, RoundingStrategy::MidpointAwayFromZero);
    Money::from_decimal(rounded).ok()
}

impl Money {
    /// For people: `$1,234.50`, `-$0.000123` (at least two decimals, every digit kept, thousands grouped).
    pub fn dollars(self) -> String {
        let mut value = self.0.normalize().abs();
        if value.scale() < 2 {
            value.rescale(2);
        }
        let text = value.to_string();
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
        let mut grouped = String::new();
        for (index, digit) in whole.chars().enumerate() {
            if index > 0 && (whole.len() - index) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        let sign = if self.is_negative() { "-" } else { "" };
        format!("{sign}${grouped}.{fraction}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    #[test]
    fn dollars_for_people() {
        assert_eq!(money("1234.5").dollars(), "$1,234.50");
        assert_eq!(money("0").dollars(), "$0.00");
        assert_eq!(money("-0.000123").dollars(), "-$0.000123");
        assert_eq!(money("1000000").dollars(), "$1,000,000.00");
        assert_eq!(money("999.999999999").dollars(), "$999.999999999");
    }

    #[test]
    fn prorating_rounds_once() {
        assert_eq!(
            prorate(money("10"), 1, 3).unwrap().to_string(),
            "3.333333333"
        );
        assert_eq!(
            prorate(money("10"), 2, 3).unwrap().to_string(),
            "6.666666667"
        );
        assert_eq!(prorate(money("7"), 31, 7).unwrap().to_string(), "31");
        assert!(prorate(money("1"), 1, 0).is_none());
    }

    use super::*;

    fn money(text: &str) -> Money {
        text.parse().unwrap()
    }

    #[test]
    fn seed_example_is_exact() {
        let markup = Decimal::from_str("1.5").unwrap();
        let input = token_cost(&[(6548, money("0.01"))], markup).unwrap();
        let output = token_cost(&[(108, money("0.03"))], markup).unwrap();
        assert_eq!(input.to_string(), "0.09822");
        assert_eq!(output.to_string(), "0.00486");
        let total = input.checked_add(output).unwrap();
        assert_eq!(total.to_string(), "0.10308");
        assert_eq!(
            money("10").checked_sub(total).unwrap().to_string(),
            "9.89692"
        );
    }

    #[test]
    fn rounding_is_half_away_from_zero_at_the_nano_dollar() {
        // 1 token at 0.000000001 per 1k = 0.000000000001: rounds down to zero.
        assert_eq!(
            token_cost(&[(1, money("0.000000001"))], Decimal::ONE).unwrap(),
            Money::ZERO
        );
        // 500 tokens at 0.000000001 per 1k = 0.0000000005: a half, rounds up to one nano-dollar.
        assert_eq!(
            token_cost(&[(500, money("0.000000001"))], Decimal::ONE)
                .unwrap()
                .nanos(),
            1
        );
    }

    #[test]
    fn nanos_round_trip() {
        for nanos in [0, 1, -1, 98_220_000, i64::MAX, i64::MIN + 1] {
            assert_eq!(Money::from_nanos(nanos).nanos(), nanos);
        }
    }

    #[test]
    fn request_amounts_are_checked() {
        let cases = [
            ("", MoneyError::NotANumber),
            ("abc", MoneyError::NotANumber),
            ("1e3", MoneyError::NotANumber),
            ("+1", MoneyError::NotANumber),
            ("1.", MoneyError::NotANumber),
            (".5", MoneyError::NotANumber),
            ("0x10", MoneyError::NotANumber),
            ("NaN", MoneyError::NotANumber),
            ("0.0000000001", MoneyError::TooPrecise),
            ("1000000000.000000001", MoneyError::OutOfRange),
            ("99999999999999999999999999999", MoneyError::OutOfRange),
        ];
        for (text, expected) in cases {
            assert_eq!(Money::parse_request_amount(text), Err(expected), "{text:?}");
        }
        assert_eq!(money("1000000000").nanos(), MAX_REQUEST_AMOUNT_NANOS);
        assert_eq!(money("-2.50").to_string(), "-2.5");
        assert_eq!(money(" 0.000000001 ").nanos(), 1);
    }

    #[test]
    fn refusals_read_as_sentences() {
        assert_eq!(
            MoneyError::NotANumber.to_string(),
            "is not a decimal number"
        );
        assert_eq!(
            MoneyError::TooPrecise.naming("0.0000000001"),
            "`0.0000000001` has more than 9 decimal places"
        );
        assert_eq!(MoneyError::OutOfRange.to_string(), "is out of range");
    }

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
            let amount = Money::parse_decimal(wire).unwrap();
            assert_eq!(serde_json::to_string(&amount).unwrap(), json, "wire {wire}");
        }
    }

    #[test]
    fn amounts_inside_objects_keep_their_digits() {
        let mut object = serde_json::Map::new();
        object.insert(
            "totalCost".into(),
            serde_json::to_value(Money::parse_decimal("0.10308").unwrap()).unwrap(),
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
            // Beyond what billing-svc accepts: the gateway forwards it and billing-svc refuses it.
            ("\"12345678901234567\"", "12345678901234567"),
        ] {
            let amount: Money = serde_json::from_str(json).unwrap();
            assert_eq!(amount.to_string(), wire, "json {json}");
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
                serde_json::from_str::<Money>(json).is_err(),
                "{json} must be refused: {why}"
            );
        }
        let error = serde_json::from_str::<Money>("0.1234567891").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("`0.1234567891` has more than 9 decimal places"),
            "{error}"
        );
        let error = serde_json::from_str::<Money>("\"1.\"").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("`1.` is not a decimal number"),
            "{error}"
        );
    }
}
