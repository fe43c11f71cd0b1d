//! SQL of `console_sessions` (CONSOLE.md, "Sessions and security").

use proto::ids::ApiKeyId;
use sqlx::{AnyConnection, Row};

use super::Session;
use crate::time::Millis;

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
    let row = sqlx::query(
        "SELECT token_hash, api_key_id, csrf_token, created_at, expires_at, ended_at \
         FROM console_sessions WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(connection)
    .await?;
    row.map(|row| {
        Ok(Session {
            token_hash: row.try_get(0)?,
            api_key_id: row.try_get::<Option<String>, _>(1)?.map(ApiKeyId::from),
            csrf_token: row.try_get(2)?,
            created_at: row.try_get(3)?,
            expires_at: row.try_get(4)?,
            ended_at: row.try_get(5)?,
        })
    })
    .transpose()
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
