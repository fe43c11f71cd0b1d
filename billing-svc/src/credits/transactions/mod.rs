//! Ledger rows: the signed movements of an account's balance (BILLING.md, "The ledger"), one table,
//! `transactions`, whose SQL is in [`sql`]; each row is chained to the account's previous one by [`chain`].
//! "Transaction" here is a ledger row, not a database transaction.

pub mod chain;
pub mod sql;

use crate::time::Millis;
use money::Money;
use proto::ids::{AccountId, ApiKeyId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionType {
    CreditPurchase,
    UsageDeduction,
    CreditAdjustment,
    Refund,
    /// A promotional grant.
    CreditGrant,
    /// The remainder of a grant leaving at its expiry.
    CreditExpiry,
}

impl TransactionType {
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionType::CreditPurchase => "credit_purchase",
            TransactionType::UsageDeduction => "usage_deduction",
            TransactionType::CreditAdjustment => "credit_adjustment",
            TransactionType::Refund => "refund",
            TransactionType::CreditGrant => "credit_grant",
            TransactionType::CreditExpiry => "credit_expiry",
        }
    }

    pub fn parse(text: &str) -> Option<TransactionType> {
        match text {
            "credit_purchase" => Some(TransactionType::CreditPurchase),
            "usage_deduction" => Some(TransactionType::UsageDeduction),
            "credit_adjustment" => Some(TransactionType::CreditAdjustment),
            "refund" => Some(TransactionType::Refund),
            "credit_grant" => Some(TransactionType::CreditGrant),
            "credit_expiry" => Some(TransactionType::CreditExpiry),
            _ => None,
        }
    }
}

/// One ledger row.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    pub id: i64,
    pub account_id: AccountId,
    /// The key that caused it (a usage deduction, a refund of its usage, an operation named by key id).
    pub api_key_id: Option<ApiKeyId>,
    pub kind: TransactionType,
    pub amount: Money,
    pub balance_after: Money,
    pub total_spent_after: Money,
    pub description: String,
    pub metadata: String,
    pub timestamp: Millis,
    pub idempotency_key: Option<String>,
    /// The account's previous row's `hash` ([`chain::GENESIS`] for its first).
    pub prev_hash: String,
    /// [`chain::hash`] of this row after `prev_hash`.
    pub hash: String,
}
