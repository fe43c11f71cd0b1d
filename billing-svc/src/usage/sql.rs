//! SQL of `usage_records`: one row per settled execution, and the aggregates the stats are made of.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Totals, UsageFilter, UsageRecord, UsageStatus};
use crate::keys::KeyType;
use crate::prices::TokenClasses;
use crate::store::bulk;
use crate::time::Millis;
use money::Money;
use proto::ids::{AccountId, ApiKeyId, ExecutionId};
use rust_decimal::Decimal;

/// The type of each column of [`COLUMNS`] (see [`bulk::bind_rows`]).
const TYPES: &str = "itttttiiiiiiiiititttiiiitiiiiiiiiitt";

const COLUMNS: &str = "id, account_id, api_key_id, execution_id, session_id, workspace_id, timestamp, input_tokens, output_tokens, \
    total_tokens, input_cost, output_cost, total_cost, charged, overage, model, duration_ms, status, endpoint, key_type, \
    balance_after, total_spent_after, refunded_amount, started_at, provider, attempts, cached_input_tokens, \
    cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, audio_input_tokens, audio_output_tokens, request_fee, \
    provider_cost, discount_percent, end_user_id";

fn decode_error(what: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unknown {what} {value:?}").into())
}

fn from_row(row: &AnyRow) -> Result<UsageRecord, sqlx::Error> {
    let status: String = row.try_get(17)?;
    let key_type: String = row.try_get(19)?;
    let balance_after: Option<i64> = row.try_get(20)?;
    let total_spent_after: Option<i64> = row.try_get(21)?;
    let refunded: Option<i64> = row.try_get(22)?;
    let count = |index: usize| -> Result<u64, sqlx::Error> {
        Ok(u64::try_from(row.try_get::<i64, _>(index)?).unwrap_or(0))
    };
    let provider_cost: Option<i64> = row.try_get(33)?;
    let discount: String = row.try_get(34)?;
    Ok(UsageRecord {
        id: row.try_get(0)?,
        account_id: AccountId::from(row.try_get::<String, _>(1)?),
        api_key_id: ApiKeyId::from(row.try_get::<String, _>(2)?),
        execution_id: ExecutionId::from(row.try_get::<String, _>(3)?),
        session_id: row.try_get(4)?,
        workspace_id: row.try_get(5)?,
        timestamp: row.try_get(6)?,
        input_tokens: row.try_get(7)?,
        output_tokens: row.try_get(8)?,
        total_tokens: row.try_get(9)?,
        input_cost: Money::from_nanos(row.try_get(10)?),
        output_cost: Money::from_nanos(row.try_get(11)?),
        total_cost: Money::from_nanos(row.try_get(12)?),
        charged: Money::from_nanos(row.try_get(13)?),
        overage: Money::from_nanos(row.try_get(14)?),
        model: row.try_get(15)?,
        duration_ms: row.try_get(16)?,
        status: UsageStatus::parse(&status).ok_or_else(|| decode_error("usage status", &status))?,
        endpoint: row.try_get(18)?,
        key_type: KeyType::parse(&key_type).ok_or_else(|| decode_error("key type", &key_type))?,
        balance_after: balance_after.map(Money::from_nanos),
        total_spent_after: total_spent_after.map(Money::from_nanos),
        refunded_amount: refunded.map(Money::from_nanos),
        started_at: row.try_get(23)?,
        provider: row.try_get(24)?,
        attempts: row.try_get(25)?,
        classes: TokenClasses {
            cached_input: count(26)?,
            cache_write: count(27)?,
            cache_write_1h: count(28)?,
            reasoning: count(29)?,
            audio_input: count(30)?,
            audio_output: count(31)?,
        },
        request_fee: Money::from_nanos(row.try_get(32)?),
        provider_cost: provider_cost.map(Money::from_nanos),
        discount_percent: Decimal::from_str_exact(&discount)
            .map_err(|_| decode_error("discount percent", &discount))?,
        end_user_id: row.try_get(35)?,
    })
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
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM usage_records WHERE execution_id = $1"
    ))
    .bind(execution_id.as_str())
    .fetch_optional(connection)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// The record `id` of the account `account_id` (another account's record is not found).
pub async fn by_id(
    connection: &mut AnyConnection,
    account_id: &AccountId,
    id: i64,
) -> Result<Option<UsageRecord>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM usage_records WHERE id = $1 AND account_id = $2"
    ))
    .bind(id)
    .bind(account_id.as_str())
    .fetch_optional(connection)
    .await?
    .as_ref()
    .map(from_row)
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

/// The usage of `api_key_id` settled after `since`.
pub async fn recent(
    connection: &mut AnyConnection,
    api_key_id: &ApiKeyId,
    since: Millis,
) -> Result<RecentUsage, sqlx::Error> {
    let row = sqlx::query(
        "SELECT CAST(COUNT(CASE WHEN started_at > $2 THEN 1 END) AS BIGINT), \
         MIN(CASE WHEN started_at > $2 THEN started_at END), \
         CAST(COALESCE(SUM(total_tokens), 0) AS BIGINT), MIN(timestamp) \
         FROM usage_records WHERE api_key_id = $1 AND timestamp > $2",
    )
    .bind(api_key_id.as_str())
    .bind(since)
    .fetch_one(connection)
    .await?;
    let count = |value: i64| u64::try_from(value).unwrap_or(0);
    Ok(RecentUsage {
        opened: count(row.try_get(0)?),
        first_opened_at: row.try_get(1)?,
        tokens: count(row.try_get(2)?),
        first_settled_at: row.try_get(3)?,
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
        .map(from_row)
        .collect()
}

const SUMS: &str = "CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT), \
    CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT), CAST(COALESCE(SUM(total_tokens), 0) AS BIGINT), \
    CAST(COALESCE(SUM(total_cost), 0) AS BIGINT), CAST(COALESCE(SUM(provider_cost), 0) AS BIGINT), \
    CAST(COALESCE(SUM(CASE WHEN provider_cost IS NULL THEN 0 ELSE total_cost - provider_cost END), 0) AS BIGINT), \
    CAST(COALESCE(SUM(cached_input_tokens), 0) AS BIGINT), CAST(COALESCE(SUM(cache_write_tokens), 0) AS BIGINT), \
    CAST(COALESCE(SUM(cache_write_1h_tokens), 0) AS BIGINT), CAST(COALESCE(SUM(reasoning_tokens), 0) AS BIGINT), \
    CAST(COALESCE(SUM(audio_input_tokens), 0) AS BIGINT), CAST(COALESCE(SUM(audio_output_tokens), 0) AS BIGINT)";

fn totals_from_row(row: &AnyRow, first: usize) -> Result<Totals, sqlx::Error> {
    let count = |index: usize| -> Result<u64, sqlx::Error> {
        Ok(u64::try_from(row.try_get::<i64, _>(first + index)?).unwrap_or(0))
    };
    Ok(Totals {
        requests: row.try_get(first)?,
        input_tokens: row.try_get(first + 1)?,
        output_tokens: row.try_get(first + 2)?,
        total_tokens: row.try_get(first + 3)?,
        total_cost: Money::from_nanos(row.try_get(first + 4)?),
        provider_cost: Money::from_nanos(row.try_get(first + 5)?),
        margin: Money::from_nanos(row.try_get(first + 6)?),
        classes: TokenClasses {
            cached_input: count(7)?,
            cache_write: count(8)?,
            cache_write_1h: count(9)?,
            reasoning: count(10)?,
            audio_input: count(11)?,
            audio_output: count(12)?,
        },
    })
}

pub async fn totals(
    connection: &mut AnyConnection,
    scope: Scope<'_>,
) -> Result<Totals, sqlx::Error> {
    let sql = format!("SELECT {SUMS} FROM usage_records WHERE {}", scope.filter());
    let row = scope.bind(sqlx::query(&sql)).fetch_one(connection).await?;
    totals_from_row(&row, 0)
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
        "SELECT {group}, {SUMS} FROM usage_records WHERE {} GROUP BY {group} ORDER BY {order}",
        scope.filter()
    );
    scope
        .bind(sqlx::query(&sql))
        .fetch_all(connection)
        .await?
        .iter()
        .map(|row| {
            let group = match column {
                GroupBy::Day => row.try_get::<i64, _>(0)?.to_string(),
                GroupBy::Model | GroupBy::Workspace | GroupBy::EndUser | GroupBy::Account => {
                    row.try_get(0)?
                }
            };
            Ok((group, totals_from_row(row, 1)?))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_has_a_type() {
        assert_eq!(COLUMNS.split(',').count(), TYPES.len());
    }
}
