//! Operator operations: keys, credits, adjustments, refunds, limits and prices.

use serde_json::json;

use super::queries::{page_by, page_size};
use super::{Entry, GrantEffect, GrantTerms, Ledger, Page, emit, validate_text};
use crate::alerts::{self, LowBalance};
use crate::error::BillingError;
use crate::keys::{self, KeyType, Role};
use crate::money::Money;
use crate::policy::Policy;
use crate::pricing::{self, Price};
use crate::store::accounts::{self, Account};
use crate::store::events::EventType;
use crate::store::grants::{Category, CreditGrant};
use crate::store::keys::ApiKey;
use crate::store::transactions::{self, Transaction, TransactionType};
use crate::store::{self, Batch, Shard, usage};
use crate::time::{self, Millis};
use proto::ids::{AccountId, ApiKeyId};

const MAX_DESCRIPTION_CHARS: usize = 500;
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;

/// A created or rotated key: the plain key exists only in this value.
pub struct CreatedKey {
    pub api_key: ApiKey,
    pub plain_key: String,
    pub account: Account,
}

/// What a new key is.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: String,
    pub key_type: KeyType,
    pub prefix: Option<String>,
    pub expires_at: Option<Millis>,
    /// Join this account (a team); `None` creates the key's own account.
    pub account_id: Option<AccountId>,
    /// Default: `owner` of its own account, `member` of an existing one.
    pub role: Option<Role>,
    pub policy: Policy,
}

/// A change to a key; absent fields keep their value. A given policy replaces the old one whole, its
/// expiry included.
#[derive(Debug, Clone, Default)]
pub struct KeyChange {
    pub name: Option<String>,
    pub role: Option<Role>,
    pub policy: Option<(Policy, Option<Millis>)>,
}

/// A key with what it spent in the current UTC day and month.
#[derive(Debug, Clone)]
pub struct KeySpend {
    pub key: ApiKey,
    pub spent_today: Money,
    pub spent_this_month: Money,
    /// When its latest call was recorded.
    pub last_used_at: Option<Millis>,
}

/// An account with its keys.
#[derive(Debug, Clone)]
pub struct AccountView {
    pub account: Account,
    pub keys: Vec<KeySpend>,
}

/// The result of a credit, adjustment or refund: the ledger row, the account right after it, and the
/// grant it brought in (credits, positive adjustments and refunds).
#[derive(Debug, Clone)]
pub struct LedgerWrite {
    pub transaction: Transaction,
    pub account: Account,
    pub grant: Option<CreditGrant>,
}

/// A credit or adjustment to write.
struct EntryRequest {
    account_id: AccountId,
    api_key_id: Option<ApiKeyId>,
    kind: TransactionType,
    grant: GrantEffect,
    amount: Money,
    description: String,
    idempotency_key: Option<String>,
}

/// A refund to write.
struct RefundRequest {
    account_id: AccountId,
    record_id: i64,
    amount: Option<Money>,
    reason: String,
}

impl Ledger {
    /// Creates an empty account (a team's), to which keys are then added.
    #[tracing::instrument(skip_all, err)]
    pub async fn create_account(&self, name: &str) -> Result<Account, BillingError> {
        keys::validate_name(name)?;
        let account = Account::new(name, time::now_ms());
        let stored = account.clone();
        self.store
            .write(Shard::Account(&account.id), move |batch| {
                Box::pin(async move {
                    accounts::insert(batch.connection().await?, &stored).await?;
                    Ok(())
                })
            })
            .await?;
        tracing::info!(account_id = %account.id, "account created");
        Ok(account)
    }

    /// Accounts oldest first, cursor paginated.
    pub async fn list_accounts(
        &self,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Account>, BillingError> {
        let limit = page_size(limit)?;
        let after = match cursor.filter(|cursor| !cursor.is_empty()) {
            None => None,
            Some(cursor) => Some(account_cursor(cursor)?),
        };
        let mut connection = self.store.reader().acquire().await?;
        let rows = accounts::list(
            &mut connection,
            after.as_ref().map(|(time, id)| (*time, id)),
            limit + 1,
        )
        .await?;
        Ok(page_by(rows, limit, |account| {
            format!("{}.{}", account.created_at, account.id)
        }))
    }

    /// An account with its keys (revoked ones included) and their spend.
    pub async fn account_view(&self, id: &AccountId) -> Result<AccountView, BillingError> {
        let mut connection = self.store.reader().acquire().await?;
        let account = accounts::by_id(&mut connection, id)
            .await?
            .ok_or(BillingError::NotFound("account"))?;
        let keys = store::keys::list(&mut connection, Some(id), true).await?;
        drop(connection);
        Ok(AccountView {
            keys: self.with_spend(&account.id, keys).await?,
            account,
        })
    }

    /// The keys a customer key may see (API_KEY_MANAGEMENT.md, "Keys"): an owner every live key of its
    /// account, a member itself; each with its spend today and this month.
    pub async fn visible_keys(&self, caller: &ApiKey) -> Result<Vec<KeySpend>, BillingError> {
        let keys = match caller.role {
            Role::Owner => {
                let mut connection = self.store.reader().acquire().await?;
                store::keys::list(&mut connection, Some(&caller.account_id), false).await?
            }
            Role::Member => vec![caller.clone()],
        };
        self.with_spend(&caller.account_id, keys).await
    }

    async fn with_spend(
        &self,
        account_id: &AccountId,
        keys: Vec<ApiKey>,
    ) -> Result<Vec<KeySpend>, BillingError> {
        let now = time::now_ms();
        let mut connection = self.store.reader().acquire().await?;
        let mut spends = Vec::with_capacity(keys.len());
        for key in keys {
            let spent_today = transactions::spend_since(
                &mut connection,
                account_id,
                Some(&key.id),
                time::day_start(now),
            )
            .await?;
            let spent_this_month = transactions::spend_since(
                &mut connection,
                account_id,
                Some(&key.id),
                time::month_start(now),
            )
            .await?;
            let last_used_at = crate::store::usage::last_used(&mut connection, &key.id).await?;
            spends.push(KeySpend {
                key,
                spent_today,
                spent_this_month,
                last_used_at,
            });
        }
        Ok(spends)
    }

    /// Creates a key, with its own empty account or in an existing one, in one transaction.
    #[tracing::instrument(skip_all, fields(key_type = new.key_type.as_str()), err)]
    pub async fn create_key(&self, new: NewKey) -> Result<CreatedKey, BillingError> {
        keys::validate_name(&new.name)?;
        let prefix = new
            .prefix
            .clone()
            .unwrap_or_else(|| new.key_type.default_prefix().to_string());
        keys::validate_prefix(&prefix)?;
        new.policy.validate()?;
        let now = time::now_ms();
        if new.expires_at.is_some_and(|expires_at| expires_at <= now) {
            return Err(BillingError::invalid("expires_at", "must be in the future"));
        }
        let generated = keys::generate(&prefix);
        let account = match &new.account_id {
            Some(id) => {
                let mut connection = self.store.reader().acquire().await?;
                accounts::by_id(&mut connection, id)
                    .await?
                    .ok_or(BillingError::NotFound("account"))?
            }
            None => Account::new(&new.name, now),
        };
        let api_key = ApiKey {
            id: ApiKeyId::generate(),
            account_id: account.id.clone(),
            name: new.name.clone(),
            key_type: new.key_type,
            role: new.role.unwrap_or(if new.account_id.is_some() {
                Role::Member
            } else {
                Role::Owner
            }),
            policy: new.policy.clone(),
            prefix,
            hint: generated.hint,
            created_at: now,
            revoked_at: None,
            expires_at: new.expires_at,
            previous_key_expires_at: None,
            rotated_at: None,
        };
        let (stored, key_hash, joins) = (api_key.clone(), generated.hash, new.account_id.is_some());
        let account = self
            .store
            .write(Shard::Account(&account.id.clone()), move |batch| {
                Box::pin(async move {
                    if !joins {
                        accounts::insert(batch.connection().await?, &account).await?;
                    }
                    store::keys::insert(batch.connection().await?, &stored, &key_hash).await?;
                    let data = json!({
                        "apiKeyId": stored.id.as_str(), "name": stored.name, "keyType": stored.key_type.as_str(),
                        "role": stored.role.as_str(), "hint": stored.hint,
                        "expiresAt": stored.expires_at.map(time::to_rfc3339),
                    });
                    emit(batch, &account.id, EventType::KeyCreated, data, now);
                    accounts::by_id(batch.connection().await?, &account.id)
                        .await?
                        .ok_or(BillingError::NotFound("account"))
                })
            })
            .await?;
        tracing::info!(api_key_id = %api_key.id, account_id = %account.id, hint = %api_key.hint, "key created");
        Ok(CreatedKey {
            api_key,
            plain_key: generated.plain,
            account,
        })
    }

    pub async fn list_keys(&self, include_revoked: bool) -> Result<Vec<ApiKey>, BillingError> {
        let mut connection = self.store.reader().acquire().await?;
        Ok(store::keys::list(&mut connection, None, include_revoked).await?)
    }

    /// The key `id`.
    pub async fn key(&self, id: &ApiKeyId) -> Result<ApiKey, BillingError> {
        let mut connection = self.store.reader().acquire().await?;
        store::keys::by_id(&mut connection, id)
            .await?
            .ok_or(BillingError::NotFound("api key"))
    }

    /// Revokes a key; revoking twice keeps the first revocation time.
    #[tracing::instrument(skip(self), err)]
    pub async fn revoke_key(&self, id: &ApiKeyId) -> Result<ApiKey, BillingError> {
        let account_id = self.key(id).await?.account_id;
        let id = id.clone();
        let revoked = self
            .store
            .write(Shard::Account(&account_id), move |batch| {
                Box::pin(async move {
                    batch.forget_key(&id);
                    let now = time::now_ms();
                    let key = store::keys::by_id(batch.connection().await?, &id)
                        .await?
                        .ok_or(BillingError::NotFound("api key"))?;
                    if key.revoked_at.is_some() {
                        return Ok(key);
                    }
                    let revoked = store::keys::revoke(batch.connection().await?, &id, now)
                        .await?
                        .ok_or(BillingError::NotFound("api key"))?;
                    let data = json!({"apiKeyId": id.as_str(), "name": revoked.name, "hint": revoked.hint});
                    emit(batch, &revoked.account_id, EventType::KeyRevoked, data, now);
                    Ok(revoked)
                })
            })
            .await?;
        self.keys.forget(&revoked.id);
        Ok(revoked)
    }

    /// Changes a key's name, role or policy; the change applies from the key's next call, in every
    /// process (the open transaction reads the key again).
    #[tracing::instrument(skip(self, change), err)]
    pub async fn update_key(
        &self,
        id: &ApiKeyId,
        change: KeyChange,
    ) -> Result<ApiKey, BillingError> {
        if let Some(name) = &change.name {
            keys::validate_name(name)?;
        }
        if let Some((policy, _)) = &change.policy {
            policy.validate()?;
        }
        let mut key = self.key(id).await?;
        if key.revoked_at.is_some() {
            return Err(BillingError::TargetKeyRevoked);
        }
        if let Some(name) = change.name {
            key.name = name;
        }
        if let Some(role) = change.role {
            key.role = role;
        }
        if let Some((policy, expires_at)) = change.policy {
            key.policy = policy;
            key.expires_at = expires_at;
        }
        let stored = key.clone();
        self.store
            .write(Shard::Account(&key.account_id), move |batch| {
                Box::pin(async move {
                    batch.forget_key(&stored.id);
                    store::keys::update(batch.connection().await?, &stored).await?;
                    Ok(())
                })
            })
            .await?;
        self.keys.forget(&key.id);
        Ok(key)
    }

    /// Gives a key a new secret, keeping its id, account, role and policy. The old secret keeps working
    /// for `grace_period_secs`, then is refused.
    #[tracing::instrument(skip(self), err)]
    pub async fn rotate_key(
        &self,
        id: &ApiKeyId,
        grace_period_secs: u64,
    ) -> Result<CreatedKey, BillingError> {
        const MAX_GRACE_SECS: u64 = 30 * 86_400;
        if grace_period_secs > MAX_GRACE_SECS {
            return Err(BillingError::invalid(
                "grace_period_secs",
                format!("must be at most {MAX_GRACE_SECS} (30 days)"),
            ));
        }
        let key = self.key(id).await?;
        if key.revoked_at.is_some() {
            return Err(BillingError::TargetKeyRevoked);
        }
        let generated = keys::generate(&key.prefix);
        let now = time::now_ms();
        let grace_ms =
            i64::try_from(grace_period_secs * 1000).map_err(|_| BillingError::Overflow)?;
        let previous_expires_at = (grace_period_secs > 0).then_some(now + grace_ms);
        let (key_id, hash, hint) = (key.id.clone(), generated.hash, generated.hint.clone());
        let account = self
            .store
            .write(Shard::Account(&key.account_id), move |batch| {
                Box::pin(async move {
                    batch.forget_key(&key_id);
                    store::keys::rotate(
                        batch.connection().await?,
                        &key_id,
                        &hash,
                        &hint,
                        previous_expires_at,
                        now,
                    )
                    .await?;
                    let key = batch.key(&key_id).await?;
                    let data = json!({
                        "apiKeyId": key_id.as_str(), "name": key.name, "hint": hint,
                        "previousSecretExpiresAt": previous_expires_at.map(time::to_rfc3339),
                    });
                    emit(batch, &key.account_id, EventType::KeyRotated, data, now);
                    accounts::by_id(batch.connection().await?, &key.account_id)
                        .await?
                        .ok_or(BillingError::NotFound("account"))
                })
            })
            .await?;
        self.keys.forget(&key.id);
        tracing::info!(api_key_id = %key.id, hint = %generated.hint, grace_period_secs, "key rotated");
        Ok(CreatedKey {
            api_key: ApiKey {
                hint: generated.hint,
                previous_key_expires_at: previous_expires_at,
                rotated_at: Some(now),
                ..key
            },
            plain_key: generated.plain,
            account,
        })
    }

    /// Adds purchased credits. The same idempotency key with the same request returns the first result.
    #[tracing::instrument(skip(self, description, idempotency_key), fields(%amount), err)]
    pub async fn add_credits(
        &self,
        id: &str,
        amount: Money,
        terms: GrantTerms,
        description: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<LedgerWrite, BillingError> {
        if !amount.is_positive() {
            return Err(BillingError::invalid("amount", "must be greater than zero"));
        }
        if terms
            .expires_at
            .is_some_and(|expires_at| expires_at <= time::now_ms())
        {
            return Err(BillingError::invalid("expires_at", "must be in the future"));
        }
        let (kind, default_description) = match terms.category {
            Category::Paid => (TransactionType::CreditPurchase, "Credit purchase"),
            Category::Promotional => (TransactionType::CreditGrant, "Promotional credit"),
        };
        self.write_entry(
            id,
            kind,
            GrantEffect::Add(terms),
            amount,
            description.unwrap_or(default_description),
            idempotency_key,
        )
        .await
    }

    /// Moves the balance up or down with a reason; never below what active holds need.
    #[tracing::instrument(skip(self, reason, idempotency_key), fields(%amount), err)]
    pub async fn adjust_credits(
        &self,
        id: &str,
        amount: Money,
        reason: &str,
        idempotency_key: Option<&str>,
    ) -> Result<LedgerWrite, BillingError> {
        if amount.is_zero() {
            return Err(BillingError::invalid("amount", "must not be zero"));
        }
        if reason.trim().is_empty() {
            return Err(BillingError::invalid("reason", "is required"));
        }
        let grant = if amount.is_positive() {
            GrantEffect::Add(GrantTerms::paid())
        } else {
            GrantEffect::Draw
        };
        self.write_entry(
            id,
            TransactionType::CreditAdjustment,
            grant,
            amount,
            reason,
            idempotency_key,
        )
        .await
    }

    /// One idempotent credit or adjustment of the account `id` names (a key id: that key's account).
    async fn write_entry(
        &self,
        id: &str,
        kind: TransactionType,
        grant: GrantEffect,
        amount: Money,
        description: &str,
        idempotency_key: Option<&str>,
    ) -> Result<LedgerWrite, BillingError> {
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
        let (account_id, api_key_id) = self.resolve(id).await?;
        let request = EntryRequest {
            account_id: account_id.clone(),
            api_key_id,
            kind,
            grant,
            amount,
            description: description.to_string(),
            idempotency_key: idempotency_key.map(str::to_string),
        };
        self.store
            .write(Shard::Account(&account_id), move |batch| {
                Box::pin(async move { write_entry_in(batch, request).await })
            })
            .await
    }

    /// Refunds a usage record once, at most what it was charged (default: all of it). Repeating the same
    /// refund returns the first result.
    #[tracing::instrument(skip(self, reason), err)]
    pub async fn refund(
        &self,
        id: &str,
        usage_record_id: &str,
        amount: Option<Money>,
        reason: Option<&str>,
    ) -> Result<LedgerWrite, BillingError> {
        let record_id: i64 = usage_record_id
            .parse()
            .ok()
            .filter(|id| *id > 0)
            .ok_or(BillingError::NotFound("usage record"))?;
        let reason = reason.unwrap_or("Refund");
        validate_text("reason", reason, MAX_DESCRIPTION_CHARS)?;
        let (account_id, _) = self.resolve(id).await?;
        let request = RefundRequest {
            account_id: account_id.clone(),
            record_id,
            amount,
            reason: reason.to_string(),
        };
        self.store
            .write(Shard::Account(&account_id), move |batch| {
                Box::pin(async move { refund_in(batch, request).await })
            })
            .await
    }

    /// Sets both caps; `None` clears one.
    #[tracing::instrument(skip(self), err)]
    pub async fn set_limits(
        &self,
        id: &str,
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
        let (account_id, _) = self.resolve(id).await?;
        self.store
            .write(Shard::Account(&account_id.clone()), move |batch| {
                Box::pin(async move {
                    let mut account = batch.lock(&account_id).await?;
                    account.daily_limit = daily_limit;
                    account.monthly_limit = monthly_limit;
                    accounts::set_limits(batch.connection().await?, &account).await?;
                    batch.save(&account);
                    Ok(account)
                })
            })
            .await
    }

    /// Replaces the volume tiers of the account `id` names (BILLING.md, "Volume tiers").
    #[tracing::instrument(skip(self, tiers), err)]
    pub async fn set_discount_tiers(
        &self,
        id: &str,
        tiers: Vec<pricing::DiscountTier>,
    ) -> Result<Account, BillingError> {
        let tiers = pricing::validate_tiers(tiers)?;
        let (account_id, _) = self.resolve(id).await?;
        self.store
            .write(Shard::Account(&account_id.clone()), move |batch| {
                Box::pin(async move {
                    let mut account = batch.lock(&account_id).await?;
                    account.discount_tiers = tiers;
                    account.updated_at = time::now_ms();
                    accounts::set_discount_tiers(batch.connection().await?, &account).await?;
                    batch.save(&account);
                    Ok(account)
                })
            })
            .await
    }

    /// Replaces the `balance.low` thresholds of the account `id` names (a key id: its account); each starts
    /// armed when the balance is at or above it.
    #[tracing::instrument(skip(self, thresholds), err)]
    pub async fn set_low_balance_alerts(
        &self,
        id: &str,
        thresholds: Vec<Money>,
    ) -> Result<Vec<LowBalance>, BillingError> {
        let (account_id, _) = self.resolve(id).await?;
        self.store
            .write(Shard::Account(&account_id.clone()), move |batch| {
                Box::pin(async move {
                    let mut account = batch.lock(&account_id).await?;
                    account.low_balance = alerts::configure(&thresholds, account.credits_balance)?;
                    batch.save(&account);
                    Ok(account.low_balance)
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
            if price.model == pricing::DEFAULT_MODEL {
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
        pricing::validate_model(&model)?;
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
                    Ok(store::pricing::upsert(batch.connection().await?, &price, now).await?)
                })
            })
            .await
    }

    pub async fn list_prices(&self) -> Result<Vec<Price>, BillingError> {
        let mut connection = self.store.reader().acquire().await?;
        Ok(store::pricing::list(&mut connection).await?)
    }
}

/// The transaction of one credit or adjustment.
async fn write_entry_in(
    batch: &mut Batch,
    request: EntryRequest,
) -> Result<LedgerWrite, BillingError> {
    let now = time::now_ms();
    let mut account = batch.lock(&request.account_id).await?;
    let first = match &request.idempotency_key {
        Some(key) => {
            transactions::by_idempotency_key(batch.connection().await?, &request.account_id, key)
                .await?
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
        return replayed(batch, first, account).await;
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
        grant: request.grant,
        api_key_id: request.api_key_id,
        amount: request.amount,
        description: request.description,
        metadata: json!({}),
        idempotency_key: request.idempotency_key,
    };
    let (transaction, grant) = Ledger::post(batch, &mut account, entry, now).await?;
    batch.save(&account);
    Ok(LedgerWrite {
        transaction,
        account,
        grant,
    })
}

/// The first result of a repeated write: its row, the account as it is now, and the grant the row brought.
pub(super) async fn replayed(
    batch: &mut Batch,
    first: Transaction,
    account: Account,
) -> Result<LedgerWrite, BillingError> {
    let grant = store::grants::by_transaction(batch.connection().await?, first.id).await?;
    Ok(LedgerWrite {
        transaction: first,
        account,
        grant,
    })
}

/// The transaction of one refund.
async fn refund_in(batch: &mut Batch, request: RefundRequest) -> Result<LedgerWrite, BillingError> {
    let now = time::now_ms();
    let mut account = batch.lock(&request.account_id).await?;
    let record = usage::by_id(
        batch.connection().await?,
        &request.account_id,
        request.record_id,
    )
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
    if let Some(first) = transactions::by_idempotency_key(
        batch.connection().await?,
        &request.account_id,
        &idempotency_key,
    )
    .await?
    {
        if first.amount != amount {
            return Err(BillingError::AlreadyRefunded);
        }
        return replayed(batch, first, account).await;
    }
    let entry = Entry {
        kind: TransactionType::Refund,
        // A refund comes back as paid credit without expiry (BILLING.md, "Credit grants").
        grant: GrantEffect::Add(GrantTerms::paid()),
        api_key_id: Some(record.api_key_id.clone()),
        amount,
        description: request.reason,
        metadata: json!({ "usage_record_id": request.record_id.to_string(), "execution_id": record.execution_id.as_str() }),
        idempotency_key: Some(idempotency_key),
    };
    let (transaction, grant) = Ledger::post(batch, &mut account, entry, now).await?;
    usage::set_refunded(batch.connection().await?, request.record_id, amount).await?;
    batch.save(&account);
    Ok(LedgerWrite {
        transaction,
        account,
        grant,
    })
}

/// A cursor of the account listing: `<created_at>.<id>` of the last account of the previous page.
fn account_cursor(cursor: &str) -> Result<(Millis, AccountId), BillingError> {
    cursor
        .split_once('.')
        .and_then(|(time, id)| Some((time.parse::<Millis>().ok()?, AccountId::from(id))))
        .ok_or_else(|| BillingError::invalid("cursor", "is not a cursor returned by this API"))
}
