//! What a finished execution reports, shared by the model APIs (`/execute`, OpenAI's and Anthropic's): its
//! usage, billing figures and why its output ended.

use proto::ending::FinishReason;
use proto::executor::v1 as executor_pb;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, Service};
use crate::wire::{contract, money, required};
use money::Money;

/// Token counts and their costs.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
    /// Absent while billing is pending: only billing-svc prices usage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_cost: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_cost: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_cost: Option<Money>,
}

impl TryFrom<Option<executor_pb::Usage>> for Usage {
    type Error = ApiError;

    fn try_from(usage: Option<executor_pb::Usage>) -> Result<Usage, ApiError> {
        let e = Service::Executor;
        let usage = required(e, "usage", usage)?;
        Ok(Usage {
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            total_tokens: usage.total_tokens,
            input_cost: usage
                .input_cost
                .map(|cost| money(e, "input_cost", &cost))
                .transpose()?,
            output_cost: usage
                .output_cost
                .map(|cost| money(e, "output_cost", &cost))
                .transpose()?,
            total_cost: usage
                .total_cost
                .map(|cost| money(e, "total_cost", &cost))
                .transpose()?,
        })
    }
}

/// The only value of `billing.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PendingStatus {
    Pending,
}

/// The account after the charge (standard keys only).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Billing {
    /// Settled: the charge is on the ledger.
    #[serde(rename_all = "camelCase")]
    Settled {
        balance_after: Money,
        total_spent: Money,
    },
    /// billing-svc was unreachable when the execution ended: the executor spooled the settlement and
    /// replays it exactly once; the figures appear in `/billing/account` once it lands.
    Pending { status: PendingStatus },
}

impl TryFrom<executor_pb::Billing> for Billing {
    type Error = ApiError;

    fn try_from(billing: executor_pb::Billing) -> Result<Billing, ApiError> {
        let e = Service::Executor;
        match billing.status() {
            executor_pb::BillingStatus::Settled => Ok(Billing::Settled {
                balance_after: money(
                    e,
                    "balance_after",
                    required(e, "balance_after", billing.balance_after.as_deref())?,
                )?,
                total_spent: money(
                    e,
                    "total_spent",
                    required(e, "total_spent", billing.total_spent.as_deref())?,
                )?,
            }),
            executor_pb::BillingStatus::Pending => Ok(Billing::Pending {
                status: PendingStatus::Pending,
            }),
            executor_pb::BillingStatus::Unspecified => {
                Err(contract(e, "billing status unspecified".into()))
            }
        }
    }
}

/// Everything about a finished execution but its text: the last SSE event of a streamed `/execute`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionSummary {
    pub usage: Usage,
    /// Absent for internal keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing: Option<Billing>,
    pub finish_reason: FinishReason,
    /// The usage record's `executionId`.
    pub execution_id: String,
    /// The model that ran.
    pub model: String,
}

#[cfg(test)]
impl ExecutionSummary {
    /// A settled execution of 10 input and 5 output tokens costing 0.01, ended by `finish_reason`: what the
    /// stream translators' tests end their streams with.
    pub fn settled_for_test(finish_reason: FinishReason) -> ExecutionSummary {
        let usd = |text: &str| {
            text.parse()
                .unwrap_or_else(|_| unreachable!("a decimal literal"))
        };
        ExecutionSummary {
            usage: Usage {
                input_tokens: 10,
                output_tokens: 5,
                total_tokens: 15,
                input_cost: None,
                output_cost: None,
                total_cost: Some(usd("0.01")),
            },
            billing: Some(Billing::Settled {
                balance_after: usd("1"),
                total_spent: usd("0.01"),
            }),
            finish_reason,
            execution_id: "exec-1".into(),
            model: "m".into(),
        }
    }
}

impl TryFrom<executor_pb::ExecuteResponse> for ExecutionSummary {
    type Error = ApiError;

    fn try_from(response: executor_pb::ExecuteResponse) -> Result<ExecutionSummary, ApiError> {
        Ok(ExecutionSummary {
            finish_reason: FinishReason::from_wire(response.finish_reason)
                .ok_or_else(|| contract(Service::Executor, "finish reason unspecified".into()))?,
            usage: response.usage.try_into()?,
            billing: response.billing.map(TryInto::try_into).transpose()?,
            execution_id: response.execution_id,
            model: response.model,
        })
    }
}
