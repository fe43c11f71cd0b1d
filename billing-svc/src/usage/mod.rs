//! Usage records: one per settled execution (BILLING.md, "The ledger"), how each execution ended, and the
//! reads over them: filters and totals here, the statistics in [`ops`], the SQL in [`sql`], OpenAI's
//! organization Usage and Costs reports in [`buckets`] (over the hourly sums of [`rollup`]), the weekly
//! report and the forecast in [`report`].

pub mod buckets;
pub mod ops;
pub mod report;
pub mod rollup;
pub mod sql;

use rust_decimal::Decimal;

use crate::keys::KeyType;
use crate::prices::TokenClasses;
use crate::time::Millis;
use money::Money;
use proto::ids::{AccountId, ApiKeyId, ExecutionId};

/// How an execution ended, stored as its code (`usage_records.status`).
pub use proto::ending::UsageStatus;

/// The record of one settled execution.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRecord {
    pub id: i64,
    pub account_id: AccountId,
    pub api_key_id: ApiKeyId,
    pub execution_id: ExecutionId,
    pub session_id: String,
    pub workspace_id: String,
    pub timestamp: Millis,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub total_tokens: i64,
    pub input_cost: Money,
    pub output_cost: Money,
    pub total_cost: Money,
    pub charged: Money,
    pub overage: Money,
    pub model: String,
    pub duration_ms: i64,
    pub status: UsageStatus,
    pub endpoint: String,
    pub key_type: KeyType,
    pub balance_after: Option<Money>,
    pub total_spent_after: Option<Money>,
    pub refunded_amount: Option<Money>,
    /// When the execution opened (its hold's start); absent on records made before it was kept.
    pub started_at: Option<Millis>,
    /// The provider that served the call, and how many providers were asked.
    pub provider: String,
    pub attempts: i64,
    /// The token classes inside `input_tokens` and `output_tokens`.
    pub classes: TokenClasses,
    /// Inside `total_cost`.
    pub request_fee: Money,
    /// The usage at base prices; absent on records made before it was kept.
    pub provider_cost: Option<Money>,
    /// The volume tier's percent off (0: none).
    pub discount_percent: Decimal,
    /// The customer's end user (empty: none named).
    pub end_user_id: String,
    /// What the volume tier took off `total_cost` (0 without a tier, and on records made before it was kept).
    pub discount: Money,
}

/// Filters of usage queries (within one account). Empty strings mean "any".
#[derive(Debug, Clone, Default)]
pub struct UsageFilter {
    /// Only the records of this key.
    pub api_key_id: Option<ApiKeyId>,
    pub from: Millis,
    pub to: Millis,
    pub workspace_id: String,
    pub model: String,
    /// Only records that ended this way.
    pub status: Option<UsageStatus>,
    /// Only the records of this end user (`None`: any; `Some("")`: those that named none).
    pub end_user_id: Option<String>,
}

impl UsageFilter {
    /// Everything.
    pub fn all() -> UsageFilter {
        UsageFilter {
            from: Millis::MIN,
            to: Millis::MAX,
            ..UsageFilter::default()
        }
    }
}

/// Sums over a set of records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub total_tokens: i64,
    pub total_cost: Money,
    /// Over the records that keep a provider cost.
    pub provider_cost: Money,
    /// `total_cost` of the records that keep a provider cost, less their provider cost.
    pub margin: Money,
    pub classes: TokenClasses,
}
