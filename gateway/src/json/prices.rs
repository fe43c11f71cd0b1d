//! Model prices.

use proto::billing::v1 as billing_pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::*;
use crate::error::{ApiError, Service};
use crate::money::Usd;

/// A price row (BILLING.md, "Prices"): USD per 1,000 tokens of each token class before markup, a fee per
/// call, the markup; the effective price per 1k tokens is base × markup.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Price {
    /// A model name or `*` (every model without its own row).
    pub model: String,
    /// The account this row prices the model for; absent: every account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    pub base_input_price_per_1k: Usd,
    pub base_output_price_per_1k: Usd,
    /// Prompt-cache reads.
    pub base_cached_input_price_per_1k: Usd,
    /// Prompt-cache writes (5 minutes).
    pub base_cache_write_price_per_1k: Usd,
    /// Prompt-cache writes for one hour.
    #[serde(rename = "baseCacheWrite1hPricePer1k")]
    pub base_cache_write_1h_price_per_1k: Usd,
    pub base_audio_input_price_per_1k: Usd,
    pub base_audio_output_price_per_1k: Usd,
    /// USD per call, no markup.
    pub request_fee: Usd,
    /// Multiplier, e.g. 1.5 (an exact decimal, like money).
    pub markup: Usd,
    /// Input price per 1k tokens after markup.
    pub input_price_per_1k: Usd,
    /// Output price per 1k tokens after markup.
    pub output_price_per_1k: Usd,
    /// The row applies to executions settled from this moment on.
    pub effective_from: Timestamp,
    /// The row ends the model's price from `effectiveFrom` on (`DELETE /admin/prices/{model}`).
    pub ended: bool,
}

impl TryFrom<billing_pb::Price> for Price {
    type Error = ApiError;

    fn try_from(price: billing_pb::Price) -> Result<Price, ApiError> {
        let b = Service::Billing;
        Ok(Price {
            base_input_price_per_1k: money(
                b,
                "base_input_price_per_1k",
                &price.base_input_price_per_1k,
            )?,
            base_output_price_per_1k: money(
                b,
                "base_output_price_per_1k",
                &price.base_output_price_per_1k,
            )?,
            base_cached_input_price_per_1k: money(
                b,
                "base_cached_input_price_per_1k",
                &price.base_cached_input_price_per_1k,
            )?,
            base_cache_write_price_per_1k: money(
                b,
                "base_cache_write_price_per_1k",
                &price.base_cache_write_price_per_1k,
            )?,
            base_cache_write_1h_price_per_1k: money(
                b,
                "base_cache_write_1h_price_per_1k",
                &price.base_cache_write_1h_price_per_1k,
            )?,
            base_audio_input_price_per_1k: money(
                b,
                "base_audio_input_price_per_1k",
                &price.base_audio_input_price_per_1k,
            )?,
            base_audio_output_price_per_1k: money(
                b,
                "base_audio_output_price_per_1k",
                &price.base_audio_output_price_per_1k,
            )?,
            request_fee: money(b, "request_fee", &price.request_fee)?,
            markup: money(b, "markup", &price.markup)?,
            input_price_per_1k: money(b, "input_price_per_1k", &price.input_price_per_1k)?,
            output_price_per_1k: money(b, "output_price_per_1k", &price.output_price_per_1k)?,
            effective_from: time("price.effective_from", price.effective_from)?,
            account_id: (!price.account_id.is_empty()).then_some(price.account_id),
            ended: price.ended,
            model: price.model,
        })
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceList {
    pub prices: Vec<Price>,
}

/// A volume tier (BILLING.md, "Volume tiers"): from `fromMonthlySpend` of settled spend in the current UTC
/// month on, the account's next calls cost `percentOff` percent less (the request fee excepted).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DiscountTier {
    /// USD, >= 0.
    pub from_monthly_spend: Usd,
    /// Percent in (0, 100].
    pub percent_off: Usd,
}

impl DiscountTier {
    pub fn from_wire(tier: billing_pb::DiscountTier) -> Result<DiscountTier, ApiError> {
        let b = Service::Billing;
        Ok(DiscountTier {
            from_monthly_spend: money(b, "from_monthly_spend", &tier.from_monthly_spend)?,
            percent_off: money(b, "percent_off", &tier.percent_off)?,
        })
    }

    pub fn to_wire(&self) -> billing_pb::DiscountTier {
        billing_pb::DiscountTier {
            from_monthly_spend: self.from_monthly_spend.to_wire(),
            percent_off: self.percent_off.to_wire(),
        }
    }
}

/// What the calling account pays for a model: USD per 1,000 tokens of each class after markup (before any
/// volume tier), and per call.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountPrice {
    /// A model name, or `*` for every model without a row of its own.
    pub model: String,
    pub input_price_per_1k: Usd,
    pub output_price_per_1k: Usd,
    pub cached_input_price_per_1k: Usd,
    pub cache_write_price_per_1k: Usd,
    #[serde(rename = "cacheWrite1hPricePer1k")]
    pub cache_write_1h_price_per_1k: Usd,
    pub audio_input_price_per_1k: Usd,
    pub audio_output_price_per_1k: Usd,
    pub request_fee: Usd,
    pub effective_from: Timestamp,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountPriceList {
    pub prices: Vec<AccountPrice>,
}

impl TryFrom<billing_pb::ListAccountPricesResponse> for AccountPriceList {
    type Error = ApiError;

    fn try_from(list: billing_pb::ListAccountPricesResponse) -> Result<AccountPriceList, ApiError> {
        let b = Service::Billing;
        let prices = list
            .prices
            .into_iter()
            .map(|price| {
                Ok(AccountPrice {
                    input_price_per_1k: money(b, "input_price_per_1k", &price.input_price_per_1k)?,
                    output_price_per_1k: money(
                        b,
                        "output_price_per_1k",
                        &price.output_price_per_1k,
                    )?,
                    cached_input_price_per_1k: money(
                        b,
                        "cached_input_price_per_1k",
                        &price.cached_input_price_per_1k,
                    )?,
                    cache_write_price_per_1k: money(
                        b,
                        "cache_write_price_per_1k",
                        &price.cache_write_price_per_1k,
                    )?,
                    cache_write_1h_price_per_1k: money(
                        b,
                        "cache_write_1h_price_per_1k",
                        &price.cache_write_1h_price_per_1k,
                    )?,
                    audio_input_price_per_1k: money(
                        b,
                        "audio_input_price_per_1k",
                        &price.audio_input_price_per_1k,
                    )?,
                    audio_output_price_per_1k: money(
                        b,
                        "audio_output_price_per_1k",
                        &price.audio_output_price_per_1k,
                    )?,
                    request_fee: money(b, "request_fee", &price.request_fee)?,
                    effective_from: time("account_price.effective_from", price.effective_from)?,
                    model: price.model,
                })
            })
            .collect::<Result<_, ApiError>>()?;
        Ok(AccountPriceList { prices })
    }
}
