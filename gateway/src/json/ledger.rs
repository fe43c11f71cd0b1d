//! Ledger transactions.

use proto::billing::v1 as billing_pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::*;
use crate::error::{ApiError, Service};
use crate::money::Usd;

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
    fn from_wire(value: billing_pb::TransactionType) -> Result<TransactionType, ApiError> {
        match value {
            billing_pb::TransactionType::CreditPurchase => Ok(TransactionType::CreditPurchase),
            billing_pb::TransactionType::UsageDeduction => Ok(TransactionType::UsageDeduction),
            billing_pb::TransactionType::CreditAdjustment => Ok(TransactionType::CreditAdjustment),
            billing_pb::TransactionType::Refund => Ok(TransactionType::Refund),
            billing_pb::TransactionType::CreditGrant => Ok(TransactionType::CreditGrant),
            billing_pb::TransactionType::CreditExpiry => Ok(TransactionType::CreditExpiry),
            billing_pb::TransactionType::Unspecified => Err(contract(
                Service::Billing,
                "transaction type unspecified".into(),
            )),
        }
    }

    pub fn to_wire(self) -> billing_pb::TransactionType {
        match self {
            TransactionType::CreditPurchase => billing_pb::TransactionType::CreditPurchase,
            TransactionType::UsageDeduction => billing_pb::TransactionType::UsageDeduction,
            TransactionType::CreditAdjustment => billing_pb::TransactionType::CreditAdjustment,
            TransactionType::Refund => billing_pb::TransactionType::Refund,
            TransactionType::CreditGrant => billing_pb::TransactionType::CreditGrant,
            TransactionType::CreditExpiry => billing_pb::TransactionType::CreditExpiry,
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
    pub amount: Usd,
    pub balance_after: Usd,
    pub total_spent_after: Usd,
    pub description: String,
    /// Free-form JSON object: e.g. a deduction's `execution_id` and the `grants` that paid it
    /// (`[{"grant_id", "amount"}]`, in the order they were drawn), an expiry's `grant_id`.
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub timestamp: Timestamp,
    pub idempotency_key: Option<String>,
}

impl TryFrom<billing_pb::Transaction> for Transaction {
    type Error = ApiError;

    fn try_from(transaction: billing_pb::Transaction) -> Result<Transaction, ApiError> {
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
    pub fn to_wire(self) -> billing_pb::GrantCategory {
        match self {
            GrantCategory::Paid => billing_pb::GrantCategory::Paid,
            GrantCategory::Promotional => billing_pb::GrantCategory::Promotional,
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
    pub amount: Usd,
    /// Not yet spent nor expired.
    pub remaining: Usd,
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

impl TryFrom<billing_pb::CreditGrant> for Grant {
    type Error = ApiError;

    fn try_from(grant: billing_pb::CreditGrant) -> Result<Grant, ApiError> {
        let b = Service::Billing;
        let category = match grant.category() {
            billing_pb::GrantCategory::Paid => GrantCategory::Paid,
            billing_pb::GrantCategory::Promotional => GrantCategory::Promotional,
            billing_pb::GrantCategory::Unspecified => {
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

impl TryFrom<billing_pb::ListGrantsResponse> for GrantList {
    type Error = ApiError;

    fn try_from(response: billing_pb::ListGrantsResponse) -> Result<GrantList, ApiError> {
        Ok(GrantList {
            grants: response
                .grants
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
        })
    }
}

impl TryFrom<billing_pb::LedgerResponse> for LedgerEntry {
    type Error = ApiError;

    fn try_from(response: billing_pb::LedgerResponse) -> Result<LedgerEntry, ApiError> {
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

impl TryFrom<billing_pb::ListTransactionsResponse> for TransactionPage {
    type Error = ApiError;

    fn try_from(
        response: billing_pb::ListTransactionsResponse,
    ) -> Result<TransactionPage, ApiError> {
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
