//! SQL of `pricing`: price rows per model (or `*`), each effective from a time on.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::bulk;
use crate::money::Money;
use crate::pricing::{DEFAULT_MODEL, Price};
use crate::time::Millis;

const COLUMNS: &str =
    "model, base_input_price_per_1k, base_output_price_per_1k, markup, effective_from";

fn from_row(row: &AnyRow) -> Result<Price, sqlx::Error> {
    let markup: String = row.try_get(3)?;
    Ok(Price {
        model: row.try_get(0)?,
        base_input_per_1k: Money::from_nanos(row.try_get(1)?),
        base_output_per_1k: Money::from_nanos(row.try_get(2)?),
        markup: crate::pricing::parse_markup(&markup)
            .map_err(|_| sqlx::Error::Decode(format!("bad markup {markup:?}").into()))?,
        effective_from: row.try_get(4)?,
    })
}

/// Inserts a row, replacing one of the same model and effective time.
pub async fn upsert(
    connection: &mut AnyConnection,
    price: &Price,
    now: Millis,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO pricing (model, base_input_price_per_1k, base_output_price_per_1k, markup, effective_from, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (model, effective_from) DO UPDATE SET base_input_price_per_1k = excluded.base_input_price_per_1k, \
         base_output_price_per_1k = excluded.base_output_price_per_1k, markup = excluded.markup, created_at = excluded.created_at",
    )
    .bind(&price.model)
    .bind(price.base_input_per_1k.nanos())
    .bind(price.base_output_per_1k.nanos())
    .bind(price.markup.to_string())
    .bind(price.effective_from)
    .bind(now)
    .execute(connection)
    .await?;
    Ok(())
}

/// The rows that can price each of `models` (at most [`bulk::MAX_ROWS`]): their own and the default's
/// (see [`crate::pricing::effective`]), in one statement.
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
        .map(from_row)
        .collect()
}

/// Every row, by model then effective time.
pub async fn list(connection: &mut AnyConnection) -> Result<Vec<Price>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM pricing ORDER BY model, effective_from"
    ))
    .fetch_all(connection)
    .await?
    .iter()
    .map(from_row)
    .collect()
}
