//! The money rules. Every operation that moves money is one atomic write ([`Store::write`]) that starts by
//! locking the account ([`Batch::lock`]), checks, writes its rows and saves the account's new money
//! ([`Batch::save`]); retried with the same id (idempotency key, execution id, usage record) it changes
//! nothing.
//!
//! Each operation is a method that validates its input, then hands an owned copy of what it needs to a
//! `*_in` function that runs in the write [`Batch`]: that function is the operation's whole transaction.
//!
//! This module holds [`Ledger`] and what every operation shares: authentication, the headroom, posting a
//! ledger row ([`Entry`]) with its grant effect, balance events, [`emit`], and what reads share ([`Page`],
//! [`View`]). The operations themselves are `impl Ledger` blocks in the module of their concept:
//! `accounts::ops`, `keys::ops`, `credits::ops` and `credits::expiry`, `holds::ops`, `prices::ops`,
//! `usage::ops`, `events::ops`, `payments::ops`.

mod reads;

pub use reads::{Page, View, range};
pub(crate) use reads::{cursor, page, page_by, page_size};

use serde_json::json;

use crate::accounts::Account;
use crate::credits::grants;
use crate::credits::grants::{Category, CreditGrant};
use crate::credits::transactions::{self, Transaction, TransactionType};
use crate::error::{BillingError, Scope};
use crate::events::alerts;
use crate::events::{Event, EventType};
use crate::holds;
use crate::keys::cache::KeyCache;
use crate::keys::{self, ApiKey, Found};
use crate::store::{Batch, Store};
use crate::time::{self, Millis};
use money::Money;
use proto::ids::{AccountId, ApiKeyId, EventId, GrantId};
use proto::refusal::Refusal;
use std::sync::Arc;

/// Tunables of holds and input limits.
#[derive(Debug, Clone)]
pub struct LedgerSettings {
    pub hold_ttl_ms: i64,
    pub hold_chunk_tokens: u64,
    pub min_output_tokens: u64,
    pub max_execution_tokens: u64,
}

/// The ledger: the only writer of money.
#[derive(Clone)]
pub struct Ledger {
    pub(crate) store: Store,
    pub(crate) settings: LedgerSettings,
    pub(crate) keys: Arc<KeyCache>,
}

/// Which limit binds the credit an account (or one of its keys) may still hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Credits,
    Daily(Money, Scope),
    Monthly(Money, Scope),
}

impl Bound {
    /// The refusal this bound makes (its code is shared with the public API).
    pub fn reason(self) -> Refusal {
        match self {
            Bound::Credits => Refusal::InsufficientCredits,
            Bound::Daily(..) => Refusal::DailyLimitExceeded,
            Bound::Monthly(..) => Refusal::MonthlyLimitExceeded,
        }
    }

    pub(crate) fn refusal(self, balance: Money) -> BillingError {
        match self {
            Bound::Credits => BillingError::InsufficientCredits { balance },
            Bound::Daily(limit, scope) => BillingError::DailyLimitExceeded {
                balance,
                limit,
                scope,
            },
            Bound::Monthly(limit, scope) => BillingError::MonthlyLimitExceeded {
                balance,
                limit,
                scope,
            },
        }
    }
}

/// What an account may still hold, and the limit that sets it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Headroom {
    pub(crate) amount: Money,
    pub(crate) bound: Bound,
}

impl Ledger {
    pub fn new(store: Store, settings: LedgerSettings) -> Ledger {
        Ledger {
            store,
            settings,
            keys: Arc::default(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The key behind a plain customer key (its current secret, or its previous one within a rotation's
    /// grace period), refused when unknown, revoked or expired. Keys come from the [`KeyCache`]; operations
    /// that move money check the key again in their transaction ([`Ledger::recheck`]).
    pub async fn authenticate(&self, plain_key: &str) -> Result<Caller, BillingError> {
        let hash = crate::keys::hash(plain_key);
        let found = match self.keys.get(&hash) {
            Some(found) => found,
            None => {
                let mut connection = self.store.reader().acquire().await?;
                let found = keys::sql::by_hash(&mut connection, &hash)
                    .await?
                    .ok_or(BillingError::UnknownKey)?;
                self.keys.insert(hash.clone(), &found);
                found
            }
        };
        usable(&found, time::now_ms())?;
        Ok(Caller {
            key: found.key,
            key_hash: hash,
            previous_secret: found.previous_secret,
        })
    }

    /// The key behind a console session, read now (not from the cache), so that revoking or expiring the
    /// key ends its sessions on their next call. A console session reads and manages the account; it
    /// never opens executions, so it holds no secret to check again after a rotation.
    pub async fn session_caller(&self, id: &ApiKeyId) -> Result<Caller, BillingError> {
        let mut connection = self.store.reader().acquire().await?;
        let key = keys::sql::by_id(&mut connection, id)
            .await?
            .ok_or(BillingError::SessionEnded)?;
        let found = Found {
            key,
            previous_secret: false,
        };
        usable(&found, time::now_ms())?;
        Ok(Caller {
            key: found.key,
            key_hash: String::new(),
            previous_secret: false,
        })
    }

    /// The caller's key as it is now, read under the account lock: a revocation, expiry, rotation or
    /// policy change made through any process sharing the database takes effect here.
    pub(crate) async fn recheck(
        batch: &mut Batch,
        caller: &Caller,
        now: Millis,
    ) -> Result<ApiKey, BillingError> {
        let row = batch.key(&caller.key.id).await?;
        let found = if row.rotated_at == caller.key.rotated_at {
            Found {
                key: row,
                previous_secret: caller.previous_secret,
            }
        } else {
            // Rotated since the caller was authenticated: which secret it holds is read again.
            keys::sql::by_hash(batch.connection().await?, &caller.key_hash)
                .await?
                .filter(|found| found.key.id == caller.key.id)
                .ok_or(BillingError::UnknownKey)?
        };
        usable(&found, now)?;
        Ok(found.key)
    }

    /// The account of a key (for settlements replayed by key id).
    pub async fn account_of_key(&self, id: &ApiKeyId) -> Result<AccountId, BillingError> {
        let mut connection = self.store.reader().acquire().await?;
        Ok(keys::sql::by_id(&mut connection, id)
            .await?
            .ok_or(BillingError::NotFound("api key"))?
            .account_id)
    }

    /// The account an admin path names: a key id means that key's account (API_KEY_MANAGEMENT.md, "Keys").
    /// Returns the key too when a key was named, for attribution.
    pub async fn resolve(&self, id: &str) -> Result<(AccountId, Option<ApiKeyId>), BillingError> {
        let mut connection = self.store.reader().acquire().await?;
        let key_id = ApiKeyId::from(id);
        if let Some(key) = keys::sql::by_id(&mut connection, &key_id).await? {
            return Ok((key.account_id, Some(key_id)));
        }
        let account_id = AccountId::from(id);
        match crate::accounts::sql::by_id(&mut connection, &account_id).await? {
            Some(_) => Ok((account_id, None)),
            None => Err(BillingError::NotFound("api key or account")),
        }
    }

    /// What the locked account may still hold: the least of its available credit, what is left under
    /// its daily and monthly caps (settled spend plus active holds count against a cap), and, when a key
    /// is given, what is left under that key's own caps (its spend and holds against its policy).
    pub(crate) async fn headroom(
        batch: &mut Batch,
        account: &Account,
        key: Option<&ApiKey>,
        now: Millis,
    ) -> Result<Headroom, BillingError> {
        let mut headroom = Headroom {
            amount: account.available(),
            bound: Bound::Credits,
        };
        let key_caps = key.map(|key| (key, key.policy.daily_limit, key.policy.monthly_limit));
        let mut caps = vec![
            (
                account.daily_limit,
                time::day_start(now),
                None,
                Bound::Daily as fn(Money, Scope) -> Bound,
            ),
            (
                account.monthly_limit,
                time::month_start(now),
                None,
                Bound::Monthly as fn(Money, Scope) -> Bound,
            ),
        ];
        if let Some((key, daily, monthly)) = key_caps {
            caps.push((daily, time::day_start(now), Some(key), Bound::Daily));
            caps.push((monthly, time::month_start(now), Some(key), Bound::Monthly));
        }
        for (limit, since, key, bound) in caps {
            let Some(limit) = limit else { continue };
            let key_id = key.map(|key| &key.id);
            let spent = transactions::sql::spend_since(
                batch.connection().await?,
                &account.id,
                key_id,
                since,
            )
            .await?;
            let held = match key_id {
                None => account.held_credits,
                Some(key_id) => {
                    holds::sql::of_key(batch.connection().await?, key_id, now)
                        .await?
                        .amount
                }
            };
            let left = limit
                .checked_sub(spent)
                .and_then(|left| left.checked_sub(held))
                .ok_or(BillingError::Overflow)?;
            if left < headroom.amount {
                let scope = if key.is_some() {
                    Scope::Key
                } else {
                    Scope::Account
                };
                headroom = Headroom {
                    amount: left,
                    bound: bound(limit, scope),
                };
            }
        }
        Ok(headroom)
    }

    /// Writes a ledger row moving the locked account's balance by `entry.amount` (and its total spent, for
    /// usage and refunds) and the grants it causes (BILLING.md, "Credit grants"): a credit becomes a grant
    /// (paying the overage first), a charge draws grants down in spending order (what none covers becomes
    /// overage, and the row's metadata names the grants and amounts), an expiry empties its grant. Returns
    /// the row and the grant it created, if any. The caller saves the account with [`Batch::save`].
    pub(crate) async fn post(
        batch: &mut Batch,
        account: &mut Account,
        entry: Entry,
        now: Millis,
    ) -> Result<(Transaction, Option<CreditGrant>), BillingError> {
        let spent_delta = match entry.kind {
            TransactionType::UsageDeduction | TransactionType::Refund => entry.amount.negated(),
            TransactionType::CreditPurchase
            | TransactionType::CreditAdjustment
            | TransactionType::CreditGrant
            | TransactionType::CreditExpiry => Money::ZERO,
        };
        let mut metadata = entry.metadata;
        let mut new_grant = None;
        let expired_grant = match &entry.grant {
            GrantEffect::Expire(id) => Some(id.clone()),
            GrantEffect::Add(_) | GrantEffect::Draw => None,
        };
        match entry.grant {
            GrantEffect::Add(terms) => {
                let paid_overage = account.overage.min(entry.amount);
                account.overage = checked(account.overage.checked_sub(paid_overage))?;
                new_grant = Some(CreditGrant {
                    id: GrantId::generate(),
                    account_id: account.id.clone(),
                    category: terms.category,
                    amount: entry.amount,
                    remaining: checked(entry.amount.checked_sub(paid_overage))?,
                    priority: terms.priority,
                    expires_at: terms.expires_at,
                    created_at: now,
                    transaction_id: None,
                    expired_at: None,
                });
                if paid_overage.is_positive() {
                    metadata["overage_paid"] = paid_overage.to_string().into();
                }
            }
            GrantEffect::Draw => {
                let drawn = grants::draw(&mut account.grants, entry.amount.negated());
                account.overage = checked(account.overage.checked_add(drawn.shortfall))?;
                for (id, _) in &drawn.taken {
                    account.changed_grants.push(id.clone());
                }
                metadata["grants"] = drawn
                    .taken
                    .iter()
                    .map(|(id, amount)| json!({"grant_id": id.as_str(), "amount": amount.to_string()}))
                    .collect::<Vec<_>>()
                    .into();
                if drawn.shortfall.is_positive() {
                    metadata["overage"] = drawn.shortfall.to_string().into();
                }
            }
            GrantEffect::Expire(id) => {
                let grant = account
                    .grants
                    .iter_mut()
                    .find(|grant| grant.id == id)
                    .ok_or(BillingError::NotFound("grant"))?;
                grant.remaining = Money::ZERO;
                grant.expired_at = Some(now);
                account.changed_grants.push(id.clone());
                metadata["grant_id"] = id.as_str().into();
            }
        }
        let before = account.credits_balance;
        account.credits_balance = checked(account.credits_balance.checked_add(entry.amount))?;
        account.total_spent = checked(account.total_spent.checked_add(spent_delta))?;
        account.updated_at = now;
        let row = Transaction {
            id: 0,
            account_id: account.id.clone(),
            api_key_id: entry.api_key_id,
            kind: entry.kind,
            amount: entry.amount,
            balance_after: account.credits_balance,
            total_spent_after: account.total_spent,
            description: entry.description,
            metadata: metadata.to_string(),
            timestamp: now,
            idempotency_key: entry.idempotency_key,
            prev_hash: account.ledger_head().to_string(),
            hash: String::new(),
        };
        let transaction = batch.insert_transaction(row).await?;
        account.ledger_hash = transaction.hash.clone();
        if let Some(grant) = &mut new_grant {
            grant.transaction_id = Some(transaction.id);
            batch.insert_grant(grant.clone());
            if grant.remaining.is_positive() {
                account.grants.push(grant.clone());
            }
            let data = json!({
                "transactionId": transaction.id.to_string(), "grantId": grant.id.as_str(),
                "category": grant.category.as_str(), "amount": grant.amount.to_string(),
                "expiresAt": grant.expires_at.map(time::to_rfc3339),
                "balanceAfter": account.credits_balance.to_string(),
            });
            emit(batch, &account.id, EventType::CreditsAdded, data, now);
        }
        if let Some(grant_id) = expired_grant {
            let data = json!({
                "transactionId": transaction.id.to_string(), "grantId": grant_id.as_str(),
                "amount": transaction.amount.negated().to_string(),
                "balanceAfter": account.credits_balance.to_string(),
            });
            emit(batch, &account.id, EventType::CreditsExpired, data, now);
        }
        Ledger::balance_events(batch, account, before, now).await?;
        Ok((transaction, new_grant))
    }

    /// The events a balance change from `before` causes: `balance.low` for each armed threshold it crossed
    /// (re-arming those it is back above), `balance.depleted` when it reached zero; and the auto-recharge a
    /// crossing of its threshold starts.
    pub(crate) async fn balance_events(
        batch: &mut Batch,
        account: &mut Account,
        before: Money,
        now: Millis,
    ) -> Result<(), BillingError> {
        let after = account.credits_balance;
        let mut fired = Vec::new();
        for threshold in alerts::cross(&mut account.low_balance, after) {
            let data = json!({
                "threshold": threshold.to_string(), "balance": after.to_string(),
                "available": account.available().to_string(),
            });
            let id = emit(batch, &account.id, EventType::BalanceLow, data, now);
            fired.push((threshold, id));
        }
        Ledger::auto_recharge_crossing(batch, account, &fired, now).await?;
        if before.is_positive() && !after.is_positive() {
            let data =
                json!({"balance": after.to_string(), "overage": account.overage.to_string()});
            emit(batch, &account.id, EventType::BalanceDepleted, data, now);
        }
        Ok(())
    }
}

/// Writes an event to the outbox, in the operation's transaction; returns its id.
pub(crate) fn emit(
    batch: &mut Batch,
    account_id: &AccountId,
    kind: EventType,
    data: serde_json::Value,
    now: Millis,
) -> EventId {
    batch.emit(Event::new(account_id, kind, data, now))
}

pub(crate) fn checked(amount: Option<Money>) -> Result<Money, BillingError> {
    amount.ok_or(BillingError::Overflow)
}

/// What a ledger row does to the account's grants.
#[derive(Debug, Clone)]
pub(crate) enum GrantEffect {
    /// A credit: a new grant on these terms.
    Add(GrantTerms),
    /// A charge: drawn from the grants in spending order.
    Draw,
    /// An expiry: this grant's remainder leaves.
    Expire(GrantId),
}

/// The terms of a new grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantTerms {
    pub category: Category,
    pub priority: i64,
    pub expires_at: Option<Millis>,
}

impl GrantTerms {
    /// Paid credit without expiry, at the default priority: refunds and positive adjustments.
    pub fn paid() -> GrantTerms {
        GrantTerms {
            category: Category::Paid,
            priority: Category::Paid.default_priority(),
            expires_at: None,
        }
    }
}

/// A ledger row to write.
pub(crate) struct Entry {
    pub(crate) kind: TransactionType,
    pub(crate) grant: GrantEffect,
    /// The key that caused it, if one did.
    pub(crate) api_key_id: Option<ApiKeyId>,
    pub(crate) amount: Money,
    pub(crate) description: String,
    pub(crate) metadata: serde_json::Value,
    pub(crate) idempotency_key: Option<String>,
}

/// Checks free text from clients: at most `max_chars` characters, no control characters.
pub fn validate_text(
    field: &'static str,
    text: &str,
    max_chars: usize,
) -> Result<(), BillingError> {
    if text.chars().count() > max_chars {
        return Err(BillingError::invalid(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(BillingError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// An authenticated customer key, and how it was presented.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: ApiKey,
    /// The hash of the secret it was presented with (to check it again after a rotation).
    pub(crate) key_hash: String,
    /// The secret is the key's previous one (a rotation's grace period).
    pub(crate) previous_secret: bool,
}

/// Refuses a revoked or expired key, and a rotated-out secret whose grace period is over.
pub(crate) fn usable(found: &Found, now: Millis) -> Result<(), BillingError> {
    let key = &found.key;
    if key.revoked_at.is_some() {
        return Err(BillingError::KeyRevoked);
    }
    if key.expires_at.is_some_and(|expires_at| expires_at <= now) {
        return Err(BillingError::KeyExpired);
    }
    if found.previous_secret
        && key
            .previous_key_expires_at
            .is_none_or(|expires_at| expires_at <= now)
    {
        return Err(BillingError::UnknownKey);
    }
    Ok(())
}
