//! The JSON shapes of the REST API (camelCase, money as exact numbers, times as RFC 3339 strings)
//! and their conversion from the billing.v1 / executor.v1 messages, one module per resource; this
//! module holds what they share. A message missing a field the contract promises is a
//! [`ApiError::ContractViolation`] (502), never a panic.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};

use crate::error::{ApiError, Service};
use crate::money::Usd;

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

/// Reads `value` as `T` if it is a JSON object, refusing any other JSON value: serde's derived structs
/// would also take an array of the fields' values, in order.
fn from_object<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, serde_json::Error> {
    match value {
        Value::Object(_) => serde_json::from_value(value),
        _ => Err(serde::de::Error::custom("expected a JSON object")),
    }
}

/// Deserializes an optional nested object with [`from_object`]. For
/// `#[serde(default, deserialize_with = "...")]`.
pub fn optional_object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    Option::<Value>::deserialize(deserializer)?
        .map(from_object)
        .transpose()
        .map_err(serde::de::Error::custom)
}

/// Deserializes an optional array of objects, each with [`from_object`]. For
/// `#[serde(default, deserialize_with = "...")]`.
pub fn optional_objects<'de, D, T>(deserializer: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    Option::<Vec<Value>>::deserialize(deserializer)?
        .map(|values| values.into_iter().map(from_object).collect())
        .transpose()
        .map_err(serde::de::Error::custom)
}

fn contract(service: Service, message: String) -> ApiError {
    ApiError::contract(service, message)
}

fn money(service: Service, field: &str, text: &str) -> Result<Usd, ApiError> {
    text.parse()
        .map_err(|error| contract(service, format!("{field}: {error}")))
}

fn optional_money(
    service: Service,
    field: &str,
    text: Option<&str>,
) -> Result<Option<Usd>, ApiError> {
    text.map(|text| money(service, field, text)).transpose()
}

fn required<T>(service: Service, field: &str, value: Option<T>) -> Result<T, ApiError> {
    value.ok_or_else(|| contract(service, format!("{field} is missing")))
}

fn time(field: &str, value: Option<prost_types::Timestamp>) -> Result<Timestamp, ApiError> {
    required(Service::Billing, field, value).map(Timestamp)
}

mod events;
mod executions;
mod keys;
mod ledger;
mod payments;
mod prices;
mod usage;

pub use events::*;
pub use executions::*;
pub use keys::*;
pub use ledger::*;
pub use payments::*;
pub use prices::*;
pub use usage::*;

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
