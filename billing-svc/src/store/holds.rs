//! SQL of `holds`: credit reserved for executions in flight.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::money::Money;
use crate::time::Millis;
use proto::ids::{AccountId, ApiKeyId, ExecutionId};

#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    pub id: String,
    pub account_id: AccountId,
    pub api_key_id: ApiKeyId,
    pub execution_id: ExecutionId,
    pub amount: Money,
    pub input_tokens: i64,
    pub granted_output_tokens: i64,
    pub max_output_tokens: i64,
    pub model: String,
    pub workspace_id: String,
    pub session_id: String,
    pub endpoint: String,
    pub started_at: Millis,
    pub expires_at: Millis,
}

const COLUMNS: &str = "id, account_id, api_key_id, execution_id, amount, input_tokens, granted_output_tokens, max_output_tokens, \
    model, workspace_id, session_id, endpoint, started_at, expires_at";

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

/// Inserts the hold of a new execution: false, writing nothing, when the execution id already has a hold
/// or a usage record.
pub async fn insert_new(connection: &mut AnyConnection, hold: &Hold) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(&format!(
        "INSERT INTO holds ({COLUMNS}) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 \
         WHERE NOT EXISTS (SELECT 1 FROM usage_records WHERE execution_id = $4) \
         ON CONFLICT (execution_id) DO NOTHING"
    ))
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
    .execute(connection)
    .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn by_execution(
    connection: &mut AnyConnection,
    execution_id: &ExecutionId,
) -> Result<Option<Hold>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM holds WHERE execution_id = $1"
    ))
    .bind(execution_id.as_str())
    .fetch_optional(connection)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// Writes a grown hold: its amount, grant and new expiry.
pub async fn update_grant(connection: &mut AnyConnection, hold: &Hold) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE holds SET amount = $1, granted_output_tokens = $2, expires_at = $3 WHERE id = $4",
    )
    .bind(hold.amount.nanos())
    .bind(hold.granted_output_tokens)
    .bind(hold.expires_at)
    .bind(&hold.id)
    .execute(connection)
    .await?;
    Ok(())
}

/// Whether `execution_id` has a hold or a usage record.
pub async fn execution_known(
    connection: &mut AnyConnection,
    execution_id: &ExecutionId,
) -> Result<bool, sqlx::Error> {
    let row = sqlx::query(
        "SELECT 1 WHERE EXISTS (SELECT 1 FROM holds WHERE execution_id = $1) \
         OR EXISTS (SELECT 1 FROM usage_records WHERE execution_id = $1)",
    )
    .bind(execution_id.as_str())
    .fetch_optional(connection)
    .await?;
    Ok(row.is_some())
}

/// Deletes the hold of `execution_id` and returns it.
pub async fn take(
    connection: &mut AnyConnection,
    execution_id: &ExecutionId,
) -> Result<Option<Hold>, sqlx::Error> {
    sqlx::query(&format!(
        "DELETE FROM holds WHERE execution_id = $1 RETURNING {COLUMNS}"
    ))
    .bind(execution_id.as_str())
    .fetch_optional(connection)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// Deletes the hold of `execution_id` if it has expired at `now`, and returns it.
pub async fn take_expired(
    connection: &mut AnyConnection,
    execution_id: &ExecutionId,
    now: Millis,
) -> Result<Option<Hold>, sqlx::Error> {
    sqlx::query(&format!(
        "DELETE FROM holds WHERE execution_id = $1 AND expires_at <= $2 RETURNING {COLUMNS}"
    ))
    .bind(execution_id.as_str())
    .bind(now)
    .fetch_optional(connection)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
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
