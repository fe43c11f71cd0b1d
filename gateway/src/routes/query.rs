//! The query strings both audiences' routes take: time ranges, pages, usage filters and grant listings, and
//! their conversion to billing.v1's requests.

use proto::billing::v1 as pb;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::json::{Timestamp, UsageStatus};

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

/// A page of usage records and its filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct UsageQuery {
    /// Page size, 1..=1000; default 100.
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Inclusive lower bound, RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<Timestamp>,
    /// Exclusive upper bound, RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<Timestamp>,
    /// Only this workspace's records.
    pub workspace_id: Option<String>,
    /// Only this model's records.
    pub model: Option<String>,
    /// Only this key's records (a key of the account; a member key sees only its own anyway).
    pub api_key_id: Option<String>,
    /// Only records that ended this way.
    #[param(inline)]
    pub status: Option<UsageStatus>,
    /// Only this end user's records (`endUserId=` with no value: the records that named none).
    pub end_user_id: Option<String>,
}

impl UsageQuery {
    /// The listing as billing.v1 takes it.
    pub fn into_request(self) -> Result<pb::ListUsageRequest, ApiError> {
        Ok(pb::ListUsageRequest {
            limit: page_limit(self.limit)?,
            cursor: self.cursor,
            range: time_range(self.from, self.to),
            workspace_id: self.workspace_id,
            model: self.model,
            api_key_id: self.api_key_id,
            status: self
                .status
                .map_or(pb::UsageStatus::Unspecified, UsageStatus::to_wire)
                .into(),
            end_user_id: self.end_user_id,
        })
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
