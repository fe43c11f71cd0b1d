//! The price table: add a row, end a model's price, list every row (BILLING.md, "Prices").

use crate::error::BillingError;
use crate::ledger::Ledger;
use crate::prices::{self, Price};
use crate::store::Shard;
use crate::time::{self, Millis};
use proto::ids::AccountId;

impl Ledger {
    /// Adds a price row. It applies from `effective_from` (default now, never in the past) on, so costs
    /// already recorded and executions already started keep their price.
    #[tracing::instrument(skip(self), err)]
    pub async fn set_price(&self, mut price: Price) -> Result<Price, BillingError> {
        prices::validate_model(&price.model)?;
        let now = time::now_ms();
        if price.effective_from < now {
            // A price may not rewrite the past: clients give "now" with some clock skew, which becomes now.
            const SKEW_MS: Millis = 60_000;
            if price.effective_from < now - SKEW_MS {
                return Err(BillingError::invalid(
                    "effective_from",
                    "must not be in the past",
                ));
            }
            price.effective_from = now;
        }
        let base = &price.base;
        for (field, amount) in [
            ("base_input_price_per_1k", base.input),
            ("base_output_price_per_1k", base.output),
            ("base_cached_input_price_per_1k", base.cached_input),
            ("base_cache_write_price_per_1k", base.cache_write),
            ("base_cache_write_1h_price_per_1k", base.cache_write_1h),
            ("base_audio_input_price_per_1k", base.audio_input),
            ("base_audio_output_price_per_1k", base.audio_output),
            ("request_fee", price.request_fee),
        ] {
            if amount.is_negative() {
                return Err(BillingError::invalid(field, "must not be negative"));
            }
        }
        if let Some(account_id) = &price.account_id {
            if price.model == prices::DEFAULT_MODEL {
                return Err(BillingError::invalid(
                    "account_id",
                    "an account price names a model, not \"*\"; give the account discountTiers for a discount on every model",
                ));
            }
            self.account(account_id).await?;
        }
        self.write_price(price.clone(), now).await?;
        Ok(price)
    }

    /// Ends the price of `model` (the account's own when `account_id` is given, else the global row) from
    /// now on, by adding an ended row: the next level down prices the model (BILLING.md, "Prices"), or
    /// nothing does and calls are refused with `model_not_priced`. `NotFound` when no such price is in
    /// effect.
    #[tracing::instrument(skip(self), err)]
    pub async fn end_price(
        &self,
        model: String,
        account_id: Option<AccountId>,
    ) -> Result<Price, BillingError> {
        prices::validate_model(&model)?;
        let now = time::now_ms();
        let rows = self.list_prices().await?;
        let current = rows
            .iter()
            .filter(|row| {
                row.model == model && row.account_id == account_id && row.effective_from <= now
            })
            .max_by_key(|row| row.effective_from)
            .filter(|row| !row.ended)
            .ok_or(BillingError::NotFound("price in effect"))?;
        let ended = Price {
            effective_from: now,
            ended: true,
            ..current.clone()
        };
        self.write_price(ended.clone(), now).await?;
        Ok(ended)
    }

    /// Writes a price row; every batch reads prices afresh after it.
    async fn write_price(&self, price: Price, now: Millis) -> Result<(), BillingError> {
        self.store
            .write(Shard::Prices, move |batch| {
                Box::pin(async move {
                    batch.forget_prices();
                    Ok(prices::sql::upsert(batch.connection().await?, &price, now).await?)
                })
            })
            .await
    }

    pub async fn list_prices(&self) -> Result<Vec<Price>, BillingError> {
        let mut connection = self.store.reader().acquire().await?;
        Ok(prices::sql::list(&mut connection).await?)
    }

    /// The prices `account_id` pays now: for each model a row prices for it (its own rows, the global
    /// ones, `*`), the row in effect (see [`crate::prices::effective`]), by model name.
    pub async fn prices_for(&self, account_id: &AccountId) -> Result<Vec<Price>, BillingError> {
        let now = time::now_ms();
        let mut connection = self.store.reader().acquire().await?;
        let rows = crate::prices::sql::list(&mut connection).await?;
        let mut models: Vec<&str> = rows
            .iter()
            .filter(|row| row.account_id.as_ref().is_none_or(|own| own == account_id))
            .map(|row| row.model.as_str())
            .collect();
        models.sort_unstable();
        models.dedup();
        Ok(models
            .into_iter()
            .filter_map(|model| {
                crate::prices::effective(&rows, account_id, model, now)
                    // A model whose own rows ended is priced by "*", listed once under its own name.
                    .filter(|price| price.model == model)
            })
            .cloned()
            .collect())
    }
}
