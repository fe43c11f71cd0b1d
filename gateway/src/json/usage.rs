//! Usage records, their totals and statistics.

use proto::billing::v1 as billing_pb;
use serde::Serialize;
use utoipa::ToSchema;

use super::*;
use crate::error::{ApiError, Service};
use crate::money::Usd;

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UsageStatus {
    Completed,
    /// Credit or a cap ran out mid-stream.
    StoppedByCredit,
    /// The client went away.
    Cancelled,
    /// The upstream failed after reporting usage.
    Failed,
}

impl UsageStatus {
    fn from_wire(value: billing_pb::UsageStatus) -> Result<UsageStatus, ApiError> {
        match value {
            billing_pb::UsageStatus::Completed => Ok(UsageStatus::Completed),
            billing_pb::UsageStatus::StoppedByCredit => Ok(UsageStatus::StoppedByCredit),
            billing_pb::UsageStatus::Cancelled => Ok(UsageStatus::Cancelled),
            billing_pb::UsageStatus::Failed => Ok(UsageStatus::Failed),
            billing_pb::UsageStatus::Unspecified => Err(contract(
                Service::Billing,
                "usage status unspecified".into(),
            )),
        }
    }
}

/// One settled execution.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageRecord {
    pub id: String,
    pub api_key_id: String,
    pub execution_id: String,
    pub session_id: String,
    pub workspace_id: String,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
    pub input_cost: Usd,
    pub output_cost: Usd,
    pub total_cost: Usd,
    /// Taken from the balance: `totalCost` for standard keys, 0 for internal ones.
    pub charged: Usd,
    /// By how much the charge exceeded the execution's hold.
    pub overage: Usd,
    pub duration_ms: u64,
    pub status: UsageStatus,
    /// e.g. `/execute` or `/v1/chat/completions`.
    pub endpoint: String,
    /// The provider that served the call: a name of the executor's `PROVIDERS_FILE`, `default` without
    /// one (PROVIDERS.md).
    pub provider: String,
    /// How many providers were asked for it, the one that served included (more than 1 after a fallback).
    pub attempts: u32,
    pub key_type: KeyType,
    pub timestamp: Timestamp,
    /// Null unless refunded.
    pub refunded_amount: Option<Usd>,
}

impl TryFrom<billing_pb::UsageRecord> for UsageRecord {
    type Error = ApiError;

    fn try_from(record: billing_pb::UsageRecord) -> Result<UsageRecord, ApiError> {
        let b = Service::Billing;
        Ok(UsageRecord {
            status: UsageStatus::from_wire(record.status())?,
            key_type: KeyType::from_wire(record.key_type())?,
            input_cost: money(b, "input_cost", &record.input_cost)?,
            output_cost: money(b, "output_cost", &record.output_cost)?,
            total_cost: money(b, "total_cost", &record.total_cost)?,
            charged: money(b, "charged", &record.charged)?,
            overage: money(b, "overage", &record.overage)?,
            refunded_amount: optional_money(
                b,
                "refunded_amount",
                record.refunded_amount.as_deref(),
            )?,
            timestamp: time("usage.timestamp", record.timestamp)?,
            id: record.id,
            api_key_id: record.api_key_id,
            execution_id: record.execution_id,
            session_id: record.session_id,
            workspace_id: record.workspace_id,
            model: record.model,
            input_tokens: record.input_tokens,
            output_tokens: record.output_tokens,
            total_tokens: record.total_tokens,
            duration_ms: record.duration_ms,
            endpoint: record.endpoint,
            provider: record.provider,
            attempts: record.attempts,
        })
    }
}

/// Aggregates over a set of usage records.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageTotals {
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
    /// Cost of the usage, charged or not.
    pub total_cost: Usd,
}

impl TryFrom<Option<billing_pb::UsageTotals>> for UsageTotals {
    type Error = ApiError;

    fn try_from(totals: Option<billing_pb::UsageTotals>) -> Result<UsageTotals, ApiError> {
        let totals = required(Service::Billing, "totals", totals)?;
        Ok(UsageTotals {
            requests: totals.requests,
            input_tokens: totals.input_tokens,
            output_tokens: totals.output_tokens,
            total_tokens: totals.total_tokens,
            total_cost: money(Service::Billing, "total_cost", &totals.total_cost)?,
        })
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelUsage {
    pub model: String,
    pub totals: UsageTotals,
}

/// Statistics of one account.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub api_key_id: String,
    /// Over the requested range (all time without `from`/`to`).
    pub totals: UsageTotals,
    /// The current UTC day.
    pub today: UsageTotals,
    /// The current UTC month.
    pub this_month: UsageTotals,
    /// Over the requested range, by model name.
    pub by_model: Vec<ModelUsage>,
    pub credits_balance: Usd,
    pub total_spent: Usd,
}

impl TryFrom<billing_pb::Stats> for Stats {
    type Error = ApiError;

    fn try_from(stats: billing_pb::Stats) -> Result<Stats, ApiError> {
        let b = Service::Billing;
        Ok(Stats {
            totals: stats.totals.try_into()?,
            today: stats.today.try_into()?,
            this_month: stats.this_month.try_into()?,
            by_model: stats
                .by_model
                .into_iter()
                .map(|entry| {
                    Ok(ModelUsage {
                        totals: entry.totals.try_into()?,
                        model: entry.model,
                    })
                })
                .collect::<Result<_, ApiError>>()?,
            credits_balance: money(b, "credits_balance", &stats.credits_balance)?,
            total_spent: money(b, "total_spent", &stats.total_spent)?,
            api_key_id: stats.api_key_id,
        })
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceUsage {
    pub workspace_id: String,
    pub totals: UsageTotals,
}

/// Usage and cost per workspace.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceList {
    pub workspaces: Vec<WorkspaceUsage>,
}

impl TryFrom<billing_pb::ListWorkspaceUsageResponse> for WorkspaceList {
    type Error = ApiError;

    fn try_from(
        response: billing_pb::ListWorkspaceUsageResponse,
    ) -> Result<WorkspaceList, ApiError> {
        let workspaces = response
            .workspaces
            .into_iter()
            .map(|entry| {
                Ok(WorkspaceUsage {
                    totals: entry.totals.try_into()?,
                    workspace_id: entry.workspace_id,
                })
            })
            .collect::<Result<_, ApiError>>()?;
        Ok(WorkspaceList { workspaces })
    }
}

/// A page of usage records, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsagePage {
    pub records: Vec<UsageRecord>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl TryFrom<billing_pb::ListUsageResponse> for UsagePage {
    type Error = ApiError;

    fn try_from(response: billing_pb::ListUsageResponse) -> Result<UsagePage, ApiError> {
        Ok(UsagePage {
            records: response
                .records
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
            next_cursor: response.next_cursor,
        })
    }
}
