//! The cost of a usage at the price billing-svc quoted at Open, shown to the client while its settlement is
//! still pending (once settled, the figures come from billing-svc's usage record).
//!
//! Same rule as the ledger (DESIGN §2): `round(tokens × price_per_1k / 1000)` to the nano-dollar, half away
//! from zero, per side; total = input + output.

use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};

/// Nano-dollar precision of every amount.
const SCALE: u32 = 9;

/// Costs as decimal USD strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Costs {
    pub input: String,
    pub output: String,
    pub total: String,
}

fn side(tokens: u64, price_per_1k: &str) -> Option<Decimal> {
    let price = Decimal::from_str(price_per_1k.trim()).ok()?;
    Decimal::from(tokens)
        .checked_mul(price)?
        .checked_div(Decimal::ONE_THOUSAND)
        .map(|cost| cost.round_dp_with_strategy(SCALE, RoundingStrategy::MidpointAwayFromZero))
}

/// The costs of `input_tokens` and `output_tokens`; `None` when a price is not a decimal.
pub fn costs(
    input_tokens: u64,
    output_tokens: u64,
    input_price_per_1k: &str,
    output_price_per_1k: &str,
) -> Option<Costs> {
    let input = side(input_tokens, input_price_per_1k)?;
    let output = side(output_tokens, output_price_per_1k)?;
    let total = input.checked_add(output)?;
    Some(Costs {
        input: input.normalize().to_string(),
        output: output.normalize().to_string(),
        total: total.normalize().to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn reference_example_is_exact() {
        let costs = costs(6548, 108, "0.015", "0.045").unwrap();
        assert_eq!(
            costs,
            Costs {
                input: "0.09822".into(),
                output: "0.00486".into(),
                total: "0.10308".into()
            }
        );
    }

    #[test]
    fn rounds_half_away_from_zero_to_the_nano_dollar() {
        // 1 token at 0.0000000005 per 1k = 0.0000000000005: rounds to 0; at 0.0015 per 1k = 0.0000015.
        assert_eq!(
            costs(1, 1, "0.0000000005", "0.0015").unwrap().output,
            "0.0000015"
        );
        assert_eq!(costs(1, 0, "0.0000005", "0").unwrap().input, "0.000000001");
        assert_eq!(costs(0, 0, "0.015", "0.045").unwrap().total, "0");
        assert!(costs(1, 1, "free", "0.045").is_none());
    }
}
