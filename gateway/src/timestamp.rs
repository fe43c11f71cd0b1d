//! `Timestamp`: a point in time at the HTTP edge, written and read as an RFC 3339 UTC string (the REST API's
//! times, like [`money::Money`] its amounts).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};

/// A point in time, written as an RFC 3339 UTC string (`2025-01-31T12:00:00Z`).
#[derive(Debug, Clone, PartialEq)]
pub struct Timestamp(pub prost_types::Timestamp);

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

/// Parses an RFC 3339 timestamp (any offset; stored as UTC).
pub fn parse_rfc3339(text: &str) -> Result<Timestamp, String> {
    text.parse::<prost_types::Timestamp>()
        .map(Timestamp)
        .map_err(|_| format!("`{text}` is not an RFC 3339 timestamp (e.g. 2025-01-31T00:00:00Z)"))
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("RFC 3339 timestamp, written in UTC."))
            .examples([serde_json::json!("2025-01-31T12:00:00Z")])
            .into()
    }
}

impl ToSchema for Timestamp {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Timestamp")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let stamp = parse_rfc3339("2025-01-31T01:00:00+01:00").unwrap();
        assert_eq!(
            serde_json::to_string(&stamp).unwrap(),
            r#""2025-01-31T00:00:00Z""#
        );
        assert!(parse_rfc3339("yesterday").is_err());
        assert!(parse_rfc3339("2025-13-01T00:00:00Z").is_err());
    }
}
