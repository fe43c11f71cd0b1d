//! Which database a `DATABASE_URL` selects: SQLite or PostgreSQL. The pools and a few statements differ by it.

/// Which database the URL selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}
