//! SQL of `holds`: credit set aside for executions in flight.

use sqlx::{AnyConnection, FromRow};

use super::Hold;
use crate::store::bulk;
use crate::store::row::{column_error, count};
use crate::time::Millis;
use money::Money;
use proto::ids::{AccountId, ApiKeyId, ExecutionId};

/// The type of each column of [`COLUMNS`] (see [`bulk::bind_rows`]).
const TYPES: &str = "ttttiiiittttiit";

const COLUMNS: &str = "id, account_id, api_key_id, execution_id, amount, input_tokens, granted_output_tokens, max_output_tokens, \
    model, workspace_id, session_id, endpoint, started_at, expires_at, end_user_id";

/// A row of `holds`: [`COLUMNS`]; the amount in nano-dollars.
#[derive(sqlx::FromRow)]
struct HoldRow {
    /// Never NULL in `holds`; NULL in [`of_executions`]' rows of settled executions.
    id: Option<String>,
    account_id: String,
    api_key_id: String,
    execution_id: String,
    amount: i64,
    input_tokens: i64,
    granted_output_tokens: i64,
    max_output_tokens: i64,
    model: String,
    workspace_id: String,
    session_id: String,
    endpoint: String,
    started_at: Millis,
    expires_at: Millis,
    end_user_id: String,
}

impl TryFrom<HoldRow> for Hold {
    type Error = sqlx::Error;

    fn try_from(row: HoldRow) -> Result<Hold, sqlx::Error> {
        Ok(Hold {
            id: row.id.ok_or_else(|| column_error("id", "NULL"))?,
            account_id: AccountId::from(row.account_id),
            api_key_id: ApiKeyId::from(row.api_key_id),
            execution_id: ExecutionId::from(row.execution_id),
            amount: Money::from_nanos(row.amount),
            input_tokens: row.input_tokens,
            covered_output_tokens: row.granted_output_tokens,
            max_output_tokens: row.max_output_tokens,
            model: row.model,
            workspace_id: row.workspace_id,
            session_id: row.session_id,
            endpoint: row.endpoint,
            started_at: row.started_at,
            expires_at: row.expires_at,
            end_user_id: row.end_user_id,
        })
    }
}

/// The active holds of one key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyHolds {
    pub count: u64,
    pub amount: Money,
    /// Input plus granted output tokens.
    pub tokens: u64,
    /// Holds started after the `since` given.
    pub opened_since: u64,
    /// The earliest start among those.
    pub first_opened_at: Option<Millis>,
}

/// [`of_key`]'s sums; amounts in nano-dollars.
#[derive(sqlx::FromRow)]
struct KeyHoldsRow {
    count: i64,
    amount: i64,
    tokens: i64,
    opened_since: i64,
    first_opened_at: Option<Millis>,
}

/// The active holds of `api_key_id`, and how many of them started after `since`.
pub async fn of_key(
    connection: &mut AnyConnection,
    api_key_id: &ApiKeyId,
    since: Millis,
) -> Result<KeyHolds, sqlx::Error> {
    let row: KeyHoldsRow = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT) AS count, CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS amount, \
         CAST(COALESCE(SUM(input_tokens + granted_output_tokens), 0) AS BIGINT) AS tokens, \
         CAST(COUNT(CASE WHEN started_at > $2 THEN 1 END) AS BIGINT) AS opened_since, \
         MIN(CASE WHEN started_at > $2 THEN started_at END) AS first_opened_at \
         FROM holds WHERE api_key_id = $1",
    )
    .bind(api_key_id.as_str())
    .bind(since)
    .fetch_one(connection)
    .await?;
    Ok(KeyHolds {
        count: count(row.count),
        amount: Money::from_nanos(row.amount),
        tokens: count(row.tokens),
        opened_since: count(row.opened_since),
        first_opened_at: row.first_opened_at,
    })
}

/// What the database knows of an execution id: its hold, or that it was settled.
#[derive(Debug, Clone, PartialEq)]
pub enum Known {
    Held(Box<Hold>),
    /// A usage record exists (and no hold).
    Settled,
}

/// The holds and the settled executions among `ids` (at most [`bulk::MAX_ROWS`]), in one statement; ids
/// the database knows nothing of are absent.
pub async fn of_executions(
    connection: &mut AnyConnection,
    ids: &[&ExecutionId],
) -> Result<Vec<(ExecutionId, Known)>, sqlx::Error> {
    debug_assert!(ids.len() <= bulk::MAX_ROWS);
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let (style, slots) = (bulk::Style::of(connection), bulk::slots(ids.len()));
    // A settled execution is a row with no hold id; the other columns only need the hold row's types.
    let sql = format!(
        "SELECT {COLUMNS} FROM holds WHERE execution_id IN ({}) UNION ALL \
         SELECT NULL, account_id, api_key_id, execution_id, 0, 0, 0, 0, '', '', '', '', 0, 0, '' \
         FROM usage_records WHERE execution_id IN ({})",
        bulk::placeholders(style, slots, 1),
        bulk::placeholders(style, slots, slots + 1)
    );
    let query = bulk::bind_padded(sqlx::query(&sql), ids, |query, id| query.bind(id.as_str()));
    let query = bulk::bind_padded(query, ids, |query, id| query.bind(id.as_str()));
    query
        .fetch_all(connection)
        .await?
        .iter()
        .map(|row| {
            let row = HoldRow::from_row(row)?;
            Ok(match row.id {
                Some(_) => {
                    let hold = Hold::try_from(row)?;
                    (hold.execution_id.clone(), Known::Held(Box::new(hold)))
                }
                None => (ExecutionId::from(row.execution_id), Known::Settled),
            })
        })
        .collect()
}

/// Inserts new `holds`, at most [`bulk::MAX_ROWS`], in one statement. An execution id that another
/// transaction took meanwhile (possible only for ids reused across accounts, which lock different rows)
/// violates the unique index and fails the statement, and with it the batch: a hold is never replaced.
pub async fn insert(connection: &mut AnyConnection, holds: &[Hold]) -> Result<(), sqlx::Error> {
    debug_assert!(holds.len() <= bulk::MAX_ROWS);
    if holds.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO holds ({COLUMNS}) {}",
        bulk::insert_rows(bulk::Style::of(connection), holds.len(), TYPES)
    );
    bulk::bind_rows(sqlx::query(&sql), holds, TYPES, |query, hold| {
        query
            .bind(&hold.id)
            .bind(hold.account_id.as_str())
            .bind(hold.api_key_id.as_str())
            .bind(hold.execution_id.as_str())
            .bind(hold.amount.nanos())
            .bind(hold.input_tokens)
            .bind(hold.covered_output_tokens)
            .bind(hold.max_output_tokens)
            .bind(&hold.model)
            .bind(&hold.workspace_id)
            .bind(&hold.session_id)
            .bind(&hold.endpoint)
            .bind(hold.started_at)
            .bind(hold.expires_at)
            .bind(&hold.end_user_id)
    })
    .execute(connection)
    .await?;
    Ok(())
}

/// Writes what extending changed in `holds` (amount, covered output, expiry), at most [`bulk::MAX_ROWS`], in one
/// statement.
pub async fn update_extended(
    connection: &mut AnyConnection,
    holds: &[&Hold],
) -> Result<(), sqlx::Error> {
    debug_assert!(holds.len() <= bulk::MAX_ROWS);
    if holds.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "WITH v (id, amount, granted_output_tokens, expires_at) AS (VALUES {}) \
         UPDATE holds SET amount = v.amount, granted_output_tokens = v.granted_output_tokens, \
         expires_at = v.expires_at FROM v WHERE holds.id = v.id",
        bulk::tuples(bulk::Style::of(connection), bulk::slots(holds.len()), 4, 1)
    );
    bulk::bind_padded(sqlx::query(&sql), holds, |query, hold| {
        query
            .bind(&hold.id)
            .bind(hold.amount.nanos())
            .bind(hold.covered_output_tokens)
            .bind(hold.expires_at)
    })
    .execute(connection)
    .await?;
    Ok(())
}

/// Deletes the holds of `ids` (settled or released), at most [`bulk::MAX_ROWS`], in one statement.
pub async fn delete(
    connection: &mut AnyConnection,
    ids: &[&ExecutionId],
) -> Result<(), sqlx::Error> {
    debug_assert!(ids.len() <= bulk::MAX_ROWS);
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "DELETE FROM holds WHERE execution_id IN ({})",
        bulk::placeholders(bulk::Style::of(connection), bulk::slots(ids.len()), 1)
    );
    bulk::bind_padded(sqlx::query(&sql), ids, |query, id| query.bind(id.as_str()))
        .execute(connection)
        .await?;
    Ok(())
}

/// Up to `limit` holds expired at `now`, oldest expiry first.
pub async fn expired(
    connection: &mut AnyConnection,
    now: Millis,
    limit: i64,
) -> Result<Vec<Hold>, sqlx::Error> {
    sqlx::query_as::<_, HoldRow>(&format!(
        "SELECT {COLUMNS} FROM holds WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(connection)
    .await?
    .into_iter()
    .map(Hold::try_from)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_has_a_type() {
        assert_eq!(COLUMNS.split(',').count(), TYPES.len());
    }
}
