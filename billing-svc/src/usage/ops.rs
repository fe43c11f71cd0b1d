//! Reads over usage records: an account's statistics, its records page by page, usage per workspace, and
//! every account's usage.

use crate::accounts::{self, Account};
use crate::error::BillingError;
use crate::ledger::{Ledger, Page, View, cursor, page, page_size, range};
use crate::time::{self, Millis};
use crate::usage::buckets::{BucketPage, BucketQuery};
use crate::usage::report::{Forecast, forecast};
use crate::usage::rollup;
use crate::usage::sql::{GroupBy, Scope};
use crate::usage::{self, Totals, UsageFilter, UsageRecord};
use proto::ids::AccountId;

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
    /// Of the view's key when it has one.
    pub forecast: Forecast,
}

/// How many end users the stats list.
pub const MAX_END_USERS: usize = 100;

impl Ledger {
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
        let account = accounts::sql::by_id(&mut connection, &view.account_id)
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
            totals: usage::sql::totals(&mut connection, Scope::Account(id, &ranged)).await?,
            today: usage::sql::totals(&mut connection, Scope::Account(id, &today)).await?,
            this_month: usage::sql::totals(&mut connection, Scope::Account(id, &this_month))
                .await?,
            by_model: usage::sql::totals_by(
                &mut connection,
                Scope::Account(id, &ranged),
                GroupBy::Model,
            )
            .await?,
            by_day: usage::sql::totals_by(
                &mut connection,
                Scope::Account(id, &ranged),
                GroupBy::Day,
            )
            .await?
            .into_iter()
            .map(|(days, totals)| (time::day_name(&days), totals))
            .collect(),
            by_end_user: usage::sql::top_by(
                &mut connection,
                Scope::Account(id, &ranged),
                GroupBy::EndUser,
                MAX_END_USERS,
            )
            .await?,
            forecast: forecast(&mut connection, id, view.api_key_id.as_ref(), now).await?,
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
        let rows = usage::sql::list(
            &mut connection,
            &view.account_id,
            &filter,
            before,
            limit + 1,
        )
        .await?;
        Ok(page(rows, limit, |record| record.id))
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
        Ok(usage::sql::totals_by(
            &mut connection,
            Scope::Account(&view.account_id, &filter),
            GroupBy::Workspace,
        )
        .await?)
    }

    /// One page of one of OpenAI's organization reports over the account's usage records (BILLING.md,
    /// "Usage and Costs APIs").
    #[tracing::instrument(skip_all, fields(account_id = %account_id), err)]
    pub async fn usage_buckets(
        &self,
        account_id: &AccountId,
        query: BucketQuery,
    ) -> Result<BucketPage, BillingError> {
        let now = time::now_ms();
        let plan = query.plan(now)?;
        let rolled_until = self.roll_up(account_id, now).await?;
        let mut connection = self.store.reader().acquire().await?;
        let rows = rollup::page_sums(&mut connection, account_id, &plan, rolled_until).await?;
        plan.page(rows)
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
        let accounts = usage::sql::top_by(&mut connection, scope, GroupBy::Account, top).await?;
        let mut top_accounts = Vec::with_capacity(accounts.len());
        for (id, totals) in accounts {
            let id = AccountId::from(id);
            let name = accounts::sql::by_id(&mut connection, &id)
                .await?
                .map(|account| account.name)
                .unwrap_or_default();
            top_accounts.push((id, name, totals));
        }
        Ok(PlatformStats {
            totals: usage::sql::totals(&mut connection, scope).await?,
            by_day: usage::sql::totals_by(&mut connection, scope, GroupBy::Day)
                .await?
                .into_iter()
                .map(|(days, totals)| (time::day_name(&days), totals))
                .collect(),
            by_model: usage::sql::totals_by(&mut connection, scope, GroupBy::Model).await?,
            top_accounts,
        })
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
