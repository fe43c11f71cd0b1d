//! Reads: accounts, stats, usage and transactions with cursor pagination, usage per workspace.

use super::Ledger;
use crate::error::BillingError;
use crate::store::accounts::{self, Account};
use crate::store::transactions::{self, Transaction, TransactionType};
use crate::store::usage::{self, GroupBy, Totals, UsageFilter, UsageRecord};
use crate::time::{self, Millis};

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// One page of a newest-first listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The statistics of an account.
#[derive(Debug, Clone)]
pub struct Stats {
    pub account: Account,
    pub totals: Totals,
    pub today: Totals,
    pub this_month: Totals,
    pub by_model: Vec<(String, Totals)>,
}

/// `0` means the default page size; above the maximum is refused rather than silently cut.
fn page_size(limit: u32) -> Result<i64, BillingError> {
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
fn cursor(cursor: Option<&str>) -> Result<i64, BillingError> {
    match cursor {
        None | Some("") => Ok(i64::MAX),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| BillingError::invalid("cursor", "is not a cursor returned by this API")),
    }
}

fn page<T>(mut items: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|last| id(last).to_string())
    } else {
        None
    };
    Page { items, next_cursor }
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

impl Ledger {
    pub async fn account(&self, api_key_id: &str) -> Result<Account, BillingError> {
        let mut connection = self.store.reader().acquire().await?;
        accounts::by_key(&mut connection, api_key_id)
            .await?
            .ok_or(BillingError::NotFound("account"))
    }

    pub async fn stats(
        &self,
        api_key_id: &str,
        from: Option<Millis>,
        to: Option<Millis>,
    ) -> Result<Stats, BillingError> {
        let (from, to) = range(from, to)?;
        let now = time::now_ms();
        let mut connection = self.store.reader().acquire().await?;
        let account = accounts::by_key(&mut connection, api_key_id)
            .await?
            .ok_or(BillingError::NotFound("account"))?;
        let ranged = UsageFilter {
            from,
            to,
            ..UsageFilter::default()
        };
        let today = UsageFilter {
            from: time::day_start(now),
            ..UsageFilter::all()
        };
        let this_month = UsageFilter {
            from: time::month_start(now),
            ..UsageFilter::all()
        };
        Ok(Stats {
            totals: usage::totals(&mut connection, api_key_id, &ranged).await?,
            today: usage::totals(&mut connection, api_key_id, &today).await?,
            this_month: usage::totals(&mut connection, api_key_id, &this_month).await?,
            by_model: usage::totals_by(&mut connection, api_key_id, &ranged, GroupBy::Model)
                .await?,
            account,
        })
    }

    pub async fn list_usage(
        &self,
        api_key_id: &str,
        filter: UsageFilter,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page<UsageRecord>, BillingError> {
        let limit = page_size(limit)?;
        let before = cursor(after)?;
        let mut connection = self.store.reader().acquire().await?;
        let rows = usage::list(&mut connection, api_key_id, &filter, before, limit + 1).await?;
        Ok(page(rows, limit, |record| record.id))
    }

    pub async fn list_transactions(
        &self,
        api_key_id: &str,
        kind: Option<TransactionType>,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page<Transaction>, BillingError> {
        let limit = page_size(limit)?;
        let before = cursor(after)?;
        let mut connection = self.store.reader().acquire().await?;
        let rows = transactions::list(&mut connection, api_key_id, kind, before, limit + 1).await?;
        Ok(page(rows, limit, |transaction| transaction.id))
    }

    pub async fn workspace_usage(
        &self,
        api_key_id: &str,
        from: Option<Millis>,
        to: Option<Millis>,
    ) -> Result<Vec<(String, Totals)>, BillingError> {
        let (from, to) = range(from, to)?;
        let filter = UsageFilter {
            from,
            to,
            ..UsageFilter::default()
        };
        let mut connection = self.store.reader().acquire().await?;
        Ok(usage::totals_by(&mut connection, api_key_id, &filter, GroupBy::Workspace).await?)
    }
}
