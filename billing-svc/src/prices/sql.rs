//! SQL of `pricing`: price rows per model (or `*`), global or for one account, each effective from a time on
//! (BILLING.md, "Prices"). Every class price is stored resolved, in nano-dollars per 1,000 tokens.

use sqlx::{AnyConnection, FromRow};

use super::{ClassPrices, DEFAULT_MODEL, Price};
use crate::store::bulk;
use crate::store::row::column_error;
use crate::time::Millis;
use money::Money;
use proto::ids::AccountId;

const COLUMNS: &str = "model, account_id, base_input_price_per_1k, base_output_price_per_1k, \
    base_cached_input_price_per_1k, base_cache_write_price_per_1k, base_cache_write_1h_price_per_1k, \
    base_audio_input_price_per_1k, base_audio_output_price_per_1k, request_fee, markup, effective_from, ended";

/// A row of `pricing`: [`COLUMNS`]; prices in nano-dollars (per 1,000 tokens).
#[derive(sqlx::FromRow)]
struct PriceRow {
    model: String,
    /// `""`: a global price.
    account_id: String,
    base_input_price_per_1k: i64,
    base_output_price_per_1k: i64,
    base_cached_input_price_per_1k: i64,
    base_cache_write_price_per_1k: i64,
    base_cache_write_1h_price_per_1k: i64,
    base_audio_input_price_per_1k: i64,
    base_audio_output_price_per_1k: i64,
    request_fee: i64,
    /// A decimal, as [`crate::prices::parse_markup`] reads it.
    markup: String,
    effective_from: Millis,
    /// 1 or 0.
    ended: i64,
}

impl TryFrom<PriceRow> for Price {
    type Error = sqlx::Error;

    fn try_from(row: PriceRow) -> Result<Price, sqlx::Error> {
        Ok(Price {
            account_id: (!row.account_id.is_empty()).then(|| AccountId::from(row.account_id)),
            model: row.model,
            base: ClassPrices {
                input: Money::from_nanos(row.base_input_price_per_1k),
                output: Money::from_nanos(row.base_output_price_per_1k),
                cached_input: Money::from_nanos(row.base_cached_input_price_per_1k),
                cache_write: Money::from_nanos(row.base_cache_write_price_per_1k),
                cache_write_1h: Money::from_nanos(row.base_cache_write_1h_price_per_1k),
                audio_input: Money::from_nanos(row.base_audio_input_price_per_1k),
                audio_output: Money::from_nanos(row.base_audio_output_price_per_1k),
            },
            request_fee: Money::from_nanos(row.request_fee),
            markup: crate::prices::parse_markup(&row.markup)
                .map_err(|_| column_error("markup", format!("bad value {:?}", row.markup)))?,
            effective_from: row.effective_from,
            ended: row.ended != 0,
        })
    }
}

/// Inserts a row, replacing one of the same model, account and effective time.
pub async fn upsert(
    connection: &mut AnyConnection,
    price: &Price,
    now: Millis,
) -> Result<(), sqlx::Error> {
    let base = &price.base;
    sqlx::query(&format!(
        "INSERT INTO pricing ({COLUMNS}, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (model, account_id, effective_from) DO UPDATE SET \
         base_input_price_per_1k = excluded.base_input_price_per_1k, \
         base_output_price_per_1k = excluded.base_output_price_per_1k, \
         base_cached_input_price_per_1k = excluded.base_cached_input_price_per_1k, \
         base_cache_write_price_per_1k = excluded.base_cache_write_price_per_1k, \
         base_cache_write_1h_price_per_1k = excluded.base_cache_write_1h_price_per_1k, \
         base_audio_input_price_per_1k = excluded.base_audio_input_price_per_1k, \
         base_audio_output_price_per_1k = excluded.base_audio_output_price_per_1k, \
         request_fee = excluded.request_fee, markup = excluded.markup, ended = excluded.ended, \
         created_at = excluded.created_at"
    ))
    .bind(&price.model)
    .bind(price.account_id.as_ref().map_or("", AccountId::as_str))
    .bind(base.input.nanos())
    .bind(base.output.nanos())
    .bind(base.cached_input.nanos())
    .bind(base.cache_write.nanos())
    .bind(base.cache_write_1h.nanos())
    .bind(base.audio_input.nanos())
    .bind(base.audio_output.nanos())
    .bind(price.request_fee.nanos())
    .bind(price.markup.to_string())
    .bind(price.effective_from)
    .bind(i64::from(price.ended))
    .bind(now)
    .execute(connection)
    .await?;
    Ok(())
}

/// The rows that can price each of `models` (at most [`bulk::MAX_ROWS`]) for any account: their own (global
/// and accounts') and the default's (see [`crate::prices::effective`]), in one statement.
pub async fn of_models(
    connection: &mut AnyConnection,
    models: &[&str],
) -> Result<Vec<Price>, sqlx::Error> {
    debug_assert!(models.len() <= bulk::MAX_ROWS);
    let style = bulk::Style::of(connection);
    let sql = format!(
        "SELECT {COLUMNS} FROM pricing WHERE model = {} OR model IN ({})",
        bulk::placeholders(style, 1, 1),
        bulk::placeholders(style, bulk::slots(models.len().max(1)), 2)
    );
    let query = sqlx::query(&sql).bind(DEFAULT_MODEL);
    let query = match models {
        [] => query.bind(DEFAULT_MODEL),
        models => bulk::bind_padded(query, models, |query, model| query.bind(*model)),
    };
    query
        .fetch_all(connection)
        .await?
        .iter()
        .map(|row| Price::try_from(PriceRow::from_row(row)?))
        .collect()
}

/// Every row, by model, account (global first) then effective time.
pub async fn list(connection: &mut AnyConnection) -> Result<Vec<Price>, sqlx::Error> {
    sqlx::query_as::<_, PriceRow>(&format!(
        "SELECT {COLUMNS} FROM pricing ORDER BY model, account_id, effective_from"
    ))
    .fetch_all(connection)
    .await?
    .into_iter()
    .map(Price::try_from)
    .collect()
}
