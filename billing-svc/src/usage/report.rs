//! The weekly usage report and the month-end forecast (BILLING.md, "Email" and "Forecast").
//!
//! - **Forecast**: the month's spend so far plus the last seven days' run rate over what is left of the
//!   UTC month (`money::prorate`); an estimate, never charged.
//! - **Weekly report**: on Monday (UTC), for every account with an email address created before the week
//!   ended, a `usage.weekly_report` event with the past week's spend by day (the trend), its requests, the
//!   week before's spend and the forecast. The `usage_reports` row written with it makes it once per account
//!   and week, whichever billing-svc process gets there first.

use serde_json::json;
use sqlx::AnyConnection;

use crate::credits::transactions;
use crate::error::BillingError;
use crate::events::EventType;
use crate::ledger::{Ledger, emit};
use crate::statements::Month;
use crate::store::Shard;
use crate::time::{self, Millis};
use crate::usage::sql::Scope;
use crate::usage::{self, UsageFilter};
use money::Money;
use proto::ids::{AccountId, ApiKeyId};

const DAY_MS: Millis = 86_400_000;
const WEEK_MS: Millis = 7 * DAY_MS;
/// Accounts read at a time while writing a week's reports.
const REPORT_BATCH: i64 = 200;

/// Monday 00:00 UTC of the week containing `ms` (1970-01-01 was a Thursday).
pub fn week_start(ms: Millis) -> Millis {
    let day = time::day_start(ms);
    day - (day / DAY_MS + 3).rem_euclid(7) * DAY_MS
}

/// The month's spend so far and where it is heading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Forecast {
    /// Net spend since the UTC month began.
    pub month_to_date: Money,
    /// Net spend over the last seven days (the run rate).
    pub last_7_days: Money,
    /// `month_to_date` plus the run rate over the rest of the month.
    pub month_end: Money,
}

/// The forecast of the account (or of one of its keys) at `now`.
pub async fn forecast(
    connection: &mut AnyConnection,
    account_id: &AccountId,
    api_key_id: Option<&ApiKeyId>,
    now: Millis,
) -> Result<Forecast, BillingError> {
    let month_to_date =
        transactions::sql::spend_since(connection, account_id, api_key_id, time::month_start(now))
            .await?;
    let last_7_days =
        transactions::sql::spend_since(connection, account_id, api_key_id, now - WEEK_MS).await?;
    let rest = money::prorate(last_7_days, Month::of(now).end() - now, WEEK_MS)
        .ok_or(BillingError::Overflow)?;
    Ok(Forecast {
        month_to_date,
        last_7_days,
        month_end: month_to_date
            .checked_add(rest)
            .ok_or(BillingError::Overflow)?,
    })
}

impl Ledger {
    /// Writes the weekly usage reports of the week that ended last, once every account with an email address
    /// has its own; `reported_through` remembers that week so the sweeper asks again only the next Monday.
    /// Returns how many it wrote.
    pub async fn write_weekly_reports(
        &self,
        reported_through: &mut Option<Millis>,
    ) -> Result<usize, BillingError> {
        let now = time::now_ms();
        let week = week_start(now) - WEEK_MS;
        if *reported_through == Some(week) {
            return Ok(0);
        }
        let mut written = 0;
        let mut after = String::new();
        loop {
            let accounts = {
                let mut connection = self.store.reader().acquire().await?;
                crate::accounts::sql::with_email(
                    &mut connection,
                    week + WEEK_MS,
                    &after,
                    REPORT_BATCH,
                )
                .await?
            };
            let Some(last) = accounts.last() else {
                *reported_through = Some(week);
                return Ok(written);
            };
            after = last.to_string();
            for account_id in accounts {
                written += usize::from(self.write_weekly_report(account_id, week, now).await?);
            }
        }
    }

    /// The report of `week` for one account, unless it has one; true when written.
    async fn write_weekly_report(
        &self,
        account_id: AccountId,
        week: Millis,
        now: Millis,
    ) -> Result<bool, BillingError> {
        let shard = account_id.clone();
        self.store
            .write(Shard::Account(&shard), move |batch| {
                Box::pin(async move {
                    let connection = batch.connection().await?;
                    let claimed = sqlx::query(
                        "INSERT INTO usage_reports (account_id, week_start) VALUES ($1, $2) \
                         ON CONFLICT (account_id, week_start) DO NOTHING",
                    )
                    .bind(account_id.as_str())
                    .bind(week)
                    .execute(&mut *connection)
                    .await?;
                    if claimed.rows_affected() == 0 {
                        return Ok(false);
                    }
                    let data = weekly_report(connection, &account_id, week, now).await?;
                    emit(batch, &account_id, EventType::UsageWeeklyReport, data, now);
                    Ok(true)
                })
            })
            .await
    }
}

/// The `usage.weekly_report` event's data.
async fn weekly_report(
    connection: &mut AnyConnection,
    account_id: &AccountId,
    week: Millis,
    now: Millis,
) -> Result<serde_json::Value, BillingError> {
    let daily = transactions::sql::spend_by_day(connection, account_id, week, 7).await?;
    let spend = daily
        .iter()
        .try_fold(Money::ZERO, |sum, day| sum.checked_add(*day))
        .ok_or(BillingError::Overflow)?;
    let previous: Money =
        transactions::sql::spend_by_day(connection, account_id, week - WEEK_MS, 7)
            .await?
            .into_iter()
            .try_fold(Money::ZERO, |sum, day| sum.checked_add(day))
            .ok_or(BillingError::Overflow)?;
    let filter = UsageFilter {
        from: week,
        to: week + WEEK_MS,
        ..UsageFilter::all()
    };
    let totals = usage::sql::totals(connection, Scope::Account(account_id, &filter)).await?;
    let forecast = forecast(connection, account_id, None, now).await?;
    let balance = crate::accounts::sql::by_id(connection, account_id)
        .await?
        .map_or(Money::ZERO, |account| account.credits_balance);
    let days: Vec<serde_json::Value> = daily
        .iter()
        .enumerate()
        .map(|(index, spend)| {
            let day = week + i64::try_from(index).unwrap_or(0) * DAY_MS;
            json!({"date": time::day_name(&(day / DAY_MS).to_string()), "spend": spend.to_string()})
        })
        .collect();
    Ok(json!({
        "weekStart": time::day_name(&(week / DAY_MS).to_string()),
        "weekEnd": time::day_name(&((week + WEEK_MS) / DAY_MS).to_string()),
        "requests": totals.requests,
        "spend": spend.to_string(),
        "previousWeekSpend": previous.to_string(),
        "daily": days,
        "month": Month::of(now).to_string(),
        "monthToDate": forecast.month_to_date.to_string(),
        "forecastMonthEnd": forecast.month_end.to_string(),
        "balance": balance.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday() {
        // 2026-12-07 is a Monday; 2026-12-09T10:00Z a Wednesday; 2026-12-06T23:59Z a Sunday.
        let monday = 1_796_601_600_000;
        assert_eq!(week_start(monday), monday);
        assert_eq!(week_start(monday + 2 * DAY_MS + 36_000_000), monday);
        assert_eq!(week_start(monday - 60_000), monday - WEEK_MS);
    }
}
