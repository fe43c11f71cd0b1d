//! `/billing/*`: a customer's view of its own account (billing.v1.AccountService), authenticated by the
//! customer's key.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use proto::billing::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{CallContext, JsonBody, PathParams, QueryParams};
use crate::json::{
    Account, AccountPriceList, Alerts, AutoRecharge, AutoRechargeBody, CreateWebhookBody,
    EventPage, GrantList, KeySpendList, Stats, Timestamp, TransactionPage, TransactionType,
    UsagePage, UsageStatus, WebhookEndpoint, WebhookList, WorkspaceList,
};
use crate::money::Usd;
use crate::openapi::{CustomerErrors, CustomerWriteErrors};
use crate::routes::admin::GrantsQuery;
use crate::state::AppState;

/// The most records one page may hold.
pub const MAX_PAGE_LIMIT: u32 = 1000;

/// A time filter: `[from, to)`, either end optional.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// Inclusive lower bound, RFC 3339 (e.g. `2025-01-01T00:00:00Z`).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<Timestamp>,
    /// Exclusive upper bound, RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<Timestamp>,
}

/// A time filter and, for an owner key, one of its account's keys (API_KEY_MANAGEMENT.md, "Teams: one
/// balance, many keys": a member key always sees only itself).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ScopedRangeQuery {
    /// Inclusive lower bound, RFC 3339 (e.g. `2025-01-01T00:00:00Z`).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<Timestamp>,
    /// Exclusive upper bound, RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<Timestamp>,
    /// Owner keys: only this key's usage.
    pub api_key_id: Option<String>,
}

/// The gRPC time range of optional bounds (absent when both are).
pub fn time_range(from: Option<Timestamp>, to: Option<Timestamp>) -> Option<pb::TimeRange> {
    if from.is_none() && to.is_none() {
        return None;
    }
    Some(pb::TimeRange {
        from: from.map(|t| t.0),
        to: to.map(|t| t.0),
    })
}

/// `limit` is optional (billing's default, 100) and else 1..=1000.
pub fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(0),
        Some(limit) if (1..=MAX_PAGE_LIMIT).contains(&limit) => Ok(limit),
        Some(limit) => Err(ApiError::InvalidRequest(format!(
            "`limit` must be between 1 and {MAX_PAGE_LIMIT}, got {limit}"
        ))),
    }
}

/// The caller's account.
#[utoipa::path(
    get,
    path = "/billing/account",
    tag = "billing",
    security(("bearer" = [])),
    responses((status = 200, body = Account), CustomerErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn account(
    State(state): State<AppState>,
    context: CallContext,
) -> Result<Json<Account>, ApiError> {
    let request = context.request(pb::GetAccountRequest {});
    let account = state
        .account()
        .get_account(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(account.try_into()?))
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
    let stats = state
        .account()
        .get_stats(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(stats.try_into()?))
}

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
                .map_or(pb::UsageStatus::Unspecified, UsageStatus::to_wire)
                .into(),
            end_user_id: self.end_user_id,
        })
    }
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

/// The keys the caller may see: an owner every live key of its account, a member itself; each with its
/// spend today and this month (UTC).
#[utoipa::path(
    get,
    path = "/billing/keys",
    tag = "billing",
    security(("bearer" = [])),
    responses((status = 200, body = KeySpendList), CustomerErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn keys(
    State(state): State<AppState>,
    context: CallContext,
) -> Result<Json<KeySpendList>, ApiError> {
    let request = context.request(pb::ListAccountKeysRequest {});
    let response = state
        .account()
        .list_keys(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    let keys = response
        .keys
        .into_iter()
        .map(TryInto::try_into)
        .collect::<Result<_, _>>()?;
    Ok(Json(KeySpendList { keys }))
}

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
#[serde(rename_all = "camelCase")]
pub struct EventQuery {
    /// Only events of this type, e.g. `balance.low`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// Page size, 1..=1000; default 100.
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// The account's events (credits, expiries, low balance, cut-offs, key changes), newest first.
#[utoipa::path(
    get,
    path = "/billing/events",
    tag = "billing",
    security(("bearer" = [])),
    params(EventQuery),
    responses((status = 200, body = EventPage), CustomerErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn events(
    State(state): State<AppState>,
    context: CallContext,
    QueryParams(query): QueryParams<EventQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let request = context.request(pb::ListAccountEventsRequest {
        r#type: query.kind,
        limit: page_limit(query.limit)?,
        cursor: query.cursor,
    });
    let response = state
        .account()
        .list_events(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(response.try_into()?))
}

/// Replaces the account's `balance.low` thresholds (owner keys only).
#[utoipa::path(
    put,
    path = "/billing/alerts",
    tag = "billing",
    security(("bearer" = [])),
    request_body = Alerts,
    responses((status = 200, body = Alerts), CustomerWriteErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn alerts(
    State(state): State<AppState>,
    context: CallContext,
    JsonBody(body): JsonBody<Alerts>,
) -> Result<Json<Alerts>, ApiError> {
    let request = context.request(pb::SetAccountAlertsRequest {
        low_balance: body
            .low_balance
            .iter()
            .map(|amount| amount.to_wire())
            .collect(),
    });
    let response = state
        .account()
        .set_alerts(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(response.try_into()?))
}

/// Registers a webhook endpoint for the account's events (owner keys only); the answer holds its signing
/// `secret`, shown this once.
#[utoipa::path(
    post,
    path = "/billing/webhooks",
    tag = "billing",
    security(("bearer" = [])),
    request_body = CreateWebhookBody,
    responses((status = 201, body = WebhookEndpoint), CustomerWriteErrors)
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
        .account()
        .create_webhook(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok((StatusCode::CREATED, Json(endpoint.try_into()?)))
}

/// The account's webhook endpoints (never their secrets; owner keys only).
#[utoipa::path(
    get,
    path = "/billing/webhooks",
    tag = "billing",
    security(("bearer" = [])),
    responses((status = 200, body = WebhookList), CustomerWriteErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn list_webhooks(
    State(state): State<AppState>,
    context: CallContext,
) -> Result<Json<WebhookList>, ApiError> {
    let request = context.request(pb::ListWebhooksRequest {});
    let response = state
        .account()
        .list_webhooks(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(response.try_into()?))
}

/// Removes one of the account's webhook endpoints (owner keys only).
#[utoipa::path(
    delete,
    path = "/billing/webhooks/{id}",
    tag = "billing",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses((status = 204, description = "Removed"), CustomerWriteErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    context: CallContext,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let request = context.request(pb::DeleteWebhookRequest { id });
    state
        .account()
        .delete_webhook(request)
        .await
        .map_err(ApiError::billing)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A top-up through Stripe Checkout.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckoutBody {
    /// USD, whole cents, 0.50..=100000.
    pub amount: Usd,
}

/// Where to pay a top-up.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Checkout {
    /// Send the customer here; the credit lands when Stripe reports the payment.
    pub checkout_url: String,
    pub session_id: String,
}

/// Starts a top-up through Stripe Checkout (owner keys only); 404 `payments_not_configured` without
/// Stripe settings.
#[utoipa::path(
    post,
    path = "/billing/checkout",
    tag = "billing",
    security(("bearer" = [])),
    request_body = CheckoutBody,
    responses((status = 201, body = Checkout), CustomerWriteErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn checkout(
    State(state): State<AppState>,
    context: CallContext,
    JsonBody(body): JsonBody<CheckoutBody>,
) -> Result<(StatusCode, Json<Checkout>), ApiError> {
    let request = context.request(pb::CreateCheckoutRequest {
        amount: body.amount.to_wire(),
    });
    let session = state
        .account()
        .create_checkout(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        Json(Checkout {
            checkout_url: session.checkout_url,
            session_id: session.session_id,
        }),
    ))
}

/// Sets auto-recharge (owner keys only). Turning it on needs a card saved by a Checkout payment (409
/// otherwise); 404 `payments_not_configured` without Stripe settings.
#[utoipa::path(
    put,
    path = "/billing/auto-recharge",
    tag = "billing",
    security(("bearer" = [])),
    request_body = AutoRechargeBody,
    responses((status = 200, body = AutoRecharge), CustomerWriteErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn set_auto_recharge(
    State(state): State<AppState>,
    context: CallContext,
    JsonBody(body): JsonBody<AutoRechargeBody>,
) -> Result<Json<AutoRecharge>, ApiError> {
    let request = context.request(pb::SetAutoRechargeRequest {
        enabled: body.enabled,
        threshold: body.threshold.to_wire(),
        amount: body.amount.to_wire(),
        monthly_max: body.monthly_max.to_wire(),
    });
    let recharge = state
        .account()
        .set_auto_recharge(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(recharge.try_into()?))
}

/// Auto-recharge's settings, where it stands and its latest charges (owner keys only).
#[utoipa::path(
    get,
    path = "/billing/auto-recharge",
    tag = "billing",
    security(("bearer" = [])),
    responses((status = 200, body = AutoRecharge), CustomerWriteErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn get_auto_recharge(
    State(state): State<AppState>,
    context: CallContext,
) -> Result<Json<AutoRecharge>, ApiError> {
    let request = context.request(pb::GetAutoRechargeRequest {});
    let recharge = state
        .account()
        .get_auto_recharge(request)
        .await
        .map_err(ApiError::billing)?
        .into_inner();
    Ok(Json(recharge.try_into()?))
}
