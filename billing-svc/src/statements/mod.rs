//! Monthly statements (BILLING.md, "Statements"): one account's UTC month, from the ledger. The opening
//! balance plus the month's ledger rows, summed by type, is the closing balance, which is the balance after
//! the month's last ledger row; the month's billed usage is broken down by model and token class.
//!
//! A month closes [`CLOSE_GRACE_MS`] after it ends. The first read or the closing sweeper
//! ([`ops`]) then freezes its statement (`statements` table, SQL in [`sql`]) and writes the
//! `statement.ready` event in the same transaction; a frozen statement is served as it was frozen, whatever is
//! written later.

pub mod ops;
pub mod sql;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::BillingError;
use crate::prices::TokenClasses;
use crate::time::Millis;
use money::Money;
use proto::ids::AccountId;

/// How long after its end a month closes: the rows of settlements that were committing at midnight (and a
/// replica's clock a little behind) land before its statement is frozen.
pub const CLOSE_GRACE_MS: Millis = 5 * 60_000;

/// A UTC calendar month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Month {
    year: i32,
    /// 1..=12.
    month: u32,
}

impl Month {
    /// The month containing `ms`.
    pub fn of(ms: Millis) -> Month {
        let date = DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap_or_default()
            .date_naive();
        Month {
            year: date.year(),
            month: date.month(),
        }
    }

    fn first_day(self) -> Millis {
        NaiveDate::from_ymd_opt(self.year, self.month, 1)
            .and_then(|day| day.and_hms_opt(0, 0, 0))
            .map_or(0, |midnight| midnight.and_utc().timestamp_millis())
    }

    /// Its first millisecond.
    pub fn start(self) -> Millis {
        self.first_day()
    }

    /// The first millisecond of the next month.
    pub fn end(self) -> Millis {
        self.next().first_day()
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn previous(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// Months from `earlier` to `self` (0 when the same).
    fn since(self, earlier: Month) -> i64 {
        i64::from(self.year - earlier.year) * 12 + i64::from(self.month) - i64::from(earlier.month)
    }

    /// Closed at `now`: ended at least [`CLOSE_GRACE_MS`] ago.
    pub fn is_closed(self, now: Millis) -> bool {
        now >= self.end() + CLOSE_GRACE_MS
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl std::str::FromStr for Month {
    type Err = BillingError;

    fn from_str(text: &str) -> Result<Month, BillingError> {
        let invalid =
            || BillingError::invalid("month", format!("{text:?} is not a month (YYYY-MM)"));
        let (year, month) = text.split_once('-').ok_or_else(invalid)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(invalid());
        }
        let year: i32 = year.parse().map_err(|_| invalid())?;
        let month: u32 = month.parse().map_err(|_| invalid())?;
        if !(1970..=9998).contains(&year) || !(1..=12).contains(&month) {
            return Err(invalid());
        }
        Ok(Month { year, month })
    }
}

impl From<Month> for String {
    fn from(month: Month) -> String {
        month.to_string()
    }
}

impl TryFrom<String> for Month {
    type Error = BillingError;

    fn try_from(text: String) -> Result<Month, BillingError> {
        text.parse()
    }
}

/// The sum and count of one type of the month's ledger rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    pub amount: Money,
    pub count: u64,
}

/// The month's billed usage of one model (the records of standard keys).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelUsage {
    pub model: String,
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub classes: TokenClasses,
    pub input_cost: Money,
    pub output_cost: Money,
    pub request_fees: Money,
    pub charged: Money,
    pub volume_discount: Money,
}

/// One account's statement for one month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    pub account_id: AccountId,
    pub account_name: String,
    pub month: Month,
    /// The account's statements count from 1, its creation month.
    pub number: u32,
    pub closed: bool,
    /// When it was frozen (closed) or computed (the current month).
    pub issued_at: Millis,
    pub opening_balance: Money,
    pub credits: Movement,
    pub grants: Movement,
    pub usage: Movement,
    pub refunds: Movement,
    pub adjustments: Movement,
    pub expiries: Movement,
    pub closing_balance: Money,
    pub usage_by_model: Vec<ModelUsage>,
    pub volume_discounts: Money,
}

impl Statement {
    /// The movements in the order a statement lists them.
    pub fn movements(&self) -> [Movement; 6] {
        [
            self.credits,
            self.grants,
            self.usage,
            self.refunds,
            self.adjustments,
            self.expiries,
        ]
    }

    /// Opening balance plus every movement; equals `closing_balance` (the ledger at the month's end) for
    /// every statement [`ops`] makes.
    pub fn opening_plus_movements(&self) -> Option<Money> {
        self.movements()
            .iter()
            .try_fold(self.opening_balance, |sum, movement| {
                sum.checked_add(movement.amount)
            })
    }
}

/// The statement number of `month` for an account created in `created`.
pub fn number(created: Month, month: Month) -> u32 {
    u32::try_from(month.since(created) + 1).unwrap_or(u32::MAX)
}

/// The account a statement is read for, and the months it may be read for: its creation month to now's.
pub(crate) fn check_month(
    month: Month,
    created_at: Millis,
    now: Millis,
    account_id: &AccountId,
) -> Result<(), BillingError> {
    let (first, current) = (Month::of(created_at), Month::of(now));
    if month < first || month > current {
        return Err(BillingError::invalid(
            "month",
            format!(
                "account {account_id} has statements from {first} to {current}, not for {month}"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_and_bound() {
        let november: Month = "2026-11".parse().unwrap();
        assert_eq!(november.to_string(), "2026-11");
        assert_eq!(november.start(), 1_793_491_200_000); // 2026-11-01T00:00:00Z
        assert_eq!(november.end(), 1_796_083_200_000); // 2026-12-01T00:00:00Z
        assert_eq!(november.next().next().to_string(), "2027-01");
        assert_eq!(
            "2027-01".parse::<Month>().unwrap().previous(),
            november.next()
        );
        assert_eq!(Month::of(november.end() - 1), november);
        for bad in [
            "2026-13",
            "2026-00",
            "26-11",
            "2026-1",
            "2026/11",
            "",
            "2026-11-01",
        ] {
            assert!(bad.parse::<Month>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_month_closes_after_the_grace() {
        let november: Month = "2026-11".parse().unwrap();
        assert!(!november.is_closed(november.end()));
        assert!(!november.is_closed(november.end() + CLOSE_GRACE_MS - 1));
        assert!(november.is_closed(november.end() + CLOSE_GRACE_MS));
    }

    #[test]
    fn numbers_count_months_from_creation() {
        let created: Month = "2025-11".parse().unwrap();
        assert_eq!(number(created, created), 1);
        assert_eq!(number(created, "2026-11".parse().unwrap()), 13);
    }
}
