//! Executions: their usage, billing figures and end.

use proto::executor::v1 as executor_pb;
use serde::Serialize;
use utoipa::ToSchema;

use super::*;
use crate::error::{ApiError, Service};
use crate::money::Usd;

/// Token counts and their costs.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
    /// Absent while billing is pending: only billing-svc prices usage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_cost: Option<Usd>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_cost: Option<Usd>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_cost: Option<Usd>,
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
        balance_after: Usd,
        total_spent: Usd,
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

/// Why the output ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
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
    fn from_wire(value: executor_pb::FinishReason) -> Result<FinishReason, ApiError> {
        match value {
            executor_pb::FinishReason::Stop => Ok(FinishReason::Stop),
            executor_pb::FinishReason::Length => Ok(FinishReason::Length),
            executor_pb::FinishReason::CreditExhausted => Ok(FinishReason::CreditExhausted),
            executor_pb::FinishReason::Unspecified => Err(contract(
                Service::Executor,
                "finish reason unspecified".into(),
            )),
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

/// A finished execution and its text.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"output": "...", "usage": {"inputTokens": 6548, "outputTokens": 108, "totalTokens": 6656, "inputCost": 0.09822, "outputCost": 0.00486, "totalCost": 0.10308}, "billing": {"balanceAfter": 9.89692, "totalSpent": 0.10308}, "finishReason": "stop", "executionId": "8c1f6c2e-3f55-4d7b-9a43-0d7f1f1b5e11", "model": "gpt-4o-mini"}))]
pub struct ExecuteResult {
    pub output: String,
    #[serde(flatten)]
    pub summary: ExecutionSummary,
}

impl TryFrom<executor_pb::ExecuteResponse> for ExecutionSummary {
    type Error = ApiError;

    fn try_from(response: executor_pb::ExecuteResponse) -> Result<ExecutionSummary, ApiError> {
        Ok(ExecutionSummary {
            finish_reason: FinishReason::from_wire(response.finish_reason())?,
            usage: response.usage.try_into()?,
            billing: response.billing.map(TryInto::try_into).transpose()?,
            execution_id: response.execution_id,
            model: response.model,
        })
    }
}

impl TryFrom<executor_pb::ExecuteResponse> for ExecuteResult {
    type Error = ApiError;

    fn try_from(mut response: executor_pb::ExecuteResponse) -> Result<ExecuteResult, ApiError> {
        let output = std::mem::take(&mut response.output);
        Ok(ExecuteResult {
            output,
            summary: response.try_into()?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn seed_response(billing: Option<executor_pb::Billing>) -> executor_pb::ExecuteResponse {
        executor_pb::ExecuteResponse {
            execution_id: "exec-1".into(),
            model: "mock".into(),
            output: "...".into(),
            usage: Some(executor_pb::Usage {
                input_tokens: 6548,
                output_tokens: 108,
                total_tokens: 6656,
                input_cost: Some("0.09822".into()),
                output_cost: Some("0.00486".into()),
                total_cost: Some("0.10308".into()),
            }),
            billing,
            finish_reason: executor_pb::FinishReason::Stop.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_standard_execution_comes_out_as_the_design_example() {
        let response = seed_response(Some(executor_pb::Billing {
            status: executor_pb::BillingStatus::Settled.into(),
            balance_after: Some("9.896920000".into()),
            total_spent: Some("0.10308".into()),
        }));
        let json = serde_json::to_string(&ExecuteResult::try_from(response).unwrap()).unwrap();
        assert!(
            json.starts_with(
                r#"{"output":"...","usage":{"inputTokens":6548,"outputTokens":108,"totalTokens":6656,"inputCost":0.09822,"outputCost":0.00486,"totalCost":0.10308},"billing":{"balanceAfter":9.89692,"totalSpent":0.10308},"#
            ),
            "{json}"
        );
    }

    #[test]
    fn an_internal_execution_has_no_billing() {
        let json =
            serde_json::to_value(ExecuteResult::try_from(seed_response(None)).unwrap()).unwrap();
        assert!(json.get("billing").is_none());
        assert_eq!(json["usage"]["totalCost"].to_string(), "0.10308");
    }

    #[test]
    fn a_spooled_settlement_says_pending() {
        let response = seed_response(Some(executor_pb::Billing {
            status: executor_pb::BillingStatus::Pending.into(),
            balance_after: None,
            total_spent: None,
        }));
        let json = serde_json::to_value(ExecuteResult::try_from(response).unwrap()).unwrap();
        assert_eq!(json["billing"], serde_json::json!({"status": "pending"}));
    }

    #[test]
    fn a_settled_billing_without_figures_is_a_contract_violation() {
        let response = seed_response(Some(executor_pb::Billing {
            status: executor_pb::BillingStatus::Settled.into(),
            balance_after: None,
            total_spent: Some("1".into()),
        }));
        assert!(matches!(
            ExecuteResult::try_from(response),
            Err(ApiError::ContractViolation { .. })
        ));
    }
}
