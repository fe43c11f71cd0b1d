//! An account: the customer's own (`GET /billing/account`, its `balance.low` alerts) and, for the operator, every
//! account: create, list, read with its keys, change (volume tiers, caps, alerts).
//!
//! Customer routes (`/billing/…`, billing.v1.AccountService) take the customer's key; operator routes
//! (`/billing/admin/…`, billing.v1.AdminService) take the `ADMIN_API_KEY`: billing-svc checks either (401
//! unknown, 403 the wrong kind of key).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use proto::billing::v1 as pb;
use proto::ids::{AccountId, AccountOrKeyId, ApiKeyId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Service};
use crate::extract::{CallContext, JsonBody, PathId, QueryParams};
use crate::openapi::{AdminErrors, CustomerErrors, CustomerWriteErrors};
use crate::routes::billing_call::billing;
use crate::routes::keys::json::{KeyPolicy, KeySpend, KeyType, Role};
use crate::routes::prices::DiscountTier;
use crate::state::AppState;
use crate::timestamp::Timestamp;
use crate::wire::{money, optional_money, required, time};
use money::Money;

/// A billing account: one balance shared by its keys. Seen through a key (the calling key, or the key
/// an admin path named), it also carries that key's id, type, role and policy.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub account_id: String,
    pub account_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_type: Option<KeyType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<KeyPolicy>,
    /// Always equal to the sum of the account's transactions.
    pub credits_balance: Money,
    /// Reserved by in-flight executions.
    pub held_credits: Money,
    /// Usage deductions minus refunds, over the account's life.
    pub total_spent: Money,
    /// Charged beyond every grant; the next grant pays it first (the balance is the grants' remainders
    /// minus this).
    pub overage: Money,
    /// Cap on spend per UTC day; null = no cap.
    pub daily_limit: Option<Money>,
    /// Cap on spend per UTC month; null = no cap.
    pub monthly_limit: Option<Money>,
    /// Volume discounts, lowest threshold first; empty = list prices.
    pub discount_tiers: Vec<DiscountTier>,
    /// Where the account's mail goes; null = none.
    pub email: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl TryFrom<pb::Account> for Account {
    type Error = ApiError;

    fn try_from(account: pb::Account) -> Result<Account, ApiError> {
        let b = Service::Billing;
        let key_type = match account.key_type() {
            pb::KeyType::Unspecified => None,
            key_type => Some(KeyType::from_wire(key_type)?),
        };
        Ok(Account {
            key_type,
            role: Role::from_wire(account.role()),
            policy: account.policy.map(KeyPolicy::from_wire).transpose()?,
            credits_balance: money(b, "credits_balance", &account.credits_balance)?,
            held_credits: money(b, "held_credits", &account.held_credits)?,
            total_spent: money(b, "total_spent", &account.total_spent)?,
            overage: money(b, "overage", &account.overage)?,
            daily_limit: optional_money(b, "daily_limit", account.daily_limit.as_deref())?,
            monthly_limit: optional_money(b, "monthly_limit", account.monthly_limit.as_deref())?,
            discount_tiers: account
                .discount_tiers
                .into_iter()
                .map(DiscountTier::from_wire)
                .collect::<Result<_, _>>()?,
            email: Some(account.email).filter(|email| !email.is_empty()),
            created_at: time("account.created_at", account.created_at)?,
            updated_at: time("account.updated_at", account.updated_at)?,
            api_key_id: Some(account.api_key_id).filter(|id| !id.is_empty()),
            account_id: account.account_id,
            account_name: account.name,
        })
    }
}

/// An account with its keys.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountWithKeys {
    #[serde(flatten)]
    pub account: Account,
    pub keys: Vec<KeySpend>,
}

impl TryFrom<pb::AccountWithKeys> for AccountWithKeys {
    type Error = ApiError;

    fn try_from(response: pb::AccountWithKeys) -> Result<AccountWithKeys, ApiError> {
        Ok(AccountWithKeys {
            account: required(Service::Billing, "account", response.account)?.try_into()?,
            keys: response
                .keys
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// A page of accounts, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountPage {
    pub accounts: Vec<Account>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}
/// The `balance.low` thresholds of an account: each fires once when the balance crosses below it, and
/// again only after credit brought the balance back to it or above.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Alerts {
    /// USD amounts, at most 10, each >= 0; `[]` clears them. Answered highest first.
    pub low_balance: Vec<Money>,
}

impl TryFrom<pb::Alerts> for Alerts {
    type Error = ApiError;

    fn try_from(alerts: pb::Alerts) -> Result<Alerts, ApiError> {
        Ok(Alerts {
            low_balance: alerts
                .low_balance
                .iter()
                .map(|amount| money(Service::Billing, "low_balance", amount))
                .collect::<Result<_, _>>()?,
        })
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
    let account = billing(state.account().get_account(request)).await?;
    Ok(Json(account.try_into()?))
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
            .map(|amount| amount.to_string())
            .collect(),
    });
    let response = billing(state.account().set_alerts(request)).await?;
    Ok(Json(response.try_into()?))
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
    let account = billing(state.admin().create_account(request)).await?;
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
    let response = billing(state.admin().list_accounts(request)).await?;
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
    params(("accountId" = String, Path, description = "The account's id (or one of its keys' id, a UUID)")),
    responses((status = 200, body = AccountWithKeys), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(account_id = %account_id))]
pub async fn get_account(
    State(state): State<AppState>,
    context: CallContext,
    PathId(account_id): PathId<AccountOrKeyId>,
) -> Result<Json<AccountWithKeys>, ApiError> {
    let request = context.request(pb::GetAccountAdminRequest {
        account_id: account_id.into(),
    });
    let response = billing(state.admin().get_account(request)).await?;
    Ok(Json(response.try_into()?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateAccountBody {
    /// Replaces the account's volume tiers (BILLING.md, "Volume tiers"); `[]` removes them; absent keeps
    /// them. At most 16, thresholds distinct.
    pub discount_tiers: Option<Vec<DiscountTier>>,
    /// Where the account's mail goes (BILLING.md, "Email"): low balance, depleted, the weekly usage report,
    /// statement ready; `""` removes it; absent keeps it. At most 254 characters.
    pub email: Option<String>,
}

/// Changes an account's settings: its volume tiers and email address. Both are checked before either is
/// changed.
#[utoipa::path(
    patch,
    path = "/admin/accounts/{accountId}",
    tag = "admin",
    security(("bearer" = [])),
    params(("accountId" = String, Path, description = "The account's id (a UUID)")),
    request_body = UpdateAccountBody,
    responses((status = 200, body = Account), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(account_id = %account_id))]
pub async fn update_account(
    State(state): State<AppState>,
    context: CallContext,
    PathId(account_id): PathId<AccountId>,
    JsonBody(body): JsonBody<UpdateAccountBody>,
) -> Result<Json<Account>, ApiError> {
    let request = context.request(pb::UpdateAccountRequest {
        account_id: account_id.into(),
        discount_tiers: body.discount_tiers.map(|tiers| pb::DiscountTiers {
            tiers: tiers.iter().map(DiscountTier::to_wire).collect(),
        }),
        email: body.email,
    });
    let account = billing(state.admin().update_account(request)).await?;
    Ok(Json(account.try_into()?))
}

/// Both caps must be given: `null` clears one, so a forgotten field never clears a cap by accident.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetLimitsBody {
    /// Cap on spend per UTC day, >= 0; null = no cap.
    #[serde(deserialize_with = "Option::deserialize")]
    #[schema(required = true)]
    pub daily_limit: Option<Money>,
    /// Cap on spend per UTC month, >= 0; null = no cap.
    #[serde(deserialize_with = "Option::deserialize")]
    #[schema(required = true)]
    pub monthly_limit: Option<Money>,
}

/// Sets or clears the daily and monthly caps.
#[utoipa::path(
    post,
    path = "/billing/admin/{id}/limits",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's (account's) id (a UUID)")),
    request_body = SetLimitsBody,
    responses((status = 200, body = Account), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(key_id = %id))]
pub async fn set_limits(
    State(state): State<AppState>,
    context: CallContext,
    PathId(id): PathId<ApiKeyId>,
    JsonBody(body): JsonBody<SetLimitsBody>,
) -> Result<Json<Account>, ApiError> {
    let request = context.request(pb::SetLimitsRequest {
        api_key_id: id.into(),
        daily_limit: body.daily_limit.map(|amount| amount.to_string()),
        monthly_limit: body.monthly_limit.map(|amount| amount.to_string()),
    });
    let account = billing(state.admin().set_limits(request)).await?;
    Ok(Json(account.try_into()?))
}

/// Replaces an account's `balance.low` thresholds.
#[utoipa::path(
    put,
    path = "/billing/admin/{id}/alerts",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "A key id (its account) or an account id (a UUID)")),
    request_body = Alerts,
    responses((status = 200, body = Alerts), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn admin_alerts(
    State(state): State<AppState>,
    context: CallContext,
    PathId(id): PathId<AccountOrKeyId>,
    JsonBody(body): JsonBody<Alerts>,
) -> Result<Json<Alerts>, ApiError> {
    let request = context.request(pb::SetAlertsRequest {
        api_key_id: id.into(),
        low_balance: body
            .low_balance
            .iter()
            .map(|amount| amount.to_string())
            .collect(),
    });
    let response = billing(state.admin().set_alerts(request)).await?;
    Ok(Json(response.try_into()?))
}
