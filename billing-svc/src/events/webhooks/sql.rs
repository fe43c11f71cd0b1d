//! SQL of `webhook_endpoints` and `webhook_attempts`.

use proto::ids::AccountId;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Attempt, Endpoint};
use crate::time::Millis;

const COLUMNS: &str = "id, account_id, url, event_types, secret, created_at, disabled_at, delivered_seq, \
    failures, next_attempt_at";

fn from_row(row: &AnyRow) -> Result<Endpoint, sqlx::Error> {
    let account_id: Option<String> = row.try_get(1)?;
    let event_types: String = row.try_get(3)?;
    Ok(Endpoint {
        id: row.try_get(0)?,
        account_id: account_id.map(AccountId::from),
        url: row.try_get(2)?,
        event_types: serde_json::from_str(&event_types)
            .map_err(|error| sqlx::Error::Decode(format!("event_types: {error}").into()))?,
        secret: row.try_get(4)?,
        created_at: row.try_get(5)?,
        disabled_at: row.try_get(6)?,
        delivered_seq: row.try_get(7)?,
        failures: row.try_get(8)?,
        next_attempt_at: row.try_get(9)?,
    })
}

/// Inserts an endpoint that starts after the newest event (it receives what happens from now on).
pub async fn insert(
    connection: &mut AnyConnection,
    endpoint: &Endpoint,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, account_id, url, event_types, secret, created_at, delivered_seq) \
         VALUES ($1, $2, $3, $4, $5, $6, (SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM events))",
    )
    .bind(&endpoint.id)
    .bind(endpoint.account_id.as_ref().map(AccountId::as_str))
    .bind(&endpoint.url)
    .bind(serde_json::to_string(&endpoint.event_types).unwrap_or_else(|_| "[]".into()))
    .bind(&endpoint.secret)
    .bind(endpoint.created_at)
    .execute(connection)
    .await?;
    Ok(())
}

/// The live (not deleted) endpoints of an account, or the operator's (`None`).
pub async fn list(
    connection: &mut AnyConnection,
    account_id: Option<&AccountId>,
) -> Result<Vec<Endpoint>, sqlx::Error> {
    let filter = match account_id {
        Some(_) => "account_id = $1",
        None => "account_id IS NULL AND $1 = ''",
    };
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM webhook_endpoints WHERE {filter} AND deleted_at IS NULL ORDER BY created_at, id"
    ))
    .bind(account_id.map_or("", AccountId::as_str))
    .fetch_all(connection)
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Marks an endpoint of `account_id` (or the operator's) deleted; false when there is none.
pub async fn delete(
    connection: &mut AnyConnection,
    id: &str,
    account_id: Option<&AccountId>,
    now: Millis,
) -> Result<bool, sqlx::Error> {
    let filter = match account_id {
        Some(_) => "account_id = $3",
        None => "account_id IS NULL AND $3 = ''",
    };
    let result = sqlx::query(&format!(
        "UPDATE webhook_endpoints SET deleted_at = $1 WHERE id = $2 AND {filter} AND deleted_at IS NULL"
    ))
    .bind(now)
    .bind(id)
    .bind(account_id.map_or("", AccountId::as_str))
    .execute(connection)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Enabled endpoints due for delivery at `now` whose lease is free: each is leased until `lease_until`.
pub async fn claim_due(
    connection: &mut AnyConnection,
    now: Millis,
    lease_until: Millis,
    limit: i64,
) -> Result<Vec<Endpoint>, sqlx::Error> {
    let due: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM webhook_endpoints WHERE deleted_at IS NULL AND disabled_at IS NULL \
         AND next_attempt_at <= $1 AND lease_until <= $1 ORDER BY next_attempt_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *connection)
    .await?;
    let mut claimed = Vec::new();
    for id in due {
        let row = sqlx::query(&format!(
            "UPDATE webhook_endpoints SET lease_until = $1 WHERE id = $2 AND lease_until <= $3 \
             AND deleted_at IS NULL AND disabled_at IS NULL RETURNING {COLUMNS}"
        ))
        .bind(lease_until)
        .bind(&id)
        .bind(now)
        .fetch_optional(&mut *connection)
        .await?;
        if let Some(row) = row {
            claimed.push(from_row(&row)?);
        }
    }
    Ok(claimed)
}

/// Writes where an endpoint's delivery stands and frees its lease. The cursor never moves back (a process
/// whose lease lapsed may save after another one went further).
pub async fn save_progress(
    connection: &mut AnyConnection,
    endpoint: &Endpoint,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_endpoints SET \
         delivered_seq = CASE WHEN delivered_seq > $1 THEN delivered_seq ELSE $1 END, failures = $2, \
         next_attempt_at = $3, disabled_at = $4, lease_until = 0 WHERE id = $5",
    )
    .bind(endpoint.delivered_seq)
    .bind(endpoint.failures)
    .bind(endpoint.next_attempt_at)
    .bind(endpoint.disabled_at)
    .bind(&endpoint.id)
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn insert_attempt(
    connection: &mut AnyConnection,
    attempt: &Attempt,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhook_attempts (endpoint_id, event_id, attempt, at, status, error, duration_ms, succeeded) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&attempt.endpoint_id)
    .bind(&attempt.event_id)
    .bind(attempt.attempt)
    .bind(attempt.at)
    .bind(attempt.status)
    .bind(&attempt.error)
    .bind(attempt.duration_ms)
    .bind(i64::from(attempt.succeeded))
    .execute(connection)
    .await?;
    Ok(())
}

/// The attempts of one event, oldest first.
pub async fn attempts_of(
    connection: &mut AnyConnection,
    event_id: &str,
) -> Result<Vec<Attempt>, sqlx::Error> {
    sqlx::query(
        "SELECT endpoint_id, event_id, attempt, at, status, error, duration_ms, succeeded \
         FROM webhook_attempts WHERE event_id = $1 ORDER BY id",
    )
    .bind(event_id)
    .fetch_all(connection)
    .await?
    .iter()
    .map(|row| {
        let succeeded: i64 = row.try_get(7)?;
        Ok(Attempt {
            endpoint_id: row.try_get(0)?,
            event_id: row.try_get(1)?,
            attempt: row.try_get(2)?,
            at: row.try_get(3)?,
            status: row.try_get(4)?,
            error: row.try_get(5)?,
            duration_ms: row.try_get(6)?,
            succeeded: succeeded != 0,
        })
    })
    .collect()
}
