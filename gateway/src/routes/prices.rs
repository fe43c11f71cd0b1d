//! Prices: what the customer's account pays, and the operator's price rows (list, add, end).
//!
//! Customer routes (`/billing/…`, billing.v1.AccountService) take the customer's key; operator routes
//! (`/billing/admin/…`, billing.v1.AdminService) take the `ADMIN_API_KEY`: billing-svc checks either (401
//! unknown, 403 the wrong kind of key).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use proto::billing::v1 as pb;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{CallContext, JsonBody, PathParams, QueryParams};
use crate::json::{AccountPriceList, Price, PriceList, Timestamp};
use crate::money::Usd;
use crate::openapi::{AdminErrors, CustomerErrors};
use crate::state::AppState;

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
    let list = state
        .account()
        .list_prices(context.request(pb::ListAccountPricesRequest {}))
        .await
        .map_err(ApiError::billing)?
        .into_inner();
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
    let response = state
        .admin()
        .list_prices(context.request(pb::ListPricesRequest {}))
        .await
        .map_err(ApiError::billing)?;
    let prices = response
        .into_inner()
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
    pub base_input_price_per_1k: Usd,
    /// USD per 1,000 output tokens before markup, >= 0.
    pub base_output_price_per_1k: Usd,
    /// Prompt-cache reads, USD per 1,000 before markup; default: the input price.
    pub base_cached_input_price_per_1k: Option<Usd>,
    /// Prompt-cache writes (5 minutes); default: the input price.
    pub base_cache_write_price_per_1k: Option<Usd>,
    /// Prompt-cache writes for one hour; default: the cache-write price.
    #[serde(rename = "baseCacheWrite1hPricePer1k")]
    pub base_cache_write_1h_price_per_1k: Option<Usd>,
    /// Default: the input price.
    pub base_audio_input_price_per_1k: Option<Usd>,
    /// Default: the output price.
    pub base_audio_output_price_per_1k: Option<Usd>,
    /// USD per call, no markup; default 0.
    pub request_fee: Option<Usd>,
    /// Multiplier > 0; default 1.5 (the seed's).
    pub markup: Option<Usd>,
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
        base_input_price_per_1k: body.base_input_price_per_1k.to_wire(),
        base_output_price_per_1k: body.base_output_price_per_1k.to_wire(),
        markup: body.markup.map(Usd::to_wire),
        effective_from: body.effective_from.map(|t| t.0),
        base_cached_input_price_per_1k: body.base_cached_input_price_per_1k.map(Usd::to_wire),
        base_cache_write_price_per_1k: body.base_cache_write_price_per_1k.map(Usd::to_wire),
        base_cache_write_1h_price_per_1k: body.base_cache_write_1h_price_per_1k.map(Usd::to_wire),
        base_audio_input_price_per_1k: body.base_audio_input_price_per_1k.map(Usd::to_wire),
        base_audio_output_price_per_1k: body.base_audio_output_price_per_1k.map(Usd::to_wire),
        request_fee: body.request_fee.map(Usd::to_wire),
        account_id: body.account_id,
    });
    let price = state
        .admin()
        .set_price(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
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
    let price = state
        .admin()
        .end_price(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(price.try_into()?))
}
