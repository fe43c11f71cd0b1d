//! Prices: what the customer's account pays, and the operator's price rows (list, add, end).
//!
//! Customer routes (`/billing/…`, billing.v1.AccountService) take the customer's key; operator routes
//! (`/billing/admin/…`, billing.v1.AdminService) take the `ADMIN_API_KEY`: billing-svc checks either (401
//! unknown, 403 the wrong kind of key).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use proto::billing::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Service};
use crate::extract::{CallContext, JsonBody, PathParams, QueryParams};
use crate::openapi::{AdminErrors, CustomerErrors};
use crate::routes::billing_call::billing;
use crate::state::AppState;
use crate::timestamp::Timestamp;
use crate::wire::{money, time};
use money::Money;

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
    pub base_input_price_per_1k: Money,
    pub base_output_price_per_1k: Money,
    /// Prompt-cache reads.
    pub base_cached_input_price_per_1k: Money,
    /// Prompt-cache writes (5 minutes).
    pub base_cache_write_price_per_1k: Money,
    /// Prompt-cache writes for one hour.
    #[serde(rename = "baseCacheWrite1hPricePer1k")]
    pub base_cache_write_1h_price_per_1k: Money,
    pub base_audio_input_price_per_1k: Money,
    pub base_audio_output_price_per_1k: Money,
    /// USD per call, no markup.
    pub request_fee: Money,
    /// Multiplier, e.g. 1.5 (an exact decimal, like money).
    pub markup: Money,
    /// Input price per 1k tokens after markup.
    pub input_price_per_1k: Money,
    /// Output price per 1k tokens after markup.
    pub output_price_per_1k: Money,
    /// The row applies to executions settled from this moment on.
    pub effective_from: Timestamp,
    /// The row ends the model's price from `effectiveFrom` on (`DELETE /admin/prices/{model}`).
    pub ended: bool,
}

impl TryFrom<pb::Price> for Price {
    type Error = ApiError;

    fn try_from(price: pb::Price) -> Result<Price, ApiError> {
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
    pub from_monthly_spend: Money,
    /// Percent in (0, 100].
    pub percent_off: Money,
}

impl DiscountTier {
    pub fn from_wire(tier: pb::DiscountTier) -> Result<DiscountTier, ApiError> {
        let b = Service::Billing;
        Ok(DiscountTier {
            from_monthly_spend: money(b, "from_monthly_spend", &tier.from_monthly_spend)?,
            percent_off: money(b, "percent_off", &tier.percent_off)?,
        })
    }

    pub fn to_wire(&self) -> pb::DiscountTier {
        pb::DiscountTier {
            from_monthly_spend: self.from_monthly_spend.to_string(),
            percent_off: self.percent_off.to_string(),
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
    pub input_price_per_1k: Money,
    pub output_price_per_1k: Money,
    pub cached_input_price_per_1k: Money,
    pub cache_write_price_per_1k: Money,
    #[serde(rename = "cacheWrite1hPricePer1k")]
    pub cache_write_1h_price_per_1k: Money,
    pub audio_input_price_per_1k: Money,
    pub audio_output_price_per_1k: Money,
    pub request_fee: Money,
    pub effective_from: Timestamp,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountPriceList {
    pub prices: Vec<AccountPrice>,
}

impl TryFrom<pb::ListAccountPricesResponse> for AccountPriceList {
    type Error = ApiError;

    fn try_from(list: pb::ListAccountPricesResponse) -> Result<AccountPriceList, ApiError> {
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

/// The prices the caller's account pays, per model in effect now: each class per 1,000 tokens after markup
/// (before any volume tier) and the request fee. `*` prices every model without a row of its own.
#[utoipa::path(
    get,
    path = "/billing/prices",
    tag = "billing",
    security(("bearer" = [])),
    responses((status = 200, body = AccountPriceList), CustomerErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn prices(
    State(state): State<AppState>,
    context: CallContext,
) -> Result<Json<AccountPriceList>, ApiError> {
    let request = context.request(pb::ListAccountPricesRequest {});
    let list = billing(state.account().list_prices(request)).await?;
    Ok(Json(list.try_into()?))
}

/// Every price row, past, current and future.
#[utoipa::path(
    get,
    path = "/admin/prices",
    tag = "admin",
    security(("bearer" = [])),
    responses((status = 200, body = PriceList), AdminErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn list_prices(
    State(state): State<AppState>,
    context: CallContext,
) -> Result<Json<PriceList>, ApiError> {
    let request = context.request(pb::ListPricesRequest {});
    let response = billing(state.admin().list_prices(request)).await?;
    let prices = response
        .prices
        .into_iter()
        .map(TryInto::try_into)
        .collect::<Result<_, _>>()?;
    Ok(Json(PriceList { prices }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetPriceBody {
    /// A model name (1..=200 characters) or `*`.
    pub model: String,
    /// USD per 1,000 input tokens before markup, >= 0.
    pub base_input_price_per_1k: Money,
    /// USD per 1,000 output tokens before markup, >= 0.
    pub base_output_price_per_1k: Money,
    /// Prompt-cache reads, USD per 1,000 before markup; default: the input price.
    pub base_cached_input_price_per_1k: Option<Money>,
    /// Prompt-cache writes (5 minutes); default: the input price.
    pub base_cache_write_price_per_1k: Option<Money>,
    /// Prompt-cache writes for one hour; default: the cache-write price.
    #[serde(rename = "baseCacheWrite1hPricePer1k")]
    pub base_cache_write_1h_price_per_1k: Option<Money>,
    /// Default: the input price.
    pub base_audio_input_price_per_1k: Option<Money>,
    /// Default: the output price.
    pub base_audio_output_price_per_1k: Option<Money>,
    /// USD per call, no markup; default 0.
    pub request_fee: Option<Money>,
    /// Multiplier > 0; default 1.5 (the seed's).
    pub markup: Option<Money>,
    /// Default: now. Executions settled from then on use this row; recorded costs never change.
    pub effective_from: Option<Timestamp>,
    /// This account's own price for the model (not `*`), which wins over the global row.
    pub account_id: Option<String>,
}

/// Adds a price row for a model (or `*`).
#[utoipa::path(
    post,
    path = "/admin/prices",
    tag = "admin",
    security(("bearer" = [])),
    request_body = SetPriceBody,
    responses((status = 201, body = Price), AdminErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn set_price(
    State(state): State<AppState>,
    context: CallContext,
    JsonBody(body): JsonBody<SetPriceBody>,
) -> Result<(StatusCode, Json<Price>), ApiError> {
    let request = context.request(pb::SetPriceRequest {
        model: body.model,
        base_input_price_per_1k: body.base_input_price_per_1k.to_string(),
        base_output_price_per_1k: body.base_output_price_per_1k.to_string(),
        markup: body.markup.map(|amount| amount.to_string()),
        effective_from: body.effective_from.map(|t| t.0),
        base_cached_input_price_per_1k: body
            .base_cached_input_price_per_1k
            .map(|amount| amount.to_string()),
        base_cache_write_price_per_1k: body
            .base_cache_write_price_per_1k
            .map(|amount| amount.to_string()),
        base_cache_write_1h_price_per_1k: body
            .base_cache_write_1h_price_per_1k
            .map(|amount| amount.to_string()),
        base_audio_input_price_per_1k: body
            .base_audio_input_price_per_1k
            .map(|amount| amount.to_string()),
        base_audio_output_price_per_1k: body
            .base_audio_output_price_per_1k
            .map(|amount| amount.to_string()),
        request_fee: body.request_fee.map(|amount| amount.to_string()),
        account_id: body.account_id,
    });
    let price = billing(state.admin().set_price(request)).await?;
    Ok((StatusCode::CREATED, Json(price.try_into()?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EndPriceQuery {
    /// End this account's own price for the model; absent: the global row.
    pub account_id: Option<String>,
}

/// Ends a model's price from now on (BILLING.md, "Prices"): the next level down prices it (an account's
/// own row falls back to the global one, a model's row to `*`), or nothing does and its calls are refused
/// with 404 `model_not_priced` before any hold. A model name with `/` is written `%2F`. 404 when no price
/// of it is in effect.
#[utoipa::path(
    delete,
    path = "/admin/prices/{model}",
    tag = "admin",
    security(("bearer" = [])),
    params(("model" = String, Path, description = "A model name, or `*`"), EndPriceQuery),
    responses((status = 200, body = Price, description = "The row that ends the price"), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(model = %model))]
pub async fn end_price(
    State(state): State<AppState>,
    context: CallContext,
    PathParams(model): PathParams<String>,
    QueryParams(query): QueryParams<EndPriceQuery>,
) -> Result<Json<Price>, ApiError> {
    let request = context.request(pb::EndPriceRequest {
        model,
        account_id: query.account_id,
    });
    let price = billing(state.admin().end_price(request)).await?;
    Ok(Json(price.try_into()?))
}
