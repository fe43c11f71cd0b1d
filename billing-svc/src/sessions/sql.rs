//! SQL of `console_sessions` (CONSOLE.md, "Sessions and security").

use proto::ids::ApiKeyId;
use sqlx::AnyConnection;

use super::Session;
use crate::time::Millis;

/// A row of `console_sessions`, as [`by_hash`] reads it.
#[derive(sqlx::FromRow)]
struct SessionRow {
    token_hash: String,
    /// `None`: the operator's session.
    api_key_id: Option<String>,
    csrf_token: String,
    created_at: Millis,
    expires_at: Millis,
    ended_at: Option<Millis>,
}

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Session {
        Session {
            token_hash: row.token_hash,
            api_key_id: row.api_key_id.map(ApiKeyId::from),
            csrf_token: row.csrf_token,
            created_at: row.created_at,
            expires_at: row.expires_at,
            ended_at: row.ended_at,
        }
    }
}

pub async fn insert(connection: &mut AnyConnection, session: &Session) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO console_sessions (token_hash, api_key_id, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&session.token_hash)
    .bind(session.api_key_id.as_ref().map(ApiKeyId::as_str))
    .bind(&session.csrf_token)
    .bind(session.created_at)
    .bind(session.expires_at)
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn by_hash(
    connection: &mut AnyConnection,
    token_hash: &str,
) -> Result<Option<Session>, sqlx::Error> {
    let row: Option<SessionRow> = sqlx::query_as(
        "SELECT token_hash, api_key_id, csrf_token, created_at, expires_at, ended_at \
         FROM console_sessions WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(connection)
    .await?;
    Ok(row.map(Session::from))
}

/// Ends a session (sign-out); false when it had already ended.
pub async fn end(
    connection: &mut AnyConnection,
    token_hash: &str,
    now: Millis,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE console_sessions SET ended_at = $1 WHERE token_hash = $2 AND ended_at IS NULL",
    )
    .bind(now)
    .bind(token_hash)
    .execute(connection)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Forgets sessions that ended or expired before `before`.
pub async fn purge(connection: &mut AnyConnection, before: Millis) -> Result<u64, sqlx::Error> {
    let result = sqlx::query("DELETE FROM console_sessions WHERE expires_at < $1 OR ended_at < $1")
        .bind(before)
        .execute(connection)
        .await?;
    Ok(result.rows_affected())
}
