//! SQL of `auto_recharges`: one row per charge auto-recharge starts (WEBHOOKS.md, "Stripe's webhook
//! (payments)").

use proto::ids::AccountId;
use sqlx::AnyConnection;

use super::{Recharge, Status};
use crate::store::row::parse_enum;
use crate::time::Millis;
use money::Money;

const COLUMNS: &str =
    "id, account_id, amount, status, payment_intent_id, error, created_at, updated_at";

/// A row of `auto_recharges`: [`COLUMNS`]; money in nano-dollars.
#[derive(sqlx::FromRow)]
struct RechargeRow {
    id: String,
    account_id: String,
    amount: i64,
    status: String,
    payment_intent_id: Option<String>,
    error: Option<String>,
    created_at: Millis,
    updated_at: Millis,
}

impl TryFrom<RechargeRow> for Recharge {
    type Error = sqlx::Error;

    fn try_from(row: RechargeRow) -> Result<Recharge, sqlx::Error> {
        Ok(Recharge {
            id: row.id,
            account_id: AccountId::from(row.account_id),
            amount: Money::from_nanos(row.amount),
            status: parse_enum("status", &row.status, Status::parse)?,
            payment_intent_id: row.payment_intent_id,
            error: row.error,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

pub async fn insert(
    connection: &mut AnyConnection,
    recharge: &Recharge,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO auto_recharges (id, account_id, amount, status, payment_intent_id, error, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&recharge.id)
    .bind(recharge.account_id.as_str())
    .bind(recharge.amount.nanos())
    .bind(recharge.status.as_str())
    .bind(&recharge.payment_intent_id)
    .bind(&recharge.error)
    .bind(recharge.created_at)
    .bind(recharge.updated_at)
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn by_id(
    connection: &mut AnyConnection,
    id: &str,
) -> Result<Option<Recharge>, sqlx::Error> {
    sqlx::query_as::<_, RechargeRow>(&format!(
        "SELECT {COLUMNS} FROM auto_recharges WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(connection)
    .await?
    .map(Recharge::try_from)
    .transpose()
}

/// The account's charges, newest first, at most `limit`.
pub async fn of_account(
    connection: &mut AnyConnection,
    account_id: &AccountId,
    limit: i64,
) -> Result<Vec<Recharge>, sqlx::Error> {
    sqlx::query_as::<_, RechargeRow>(&format!(
        "SELECT {COLUMNS} FROM auto_recharges WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
    ))
    .bind(account_id.as_str())
    .bind(limit)
    .fetch_all(connection)
    .await?
    .into_iter()
    .map(Recharge::try_from)
    .collect()
}

/// Charges in `status` last changed at or before `changed_before` whose lease is free at `now`: each is
/// leased until `lease_until`.
pub async fn claim(
    connection: &mut AnyConnection,
    status: Status,
    changed_before: Millis,
    now: Millis,
    lease_until: Millis,
    limit: i64,
) -> Result<Vec<Recharge>, sqlx::Error> {
    let due: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM auto_recharges WHERE status = $1 AND updated_at <= $2 AND lease_until <= $3 \
         ORDER BY updated_at LIMIT $4",
    )
    .bind(status.as_str())
    .bind(changed_before)
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *connection)
    .await?;
    let mut claimed = Vec::new();
    for id in due {
        let row = sqlx::query_as::<_, RechargeRow>(&format!(
            "UPDATE auto_recharges SET lease_until = $1 WHERE id = $2 AND status = $3 \
             AND lease_until <= $4 RETURNING {COLUMNS}"
        ))
        .bind(lease_until)
        .bind(&id)
        .bind(status.as_str())
        .bind(now)
        .fetch_optional(&mut *connection)
        .await?;
        if let Some(row) = row {
            claimed.push(Recharge::try_from(row)?);
        }
    }
    Ok(claimed)
}

/// Writes where a charge stands and frees its lease.
pub async fn save(connection: &mut AnyConnection, recharge: &Recharge) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE auto_recharges SET status = $1, payment_intent_id = $2, error = $3, updated_at = $4, \
         lease_until = 0 WHERE id = $5",
    )
    .bind(recharge.status.as_str())
    .bind(&recharge.payment_intent_id)
    .bind(&recharge.error)
    .bind(recharge.updated_at)
    .bind(&recharge.id)
    .execute(connection)
    .await?;
    Ok(())
}

/// The Stripe customer of the account's saved card.
pub async fn customer_of(
    connection: &mut AnyConnection,
    account_id: &AccountId,
) -> Result<Option<String>, sqlx::Error> {
    Ok(sqlx::query_scalar::<_, Option<String>>(
        "SELECT stripe_customer_id FROM billing_accounts WHERE id = $1",
    )
    .bind(account_id.as_str())
    .fetch_optional(connection)
    .await?
    .flatten())
}

pub async fn set_customer(
    connection: &mut AnyConnection,
    account_id: &AccountId,
    customer_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE billing_accounts SET stripe_customer_id = $1 WHERE id = $2")
        .bind(customer_id)
        .bind(account_id.as_str())
        .execute(connection)
        .await?;
    Ok(())
}
