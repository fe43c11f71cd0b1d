//! Money: an exact amount of US dollars with at most nine decimals (nano-dollars), and the one place where
//! costs are rounded.
//!
//! Amounts live as [`Money`] (a `Decimal`) in code, travel as decimal strings on the wire and are stored as
//! integer nano-dollars. Every conversion checks its range, so an amount that cannot be stored exactly is
//! refused instead of being rounded or wrapped silently.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};

/// Nano-dollars per dollar.
const NANOS_PER_DOLLAR: i64 = 1_000_000_000;
/// Digits after the decimal point that an amount may carry.
const SCALE: u32 = 9;
/// The largest amount a single request may carry: one billion dollars. Keeps every sum of amounts far from
/// the `i64` nano-dollar limit (about 9.2 billion dollars).
const MAX_REQUEST_AMOUNT_NANOS: i64 = 1_000_000_000 * NANOS_PER_DOLLAR;

/// Why a text is not an acceptable amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("is not a decimal number")]
    NotANumber,
    #[error("has more than 9 decimal places")]
    TooPrecise,
    #[error("is out of range")]
    OutOfRange,
}

/// An exact amount of US dollars, a whole number of nano-dollars within the `i64` range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(Decimal);

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// The amount stored as `nanos` nano-dollars.
    pub fn from_nanos(nanos: i64) -> Money {
        Money(Decimal::new(nanos, SCALE).normalize())
    }

    /// Nano-dollars, exactly. The constructor guarantees the value fits.
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
        let value = value.normalize();
        if value.scale() > SCALE {
            return Err(MoneyError::TooPrecise);
        }
        let nanos = value
            .checked_mul(Decimal::from(NANOS_PER_DOLLAR))
            .and_then(|scaled| i64::try_from(scaled).ok())
            .ok_or(MoneyError::OutOfRange)?;
        Ok(Money::from_nanos(nanos))
    }

    /// Parses an amount sent by a client: `-?digits(.digits)?` (no exponent, no `+`), at most nine decimals
    /// and at most one billion dollars either way.
    pub fn parse_request_amount(text: &str) -> Result<Money, MoneyError> {
        let text = text.trim();
        let digits = text.strip_prefix('-').unwrap_or(text);
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
        let well_formed = !whole.is_empty()
            && !fraction.is_empty()
            && whole
                .bytes()
                .chain(fraction.bytes())
                .all(|b| b.is_ascii_digit());
        if !well_formed {
            return Err(MoneyError::NotANumber);
        }
        // Well formed but beyond what a Decimal holds: too many digits one way or the other.
        let value = Decimal::from_str_exact(text).map_err(|_| {
            if fraction.len() > SCALE as usize {
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
}

impl fmt::Display for Money {
    /// Plain decimal, no trailing zeros, no exponent: `0.10308`, `10`, `-2.5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.normalize())
    }
}

impl FromStr for Money {
    type Err = MoneyError;

    fn from_str(text: &str) -> Result<Money, MoneyError> {
        Money::parse_request_amount(text)
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
    let rounded = exact.round_dp_with_strategy(SCALE, RoundingStrategy::MidpointAwayFromZero);
    Money::from_decimal(rounded).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

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
        assert_eq!(money("0.000000001").nanos(), 1);
    }
}
