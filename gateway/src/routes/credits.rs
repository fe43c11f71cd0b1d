//! Credit and the ledger: credit grants and ledger rows (the customer's own, any account's for the operator), and
//! the operator's credits, adjustments and refunds.
//!
//! Customer routes (`/billing/…`, billing.v1.AccountService) take the customer's key; operator routes
//! (`/billing/admin/…`, billing.v1.AdminService) take the `ADMIN_API_KEY`: billing-svc checks either (401
//! unknown, 403 the wrong kind of key).

use axum::Json;
use axum::extract::State;
use proto::billing::v1 as pb;
use proto::ids::{AccountId, AccountOrKeyId, ApiKeyId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Service};
use crate::extract::{CallContext, JsonBody, PathId, QueryParams};
use crate::openapi::{AdminErrors, CustomerErrors};
use crate::routes::accounts::Account;
use crate::routes::billing_call::billing;
use crate::routes::query::{GrantsQuery, page_limit};
use crate::state::AppState;
use crate::timestamp::Timestamp;
use crate::wire::{contract, money, required, time};
use money::Money;

/// The kind of a ledger transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransactionType {
    /// Credits bought (positive).
    CreditPurchase,
    /// The charge of one settled execution (negative).
    UsageDeduction,
    /// An operator's correction, either sign.
    CreditAdjustment,
    /// Money given back for a usage record (positive); it comes back as a paid grant.
    Refund,
    /// A promotional grant (positive).
    CreditGrant,
    /// The remainder of a grant leaving at its expiry (negative).
    CreditExpiry,
}

impl TransactionType {
    fn from_wire(value: pb::TransactionType) -> Result<TransactionType, ApiError> {
        match value {
            pb::TransactionType::CreditPurchase => Ok(TransactionType::CreditPurchase),
            pb::TransactionType::UsageDeduction => Ok(TransactionType::UsageDeduction),
            pb::TransactionType::CreditAdjustment => Ok(TransactionType::CreditAdjustment),
            pb::TransactionType::Refund => Ok(TransactionType::Refund),
            pb::TransactionType::CreditGrant => Ok(TransactionType::CreditGrant),
            pb::TransactionType::CreditExpiry => Ok(TransactionType::CreditExpiry),
            pb::TransactionType::Unspecified => Err(contract(
                Service::Billing,
                "transaction type unspecified".into(),
            )),
        }
    }

    pub fn to_wire(self) -> pb::TransactionType {
        match self {
            TransactionType::CreditPurchase => pb::TransactionType::CreditPurchase,
            TransactionType::UsageDeduction => pb::TransactionType::UsageDeduction,
            TransactionType::CreditAdjustment => pb::TransactionType::CreditAdjustment,
            TransactionType::Refund => pb::TransactionType::Refund,
            TransactionType::CreditGrant => pb::TransactionType::CreditGrant,
            TransactionType::CreditExpiry => pb::TransactionType::CreditExpiry,
        }
    }
}

/// One ledger row; the balance moved by exactly `amount`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    pub id: String,
    pub api_key_id: String,
    #[serde(rename = "type")]
    pub kind: TransactionType,
    /// Signed.
    pub amount: Money,
    pub balance_after: Money,
    pub total_spent_after: Money,
    pub description: String,
    /// Free-form JSON object: e.g. a deduction's `execution_id` and the `grants` that paid it
    /// (`[{"grant_id", "amount"}]`, in the order they were drawn), an expiry's `grant_id`.
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub timestamp: Timestamp,
    pub idempotency_key: Option<String>,
    /// The hash chain (DESIGN §19): the account's previous row's hash (64 zeros for its first) and this
    /// row's, SHA-256 in lower-case hex.
    pub prev_hash: String,
    pub hash: String,
}

impl TryFrom<pb::Transaction> for Transaction {
    type Error = ApiError;

    fn try_from(transaction: pb::Transaction) -> Result<Transaction, ApiError> {
        let b = Service::Billing;
        let metadata = if transaction.metadata_json.is_empty() {
            Value::Object(serde_json::Map::new())
        } else {
            serde_json::from_str(&transaction.metadata_json)
                .map_err(|error| contract(b, format!("metadata_json: {error}")))?
        };
        Ok(Transaction {
            kind: TransactionType::from_wire(transaction.r#type())?,
            amount: money(b, "amount", &transaction.amount)?,
            balance_after: money(b, "balance_after", &transaction.balance_after)?,
            total_spent_after: money(b, "total_spent_after", &transaction.total_spent_after)?,
            timestamp: time("transaction.timestamp", transaction.timestamp)?,
            metadata,
            id: transaction.id,
            api_key_id: transaction.api_key_id,
            description: transaction.description,
            idempotency_key: transaction.idempotency_key,
            prev_hash: transaction.prev_hash,
            hash: transaction.hash,
        })
    }
}

/// The result of a ledger write: the transaction, the account right after it, and the grant it brought
/// in (credits, positive adjustments and refunds).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    pub transaction: Transaction,
    pub account: Account,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<Grant>,
}

/// What kind of credit a grant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantCategory {
    /// Bought credit (`credit_purchase`); spent after promotional credit by default.
    Paid,
    /// Given credit (`credit_grant`), e.g. a trial; spent first by default.
    Promotional,
}

impl GrantCategory {
    pub fn to_wire(self) -> pb::GrantCategory {
        match self {
            GrantCategory::Paid => pb::GrantCategory::Paid,
            GrantCategory::Promotional => pb::GrantCategory::Promotional,
        }
    }
}

/// A lot of credit (BILLING.md, "Credit grants"). The balance is what the grants have left minus the
/// account's overage.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    pub id: String,
    pub account_id: String,
    pub category: GrantCategory,
    pub amount: Money,
    /// Not yet spent nor expired.
    pub remaining: Money,
    /// Lower is spent first.
    pub priority: i64,
    /// Null = never expires.
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    /// The ledger row that brought it in (null for a balance migrated into a grant).
    pub transaction_id: Option<String>,
    /// When its remainder expired.
    pub expired_at: Option<Timestamp>,
}

impl TryFrom<pb::CreditGrant> for Grant {
    type Error = ApiError;

    fn try_from(grant: pb::CreditGrant) -> Result<Grant, ApiError> {
        let b = Service::Billing;
        let category = match grant.category() {
            pb::GrantCategory::Paid => GrantCategory::Paid,
            pb::GrantCategory::Promotional => GrantCategory::Promotional,
            pb::GrantCategory::Unspecified => {
                return Err(contract(b, "grant category unspecified".into()));
            }
        };
        Ok(Grant {
            category,
            amount: money(b, "grant.amount", &grant.amount)?,
            remaining: money(b, "grant.remaining", &grant.remaining)?,
            created_at: time("grant.created_at", grant.created_at)?,
            expires_at: grant.expires_at.map(Timestamp),
            expired_at: grant.expired_at.map(Timestamp),
            id: grant.id,
            account_id: grant.account_id,
            priority: grant.priority,
            transaction_id: grant.transaction_id,
        })
    }
}

/// An account's grants: those holding credit first, in the order they are spent; then spent and expired
/// ones (with `includeSpent`), newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantList {
    pub grants: Vec<Grant>,
}

impl TryFrom<pb::ListGrantsResponse> for GrantList {
    type Error = ApiError;

    fn try_from(response: pb::ListGrantsResponse) -> Result<GrantList, ApiError> {
        Ok(GrantList {
            grants: response
                .grants
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
        })
    }
}

impl TryFrom<pb::LedgerResponse> for LedgerEntry {
    type Error = ApiError;

    fn try_from(response: pb::LedgerResponse) -> Result<LedgerEntry, ApiError> {
        Ok(LedgerEntry {
            transaction: required(Service::Billing, "transaction", response.transaction)?
                .try_into()?,
            account: required(Service::Billing, "account", response.account)?.try_into()?,
            grant: response.grant.map(TryInto::try_into).transpose()?,
        })
    }
}

/// A page of ledger transactions, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransactionPage {
    pub transactions: Vec<Transaction>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl TryFrom<pb::ListTransactionsResponse> for TransactionPage {
    type Error = ApiError;

    fn try_from(response: pb::ListTransactionsResponse) -> Result<TransactionPage, ApiError> {
        Ok(TransactionPage {
            transactions: response
                .transactions
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
            next_cursor: response.next_cursor,
        })
    }
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
    let response = billing(state.account().list_grants(request)).await?;
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

/// Where the caller's account's hash chain ends: its latest ledger row and that row's hash.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerHead {
    pub account_id: String,
    /// Null before the account's first ledger row.
    pub transaction_id: Option<String>,
    /// SHA-256 in lower-case hex; 64 zeros before the first row.
    pub hash: String,
}

/// The caller's account's ledger head (DESIGN §19): keep it, and a later ledger that does not chain to it
/// was rewritten.
#[utoipa::path(
    get,
    path = "/billing/ledger/head",
    tag = "billing",
    security(("bearer" = [])),
    responses((status = 200, body = LedgerHead), CustomerErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn ledger_head(
    State(state): State<AppState>,
    context: CallContext,
) -> Result<Json<LedgerHead>, ApiError> {
    let request = context.request(pb::GetLedgerHeadRequest {});
    let head = billing(state.account().get_ledger_head(request)).await?;
    Ok(Json(LedgerHead {
        account_id: head.account_id,
        transaction_id: head.transaction_id,
        hash: head.hash,
    }))
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
    let page = billing(state.account().list_transactions(request)).await?;
    Ok(Json(page.try_into()?))
}

/// The credit grants of any account: live ones first, in the order they are spent.
#[utoipa::path(
    get,
    path = "/billing/admin/{id}/grants",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "A key id (its account) or an account id (a UUID)"), GrantsQuery),
    responses((status = 200, body = GrantList), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn admin_grants(
    State(state): State<AppState>,
    context: CallContext,
    PathId(id): PathId<AccountOrKeyId>,
    QueryParams(query): QueryParams<GrantsQuery>,
) -> Result<Json<GrantList>, ApiError> {
    let request = context.request(pb::ListGrantsRequest {
        api_key_id: id.into(),
        include_spent: query.include_spent.unwrap_or(false),
    });
    let response = billing(state.admin().list_grants(request)).await?;
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
    params(("accountId" = String, Path, description = "The account's id (a UUID)"), AccountTransactionQuery),
    responses((status = 200, body = TransactionPage), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(account_id = %account_id))]
pub async fn account_transactions(
    State(state): State<AppState>,
    context: CallContext,
    PathId(account_id): PathId<AccountId>,
    QueryParams(query): QueryParams<AccountTransactionQuery>,
) -> Result<Json<TransactionPage>, ApiError> {
    let kind = query
        .kind
        .map_or(pb::TransactionType::Unspecified, TransactionType::to_wire);
    let request = context.request(pb::ListAccountTransactionsRequest {
        account_id: account_id.into(),
        query: Some(pb::ListTransactionsRequest {
            limit: page_limit(query.limit)?,
            cursor: query.cursor,
            r#type: kind.into(),
        }),
        api_key_id: query.api_key_id,
    });
    let page = billing(state.admin().list_account_transactions(request)).await?;
    Ok(Json(page.try_into()?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddCreditsBody {
    /// > 0; a JSON number or a decimal string, at most 9 decimals, kept exact.
    pub amount: Money,
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
    params(("id" = String, Path, description = "The key's (account's) id (a UUID)")),
    request_body = AddCreditsBody,
    responses((status = 200, body = LedgerEntry), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(key_id = %id))]
pub async fn add_credits(
    State(state): State<AppState>,
    context: CallContext,
    PathId(id): PathId<ApiKeyId>,
    JsonBody(body): JsonBody<AddCreditsBody>,
) -> Result<Json<LedgerEntry>, ApiError> {
    let request = context.request(pb::AddCreditsRequest {
        api_key_id: id.into(),
        amount: body.amount.to_string(),
        description: body.description,
        idempotency_key: body.idempotency_key,
        category: body
            .category
            .map_or(pb::GrantCategory::Unspecified, GrantCategory::to_wire)
            .into(),
        expires_at: body.expires_at.map(|t| t.0),
        priority: body.priority,
    });
    let entry = billing(state.admin().add_credits(request)).await?;
    Ok(Json(entry.try_into()?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdjustCreditsBody {
    /// Non-zero, either sign.
    pub amount: Money,
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
    params(("id" = String, Path, description = "The key's (account's) id (a UUID)")),
    request_body = AdjustCreditsBody,
    responses((status = 200, body = LedgerEntry), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(key_id = %id))]
pub async fn adjust_credits(
    State(state): State<AppState>,
    context: CallContext,
    PathId(id): PathId<ApiKeyId>,
    JsonBody(body): JsonBody<AdjustCreditsBody>,
) -> Result<Json<LedgerEntry>, ApiError> {
    let request = context.request(pb::AdjustCreditsRequest {
        api_key_id: id.into(),
        amount: body.amount.to_string(),
        reason: body.reason,
        idempotency_key: body.idempotency_key,
    });
    let entry = billing(state.admin().adjust_credits(request)).await?;
    Ok(Json(entry.try_into()?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefundBody {
    /// The usage record to refund.
    pub usage_record_id: String,
    /// > 0 and at most what is left to refund; absent = the whole charge.
    pub amount: Option<Money>,
    pub reason: Option<String>,
}

/// Refunds a usage record, at most what it was charged. More than that is a 409 `failed_precondition`.
#[utoipa::path(
    post,
    path = "/billing/admin/{id}/refunds",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's (account's) id (a UUID)")),
    request_body = RefundBody,
    responses((status = 200, body = LedgerEntry), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(key_id = %id))]
pub async fn refund(
    State(state): State<AppState>,
    context: CallContext,
    PathId(id): PathId<ApiKeyId>,
    JsonBody(body): JsonBody<RefundBody>,
) -> Result<Json<LedgerEntry>, ApiError> {
    let request = context.request(pb::RefundRequest {
        api_key_id: id.into(),
        usage_record_id: body.usage_record_id,
        amount: body.amount.map(|amount| amount.to_string()),
        reason: body.reason,
    });
    let entry = billing(state.admin().refund(request)).await?;
    Ok(Json(entry.try_into()?))
}
