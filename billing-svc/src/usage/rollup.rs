//! Hourly sums of usage records (BILLING.md, "Usage and Costs APIs"): the organization reports read an
//! account's closed hours from `usage_hourly` and only the rest from the records, so a report over a month
//! reads at most 24 × 31 rows per group instead of every record.
//!
//! An hour is summed once, [`ROLLUP_MARGIN`] after it ends (a settlement's time is when it commits, so by
//! then every record of the hour is in), in the account's shard: by the sweeper for the accounts that have
//! records in hours not summed yet, or by the first report that needs it. `usage_rollups.rolled_until` says
//! where an account's sums end; they are never changed after (refunds are their own ledger rows and do not
//! change a record's charge).

use std::collections::HashMap;

use crate::error::BillingError;
use crate::ledger::Ledger;
use crate::store::Shard;
use crate::time::Millis;
use crate::usage::buckets::{GroupSums, Plan, Width};
use crate::usage::sql::{self, SumSource};
use proto::ids::AccountId;

const HOUR: Millis = 3_600_000;
/// How long after an hour ends it is summed.
pub const ROLLUP_MARGIN: Millis = 10 * 60_000;
/// Accounts read at a time by the sweeper.
const ROLLUP_BATCH: i64 = 200;

/// Hours before this are summed at `now`.
pub fn rollup_target(now: Millis) -> Millis {
    let at = now - ROLLUP_MARGIN;
    at - at.rem_euclid(HOUR)
}

impl Ledger {
    /// Sums the account's hours up to [`rollup_target`] that are not summed yet; returns where its sums end.
    pub async fn roll_up(
        &self,
        account_id: &AccountId,
        now: Millis,
    ) -> Result<Millis, BillingError> {
        let target = rollup_target(now);
        let until = {
            let mut connection = self.store.reader().acquire().await?;
            sql::rolled_until(&mut connection, account_id).await?
        };
        if until >= target {
            return Ok(until);
        }
        let account_id = account_id.clone();
        let shard = account_id.clone();
        self.store
            .write(Shard::Account(&shard), move |batch| {
                Box::pin(async move {
                    let connection = batch.connection().await?;
                    let until = sql::rolled_until(connection, &account_id).await?;
                    if until >= target {
                        return Ok(until);
                    }
                    sql::roll_up(connection, &account_id, until, target).await?;
                    Ok(target)
                })
            })
            .await
    }

    /// The sweeper's part: sums the closed hours of every account with records in hours not summed yet;
    /// `rolled_for` remembers the target once every account is done, so the next pass is the next hour's.
    /// Returns how many accounts it summed.
    pub async fn roll_up_accounts(
        &self,
        rolled_for: &mut Option<Millis>,
        now: Millis,
    ) -> Result<usize, BillingError> {
        let target = rollup_target(now);
        if *rolled_for == Some(target) {
            return Ok(0);
        }
        let mut rolled = 0;
        let mut after = String::new();
        loop {
            let accounts = {
                let mut connection = self.store.reader().acquire().await?;
                sql::behind(&mut connection, target, &after, ROLLUP_BATCH).await?
            };
            let Some(last) = accounts.last() else {
                *rolled_for = Some(target);
                return Ok(rolled);
            };
            after = last.to_string();
            for account_id in accounts {
                self.roll_up(&account_id, now).await?;
                rolled += 1;
            }
        }
    }
}

/// The sums of `plan`'s page for an account whose hours before `rolled_until` are summed: `usage_hourly` for
/// the whole hours of the range before it (when the buckets are hours or days), the records for the rest
/// (the range's cut ends and the hours not summed yet), added up per bucket and group.
pub async fn page_sums(
    connection: &mut sqlx::AnyConnection,
    account_id: &AccountId,
    plan: &Plan,
    rolled_until: Millis,
) -> Result<Vec<GroupSums>, BillingError> {
    let (from, to) = plan.range();
    let hours_from = from + (HOUR - from.rem_euclid(HOUR)) % HOUR;
    let hours_to = (to - to.rem_euclid(HOUR)).min(rolled_until);
    if plan.width == Width::Minute || hours_from >= hours_to {
        return Ok(
            sql::bucket_sums(connection, account_id, plan, SumSource::Records, (from, to)).await?,
        );
    }
    let mut parts = Vec::new();
    for (source, range) in [
        (SumSource::Records, (from, hours_from)),
        (SumSource::Hourly, (hours_from, hours_to)),
        (SumSource::Records, (hours_to, to)),
    ] {
        if range.0 < range.1 {
            parts.extend(sql::bucket_sums(connection, account_id, plan, source, range).await?);
        }
    }
    merge(parts)
}

/// Adds up the sums of the same bucket and group.
fn merge(parts: Vec<GroupSums>) -> Result<Vec<GroupSums>, BillingError> {
    type Key = (
        Millis,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let mut merged: HashMap<Key, GroupSums> = HashMap::new();
    for part in parts {
        let key = (
            part.bucket,
            part.model.clone(),
            part.api_key_id.clone(),
            part.end_user_id.clone(),
            part.workspace_id.clone(),
        );
        match merged.get_mut(&key) {
            Some(sums) => sums.add(&part)?,
            None => {
                merged.insert(key, part);
            }
        }
    }
    Ok(merged.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_is_summed_after_the_margin() {
        let hour = 1_796_601_600_000; // 2026-12-07T00:00:00Z
        assert_eq!(rollup_target(hour + ROLLUP_MARGIN - 1), hour - HOUR);
        assert_eq!(rollup_target(hour + ROLLUP_MARGIN), hour);
    }
}
