//! Prices and what tokens cost (BILLING.md, "Prices" and "Token classes"). A price row has a base price per
//! 1,000 tokens for each token class, a request fee, a markup, an effective time, and optionally the account
//! it is for. The effective price is the base price times the markup; the rounding of a cost happens in
//! [`money::token_cost`] and nowhere else.

pub mod ops;
pub mod sql;

use rust_decimal::Decimal;

use crate::error::BillingError;
use crate::time::Millis;
use money::Money;
use proto::ids::AccountId;

/// The model name of the row that prices every model without its own row.
pub const DEFAULT_MODEL: &str = "*";
/// The markup of a price row set without one (the seed's).
pub const DEFAULT_MARKUP: &str = "1.5";
const MAX_MARKUP: Decimal = Decimal::from_parts(1000, 0, 0, false, 0);
const HUNDRED: Decimal = Decimal::from_parts(100, 0, 0, false, 0);

/// Base prices per 1,000 tokens of each class, before markup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassPrices {
    pub input: Money,
    pub output: Money,
    pub cached_input: Money,
    pub cache_write: Money,
    pub cache_write_1h: Money,
    pub audio_input: Money,
    pub audio_output: Money,
}

/// The class prices a row was given; an absent one takes its default (see [`ClassPrices::resolve`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GivenPrices {
    pub cached_input: Option<Money>,
    pub cache_write: Option<Money>,
    pub cache_write_1h: Option<Money>,
    pub audio_input: Option<Money>,
    pub audio_output: Option<Money>,
}

impl ClassPrices {
    /// Every class's price, the absent ones at their defaults (BILLING.md, "Prices"): cached input, cache
    /// writes and audio input at the input price, 1 h cache writes at the cache-write price, audio output at
    /// the output price.
    pub fn resolve(input: Money, output: Money, given: GivenPrices) -> ClassPrices {
        let cache_write = given.cache_write.unwrap_or(input);
        ClassPrices {
            input,
            output,
            cached_input: given.cached_input.unwrap_or(input),
            cache_write,
            cache_write_1h: given.cache_write_1h.unwrap_or(cache_write),
            audio_input: given.audio_input.unwrap_or(input),
            audio_output: given.audio_output.unwrap_or(output),
        }
    }
}

/// One price row.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    pub model: String,
    /// The account this row is for; `None`: every account.
    pub account_id: Option<AccountId>,
    pub base: ClassPrices,
    /// Per call, no markup, no discount.
    pub request_fee: Money,
    pub markup: Decimal,
    pub effective_from: Millis,
    /// The row ends the model's price from `effective_from` on (see [`effective`]).
    pub ended: bool,
}

/// Token counts by class inside an execution's input and output (BILLING.md, "Token classes").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenClasses {
    pub cached_input: u64,
    /// Every cache write, 1 h ones included.
    pub cache_write: u64,
    pub cache_write_1h: u64,
    /// Inside output, priced as output.
    pub reasoning: u64,
    pub audio_input: u64,
    pub audio_output: u64,
}

/// An execution's tokens: the whole prompt, the whole output, and the classes inside them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
    pub classes: TokenClasses,
}

impl TokenUsage {
    /// Plain input and output, no class.
    pub fn plain(input: u64, output: u64) -> TokenUsage {
        TokenUsage {
            input,
            output,
            classes: TokenClasses::default(),
        }
    }

    /// Refuses classes that do not fit inside the totals.
    pub fn validate(&self) -> Result<(), BillingError> {
        let classes = &self.classes;
        let input_classes = classes
            .cached_input
            .checked_add(classes.cache_write)
            .and_then(|sum| sum.checked_add(classes.audio_input));
        if input_classes.is_none_or(|sum| sum > self.input) {
            return Err(BillingError::invalid(
                "classes",
                "cached input, cache writes and audio input exceed input_tokens",
            ));
        }
        if classes.cache_write_1h > classes.cache_write {
            return Err(BillingError::invalid(
                "classes",
                "cache_write_1h_tokens exceed cache_write_tokens",
            ));
        }
        let output_classes = classes.reasoning.checked_add(classes.audio_output);
        if output_classes.is_none_or(|sum| sum > self.output) {
            return Err(BillingError::invalid(
                "classes",
                "reasoning and audio output exceed output_tokens",
            ));
        }
        Ok(())
    }
}

/// The cost of one execution. `total = input + output + request_fee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub input: Money,
    pub output: Money,
    pub request_fee: Money,
    pub total: Money,
    /// The same tokens at base prices: no markup, no discount, no fee.
    pub provider: Money,
    /// What `percent_off` took off the token costs: their cost without it, less `input + output`.
    pub discount: Money,
}

impl Price {
    /// The input classes of `usage` with their base prices (a validated usage: the classes fit).
    fn input_classes(&self, usage: &TokenUsage) -> [(u64, Money); 5] {
        let classes = &usage.classes;
        let plain = usage.input - classes.cached_input - classes.cache_write - classes.audio_input;
        [
            (plain, self.base.input),
            (classes.cached_input, self.base.cached_input),
            (
                classes.cache_write - classes.cache_write_1h,
                self.base.cache_write,
            ),
            (classes.cache_write_1h, self.base.cache_write_1h),
            (classes.audio_input, self.base.audio_input),
        ]
    }

    fn output_classes(&self, usage: &TokenUsage) -> [(u64, Money); 2] {
        let audio = usage.classes.audio_output;
        [
            (usage.output - audio, self.base.output),
            (audio, self.base.audio_output),
        ]
    }

    /// What `usage` costs, `percent_off` (a volume tier, 0 for none) taken off the marked-up token costs:
    /// `Σ class tokens × class price / 1000 × markup × (1 − percent_off / 100)`, rounded once for the input
    /// side and once for the output side, plus the request fee.
    pub fn cost(&self, usage: &TokenUsage, percent_off: Decimal) -> Result<Cost, BillingError> {
        usage.validate()?;
        let multiplier = self.markup * (Decimal::ONE - percent_off / HUNDRED);
        let rounded = |classes: &[(u64, Money)], multiplier| {
            money::token_cost(classes, multiplier).ok_or(BillingError::Overflow)
        };
        let (input_classes, output_classes) =
            (self.input_classes(usage), self.output_classes(usage));
        let input = rounded(&input_classes, multiplier)?;
        let output = rounded(&output_classes, multiplier)?;
        let provider = rounded(&input_classes, Decimal::ONE)?
            .checked_add(rounded(&output_classes, Decimal::ONE)?)
            .ok_or(BillingError::Overflow)?;
        let tokens = input.checked_add(output).ok_or(BillingError::Overflow)?;
        let total = tokens
            .checked_add(self.request_fee)
            .ok_or(BillingError::Overflow)?;
        let discount = if percent_off.is_zero() {
            Money::ZERO
        } else {
            rounded(&input_classes, self.markup)?
                .checked_add(rounded(&output_classes, self.markup)?)
                .and_then(|list| list.checked_sub(tokens))
                .ok_or(BillingError::Overflow)?
        };
        Ok(Cost {
            input,
            output,
            request_fee: self.request_fee,
            total,
            provider,
            discount,
        })
    }

    /// Input price per 1k tokens after markup (exact; may carry more than nine decimals).
    pub fn input_per_1k(&self) -> Decimal {
        self.base.input.decimal() * self.markup
    }

    /// Output price per 1k tokens after markup (exact).
    pub fn output_per_1k(&self) -> Decimal {
        self.base.output.decimal() * self.markup
    }

    /// What a hold takes for `estimated` prompt tokens and the call: every token at the dearest input
    /// class (a prompt may turn out to be all cache writes), plus the request fee.
    pub fn hold_input_cost(&self, estimated: u64) -> Result<Money, BillingError> {
        let base = &self.base;
        let dearest = [
            base.input,
            base.cached_input,
            base.cache_write,
            base.cache_write_1h,
            base.audio_input,
        ]
        .into_iter()
        .max()
        .unwrap_or(base.input);
        money::token_cost(&[(estimated, dearest)], self.markup)
            .and_then(|cost| cost.checked_add(self.request_fee))
            .ok_or(BillingError::Overflow)
    }

    /// What a hold takes for `tokens` output tokens: at the dearer of output and audio output.
    pub fn hold_output_cost(&self, tokens: u64) -> Result<Money, BillingError> {
        money::token_cost(&[(tokens, self.dearest_output())], self.markup)
            .ok_or(BillingError::Overflow)
    }

    fn dearest_output(&self) -> Money {
        self.base.output.max(self.base.audio_output)
    }

    /// The most output tokens, up to `ceiling`, whose hold cost fits in `budget`.
    pub fn affordable_output_tokens(&self, budget: Money, ceiling: u64) -> u64 {
        if budget.is_negative() {
            return 0;
        }
        let per_1k = self.dearest_output().decimal() * self.markup;
        if per_1k.is_zero() {
            return ceiling;
        }
        let estimate = (budget.decimal() * Decimal::from(1000) / per_1k).floor();
        let mut tokens = u64::try_from(estimate).unwrap_or(u64::MAX).min(ceiling);
        // Rounding to the nano-dollar can make a token or two more fit, or the estimate one too many.
        while tokens > 0
            && self
                .hold_output_cost(tokens)
                .map_or(true, |cost| cost > budget)
        {
            tokens -= 1;
        }
        while tokens < ceiling
            && self
                .hold_output_cost(tokens + 1)
                .is_ok_and(|cost| cost <= budget)
        {
            tokens += 1;
        }
        tokens
    }
}

/// A volume tier of an account (BILLING.md, "Volume tiers").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscountTier {
    pub from_monthly_spend: Money,
    pub percent_off: Decimal,
}

/// The percent off of the highest tier `month_spend` has reached (0 when none).
pub fn percent_off(tiers: &[DiscountTier], month_spend: Money) -> Decimal {
    tiers
        .iter()
        .filter(|tier| month_spend >= tier.from_monthly_spend)
        .max_by_key(|tier| tier.from_monthly_spend)
        .map_or(Decimal::ZERO, |tier| tier.percent_off)
}

/// Checks tiers as given: thresholds >= 0 and distinct, percent in (0, 100] with at most 4 decimals, at most
/// 16; answers them lowest threshold first.
pub fn validate_tiers(mut tiers: Vec<DiscountTier>) -> Result<Vec<DiscountTier>, BillingError> {
    if tiers.len() > 16 {
        return Err(BillingError::invalid("discountTiers", "at most 16 tiers"));
    }
    for tier in &tiers {
        if tier.from_monthly_spend.is_negative() {
            return Err(BillingError::invalid("fromMonthlySpend", "must be >= 0"));
        }
        if tier.percent_off <= Decimal::ZERO
            || tier.percent_off > HUNDRED
            || tier.percent_off.scale() > 4
        {
            return Err(BillingError::invalid(
                "percentOff",
                "must be a decimal in (0, 100] with at most 4 decimals",
            ));
        }
    }
    tiers.sort_by_key(|tier| tier.from_monthly_spend);
    if tiers
        .windows(2)
        .any(|pair| pair[0].from_monthly_spend == pair[1].from_monthly_spend)
    {
        return Err(BillingError::invalid(
            "discountTiers",
            "two tiers start at the same spend",
        ));
    }
    Ok(tiers)
}

/// The price of `model` for `account` at `at` among `rows`: the newest row in effect by then of the account's
/// own price for the model, else of the global price for the model, else of the global `*` row. A level
/// whose newest row is an ended one has no price, and the next level down is asked.
pub fn effective<'p>(
    rows: &'p [Price],
    account: &AccountId,
    model: &str,
    at: Millis,
) -> Option<&'p Price> {
    let newest = |of: &str, for_account: Option<&AccountId>| {
        rows.iter()
            .filter(|row| {
                row.model == of
                    && row.account_id.as_ref() == for_account
                    && row.effective_from <= at
            })
            .max_by_key(|row| row.effective_from)
            .filter(|row| !row.ended)
    };
    newest(model, Some(account))
        .or_else(|| newest(model, None))
        .or_else(|| newest(DEFAULT_MODEL, None))
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

    fn money(text: &str) -> Money {
        text.parse().unwrap()
    }

    fn seed_price() -> Price {
        Price {
            model: DEFAULT_MODEL.into(),
            account_id: None,
            base: ClassPrices::resolve(money("0.01"), money("0.03"), GivenPrices::default()),
            request_fee: Money::ZERO,
            markup: parse_markup("1.5").unwrap(),
            effective_from: 0,
            ended: false,
        }
    }

    #[test]
    fn seed_costs() {
        let cost = seed_price()
            .cost(&TokenUsage::plain(6548, 108), Decimal::ZERO)
            .unwrap();
        assert_eq!(cost.input.to_string(), "0.09822");
        assert_eq!(cost.output.to_string(), "0.00486");
        assert_eq!(cost.total.to_string(), "0.10308");
        assert_eq!(cost.provider.to_string(), "0.06872");
        assert_eq!(seed_price().input_per_1k().normalize().to_string(), "0.015");
    }

    /// Anthropic's Claude Sonnet list prices (USD per 1M: input 3, 5 min cache write 3.75, 1 h cache
    /// write 6, cache read 0.30, output 15), markup 1.2, a fee of 0.001 and a 10 % tier.
    #[test]
    fn every_class_is_priced_at_its_own_rate_and_rounded_once() {
        let price = Price {
            base: ClassPrices {
                input: money("0.003"),
                output: money("0.015"),
                cached_input: money("0.0003"),
                cache_write: money("0.00375"),
                cache_write_1h: money("0.006"),
                audio_input: money("0.003"),
                audio_output: money("0.015"),
            },
            request_fee: money("0.001"),
            markup: parse_markup("1.2").unwrap(),
            ..seed_price()
        };
        let usage = TokenUsage {
            input: 10 + 30_000 + 2_000,
            output: 500,
            classes: TokenClasses {
                cached_input: 30_000,
                cache_write: 2_000,
                cache_write_1h: 500,
                reasoning: 200,
                ..TokenClasses::default()
            },
        };
        let cost = price.cost(&usage, Decimal::ZERO).unwrap();
        // 10 × 0.003 + 30,000 × 0.0003 + 1,500 × 0.00375 + 500 × 0.006 = 17.655 per 1k → 0.017655 × 1.2.
        assert_eq!(cost.input.to_string(), "0.021186");
        assert_eq!(cost.output.to_string(), "0.009");
        assert_eq!(cost.total.to_string(), "0.031186");
        assert_eq!(cost.provider.to_string(), "0.025155");
        let discounted = price.cost(&usage, Decimal::from(10)).unwrap();
        assert_eq!(discounted.input.to_string(), "0.0190674");
        assert_eq!(discounted.total.to_string(), "0.0281674");
        assert_eq!(discounted.provider, cost.provider);
        // The class order never matters: one exact sum, rounded once.
        let plain = price
            .cost(&TokenUsage::plain(usage.input, 500), Decimal::ZERO)
            .unwrap();
        assert_eq!(plain.input.to_string(), "0.115236");
    }

    #[test]
    fn classes_must_fit_inside_the_totals() {
        let price = seed_price();
        let classes = |cached, write, write_1h, reasoning| TokenUsage {
            input: 100,
            output: 10,
            classes: TokenClasses {
                cached_input: cached,
                cache_write: write,
                cache_write_1h: write_1h,
                reasoning,
                ..TokenClasses::default()
            },
        };
        for usage in [
            classes(101, 0, 0, 0),
            classes(60, 50, 0, 0),
            classes(0, 5, 6, 0),
            classes(0, 0, 0, 11),
        ] {
            assert!(price.cost(&usage, Decimal::ZERO).is_err(), "{usage:?}");
        }
        assert!(price.cost(&classes(50, 50, 50, 10), Decimal::ZERO).is_ok());
    }

    #[test]
    fn absent_class_prices_take_their_defaults() {
        let (input, output) = (money("0.003"), money("0.015"));
        let defaults = ClassPrices::resolve(input, output, GivenPrices::default());
        assert_eq!(
            (
                defaults.cached_input,
                defaults.cache_write,
                defaults.cache_write_1h
            ),
            (input, input, input)
        );
        assert_eq!(
            (defaults.audio_input, defaults.audio_output),
            (input, output)
        );
        // A 1 h cache write follows the 5 min cache-write price when only that is given.
        let written = ClassPrices::resolve(
            input,
            output,
            GivenPrices {
                cache_write: Some(money("0.00375")),
                ..GivenPrices::default()
            },
        );
        assert_eq!(written.cache_write_1h, money("0.00375"));
    }

    #[test]
    fn holds_take_the_dearest_class() {
        let mut price = seed_price();
        price.base.cache_write_1h = money("0.02");
        price.request_fee = money("0.5");
        // 1,000 tokens at 0.02 × 1.5, plus the fee.
        assert_eq!(price.hold_input_cost(1000).unwrap().to_string(), "0.53");
        price.base.audio_output = money("0.06");
        assert_eq!(price.hold_output_cost(1000).unwrap().to_string(), "0.09");
    }

    #[test]
    fn affordable_tokens_never_exceed_the_budget() {
        let price = seed_price();
        for budget in ["0", "0.000045", "0.00004499", "1", "0.123456789"] {
            let budget: Money = budget.parse().unwrap();
            let tokens = price.affordable_output_tokens(budget, u64::MAX);
            assert!(price.hold_output_cost(tokens).unwrap() <= budget);
            assert!(price.hold_output_cost(tokens + 1).unwrap() > budget);
        }
        assert_eq!(price.affordable_output_tokens("1".parse().unwrap(), 10), 10);
    }

    #[test]
    fn the_accounts_row_then_the_models_then_the_default_in_effect_wins() {
        let account = AccountId::from("acct_1".to_string());
        let row = |model: &str, for_account: bool, effective_from, ended| Price {
            model: model.into(),
            account_id: for_account.then(|| account.clone()),
            effective_from,
            ended,
            ..seed_price()
        };
        let rows = [
            row("*", false, 0, false),
            row("*", false, 50, false),
            row("m", false, 10, false),
            row("m", false, 20, false),
            row("m", false, 99, false),
            row("m", true, 30, false),
            row("m", true, 40, true),
            row("x", false, 10, false),
            row("x", false, 70, true),
            row("*", false, 80, true),
        ];
        let other = AccountId::from("acct_2".to_string());
        let at = |account: &AccountId, model, at| {
            effective(&rows, account, model, at)
                .map(|p| (p.model.clone(), p.account_id.is_some(), p.effective_from))
        };
        assert_eq!(at(&other, "m", 5), Some(("*".into(), false, 0)));
        assert_eq!(at(&other, "m", 25), Some(("m".into(), false, 20)));
        assert_eq!(at(&account, "m", 35), Some(("m".into(), true, 30)));
        // The account's row ended: the global one prices it again.
        assert_eq!(at(&account, "m", 45), Some(("m".into(), false, 20)));
        assert_eq!(at(&other, "other", 60), Some(("*".into(), false, 50)));
        // x's own row ended: the default prices it, until the default ends too.
        assert_eq!(at(&other, "x", 75), Some(("*".into(), false, 50)));
        assert_eq!(at(&other, "x", 85), None);
        assert_eq!(at(&other, "m", 99), Some(("m".into(), false, 99)));
    }

    #[test]
    fn the_highest_tier_reached_applies() {
        let tiers = validate_tiers(vec![
            DiscountTier {
                from_monthly_spend: money("5000"),
                percent_off: Decimal::from(15),
            },
            DiscountTier {
                from_monthly_spend: money("1000"),
                percent_off: Decimal::from(10),
            },
        ])
        .unwrap();
        assert_eq!(tiers[0].from_monthly_spend, money("1000"));
        assert_eq!(percent_off(&tiers, money("999.999999999")), Decimal::ZERO);
        assert_eq!(percent_off(&tiers, money("1000")), Decimal::from(10));
        assert_eq!(percent_off(&tiers, money("7000")), Decimal::from(15));
        let bad = |spend: &str, off: i64| {
            validate_tiers(vec![DiscountTier {
                from_monthly_spend: money(spend),
                percent_off: Decimal::from(off),
            }])
            .is_err()
        };
        assert!(bad("-1", 10) && bad("1", 0) && bad("1", 101));
    }

    proptest::proptest! {
        /// For random class mixes and prices, the cost is one exact sum rounded once: the same whatever
        /// the order of the classes, never below the provider cost at a markup of at least 1, and the
        /// total is exactly its sides and fee.
        #[test]
        fn the_cost_of_a_class_mix_does_not_depend_on_their_order(
            tokens in proptest::collection::vec(0..2_000_000u64, 7),
            prices in proptest::collection::vec(0..100_000_000i64, 7),
            markup_thousandths in 1_000..3_000i64,
            fee in 0..10_000_000i64,
            rotation in 0..7usize,
        ) {
            let nanos = |index: usize| Money::from_nanos(prices[index]);
            let price = Price {
                base: ClassPrices {
                    input: nanos(0),
                    output: nanos(1),
                    cached_input: nanos(2),
                    cache_write: nanos(3),
                    cache_write_1h: nanos(4),
                    audio_input: nanos(5),
                    audio_output: nanos(6),
                },
                request_fee: Money::from_nanos(fee),
                markup: Decimal::new(markup_thousandths, 3),
                ..seed_price()
            };
            let usage = TokenUsage {
                input: tokens[0] + tokens[2] + tokens[3] + tokens[4] + tokens[5],
                output: tokens[1] + tokens[6],
                classes: TokenClasses {
                    cached_input: tokens[2],
                    cache_write: tokens[3] + tokens[4],
                    cache_write_1h: tokens[4],
                    reasoning: tokens[1] / 2,
                    audio_input: tokens[5],
                    audio_output: tokens[6],
                },
            };
            let cost = price.cost(&usage, Decimal::ZERO).unwrap();
            let mut input_side = price.input_classes(&usage).to_vec();
            let count = input_side.len();
            input_side.rotate_left(rotation % count);
            let rotated = money::token_cost(&input_side, price.markup).unwrap();
            proptest::prop_assert_eq!(rotated, cost.input);
            let mut reversed = price.output_classes(&usage).to_vec();
            reversed.reverse();
            proptest::prop_assert_eq!(money::token_cost(&reversed, price.markup).unwrap(), cost.output);
            proptest::prop_assert_eq!(
                cost.total,
                cost.input.checked_add(cost.output).unwrap().checked_add(cost.request_fee).unwrap()
            );
            proptest::prop_assert!(cost.input.checked_add(cost.output).unwrap() >= cost.provider);
        }
    }

    #[test]
    fn markups_are_checked() {
        for bad in ["0", "-1", "1000.1", "abc", "0.0000000001"] {
            assert!(parse_markup(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_markup("1.50").unwrap().to_string(), "1.5");
    }
}
