//! SQL of `usage_records`: one row per settled execution, and the aggregates the stats are made of.

use sqlx::{AnyConnection, FromRow};

use super::buckets::{EMBEDDINGS_ENDPOINT, GroupSums, Plan, Report};
use super::{Totals, UsageFilter, UsageRecord, UsageStatus};
use crate::keys::KeyType;
use crate::prices::TokenClasses;
use crate::store::bulk;
use crate::store::row::{column_error, count, parse_enum};
use crate::time::Millis;
use money::Money;
use proto::ids::{AccountId, ApiKeyId, ExecutionId};
use rust_decimal::Decimal;

/// The type of each column of [`COLUMNS`] (see [`bulk::bind_rows`]).
const TYPES: &str = "itttttiiiiiiiiititttiiiitiiiiiiiiitti";

const COLUMNS: &str = "id, account_id, api_key_id, execution_id, session_id, workspace_id, timestamp, input_tokens, output_tokens, \
    total_tokens, input_cost, output_cost, total_cost, charged, overage, model, duration_ms, status, endpoint, key_type, \
    balance_after, total_spent_after, refunded_amount, started_at, provider, attempts, cached_input_tokens, \
    cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, audio_input_tokens, audio_output_tokens, request_fee, \
    provider_cost, discount_percent, end_user_id, discount";

/// The token class columns of `usage_records` (or their sums, named alike).
#[derive(sqlx::FromRow)]
pub(crate) struct ClassesRow {
    cached_input_tokens: i64,
    cache_write_tokens: i64,
    cache_write_1h_tokens: i64,
    reasoning_tokens: i64,
    audio_input_tokens: i64,
    audio_output_tokens: i64,
}

impl From<ClassesRow> for TokenClasses {
    fn from(row: ClassesRow) -> TokenClasses {
        TokenClasses {
            cached_input: count(row.cached_input_tokens),
            cache_write: count(row.cache_write_tokens),
            cache_write_1h: count(row.cache_write_1h_tokens),
            reasoning: count(row.reasoning_tokens),
            audio_input: count(row.audio_input_tokens),
            audio_output: count(row.audio_output_tokens),
        }
    }
}

/// A row of `usage_records`: [`COLUMNS`]; money in nano-dollars.
#[derive(sqlx::FromRow)]
struct RecordRow {
    id: i64,
    account_id: String,
    api_key_id: String,
    execution_id: String,
    session_id: String,
    workspace_id: String,
    timestamp: Millis,
    input_tokens: i64,
    output_tokens: i64,
    total_tokens: i64,
    input_cost: i64,
    output_cost: i64,
    total_cost: i64,
    charged: i64,
    overage: i64,
    model: String,
    duration_ms: i64,
    status: String,
    endpoint: String,
    key_type: String,
    balance_after: Option<i64>,
    total_spent_after: Option<i64>,
    refunded_amount: Option<i64>,
    started_at: Option<Millis>,
    provider: String,
    attempts: i64,
    #[sqlx(flatten)]
    classes: ClassesRow,
    request_fee: i64,
    provider_cost: Option<i64>,
    /// A decimal.
    discount_percent: String,
    end_user_id: String,
    discount: i64,
}

impl TryFrom<RecordRow> for UsageRecord {
    type Error = sqlx::Error;

    fn try_from(row: RecordRow) -> Result<UsageRecord, sqlx::Error> {
        Ok(UsageRecord {
            id: row.id,
            account_id: AccountId::from(row.account_id),
            api_key_id: ApiKeyId::from(row.api_key_id),
            execution_id: ExecutionId::from(row.execution_id),
            session_id: row.session_id,
            workspace_id: row.workspace_id,
            timestamp: row.timestamp,
            input_tokens: row.input_tokens,
            output_tokens: row.output_tokens,
            total_tokens: row.total_tokens,
            input_cost: Money::from_nanos(row.input_cost),
            output_cost: Money::from_nanos(row.output_cost),
            total_cost: Money::from_nanos(row.total_cost),
            charged: Money::from_nanos(row.charged),
            overage: Money::from_nanos(row.overage),
            model: row.model,
            duration_ms: row.duration_ms,
            status: parse_enum("status", &row.status, UsageStatus::parse)?,
            endpoint: row.endpoint,
            key_type: parse_enum("key_type", &row.key_type, KeyType::parse)?,
            balance_after: row.balance_after.map(Money::from_nanos),
            total_spent_after: row.total_spent_after.map(Money::from_nanos),
            refunded_amount: row.refunded_amount.map(Money::from_nanos),
            started_at: row.started_at,
            provider: row.provider,
            attempts: row.attempts,
            classes: row.classes.into(),
            request_fee: Money::from_nanos(row.request_fee),
            provider_cost: row.provider_cost.map(Money::from_nanos),
            discount_percent: Decimal::from_str_exact(&row.discount_percent).map_err(|error| {
                column_error(
                    "discount_percent",
                    format!("{:?}: {error}", row.discount_percent),
                )
            })?,
            end_user_id: row.end_user_id,
            discount: Money::from_nanos(row.discount),
        })
    }
}

/// Inserts `records` with their ids (given by the batch), at most [`bulk::MAX_ROWS`], in one statement.
pub async fn insert(
    connection: &mut AnyConnection,
    records: &[UsageRecord],
) -> Result<(), sqlx::Error> {
    debug_assert!(records.len() <= bulk::MAX_ROWS);
    if records.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO usage_records ({COLUMNS}) {}",
        bulk::insert_rows(bulk::Style::of(connection), records.len(), TYPES)
    );
    bulk::bind_rows(sqlx::query(&sql), records, TYPES, |query, record| {
        query
            .bind(record.id)
            .bind(record.account_id.as_str())
            .bind(record.api_key_id.as_str())
            .bind(record.execution_id.as_str())
            .bind(&record.session_id)
            .bind(&record.workspace_id)
            .bind(record.timestamp)
            .bind(record.input_tokens)
            .bind(record.output_tokens)
            .bind(record.total_tokens)
            .bind(record.input_cost.nanos())
            .bind(record.output_cost.nanos())
            .bind(record.total_cost.nanos())
            .bind(record.charged.nanos())
            .bind(record.overage.nanos())
            .bind(&record.model)
            .bind(record.duration_ms)
            .bind(record.status.as_str())
            .bind(&record.endpoint)
            .bind(record.key_type.as_str())
            .bind(record.balance_after.map(Money::nanos))
            .bind(record.total_spent_after.map(Money::nanos))
            .bind(record.refunded_amount.map(Money::nanos))
            .bind(record.started_at)
            .bind(&record.provider)
            .bind(record.attempts)
            .bind(stored(record.classes.cached_input))
            .bind(stored(record.classes.cache_write))
            .bind(stored(record.classes.cache_write_1h))
            .bind(stored(record.classes.reasoning))
            .bind(stored(record.classes.audio_input))
            .bind(stored(record.classes.audio_output))
            .bind(record.request_fee.nanos())
            .bind(record.provider_cost.map(Money::nanos))
            .bind(record.discount_percent.to_string())
            .bind(&record.end_user_id)
            .bind(record.discount.nanos())
    })
    .execute(connection)
    .await?;
    Ok(())
}

/// A token count as stored (counts are checked against the token ceiling before they get here).
fn stored(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

pub async fn by_execution(
    connection: &mut AnyConnection,
    execution_id: &ExecutionId,
) -> Result<Option<UsageRecord>, sqlx::Error> {
    sqlx::query_as::<_, RecordRow>(&format!(
        "SELECT {COLUMNS} FROM usage_records WHERE execution_id = $1"
    ))
    .bind(execution_id.as_str())
    .fetch_optional(connection)
    .await?
    .map(UsageRecord::try_from)
    .transpose()
}

/// The record `id` of the account `account_id` (another account's record is not found).
pub async fn by_id(
    connection: &mut AnyConnection,
    account_id: &AccountId,
    id: i64,
) -> Result<Option<UsageRecord>, sqlx::Error> {
    sqlx::query_as::<_, RecordRow>(&format!(
        "SELECT {COLUMNS} FROM usage_records WHERE id = $1 AND account_id = $2"
    ))
    .bind(id)
    .bind(account_id.as_str())
    .fetch_optional(connection)
    .await?
    .map(UsageRecord::try_from)
    .transpose()
}

pub async fn set_refunded(
    connection: &mut AnyConnection,
    id: i64,
    amount: Money,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE usage_records SET refunded_amount = $1 WHERE id = $2")
        .bind(amount.nanos())
        .bind(id)
        .execute(connection)
        .await?;
    Ok(())
}

/// What one key settled in a recent window: executions opened in it, tokens settled in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecentUsage {
    pub opened: u64,
    /// The earliest open in the window.
    pub first_opened_at: Option<Millis>,
    pub tokens: u64,
    /// The earliest settlement in the window.
    pub first_settled_at: Option<Millis>,
}

/// [`recent`]'s sums.
#[derive(sqlx::FromRow)]
struct RecentRow {
    opened: i64,
    first_opened_at: Option<Millis>,
    tokens: i64,
    first_settled_at: Option<Millis>,
}

/// The usage of `api_key_id` settled after `since`.
pub async fn recent(
    connection: &mut AnyConnection,
    api_key_id: &ApiKeyId,
    since: Millis,
) -> Result<RecentUsage, sqlx::Error> {
    let row: RecentRow = sqlx::query_as(
        "SELECT CAST(COUNT(CASE WHEN started_at > $2 THEN 1 END) AS BIGINT) AS opened, \
         MIN(CASE WHEN started_at > $2 THEN started_at END) AS first_opened_at, \
         CAST(COALESCE(SUM(total_tokens), 0) AS BIGINT) AS tokens, MIN(timestamp) AS first_settled_at \
         FROM usage_records WHERE api_key_id = $1 AND timestamp > $2",
    )
    .bind(api_key_id.as_str())
    .bind(since)
    .fetch_one(connection)
    .await?;
    Ok(RecentUsage {
        opened: count(row.opened),
        first_opened_at: row.first_opened_at,
        tokens: count(row.tokens),
        first_settled_at: row.first_settled_at,
    })
}

/// When the key's latest call was recorded (index `usage_records_by_key_time`); `None` before its first.
pub async fn last_used(
    connection: &mut AnyConnection,
    api_key_id: &ApiKeyId,
) -> Result<Option<Millis>, sqlx::Error> {
    sqlx::query_scalar("SELECT MAX(timestamp) FROM usage_records WHERE api_key_id = $1")
        .bind(api_key_id.as_str())
        .fetch_one(connection)
        .await
}

const FILTER: &str = "account_id = $1 AND ($2 = '' OR api_key_id = $2) AND timestamp >= $3 \
    AND timestamp < $4 AND ($5 = '' OR workspace_id = $5) AND ($6 = '' OR model = $6) \
    AND ($7 = '' OR status = $7) AND ($8 = 0 OR end_user_id = $9)";

/// Every account's records in a time range.
const PLATFORM_FILTER: &str = "timestamp >= $1 AND timestamp < $2";

/// Whose records a query sums: one account's, filtered, or every account's in a time range.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    Account(&'a AccountId, &'a UsageFilter),
    Platform { from: Millis, to: Millis },
}

impl Scope<'_> {
    fn filter(self) -> &'static str {
        match self {
            Scope::Account(..) => FILTER,
            Scope::Platform { .. } => PLATFORM_FILTER,
        }
    }

    fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        match self {
            Scope::Account(account_id, filter) => bind_filter(query, account_id, filter),
            Scope::Platform { from, to } => query.bind(from).bind(to),
        }
    }
}

/// Binds [`FILTER`]'s `$1` to `$9`.
fn bind_filter<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    account_id: &AccountId,
    filter: &UsageFilter,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(account_id.as_str().to_string())
        .bind(
            filter
                .api_key_id
                .as_ref()
                .map_or("", ApiKeyId::as_str)
                .to_string(),
        )
        .bind(filter.from)
        .bind(filter.to)
        .bind(filter.workspace_id.clone())
        .bind(filter.model.clone())
        .bind(filter.status.map_or("", UsageStatus::as_str))
        .bind(i64::from(filter.end_user_id.is_some()))
        .bind(filter.end_user_id.clone().unwrap_or_default())
}

/// Newest first, ids below `before`, at most `limit` rows.
pub async fn list(
    connection: &mut AnyConnection,
    account_id: &AccountId,
    filter: &UsageFilter,
    before: i64,
    limit: i64,
) -> Result<Vec<UsageRecord>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM usage_records WHERE {FILTER} AND id < $10 ORDER BY id DESC LIMIT $11"
    );
    bind_filter(sqlx::query(&sql), account_id, filter)
        .bind(before)
        .bind(limit)
        .fetch_all(connection)
        .await?
        .iter()
        .map(|row| UsageRecord::try_from(RecordRow::from_row(row)?))
        .collect()
}

/// The sums of [`Totals`], each named by its alias (some are the names of the columns they sum: inside
/// the `SUM(total_cost)` of [`top_by`]'s ORDER BY, both databases read the table's column, not the alias).
const SUMS: &str = "CAST(COUNT(*) AS BIGINT) AS requests, \
    CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens, \
    CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens, \
    CAST(COALESCE(SUM(total_tokens), 0) AS BIGINT) AS total_tokens, \
    CAST(COALESCE(SUM(total_cost), 0) AS BIGINT) AS total_cost, \
    CAST(COALESCE(SUM(provider_cost), 0) AS BIGINT) AS provider_cost, \
    CAST(COALESCE(SUM(CASE WHEN provider_cost IS NULL THEN 0 ELSE total_cost - provider_cost END), 0) AS BIGINT) \
    AS margin, \
    CAST(COALESCE(SUM(cached_input_tokens), 0) AS BIGINT) AS cached_input_tokens, \
    CAST(COALESCE(SUM(cache_write_tokens), 0) AS BIGINT) AS cache_write_tokens, \
    CAST(COALESCE(SUM(cache_write_1h_tokens), 0) AS BIGINT) AS cache_write_1h_tokens, \
    CAST(COALESCE(SUM(reasoning_tokens), 0) AS BIGINT) AS reasoning_tokens, \
    CAST(COALESCE(SUM(audio_input_tokens), 0) AS BIGINT) AS audio_input_tokens, \
    CAST(COALESCE(SUM(audio_output_tokens), 0) AS BIGINT) AS audio_output_tokens";

/// [`SUMS`]; money in nano-dollars.
#[derive(sqlx::FromRow)]
struct TotalsRow {
    requests: i64,
    input_tokens: i64,
    output_tokens: i64,
    total_tokens: i64,
    total_cost: i64,
    provider_cost: i64,
    margin: i64,
    #[sqlx(flatten)]
    classes: ClassesRow,
}

impl From<TotalsRow> for Totals {
    fn from(row: TotalsRow) -> Totals {
        Totals {
            requests: row.requests,
            input_tokens: row.input_tokens,
            output_tokens: row.output_tokens,
            total_tokens: row.total_tokens,
            total_cost: Money::from_nanos(row.total_cost),
            provider_cost: Money::from_nanos(row.provider_cost),
            margin: Money::from_nanos(row.margin),
            classes: row.classes.into(),
        }
    }
}

/// A row of [`grouped`]: the group's value (`G`: a day number or a text) and its [`SUMS`].
#[derive(sqlx::FromRow)]
struct GroupRow<G> {
    group_value: G,
    #[sqlx(flatten)]
    totals: TotalsRow,
}

pub async fn totals(
    connection: &mut AnyConnection,
    scope: Scope<'_>,
) -> Result<Totals, sqlx::Error> {
    let sql = format!("SELECT {SUMS} FROM usage_records WHERE {}", scope.filter());
    let row = scope.bind(sqlx::query(&sql)).fetch_one(connection).await?;
    Ok(TotalsRow::from_row(&row)?.into())
}

/// Totals per value of `column`, ordered by that value.
pub async fn totals_by(
    connection: &mut AnyConnection,
    scope: Scope<'_>,
    column: GroupBy,
) -> Result<Vec<(String, Totals)>, sqlx::Error> {
    grouped(connection, scope, column, column.as_str()).await
}

/// The `limit` values of `column` with the highest total cost, highest first (ties by value).
pub async fn top_by(
    connection: &mut AnyConnection,
    scope: Scope<'_>,
    column: GroupBy,
    limit: usize,
) -> Result<Vec<(String, Totals)>, sqlx::Error> {
    // `limit` is a number, written into the SQL as digits: never a client's text.
    let order = format!("SUM(total_cost) DESC, {} LIMIT {limit}", column.as_str());
    grouped(connection, scope, column, &order).await
}

/// Totals per value of `column`, in `order` (an ORDER BY clause, with a LIMIT or not).
async fn grouped(
    connection: &mut AnyConnection,
    scope: Scope<'_>,
    column: GroupBy,
    order: &str,
) -> Result<Vec<(String, Totals)>, sqlx::Error> {
    let group = column.as_str();
    let sql = format!(
        "SELECT {group} AS group_value, {SUMS} FROM usage_records WHERE {} GROUP BY {group} ORDER BY {order}",
        scope.filter()
    );
    scope
        .bind(sqlx::query(&sql))
        .fetch_all(connection)
        .await?
        .iter()
        .map(|row| {
            Ok(match column {
                GroupBy::Day => {
                    let row = GroupRow::<i64>::from_row(row)?;
                    (row.group_value.to_string(), row.totals.into())
                }
                GroupBy::Model | GroupBy::Workspace | GroupBy::EndUser | GroupBy::Account => {
                    let row = GroupRow::<String>::from_row(row)?;
                    (row.group_value, row.totals.into())
                }
            })
        })
        .collect()
}

/// The columns usage can be grouped by.
#[derive(Debug, Clone, Copy)]
pub enum GroupBy {
    Model,
    Workspace,
    EndUser,
    /// The UTC day, as days since 1970-01-01 (the group's text is that number).
    Day,
    Account,
}

impl GroupBy {
    fn as_str(self) -> &'static str {
        match self {
            GroupBy::Model => "model",
            GroupBy::Workspace => "workspace_id",
            GroupBy::EndUser => "end_user_id",
            GroupBy::Day => "CAST(timestamp / 86400000 AS BIGINT)",
            GroupBy::Account => "account_id",
        }
    }
}

/// A row of [`bucket_sums`]: the bucket's start, the grouped columns (empty when not grouped by) and the
/// sums; money in nano-dollars.
#[derive(sqlx::FromRow)]
struct BucketRow {
    bucket: i64,
    model: String,
    api_key_id: String,
    end_user_id: String,
    workspace_id: String,
    requests: i64,
    input_tokens: i64,
    output_tokens: i64,
    cached_input_tokens: i64,
    audio_input_tokens: i64,
    audio_output_tokens: i64,
    charged: i64,
    charged_input: i64,
    charged_fees: i64,
}

/// The sums of [`BucketRow`] over records. A record's input cost and fee count toward what it charged only
/// when it charged anything (an internal key's record charges nothing).
const BUCKET_SUMS: &str = "CAST(COUNT(*) AS BIGINT) AS requests, \
    CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens, \
    CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens, \
    CAST(COALESCE(SUM(cached_input_tokens), 0) AS BIGINT) AS cached_input_tokens, \
    CAST(COALESCE(SUM(audio_input_tokens), 0) AS BIGINT) AS audio_input_tokens, \
    CAST(COALESCE(SUM(audio_output_tokens), 0) AS BIGINT) AS audio_output_tokens, \
    CAST(COALESCE(SUM(charged), 0) AS BIGINT) AS charged, \
    CAST(COALESCE(SUM(CASE WHEN charged = 0 THEN 0 ELSE input_cost END), 0) AS BIGINT) AS charged_input, \
    CAST(COALESCE(SUM(CASE WHEN charged = 0 THEN 0 ELSE request_fee END), 0) AS BIGINT) AS charged_fees";

/// The same sums over `usage_hourly` rows, which hold them per hour already.
const HOURLY_SUMS: &str = "CAST(COALESCE(SUM(requests), 0) AS BIGINT) AS requests, \
    CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens, \
    CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens, \
    CAST(COALESCE(SUM(cached_input_tokens), 0) AS BIGINT) AS cached_input_tokens, \
    CAST(COALESCE(SUM(audio_input_tokens), 0) AS BIGINT) AS audio_input_tokens, \
    CAST(COALESCE(SUM(audio_output_tokens), 0) AS BIGINT) AS audio_output_tokens, \
    CAST(COALESCE(SUM(charged), 0) AS BIGINT) AS charged, \
    CAST(COALESCE(SUM(charged_input), 0) AS BIGINT) AS charged_input, \
    CAST(COALESCE(SUM(charged_fees), 0) AS BIGINT) AS charged_fees";

/// Where [`bucket_sums`] reads: the records, or their hourly sums (`usage_hourly`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SumSource {
    Records,
    Hourly,
}

impl SumSource {
    fn table(self) -> &'static str {
        match self {
            SumSource::Records => "usage_records",
            SumSource::Hourly => "usage_hourly",
        }
    }

    fn time(self) -> &'static str {
        match self {
            SumSource::Records => "timestamp",
            SumSource::Hourly => "hour",
        }
    }

    fn sums(self) -> &'static str {
        match self {
            SumSource::Records => BUCKET_SUMS,
            SumSource::Hourly => HOURLY_SUMS,
        }
    }

    /// The condition selecting `report`'s rows.
    fn report(self, report: Report) -> String {
        match (self, report) {
            (_, Report::Costs) => String::new(),
            (SumSource::Records, Report::Completions) => {
                format!(" AND endpoint <> '{EMBEDDINGS_ENDPOINT}'")
            }
            (SumSource::Records, Report::Embeddings) => {
                format!(" AND endpoint = '{EMBEDDINGS_ENDPOINT}'")
            }
            (SumSource::Hourly, Report::Completions) => " AND embeddings = 0".into(),
            (SumSource::Hourly, Report::Embeddings) => " AND embeddings = 1".into(),
        }
    }
}

/// The sums per bucket (and per group) of one account's rows of `source` in `[from, to)` (inside `plan`'s
/// page). One range scan of the index `usage_records_by_account_time (account_id, timestamp)`, or of
/// `usage_hourly`'s primary key: the bucket's start is computed from the row's time (`time - time % width`),
/// grouped in the same statement.
pub async fn bucket_sums(
    connection: &mut AnyConnection,
    account_id: &AccountId,
    plan: &Plan,
    source: SumSource,
    (from, to): (Millis, Millis),
) -> Result<Vec<GroupSums>, sqlx::Error> {
    let grouping = plan.grouping;
    let time = source.time();
    // Every piece of this SQL is a constant of this function or a number: client values are bound.
    let bucket = format!("{time} - ({time} % {})", plan.width.millis());
    let mut select = vec![format!("CAST({bucket} AS BIGINT) AS bucket")];
    let mut group = vec![bucket];
    for (grouped, column) in [
        (grouping.model_column(), "model"),
        (grouping.api_key, "api_key_id"),
        (grouping.end_user, "end_user_id"),
        (grouping.workspace, "workspace_id"),
    ] {
        if grouped {
            select.push(column.to_string());
            group.push(column.to_string());
        } else {
            select.push(format!("CAST('' AS TEXT) AS {column}"));
        }
    }
    let mut filter = format!(
        "account_id = $1 AND {time} >= $2 AND {time} < $3{}",
        source.report(plan.report)
    );
    let filters = &plan.filters;
    let mut values: Vec<&str> = Vec::new();
    for (column, list) in [
        ("model", &filters.models),
        ("api_key_id", &filters.api_key_ids),
        ("end_user_id", &filters.end_user_ids),
        ("workspace_id", &filters.workspace_ids),
    ] {
        if list.is_empty() {
            continue;
        }
        let placeholders: Vec<String> = (0..list.len())
            .map(|index| format!("${}", 4 + values.len() + index))
            .collect();
        filter.push_str(&format!(" AND {column} IN ({})", placeholders.join(", ")));
        values.extend(list.iter().map(String::as_str));
    }
    let sql = format!(
        "SELECT {}, {} FROM {} WHERE {filter} GROUP BY {group}",
        select.join(", "),
        source.sums(),
        source.table(),
        group = group.join(", "),
    );
    let mut query = sqlx::query(&sql)
        .bind(account_id.as_str())
        .bind(from)
        .bind(to);
    for value in values {
        query = query.bind(value);
    }
    query
        .fetch_all(connection)
        .await?
        .iter()
        .map(|row| {
            let row = BucketRow::from_row(row)?;
            Ok(GroupSums {
                bucket: row.bucket,
                model: grouping.model_column().then_some(row.model),
                api_key_id: grouping.api_key.then_some(row.api_key_id),
                end_user_id: grouping.end_user.then_some(row.end_user_id),
                workspace_id: grouping.workspace.then_some(row.workspace_id),
                requests: count(row.requests),
                input_tokens: count(row.input_tokens),
                output_tokens: count(row.output_tokens),
                cached_input_tokens: count(row.cached_input_tokens),
                audio_input_tokens: count(row.audio_input_tokens),
                audio_output_tokens: count(row.audio_output_tokens),
                charged: Money::from_nanos(row.charged),
                charged_input: Money::from_nanos(row.charged_input),
                charged_fees: Money::from_nanos(row.charged_fees),
            })
        })
        .collect()
}

/// Where the account's hourly sums end: every hour before it is in `usage_hourly` (0: none is).
pub async fn rolled_until(
    connection: &mut AnyConnection,
    account_id: &AccountId,
) -> Result<Millis, sqlx::Error> {
    let until: Option<Millis> =
        sqlx::query_scalar("SELECT rolled_until FROM usage_rollups WHERE account_id = $1")
            .bind(account_id.as_str())
            .fetch_optional(connection)
            .await?;
    Ok(until.unwrap_or(0))
}

/// Sums the account's records of the hours in `[from, to)` (hour-aligned, none summed before) into
/// `usage_hourly`, and moves its `rolled_until` to `to`.
pub async fn roll_up(
    connection: &mut AnyConnection,
    account_id: &AccountId,
    from: Millis,
    to: Millis,
) -> Result<(), sqlx::Error> {
    let hour = "timestamp - (timestamp % 3600000)";
    let embeddings = format!("CASE WHEN endpoint = '{EMBEDDINGS_ENDPOINT}' THEN 1 ELSE 0 END");
    sqlx::query(&format!(
        "INSERT INTO usage_hourly (account_id, hour, embeddings, model, api_key_id, end_user_id, workspace_id, \
         requests, input_tokens, output_tokens, cached_input_tokens, audio_input_tokens, audio_output_tokens, \
         charged, charged_input, charged_fees) \
         SELECT account_id, CAST({hour} AS BIGINT), CAST({embeddings} AS BIGINT), model, api_key_id, end_user_id, \
         workspace_id, {BUCKET_SUMS} FROM usage_records \
         WHERE account_id = $1 AND timestamp >= $2 AND timestamp < $3 \
         GROUP BY account_id, {hour}, {embeddings}, model, api_key_id, end_user_id, workspace_id"
    ))
    .bind(account_id.as_str())
    .bind(from)
    .bind(to)
    .execute(&mut *connection)
    .await?;
    sqlx::query(
        "INSERT INTO usage_rollups (account_id, rolled_until) VALUES ($1, $2) \
         ON CONFLICT (account_id) DO UPDATE SET rolled_until = excluded.rolled_until",
    )
    .bind(account_id.as_str())
    .bind(to)
    .execute(connection)
    .await?;
    Ok(())
}

/// Accounts after `after` (id order) with records in the hours they have not summed before `until`, at most
/// `limit`: one probe of `usage_records_by_account_time` per account.
pub async fn behind(
    connection: &mut AnyConnection,
    until: Millis,
    after: &str,
    limit: i64,
) -> Result<Vec<AccountId>, sqlx::Error> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT a.id FROM billing_accounts a LEFT JOIN usage_rollups r ON r.account_id = a.id \
         WHERE a.id > $2 AND COALESCE(r.rolled_until, 0) < $1 AND EXISTS (SELECT 1 FROM usage_records u \
         WHERE u.account_id = a.id AND u.timestamp >= COALESCE(r.rolled_until, 0) AND u.timestamp < $1) \
         ORDER BY a.id LIMIT $3",
    )
    .bind(until)
    .bind(after)
    .bind(limit)
    .fetch_all(connection)
    .await?;
    Ok(ids.into_iter().map(AccountId::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_has_a_type() {
        assert_eq!(COLUMNS.split(',').count(), TYPES.len());
    }
}
