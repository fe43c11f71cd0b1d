//! SQL of `billing_accounts`.

use rust_decimal::Decimal;
use sqlx::AnyConnection;

use super::Account;
use crate::events::alerts;
use crate::payments::auto_recharge;
use crate::prices::DiscountTier;
use crate::store::backend::Backend;
use crate::store::bulk;
use crate::store::row::column_error;
use crate::time::Millis;
use money::Money;
use proto::ids::AccountId;

const COLUMNS: &str = "id, name, credits_balance, held_credits, total_spent, daily_limit, monthly_limit, created_at, \
    updated_at, overage, low_balance_alerts, auto_recharge, discount_tiers, email, ledger_hash";

/// A row of `billing_accounts`: [`COLUMNS`]; money in nano-dollars.
#[derive(sqlx::FromRow)]
struct AccountRow {
    id: String,
    name: String,
    credits_balance: i64,
    held_credits: i64,
    total_spent: i64,
    daily_limit: Option<i64>,
    monthly_limit: Option<i64>,
    created_at: Millis,
    updated_at: Millis,
    overage: i64,
    /// JSON ([`alerts::to_json`]).
    low_balance_alerts: String,
    /// JSON ([`auto_recharge::to_json`]), once configured.
    auto_recharge: Option<String>,
    /// JSON ([`tiers_to_json`]).
    discount_tiers: String,
    /// Empty: none.
    email: String,
    /// Empty: no ledger row yet.
    ledger_hash: String,
}

impl TryFrom<AccountRow> for Account {
    type Error = sqlx::Error;

    fn try_from(row: AccountRow) -> Result<Account, sqlx::Error> {
        Ok(Account {
            id: AccountId::from(row.id),
            name: row.name,
            credits_balance: Money::from_nanos(row.credits_balance),
            held_credits: Money::from_nanos(row.held_credits),
            total_spent: Money::from_nanos(row.total_spent),
            daily_limit: row.daily_limit.map(Money::from_nanos),
            monthly_limit: row.monthly_limit.map(Money::from_nanos),
            created_at: row.created_at,
            updated_at: row.updated_at,
            overage: Money::from_nanos(row.overage),
            low_balance: alerts::from_json(&row.low_balance_alerts)
                .map_err(|error| column_error("low_balance_alerts", error))?,
            auto_recharge: row
                .auto_recharge
                .map(|text| auto_recharge::from_json(&text))
                .transpose()
                .map_err(|error| column_error("auto_recharge", error))?,
            discount_tiers: tiers_from_json(&row.discount_tiers)
                .map_err(|error| column_error("discount_tiers", error))?,
            email: row.email,
            ledger_hash: row.ledger_hash,
            grants: Vec::new(),
            changed_grants: Vec::new(),
        })
    }
}

/// Tiers as stored: `[{"fromMonthlySpend": "1000", "percentOff": "10"}]`.
pub fn tiers_to_json(tiers: &[DiscountTier]) -> String {
    let tiers: Vec<serde_json::Value> = tiers
        .iter()
        .map(|tier| {
            serde_json::json!({
                "fromMonthlySpend": tier.from_monthly_spend.to_string(),
                "percentOff": tier.percent_off.to_string(),
            })
        })
        .collect();
    serde_json::Value::Array(tiers).to_string()
}

fn tiers_from_json(text: &str) -> Result<Vec<DiscountTier>, String> {
    if text == "[]" {
        return Ok(Vec::new());
    }
    let tiers: Vec<serde_json::Value> =
        serde_json::from_str(text).map_err(|error| error.to_string())?;
    tiers
        .iter()
        .map(|tier| {
            let field = |name: &str| tier[name].as_str().ok_or(format!("{name} missing"));
            Ok(DiscountTier {
                from_monthly_spend: field("fromMonthlySpend")?
                    .parse()
                    .map_err(|error| format!("fromMonthlySpend {error}"))?,
                percent_off: Decimal::from_str_exact(field("percentOff")?)
                    .map_err(|error| format!("percentOff {error}"))?,
            })
        })
        .collect()
}

/// Replaces the account's volume tiers.
pub async fn set_discount_tiers(
    connection: &mut AnyConnection,
    account: &Account,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE billing_accounts SET discount_tiers = $1, updated_at = $2 WHERE id = $3")
        .bind(tiers_to_json(&account.discount_tiers))
        .bind(account.updated_at)
        .bind(account.id.as_str())
        .execute(connection)
        .await?;
    Ok(())
}

/// Sets the account's email address (empty: none).
pub async fn set_email(
    connection: &mut AnyConnection,
    account: &Account,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE billing_accounts SET email = $1, updated_at = $2 WHERE id = $3")
        .bind(&account.email)
        .bind(account.updated_at)
        .bind(account.id.as_str())
        .execute(connection)
        .await?;
    Ok(())
}

/// Accounts created before `before` with an email address, after the account `after` (id order), at most
/// `limit`: those a weekly usage report goes to.
pub async fn with_email(
    connection: &mut AnyConnection,
    before: Millis,
    after: &str,
    limit: i64,
) -> Result<Vec<AccountId>, sqlx::Error> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM billing_accounts WHERE email <> '' AND created_at < $1 AND id > $2 \
         ORDER BY id LIMIT $3",
    )
    .bind(before)
    .bind(after)
    .bind(limit)
    .fetch_all(connection)
    .await?;
    Ok(ids.into_iter().map(AccountId::from).collect())
}

pub async fn insert(connection: &mut AnyConnection, account: &Account) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO billing_accounts (id, name, credits_balance, held_credits, total_spent, created_at, updated_at) \
         VALUES ($1, $2, 0, 0, 0, $3, $3)",
    )
    .bind(account.id.as_str())
    .bind(&account.name)
    .bind(account.created_at)
    .execute(connection)
    .await?;
    Ok(())
}

/// Reads `ids` (at most [`bulk::MAX_ROWS`]) inside a write transaction, in one statement, locked: on
/// PostgreSQL each row is locked (`FOR UPDATE`, in id order, so that two writers locking overlapping sets
/// cannot deadlock); on SQLite the batch's transaction already holds the database write lock
/// (`BEGIN IMMEDIATE`). Concurrent operations on one account therefore run one after the other. Ids with
/// no account are absent.
pub async fn lock(
    connection: &mut AnyConnection,
    backend: Backend,
    ids: &[&AccountId],
) -> Result<Vec<Account>, sqlx::Error> {
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE",
        Backend::Sqlite => "",
    };
    let rows: Vec<AccountRow> = bulk::fetch_in(connection, ids, |list| {
        format!("SELECT {COLUMNS} FROM billing_accounts WHERE id IN ({list}) ORDER BY id {lock}")
    })
    .await?;
    rows.into_iter().map(Account::try_from).collect()
}

pub async fn by_id(
    connection: &mut AnyConnection,
    id: &AccountId,
) -> Result<Option<Account>, sqlx::Error> {
    sqlx::query_as::<_, AccountRow>(&format!(
        "SELECT {COLUMNS} FROM billing_accounts WHERE id = $1"
    ))
    .bind(id.as_str())
    .fetch_optional(connection)
    .await?
    .map(Account::try_from)
    .transpose()
}

/// Accounts oldest first, after the cursor `(created_at, id)` of the previous page, at most `limit`.
pub async fn list(
    connection: &mut AnyConnection,
    after: Option<(Millis, &AccountId)>,
    limit: i64,
) -> Result<Vec<Account>, sqlx::Error> {
    let (after_time, after_id) = after.map_or((Millis::MIN, ""), |(time, id)| (time, id.as_str()));
    sqlx::query_as::<_, AccountRow>(&format!(
        "SELECT {COLUMNS} FROM billing_accounts WHERE created_at > $1 OR (created_at = $1 AND id > $2) \
         ORDER BY created_at, id LIMIT $3"
    ))
    .bind(after_time)
    .bind(after_id)
    .bind(limit)
    .fetch_all(connection)
    .await?
    .into_iter()
    .map(Account::try_from)
    .collect()
}

/// Writes the money columns (and the ledger head) of locked `accounts` (at most [`bulk::MAX_ROWS`]) in one
/// statement.
pub async fn update_money(
    connection: &mut AnyConnection,
    accounts: &[&Account],
) -> Result<(), sqlx::Error> {
    debug_assert!(accounts.len() <= bulk::MAX_ROWS);
    if accounts.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "WITH v (id, credits_balance, held_credits, total_spent, updated_at, overage, low_balance_alerts, \
         auto_recharge, ledger_hash) AS (VALUES {}) \
         UPDATE billing_accounts SET credits_balance = v.credits_balance, held_credits = v.held_credits, \
         total_spent = v.total_spent, updated_at = v.updated_at, overage = v.overage, \
         low_balance_alerts = v.low_balance_alerts, auto_recharge = v.auto_recharge, \
         ledger_hash = v.ledger_hash FROM v WHERE billing_accounts.id = v.id",
        bulk::tuples(
            bulk::Style::of(connection),
            bulk::slots(accounts.len()),
            9,
            1
        )
    );
    let encoded: Vec<(&Account, String, Option<String>)> = accounts
        .iter()
        .map(|account| {
            (
                *account,
                alerts::to_json(&account.low_balance),
                account.auto_recharge.as_ref().map(auto_recharge::to_json),
            )
        })
        .collect();
    bulk::bind_padded(
        sqlx::query(&sql),
        &encoded,
        |query, (account, low_balance, auto_recharge)| {
            query
                .bind(account.id.as_str())
                .bind(account.credits_balance.nanos())
                .bind(account.held_credits.nanos())
                .bind(account.total_spent.nanos())
                .bind(account.updated_at)
                .bind(account.overage.nanos())
                .bind(low_balance.as_str())
                .bind(auto_recharge.as_deref())
                .bind(account.ledger_hash.as_str())
        },
    )
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn set_limits(
    connection: &mut AnyConnection,
    account: &Account,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE billing_accounts SET daily_limit = $1, monthly_limit = $2, updated_at = $3 WHERE id = $4")
        .bind(account.daily_limit.map(Money::nanos))
        .bind(account.monthly_limit.map(Money::nanos))
        .bind(account.updated_at)
        .bind(account.id.as_str())
        .execute(connection)
        .await?;
    Ok(())
}
