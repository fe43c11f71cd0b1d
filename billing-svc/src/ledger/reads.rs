//! What every read shares: pages with cursors, the view a reader has of one account, time ranges.

use crate::error::BillingError;
use crate::keys::{ApiKey, Role};
use crate::time::Millis;
use proto::ids::{AccountId, ApiKeyId};

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// One page of a newest-first listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// `0` means the default page size; above the maximum is refused rather than silently cut.
pub(crate) fn page_size(limit: u32) -> Result<i64, BillingError> {
    match limit {
        0 => Ok(i64::from(DEFAULT_PAGE)),
        1..=MAX_PAGE => Ok(i64::from(limit)),
        _ => Err(BillingError::invalid(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        )),
    }
}

/// Cursors are the id of the last row of the previous page.
pub(crate) fn cursor(cursor: Option<&str>) -> Result<i64, BillingError> {
    match cursor {
        None | Some("") => Ok(i64::MAX),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| BillingError::invalid("cursor", "is not a cursor returned by this API")),
    }
}

pub(crate) fn page<T>(items: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> Page<T> {
    page_by(items, limit, |item| id(item).to_string())
}

/// A page of at most `limit` of `items` (read with one more to know whether a next page exists).
pub(crate) fn page_by<T>(mut items: Vec<T>, limit: i64, cursor: impl Fn(&T) -> String) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor)
    } else {
        None
    };
    Page { items, next_cursor }
}

/// What a reader may see of one account: all of it, or only what one key did (API_KEY_MANAGEMENT.md, "Keys").
#[derive(Debug, Clone)]
pub struct View {
    pub account_id: AccountId,
    /// Only the usage and ledger rows of this key.
    pub api_key_id: Option<ApiKeyId>,
}

impl View {
    /// The view of a customer key: an owner sees its account (narrowed to `only_key` when it asks, a key
    /// of its account), a member only itself.
    pub fn of_caller(caller: &ApiKey, only_key: Option<ApiKeyId>) -> View {
        let api_key_id = match caller.role {
            Role::Owner => only_key,
            Role::Member => Some(caller.id.clone()),
        };
        View {
            account_id: caller.account_id.clone(),
            api_key_id,
        }
    }

    /// The whole account.
    pub fn account(account_id: AccountId) -> View {
        View {
            account_id,
            api_key_id: None,
        }
    }
}

/// A half-open time range; `from` must come before `to`.
pub fn range(from: Option<Millis>, to: Option<Millis>) -> Result<(Millis, Millis), BillingError> {
    let (from, to) = (from.unwrap_or(Millis::MIN), to.unwrap_or(Millis::MAX));
    if from > to {
        return Err(BillingError::invalid(
            "range",
            "`from` must not be after `to`",
        ));
    }
    Ok((from, to))
}
