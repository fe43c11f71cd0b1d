//! SQL of `events`, the transactional outbox (BILLING.md, "Events and alerts"): an event is inserted by the
//! operation that causes it, inside that operation's transaction, so it exists exactly when the change does.

use proto::ids::{AccountId, EventId};
use sqlx::AnyConnection;

use super::{Event, EventType};
use crate::store::backend::Backend;
use crate::store::bulk;
use crate::store::row::{column_error, parse_enum};
use crate::time::Millis;

const COLUMNS: &str = "seq, id, account_id, type, data, created_at";

/// A row of `events`: [`COLUMNS`].
#[derive(sqlx::FromRow)]
struct EventRow {
    seq: i64,
    id: String,
    account_id: String,
    #[sqlx(rename = "type")]
    kind: String,
    /// JSON.
    data: String,
    created_at: Millis,
}

impl TryFrom<EventRow> for Event {
    type Error = sqlx::Error;

    fn try_from(row: EventRow) -> Result<Event, sqlx::Error> {
        Ok(Event {
            seq: row.seq,
            id: EventId::from(row.id),
            account_id: AccountId::from(row.account_id),
            kind: parse_enum("type", &row.kind, EventType::parse)?,
            data: serde_json::from_str(&row.data).map_err(|error| column_error("data", error))?,
            created_at: row.created_at,
        })
    }
}

/// The PostgreSQL advisory lock that orders the commits writing events (any constant unique to it).
const OUTBOX_LOCK: i64 = 0x6f75_7462_6f78; // "outbox"

/// Inserts `events` as the last writes of a transaction about to commit; returns the statements sent.
///
/// Deliveries read the outbox by `seq` and keep a cursor, so an event must never commit after one with a
/// higher `seq` has been read: it would be behind the cursor, never delivered. `seq` is taken when a row
/// is inserted, so with concurrent transactions (several writers, several replicas on PostgreSQL) a lower
/// `seq` could commit later. On PostgreSQL the insert therefore first takes a transaction-scoped advisory
/// lock, held until the commit, so transactions that write events commit one at a time in `seq` order;
/// the lock is the last one such a transaction takes, so it adds no deadlock, and it is held only for the
/// insert and the commit. SQLite has one writer at a time already.
pub async fn insert_at_commit(
    connection: &mut AnyConnection,
    backend: Backend,
    events: &[Event],
) -> Result<u64, sqlx::Error> {
    if events.is_empty() {
        return Ok(0);
    }
    let mut statements = 0;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(OUTBOX_LOCK)
            .execute(&mut *connection)
            .await?;
        statements += 1;
    }
    for chunk in events.chunks(bulk::MAX_ROWS) {
        insert(&mut *connection, chunk).await?;
        statements += 1;
    }
    Ok(statements)
}

/// Inserts `events` (at most [`bulk::MAX_ROWS`]) in one statement; their `seq` follows their order.
async fn insert(connection: &mut AnyConnection, events: &[Event]) -> Result<(), sqlx::Error> {
    debug_assert!(events.len() <= bulk::MAX_ROWS);
    // Not padded: `DISTINCT` could reorder the rows, and their order is the order of delivery.
    let sql = format!(
        "INSERT INTO events (id, account_id, type, data, created_at) VALUES {}",
        bulk::tuples(bulk::Style::of(connection), events.len(), 5, 1)
    );
    let data: Vec<String> = events.iter().map(|event| event.data.to_string()).collect();
    let mut query = sqlx::query(&sql);
    for (event, data) in events.iter().zip(&data) {
        query = query
            .bind(event.id.as_str())
            .bind(event.account_id.as_str())
            .bind(event.kind.as_str())
            .bind(data.as_str())
            .bind(event.created_at);
    }
    query.execute(connection).await?;
    Ok(())
}

/// Newest first, `seq` below `before`, at most `limit`; of one account or of all, of one type or all.
pub async fn list(
    connection: &mut AnyConnection,
    account_id: Option<&AccountId>,
    kind: Option<EventType>,
    before: i64,
    limit: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    sqlx::query_as::<_, EventRow>(&format!(
        "SELECT {COLUMNS} FROM events WHERE ($1 = '' OR account_id = $1) AND ($2 = '' OR type = $2) \
         AND seq < $3 ORDER BY seq DESC LIMIT $4"
    ))
    .bind(account_id.map_or("", AccountId::as_str))
    .bind(kind.map_or("", EventType::as_str))
    .bind(before)
    .bind(limit)
    .fetch_all(connection)
    .await?
    .into_iter()
    .map(Event::try_from)
    .collect()
}

/// Events after `seq` in outbox order, of one account or of all, at most `limit`.
pub async fn after(
    connection: &mut AnyConnection,
    seq: i64,
    account_id: Option<&AccountId>,
    limit: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    sqlx::query_as::<_, EventRow>(&format!(
        "SELECT {COLUMNS} FROM events WHERE seq > $1 AND ($2 = '' OR account_id = $2) ORDER BY seq LIMIT $3"
    ))
    .bind(seq)
    .bind(account_id.map_or("", AccountId::as_str))
    .bind(limit)
    .fetch_all(connection)
    .await?
    .into_iter()
    .map(Event::try_from)
    .collect()
}

pub async fn by_id(connection: &mut AnyConnection, id: &str) -> Result<Option<Event>, sqlx::Error> {
    sqlx::query_as::<_, EventRow>(&format!("SELECT {COLUMNS} FROM events WHERE id = $1"))
        .bind(id)
        .fetch_optional(connection)
        .await?
        .map(Event::try_from)
        .transpose()
}
