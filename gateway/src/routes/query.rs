//! The query strings both audiences' routes take: time ranges, pages and grant listings, and their conversion
//! to billing.v1's requests (the usage filters are `usage.rs`'s).

use proto::billing::v1 as pb;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::timestamp::Timestamp;

/// The most records one page may hold.
pub const MAX_PAGE_LIMIT: u32 = 1000;

/// A time filter: `[from, to)`, either end optional.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// Inclusive lower bound, RFC 3339 (e.g. `2025-01-01T00:00:00Z`).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<Timestamp>,
    /// Exclusive upper bound, RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<Timestamp>,
}

/// A time filter and, for an owner key, one of its account's keys (API_KEY_MANAGEMENT.md, "Teams: one
/// balance, many keys": a member key always sees only itself).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ScopedRangeQuery {
    /// Inclusive lower bound, RFC 3339 (e.g. `2025-01-01T00:00:00Z`).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<Timestamp>,
    /// Exclusive upper bound, RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<Timestamp>,
    /// Owner keys: only this key's usage.
    pub api_key_id: Option<String>,
}

/// The gRPC time range of optional bounds (absent when both are).
pub fn time_range(from: Option<Timestamp>, to: Option<Timestamp>) -> Option<pb::TimeRange> {
    if from.is_none() && to.is_none() {
        return None;
    }
    Some(pb::TimeRange {
        from: from.map(|t| t.0),
        to: to.map(|t| t.0),
    })
}

/// `limit` is optional (billing's default, 100) and else 1..=1000.
pub fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(0),
        Some(limit) if (1..=MAX_PAGE_LIMIT).contains(&limit) => Ok(limit),
        Some(limit) => Err(ApiError::InvalidRequest(format!(
            "`limit` must be between 1 and {MAX_PAGE_LIMIT}, got {limit}"
        ))),
    }
}

/// Which credit grants a listing includes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct GrantsQuery {
    /// Spent and expired grants too (default false).
    pub include_spent: Option<bool>,
}
