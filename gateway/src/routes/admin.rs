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
    Account, AccountPage, AccountWithKeys, Alerts, ApiKey, CreateWebhookBody, CreatedKey,
    DiscountTier, EventPage, GrantCategory, GrantList, KeyList, KeyPolicy, KeyType, LedgerEntry,
    PlatformStats, Price, PriceList, Redelivery, Role, Stats, Timestamp, TransactionPage,
    TransactionType, UsagePage, WebhookEndpoint, WebhookList, optional_object,
};
use crate::money::Usd;
use crate::openapi::AdminErrors;
use crate::routes::account::{RangeQuery, UsageQuery, page_limit, time_range};
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
    /// Add the key to this account (a team sharing one balance); absent = the key's own new account.
    pub account_id: Option<String>,
    /// Default: `owner` of its own account, `member` of an existing one.
    pub role: Option<Role>,
    /// The key's limits; `policy.expiresAt`, when set, wins over `expiresAt`.
    #[serde(default, deserialize_with = "optional_object")]
    pub policy: Option<KeyPolicy>,
}

/// Creates a key, with its own account or in an existing one (`accountId`); the plain `key` is in this
/// response only.
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
        account_id: body.account_id,
        role: body
            .role
            .map_or(pb::Role::Unspecified, Role::to_wire)
            .into(),
        policy: body.policy.map(KeyPolicy::to_wire),
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
    /// `paid` (default: a `credit_purchase`) or `promotional` (a `credit_grant`).
    pub category: Option<GrantCategory>,
    /// When set (in the future), what is left of the grant leaves the balance then (`credit_expiry`).
    pub expires_at: Option<Timestamp>,
    /// Lower is spent first; default 0 for promotional credit, 100 for paid.
    pub priority: Option<i64>,
}

/// Adds credits as a grant: paid (`credit_purchase`) or promotional (`credit_grant`), with an optional
/// expiry and priority; the answer carries the `grant`.
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
        category: body
            .category
            .map_or(pb::GrantCategory::Unspecified, GrantCategory::to_wire)
            .into(),
        expires_at: body.expires_at.map(|t| t.0),
        priority: body.priority,
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

/// One account's usage records, newest first, cursor paginated, with each call's usage id, key, endpoint,
/// provider, tokens by class, costs, provider cost and duration.
#[utoipa::path(
    get,
    path = "/admin/accounts/{accountId}/usage",
    tag = "admin",
    security(("bearer" = [])),
    params(("accountId" = String, Path, description = "The account's id"), UsageQuery),
    responses((status = 200, body = UsagePage), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(account_id = %account_id))]
pub async fn account_usage(
    State(state): State<AppState>,
    context: CallContext,
    PathParams(account_id): PathParams<String>,
    QueryParams(query): QueryParams<UsageQuery>,
) -> Result<Json<UsagePage>, ApiError> {
    let request = context.request(pb::ListAccountUsageRequest {
        account_id,
        query: Some(query.into_request()?),
    });
    let page = state
        .admin()
        .list_account_usage(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(page.try_into()?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct AccountTransactionQuery {
    /// Page size, 1..=1000; default 100.
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Only transactions of this type.
    #[serde(rename = "type")]
    #[param(rename = "type", inline)]
    pub kind: Option<TransactionType>,
    /// Only this key's rows (a key of the account).
    pub api_key_id: Option<String>,
}

/// One account's ledger, newest first, cursor paginated.
#[utoipa::path(
    get,
    path = "/admin/accounts/{accountId}/transactions",
    tag = "admin",
    security(("bearer" = [])),
    params(("accountId" = String, Path, description = "The account's id"), AccountTransactionQuery),
    responses((status = 200, body = TransactionPage), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(account_id = %account_id))]
pub async fn account_transactions(
    State(state): State<AppState>,
    context: CallContext,
    PathParams(account_id): PathParams<String>,
    QueryParams(query): QueryParams<AccountTransactionQuery>,
) -> Result<Json<TransactionPage>, ApiError> {
    let kind = query
        .kind
        .map_or(pb::TransactionType::Unspecified, TransactionType::to_wire);
    let request = context.request(pb::ListAccountTransactionsRequest {
        account_id,
        query: Some(pb::ListTransactionsRequest {
            limit: page_limit(query.limit)?,
            cursor: query.cursor,
            r#type: kind.into(),
        }),
        api_key_id: query.api_key_id,
    });
    let page = state
        .admin()
        .list_account_transactions(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(page.try_into()?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct PlatformStatsQuery {
    /// Inclusive lower bound, RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<Timestamp>,
    /// Exclusive upper bound, RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<Timestamp>,
    /// How many top accounts, 1..=100; default 10.
    pub top_accounts: Option<u32>,
}

/// Revenue, provider cost and margin over every account: totals, by UTC day, by model, and the top
/// accounts by revenue.
#[utoipa::path(
    get,
    path = "/admin/stats",
    tag = "admin",
    security(("bearer" = [])),
    params(PlatformStatsQuery),
    responses((status = 200, body = PlatformStats), AdminErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn platform_stats(
    State(state): State<AppState>,
    context: CallContext,
    QueryParams(query): QueryParams<PlatformStatsQuery>,
) -> Result<Json<PlatformStats>, ApiError> {
    if query.top_accounts == Some(0) {
        return Err(ApiError::InvalidRequest(
            "`topAccounts` must be between 1 and 100".into(),
        ));
    }
    let request = context.request(pb::GetPlatformStatsRequest {
        range: time_range(query.from, query.to),
        top_accounts: query.top_accounts.unwrap_or(0),
    });
    let stats = state
        .admin()
        .get_platform_stats(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(stats.try_into()?))
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateAccountBody {
    /// Replaces the account's volume tiers (BILLING.md, "Volume tiers"); `[]` removes them; absent keeps
    /// them. At most 16, thresholds distinct.
    pub discount_tiers: Option<Vec<DiscountTier>>,
}

/// Changes an account's settings: its volume tiers.
#[utoipa::path(
    patch,
    path = "/admin/accounts/{accountId}",
    tag = "admin",
    security(("bearer" = [])),
    params(("accountId" = String, Path, description = "The account's id")),
    request_body = UpdateAccountBody,
    responses((status = 200, body = Account), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(account_id = %account_id))]
pub async fn update_account(
    State(state): State<AppState>,
    context: CallContext,
    PathParams(account_id): PathParams<String>,
    JsonBody(body): JsonBody<UpdateAccountBody>,
) -> Result<Json<Account>, ApiError> {
    let request = context.request(pb::UpdateAccountRequest {
        account_id,
        discount_tiers: body.discount_tiers.map(|tiers| pb::DiscountTiers {
            tiers: tiers.iter().map(DiscountTier::to_wire).collect(),
        }),
    });
    let account = state
        .admin()
        .update_account(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(account.try_into()?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateAccountBody {
    /// 1..=100 printable characters.
    pub name: String,
}

/// Creates an empty account (a team); add keys to it with `POST /admin/keys` and `accountId`.
#[utoipa::path(
    post,
    path = "/admin/accounts",
    tag = "admin",
    security(("bearer" = [])),
    request_body = CreateAccountBody,
    responses((status = 201, body = Account), AdminErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn create_account(
    State(state): State<AppState>,
    context: CallContext,
    JsonBody(body): JsonBody<CreateAccountBody>,
) -> Result<(StatusCode, Json<Account>), ApiError> {
    let request = context.request(pb::CreateAccountRequest { name: body.name });
    let account = state
        .admin()
        .create_account(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok((StatusCode::CREATED, Json(account.try_into()?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListAccountsQuery {
    /// Page size, 1..=1000; default 100.
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// Accounts, oldest first, cursor paginated.
#[utoipa::path(
    get,
    path = "/admin/accounts",
    tag = "admin",
    security(("bearer" = [])),
    params(ListAccountsQuery),
    responses((status = 200, body = AccountPage), AdminErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn list_accounts(
    State(state): State<AppState>,
    context: CallContext,
    QueryParams(query): QueryParams<ListAccountsQuery>,
) -> Result<Json<AccountPage>, ApiError> {
    let request = context.request(pb::ListAccountsRequest {
        limit: query.limit.unwrap_or(0),
        cursor: query.cursor,
    });
    let response = state
        .admin()
        .list_accounts(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(AccountPage {
        accounts: response
            .accounts
            .into_iter()
            .map(TryInto::try_into)
            .collect::<Result<_, _>>()?,
        next_cursor: response.next_cursor,
    }))
}

/// An account with every key (revoked ones too) and each key's spend today and this month.
#[utoipa::path(
    get,
    path = "/admin/accounts/{accountId}",
    tag = "admin",
    security(("bearer" = [])),
    params(("accountId" = String, Path, description = "The account's id (or one of its keys' id)")),
    responses((status = 200, body = AccountWithKeys), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(account_id = %account_id))]
pub async fn get_account(
    State(state): State<AppState>,
    context: CallContext,
    PathParams(account_id): PathParams<String>,
) -> Result<Json<AccountWithKeys>, ApiError> {
    let request = context.request(pb::GetAccountAdminRequest { account_id });
    let response = state
        .admin()
        .get_account(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(response.try_into()?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateKeyBody {
    pub name: Option<String>,
    pub role: Option<Role>,
    /// Replaces the key's policy whole (its `expiresAt` included); absent keeps it.
    #[serde(default, deserialize_with = "optional_object")]
    pub policy: Option<KeyPolicy>,
}

/// Changes a key's name, role or policy; applies from the key's next call.
#[utoipa::path(
    patch,
    path = "/admin/keys/{id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id")),
    request_body = UpdateKeyBody,
    responses((status = 200, body = ApiKey), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(key_id = %id))]
pub async fn update_key(
    State(state): State<AppState>,
    context: CallContext,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<UpdateKeyBody>,
) -> Result<Json<ApiKey>, ApiError> {
    let request = context.request(pb::UpdateKeyRequest {
        id,
        name: body.name,
        role: body
            .role
            .map_or(pb::Role::Unspecified, Role::to_wire)
            .into(),
        policy: body.policy.map(KeyPolicy::to_wire),
    });
    let key = state
        .admin()
        .update_key(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(key.try_into()?))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateKeyBody {
    /// How long the old secret keeps working, 0..=2592000 s (30 days); default 0 (refused at once).
    pub grace_period_secs: Option<u64>,
}

/// Issues a new secret for a key (same id, account, role and policy); the plain `key` is in this
/// response only.
#[utoipa::path(
    post,
    path = "/admin/keys/{id}/rotate",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id")),
    request_body = RotateKeyBody,
    responses((status = 201, body = CreatedKey), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(key_id = %id))]
pub async fn rotate_key(
    State(state): State<AppState>,
    context: CallContext,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<RotateKeyBody>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let request = context.request(pb::RotateKeyRequest {
        id,
        grace_period_secs: body.grace_period_secs,
    });
    let created = state
        .admin()
        .rotate_key(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok((StatusCode::CREATED, Json(created.try_into()?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct GrantsQuery {
    /// Spent and expired grants too (default false).
    pub include_spent: Option<bool>,
}

/// The credit grants of any account: live ones first, in the order they are spent.
#[utoipa::path(
    get,
    path = "/billing/admin/{id}/grants",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "A key id (its account) or an account id"), GrantsQuery),
    responses((status = 200, body = GrantList), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn grants(
    State(state): State<AppState>,
    context: CallContext,
    PathParams(id): PathParams<String>,
    QueryParams(query): QueryParams<GrantsQuery>,
) -> Result<Json<GrantList>, ApiError> {
    let request = context.request(pb::ListGrantsRequest {
        api_key_id: id,
        include_spent: query.include_spent.unwrap_or(false),
    });
    let response = state
        .admin()
        .list_grants(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(response.try_into()?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct AdminEventQuery {
    /// Only this account's events (a key id means its account).
    pub account_id: Option<String>,
    /// Only events of this type, e.g. `balance.low`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// Page size, 1..=1000; default 100.
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// Events of every account (or one), newest first.
#[utoipa::path(
    get,
    path = "/admin/events",
    tag = "admin",
    security(("bearer" = [])),
    params(AdminEventQuery),
    responses((status = 200, body = EventPage), AdminErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn events(
    State(state): State<AppState>,
    context: CallContext,
    QueryParams(query): QueryParams<AdminEventQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let request = context.request(pb::ListEventsRequest {
        account_id: query.account_id,
        r#type: query.kind,
        limit: query.limit.unwrap_or(0),
        cursor: query.cursor,
    });
    let response = state
        .admin()
        .list_events(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(response.try_into()?))
}

/// Replaces an account's `balance.low` thresholds.
#[utoipa::path(
    put,
    path = "/billing/admin/{id}/alerts",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "A key id (its account) or an account id")),
    request_body = Alerts,
    responses((status = 200, body = Alerts), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn alerts(
    State(state): State<AppState>,
    context: CallContext,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<Alerts>,
) -> Result<Json<Alerts>, ApiError> {
    let request = context.request(pb::SetAlertsRequest {
        api_key_id: id,
        low_balance: body
            .low_balance
            .iter()
            .map(|amount| amount.to_wire())
            .collect(),
    });
    let response = state
        .admin()
        .set_alerts(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(response.try_into()?))
}

/// Registers an operator webhook endpoint: it receives every account's events. The answer holds its
/// signing `secret`, shown this once.
#[utoipa::path(
    post,
    path = "/admin/webhooks",
    tag = "admin",
    security(("bearer" = [])),
    request_body = CreateWebhookBody,
    responses((status = 201, body = WebhookEndpoint), AdminErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn create_webhook(
    State(state): State<AppState>,
    context: CallContext,
    JsonBody(body): JsonBody<CreateWebhookBody>,
) -> Result<(StatusCode, Json<WebhookEndpoint>), ApiError> {
    let request = context.request(pb::CreateWebhookRequest {
        url: body.url,
        event_types: body.event_types,
    });
    let endpoint = state
        .admin()
        .create_webhook(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok((StatusCode::CREATED, Json(endpoint.try_into()?)))
}

/// The operator's webhook endpoints (never their secrets).
#[utoipa::path(
    get,
    path = "/admin/webhooks",
    tag = "admin",
    security(("bearer" = [])),
    responses((status = 200, body = WebhookList), AdminErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn list_webhooks(
    State(state): State<AppState>,
    context: CallContext,
) -> Result<Json<WebhookList>, ApiError> {
    let request = context.request(pb::ListWebhooksRequest {});
    let response = state
        .admin()
        .list_webhooks(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(response.try_into()?))
}

/// Removes an operator webhook endpoint.
#[utoipa::path(
    delete,
    path = "/admin/webhooks/{id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses((status = 204, description = "Removed"), AdminErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    context: CallContext,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let request = context.request(pb::DeleteWebhookRequest { id });
    state
        .admin()
        .delete_webhook(request)
        .await
        .map_err(ApiError::billing)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Posts one event again, now, to every enabled endpoint subscribed to it; answers the attempts.
#[utoipa::path(
    post,
    path = "/admin/events/{id}/redeliver",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The event's id (`evt_…`)")),
    responses((status = 200, body = Redelivery), AdminErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn redeliver(
    State(state): State<AppState>,
    context: CallContext,
    PathParams(id): PathParams<String>,
) -> Result<Json<Redelivery>, ApiError> {
    let request = context.request(pb::RedeliverEventRequest { event_id: id });
    let response = state
        .admin()
        .redeliver_event(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(Redelivery {
        attempts: response
            .attempts
            .into_iter()
            .map(TryInto::try_into)
            .collect::<Result<_, _>>()?,
    }))
}
