//! Operator operations: keys, credits, adjustments, refunds, limits and prices.

use serde_json::json;

use super::{Entry, Ledger, validate_text};
use crate::error::BillingError;
use crate::keys::{self, KeyType};
use crate::money::Money;
use crate::pricing::{self, Price};
use crate::store::accounts::{self, Account};
use crate::store::keys::ApiKey;
use crate::store::transactions::{self, Transaction, TransactionType};
use crate::store::{self, Batch, usage};
use crate::time::{self, Millis};

const MAX_DESCRIPTION_CHARS: usize = 500;
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;

/// A created key: the plain key exists only in this value.
pub struct CreatedKey {
    pub api_key: ApiKey,
    pub plain_key: String,
    pub account: Account,
}

/// A credit or adjustment to write.
struct EntryRequest {
    api_key_id: String,
    kind: TransactionType,
    amount: Money,
    description: String,
    idempotency_key: Option<String>,
}

/// A refund to write.
struct RefundRequest {
    api_key_id: String,
    record_id: i64,
    amount: Option<Money>,
    reason: String,
}

impl Ledger {
    /// Creates a key and its empty account in one transaction.
    #[tracing::instrument(skip_all, fields(key_type = key_type.as_str()), err)]
    pub async fn create_key(
        &self,
        name: &str,
        key_type: KeyType,
        prefix: Option<&str>,
        expires_at: Option<Millis>,
    ) -> Result<CreatedKey, BillingError> {
        keys::validate_name(name)?;
        let prefix = prefix.unwrap_or(key_type.default_prefix());
        keys::validate_prefix(prefix)?;
        let now = time::now_ms();
        if expires_at.is_some_and(|expires_at| expires_at <= now) {
            return Err(BillingError::invalid("expires_at", "must be in the future"));
        }
        let generated = keys::generate(prefix);
        let api_key = ApiKey {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            key_type,
            prefix: prefix.to_string(),
            hint: generated.hint,
            created_at: now,
            revoked_at: None,
            expires_at,
        };
        let (shard, stored, key_hash) = (api_key.id.clone(), api_key.clone(), generated.hash);
        let account = self
            .store
            .write(&shard, move |batch| {
                Box::pin(async move {
                    let account_id = uuid::Uuid::new_v4().to_string();
                    let connection = batch.connection();
                    store::keys::insert(connection, &stored, &key_hash, &account_id).await?;
                    accounts::insert(connection, &account_id, &stored.id, now).await?;
                    accounts::by_key(connection, &stored.id)
                        .await?
                        .ok_or(BillingError::NotFound("account"))
                })
            })
            .await?;
        tracing::info!(api_key_id = %api_key.id, hint = %api_key.hint, "key created");
        Ok(CreatedKey {
            api_key,
            plain_key: generated.plain,
            account,
        })
    }

    pub async fn list_keys(&self, include_revoked: bool) -> Result<Vec<ApiKey>, BillingError> {
        let mut connection = self.store.reader().acquire().await?;
        Ok(store::keys::list(&mut connection, include_revoked).await?)
    }

    /// Revokes a key; revoking twice keeps the first revocation time.
    #[tracing::instrument(skip(self), err)]
    pub async fn revoke_key(&self, id: &str) -> Result<ApiKey, BillingError> {
        let id = id.to_string();
        let revoked = self
            .store
            .write(&id.clone(), move |batch| {
                Box::pin(async move {
                    batch.forget_key(&id);
                    store::keys::revoke(batch.connection(), &id, time::now_ms())
                        .await?
                        .ok_or(BillingError::NotFound("api key"))
                })
            })
            .await?;
        self.keys.forget(&revoked.id);
        Ok(revoked)
    }

    /// Adds purchased credits. The same idempotency key with the same request returns the first result.
    #[tracing::instrument(skip(self, description, idempotency_key), fields(%amount), err)]
    pub async fn add_credits(
        &self,
        api_key_id: &str,
        amount: Money,
        description: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<(Transaction, Account), BillingError> {
        if !amount.is_positive() {
            return Err(BillingError::invalid("amount", "must be greater than zero"));
        }
        let description = description.unwrap_or("Credit purchase");
        self.write_entry(
            api_key_id,
            TransactionType::CreditPurchase,
            amount,
            description,
            idempotency_key,
        )
        .await
    }

    /// Moves the balance up or down with a reason; never below what active holds need.
    #[tracing::instrument(skip(self, reason, idempotency_key), fields(%amount), err)]
    pub async fn adjust_credits(
        &self,
        api_key_id: &str,
        amount: Money,
        reason: &str,
        idempotency_key: Option<&str>,
    ) -> Result<(Transaction, Account), BillingError> {
        if amount.is_zero() {
            return Err(BillingError::invalid("amount", "must not be zero"));
        }
        if reason.trim().is_empty() {
            return Err(BillingError::invalid("reason", "is required"));
        }
        self.write_entry(
            api_key_id,
            TransactionType::CreditAdjustment,
            amount,
            reason,
            idempotency_key,
        )
        .await
    }

    /// One idempotent credit or adjustment.
    async fn write_entry(
        &self,
        api_key_id: &str,
        kind: TransactionType,
        amount: Money,
        description: &str,
        idempotency_key: Option<&str>,
    ) -> Result<(Transaction, Account), BillingError> {
        validate_text("description", description, MAX_DESCRIPTION_CHARS)?;
        if let Some(key) = idempotency_key {
            if key.is_empty() {
                return Err(BillingError::invalid(
                    "idempotency_key",
                    "must not be empty",
                ));
            }
            validate_text("idempotency_key", key, MAX_IDEMPOTENCY_KEY_CHARS)?;
        }
        let request = EntryRequest {
            api_key_id: api_key_id.to_string(),
            kind,
            amount,
            description: description.to_string(),
            idempotency_key: idempotency_key.map(str::to_string),
        };
        self.store
            .write(api_key_id, move |batch| {
                Box::pin(async move { write_entry_in(batch, request).await })
            })
            .await
    }

    /// Refunds a usage record once, at most what it was charged (default: all of it). Repeating the same
    /// refund returns the first result.
    #[tracing::instrument(skip(self, reason), err)]
    pub async fn refund(
        &self,
        api_key_id: &str,
        usage_record_id: &str,
        amount: Option<Money>,
        reason: Option<&str>,
    ) -> Result<(Transaction, Account), BillingError> {
        let record_id: i64 = usage_record_id
            .parse()
            .ok()
            .filter(|id| *id > 0)
            .ok_or(BillingError::NotFound("usage record"))?;
        let reason = reason.unwrap_or("Refund");
        validate_text("reason", reason, MAX_DESCRIPTION_CHARS)?;
        let request = RefundRequest {
            api_key_id: api_key_id.to_string(),
            record_id,
            amount,
            reason: reason.to_string(),
        };
        self.store
            .write(api_key_id, move |batch| {
                Box::pin(async move { refund_in(batch, request).await })
            })
            .await
    }

    /// Sets both caps; `None` clears one.
    #[tracing::instrument(skip(self), err)]
    pub async fn set_limits(
        &self,
        api_key_id: &str,
        daily_limit: Option<Money>,
        monthly_limit: Option<Money>,
    ) -> Result<Account, BillingError> {
        for (field, limit) in [
            ("daily_limit", daily_limit),
            ("monthly_limit", monthly_limit),
        ] {
            if limit.is_some_and(Money::is_negative) {
                return Err(BillingError::invalid(field, "must not be negative"));
            }
        }
        let id = api_key_id.to_string();
        self.store
            .write(api_key_id, move |batch| {
                Box::pin(async move {
                    let mut account = batch.lock(&id, time::now_ms()).await?;
                    account.daily_limit = daily_limit;
                    account.monthly_limit = monthly_limit;
                    accounts::set_limits(batch.connection(), &account).await?;
                    batch.save(&account);
                    Ok(account)
                })
            })
            .await
    }

    /// Adds a price row. It applies from `effective_from` (default now, never in the past) on, so costs
    /// already recorded and executions already started keep their price.
    #[tracing::instrument(skip(self), err)]
    pub async fn set_price(&self, mut price: Price) -> Result<Price, BillingError> {
        pricing::validate_model(&price.model)?;
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
        for (field, base) in [
            ("base_input_price_per_1k", price.base_input_per_1k),
            ("base_output_price_per_1k", price.base_output_per_1k),
        ] {
            if base.is_negative() {
                return Err(BillingError::invalid(field, "must not be negative"));
            }
        }
        let stored = price.clone();
        self.store
            .write(pricing::DEFAULT_MODEL, move |batch| {
                Box::pin(async move {
                    batch.forget_prices();
                    Ok(store::pricing::upsert(batch.connection(), &stored, now).await?)
                })
            })
            .await?;
        Ok(price)
    }

    pub async fn list_prices(&self) -> Result<Vec<Price>, BillingError> {
        let mut connection = self.store.reader().acquire().await?;
        Ok(store::pricing::list(&mut connection).await?)
    }

    /// The key type of an account (for responses that show it).
    pub async fn key_type_of(&self, api_key_id: &str) -> Result<KeyType, BillingError> {
        let mut connection = self.store.reader().acquire().await?;
        Ok(store::keys::by_id(&mut connection, api_key_id)
            .await?
            .ok_or(BillingError::NotFound("api key"))?
            .key_type)
    }
}

/// The transaction of one credit or adjustment.
async fn write_entry_in(
    batch: &mut Batch,
    request: EntryRequest,
) -> Result<(Transaction, Account), BillingError> {
    let now = time::now_ms();
    let mut account = batch.lock(&request.api_key_id, now).await?;
    let first = match &request.idempotency_key {
        Some(key) => {
            transactions::by_idempotency_key(batch.connection(), &request.api_key_id, key).await?
        }
        None => None,
    };
    if let Some(first) = first {
        let same = first.kind == request.kind
            && first.amount == request.amount
            && first.description == request.description;
        if !same {
            return Err(BillingError::IdempotencyConflict);
        }
        return Ok((first, account));
    }
    if request.amount.is_negative()
        && account
            .available()
            .checked_add(request.amount)
            .is_none_or(Money::is_negative)
    {
        return Err(BillingError::WouldOverdraw);
    }
    let entry = Entry {
        kind: request.kind,
        amount: request.amount,
        description: request.description,
        metadata: json!({}),
        idempotency_key: request.idempotency_key,
    };
    let transaction = Ledger::post(batch, &mut account, entry, now).await?;
    batch.save(&account);
    Ok((transaction, account))
}

/// The transaction of one refund.
async fn refund_in(
    batch: &mut Batch,
    request: RefundRequest,
) -> Result<(Transaction, Account), BillingError> {
    let now = time::now_ms();
    let mut account = batch.lock(&request.api_key_id, now).await?;
    let record = usage::by_id(batch.connection(), &request.api_key_id, request.record_id)
        .await?
        .ok_or(BillingError::NotFound("usage record"))?;
    if !record.charged.is_positive() {
        return Err(BillingError::NothingToRefund);
    }
    let amount = request.amount.unwrap_or(record.charged);
    if !amount.is_positive() {
        return Err(BillingError::invalid("amount", "must be greater than zero"));
    }
    if amount > record.charged {
        return Err(BillingError::RefundExceedsCharge {
            charged: record.charged,
        });
    }
    let idempotency_key = format!("refund:{}", request.record_id);
    if let Some(first) =
        transactions::by_idempotency_key(batch.connection(), &request.api_key_id, &idempotency_key)
            .await?
    {
        if first.amount != amount {
            return Err(BillingError::AlreadyRefunded);
        }
        return Ok((first, account));
    }
    let entry = Entry {
        kind: TransactionType::Refund,
        amount,
        description: request.reason,
        metadata: json!({ "usage_record_id": request.record_id.to_string(), "execution_id": record.execution_id }),
        idempotency_key: Some(idempotency_key),
    };
    let transaction = Ledger::post(batch, &mut account, entry, now).await?;
    usage::set_refunded(batch.connection(), request.record_id, amount).await?;
    batch.save(&account);
    Ok((transaction, account))
}
