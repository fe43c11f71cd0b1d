//! SQL of `holds`: credit reserved for executions in flight.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::money::Money;
use crate::time::Millis;

#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    pub id: String,
    pub api_key_id: String,
    pub execution_id: String,
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

const COLUMNS: &str = "id, api_key_id, execution_id, amount, input_tokens, granted_output_tokens, max_output_tokens, \
    model, workspace_id, session_id, endpoint, started_at, expires_at";

fn from_row(row: &AnyRow) -> Result<Hold, sqlx::Error> {
    Ok(Hold {
        id: row.try_get(0)?,
        api_key_id: row.try_get(1)?,
        execution_id: row.try_get(2)?,
        amount: Money::from_nanos(row.try_get(3)?),
        input_tokens: row.try_get(4)?,
        granted_output_tokens: row.try_get(5)?,
        max_output_tokens: row.try_get(6)?,
        model: row.try_get(7)?,
        workspace_id: row.try_get(8)?,
        session_id: row.try_get(9)?,
        endpoint: row.try_get(10)?,
        started_at: row.try_get(11)?,
        expires_at: row.try_get(12)?,
    })
}

/// Inserts the hold of a new execution: false, writing nothing, when the execution id already has a hold
/// or a usage record.
pub async fn insert_new(connection: &mut AnyConnection, hold: &Hold) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(&format!(
        "INSERT INTO holds ({COLUMNS}) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 \
         WHERE NOT EXISTS (SELECT 1 FROM usage_records WHERE execution_id = $3) \
         ON CONFLICT (execution_id) DO NOTHING"
    ))
    .bind(&hold.id)
    .bind(&hold.api_key_id)
    .bind(&hold.execution_id)
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
    execution_id: &str,
) -> Result<Option<Hold>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM holds WHERE execution_id = $1"
    ))
    .bind(execution_id)
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
    execution_id: &str,
) -> Result<bool, sqlx::Error> {
    let row = sqlx::query(
        "SELECT 1 WHERE EXISTS (SELECT 1 FROM holds WHERE execution_id = $1) \
         OR EXISTS (SELECT 1 FROM usage_records WHERE execution_id = $1)",
    )
    .bind(execution_id)
    .fetch_optional(connection)
    .await?;
    Ok(row.is_some())
}

/// Deletes the hold of `execution_id` and returns it.
pub async fn take(
    connection: &mut AnyConnection,
    execution_id: &str,
) -> Result<Option<Hold>, sqlx::Error> {
    sqlx::query(&format!(
        "DELETE FROM holds WHERE execution_id = $1 RETURNING {COLUMNS}"
    ))
    .bind(execution_id)
    .fetch_optional(connection)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// Deletes the hold of `execution_id` if it has expired at `now`, and returns it.
pub async fn take_expired(
    connection: &mut AnyConnection,
    execution_id: &str,
    now: Millis,
) -> Result<Option<Hold>, sqlx::Error> {
    sqlx::query(&format!(
        "DELETE FROM holds WHERE execution_id = $1 AND expires_at <= $2 RETURNING {COLUMNS}"
    ))
    .bind(execution_id)
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
