//! The money rules. Every operation that moves money is one atomic write ([`Store::write`]) that starts by
//! locking the account ([`Batch::lock`]), checks, writes its rows and saves the account's new money
//! ([`Batch::save`]); retried with the same id (idempotency key, execution id, usage record) it changes
//! nothing.
//!
//! Each operation is a method that validates its input, then hands an owned copy of what it needs to a
//! `*_in` function that runs in the write [`Batch`]: that function is the operation's whole transaction.

mod admin;
mod key_cache;
mod metering;
mod queries;

pub use metering::{Grant, OpenRequest, Opened, OutputKind, SettleRequest, Settlement};
pub use queries::{Page, Stats, range};

use crate::error::BillingError;
use crate::keys;
use crate::money::Money;
use crate::store::accounts::Account;
use crate::store::keys::ApiKey;
use crate::store::transactions::{self, Transaction, TransactionType};
use crate::store::{self, Batch, Store};
use crate::time::{self, Millis};
use key_cache::KeyCache;
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
    store: Store,
    settings: LedgerSettings,
    keys: Arc<KeyCache>,
}

/// Which limit binds the credit an account may still reserve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Credits,
    Daily(Money),
    Monthly(Money),
}

impl Bound {
    /// The snake_case reason shared with the public API.
    pub fn reason(self) -> &'static str {
        match self {
            Bound::Credits => "insufficient_credits",
            Bound::Daily(_) => "daily_limit_exceeded",
            Bound::Monthly(_) => "monthly_limit_exceeded",
        }
    }

    fn refusal(self, balance: Money) -> BillingError {
        match self {
            Bound::Credits => BillingError::InsufficientCredits { balance },
            Bound::Daily(limit) => BillingError::DailyLimitExceeded { balance, limit },
            Bound::Monthly(limit) => BillingError::MonthlyLimitExceeded { balance, limit },
        }
    }
}

/// What an account may still reserve, and the limit that sets it.
#[derive(Debug, Clone, Copy)]
struct Headroom {
    amount: Money,
    bound: Bound,
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

    /// The key behind a plain customer key, refused when unknown, revoked or expired. Keys come from the
    /// [`KeyCache`]; operations that move money check revocation again in their transaction.
    pub async fn authenticate(&self, plain_key: &str) -> Result<ApiKey, BillingError> {
        let hash = keys::hash(plain_key);
        let key = match self.keys.get(&hash) {
            Some(key) => key,
            None => {
                let mut connection = self.store.reader().acquire().await?;
                let key = store::keys::by_hash(&mut connection, &hash)
                    .await?
                    .ok_or(BillingError::UnknownKey)?;
                self.keys.insert(hash, &key);
                key
            }
        };
        usable(&key, time::now_ms())?;
        Ok(key)
    }

    /// What the locked account may still reserve: the least of its available credit and what is left under
    /// its daily and monthly caps (settled spend plus active holds count against a cap).
    async fn headroom(
        batch: &mut Batch,
        account: &Account,
        now: Millis,
    ) -> Result<Headroom, BillingError> {
        let mut headroom = Headroom {
            amount: account.available(),
            bound: Bound::Credits,
        };
        let caps = [
            (
                account.daily_limit,
                time::day_start(now),
                Bound::Daily as fn(Money) -> Bound,
            ),
            (
                account.monthly_limit,
                time::month_start(now),
                Bound::Monthly as fn(Money) -> Bound,
            ),
        ];
        for (limit, since, bound) in caps {
            let Some(limit) = limit else { continue };
            let spent =
                transactions::spend_since(batch.connection(), &account.api_key_id, since).await?;
            let left = limit
                .checked_sub(spent)
                .and_then(|left| left.checked_sub(account.held_credits))
                .ok_or(BillingError::Overflow)?;
            if left < headroom.amount {
                headroom = Headroom {
                    amount: left,
                    bound: bound(limit),
                };
            }
        }
        Ok(headroom)
    }

    /// Writes a ledger row moving the locked account's balance by `amount` (and its total spent, for usage
    /// and refunds). The caller saves the account with [`Batch::save`].
    async fn post(
        batch: &mut Batch,
        account: &mut Account,
        entry: Entry,
        now: Millis,
    ) -> Result<Transaction, BillingError> {
        let spent_delta = match entry.kind {
            TransactionType::UsageDeduction | TransactionType::Refund => entry.amount.negated(),
            TransactionType::CreditPurchase | TransactionType::CreditAdjustment => Money::ZERO,
        };
        account.credits_balance = account
            .credits_balance
            .checked_add(entry.amount)
            .ok_or(BillingError::Overflow)?;
        account.total_spent = account
            .total_spent
            .checked_add(spent_delta)
            .ok_or(BillingError::Overflow)?;
        account.updated_at = now;
        let row = Transaction {
            id: 0,
            api_key_id: account.api_key_id.clone(),
            kind: entry.kind,
            amount: entry.amount,
            balance_after: account.credits_balance,
            total_spent_after: account.total_spent,
            description: entry.description,
            metadata: entry.metadata.to_string(),
            timestamp: now,
            idempotency_key: entry.idempotency_key,
        };
        Ok(transactions::insert(batch.connection(), &row).await?)
    }
}

/// A ledger row to write.
struct Entry {
    kind: TransactionType,
    amount: Money,
    description: String,
    metadata: serde_json::Value,
    idempotency_key: Option<String>,
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

/// Refuses a revoked or expired key.
fn usable(key: &ApiKey, now: Millis) -> Result<(), BillingError> {
    if key.revoked_at.is_some() {
        return Err(BillingError::KeyRevoked);
    }
    if key.expires_at.is_some_and(|expires_at| expires_at <= now) {
        return Err(BillingError::KeyExpired);
    }
    Ok(())
}
