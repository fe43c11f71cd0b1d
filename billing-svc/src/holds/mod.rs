//! Holds: credit set aside for one execution in flight (BILLING.md, "Holds and the metering stream"). A hold
//! is opened before the first token, is extended chunk by chunk, and ends settled or released ([`ops`]); the
//! key's rate and concurrency limits are decided when it opens ([`limits`]); its SQL is in [`sql`].

pub mod limits;
pub mod ops;
pub mod sql;

use crate::time::Millis;
use money::Money;
use proto::ids::{AccountId, ApiKeyId, ExecutionId};

/// Credit set aside for one execution in flight (BILLING.md, "Holds and the metering stream").
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    pub id: String,
    pub account_id: AccountId,
    pub api_key_id: ApiKeyId,
    pub execution_id: ExecutionId,
    pub amount: Money,
    pub input_tokens: i64,
    pub covered_output_tokens: i64,
    pub max_output_tokens: i64,
    pub model: String,
    pub workspace_id: String,
    pub session_id: String,
    pub endpoint: String,
    pub end_user_id: String,
    pub started_at: Millis,
    pub expires_at: Millis,
}
