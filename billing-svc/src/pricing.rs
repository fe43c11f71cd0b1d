//! Prices and what tokens cost. The effective price per 1,000 tokens is the base price times the markup;
//! the rounding of a cost happens in [`money::token_cost`] and nowhere else.

use rust_decimal::Decimal;

use crate::error::BillingError;
use crate::money::{self, Money};
use crate::time::Millis;

/// The model name of the row that prices every model without its own row.
pub const DEFAULT_MODEL: &str = "*";
/// The markup of a price row set without one (the seed's).
pub const DEFAULT_MARKUP: &str = "1.5";
const MAX_MARKUP: Decimal = Decimal::from_parts(1000, 0, 0, false, 0);

/// One price row.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    pub model: String,
    pub base_input_per_1k: Money,
    pub base_output_per_1k: Money,
    pub markup: Decimal,
    pub effective_from: Millis,
}

/// The cost of one execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub input: Money,
    pub output: Money,
    pub total: Money,
}

impl Price {
    /// Input price per 1k tokens after markup (exact; may carry more than nine decimals).
    pub fn input_per_1k(&self) -> Decimal {
        self.base_input_per_1k.decimal() * self.markup
    }

    /// Output price per 1k tokens after markup (exact).
    pub fn output_per_1k(&self) -> Decimal {
        self.base_output_per_1k.decimal() * self.markup
    }

    pub fn input_cost(&self, tokens: u64) -> Result<Money, BillingError> {
        money::token_cost(tokens, self.base_input_per_1k, self.markup).ok_or(BillingError::Overflow)
    }

    pub fn output_cost(&self, tokens: u64) -> Result<Money, BillingError> {
        money::token_cost(tokens, self.base_output_per_1k, self.markup)
            .ok_or(BillingError::Overflow)
    }

    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> Result<Cost, BillingError> {
        let input = self.input_cost(input_tokens)?;
        let output = self.output_cost(output_tokens)?;
        let total = input.checked_add(output).ok_or(BillingError::Overflow)?;
        Ok(Cost {
            input,
            output,
            total,
        })
    }

    /// The most output tokens, up to `ceiling`, whose cost fits in `budget`.
    pub fn affordable_output_tokens(&self, budget: Money, ceiling: u64) -> u64 {
        if budget.is_negative() {
            return 0;
        }
        let per_1k = self.output_per_1k();
        if per_1k.is_zero() {
            return ceiling;
        }
        let estimate = (budget.decimal() * Decimal::from(1000) / per_1k).floor();
        let mut tokens = u64::try_from(estimate).unwrap_or(u64::MAX).min(ceiling);
        // Rounding to the nano-dollar can make a token or two more fit, or the estimate one too many.
        while tokens > 0 && self.output_cost(tokens).map_or(true, |cost| cost > budget) {
            tokens -= 1;
        }
        while tokens < ceiling
            && self
                .output_cost(tokens + 1)
                .is_ok_and(|cost| cost <= budget)
        {
            tokens += 1;
        }
        tokens
    }
}

/// The price of `model` at `at` among `rows`: the model's own newest row effective by then, else the
/// default row's.
pub fn effective<'p>(rows: &'p [Price], model: &str, at: Millis) -> Option<&'p Price> {
    let newest = |of: &str| {
        rows.iter()
            .filter(|row| row.model == of && row.effective_from <= at)
            .max_by_key(|row| row.effective_from)
    };
    newest(model).or_else(|| newest(DEFAULT_MODEL))
}

/// A model name: `*` or 1..=200 printable characters.
pub fn validate_model(model: &str) -> Result<(), BillingError> {
    let chars = model.chars().count();
    if model.trim().is_empty() || chars > 200 || model.chars().any(char::is_control) {
        return Err(BillingError::invalid(
            "model",
            "must be 1 to 200 printable characters",
        ));
    }
    Ok(())
}

/// A markup: a decimal in (0, 1000] with at most nine decimals.
pub fn parse_markup(text: &str) -> Result<Decimal, BillingError> {
    let invalid = || {
        BillingError::invalid(
            "markup",
            "must be a decimal in (0, 1000] with at most 9 decimals",
        )
    };
    let markup = Decimal::from_str_exact(text.trim())
        .map_err(|_| invalid())?
        .normalize();
    if markup <= Decimal::ZERO || markup > MAX_MARKUP || markup.scale() > 9 {
        return Err(invalid());
    }
    Ok(markup)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn seed_price() -> Price {
        Price {
            model: DEFAULT_MODEL.into(),
            base_input_per_1k: "0.01".parse().unwrap(),
            base_output_per_1k: "0.03".parse().unwrap(),
            markup: parse_markup("1.5").unwrap(),
            effective_from: 0,
        }
    }

    #[test]
    fn seed_costs() {
        let cost = seed_price().cost(6548, 108).unwrap();
        assert_eq!(cost.input.to_string(), "0.09822");
        assert_eq!(cost.output.to_string(), "0.00486");
        assert_eq!(cost.total.to_string(), "0.10308");
        assert_eq!(seed_price().input_per_1k().normalize().to_string(), "0.015");
    }

    #[test]
    fn affordable_tokens_never_exceed_the_budget() {
        let price = seed_price();
        for budget in ["0", "0.000045", "0.00004499", "1", "0.123456789"] {
            let budget: Money = budget.parse().unwrap();
            let tokens = price.affordable_output_tokens(budget, u64::MAX);
            assert!(price.output_cost(tokens).unwrap() <= budget);
            assert!(price.output_cost(tokens + 1).unwrap() > budget);
        }
        assert_eq!(price.affordable_output_tokens("1".parse().unwrap(), 10), 10);
    }

    #[test]
    fn the_models_newest_effective_row_wins_over_the_default() {
        let row = |model: &str, effective_from| Price {
            model: model.into(),
            effective_from,
            ..seed_price()
        };
        let rows = [
            row("*", 0),
            row("*", 50),
            row("m", 10),
            row("m", 20),
            row("m", 99),
        ];
        let at =
            |model, at| effective(&rows, model, at).map(|p| (p.model.clone(), p.effective_from));
        assert_eq!(at("m", 5), Some(("*".into(), 0)));
        assert_eq!(at("m", 25), Some(("m".into(), 20)));
        assert_eq!(at("m", 99), Some(("m".into(), 99)));
        assert_eq!(at("other", 60), Some(("*".into(), 50)));
        assert_eq!(effective(&rows[2..], "other", 60), None);
    }

    #[test]
    fn markups_are_checked() {
        for bad in ["0", "-1", "1000.1", "abc", "0.0000000001"] {
            assert!(parse_markup(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_markup("1.50").unwrap().to_string(), "1.5");
    }
}
