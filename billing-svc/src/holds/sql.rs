//! SQL of `holds`: credit reserved for executions in flight.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::Hold;
use crate::store::bulk;
use crate::time::Millis;
use money::Money;
use proto::ids::{AccountId, ApiKeyId, ExecutionId};

/// The type of each column of [`COLUMNS`] (see [`bulk::bind_rows`]).
const TYPES: &str = "ttttiiiittttiit";

const COLUMNS: &str = "id, account_id, api_key_id, execution_id, amount, input_tokens, granted_output_tokens, max_output_tokens, \
    model, workspace_id, session_id, endpoint, started_at, expires_at, end_user_id";

fn from_row(row: &AnyRow) -> Result<Hold, sqlx::Error> {
    Ok(Hold {
        id: row.try_get(0)?,
        account_id: AccountId::from(row.try_get::<String, _>(1)?),
        api_key_id: ApiKeyId::from(row.try_get::<String, _>(2)?),
        execution_id: ExecutionId::from(row.try_get::<String, _>(3)?),
        amount: Money::from_nanos(row.try_get(4)?),
        input_tokens: row.try_get(5)?,
        granted_output_tokens: row.try_get(6)?,
        max_output_tokens: row.try_get(7)?,
        model: row.try_get(8)?,
        workspace_id: row.try_get(9)?,
        session_id: row.try_get(10)?,
        endpoint: row.try_get(11)?,
        started_at: row.try_get(12)?,
        expires_at: row.try_get(13)?,
        end_user_id: row.try_get(14)?,
    })
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

/// The active holds of `api_key_id`, and how many of them started after `since`.
pub async fn of_key(
    connection: &mut AnyConnection,
    api_key_id: &ApiKeyId,
    since: Millis,
) -> Result<KeyHolds, sqlx::Error> {
    let row = sqlx::query(
        "SELECT CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(amount), 0) AS BIGINT), \
         CAST(COALESCE(SUM(input_tokens + granted_output_tokens), 0) AS BIGINT), \
         CAST(COUNT(CASE WHEN started_at > $2 THEN 1 END) AS BIGINT), \
         MIN(CASE WHEN started_at > $2 THEN started_at END) \
         FROM holds WHERE api_key_id = $1",
    )
    .bind(api_key_id.as_str())
    .bind(since)
    .fetch_one(connection)
    .await?;
    let count = |value: i64| u64::try_from(value).unwrap_or(0);
    Ok(KeyHolds {
        count: count(row.try_get(0)?),
        amount: Money::from_nanos(row.try_get(1)?),
        tokens: count(row.try_get(2)?),
        opened_since: count(row.try_get(3)?),
        first_opened_at: row.try_get(4)?,
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
            Ok(match row.try_get::<Option<String>, _>(0)? {
                Some(_) => {
                    let hold = from_row(row)?;
                    (hold.execution_id.clone(), Known::Held(Box::new(hold)))
                }
                None => (
                    ExecutionId::from(row.try_get::<String, _>(3)?),
                    Known::Settled,
                ),
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
            .bind(hold.granted_output_tokens)
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

/// Writes what growing changed in `holds` (amount, grant, expiry), at most [`bulk::MAX_ROWS`], in one
/// statement.
pub async fn update_grants(
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
            .bind(hold.granted_output_tokens)
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
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM holds WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(connection)
    .await?
    .iter()
    .map(from_row)
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
