//! The write transaction that ledger operations run in, and what it remembers across them.
//!
//! Under group commit one transaction carries many operations. Several of them usually touch the same
//! account (one hot key) and the same model, so the batch reads and locks each account once, keeps its
//! current state in memory while the operations move its money, and writes each changed account back once,
//! just before the commit: one balance update per account per batch instead of a lock and an update per
//! operation. Key rows and price rows are read once per batch in the same way. Everything remembered was
//! read inside this transaction (the account rows under their lock), so another billing-svc process writing
//! the same database cannot make it stale.
//!
//! Each operation runs in its own savepoint ([`Batch::start_operation`], [`Batch::end_operation`]). What an
//! operation changes in memory is staged and becomes part of the batch only when the operation succeeds; a
//! failed operation is rolled back in the database and in memory alike.

use std::collections::{HashMap, HashSet};

use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};

use super::Backend;
use super::accounts::{self, Account};
use super::grants;
use super::keys::{self, ApiKey};
use super::pricing;
use crate::error::BillingError;
use crate::pricing::Price;
use crate::time::Millis;
use proto::ids::{AccountId, ApiKeyId};

/// One database transaction shared by the operations of a batch.
pub struct Batch {
    transaction: Transaction<'static, Any>,
    backend: Backend,
    /// Locked accounts as the committed operations of this batch left them.
    accounts: HashMap<AccountId, Account>,
    /// Accounts whose money changed in this batch and must be written back before the commit.
    changed: HashSet<AccountId>,
    /// Accounts the running operation locked or changed, merged into `accounts` when it succeeds.
    staged: HashMap<AccountId, Staged>,
    keys: HashMap<ApiKeyId, ApiKey>,
    /// Price rows per model: the model's own rows and the default rows.
    prices: HashMap<String, Vec<Price>>,
    /// A savepoint of a succeeded operation is still open; the next operation releases it.
    savepoint_open: bool,
}

struct Staged {
    account: Account,
    changed: bool,
}

impl Batch {
    /// Begins a transaction on a connection of `pool`.
    pub(super) async fn begin(pool: &AnyPool, backend: Backend) -> Result<Batch, sqlx::Error> {
        Ok(Batch {
            transaction: pool.begin().await?,
            backend,
            accounts: HashMap::new(),
            changed: HashSet::new(),
            staged: HashMap::new(),
            keys: HashMap::new(),
            prices: HashMap::new(),
            savepoint_open: false,
        })
    }

    /// The transaction's connection, for statements of the operation.
    pub fn connection(&mut self) -> &mut AnyConnection {
        &mut self.transaction
    }

    /// Opens the savepoint of the next operation, releasing the previous one in the same round trip.
    pub(super) async fn start_operation(&mut self) -> Result<(), sqlx::Error> {
        let statement = if self.savepoint_open {
            "RELEASE SAVEPOINT operation; SAVEPOINT operation"
        } else {
            "SAVEPOINT operation"
        };
        self.savepoints(statement).await?;
        self.savepoint_open = true;
        Ok(())
    }

    /// Keeps what a succeeded operation did, or undoes what a failed one did.
    pub(super) async fn end_operation(&mut self, succeeded: bool) -> Result<(), sqlx::Error> {
        if succeeded {
            self.keep_staged();
            return Ok(());
        }
        // A row lock taken inside a rolled-back savepoint may be gone (PostgreSQL), so what the operation
        // locked is forgotten with the rest and locked again by the next operation that needs it.
        self.staged.clear();
        self.savepoints("ROLLBACK TO SAVEPOINT operation; RELEASE SAVEPOINT operation")
            .await?;
        self.savepoint_open = false;
        Ok(())
    }

    /// Runs savepoint statements in one call.
    async fn savepoints(&mut self, statements: &'static str) -> Result<(), sqlx::Error> {
        match self.backend {
            // SQLite parses an unbound string again on every call; a query is prepared once and cached.
            Backend::Sqlite => {
                sqlx::query(statements)
                    .execute(&mut *self.transaction)
                    .await?
            }
            // PostgreSQL takes several statements in one call only as a simple (unprepared) query.
            Backend::Postgres => self.transaction.execute(statements).await?,
        };
        Ok(())
    }

    /// Writes back every changed account and commits: the batch is durable when this returns.
    pub(super) async fn commit(mut self) -> Result<(), sqlx::Error> {
        self.keep_staged();
        for id in &self.changed {
            if let Some(account) = self.accounts.get(id) {
                accounts::update_money(&mut self.transaction, account).await?;
                for grant in &account.grants {
                    if account.changed_grants.contains(&grant.id) {
                        grants::update_remaining(&mut self.transaction, grant).await?;
                    }
                }
            }
        }
        self.transaction.commit().await
    }

    fn keep_staged(&mut self) {
        for (id, staged) in self.staged.drain() {
            if staged.changed {
                self.changed.insert(id.clone());
            }
            self.accounts.insert(id, staged.account);
        }
    }

    /// The account `id`, locked for the rest of the transaction: the row lock (PostgreSQL) or the write
    /// lock (SQLite) is taken before any check, so concurrent operations on one account run one after the
    /// other.
    pub async fn lock(&mut self, id: &AccountId, now: Millis) -> Result<Account, BillingError> {
        if let Some(staged) = self.staged.get(id) {
            return Ok(staged.account.clone());
        }
        if let Some(account) = self.accounts.get(id) {
            return Ok(account.clone());
        }
        let mut account = accounts::lock(&mut self.transaction, id, now)
            .await?
            .ok_or(BillingError::NotFound("account"))?;
        account.grants = grants::live(&mut self.transaction, id).await?;
        self.staged.insert(
            id.clone(),
            Staged {
                account: account.clone(),
                changed: false,
            },
        );
        Ok(account)
    }

    /// Records the new money of an account the operation locked; it is written once, before the commit.
    pub fn save(&mut self, account: &Account) {
        self.staged.insert(
            account.id.clone(),
            Staged {
                account: account.clone(),
                changed: true,
            },
        );
    }

    /// The key row of `id`, read once per batch.
    pub async fn key(&mut self, id: &ApiKeyId) -> Result<ApiKey, BillingError> {
        if let Some(key) = self.keys.get(id) {
            return Ok(key.clone());
        }
        let key = keys::by_id(&mut self.transaction, id)
            .await?
            .ok_or(BillingError::NotFound("api key"))?;
        self.keys.insert(id.clone(), key.clone());
        Ok(key)
    }

    /// Forgets a key row the operation changed, so that the next read sees the change.
    pub fn forget_key(&mut self, id: &ApiKeyId) {
        self.keys.remove(id);
    }

    /// The price of `model` effective at `at`; its rows are read once per batch.
    pub async fn price(&mut self, model: &str, at: Millis) -> Result<Price, BillingError> {
        if !self.prices.contains_key(model) {
            let rows = pricing::of_model(&mut self.transaction, model).await?;
            self.prices.insert(model.to_string(), rows);
        }
        self.prices
            .get(model)
            .and_then(|rows| crate::pricing::effective(rows, model, at))
            .cloned()
            .ok_or(BillingError::NotFound("price"))
    }

    /// Forgets every price row read, after an operation that wrote one.
    pub fn forget_prices(&mut self) {
        self.prices.clear();
    }
}
