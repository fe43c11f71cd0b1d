//! Multi-row statements: a batch reads and writes each table with one statement, whatever the number of
//! rows (up to [`MAX_ROWS`] per statement).
//!
//! The text of such a statement depends on its number of rows, and each text is a prepared statement in
//! sqlx's per-connection cache (100 by default). So the rows are padded up to the next power of four
//! ([`slots`]: 1, 4, 16, 64 or 256): an `IN` list or an update repeats its last row, and an insert adds rows
//! of NULLs that it filters out ([`insert_rows`], [`bind_rows`]). A table then has at most five texts per
//! statement, which stay cached.
//!
//! On SQLite the placeholders are positional (`?`): sqlx looks up the name of every numbered parameter
//! (`$n`) with `sqlite3_bind_parameter_name`, which scans the statement's list of names, so binding n
//! numbered parameters costs O(n²): a third of billing-svc's CPU at 1,500 parameters per statement.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, AnyConnection, FromRow};

/// A statement being bound.
pub type Query<'q> = sqlx::query::Query<'q, Any, AnyArguments<'q>>;

/// Most rows in one statement: the widest row (usage records, 24 columns) times this stays far below the
/// parameter limits of SQLite (32,766) and PostgreSQL (65,535).
pub const MAX_ROWS: usize = 256;

/// How many rows a statement for `rows` rows is written for: the next power of four.
pub fn slots(rows: usize) -> usize {
    let mut slots = 1;
    while slots < rows {
        slots *= 4;
    }
    slots
}

/// How a statement names its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `$1, $2, …` (PostgreSQL).
    Numbered,
    /// `?, ?, …`, bound in order (SQLite).
    Positional,
}

impl Style {
    /// The style for the database behind `connection`.
    pub fn of(connection: &AnyConnection) -> Style {
        if connection.backend_name() == "SQLite" {
            Style::Positional
        } else {
            Style::Numbered
        }
    }
}

/// `($1, $2), ($3, $4), …`: `rows` tuples of `columns` placeholders, numbered from `$first`.
pub fn tuples(style: Style, rows: usize, columns: usize, first: usize) -> String {
    (0..rows)
        .map(|row| format!("({})", placeholders(style, columns, first + row * columns)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `$first, $first+1, …` (or `?, ?, …`): `count` placeholders.
pub fn placeholders(style: Style, count: usize, first: usize) -> String {
    (first..first + count)
        .map(|index| match style {
            Style::Numbered => format!("${index}"),
            Style::Positional => "?".to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `SELECT * FROM (VALUES …) AS v WHERE v.column1 IS NOT NULL`: the rows of an insert of `rows` rows of
/// `columns` (see [`bind_rows`]), padded rows left out. Each column's NULLs are typed like its values, so
/// PostgreSQL finds one type per column.
pub fn insert_rows(style: Style, rows: usize, columns: &str) -> String {
    format!(
        "SELECT * FROM (VALUES {}) AS v WHERE v.column1 IS NOT NULL",
        tuples(style, slots(rows), columns.len(), 1)
    )
}

/// Binds every item of `items`, then rows of NULLs up to [`slots`] of their number. `columns` gives each
/// column's type: `t` text, `i` 64-bit integer.
pub fn bind_rows<'q, T>(
    mut query: Query<'q>,
    items: &'q [T],
    columns: &str,
    bind: impl Fn(Query<'q>, &'q T) -> Query<'q>,
) -> Query<'q> {
    for item in items {
        query = bind(query, item);
    }
    for _ in items.len()..slots(items.len()) {
        for column in columns.bytes() {
            query = match column {
                b't' => query.bind(None::<String>),
                _ => query.bind(None::<i64>),
            };
        }
    }
    query
}

/// Binds every item of `items`, then the last one again up to [`slots`] of their number.
pub fn bind_padded<'q, T>(
    mut query: Query<'q>,
    items: &'q [T],
    bind: impl Fn(Query<'q>, &'q T) -> Query<'q>,
) -> Query<'q> {
    let Some(last) = items.last() else {
        return query;
    };
    for item in items {
        query = bind(query, item);
    }
    for _ in items.len()..slots(items.len()) {
        query = bind(query, last);
    }
    query
}

/// Fetches, as row structs `R`, the rows of the statement `sql` makes of an `IN` list of placeholders for
/// `ids` (at most [`MAX_ROWS`], padded to [`slots`]), whose only parameters are `ids`; no ids, no statement.
pub async fn fetch_in<I, R>(
    connection: &mut AnyConnection,
    ids: &[&I],
    sql: impl FnOnce(&str) -> String,
) -> Result<Vec<R>, sqlx::Error>
where
    I: AsRef<str>,
    R: for<'r> FromRow<'r, AnyRow>,
{
    debug_assert!(ids.len() <= MAX_ROWS);
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = sql(&placeholders(Style::of(connection), slots(ids.len()), 1));
    bind_padded(sqlx::query(&sql), ids, |query, id| query.bind(id.as_ref()))
        .fetch_all(connection)
        .await?
        .iter()
        .map(R::from_row)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_padded_to_a_power_of_four() {
        let cases = [
            (1, 1),
            (2, 4),
            (4, 4),
            (5, 16),
            (17, 64),
            (65, 256),
            (256, 256),
        ];
        for (rows, expected) in cases {
            assert_eq!(slots(rows), expected, "{rows} rows");
        }
    }

    #[test]
    fn tuples_number_their_placeholders_in_order() {
        assert_eq!(
            tuples(Style::Numbered, 2, 3, 2),
            "($2, $3, $4), ($5, $6, $7)"
        );
        assert_eq!(placeholders(Style::Numbered, 3, 1), "$1, $2, $3");
        assert_eq!(placeholders(Style::Positional, 3, 1), "?, ?, ?");
    }
}
