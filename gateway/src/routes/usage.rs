//! Usage: usage records and stats (the customer's own, any account's and the whole platform's for the operator) and
//! the customer's workspaces.
//!
//! Customer routes (`/billing/…`, billing.v1.AccountService) take the customer's key; operator routes
//! (`/billing/admin/…`, billing.v1.AdminService) take the `ADMIN_API_KEY`: billing-svc checks either (401
//! unknown, 403 the wrong kind of key).

use axum::Json;
use axum::extract::State;
use proto::billing::v1 as pb;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::extract::{CallContext, PathParams, QueryParams};
use crate::json::{PlatformStats, Stats, Timestamp, UsagePage, WorkspaceList};
use crate::openapi::{AdminErrors, CustomerErrors};
use crate::routes::query::{RangeQuery, ScopedRangeQuery, UsageQuery, time_range};
use crate::state::AppState;

/// Totals over `[from, to)` (all time without bounds), today and this month (UTC), by model.
#[utoipa::path(
    get,
    path = "/billing/stats",
    tag = "billing",
    security(("bearer" = [])),
    params(ScopedRangeQuery),
    responses((status = 200, body = Stats), CustomerErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn stats(
    State(state): State<AppState>,
    context: CallContext,
    QueryParams(query): QueryParams<ScopedRangeQuery>,
) -> Result<Json<Stats>, ApiError> {
    let request = context.request(pb::GetStatsRequest {
        range: time_range(query.from, query.to),
        api_key_id: query.api_key_id,
    });
    let stats = state
        .account()
        .get_stats(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(stats.try_into()?))
}

/// The caller's usage records, newest first, cursor paginated.
#[utoipa::path(
    get,
    path = "/billing/usage",
    tag = "billing",
    security(("bearer" = [])),
    params(UsageQuery),
    responses((status = 200, body = UsagePage), CustomerErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn usage(
    State(state): State<AppState>,
    context: CallContext,
    QueryParams(query): QueryParams<UsageQuery>,
) -> Result<Json<UsagePage>, ApiError> {
    let request = context.request(query.into_request()?);
    let page = state
        .account()
        .list_usage(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(page.try_into()?))
}

/// Usage and cost per workspace over `[from, to)`.
#[utoipa::path(
    get,
    path = "/billing/workspaces",
    tag = "billing",
    security(("bearer" = [])),
    params(ScopedRangeQuery),
    responses((status = 200, body = WorkspaceList), CustomerErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn workspaces(
    State(state): State<AppState>,
    context: CallContext,
    QueryParams(query): QueryParams<ScopedRangeQuery>,
) -> Result<Json<WorkspaceList>, ApiError> {
    let request = context.request(pb::ListWorkspaceUsageRequest {
        range: time_range(query.from, query.to),
        api_key_id: query.api_key_id,
    });
    let list = state
        .account()
        .list_workspace_usage(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(list.try_into()?))
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
