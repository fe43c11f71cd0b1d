//! SQL of `transactions`, the ledger rows.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Transaction, TransactionType};
use crate::store::bulk;
use crate::time::Millis;
use money::Money;
use proto::ids::{AccountId, ApiKeyId};

/// The type of each column of [`COLUMNS`] (see [`bulk::bind_rows`]).
const TYPES: &str = "itttiiittit";

const COLUMNS: &str = "id, account_id, api_key_id, type, amount, balance_after, total_spent_after, description, metadata, timestamp, idempotency_key";

fn from_row(row: &AnyRow) -> Result<Transaction, sqlx::Error> {
    let kind: String = row.try_get(3)?;
    let api_key_id: Option<String> = row.try_get(2)?;
    Ok(Transaction {
        id: row.try_get(0)?,
        account_id: AccountId::from(row.try_get::<String, _>(1)?),
        api_key_id: api_key_id.map(ApiKeyId::from),
        kind: TransactionType::parse(&kind).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown transaction type {kind:?}").into())
        })?,
        amount: Money::from_nanos(row.try_get(4)?),
        balance_after: Money::from_nanos(row.try_get(5)?),
        total_spent_after: Money::from_nanos(row.try_get(6)?),
        description: row.try_get(7)?,
        metadata: row.try_get(8)?,
        timestamp: row.try_get(9)?,
        idempotency_key: row.try_get(10)?,
    })
}

/// Inserts `transactions` with their ids (given by the batch), at most [`bulk::MAX_ROWS`], in one
/// statement.
pub async fn insert(
    connection: &mut AnyConnection,
    transactions: &[Transaction],
) -> Result<(), sqlx::Error> {
    debug_assert!(transactions.len() <= bulk::MAX_ROWS);
    if transactions.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO transactions ({COLUMNS}) {}",
        bulk::insert_rows(bulk::Style::of(connection), transactions.len(), TYPES)
    );
    bulk::bind_rows(
        sqlx::query(&sql),
        transactions,
        TYPES,
        |query, transaction| {
            query
                .bind(transaction.id)
                .bind(transaction.account_id.as_str())
                .bind(transaction.api_key_id.as_ref().map(ApiKeyId::as_str))
                .bind(transaction.kind.as_str())
                .bind(transaction.amount.nanos())
                .bind(transaction.balance_after.nanos())
                .bind(transaction.total_spent_after.nanos())
                .bind(&transaction.description)
                .bind(&transaction.metadata)
                .bind(transaction.timestamp)
                .bind(&transaction.idempotency_key)
        },
    )
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn by_idempotency_key(
    connection: &mut AnyConnection,
    account_id: &AccountId,
    idempotency_key: &str,
) -> Result<Option<Transaction>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM transactions WHERE account_id = $1 AND idempotency_key = $2"
    ))
    .bind(account_id.as_str())
    .bind(idempotency_key)
    .fetch_optional(connection)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// Newest first, ids below `before` (a cursor), at most `limit` rows; only those of one key when given.
pub async fn list(
    connection: &mut AnyConnection,
    account_id: &AccountId,
    api_key_id: Option<&ApiKeyId>,
    kind: Option<TransactionType>,
    before: i64,
    limit: i64,
) -> Result<Vec<Transaction>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM transactions WHERE account_id = $1 AND ($2 = '' OR api_key_id = $2) \
         AND id < $3 AND ($4 = '' OR type = $4) ORDER BY id DESC LIMIT $5"
    ))
    .bind(account_id.as_str())
    .bind(api_key_id.map_or("", ApiKeyId::as_str))
    .bind(before)
    .bind(kind.map_or("", TransactionType::as_str))
    .bind(limit)
    .fetch_all(connection)
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Net spend since `since`: usage deductions minus refunds, as a positive amount; of the whole account, or
/// of one of its keys.
pub async fn spend_since(
    connection: &mut AnyConnection,
    account_id: &AccountId,
    api_key_id: Option<&ApiKeyId>,
    since: Millis,
) -> Result<Money, sqlx::Error> {
    let net: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM transactions \
         WHERE account_id = $1 AND ($2 = '' OR api_key_id = $2) AND timestamp >= $3 \
         AND type IN ('usage_deduction', 'refund')",
    )
    .bind(account_id.as_str())
    .bind(api_key_id.map_or("", ApiKeyId::as_str))
    .bind(since)
    .fetch_one(connection)
    .await?;
    Ok(Money::from_nanos(-net))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_has_a_type() {
        assert_eq!(COLUMNS.split(',').count(), TYPES.len());
    }
}
