//! SQL of `transactions`, the ledger rows.

use sqlx::AnyConnection;

use super::{Transaction, TransactionType};
use crate::store::bulk;
use crate::store::row::parse_enum;
use crate::time::Millis;
use money::Money;
use proto::ids::{AccountId, ApiKeyId};

/// The type of each column of [`COLUMNS`] (see [`bulk::bind_rows`]).
const TYPES: &str = "itttiiittittt";

const COLUMNS: &str = "id, account_id, api_key_id, type, amount, balance_after, total_spent_after, description, metadata, timestamp, idempotency_key, prev_hash, hash";

/// A row of `transactions`: [`COLUMNS`]; money in nano-dollars.
#[derive(sqlx::FromRow)]
struct TransactionRow {
    id: i64,
    account_id: String,
    api_key_id: Option<String>,
    #[sqlx(rename = "type")]
    kind: String,
    amount: i64,
    balance_after: i64,
    total_spent_after: i64,
    description: String,
    metadata: String,
    timestamp: Millis,
    idempotency_key: Option<String>,
    prev_hash: String,
    hash: String,
}

impl TryFrom<TransactionRow> for Transaction {
    type Error = sqlx::Error;

    fn try_from(row: TransactionRow) -> Result<Transaction, sqlx::Error> {
        Ok(Transaction {
            id: row.id,
            account_id: AccountId::from(row.account_id),
            api_key_id: row.api_key_id.map(ApiKeyId::from),
            kind: parse_enum("type", &row.kind, TransactionType::parse)?,
            amount: Money::from_nanos(row.amount),
            balance_after: Money::from_nanos(row.balance_after),
            total_spent_after: Money::from_nanos(row.total_spent_after),
            description: row.description,
            metadata: row.metadata,
            timestamp: row.timestamp,
            idempotency_key: row.idempotency_key,
            prev_hash: row.prev_hash,
            hash: row.hash,
        })
    }
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
                .bind(&transaction.prev_hash)
                .bind(&transaction.hash)
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
    sqlx::query_as::<_, TransactionRow>(&format!(
        "SELECT {COLUMNS} FROM transactions WHERE account_id = $1 AND idempotency_key = $2"
    ))
    .bind(account_id.as_str())
    .bind(idempotency_key)
    .fetch_optional(connection)
    .await?
    .map(Transaction::try_from)
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
    sqlx::query_as::<_, TransactionRow>(&format!(
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
    .into_iter()
    .map(Transaction::try_from)
    .collect()
}

/// The account's rows after the row `after` (an id; 0 for all), oldest first, at most `limit`: its chain in
/// order.
pub async fn chain_page(
    connection: &mut AnyConnection,
    account_id: &AccountId,
    after: i64,
    limit: i64,
) -> Result<Vec<Transaction>, sqlx::Error> {
    sqlx::query_as::<_, TransactionRow>(&format!(
        "SELECT {COLUMNS} FROM transactions WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    ))
    .bind(account_id.as_str())
    .bind(after)
    .bind(limit)
    .fetch_all(connection)
    .await?
    .into_iter()
    .map(Transaction::try_from)
    .collect()
}

/// The account's latest row that has a hash: where the unhashed rows after it chain on.
pub async fn last_chained(
    connection: &mut AnyConnection,
    account_id: &AccountId,
) -> Result<Option<(i64, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, hash FROM transactions WHERE account_id = $1 AND hash <> '' ORDER BY id DESC LIMIT 1",
    )
    .bind(account_id.as_str())
    .fetch_optional(connection)
    .await
}

/// The account's latest row.
pub async fn last(
    connection: &mut AnyConnection,
    account_id: &AccountId,
) -> Result<Option<Transaction>, sqlx::Error> {
    sqlx::query_as::<_, TransactionRow>(&format!(
        "SELECT {COLUMNS} FROM transactions WHERE account_id = $1 ORDER BY id DESC LIMIT 1"
    ))
    .bind(account_id.as_str())
    .fetch_optional(connection)
    .await?
    .map(Transaction::try_from)
    .transpose()
}

/// The accounts whose latest rows were written without a hash (before the chain existed), at most `limit`. A
/// row without a hash before a hashed one is not the chain's to fill in (it was emptied): the audit names it.
pub async fn unchained_accounts(
    connection: &mut AnyConnection,
    limit: i64,
) -> Result<Vec<AccountId>, sqlx::Error> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT t.account_id FROM transactions t WHERE t.hash = '' AND NOT EXISTS \
         (SELECT 1 FROM transactions u WHERE u.account_id = t.account_id AND u.id > t.id AND u.hash <> '') \
         ORDER BY t.account_id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(connection)
    .await?;
    Ok(ids.into_iter().map(AccountId::from).collect())
}

/// Writes a row's place in its chain.
pub async fn set_chain(
    connection: &mut AnyConnection,
    row: &Transaction,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE transactions SET prev_hash = $1, hash = $2 WHERE id = $3")
        .bind(&row.prev_hash)
        .bind(&row.hash)
        .bind(row.id)
        .execute(connection)
        .await?;
    Ok(())
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

/// Net spend (as [`spend_since`]) in `[from, from + days × 1 day)`, per UTC day counted from `from` (a day's
/// start): one amount per day, days without spend too.
pub async fn spend_by_day(
    connection: &mut AnyConnection,
    account_id: &AccountId,
    from: Millis,
    days: usize,
) -> Result<Vec<Money>, sqlx::Error> {
    const DAY_MS: i64 = 86_400_000;
    let to = from + i64::try_from(days).unwrap_or(0) * DAY_MS;
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT CAST((timestamp - $2) / $4 AS BIGINT) AS day, CAST(SUM(amount) AS BIGINT) FROM transactions \
         WHERE account_id = $1 AND timestamp >= $2 AND timestamp < $3 \
         AND type IN ('usage_deduction', 'refund') GROUP BY day",
    )
    .bind(account_id.as_str())
    .bind(from)
    .bind(to)
    .bind(DAY_MS)
    .fetch_all(connection)
    .await?;
    let mut spend = vec![Money::ZERO; days];
    for (day, net) in rows {
        if let Some(slot) = usize::try_from(day).ok().and_then(|day| spend.get_mut(day)) {
            *slot = Money::from_nanos(-net);
        }
    }
    Ok(spend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_has_a_type() {
        assert_eq!(COLUMNS.split(',').count(), TYPES.len());
    }
}
