//! SQL of `api_keys`.

use sqlx::AnyConnection;

use super::policy::Policy;
use super::{ApiKey, Found, KeyType, Role};
use crate::store::bulk;
use crate::store::row::{column_error, parse_enum};
use crate::time::Millis;
use proto::ids::{AccountId, ApiKeyId};

const COLUMNS: &str = "id, account_id, name, key_type, role, policy, prefix, hint, created_at, revoked_at, \
    expires_at, previous_key_expires_at, rotated_at";

/// A row of `api_keys`: [`COLUMNS`].
#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    account_id: String,
    name: String,
    key_type: String,
    role: String,
    /// JSON ([`Policy::to_json`]).
    policy: String,
    prefix: String,
    hint: String,
    created_at: Millis,
    revoked_at: Option<Millis>,
    expires_at: Option<Millis>,
    previous_key_expires_at: Option<Millis>,
    rotated_at: Option<Millis>,
}

impl TryFrom<KeyRow> for ApiKey {
    type Error = sqlx::Error;

    fn try_from(row: KeyRow) -> Result<ApiKey, sqlx::Error> {
        Ok(ApiKey {
            id: ApiKeyId::from(row.id),
            account_id: AccountId::from(row.account_id),
            name: row.name,
            key_type: parse_enum("key_type", &row.key_type, KeyType::parse)?,
            role: parse_enum("role", &row.role, Role::parse)?,
            policy: Policy::from_json(&row.policy)
                .map_err(|error| column_error("policy", error))?,
            prefix: row.prefix,
            hint: row.hint,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
            expires_at: row.expires_at,
            previous_key_expires_at: row.previous_key_expires_at,
            rotated_at: row.rotated_at,
        })
    }
}

/// A key found by a hash: its row, and 1 when the hash is its current secret's (0: the previous one's).
#[derive(sqlx::FromRow)]
struct FoundRow {
    #[sqlx(flatten)]
    key: KeyRow,
    current_secret: i64,
}

/// A live key due for a `key.expiring` notice, and its account.
#[derive(sqlx::FromRow)]
struct ExpiringRow {
    id: String,
    account_id: String,
}

pub async fn insert(
    connection: &mut AnyConnection,
    key: &ApiKey,
    key_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO api_keys (id, account_id, name, key_type, role, policy, prefix, key_hash, hint, created_at, \
         revoked_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(key.id.as_str())
    .bind(key.account_id.as_str())
    .bind(&key.name)
    .bind(key.key_type.as_str())
    .bind(key.role.as_str())
    .bind(key.policy.to_json())
    .bind(&key.prefix)
    .bind(key_hash)
    .bind(&key.hint)
    .bind(key.created_at)
    .bind(key.revoked_at)
    .bind(key.expires_at)
    .execute(connection)
    .await?;
    Ok(())
}

/// The key whose current or previous secret hashes to `key_hash`.
pub async fn by_hash(
    connection: &mut AnyConnection,
    key_hash: &str,
) -> Result<Option<Found>, sqlx::Error> {
    let row = sqlx::query_as::<_, FoundRow>(&format!(
        "SELECT {COLUMNS}, CAST(CASE WHEN key_hash = $1 THEN 1 ELSE 0 END AS BIGINT) AS current_secret \
         FROM api_keys WHERE key_hash = $1 OR previous_key_hash = $1"
    ))
    .bind(key_hash)
    .fetch_optional(connection)
    .await?;
    row.map(|row| {
        Ok(Found {
            key: ApiKey::try_from(row.key)?,
            previous_secret: row.current_secret == 0,
        })
    })
    .transpose()
}

pub async fn by_id(
    connection: &mut AnyConnection,
    id: &ApiKeyId,
) -> Result<Option<ApiKey>, sqlx::Error> {
    sqlx::query_as::<_, KeyRow>(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1"))
        .bind(id.as_str())
        .fetch_optional(connection)
        .await?
        .map(ApiKey::try_from)
        .transpose()
}

/// The keys `ids` (at most [`bulk::MAX_ROWS`]) in one statement; unknown ids are absent.
pub async fn by_ids(
    connection: &mut AnyConnection,
    ids: &[&ApiKeyId],
) -> Result<Vec<ApiKey>, sqlx::Error> {
    let rows: Vec<KeyRow> = bulk::fetch_in(connection, ids, |list| {
        format!("SELECT {COLUMNS} FROM api_keys WHERE id IN ({list})")
    })
    .await?;
    rows.into_iter().map(ApiKey::try_from).collect()
}

/// Keys oldest first, of every account or of one; revoked ones only when asked.
pub async fn list(
    connection: &mut AnyConnection,
    account_id: Option<&AccountId>,
    include_revoked: bool,
) -> Result<Vec<ApiKey>, sqlx::Error> {
    let revoked = if include_revoked {
        ""
    } else {
        "AND revoked_at IS NULL"
    };
    sqlx::query_as::<_, KeyRow>(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE ($1 = '' OR account_id = $1) {revoked} ORDER BY created_at, id"
    ))
    .bind(account_id.map_or("", AccountId::as_str))
    .fetch_all(connection)
    .await?
    .into_iter()
    .map(ApiKey::try_from)
    .collect()
}

/// Sets `revoked_at` unless already set; returns the key as it is now.
pub async fn revoke(
    connection: &mut AnyConnection,
    id: &ApiKeyId,
    now: Millis,
) -> Result<Option<ApiKey>, sqlx::Error> {
    sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id.as_str())
        .execute(&mut *connection)
        .await?;
    by_id(connection, id).await
}

/// Writes a key's name, role, policy and expiry (a new expiry gets its `key.expiring` notices again).
pub async fn update(connection: &mut AnyConnection, key: &ApiKey) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE api_keys SET name = $1, role = $2, policy = $3, \
         expiry_notices = CASE WHEN expires_at = $4 THEN expiry_notices ELSE 0 END, expires_at = $4 WHERE id = $5",
    )
    .bind(&key.name)
    .bind(key.role.as_str())
    .bind(key.policy.to_json())
    .bind(key.expires_at)
    .bind(key.id.as_str())
    .execute(connection)
    .await?;
    Ok(())
}

/// Gives a key a new secret; the current one becomes the previous secret until `previous_expires_at`
/// (or is dropped at once when that is `None`).
pub async fn rotate(
    connection: &mut AnyConnection,
    id: &ApiKeyId,
    new_hash: &str,
    hint: &str,
    previous_expires_at: Option<Millis>,
    now: Millis,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE api_keys SET previous_key_hash = CASE WHEN $1 IS NULL THEN NULL ELSE key_hash END, \
         previous_key_expires_at = $1, key_hash = $2, hint = $3, rotated_at = $4 WHERE id = $5",
    )
    .bind(previous_expires_at)
    .bind(new_hash)
    .bind(hint)
    .bind(now)
    .bind(id.as_str())
    .execute(connection)
    .await?;
    Ok(())
}

/// Live keys whose next `key.expiring` notice is due at `now` (the 7-day one within 7 days of `expiresAt`,
/// the 1-day one within a day), with their account: at most `limit`.
pub async fn expiry_notices_due(
    connection: &mut AnyConnection,
    now: Millis,
    limit: i64,
) -> Result<Vec<(ApiKeyId, AccountId)>, sqlx::Error> {
    const DAY_MS: Millis = 86_400_000;
    let rows: Vec<ExpiringRow> = sqlx::query_as(
        "SELECT id, account_id FROM api_keys WHERE revoked_at IS NULL AND expires_at > $1 \
         AND ((expiry_notices < 1 AND expires_at <= $2) OR (expiry_notices < 2 AND expires_at <= $3)) \
         ORDER BY expires_at LIMIT $4",
    )
    .bind(now)
    .bind(now + 7 * DAY_MS)
    .bind(now + DAY_MS)
    .bind(limit)
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (ApiKeyId::from(row.id), AccountId::from(row.account_id)))
        .collect())
}

/// Records that a key had notice `notice` (1: 7 days, 2: 1 day); false when it already had it.
pub async fn set_expiry_notice(
    connection: &mut AnyConnection,
    id: &ApiKeyId,
    notice: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE api_keys SET expiry_notices = $1 WHERE id = $2 AND expiry_notices < $1",
    )
    .bind(notice)
    .bind(id.as_str())
    .execute(connection)
    .await?;
    Ok(result.rows_affected() == 1)
}
