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
    /// Money given back for a usage record (positive).
    Refund,
}

impl TransactionType {
    fn from_wire(value: billing_pb::TransactionType) -> Result<TransactionType, ApiError> {
        match value {
            billing_pb::TransactionType::CreditPurchase => Ok(TransactionType::CreditPurchase),
            billing_pb::TransactionType::UsageDeduction => Ok(TransactionType::UsageDeduction),
            billing_pb::TransactionType::CreditAdjustment => Ok(TransactionType::CreditAdjustment),
            billing_pb::TransactionType::Refund => Ok(TransactionType::Refund),
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
    /// Free-form JSON object (e.g. the execution id of a deduction).
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

/// The result of a ledger write: the transaction and the account right after it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    pub transaction: Transaction,
    pub account: Account,
}

impl TryFrom<billing_pb::LedgerResponse> for LedgerEntry {
    type Error = ApiError;

    fn try_from(response: billing_pb::LedgerResponse) -> Result<LedgerEntry, ApiError> {
        Ok(LedgerEntry {
            transaction: required(Service::Billing, "transaction", response.transaction)?
                .try_into()?,
            account: required(Service::Billing, "account", response.account)?.try_into()?,
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
