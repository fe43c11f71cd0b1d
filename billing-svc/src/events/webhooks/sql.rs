//! SQL of `webhook_endpoints` and `webhook_attempts`.

use proto::ids::{AccountId, WebhookId};
use sqlx::AnyConnection;

use super::{Attempt, Endpoint};
use crate::store::row::column_error;
use crate::time::Millis;

const COLUMNS: &str = "id, account_id, url, event_types, secret, created_at, disabled_at, delivered_seq, \
    failures, next_attempt_at";

/// A row of `webhook_endpoints`: [`COLUMNS`].
#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: String,
    /// `None`: the operator's endpoint.
    account_id: Option<String>,
    url: String,
    /// JSON: an array of event types.
    event_types: String,
    secret: String,
    created_at: Millis,
    disabled_at: Option<Millis>,
    delivered_seq: i64,
    failures: i64,
    next_attempt_at: Millis,
}

impl TryFrom<EndpointRow> for Endpoint {
    type Error = sqlx::Error;

    fn try_from(row: EndpointRow) -> Result<Endpoint, sqlx::Error> {
        Ok(Endpoint {
            id: WebhookId::from(row.id),
            account_id: row.account_id.map(AccountId::from),
            url: row.url,
            event_types: serde_json::from_str(&row.event_types)
                .map_err(|error| column_error("event_types", error))?,
            secret: row.secret,
            created_at: row.created_at,
            disabled_at: row.disabled_at,
            delivered_seq: row.delivered_seq,
            failures: row.failures,
            next_attempt_at: row.next_attempt_at,
        })
    }
}

/// A row of `webhook_attempts`, as [`attempts_of`] reads it.
#[derive(sqlx::FromRow)]
struct AttemptRow {
    endpoint_id: String,
    event_id: String,
    attempt: i64,
    at: Millis,
    status: Option<i64>,
    error: Option<String>,
    duration_ms: i64,
    /// 1 or 0.
    succeeded: i64,
}

impl From<AttemptRow> for Attempt {
    fn from(row: AttemptRow) -> Attempt {
        Attempt {
            endpoint_id: WebhookId::from(row.endpoint_id),
            event_id: row.event_id,
            attempt: row.attempt,
            at: row.at,
            status: row.status,
            error: row.error,
            duration_ms: row.duration_ms,
            succeeded: row.succeeded != 0,
        }
    }
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
    .bind(endpoint.id.as_str())
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
    sqlx::query_as::<_, EndpointRow>(&format!(
        "SELECT {COLUMNS} FROM webhook_endpoints WHERE {filter} AND deleted_at IS NULL ORDER BY created_at, id"
    ))
    .bind(account_id.map_or("", AccountId::as_str))
    .fetch_all(connection)
    .await?
    .into_iter()
    .map(Endpoint::try_from)
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
        let row = sqlx::query_as::<_, EndpointRow>(&format!(
            "UPDATE webhook_endpoints SET lease_until = $1 WHERE id = $2 AND lease_until <= $3 \
             AND deleted_at IS NULL AND disabled_at IS NULL RETURNING {COLUMNS}"
        ))
        .bind(lease_until)
        .bind(&id)
        .bind(now)
        .fetch_optional(&mut *connection)
        .await?;
        if let Some(row) = row {
            claimed.push(Endpoint::try_from(row)?);
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
    .bind(endpoint.id.as_str())
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
    .bind(attempt.endpoint_id.as_str())
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
    let rows: Vec<AttemptRow> = sqlx::query_as(
        "SELECT endpoint_id, event_id, attempt, at, status, error, duration_ms, succeeded \
         FROM webhook_attempts WHERE event_id = $1 ORDER BY id",
    )
    .bind(event_id)
    .fetch_all(connection)
    .await?;
    Ok(rows.into_iter().map(Attempt::from).collect())
}
