//! Reads: accounts, stats, usage and transactions with cursor pagination, usage per workspace.

use super::Ledger;
use crate::error::BillingError;
use crate::grants::CreditGrant;
use crate::keys::Role;
use crate::pricing::Price;
use crate::store::accounts::{self, Account};
use crate::store::events::{self, Event, EventType};
use crate::store::grants;
use crate::store::keys::ApiKey;
use crate::store::transactions::{self, Transaction, TransactionType};
use crate::store::usage::{self, GroupBy, Scope, Totals, UsageFilter, UsageRecord};
use crate::time::{self, Millis};
use proto::ids::{AccountId, ApiKeyId};

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
    /// `YYYY-MM-DD` (UTC), oldest first.
    pub by_day: Vec<(String, Totals)>,
    /// The [`MAX_END_USERS`] end users with the highest total cost, highest first.
    pub by_end_user: Vec<(String, Totals)>,
}

/// How many end users the stats list.
pub const MAX_END_USERS: usize = 100;

/// `0` means the default page size; above the maximum is refused rather than silently cut.
pub(super) fn page_size(limit: u32) -> Result<i64, BillingError> {
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

fn page<T>(items: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> Page<T> {
    page_by(items, limit, |item| id(item).to_string())
}

/// A page of at most `limit` of `items` (read with one more to know whether a next page exists).
pub(super) fn page_by<T>(mut items: Vec<T>, limit: i64, cursor: impl Fn(&T) -> String) -> Page<T> {
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

impl Ledger {
    /// Events of the outbox, newest first: of one account or all, of one type or all.
    pub async fn list_events(
        &self,
        account_id: Option<&AccountId>,
        kind: Option<EventType>,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page<Event>, BillingError> {
        let limit = page_size(limit)?;
        let before = cursor(after)?;
        let mut connection = self.store.reader().acquire().await?;
        let rows = events::list(&mut connection, account_id, kind, before, limit + 1).await?;
        Ok(page(rows, limit, |event| event.seq))
    }

    /// The grants of an account, live ones first in spending order (spent and expired ones too when asked).
    pub async fn list_grants(
        &self,
        id: &AccountId,
        include_spent: bool,
    ) -> Result<Vec<CreditGrant>, BillingError> {
        let mut connection = self.store.reader().acquire().await?;
        Ok(grants::list(&mut connection, id, include_spent).await?)
    }

    pub async fn account(&self, id: &AccountId) -> Result<Account, BillingError> {
        let mut connection = self.store.reader().acquire().await?;
        accounts::by_id(&mut connection, id)
            .await?
            .ok_or(BillingError::NotFound("account"))
    }

    /// The account's money, and the usage the view covers.
    pub async fn stats(
        &self,
        view: &View,
        from: Option<Millis>,
        to: Option<Millis>,
    ) -> Result<Stats, BillingError> {
        let (from, to) = range(from, to)?;
        let now = time::now_ms();
        let mut connection = self.store.reader().acquire().await?;
        let account = accounts::by_id(&mut connection, &view.account_id)
            .await?
            .ok_or(BillingError::NotFound("account"))?;
        let whole = UsageFilter {
            api_key_id: view.api_key_id.clone(),
            ..UsageFilter::all()
        };
        let ranged = UsageFilter {
            from,
            to,
            ..whole.clone()
        };
        let today = UsageFilter {
            from: time::day_start(now),
            ..whole.clone()
        };
        let this_month = UsageFilter {
            from: time::month_start(now),
            ..whole
        };
        let id = &view.account_id;
        Ok(Stats {
            totals: usage::totals(&mut connection, Scope::Account(id, &ranged)).await?,
            today: usage::totals(&mut connection, Scope::Account(id, &today)).await?,
            this_month: usage::totals(&mut connection, Scope::Account(id, &this_month)).await?,
            by_model: usage::totals_by(
                &mut connection,
                Scope::Account(id, &ranged),
                GroupBy::Model,
            )
            .await?,
            by_day: usage::totals_by(&mut connection, Scope::Account(id, &ranged), GroupBy::Day)
                .await?
                .into_iter()
                .map(|(days, totals)| (time::day_name(&days), totals))
                .collect(),
            by_end_user: usage::top_by(
                &mut connection,
                Scope::Account(id, &ranged),
                GroupBy::EndUser,
                MAX_END_USERS,
            )
            .await?,
            account,
        })
    }

    /// Usage records of the view; `filter.api_key_id` is narrowed to the view's key when it has one.
    pub async fn list_usage(
        &self,
        view: &View,
        mut filter: UsageFilter,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page<UsageRecord>, BillingError> {
        let limit = page_size(limit)?;
        let before = cursor(after)?;
        if view.api_key_id.is_some() {
            filter.api_key_id = view.api_key_id.clone();
        }
        let mut connection = self.store.reader().acquire().await?;
        let rows = usage::list(
            &mut connection,
            &view.account_id,
            &filter,
            before,
            limit + 1,
        )
        .await?;
        Ok(page(rows, limit, |record| record.id))
    }

    pub async fn list_transactions(
        &self,
        view: &View,
        kind: Option<TransactionType>,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page<Transaction>, BillingError> {
        let limit = page_size(limit)?;
        let before = cursor(after)?;
        let mut connection = self.store.reader().acquire().await?;
        let rows = transactions::list(
            &mut connection,
            &view.account_id,
            view.api_key_id.as_ref(),
            kind,
            before,
            limit + 1,
        )
        .await?;
        Ok(page(rows, limit, |transaction| transaction.id))
    }

    pub async fn workspace_usage(
        &self,
        view: &View,
        from: Option<Millis>,
        to: Option<Millis>,
    ) -> Result<Vec<(String, Totals)>, BillingError> {
        let (from, to) = range(from, to)?;
        let filter = UsageFilter {
            api_key_id: view.api_key_id.clone(),
            from,
            to,
            ..UsageFilter::default()
        };
        let mut connection = self.store.reader().acquire().await?;
        Ok(usage::totals_by(
            &mut connection,
            Scope::Account(&view.account_id, &filter),
            GroupBy::Workspace,
        )
        .await?)
    }

    /// Every account's usage in a range (all time without one): totals, by UTC day, by model, and the `top`
    /// accounts by revenue (at most [`MAX_TOP_ACCOUNTS`]).
    pub async fn platform_stats(
        &self,
        from: Option<Millis>,
        to: Option<Millis>,
        top: u32,
    ) -> Result<PlatformStats, BillingError> {
        let (from, to) = range(from, to)?;
        let top = match top {
            0 => DEFAULT_TOP_ACCOUNTS,
            top if top as usize > MAX_TOP_ACCOUNTS => {
                return Err(BillingError::invalid(
                    "top_accounts",
                    format!("at most {MAX_TOP_ACCOUNTS}"),
                ));
            }
            top => top as usize,
        };
        let scope = Scope::Platform { from, to };
        let mut connection = self.store.reader().acquire().await?;
        let accounts = usage::top_by(&mut connection, scope, GroupBy::Account, top).await?;
        let mut top_accounts = Vec::with_capacity(accounts.len());
        for (id, totals) in accounts {
            let id = AccountId::from(id);
            let name = accounts::by_id(&mut connection, &id)
                .await?
                .map(|account| account.name)
                .unwrap_or_default();
            top_accounts.push((id, name, totals));
        }
        Ok(PlatformStats {
            totals: usage::totals(&mut connection, scope).await?,
            by_day: usage::totals_by(&mut connection, scope, GroupBy::Day)
                .await?
                .into_iter()
                .map(|(days, totals)| (time::day_name(&days), totals))
                .collect(),
            by_model: usage::totals_by(&mut connection, scope, GroupBy::Model).await?,
            top_accounts,
        })
    }

    /// The prices `account_id` pays now: for each model a row prices for it (its own rows, the global
    /// ones, `*`), the row in effect (see [`crate::pricing::effective`]), by model name.
    pub async fn prices_for(&self, account_id: &AccountId) -> Result<Vec<Price>, BillingError> {
        let now = time::now_ms();
        let mut connection = self.store.reader().acquire().await?;
        let rows = crate::store::pricing::list(&mut connection).await?;
        let mut models: Vec<&str> = rows
            .iter()
            .filter(|row| row.account_id.as_ref().is_none_or(|own| own == account_id))
            .map(|row| row.model.as_str())
            .collect();
        models.sort_unstable();
        models.dedup();
        Ok(models
            .into_iter()
            .filter_map(|model| {
                crate::pricing::effective(&rows, account_id, model, now)
                    // A model whose own rows ended is priced by "*", listed once under its own name.
                    .filter(|price| price.model == model)
            })
            .cloned()
            .collect())
    }
}

/// How many top accounts the platform stats give by default, and at most.
const DEFAULT_TOP_ACCOUNTS: usize = 10;
pub const MAX_TOP_ACCOUNTS: usize = 100;

/// Every account's usage (see [`Ledger::platform_stats`]).
#[derive(Debug, Clone)]
pub struct PlatformStats {
    pub totals: Totals,
    pub by_day: Vec<(String, Totals)>,
    pub by_model: Vec<(String, Totals)>,
    /// Account id, name and totals, highest revenue first.
    pub top_accounts: Vec<(AccountId, String, Totals)>,
}
