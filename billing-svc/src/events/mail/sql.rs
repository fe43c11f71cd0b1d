//! SQL of the mailer: its cursor in the outbox (`mail_cursor`, one row) and its attempts (`mail_attempts`).

use sqlx::AnyConnection;

use crate::time::Millis;

/// Where the mailer stands in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Cursor {
    /// Every event up to this `seq` is done (mailed, not for mail, or given up).
    pub delivered_seq: i64,
    /// Failed attempts at the next event.
    pub failures: i64,
    pub next_attempt_at: Millis,
}

/// Takes the cursor for this process until `until` when it is due and nobody holds it.
pub async fn claim(
    connection: &mut AnyConnection,
    now: Millis,
    until: Millis,
) -> Result<Option<Cursor>, sqlx::Error> {
    let claimed = sqlx::query(
        "UPDATE mail_cursor SET leased_until = $1 WHERE id = 1 AND leased_until <= $2 \
         AND next_attempt_at <= $2",
    )
    .bind(until)
    .bind(now)
    .execute(&mut *connection)
    .await?;
    if claimed.rows_affected() == 0 {
        return Ok(None);
    }
    sqlx::query_as::<_, Cursor>(
        "SELECT delivered_seq, failures, next_attempt_at FROM mail_cursor WHERE id = 1",
    )
    .fetch_optional(connection)
    .await
}

/// Saves where the mailer stands; `release` also frees the lease.
pub async fn save(
    connection: &mut AnyConnection,
    cursor: Cursor,
    release: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE mail_cursor SET delivered_seq = $1, failures = $2, next_attempt_at = $3, \
         leased_until = CASE WHEN $4 = 1 THEN 0 ELSE leased_until END WHERE id = 1",
    )
    .bind(cursor.delivered_seq)
    .bind(cursor.failures)
    .bind(cursor.next_attempt_at)
    .bind(i64::from(release))
    .execute(connection)
    .await?;
    Ok(())
}

/// One attempt at mailing an event.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MailAttempt {
    pub event_id: String,
    pub attempt: i64,
    pub recipient: String,
    pub at: Millis,
    pub error: Option<String>,
    pub succeeded: i64,
}

pub async fn insert_attempt(
    connection: &mut AnyConnection,
    attempt: &MailAttempt,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO mail_attempts (event_id, attempt, recipient, at, error, succeeded) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&attempt.event_id)
    .bind(attempt.attempt)
    .bind(&attempt.recipient)
    .bind(attempt.at)
    .bind(&attempt.error)
    .bind(attempt.succeeded)
    .execute(connection)
    .await?;
    Ok(())
}
