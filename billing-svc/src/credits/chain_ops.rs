//! The hash chain's operations (DESIGN §19, VERIFY.md): chaining the rows written before the chain existed
//! (at start, before serving), walking every account's chain for the audit, and an account's head.

use crate::credits::transactions::chain::{self, Break};
use crate::credits::transactions::{self, Transaction};
use crate::error::BillingError;
use crate::ledger::Ledger;
use crate::store::Shard;
use proto::ids::AccountId;
use sqlx::AnyConnection;

/// Accounts chained per read of the unchained ones.
const UNCHAINED_BATCH: i64 = 100;

/// An account's latest ledger row: where its chain ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerHead {
    pub account_id: AccountId,
    /// `None` before the account's first row.
    pub transaction_id: Option<i64>,
    /// [`chain::GENESIS`] before the first row.
    pub hash: String,
}

impl Ledger {
    /// Chains the rows written before the chain existed, account by account in id order after its last
    /// chained row, each account in one transaction under its lock (so several processes starting at once
    /// chain it once). Rows already chained are never rewritten: an emptied hash before a chained row is left
    /// for the audit to name. Returns how many rows it chained.
    pub async fn chain_unchained_rows(&self) -> Result<u64, BillingError> {
        let mut chained = 0;
        loop {
            let accounts = {
                let mut connection = self.store.reader().acquire().await?;
                transactions::sql::unchained_accounts(&mut connection, UNCHAINED_BATCH).await?
            };
            if accounts.is_empty() {
                if chained > 0 {
                    tracing::info!(
                        rows = chained,
                        "chained the ledger rows written before the chain"
                    );
                }
                return Ok(chained);
            }
            for account_id in accounts {
                let shard = account_id.clone();
                chained += self
                    .store
                    .write(Shard::Account(&shard), move |batch| {
                        Box::pin(async move {
                            let mut account = batch.lock(&account_id).await?;
                            let (mut after, mut prev) = transactions::sql::last_chained(
                                batch.connection().await?,
                                &account_id,
                            )
                            .await?
                            .unwrap_or((0, chain::GENESIS.to_string()));
                            let mut count = 0;
                            loop {
                                let connection = batch.connection().await?;
                                let rows = transactions::sql::chain_page(
                                    connection,
                                    &account_id,
                                    after,
                                    chain::PAGE,
                                )
                                .await?;
                                let Some(last) = rows.last() else { break };
                                after = last.id;
                                for mut row in rows {
                                    row.prev_hash = prev;
                                    row.hash = chain::hash(&row, &row.prev_hash);
                                    transactions::sql::set_chain(connection, &row).await?;
                                    prev = row.hash;
                                    count += 1;
                                }
                            }
                            account.ledger_hash = prev;
                            batch.save(&account);
                            Ok(count)
                        })
                    })
                    .await?;
            }
        }
    }

    /// The account's latest row and its hash (`GET /billing/ledger/head`).
    pub async fn ledger_head(&self, account_id: &AccountId) -> Result<LedgerHead, BillingError> {
        let account = self.account(account_id).await?;
        let mut connection = self.store.reader().acquire().await?;
        let last = transactions::sql::last(&mut connection, account_id).await?;
        Ok(LedgerHead {
            account_id: account.id.clone(),
            transaction_id: last.as_ref().map(|row| row.id),
            hash: account.ledger_head().to_string(),
        })
    }
}

/// Walks every account's chain; one line per account whose chain breaks, naming its first broken row (the
/// audit's part, BILLING.md "The ledger").
pub async fn verify_chains(connection: &mut AnyConnection) -> Result<Vec<String>, sqlx::Error> {
    let accounts: Vec<(String, String)> =
        sqlx::query_as("SELECT id, ledger_hash FROM billing_accounts ORDER BY id")
            .fetch_all(&mut *connection)
            .await?;
    let mut broken = Vec::new();
    for (id, head) in accounts {
        let account_id = AccountId::from(id);
        if let Some(problem) = verify_chain(connection, &account_id, &head).await? {
            broken.push(format!("account {account_id}: {problem}"));
        }
    }
    Ok(broken)
}

/// The first break of one account's chain, in words.
async fn verify_chain(
    connection: &mut AnyConnection,
    account_id: &AccountId,
    head: &str,
) -> Result<Option<String>, sqlx::Error> {
    let mut prev = chain::GENESIS.to_string();
    let mut after = 0;
    let mut last: Option<Transaction> = None;
    loop {
        let rows =
            transactions::sql::chain_page(connection, account_id, after, chain::PAGE).await?;
        let Some(page_last) = rows.last() else { break };
        after = page_last.id;
        for row in rows {
            match chain::check(&row, &prev) {
                Ok(hash) => prev = hash,
                Err(Break::Link { expected, found }) => {
                    return Ok(Some(format!(
                        "ledger row {} does not follow the row before it (prev_hash {found}, the chain has \
                         {expected}): a row before it was removed, inserted or reordered",
                        row.id
                    )));
                }
                Err(Break::Seal { expected, found }) => {
                    return Ok(Some(format!(
                        "ledger row {} was changed (hash {found}, its fields hash to {expected})",
                        row.id
                    )));
                }
            }
            last = Some(row);
        }
    }
    let expected_head = last.as_ref().map_or("", |row| row.hash.as_str());
    if head != expected_head {
        return Ok(Some(match last {
            Some(row) => format!(
                "the account's head is {head}, not its last ledger row {}'s hash: rows after it were removed",
                row.id
            ),
            None => format!(
                "the account's head is {head} but it has no ledger rows: its rows were removed"
            ),
        }));
    }
    Ok(None)
}
