//! How an execution ended, one enum for each thing the path says of it (ARCHITECTURE.md, "Vocabulary"):
//!
//! - [`UsageStatus`]: how the execution ended as billing records it (completed, cut off by credit,
//!   cancelled, failed). executor-svc decides it once (`execution/generation.rs`), billing-svc stores it as
//!   text (`usage_records.status`), the gateway shows it as a usage record's `status`.
//! - [`FinishReason`]: why the output ended, as the client of `/execute` reads it (stop, length, credit
//!   exhausted). executor-svc decides it from the usage status and the provider's own finish.
//!
//! On the wire each is its `billing.v1` / `executor.v1` enum; in JSON and in the database, its snake_case
//! code.

use serde::{Deserialize, Serialize};

use crate::billing::v1 as billing_pb;
use crate::executor::v1 as executor_pb;

/// How an execution ended; its code is a usage record's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UsageStatus {
    /// The model finished.
    Completed,
    /// Credit or a cap ran out mid-stream: the output was cut off where the hold ended.
    StoppedByCredit,
    /// The client went away before the end.
    Cancelled,
    /// The provider failed (after reporting usage, or before any: then nothing is charged).
    Failed,
}

impl UsageStatus {
    pub const ALL: [UsageStatus; 4] = [
        UsageStatus::Completed,
        UsageStatus::StoppedByCredit,
        UsageStatus::Cancelled,
        UsageStatus::Failed,
    ];

    /// The code stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            UsageStatus::Completed => "completed",
            UsageStatus::StoppedByCredit => "stopped_by_credit",
            UsageStatus::Cancelled => "cancelled",
            UsageStatus::Failed => "failed",
        }
    }

    /// The status a code names; `None` for any other text.
    pub fn parse(code: &str) -> Option<UsageStatus> {
        UsageStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == code)
    }

    /// The status a wire value names; `None` for `UNSPECIFIED` or a value this build does not know.
    pub fn from_wire(value: i32) -> Option<UsageStatus> {
        match billing_pb::UsageStatus::try_from(value).ok()? {
            billing_pb::UsageStatus::Completed => Some(UsageStatus::Completed),
            billing_pb::UsageStatus::StoppedByCredit => Some(UsageStatus::StoppedByCredit),
            billing_pb::UsageStatus::Cancelled => Some(UsageStatus::Cancelled),
            billing_pb::UsageStatus::Failed => Some(UsageStatus::Failed),
            billing_pb::UsageStatus::Unspecified => None,
        }
    }
}

impl From<UsageStatus> for billing_pb::UsageStatus {
    fn from(status: UsageStatus) -> billing_pb::UsageStatus {
        match status {
            UsageStatus::Completed => billing_pb::UsageStatus::Completed,
            UsageStatus::StoppedByCredit => billing_pb::UsageStatus::StoppedByCredit,
            UsageStatus::Cancelled => billing_pb::UsageStatus::Cancelled,
            UsageStatus::Failed => billing_pb::UsageStatus::Failed,
        }
    }
}

/// Why the output ended, as `/execute` tells its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model finished.
    Stop,
    /// `maxTokens` was reached.
    Length,
    /// Credit or a cap ran out mid-generation; the output is cut off and only what was produced is charged.
    CreditExhausted,
}

impl FinishReason {
    /// The reason a wire value names; `None` for `UNSPECIFIED` or a value this build does not know.
    pub fn from_wire(value: i32) -> Option<FinishReason> {
        match executor_pb::FinishReason::try_from(value).ok()? {
            executor_pb::FinishReason::Stop => Some(FinishReason::Stop),
            executor_pb::FinishReason::Length => Some(FinishReason::Length),
            executor_pb::FinishReason::CreditExhausted => Some(FinishReason::CreditExhausted),
            executor_pb::FinishReason::Unspecified => None,
        }
    }

    /// Whether billing cut the output short (the answer's own finish then says "length" or "max_tokens").
    pub fn is_cut_off(self) -> bool {
        self == FinishReason::CreditExhausted
    }
}

impl From<FinishReason> for executor_pb::FinishReason {
    fn from(reason: FinishReason) -> executor_pb::FinishReason {
        match reason {
            FinishReason::Stop => executor_pb::FinishReason::Stop,
            FinishReason::Length => executor_pb::FinishReason::Length,
            FinishReason::CreditExhausted => executor_pb::FinishReason::CreditExhausted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_usage_status_round_trips_through_its_code_and_the_wire() {
        for status in UsageStatus::ALL {
            assert_eq!(UsageStatus::parse(status.as_str()), Some(status));
            let wire = billing_pb::UsageStatus::from(status) as i32;
            assert_eq!(UsageStatus::from_wire(wire), Some(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::json!(status.as_str())
            );
        }
        assert_eq!(UsageStatus::from_wire(0), None);
        assert_eq!(UsageStatus::from_wire(99), None);
        assert_eq!(UsageStatus::parse("COMPLETED"), None);
    }

    #[test]
    fn every_finish_reason_round_trips_through_the_wire() {
        for reason in [
            FinishReason::Stop,
            FinishReason::Length,
            FinishReason::CreditExhausted,
        ] {
            let wire = executor_pb::FinishReason::from(reason) as i32;
            assert_eq!(FinishReason::from_wire(wire), Some(reason));
        }
        assert_eq!(FinishReason::from_wire(0), None);
        assert_eq!(
            serde_json::to_value(FinishReason::CreditExhausted).unwrap(),
            serde_json::json!("credit_exhausted")
        );
    }
}
