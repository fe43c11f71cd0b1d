//! Reading billing.v1 and executor.v1 messages into the REST API's JSON shapes: a field the contract
//! promises that is missing or malformed is an [`ApiError::ContractViolation`] (502), never a panic.

use crate::error::{ApiError, Service};
use crate::timestamp::Timestamp;
use money::Money;

/// The contract violation of `service`: a message that lacks, or garbles, what it promised.
pub(crate) fn contract(service: Service, message: String) -> ApiError {
    ApiError::contract(service, message)
}

/// A decimal string of USD read as [`Money`].
pub(crate) fn money(service: Service, field: &str, text: &str) -> Result<Money, ApiError> {
    Money::parse_decimal(text)
        .map_err(|error| contract(service, format!("{field}: {}", error.naming(text))))
}

/// An optional decimal string of USD read as [`Money`].
pub(crate) fn optional_money(
    service: Service,
    field: &str,
    text: Option<&str>,
) -> Result<Option<Money>, ApiError> {
    text.map(|text| money(service, field, text)).transpose()
}

/// A field the contract promises.
pub(crate) fn required<T>(service: Service, field: &str, value: Option<T>) -> Result<T, ApiError> {
    value.ok_or_else(|| contract(service, format!("{field} is missing")))
}

/// A time billing-svc promises.
pub(crate) fn time(
    field: &str,
    value: Option<prost_types::Timestamp>,
) -> Result<Timestamp, ApiError> {
    required(Service::Billing, field, value).map(Timestamp)
}
