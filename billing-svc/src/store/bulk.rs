//! Multi-row statements: a batch reads and writes each table with one statement, whatever the number of
//! rows (up to [`MAX_ROWS`] per statement).
//!
//! The text of such a statement depends on its number of rows, and each text is a prepared statement in
//! sqlx's per-connection cache (100 by default). So the rows are padded up to the next power of four
//! ([`slots`]: 1, 4, 16, 64 or 256) by binding the last row again: an `IN` list repeats its last value, and
//! an insert selects `DISTINCT` rows (every real row has its own id, so only the copies fold). A table then
//! has at most five texts per statement, which stay cached.

use sqlx::Any;
use sqlx::any::AnyArguments;

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

/// `($1, $2), ($3, $4), …`: `rows` tuples of `columns` placeholders, numbered from `$first`.
pub fn tuples(rows: usize, columns: usize, first: usize) -> String {
    (0..rows)
        .map(|row| format!("({})", placeholders(columns, first + row * columns)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `$first, $first+1, …`: `count` placeholders.
pub fn placeholders(count: usize, first: usize) -> String {
    (first..first + count)
        .map(|index| format!("${index}"))
        .collect::<Vec<_>>()
        .join(", ")
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
        assert_eq!(tuples(2, 3, 2), "($2, $3, $4), ($5, $6, $7)");
        assert_eq!(placeholders(3, 1), "$1, $2, $3");
    }
}
