//! Operations on API keys: create, list, change, rotate and revoke, and the keys a caller may see with their spend.

use serde_json::json;

use crate::accounts::{self, Account};
use crate::credits::transactions;
use crate::error::BillingError;
use crate::events::EventType;
use crate::keys::policy::Policy;
use crate::keys::{self, ApiKey, KeyType, Role};
use crate::ledger::{Ledger, emit};
use crate::store::Shard;
use crate::time::{self, Millis};
use money::Money;
use proto::ids::{AccountId, ApiKeyId};

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

impl Ledger {
    /// The keys a customer key may see (API_KEY_MANAGEMENT.md, "Keys"): an owner every live key of its
    /// account, a member itself; each with its spend today and this month.
    pub async fn visible_keys(&self, caller: &ApiKey) -> Result<Vec<KeySpend>, BillingError> {
        let keys = match caller.role {
            Role::Owner => {
                let mut connection = self.store.reader().acquire().await?;
                keys::sql::list(&mut connection, Some(&caller.account_id), false).await?
            }
            Role::Member => vec![caller.clone()],
        };
        self.with_spend(&caller.account_id, keys).await
    }

    pub(crate) async fn with_spend(
        &self,
        account_id: &AccountId,
        keys: Vec<ApiKey>,
    ) -> Result<Vec<KeySpend>, BillingError> {
        let now = time::now_ms();
        let mut connection = self.store.reader().acquire().await?;
        let mut spends = Vec::with_capacity(keys.len());
        for key in keys {
            let spent_today = transactions::sql::spend_since(
                &mut connection,
                account_id,
                Some(&key.id),
                time::day_start(now),
            )
            .await?;
            let spent_this_month = transactions::sql::spend_since(
                &mut connection,
                account_id,
                Some(&key.id),
                time::month_start(now),
            )
            .await?;
            let last_used_at = crate::usage::sql::last_used(&mut connection, &key.id).await?;
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
                accounts::sql::by_id(&mut connection, id)
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
                        accounts::sql::insert(batch.connection().await?, &account).await?;
                    }
                    keys::sql::insert(batch.connection().await?, &stored, &key_hash).await?;
                    let data = json!({
                        "apiKeyId": stored.id.as_str(), "name": stored.name, "keyType": stored.key_type.as_str(),
                        "role": stored.role.as_str(), "hint": stored.hint,
                        "expiresAt": stored.expires_at.map(time::to_rfc3339),
                    });
                    emit(batch, &account.id, EventType::KeyCreated, data, now);
                    accounts::sql::by_id(batch.connection().await?, &account.id)
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
        Ok(keys::sql::list(&mut connection, None, include_revoked).await?)
    }

    /// The key `id`.
    pub async fn key(&self, id: &ApiKeyId) -> Result<ApiKey, BillingError> {
        let mut connection = self.store.reader().acquire().await?;
        keys::sql::by_id(&mut connection, id)
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
                    let key = keys::sql::by_id(batch.connection().await?, &id)
                        .await?
                        .ok_or(BillingError::NotFound("api key"))?;
                    if key.revoked_at.is_some() {
                        return Ok(key);
                    }
                    let revoked = keys::sql::revoke(batch.connection().await?, &id, now)
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
                    keys::sql::update(batch.connection().await?, &stored).await?;
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
                    keys::sql::rotate(
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
                    accounts::sql::by_id(batch.connection().await?, &key.account_id)
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
}
