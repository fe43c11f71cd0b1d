//! Operator routes (billing.v1.AdminService): keys, credits, adjustments, refunds, limits, prices and any
//! account's stats. The caller's bearer must be the ADMIN_API_KEY; billing-svc checks it (401 unknown,
//! 403 a customer key).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use proto::billing::v1 as pb;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Service};
use crate::extract::{CallContext, JsonBody, PathParams, QueryParams};
use crate::json::{
    Account, ApiKey, CreatedKey, KeyList, KeyType, LedgerEntry, Price, PriceList, Stats, Timestamp,
};
use crate::money::Usd;
use crate::openapi::AdminErrors;
use crate::routes::account::{RangeQuery, time_range};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateKeyBody {
    /// 1..=100 printable characters.
    pub name: String,
    pub key_type: KeyType,
    /// `[a-z0-9_]{1,32}` ending in `_`; default `tb_prod_` (standard) or `tb_internal_` (internal).
    pub prefix: Option<String>,
    /// When set (in the future), the key stops working at this time.
    pub expires_at: Option<Timestamp>,
}

/// Creates a key and its account; the plain `key` is in this response only.
#[utoipa::path(
    post,
    path = "/admin/keys",
    tag = "admin",
    security(("bearer" = [])),
    request_body = CreateKeyBody,
    responses((status = 201, body = CreatedKey), AdminErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn create_key(
    State(state): State<AppState>,
    context: CallContext,
    JsonBody(body): JsonBody<CreateKeyBody>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let request = context.request(pb::CreateKeyRequest {
        name: body.name,
        key_type: body.key_type.to_wire().into(),
        prefix: body.prefix,
        expires_at: body.expires_at.map(|t| t.0),
    });
    let created = state
        .admin()
        .create_key(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok((StatusCode::CREATED, Json(created.try_into()?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListKeysQuery {
    /// List revoked keys too (default false).
    pub include_revoked: Option<bool>,
}

/// Lists keys (never the key nor its hash).
#[utoipa::path(
    get,
    path = "/admin/keys",
    tag = "admin",
    security(("bearer" = [])),
    params(ListKeysQuery),
    responses((status = 200, body = KeyList), AdminErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn list_keys(
    State(state): State<AppState>,
    context: CallContext,
    QueryParams(query): QueryParams<ListKeysQuery>,
) -> Result<Json<KeyList>, ApiError> {
    let request = context.request(pb::ListKeysRequest {
        include_revoked: query.include_revoked.unwrap_or(false),
    });
    let response = state
        .admin()
        .list_keys(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    let keys = response
        .keys
        .into_iter()
        .map(TryInto::try_into)
        .collect::<Result<_, _>>()?;
    Ok(Json(KeyList { keys }))
}

/// Revokes a key: refused from the next call on. Revoking twice is harmless.
#[utoipa::path(
    delete,
    path = "/admin/keys/{id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id")),
    responses((status = 200, body = ApiKey), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(key_id = %id))]
pub async fn revoke_key(
    State(state): State<AppState>,
    context: CallContext,
    PathParams(id): PathParams<String>,
) -> Result<Json<ApiKey>, ApiError> {
    let request = context.request(pb::RevokeKeyRequest { id });
    let response = state
        .admin()
        .revoke_key(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    let key = response
        .api_key
        .ok_or_else(|| ApiError::contract(Service::Billing, "api_key is missing"))?;
    Ok(Json(key.try_into()?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddCreditsBody {
    /// > 0; a JSON number or a decimal string, at most 9 decimals, kept exact.
    pub amount: Usd,
    pub description: Option<String>,
    /// The same key with the same request returns the first result; with another request: 409.
    pub idempotency_key: Option<String>,
}

/// Adds purchased credits (`credit_purchase`).
#[utoipa::path(
    post,
    path = "/billing/admin/{id}/credits",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's (account's) id")),
    request_body = AddCreditsBody,
    responses((status = 200, body = LedgerEntry), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(key_id = %id))]
pub async fn add_credits(
    State(state): State<AppState>,
    context: CallContext,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<AddCreditsBody>,
) -> Result<Json<LedgerEntry>, ApiError> {
    let request = context.request(pb::AddCreditsRequest {
        api_key_id: id,
        amount: body.amount.to_wire(),
        description: body.description,
        idempotency_key: body.idempotency_key,
    });
    let entry = state
        .admin()
        .add_credits(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(entry.try_into()?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdjustCreditsBody {
    /// Non-zero, either sign.
    pub amount: Usd,
    /// Required, 1..=500 characters.
    pub reason: String,
    pub idempotency_key: Option<String>,
}

/// Corrects the balance up or down (`credit_adjustment`).
#[utoipa::path(
    post,
    path = "/billing/admin/{id}/adjustments",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's (account's) id")),
    request_body = AdjustCreditsBody,
    responses((status = 200, body = LedgerEntry), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(key_id = %id))]
pub async fn adjust_credits(
    State(state): State<AppState>,
    context: CallContext,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<AdjustCreditsBody>,
) -> Result<Json<LedgerEntry>, ApiError> {
    let request = context.request(pb::AdjustCreditsRequest {
        api_key_id: id,
        amount: body.amount.to_wire(),
        reason: body.reason,
        idempotency_key: body.idempotency_key,
    });
    let entry = state
        .admin()
        .adjust_credits(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(entry.try_into()?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefundBody {
    /// The usage record to refund.
    pub usage_record_id: String,
    /// > 0 and at most what is left to refund; absent = the whole charge.
    pub amount: Option<Usd>,
    pub reason: Option<String>,
}

/// Refunds a usage record, at most what it was charged. More than that is a 409 `failed_precondition`.
#[utoipa::path(
    post,
    path = "/billing/admin/{id}/refunds",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's (account's) id")),
    request_body = RefundBody,
    responses((status = 200, body = LedgerEntry), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(key_id = %id))]
pub async fn refund(
    State(state): State<AppState>,
    context: CallContext,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<RefundBody>,
) -> Result<Json<LedgerEntry>, ApiError> {
    let request = context.request(pb::RefundRequest {
        api_key_id: id,
        usage_record_id: body.usage_record_id,
        amount: body.amount.map(Usd::to_wire),
        reason: body.reason,
    });
    let entry = state
        .admin()
        .refund(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(entry.try_into()?))
}

/// Both caps must be given: `null` clears one, so a forgotten field never clears a cap by accident.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetLimitsBody {
    /// Cap on spend per UTC day, >= 0; null = no cap.
    #[serde(deserialize_with = "Option::deserialize")]
    #[schema(required = true)]
    pub daily_limit: Option<Usd>,
    /// Cap on spend per UTC month, >= 0; null = no cap.
    #[serde(deserialize_with = "Option::deserialize")]
    #[schema(required = true)]
    pub monthly_limit: Option<Usd>,
}

/// Sets or clears the daily and monthly caps.
#[utoipa::path(
    post,
    path = "/billing/admin/{id}/limits",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's (account's) id")),
    request_body = SetLimitsBody,
    responses((status = 200, body = Account), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(key_id = %id))]
pub async fn set_limits(
    State(state): State<AppState>,
    context: CallContext,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<SetLimitsBody>,
) -> Result<Json<Account>, ApiError> {
    let request = context.request(pb::SetLimitsRequest {
        api_key_id: id,
        daily_limit: body.daily_limit.map(Usd::to_wire),
        monthly_limit: body.monthly_limit.map(Usd::to_wire),
    });
    let account = state
        .admin()
        .set_limits(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(account.try_into()?))
}

/// Any account's stats over `[from, to)`.
#[utoipa::path(
    get,
    path = "/billing/admin/{id}/stats",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's (account's) id"), RangeQuery),
    responses((status = 200, body = Stats), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(key_id = %id))]
pub async fn account_stats(
    State(state): State<AppState>,
    context: CallContext,
    PathParams(id): PathParams<String>,
    QueryParams(query): QueryParams<RangeQuery>,
) -> Result<Json<Stats>, ApiError> {
    let request = context.request(pb::GetAccountStatsRequest {
        api_key_id: id,
        range: time_range(query.from, query.to),
    });
    let stats = state
        .admin()
        .get_account_stats(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(stats.try_into()?))
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
    /// Multiplier > 0; default 1.5.
    pub markup: Option<Usd>,
    /// Default: now. Executions settled from then on use this row; recorded costs never change.
    pub effective_from: Option<Timestamp>,
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
    });
    let price = state
        .admin()
        .set_price(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok((StatusCode::CREATED, Json(price.try_into()?)))
}
