//! SQL of `api_keys`.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::keys::KeyType;
use crate::time::Millis;

/// A stored key: never the plain key; the hash only leaves this module for lookups.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub key_type: KeyType,
    pub prefix: String,
    pub hint: String,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
    pub expires_at: Option<Millis>,
}

const COLUMNS: &str = "id, name, key_type, prefix, hint, created_at, revoked_at, expires_at";

fn from_row(row: &AnyRow) -> Result<ApiKey, sqlx::Error> {
    let key_type: String = row.try_get(2)?;
    Ok(ApiKey {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        key_type: KeyType::parse(&key_type)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown key_type {key_type:?}").into()))?,
        prefix: row.try_get(3)?,
        hint: row.try_get(4)?,
        created_at: row.try_get(5)?,
        revoked_at: row.try_get(6)?,
        expires_at: row.try_get(7)?,
    })
}

pub async fn insert(
    connection: &mut AnyConnection,
    key: &ApiKey,
    key_hash: &str,
    account_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO api_keys (id, name, key_type, prefix, key_hash, hint, created_at, revoked_at, expires_at, account_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&key.id)
    .bind(&key.name)
    .bind(key.key_type.as_str())
    .bind(&key.prefix)
    .bind(key_hash)
    .bind(&key.hint)
    .bind(key.created_at)
    .bind(key.revoked_at)
    .bind(key.expires_at)
    .bind(account_id)
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn by_hash(
    connection: &mut AnyConnection,
    key_hash: &str,
) -> Result<Option<ApiKey>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE key_hash = $1"
    ))
    .bind(key_hash)
    .fetch_optional(connection)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

pub async fn by_id(
    connection: &mut AnyConnection,
    id: &str,
) -> Result<Option<ApiKey>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1"))
        .bind(id)
        .fetch_optional(connection)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Keys oldest first; revoked ones only when asked.
pub async fn list(
    connection: &mut AnyConnection,
    include_revoked: bool,
) -> Result<Vec<ApiKey>, sqlx::Error> {
    let filter = if include_revoked {
        ""
    } else {
        "WHERE revoked_at IS NULL"
    };
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM api_keys {filter} ORDER BY created_at, id"
    ))
    .fetch_all(connection)
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Sets `revoked_at` unless already set; returns the key as it is now.
pub async fn revoke(
    connection: &mut AnyConnection,
    id: &str,
    now: Millis,
) -> Result<Option<ApiKey>, sqlx::Error> {
    sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut *connection)
        .await?;
    by_id(connection, id).await
}
