//! How grants are spent (BILLING.md, "Credit grants"): lower `priority` first, then the earliest `expiresAt`
//! (a grant that never expires last), then the oldest. A charge draws grants down in that order; what no
//! grant covers is the account's overage, which the next grant pays first. A grant's rows are written by
//! [`sql`].

pub mod sql;

use std::cmp::Ordering;

use proto::ids::{AccountId, GrantId};

use crate::time::Millis;
use money::Money;

/// What kind of credit a grant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Paid,
    Promotional,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Paid => "paid",
            Category::Promotional => "promotional",
        }
    }

    pub fn parse(text: &str) -> Option<Category> {
        match text {
            "paid" => Some(Category::Paid),
            "promotional" => Some(Category::Promotional),
            _ => None,
        }
    }

    /// Lower is spent first: promotional credit before paid credit.
    pub fn default_priority(self) -> i64 {
        match self {
            Category::Promotional => 0,
            Category::Paid => 100,
        }
    }
}

/// One grant, as read in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditGrant {
    pub id: GrantId,
    pub account_id: AccountId,
    pub category: Category,
    pub amount: Money,
    pub remaining: Money,
    pub priority: i64,
    pub expires_at: Option<Millis>,
    pub created_at: Millis,
    /// The ledger row that brought the grant in (absent for grants migrated from a plain balance).
    pub transaction_id: Option<i64>,
    /// When the service expired its remainder.
    pub expired_at: Option<Millis>,
}

/// The order grants are spent in.
pub fn spending_order(a: &CreditGrant, b: &CreditGrant) -> Ordering {
    a.priority
        .cmp(&b.priority)
        .then_with(|| match (a.expires_at, b.expires_at) {
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
        .then_with(|| a.created_at.cmp(&b.created_at))
        .then_with(|| a.id.cmp(&b.id))
}

/// What a charge took from each grant, in order, and what no grant covered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draw {
    pub taken: Vec<(GrantId, Money)>,
    pub shortfall: Money,
}

/// Takes `amount` (positive) from `grants` in spending order.
pub fn draw(grants: &mut [CreditGrant], amount: Money) -> Draw {
    let mut order: Vec<usize> = (0..grants.len())
        .filter(|&index| grants[index].remaining.is_positive())
        .collect();
    order.sort_by(|&a, &b| spending_order(&grants[a], &grants[b]));
    let mut left = amount;
    let mut taken = Vec::new();
    for index in order {
        if !left.is_positive() {
            break;
        }
        let grant = &mut grants[index];
        let take = left.min(grant.remaining);
        grant.remaining = Money::from_nanos(grant.remaining.nanos() - take.nanos());
        left = Money::from_nanos(left.nanos() - take.nanos());
        taken.push((grant.id.clone(), take));
    }
    Draw {
        taken,
        shortfall: left,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn grant(
        id: &str,
        remaining: i64,
        priority: i64,
        expires_at: Option<i64>,
        created_at: i64,
    ) -> CreditGrant {
        CreditGrant {
            id: GrantId::from(id),
            account_id: AccountId::from("a"),
            category: Category::Paid,
            amount: Money::from_nanos(remaining.max(1)),
            remaining: Money::from_nanos(remaining),
            priority,
            expires_at,
            created_at,
            transaction_id: None,
            expired_at: None,
        }
    }

    fn ids(draw: &Draw) -> Vec<(&str, i64)> {
        draw.taken
            .iter()
            .map(|(id, amount)| (id.as_str(), amount.nanos()))
            .collect()
    }

    /// Every combination of priority and expiry that decides the order, and the age that breaks ties.
    #[test]
    fn grants_are_spent_by_priority_then_expiry_then_age() {
        let table: [(&str, Vec<CreditGrant>, Vec<&str>); 6] = [
            (
                "lower priority first, whatever the expiry",
                vec![
                    grant("paid", 10, 100, Some(5), 1),
                    grant("promo", 10, 0, None, 2),
                ],
                vec!["promo", "paid"],
            ),
            (
                "same priority: earliest expiry first",
                vec![
                    grant("late", 10, 0, Some(9), 1),
                    grant("soon", 10, 0, Some(3), 2),
                ],
                vec!["soon", "late"],
            ),
            (
                "same priority: a grant that never expires last",
                vec![
                    grant("never", 10, 0, None, 1),
                    grant("expiring", 10, 0, Some(99), 2),
                ],
                vec!["expiring", "never"],
            ),
            (
                "same priority and expiry: oldest first",
                vec![
                    grant("new", 10, 0, Some(5), 7),
                    grant("old", 10, 0, Some(5), 3),
                ],
                vec!["old", "new"],
            ),
            (
                "neither expires: oldest first",
                vec![
                    grant("new", 10, 100, None, 7),
                    grant("old", 10, 100, None, 3),
                ],
                vec!["old", "new"],
            ),
            (
                "spent grants are skipped",
                vec![
                    grant("empty", 0, 0, None, 1),
                    grant("full", 10, 100, None, 2),
                ],
                vec!["full"],
            ),
        ];
        for (case, mut grants, expected) in table {
            let draw = draw(&mut grants, Money::from_nanos(15));
            let order: Vec<&str> = draw.taken.iter().map(|(id, _)| id.as_str()).collect();
            let expected: Vec<&str> = expected
                .into_iter()
                .take(if case.starts_with("spent") { 1 } else { 2 })
                .collect();
            assert_eq!(order, expected, "{case}");
        }
    }

    #[test]
    fn a_draw_takes_what_each_grant_has_and_reports_the_shortfall() {
        let mut grants = vec![
            grant("promo", 7, 0, Some(5), 1),
            grant("paid", 5, 100, None, 2),
        ];
        let first = draw(&mut grants, Money::from_nanos(10));
        assert_eq!(ids(&first), vec![("promo", 7), ("paid", 3)]);
        assert_eq!(first.shortfall, Money::ZERO);
        let second = draw(&mut grants, Money::from_nanos(4));
        assert_eq!(ids(&second), vec![("paid", 2)]);
        assert_eq!(second.shortfall, Money::from_nanos(2));
        assert!(grants.iter().all(|grant| grant.remaining.is_zero()));
    }
}
