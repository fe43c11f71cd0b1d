//! Model prices.

use proto::billing::v1 as billing_pb;
use serde::Serialize;
use utoipa::ToSchema;

use super::*;
use crate::error::{ApiError, Service};
use crate::money::Usd;

/// A price row; the effective price per 1k tokens is base × markup.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Price {
    /// A model name or `*` (every model without its own row).
    pub model: String,
    pub base_input_price_per_1k: Usd,
    pub base_output_price_per_1k: Usd,
    /// Multiplier, e.g. 1.5 (an exact decimal, like money).
    pub markup: Usd,
    pub input_price_per_1k: Usd,
    pub output_price_per_1k: Usd,
    /// The row applies to executions settled from this moment on.
    pub effective_from: Timestamp,
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
            markup: money(b, "markup", &price.markup)?,
            input_price_per_1k: money(b, "input_price_per_1k", &price.input_price_per_1k)?,
            output_price_per_1k: money(b, "output_price_per_1k", &price.output_price_per_1k)?,
            effective_from: time("price.effective_from", price.effective_from)?,
            model: price.model,
        })
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceList {
    pub prices: Vec<Price>,
}
