//! SQL of statements: the ledger sums a statement is made of (by the `(account_id, timestamp)` indexes of
//! `transactions` and `usage_records`), and the `statements` table of frozen months.

use sqlx::{AnyConnection, FromRow};

use super::{ModelUsage, Month, Statement};
use crate::credits::transactions::TransactionType;
use crate::store::row::{column_error, count, parse_enum};
use crate::time::Millis;
use crate::usage::sql::ClassesRow;
use money::Money;
use proto::ids::AccountId;

/// The balance after the account's last ledger row before `at` (0 before its first).
pub async fn balance_before(
    connection: &mut AnyConnection,
    account_id: &AccountId,
    at: Millis,
) -> Result<Money, sqlx::Error> {
    let balance: Option<i64> = sqlx::query_scalar(
        "SELECT balance_after FROM transactions WHERE account_id = $1 AND timestamp < $2 \
         ORDER BY timestamp DESC, id DESC LIMIT 1",
    )
    .bind(account_id.as_str())
    .bind(at)
    .fetch_optional(connection)
    .await?;
    Ok(Money::from_nanos(balance.unwrap_or(0)))
}

/// The sum and count of the account's ledger rows in `[from, to)`, by type.
pub async fn movements(
    connection: &mut AnyConnection,
    account_id: &AccountId,
    from: Millis,
    to: Millis,
) -> Result<Vec<(TransactionType, Money, u64)>, sqlx::Error> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT type, CAST(SUM(amount) AS BIGINT), CAST(COUNT(*) AS BIGINT) FROM transactions \
         WHERE account_id = $1 AND timestamp >= $2 AND timestamp < $3 GROUP BY type",
    )
    .bind(account_id.as_str())
    .bind(from)
    .bind(to)
    .fetch_all(connection)
    .await?;
    rows.into_iter()
        .map(|(kind, amount, rows)| {
            Ok((
                parse_enum("type", &kind, TransactionType::parse)?,
                Money::from_nanos(amount),
                count(rows),
            ))
        })
        .collect()
}

/// Sums of one model's records: [`usage_by_model`]'s columns; money in nano-dollars.
#[derive(FromRow)]
struct ModelRow {
    model: String,
    requests: i64,
    input_tokens: i64,
    output_tokens: i64,
    #[sqlx(flatten)]
    classes: ClassesRow,
    input_cost: i64,
    output_cost: i64,
    request_fees: i64,
    charged: i64,
    discount: i64,
}

/// The account's billed usage in `[from, to)` (the records of its standard keys), by model.
pub async fn usage_by_model(
    connection: &mut AnyConnection,
    account_id: &AccountId,
    from: Millis,
    to: Millis,
) -> Result<Vec<ModelUsage>, sqlx::Error> {
    let rows: Vec<ModelRow> = sqlx::query_as(
        "SELECT model, CAST(COUNT(*) AS BIGINT) AS requests, \
         CAST(SUM(input_tokens) AS BIGINT) AS input_tokens, \
         CAST(SUM(output_tokens) AS BIGINT) AS output_tokens, \
         CAST(SUM(cached_input_tokens) AS BIGINT) AS cached_input_tokens, \
         CAST(SUM(cache_write_tokens) AS BIGINT) AS cache_write_tokens, \
         CAST(SUM(cache_write_1h_tokens) AS BIGINT) AS cache_write_1h_tokens, \
         CAST(SUM(reasoning_tokens) AS BIGINT) AS reasoning_tokens, \
         CAST(SUM(audio_input_tokens) AS BIGINT) AS audio_input_tokens, \
         CAST(SUM(audio_output_tokens) AS BIGINT) AS audio_output_tokens, \
         CAST(SUM(input_cost) AS BIGINT) AS input_cost, \
         CAST(SUM(output_cost) AS BIGINT) AS output_cost, \
         CAST(SUM(request_fee) AS BIGINT) AS request_fees, \
         CAST(SUM(charged) AS BIGINT) AS charged, \
         CAST(SUM(discount) AS BIGINT) AS discount \
         FROM usage_records WHERE account_id = $1 AND timestamp >= $2 AND timestamp < $3 \
         AND key_type = 'standard' GROUP BY model ORDER BY model",
    )
    .bind(account_id.as_str())
    .bind(from)
    .bind(to)
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| ModelUsage {
            model: row.model,
            requests: count(row.requests),
            input_tokens: count(row.input_tokens),
            output_tokens: count(row.output_tokens),
            classes: row.classes.into(),
            input_cost: Money::from_nanos(row.input_cost),
            output_cost: Money::from_nanos(row.output_cost),
            request_fees: Money::from_nanos(row.request_fees),
            charged: Money::from_nanos(row.charged),
            volume_discount: Money::from_nanos(row.discount),
        })
        .collect())
}

fn parse_body(body: &str) -> Result<Statement, sqlx::Error> {
    serde_json::from_str(body).map_err(|error| column_error("body", error.to_string()))
}

/// The frozen statement of `month`, if it is frozen.
pub async fn frozen(
    connection: &mut AnyConnection,
    account_id: &AccountId,
    month: Month,
) -> Result<Option<Statement>, sqlx::Error> {
    let body: Option<String> =
        sqlx::query_scalar("SELECT body FROM statements WHERE account_id = $1 AND month = $2")
            .bind(account_id.as_str())
            .bind(month.to_string())
            .fetch_optional(connection)
            .await?;
    body.as_deref().map(parse_body).transpose()
}

/// Every frozen statement of the account.
pub async fn all_frozen(
    connection: &mut AnyConnection,
    account_id: &AccountId,
) -> Result<Vec<Statement>, sqlx::Error> {
    let bodies: Vec<String> =
        sqlx::query_scalar("SELECT body FROM statements WHERE account_id = $1 ORDER BY month DESC")
            .bind(account_id.as_str())
            .fetch_all(connection)
            .await?;
    bodies.iter().map(|body| parse_body(body)).collect()
}

/// Freezes `statement` unless its month is frozen already; true when this call froze it.
pub async fn freeze(
    connection: &mut AnyConnection,
    statement: &Statement,
) -> Result<bool, sqlx::Error> {
    let body = serde_json::to_string(statement)
        .map_err(|error| column_error("body", error.to_string()))?;
    let written = sqlx::query(
        "INSERT INTO statements (account_id, month, number, body, closed_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (account_id, month) DO NOTHING",
    )
    .bind(statement.account_id.as_str())
    .bind(statement.month.to_string())
    .bind(i64::from(statement.number))
    .bind(body)
    .bind(statement.issued_at)
    .execute(connection)
    .await?;
    Ok(written.rows_affected() == 1)
}

/// Accounts created before `month` ended whose statement of `month` is not frozen, at most `limit`.
pub async fn unfrozen(
    connection: &mut AnyConnection,
    month: Month,
    limit: i64,
) -> Result<Vec<AccountId>, sqlx::Error> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM billing_accounts WHERE created_at < $1 AND NOT EXISTS \
         (SELECT 1 FROM statements WHERE statements.account_id = billing_accounts.id AND month = $2) \
         ORDER BY created_at LIMIT $3",
    )
    .bind(month.end())
    .bind(month.to_string())
    .bind(limit)
    .fetch_all(connection)
    .await?;
    Ok(ids.into_iter().map(AccountId::from).collect())
}
