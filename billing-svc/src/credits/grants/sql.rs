//! SQL of `credit_grants`: the lots of credit an account's balance is made of (BILLING.md, "Credit grants").

use proto::ids::{AccountId, GrantId};
use sqlx::AnyConnection;

use super::{Category, CreditGrant};
use crate::store::bulk;
use crate::store::row::parse_enum;
use crate::time::Millis;
use money::Money;

/// The type of each column of [`COLUMNS`] (see [`bulk::bind_rows`]).
const TYPES: &str = "tttiiiiiii";

const COLUMNS: &str = "id, account_id, category, amount, remaining, priority, expires_at, created_at, \
    transaction_id, expired_at";

/// A row of `credit_grants`: [`COLUMNS`]; money in nano-dollars.
#[derive(sqlx::FromRow)]
struct GrantRow {
    id: String,
    account_id: String,
    category: String,
    amount: i64,
    remaining: i64,
    priority: i64,
    expires_at: Option<Millis>,
    created_at: Millis,
    transaction_id: Option<i64>,
    expired_at: Option<Millis>,
}

impl TryFrom<GrantRow> for CreditGrant {
    type Error = sqlx::Error;

    fn try_from(row: GrantRow) -> Result<CreditGrant, sqlx::Error> {
        Ok(CreditGrant {
            id: GrantId::from(row.id),
            account_id: AccountId::from(row.account_id),
            category: parse_enum("category", &row.category, Category::parse)?,
            amount: Money::from_nanos(row.amount),
            remaining: Money::from_nanos(row.remaining),
            priority: row.priority,
            expires_at: row.expires_at,
            created_at: row.created_at,
            transaction_id: row.transaction_id,
            expired_at: row.expired_at,
        })
    }
}

/// An expired grant that still holds credit, and its account.
#[derive(sqlx::FromRow)]
struct ExpiredRow {
    id: String,
    account_id: String,
}

/// Inserts new `grants`, at most [`bulk::MAX_ROWS`], in one statement.
pub async fn insert(
    connection: &mut AnyConnection,
    grants: &[CreditGrant],
) -> Result<(), sqlx::Error> {
    debug_assert!(grants.len() <= bulk::MAX_ROWS);
    if grants.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO credit_grants ({COLUMNS}) {}",
        bulk::insert_rows(bulk::Style::of(connection), grants.len(), TYPES)
    );
    bulk::bind_rows(sqlx::query(&sql), grants, TYPES, |query, grant| {
        query
            .bind(grant.id.as_str())
            .bind(grant.account_id.as_str())
            .bind(grant.category.as_str())
            .bind(grant.amount.nanos())
            .bind(grant.remaining.nanos())
            .bind(grant.priority)
            .bind(grant.expires_at)
            .bind(grant.created_at)
            .bind(grant.transaction_id)
            .bind(grant.expired_at)
    })
    .execute(connection)
    .await?;
    Ok(())
}

/// Writes what spending or expiry changed in `grants` (the remainder and the expiry mark), at most
/// [`bulk::MAX_ROWS`], in one statement.
pub async fn update_remaining(
    connection: &mut AnyConnection,
    grants: &[&CreditGrant],
) -> Result<(), sqlx::Error> {
    debug_assert!(grants.len() <= bulk::MAX_ROWS);
    if grants.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "WITH v (id, remaining, expired_at) AS (VALUES {}) \
         UPDATE credit_grants SET remaining = v.remaining, expired_at = v.expired_at FROM v \
         WHERE credit_grants.id = v.id",
        bulk::tuples(bulk::Style::of(connection), bulk::slots(grants.len()), 3, 1)
    );
    bulk::bind_padded(sqlx::query(&sql), grants, |query, grant| {
        query
            .bind(grant.id.as_str())
            .bind(grant.remaining.nanos())
            .bind(grant.expired_at)
    })
    .execute(connection)
    .await?;
    Ok(())
}

/// The grants that still hold credit of `accounts` (at most [`bulk::MAX_ROWS`]), in one statement.
pub async fn live(
    connection: &mut AnyConnection,
    accounts: &[&AccountId],
) -> Result<Vec<CreditGrant>, sqlx::Error> {
    let rows: Vec<GrantRow> = bulk::fetch_in(connection, accounts, |list| {
        format!(
            "SELECT {COLUMNS} FROM credit_grants WHERE account_id IN ({list}) AND remaining > 0"
        )
    })
    .await?;
    rows.into_iter().map(CreditGrant::try_from).collect()
}

/// The grants of an account, those holding credit first (in the order they are spent), then the spent and
/// expired ones (newest first) when asked.
pub async fn list(
    connection: &mut AnyConnection,
    account_id: &AccountId,
    include_spent: bool,
) -> Result<Vec<CreditGrant>, sqlx::Error> {
    let filter = if include_spent {
        ""
    } else {
        "AND remaining > 0"
    };
    let mut grants: Vec<CreditGrant> = sqlx::query_as::<_, GrantRow>(&format!(
        "SELECT {COLUMNS} FROM credit_grants WHERE account_id = $1 {filter}"
    ))
    .bind(account_id.as_str())
    .fetch_all(connection)
    .await?
    .into_iter()
    .map(CreditGrant::try_from)
    .collect::<Result<_, _>>()?;
    // Live grants first, in the order they are spent; then spent and expired ones, newest first.
    grants.sort_by(
        |a, b| match (a.remaining.is_positive(), b.remaining.is_positive()) {
            (true, true) => super::spending_order(a, b),
            (false, false) => b.created_at.cmp(&a.created_at),
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
        },
    );
    Ok(grants)
}

/// The grant that a ledger row brought in.
pub async fn by_transaction(
    connection: &mut AnyConnection,
    transaction_id: i64,
) -> Result<Option<CreditGrant>, sqlx::Error> {
    sqlx::query_as::<_, GrantRow>(&format!(
        "SELECT {COLUMNS} FROM credit_grants WHERE transaction_id = $1"
    ))
    .bind(transaction_id)
    .fetch_optional(connection)
    .await?
    .map(CreditGrant::try_from)
    .transpose()
}

/// Up to `limit` grants whose expiry has come and that still hold credit: `(grant, its account)`.
pub async fn expired(
    connection: &mut AnyConnection,
    now: Millis,
    limit: i64,
) -> Result<Vec<(GrantId, AccountId)>, sqlx::Error> {
    let rows: Vec<ExpiredRow> = sqlx::query_as(
        "SELECT id, account_id FROM credit_grants \
         WHERE expires_at IS NOT NULL AND expires_at <= $1 AND remaining > 0 ORDER BY expires_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (GrantId::from(row.id), AccountId::from(row.account_id)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_has_a_type() {
        assert_eq!(COLUMNS.split(',').count(), TYPES.len());
    }
}
