//! Usage: usage records and stats (the customer's own, any account's and the whole platform's for the operator) and
//! the customer's workspaces.
//!
//! Customer routes (`/billing/…`, billing.v1.AccountService) take the customer's key; operator routes
//! (`/billing/admin/…`, billing.v1.AdminService) take the `ADMIN_API_KEY`: billing-svc checks either (401
//! unknown, 403 the wrong kind of key).

use axum::Json;
use axum::extract::State;
use proto::billing::v1 as pb;
use proto::ending::UsageStatus;
use proto::ids::{AccountId, ApiKeyId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Service};
use crate::extract::{CallContext, PathId, QueryParams};
use crate::openapi::{AdminErrors, CustomerErrors};
use crate::routes::billing_call::billing;
use crate::routes::keys::json::KeyType;
use crate::routes::query::{RangeQuery, ScopedRangeQuery, page_limit, time_range};
use crate::state::AppState;
use crate::timestamp::Timestamp;
use crate::wire::{contract, money, optional_money, required, time};
use money::Money;

/// Token counts by class inside `inputTokens` and `outputTokens` (BILLING.md, "Token classes").
#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenClasses {
    /// Prompt tokens read from the provider's prompt cache.
    pub cached_input_tokens: u64,
    /// Prompt tokens written to the cache, all lifetimes.
    pub cache_write_tokens: u64,
    /// Of `cacheWriteTokens`, those written for one hour.
    #[serde(rename = "cacheWrite1hTokens")]
    pub cache_write_1h_tokens: u64,
    /// Output tokens spent reasoning (priced as output).
    pub reasoning_tokens: u64,
    pub audio_input_tokens: u64,
    pub audio_output_tokens: u64,
}

impl TokenClasses {
    fn from_wire(classes: Option<pb::TokenClasses>) -> TokenClasses {
        classes.map_or_else(TokenClasses::default, |classes| TokenClasses {
            cached_input_tokens: classes.cached_input_tokens,
            cache_write_tokens: classes.cache_write_tokens,
            cache_write_1h_tokens: classes.cache_write_1h_tokens,
            reasoning_tokens: classes.reasoning_tokens,
            audio_input_tokens: classes.audio_input_tokens,
            audio_output_tokens: classes.audio_output_tokens,
        })
    }
}

/// One settled execution.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageRecord {
    pub id: String,
    pub api_key_id: String,
    pub execution_id: String,
    pub session_id: String,
    pub workspace_id: String,
    /// The customer's own end user the call was made for (BILLING.md, "End users"); empty for none.
    pub end_user_id: String,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
    #[serde(flatten)]
    pub classes: TokenClasses,
    pub input_cost: Money,
    pub output_cost: Money,
    /// The price row's fee per call, inside `totalCost` (= `inputCost` + `outputCost` + `requestFee`).
    pub request_fee: Money,
    pub total_cost: Money,
    /// The same usage at base prices, no markup, fee or discount: what the provider bills. Operator views
    /// only; absent on records made before it was kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_cost: Option<Money>,
    /// The volume tier's percent off that applied (0: none).
    pub discount_percent: Money,
    /// Taken from the balance: `totalCost` for standard keys, 0 for internal ones.
    pub charged: Money,
    /// By how much the charge exceeded the execution's hold.
    pub overage: Money,
    pub duration_ms: u64,
    pub status: UsageStatus,
    /// e.g. `/execute` or `/v1/chat/completions`.
    pub endpoint: String,
    /// The provider that served the call: a name of the executor's `PROVIDERS_FILE`, `default` without
    /// one (PROVIDERS.md).
    pub provider: String,
    /// How many providers were asked for it, the one that served included (more than 1 after a fallback).
    pub attempts: u32,
    pub key_type: KeyType,
    pub timestamp: Timestamp,
    /// Null unless refunded.
    pub refunded_amount: Option<Money>,
}

impl TryFrom<pb::UsageRecord> for UsageRecord {
    type Error = ApiError;

    fn try_from(record: pb::UsageRecord) -> Result<UsageRecord, ApiError> {
        let b = Service::Billing;
        Ok(UsageRecord {
            status: UsageStatus::from_wire(record.status)
                .ok_or_else(|| contract(Service::Billing, "usage status unspecified".into()))?,
            key_type: KeyType::from_wire(record.key_type())?,
            input_cost: money(b, "input_cost", &record.input_cost)?,
            output_cost: money(b, "output_cost", &record.output_cost)?,
            total_cost: money(b, "total_cost", &record.total_cost)?,
            request_fee: money(b, "request_fee", &record.request_fee)?,
            provider_cost: optional_money(b, "provider_cost", record.provider_cost.as_deref())?,
            discount_percent: money(b, "discount_percent", &record.discount_percent)?,
            classes: TokenClasses::from_wire(record.classes),
            charged: money(b, "charged", &record.charged)?,
            overage: money(b, "overage", &record.overage)?,
            refunded_amount: optional_money(
                b,
                "refunded_amount",
                record.refunded_amount.as_deref(),
            )?,
            timestamp: time("usage.timestamp", record.timestamp)?,
            id: record.id,
            api_key_id: record.api_key_id,
            execution_id: record.execution_id,
            session_id: record.session_id,
            workspace_id: record.workspace_id,
            end_user_id: record.end_user_id,
            model: record.model,
            input_tokens: record.input_tokens,
            output_tokens: record.output_tokens,
            total_tokens: record.total_tokens,
            duration_ms: record.duration_ms,
            endpoint: record.endpoint,
            provider: record.provider,
            attempts: record.attempts,
        })
    }
}

/// Aggregates over a set of usage records.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageTotals {
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
    #[serde(flatten)]
    pub classes: TokenClasses,
    /// Cost of the usage, charged or not: the revenue.
    pub total_cost: Money,
    /// Operator views only: the usage at base prices (over the records that keep it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_cost: Option<Money>,
    /// Operator views only: `totalCost − providerCost` over the records that keep a provider cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub margin: Option<Money>,
}

impl TryFrom<Option<pb::UsageTotals>> for UsageTotals {
    type Error = ApiError;

    fn try_from(totals: Option<pb::UsageTotals>) -> Result<UsageTotals, ApiError> {
        let totals = required(Service::Billing, "totals", totals)?;
        Ok(UsageTotals {
            requests: totals.requests,
            input_tokens: totals.input_tokens,
            output_tokens: totals.output_tokens,
            total_tokens: totals.total_tokens,
            total_cost: money(Service::Billing, "total_cost", &totals.total_cost)?,
            provider_cost: Some(totals.provider_cost.as_str())
                .filter(|cost| !cost.is_empty())
                .map(|cost| money(Service::Billing, "provider_cost", cost))
                .transpose()?,
            margin: Some(totals.margin.as_str())
                .filter(|margin| !margin.is_empty())
                .map(|margin| money(Service::Billing, "margin", margin))
                .transpose()?,
            classes: TokenClasses::from_wire(totals.classes),
        })
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelUsage {
    pub model: String,
    pub totals: UsageTotals,
}

/// Every entry of a wire list in its JSON shape.
fn each<W, J: TryFrom<W, Error = ApiError>>(entries: Vec<W>) -> Result<Vec<J>, ApiError> {
    entries.into_iter().map(J::try_from).collect()
}

impl TryFrom<pb::ModelUsage> for ModelUsage {
    type Error = ApiError;

    fn try_from(entry: pb::ModelUsage) -> Result<ModelUsage, ApiError> {
        Ok(ModelUsage {
            totals: entry.totals.try_into()?,
            model: entry.model,
        })
    }
}

impl TryFrom<pb::DayUsage> for DayUsage {
    type Error = ApiError;

    fn try_from(entry: pb::DayUsage) -> Result<DayUsage, ApiError> {
        Ok(DayUsage {
            totals: entry.totals.try_into()?,
            day: entry.day,
        })
    }
}

impl TryFrom<pb::EndUserUsage> for EndUserUsage {
    type Error = ApiError;

    fn try_from(entry: pb::EndUserUsage) -> Result<EndUserUsage, ApiError> {
        Ok(EndUserUsage {
            totals: entry.totals.try_into()?,
            end_user_id: entry.end_user_id,
        })
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndUserUsage {
    /// Empty: the calls that named no end user.
    pub end_user_id: String,
    pub totals: UsageTotals,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DayUsage {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub totals: UsageTotals,
}

/// Statistics of one account.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub api_key_id: String,
    /// Over the requested range (all time without `from`/`to`).
    pub totals: UsageTotals,
    /// The current UTC day.
    pub today: UsageTotals,
    /// The current UTC month.
    pub this_month: UsageTotals,
    /// Over the requested range, by model name.
    pub by_model: Vec<ModelUsage>,
    /// Over the requested range, by UTC day with usage, oldest first.
    pub by_day: Vec<DayUsage>,
    /// Over the requested range, the 100 end users with the highest total cost, highest first.
    pub by_end_user: Vec<EndUserUsage>,
    pub credits_balance: Money,
    pub total_spent: Money,
    /// Where the current UTC month's spend is heading (of the key when one is named).
    pub forecast: Forecast,
}

/// The month's net spend so far, the last seven days' (the run rate), and the month's spend if that rate
/// holds to its end (BILLING.md, "Forecast"): an estimate.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Forecast {
    pub month_to_date: Money,
    #[serde(rename = "last7Days")]
    pub last_7_days: Money,
    pub month_end: Money,
}

impl TryFrom<pb::Stats> for Stats {
    type Error = ApiError;

    fn try_from(stats: pb::Stats) -> Result<Stats, ApiError> {
        let b = Service::Billing;
        Ok(Stats {
            totals: stats.totals.try_into()?,
            today: stats.today.try_into()?,
            this_month: stats.this_month.try_into()?,
            by_model: each(stats.by_model)?,
            by_day: each(stats.by_day)?,
            by_end_user: each(stats.by_end_user)?,
            credits_balance: money(b, "credits_balance", &stats.credits_balance)?,
            total_spent: money(b, "total_spent", &stats.total_spent)?,
            forecast: {
                let forecast = required(b, "forecast", stats.forecast)?;
                Forecast {
                    month_to_date: money(b, "month_to_date", &forecast.month_to_date)?,
                    last_7_days: money(b, "last_7_days", &forecast.last_7_days)?,
                    month_end: money(b, "month_end", &forecast.month_end)?,
                }
            },
            api_key_id: stats.api_key_id,
        })
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceUsage {
    pub workspace_id: String,
    pub totals: UsageTotals,
}

/// Usage and cost per workspace.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceList {
    pub workspaces: Vec<WorkspaceUsage>,
}

impl TryFrom<pb::ListWorkspaceUsageResponse> for WorkspaceList {
    type Error = ApiError;

    fn try_from(response: pb::ListWorkspaceUsageResponse) -> Result<WorkspaceList, ApiError> {
        let workspaces = response
            .workspaces
            .into_iter()
            .map(|entry| {
                Ok(WorkspaceUsage {
                    totals: entry.totals.try_into()?,
                    workspace_id: entry.workspace_id,
                })
            })
            .collect::<Result<_, ApiError>>()?;
        Ok(WorkspaceList { workspaces })
    }
}

/// A page of usage records, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsagePage {
    pub records: Vec<UsageRecord>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl TryFrom<pb::ListUsageResponse> for UsagePage {
    type Error = ApiError;

    fn try_from(response: pb::ListUsageResponse) -> Result<UsagePage, ApiError> {
        Ok(UsagePage {
            records: response
                .records
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
            next_cursor: response.next_cursor,
        })
    }
}

/// The usage of one account, named.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountUsage {
    pub account_id: String,
    pub name: String,
    pub totals: UsageTotals,
}

/// Every account's usage over a range, with provider cost and margin (the operator's overview).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformStats {
    pub totals: UsageTotals,
    /// By UTC day with usage, oldest first.
    pub by_day: Vec<DayUsage>,
    pub by_model: Vec<ModelUsage>,
    /// Highest revenue first.
    pub top_accounts: Vec<AccountUsage>,
}

impl TryFrom<pb::PlatformStats> for PlatformStats {
    type Error = ApiError;

    fn try_from(stats: pb::PlatformStats) -> Result<PlatformStats, ApiError> {
        Ok(PlatformStats {
            totals: stats.totals.try_into()?,
            by_day: each(stats.by_day)?,
            by_model: each(stats.by_model)?,
            top_accounts: stats
                .top_accounts
                .into_iter()
                .map(|entry| {
                    Ok(AccountUsage {
                        totals: entry.totals.try_into()?,
                        account_id: entry.account_id,
                        name: entry.name,
                    })
                })
                .collect::<Result<_, ApiError>>()?,
        })
    }
}

/// A page of usage records and its filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct UsageQuery {
    /// Page size, 1..=1000; default 100.
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Inclusive lower bound, RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<Timestamp>,
    /// Exclusive upper bound, RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<Timestamp>,
    /// Only this workspace's records.
    pub workspace_id: Option<String>,
    /// Only this model's records.
    pub model: Option<String>,
    /// Only this key's records (a key of the account; a member key sees only its own anyway).
    pub api_key_id: Option<String>,
    /// Only records that ended this way.
    #[param(inline)]
    pub status: Option<UsageStatus>,
    /// Only this end user's records (`endUserId=` with no value: the records that named none).
    pub end_user_id: Option<String>,
}

impl UsageQuery {
    /// The listing as billing.v1 takes it.
    pub fn into_request(self) -> Result<pb::ListUsageRequest, ApiError> {
        Ok(pb::ListUsageRequest {
            limit: page_limit(self.limit)?,
            cursor: self.cursor,
            range: time_range(self.from, self.to),
            workspace_id: self.workspace_id,
            model: self.model,
            api_key_id: self.api_key_id,
            status: self
                .status
                .map_or(pb::UsageStatus::Unspecified, pb::UsageStatus::from)
                .into(),
            end_user_id: self.end_user_id,
        })
    }
}

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
    let stats = billing(state.account().get_stats(request)).await?;
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
    let page = billing(state.account().list_usage(request)).await?;
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
    let list = billing(state.account().list_workspace_usage(request)).await?;
    Ok(Json(list.try_into()?))
}

/// One account's usage records, newest first, cursor paginated, with each call's usage id, key, endpoint,
/// provider, tokens by class, costs, provider cost and duration.
#[utoipa::path(
    get,
    path = "/admin/accounts/{accountId}/usage",
    tag = "admin",
    security(("bearer" = [])),
    params(("accountId" = String, Path, description = "The account's id (a UUID)"), UsageQuery),
    responses((status = 200, body = UsagePage), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(account_id = %account_id))]
pub async fn account_usage(
    State(state): State<AppState>,
    context: CallContext,
    PathId(account_id): PathId<AccountId>,
    QueryParams(query): QueryParams<UsageQuery>,
) -> Result<Json<UsagePage>, ApiError> {
    let request = context.request(pb::ListAccountUsageRequest {
        account_id: account_id.into(),
        query: Some(query.into_request()?),
    });
    let page = billing(state.admin().list_account_usage(request)).await?;
    Ok(Json(page.try_into()?))
}

/// Any account's stats over `[from, to)`.
#[utoipa::path(
    get,
    path = "/billing/admin/{id}/stats",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's (account's) id (a UUID)"), RangeQuery),
    responses((status = 200, body = Stats), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(key_id = %id))]
pub async fn account_stats(
    State(state): State<AppState>,
    context: CallContext,
    PathId(id): PathId<ApiKeyId>,
    QueryParams(query): QueryParams<RangeQuery>,
) -> Result<Json<Stats>, ApiError> {
    let request = context.request(pb::GetAccountStatsRequest {
        api_key_id: id.into(),
        range: time_range(query.from, query.to),
    });
    let stats = billing(state.admin().get_account_stats(request)).await?;
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
    let stats = billing(state.admin().get_platform_stats(request)).await?;
    Ok(Json(stats.try_into()?))
}
