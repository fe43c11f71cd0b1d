//! The JSON shapes of the REST API (camelCase, money as exact numbers, times as RFC 3339 strings) and
//! their conversion from the billing.v1 / executor.v1 messages. A message missing a field the contract
//! promises is a [`ApiError::ContractViolation`] (502), never a panic.

use std::borrow::Cow;

use proto::billing::v1 as billing_pb;
use proto::executor::v1 as executor_pb;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};

use crate::error::{ApiError, Service};
use crate::money::Usd;

/// A point in time, written as an RFC 3339 UTC string (`2025-01-31T12:00:00Z`).
#[derive(Debug, Clone, PartialEq)]
pub struct Timestamp(pub prost_types::Timestamp);

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

/// Parses an RFC 3339 timestamp (any offset; stored as UTC).
pub fn parse_rfc3339(text: &str) -> Result<Timestamp, String> {
    text.parse::<prost_types::Timestamp>()
        .map(Timestamp)
        .map_err(|_| format!("`{text}` is not an RFC 3339 timestamp (e.g. 2025-01-31T00:00:00Z)"))
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("RFC 3339 timestamp, written in UTC."))
            .examples([serde_json::json!("2025-01-31T12:00:00Z")])
            .into()
    }
}

impl ToSchema for Timestamp {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Timestamp")
    }
}

fn contract(service: Service, message: String) -> ApiError {
    ApiError::contract(service, message)
}

fn money(service: Service, field: &str, text: &str) -> Result<Usd, ApiError> {
    text.parse()
        .map_err(|error| contract(service, format!("{field}: {error}")))
}

fn optional_money(
    service: Service,
    field: &str,
    text: Option<&str>,
) -> Result<Option<Usd>, ApiError> {
    text.map(|text| money(service, field, text)).transpose()
}

fn required<T>(service: Service, field: &str, value: Option<T>) -> Result<T, ApiError> {
    value.ok_or_else(|| contract(service, format!("{field} is missing")))
}

fn time(field: &str, value: Option<prost_types::Timestamp>) -> Result<Timestamp, ApiError> {
    required(Service::Billing, field, value).map(Timestamp)
}

/// How a key is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyType {
    /// Charged, needs credit, budget checks apply.
    Standard,
    /// Never charged; usage recorded with its cost; responses carry no `billing`.
    Internal,
}

impl KeyType {
    fn from_wire(value: billing_pb::KeyType) -> Result<KeyType, ApiError> {
        match value {
            billing_pb::KeyType::Standard => Ok(KeyType::Standard),
            billing_pb::KeyType::Internal => Ok(KeyType::Internal),
            billing_pb::KeyType::Unspecified => {
                Err(contract(Service::Billing, "key type unspecified".into()))
            }
        }
    }

    pub fn to_wire(self) -> billing_pb::KeyType {
        match self {
            KeyType::Standard => billing_pb::KeyType::Standard,
            KeyType::Internal => billing_pb::KeyType::Internal,
        }
    }
}

/// An API key as listed: never the plain key nor its hash.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// The key's id (a UUID), also its account's id in every path.
    pub id: String,
    pub name: String,
    pub key_type: KeyType,
    /// e.g. `tb_prod_`.
    pub prefix: String,
    /// The prefix and the last four characters, e.g. `tb_prod_…9f3a`.
    pub hint: String,
    pub created_at: Timestamp,
    /// Null unless revoked.
    pub revoked_at: Option<Timestamp>,
    /// Null unless the key expires.
    pub expires_at: Option<Timestamp>,
}

impl TryFrom<billing_pb::ApiKey> for ApiKey {
    type Error = ApiError;

    fn try_from(key: billing_pb::ApiKey) -> Result<ApiKey, ApiError> {
        Ok(ApiKey {
            key_type: KeyType::from_wire(key.key_type())?,
            created_at: time("api_key.created_at", key.created_at)?,
            revoked_at: key.revoked_at.map(Timestamp),
            expires_at: key.expires_at.map(Timestamp),
            id: key.id,
            name: key.name,
            prefix: key.prefix,
            hint: key.hint,
        })
    }
}

/// The billing account of one key.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub api_key_id: String,
    pub key_type: KeyType,
    /// Always equal to the sum of the account's transactions.
    pub credits_balance: Usd,
    /// Reserved by in-flight executions.
    pub held_credits: Usd,
    /// Usage deductions minus refunds, over the account's life.
    pub total_spent: Usd,
    /// Cap on spend per UTC day; null = no cap.
    pub daily_limit: Option<Usd>,
    /// Cap on spend per UTC month; null = no cap.
    pub monthly_limit: Option<Usd>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl TryFrom<billing_pb::Account> for Account {
    type Error = ApiError;

    fn try_from(account: billing_pb::Account) -> Result<Account, ApiError> {
        let b = Service::Billing;
        Ok(Account {
            key_type: KeyType::from_wire(account.key_type())?,
            credits_balance: money(b, "credits_balance", &account.credits_balance)?,
            held_credits: money(b, "held_credits", &account.held_credits)?,
            total_spent: money(b, "total_spent", &account.total_spent)?,
            daily_limit: optional_money(b, "daily_limit", account.daily_limit.as_deref())?,
            monthly_limit: optional_money(b, "monthly_limit", account.monthly_limit.as_deref())?,
            created_at: time("account.created_at", account.created_at)?,
            updated_at: time("account.updated_at", account.updated_at)?,
            api_key_id: account.api_key_id,
        })
    }
}

/// A newly created key: the listed fields, the plain `key` (shown this once) and its account.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedKey {
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The plain key, `<prefix><64 lowercase hex>`. It cannot be read again.
    pub key: String,
    pub account: Account,
}

impl TryFrom<billing_pb::CreateKeyResponse> for CreatedKey {
    type Error = ApiError;

    fn try_from(response: billing_pb::CreateKeyResponse) -> Result<CreatedKey, ApiError> {
        Ok(CreatedKey {
            api_key: required(Service::Billing, "api_key", response.api_key)?.try_into()?,
            account: required(Service::Billing, "account", response.account)?.try_into()?,
            key: response.key,
        })
    }
}

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

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyList {
    pub keys: Vec<ApiKey>,
}

/// A price row; the effective price per 1k tokens is base × markup.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Price {
    /// A model name or `*` (every model without its own row).
    pub model: String,
    pub base_input_price_per_1k: Usd,
    pub base_output_price_per_1k: Usd,
    /// Multiplier, e.g. 1.5 (an exact decimal, like money).
    pub markup: Usd,
    pub input_price_per_1k: Usd,
    pub output_price_per_1k: Usd,
    /// The row applies to executions settled from this moment on.
    pub effective_from: Timestamp,
}

impl TryFrom<billing_pb::Price> for Price {
    type Error = ApiError;

    fn try_from(price: billing_pb::Price) -> Result<Price, ApiError> {
        let b = Service::Billing;
        Ok(Price {
            base_input_price_per_1k: money(
                b,
                "base_input_price_per_1k",
                &price.base_input_price_per_1k,
            )?,
            base_output_price_per_1k: money(
                b,
                "base_output_price_per_1k",
                &price.base_output_price_per_1k,
            )?,
            markup: money(b, "markup", &price.markup)?,
            input_price_per_1k: money(b, "input_price_per_1k", &price.input_price_per_1k)?,
            output_price_per_1k: money(b, "output_price_per_1k", &price.output_price_per_1k)?,
            effective_from: time("price.effective_from", price.effective_from)?,
            model: price.model,
        })
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceList {
    pub prices: Vec<Price>,
}

// ----- executions -----

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

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let stamp = parse_rfc3339("2025-01-31T01:00:00+01:00").unwrap();
        assert_eq!(
            serde_json::to_string(&stamp).unwrap(),
            r#""2025-01-31T00:00:00Z""#
        );
        assert!(parse_rfc3339("yesterday").is_err());
        assert!(parse_rfc3339("2025-13-01T00:00:00Z").is_err());
    }
}
