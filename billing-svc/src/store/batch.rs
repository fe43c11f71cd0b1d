//! The write transaction that ledger operations run in: it loads what its operations need in bulk, lets
//! them decide in memory, and writes what they decided in bulk.
//!
//! Under group commit one transaction carries many operations. Before the first one runs, the batch reads
//! everything they declared ([`Prefetch`]) with one statement per table: the accounts (locked) and their
//! live grants, the keys, the prices of their models, and what the database knows of their execution ids
//! (a hold, or a usage record). Operations then check and decide against that state and stage their rows
//! (holds, usage records, ledger rows, grants, events) and the accounts' new money in memory. Before the
//! commit the batch writes each table once, with one multi-row statement ([`super::bulk`]): a constant
//! number of statements per batch, whatever the number of operations. Uniqueness (an execution id opened
//! or settled twice) is decided from the loaded state, so a refused operation never reaches SQL.
//!
//! What an operation stages becomes part of the batch only when it succeeds; a failed operation's staged
//! state is dropped. An operation that needs a statement of its own (an idempotency lookup, spend under a
//! cap, a key or price change) asks for [`Batch::connection`]: the batch first writes everything staged so
//! far, so that the statement sees it, and opens a savepoint for the operation, rolled back if it fails.
//! Events are the exception: they are written last, just before the commit, so that the outbox's order is
//! the order of the commits ([`events::sql::insert_at_commit`]).
//! Everything remembered was read inside this transaction (accounts under their lock), so another
//! billing-svc process writing the same database cannot make it stale.

use std::collections::{HashMap, HashSet, VecDeque};
use std::mem;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Executor};

use super::backend::Backend;
use super::bulk;
use crate::accounts::{self, Account};
use crate::credits::grants;
use crate::credits::grants::CreditGrant;
use crate::credits::transactions::{self, Transaction as LedgerRow};
use crate::error::BillingError;
use crate::events::{self, Event};
use crate::holds::sql::Known;
use crate::holds::{self, Hold};
use crate::keys::{self, ApiKey};
use crate::prices;
use crate::prices::Price;
use crate::time::Millis;
use crate::usage::{self, UsageRecord};
use proto::ids::{AccountId, ApiKeyId, EventId, ExecutionId};

/// What an operation will read, declared when it is queued, so that its batch loads it together with
/// every other operation's.
#[derive(Debug, Clone, Default)]
pub struct Prefetch {
    pub accounts: Vec<AccountId>,
    pub keys: Vec<ApiKeyId>,
    pub models: Vec<String>,
    pub executions: Vec<ExecutionId>,
    /// Usage records and ledger rows the operation may insert (ids are taken for them in advance).
    pub rows: usize,
}

impl Prefetch {
    pub(super) fn merge(&mut self, other: Prefetch) {
        self.accounts.extend(other.accounts);
        self.keys.extend(other.keys);
        self.models.extend(other.models);
        self.executions.extend(other.executions);
        self.rows += other.rows;
    }
}

/// What is known of an execution id in this transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutionState {
    /// Neither a hold nor a usage record.
    Unused,
    Held(Box<Hold>),
    /// Settled: its usage record, when this transaction wrote or read it.
    Settled(Option<Box<UsageRecord>>),
}

#[derive(Debug, Clone)]
struct Execution {
    /// The hold the database has now (as written by this transaction so far).
    stored: Option<Hold>,
    state: ExecutionState,
    /// In the running operation's layer: the operation has written it (else `stored` follows the
    /// batch's layer, which may be written under it).
    written: bool,
}

/// Rows staged for insertion.
#[derive(Debug, Default)]
struct Rows {
    usage: Vec<UsageRecord>,
    transactions: Vec<LedgerRow>,
    grants: Vec<CreditGrant>,
    events: Vec<Event>,
}

impl Rows {
    fn append(&mut self, other: &mut Rows) {
        self.usage.append(&mut other.usage);
        self.transactions.append(&mut other.transactions);
        self.grants.append(&mut other.grants);
        self.events.append(&mut other.events);
    }
}

/// Everything a state of the batch (its succeeded operations, or the running one) has not written yet.
#[derive(Debug, Default)]
struct Layer {
    /// Locked accounts, and whether their money changed since it was last written.
    accounts: HashMap<AccountId, (Account, bool)>,
    executions: HashMap<ExecutionId, Execution>,
    rows: Rows,
}

impl Layer {
    /// Writes what this layer staged, one statement per table and kind of change, and marks it written.
    async fn write(&mut self, connection: &mut AnyConnection) -> Result<u64, sqlx::Error> {
        let mut statements = 0;
        let mut released = Vec::new();
        let mut placed = Vec::new();
        let mut grown = Vec::new();
        for (id, execution) in &self.executions {
            let current = match &execution.state {
                ExecutionState::Held(hold) => Some(&**hold),
                ExecutionState::Unused | ExecutionState::Settled(_) => None,
            };
            match (&execution.stored, current) {
                (Some(_), None) => released.push(id),
                (None, Some(hold)) => placed.push(hold.clone()),
                // Released and opened again with the same id in this transaction: a new hold.
                (Some(stored), Some(hold)) if stored.id != hold.id => {
                    released.push(id);
                    placed.push(hold.clone());
                }
                (Some(stored), Some(hold)) if stored != hold => grown.push(hold),
                _ => {}
            }
        }
        for chunk in released.chunks(bulk::MAX_ROWS) {
            holds::sql::delete(connection, chunk).await?;
            statements += 1;
        }
        for chunk in placed.chunks(bulk::MAX_ROWS) {
            holds::sql::insert(connection, chunk).await?;
            statements += 1;
        }
        for chunk in grown.chunks(bulk::MAX_ROWS) {
            holds::sql::update_extended(connection, chunk).await?;
            statements += 1;
        }
        for execution in self.executions.values_mut() {
            execution.stored = match &execution.state {
                ExecutionState::Held(hold) => Some((**hold).clone()),
                ExecutionState::Unused | ExecutionState::Settled(_) => None,
            };
            execution.written = true;
        }
        let rows = mem::take(&mut self.rows);
        for chunk in rows.usage.chunks(bulk::MAX_ROWS) {
            usage::sql::insert(connection, chunk).await?;
            statements += 1;
        }
        for chunk in rows.transactions.chunks(bulk::MAX_ROWS) {
            transactions::sql::insert(connection, chunk).await?;
            statements += 1;
        }
        for chunk in rows.grants.chunks(bulk::MAX_ROWS) {
            grants::sql::insert(connection, chunk).await?;
            statements += 1;
        }
        let changed: Vec<&Account> = self
            .accounts
            .values()
            .filter(|(_, changed)| *changed)
            .map(|(account, _)| account)
            .collect();
        let changed_grants: Vec<&CreditGrant> = changed
            .iter()
            .flat_map(|account| {
                account
                    .grants
                    .iter()
                    .filter(|grant| account.changed_grants.contains(&grant.id))
            })
            .collect();
        for chunk in changed_grants.chunks(bulk::MAX_ROWS) {
            grants::sql::update_remaining(connection, chunk).await?;
            statements += 1;
        }
        for chunk in changed.chunks(bulk::MAX_ROWS) {
            accounts::sql::update_money(connection, chunk).await?;
            statements += 1;
        }
        for (account, changed) in self.accounts.values_mut() {
            *changed = false;
            account.changed_grants.clear();
        }
        // Events wait for the commit (see `write_events`); their order is the order they were staged in.
        self.rows.events = rows.events;
        Ok(statements)
    }

    /// Writes the staged events to the outbox, last before the commit: [`events::sql::insert_at_commit`]
    /// keeps the outbox's order the order of the commits.
    async fn write_events(
        &mut self,
        connection: &mut AnyConnection,
        backend: Backend,
    ) -> Result<u64, sqlx::Error> {
        let staged = mem::take(&mut self.rows.events);
        events::sql::insert_at_commit(connection, backend, &staged).await
    }

    /// Takes `other` (a succeeded operation) in.
    fn absorb(&mut self, other: Layer) {
        for (id, (account, changed)) in other.accounts {
            let was_changed = self.accounts.get(&id).is_some_and(|(_, changed)| *changed);
            self.accounts.insert(id, (account, changed || was_changed));
        }
        self.executions.extend(other.executions);
        let mut rows = other.rows;
        self.rows.append(&mut rows);
    }
}

/// Ids of the rows a batch inserts, taken in advance so that rows can name each other before they are
/// written (a ledger row names its usage record, an event its ledger row).
#[derive(Debug, Default)]
struct Ids {
    usage: VecDeque<i64>,
    transactions: VecDeque<i64>,
    /// SQLite: the last ids handed out (the database write lock keeps them ours until the commit).
    sqlite_last: Option<(i64, i64)>,
}

/// Ids for a usage record and a ledger row, as [`Batch::take_ids`] reads them.
#[derive(sqlx::FromRow)]
struct IdsRow {
    usage_id: i64,
    transaction_id: i64,
}

#[derive(Debug, Clone, Copy)]
enum IdOf {
    Usage,
    Transaction,
}

/// One database transaction shared by the operations of a batch.
///
/// The transaction is begun and ended with plain statements rather than sqlx's `Transaction`: a commit
/// that fails (a full disk) can leave sqlx believing a transaction is still open on the connection, and
/// every later batch on it would fail. A batch that does not end cleanly closes its connection instead
/// (which rolls it back), and the pool opens a fresh one.
pub struct Batch {
    transaction: PoolConnection<Any>,
    /// Committed or rolled back: the connection goes back to the pool.
    ended: bool,
    backend: Backend,
    /// What the succeeded operations left, not written yet.
    batch: Layer,
    /// What the running operation staged.
    operation: Layer,
    /// The running operation opened a savepoint (it ran a statement of its own).
    savepoint: bool,
    keys: HashMap<ApiKeyId, ApiKey>,
    /// Price rows of the models in `priced`, and the default rows.
    prices: Vec<Price>,
    priced: HashSet<String>,
    ids: Ids,
    /// Ids to take per allocation: what the batch's operations declared.
    id_block: usize,
    /// Statements sent, for the log of each batch.
    statements: u64,
}

impl Batch {
    /// Begins a transaction on a connection of `pool`. On SQLite it takes the database write lock at once
    /// (`BEGIN IMMEDIATE`), so that reads made before the first write cannot be overtaken by another
    /// process's write.
    pub(super) async fn begin(pool: &AnyPool, backend: Backend) -> Result<Batch, sqlx::Error> {
        let mut batch = Batch {
            transaction: pool.acquire().await?,
            ended: false,
            backend,
            batch: Layer::default(),
            operation: Layer::default(),
            savepoint: false,
            keys: HashMap::new(),
            prices: Vec::new(),
            priced: HashSet::new(),
            ids: Ids::default(),
            id_block: 1,
            statements: 1,
        };
        let begin = match backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        sqlx::query(begin).execute(&mut *batch.transaction).await?;
        Ok(batch)
    }

    /// Loads what the operations declared: one statement per table (per [`bulk::MAX_ROWS`] ids).
    pub(super) async fn load(&mut self, prefetch: &Prefetch) -> Result<(), sqlx::Error> {
        self.id_block = prefetch.rows.max(1);
        let mut accounts = unique(&prefetch.accounts);
        // In id order across chunks too, like the locks inside one statement.
        accounts.sort();
        for chunk in accounts.chunks(bulk::MAX_ROWS) {
            self.lock_accounts(chunk).await?;
        }
        let keys = unique(&prefetch.keys);
        for chunk in keys.chunks(bulk::MAX_ROWS) {
            for key in keys::sql::by_ids(&mut self.transaction, chunk).await? {
                self.keys.insert(key.id.clone(), key);
            }
            self.statements += 1;
        }
        let models: Vec<&str> = unique(&prefetch.models)
            .into_iter()
            .map(String::as_str)
            .collect();
        for chunk in models.chunks(bulk::MAX_ROWS) {
            self.load_prices(chunk).await?;
        }
        let executions = unique(&prefetch.executions);
        for chunk in executions.chunks(bulk::MAX_ROWS) {
            self.load_executions(chunk).await?;
        }
        Ok(())
    }

    async fn lock_accounts(&mut self, ids: &[&AccountId]) -> Result<(), sqlx::Error> {
        let locked = accounts::sql::lock(&mut self.transaction, self.backend, ids).await?;
        let mut grants = grants::sql::live(&mut self.transaction, ids).await?;
        self.statements += 2;
        for mut account in locked {
            let (theirs, others) = grants
                .into_iter()
                .partition(|grant| grant.account_id == account.id);
            account.grants = theirs;
            grants = others;
            self.batch
                .accounts
                .insert(account.id.clone(), (account, false));
        }
        // PostgreSQL: ids taken before this lock may be below ids another process has since committed for
        // the account, so later rows take fresh ones (ledger rows of an account follow their order).
        self.ids.usage.clear();
        self.ids.transactions.clear();
        Ok(())
    }

    async fn load_prices(&mut self, models: &[&str]) -> Result<(), sqlx::Error> {
        let rows = prices::sql::of_models(&mut self.transaction, models).await?;
        self.statements += 1;
        for price in rows {
            if !self.prices.contains(&price) {
                self.prices.push(price);
            }
        }
        self.priced
            .extend(models.iter().map(|model| model.to_string()));
        Ok(())
    }

    async fn load_executions(&mut self, ids: &[&ExecutionId]) -> Result<(), sqlx::Error> {
        let mut known: HashMap<ExecutionId, Known> =
            holds::sql::of_executions(&mut self.transaction, ids)
                .await?
                .into_iter()
                .collect();
        self.statements += 1;
        for id in ids {
            let (stored, state) = match known.remove(*id) {
                Some(Known::Held(hold)) => (Some((*hold).clone()), ExecutionState::Held(hold)),
                Some(Known::Settled) => (None, ExecutionState::Settled(None)),
                None => (None, ExecutionState::Unused),
            };
            let execution = Execution {
                stored,
                state,
                written: false,
            };
            self.batch.executions.insert((*id).clone(), execution);
        }
        Ok(())
    }

    /// The transaction's connection, for a statement of the running operation. Everything staged so far
    /// is written first, so that the statement sees it (events excepted: they wait for the commit), and
    /// the operation gets a savepoint, so that its failure undoes what it wrote.
    pub async fn connection(&mut self) -> Result<&mut AnyConnection, BillingError> {
        // The statement the caller is about to run.
        self.statements += 1;
        self.statements += self.batch.write(&mut self.transaction).await?;
        // What the operation has not written itself is in the database as the batch's layer left it.
        for (id, execution) in &mut self.operation.executions {
            if let Some(batch) = self.batch.executions.get(id).filter(|_| !execution.written) {
                execution.stored = batch.stored.clone();
            }
        }
        if !self.savepoint {
            self.savepoints("SAVEPOINT operation").await?;
            self.savepoint = true;
        }
        self.statements += self.operation.write(&mut self.transaction).await?;
        Ok(&mut *self.transaction)
    }

    /// Keeps what a succeeded operation did, or drops what a failed one did.
    pub(super) async fn end_operation(&mut self, succeeded: bool) -> Result<(), sqlx::Error> {
        let operation = mem::take(&mut self.operation);
        let savepoint = mem::replace(&mut self.savepoint, false);
        if succeeded {
            self.batch.absorb(operation);
            if savepoint {
                self.savepoints("RELEASE SAVEPOINT operation").await?;
            }
        } else if savepoint {
            // A row lock taken inside a rolled-back savepoint may be gone (PostgreSQL); the accounts the
            // operation locked lazily are dropped with the rest and locked again when needed.
            self.savepoints("ROLLBACK TO SAVEPOINT operation; RELEASE SAVEPOINT operation")
                .await?;
        }
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
        self.statements += 1;
        Ok(())
    }

    /// Writes everything staged and commits: the batch is durable when this returns. Returns the number of
    /// statements the batch sent.
    pub(super) async fn commit(mut self) -> Result<u64, sqlx::Error> {
        let operation = mem::take(&mut self.operation);
        self.batch.absorb(operation);
        self.statements += self.batch.write(&mut self.transaction).await?;
        self.statements += self
            .batch
            .write_events(&mut self.transaction, self.backend)
            .await?;
        sqlx::query("COMMIT")
            .execute(&mut *self.transaction)
            .await?;
        self.ended = true;
        Ok(self.statements + 1)
    }

    /// Rolls back everything (a lone operation that failed).
    pub(super) async fn rollback(mut self) -> Result<(), sqlx::Error> {
        sqlx::query("ROLLBACK")
            .execute(&mut *self.transaction)
            .await?;
        self.ended = true;
        Ok(())
    }

    /// The account `id`, locked for the rest of the transaction (see [`accounts::sql::lock`]).
    pub async fn lock(&mut self, id: &AccountId) -> Result<Account, BillingError> {
        if let Some((account, _)) = self.operation.accounts.get(id) {
            return Ok(account.clone());
        }
        if let Some((account, _)) = self.batch.accounts.get(id) {
            return Ok(account.clone());
        }
        self.lock_accounts(&[id]).await?;
        // Locked by the running operation: kept only if it succeeds (see `end_operation`).
        let (account, changed) = self
            .batch
            .accounts
            .remove(id)
            .ok_or(BillingError::NotFound("account"))?;
        self.operation
            .accounts
            .insert(id.clone(), (account.clone(), changed));
        Ok(account)
    }

    /// Records the new money of an account the operation locked; it is written once, before the commit.
    pub fn save(&mut self, account: &Account) {
        self.operation
            .accounts
            .insert(account.id.clone(), (account.clone(), true));
    }

    /// The key row of `id`, read once per batch.
    pub async fn key(&mut self, id: &ApiKeyId) -> Result<ApiKey, BillingError> {
        if let Some(key) = self.keys.get(id) {
            return Ok(key.clone());
        }
        let key = keys::sql::by_id(&mut self.transaction, id)
            .await?
            .ok_or(BillingError::NotFound("api key"))?;
        self.statements += 1;
        self.keys.insert(id.clone(), key.clone());
        Ok(key)
    }

    /// Forgets a key row the operation changed, so that the next read sees the change.
    pub fn forget_key(&mut self, id: &ApiKeyId) {
        self.keys.remove(id);
    }

    /// The price of `model` for `account` effective at `at` (see [`crate::prices::effective`]); its rows are
    /// read once per batch. `ModelNotPriced` when no row prices it.
    pub async fn price(
        &mut self,
        account: &AccountId,
        model: &str,
        at: Millis,
    ) -> Result<Price, BillingError> {
        if !self.priced.contains(model) {
            self.load_prices(&[model]).await?;
        }
        crate::prices::effective(&self.prices, account, model, at)
            .cloned()
            .ok_or_else(|| BillingError::ModelNotPriced {
                model: model.to_string(),
            })
    }

    /// Forgets every price row read, after an operation that wrote one.
    pub fn forget_prices(&mut self) {
        self.prices.clear();
        self.priced.clear();
    }

    /// What is known of `id`: its hold, its settlement, or neither.
    pub async fn execution(&mut self, id: &ExecutionId) -> Result<ExecutionState, BillingError> {
        if let Some(execution) = self.operation.executions.get(id) {
            return Ok(execution.state.clone());
        }
        if !self.batch.executions.contains_key(id) {
            self.load_executions(&[id]).await?;
        }
        Ok(self
            .batch
            .executions
            .get(id)
            .map_or(ExecutionState::Unused, |execution| execution.state.clone()))
    }

    /// The usage record of a settled execution, read from the database when this batch did not write it.
    pub async fn usage_of(
        &mut self,
        id: &ExecutionId,
    ) -> Result<Option<UsageRecord>, BillingError> {
        match self.execution(id).await? {
            ExecutionState::Settled(Some(record)) => Ok(Some(*record)),
            ExecutionState::Settled(None) => {
                self.statements += 1;
                Ok(usage::sql::by_execution(&mut self.transaction, id).await?)
            }
            ExecutionState::Unused | ExecutionState::Held(_) => Ok(None),
        }
    }

    /// Sets what is known of `id` (a new or grown hold, a released one); written before the commit.
    pub async fn set_execution(
        &mut self,
        id: &ExecutionId,
        state: ExecutionState,
    ) -> Result<(), BillingError> {
        if !self.operation.executions.contains_key(id) {
            self.execution(id).await?;
            let current = self
                .batch
                .executions
                .get(id)
                .cloned()
                .ok_or(BillingError::NotFound("execution"))?;
            let current = Execution {
                written: false,
                ..current
            };
            self.operation.executions.insert(id.clone(), current);
        }
        if let Some(execution) = self.operation.executions.get_mut(id) {
            execution.state = state;
        }
        Ok(())
    }

    /// Stages the usage record of a settlement (its hold goes) and returns it with its id.
    pub async fn insert_usage(
        &mut self,
        mut record: UsageRecord,
    ) -> Result<UsageRecord, BillingError> {
        record.id = self.next_id(IdOf::Usage).await?;
        self.set_execution(
            &record.execution_id,
            ExecutionState::Settled(Some(Box::new(record.clone()))),
        )
        .await?;
        self.operation.rows.usage.push(record.clone());
        Ok(record)
    }

    /// Stages a ledger row and returns it with its id and its `hash`, sealing it into its account's chain
    /// after `row.prev_hash` ([`transactions::chain`]).
    pub async fn insert_transaction(
        &mut self,
        mut row: LedgerRow,
    ) -> Result<LedgerRow, BillingError> {
        row.id = self.next_id(IdOf::Transaction).await?;
        row.hash = transactions::chain::hash(&row, &row.prev_hash);
        self.operation.rows.transactions.push(row.clone());
        Ok(row)
    }

    /// Stages a new grant.
    pub fn insert_grant(&mut self, grant: CreditGrant) {
        self.operation.rows.grants.push(grant);
    }

    /// Stages an event for the outbox and returns its id.
    pub fn emit(&mut self, event: Event) -> EventId {
        let id = event.id.clone();
        self.operation.rows.events.push(event);
        id
    }

    async fn next_id(&mut self, of: IdOf) -> Result<i64, sqlx::Error> {
        loop {
            let queue = match of {
                IdOf::Usage => &mut self.ids.usage,
                IdOf::Transaction => &mut self.ids.transactions,
            };
            if let Some(id) = queue.pop_front() {
                return Ok(id);
            }
            self.take_ids().await?;
        }
    }

    /// Takes the next block of ids for usage records and ledger rows, in one statement.
    async fn take_ids(&mut self) -> Result<(), sqlx::Error> {
        let block = i64::try_from(self.id_block.max(1)).unwrap_or(1);
        match self.backend {
            Backend::Postgres => {
                let rows: Vec<IdsRow> = sqlx::query_as(
                    "SELECT nextval(pg_get_serial_sequence('usage_records', 'id')) AS usage_id, \
                     nextval(pg_get_serial_sequence('transactions', 'id')) AS transaction_id \
                     FROM generate_series(1, $1)",
                )
                .bind(block)
                .fetch_all(&mut *self.transaction)
                .await?;
                for row in rows {
                    self.ids.usage.push_back(row.usage_id);
                    self.ids.transactions.push_back(row.transaction_id);
                }
            }
            Backend::Sqlite => {
                let (usage, transactions) = match self.ids.sqlite_last {
                    Some(last) => last,
                    None => {
                        let row: IdsRow = sqlx::query_as(
                            "SELECT MAX(COALESCE((SELECT MAX(id) FROM usage_records), 0), \
                             COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'usage_records'), 0)) \
                             AS usage_id, \
                             MAX(COALESCE((SELECT MAX(id) FROM transactions), 0), \
                             COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'transactions'), 0)) \
                             AS transaction_id",
                        )
                        .fetch_one(&mut *self.transaction)
                        .await?;
                        (row.usage_id, row.transaction_id)
                    }
                };
                self.ids.usage.extend(usage + 1..=usage + block);
                self.ids
                    .transactions
                    .extend(transactions + 1..=transactions + block);
                self.ids.sqlite_last = Some((usage + block, transactions + block));
            }
        }
        self.statements += 1;
        Ok(())
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if !self.ended {
            self.transaction.close_on_drop();
        }
    }
}

/// `items` without repeats, in their first order.
fn unique<T: Eq + std::hash::Hash>(items: &[T]) -> Vec<&T> {
    let mut seen = HashSet::new();
    items.iter().filter(|item| seen.insert(*item)).collect()
}
