//! Credit and the ledger: credit grants and ledger rows (the customer's own, any account's for the operator), and
//! the operator's credits, adjustments and refunds.
//!
//! Customer routes (`/billing/…`, billing.v1.AccountService) take the customer's key; operator routes
//! (`/billing/admin/…`, billing.v1.AdminService) take the `ADMIN_API_KEY`: billing-svc checks either (401
//! unknown, 403 the wrong kind of key).

use axum::Json;
use axum::extract::State;
use proto::billing::v1 as pb;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{CallContext, JsonBody, PathParams, QueryParams};
use crate::json::{
    GrantCategory, GrantList, LedgerEntry, Timestamp, TransactionPage, TransactionType,
};
use crate::money::Usd;
use crate::openapi::{AdminErrors, CustomerErrors};
use crate::routes::query::{GrantsQuery, page_limit};
use crate::state::AppState;

/// The caller's account's credit grants: live ones first, in the order they are spent; `includeSpent`
/// adds the spent and expired ones.
#[utoipa::path(
    get,
    path = "/billing/grants",
    tag = "billing",
    security(("bearer" = [])),
    params(GrantsQuery),
    responses((status = 200, body = GrantList), CustomerErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn grants(
    State(state): State<AppState>,
    context: CallContext,
    QueryParams(query): QueryParams<GrantsQuery>,
) -> Result<Json<GrantList>, ApiError> {
    let request = context.request(pb::ListAccountGrantsRequest {
        include_spent: query.include_spent.unwrap_or(false),
    });
    let response = state
        .account()
        .list_grants(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(response.try_into()?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TransactionQuery {
    /// Page size, 1..=1000; default 100.
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Only transactions of this type.
    #[serde(rename = "type")]
    #[param(rename = "type", inline)]
    pub kind: Option<TransactionType>,
}

/// The caller's ledger, newest first, cursor paginated.
#[utoipa::path(
    get,
    path = "/billing/transactions",
    tag = "billing",
    security(("bearer" = [])),
    params(TransactionQuery),
    responses((status = 200, body = TransactionPage), CustomerErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn transactions(
    State(state): State<AppState>,
    context: CallContext,
    QueryParams(query): QueryParams<TransactionQuery>,
) -> Result<Json<TransactionPage>, ApiError> {
    let kind = query
        .kind
        .map_or(pb::TransactionType::Unspecified, TransactionType::to_wire);
    let request = context.request(pb::ListTransactionsRequest {
        limit: page_limit(query.limit)?,
        cursor: query.cursor,
        r#type: kind.into(),
    });
    let page = state
        .account()
        .list_transactions(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(page.try_into()?))
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
pub async fn admin_grants(
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
