//! Reading rows. Each table's SQL reads its rows into a row struct (`#[derive(sqlx::FromRow)]`, one field
//! per column, named for it; an expression in a SELECT list gets an alias) and turns that into its domain
//! type once, in a `TryFrom`: the text columns (enums, JSON, decimals) are parsed there, and a value that
//! does not parse is a decode error naming its column.

use std::fmt::Display;

/// The error of a stored value of `column` that does not parse.
pub(crate) fn column_error(column: &str, error: impl Display) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: error.to_string().into(),
    }
}

/// The variant the text of the enum column `column` names, read with the enum's `parse`.
pub(crate) fn parse_enum<T>(
    column: &str,
    text: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, sqlx::Error> {
    parse(text).ok_or_else(|| column_error(column, format!("unknown value {text:?}")))
}

/// A stored count (tokens, requests) as the domain keeps it; counts are never negative, so a negative
/// value reads as 0.
pub(crate) fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_enum_value_names_its_column() {
        let error = parse_enum("role", "owner", |_| None::<()>).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("role"), "{message}");
        assert!(message.contains("\"owner\""), "{message}");
    }
}
