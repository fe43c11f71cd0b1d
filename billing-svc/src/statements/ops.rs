//! Reading and closing statements (BILLING.md, "Statements").

use std::collections::HashMap;

use serde_json::json;

use super::{Month, Movement, Statement, check_month, number, sql};
use crate::accounts::Account;
use crate::credits::transactions::TransactionType;
use crate::error::BillingError;
use crate::events::EventType;
use crate::ledger::{Ledger, emit};
use crate::store::Shard;
use crate::time::{self, Millis};
use money::Money;
use proto::ids::AccountId;
use sqlx::AnyConnection;

/// Accounts the closing sweeper reads at a time.
const CLOSE_BATCH: i64 = 200;

impl Ledger {
    /// The account's statement of `month`: frozen once the month is closed, computed from the ledger
    /// before that.
    pub async fn statement(
        &self,
        account_id: &AccountId,
        month: Month,
    ) -> Result<Statement, BillingError> {
        let now = time::now_ms();
        let account = self.statement_account(account_id).await?;
        check_month(month, account.created_at, now, account_id)?;
        self.statement_of(&account, month, now).await
    }

    /// Every statement of the account, newest first: the current month's back to its creation month's.
    pub async fn statements(&self, account_id: &AccountId) -> Result<Vec<Statement>, BillingError> {
        let now = time::now_ms();
        let account = self.statement_account(account_id).await?;
        let mut frozen: HashMap<Month, Statement> = {
            let mut connection = self.store.reader().acquire().await?;
            sql::all_frozen(&mut connection, account_id)
                .await?
                .into_iter()
                .map(|statement| (statement.month, statement))
                .collect()
        };
        let first = Month::of(account.created_at);
        let mut month = Month::of(now);
        let mut statements = Vec::new();
        loop {
            statements.push(match frozen.remove(&month) {
                Some(statement) => statement,
                None => self.statement_of(&account, month, now).await?,
            });
            if month <= first {
                return Ok(statements);
            }
            month = month.previous();
        }
    }

    /// Freezes the statements of the month that closed last for every account that had it, each with its
    /// `statement.ready` event; `closed_through` remembers the month once every account's is frozen, so
    /// the sweeper asks again only when another month closes. Returns how many it froze.
    pub async fn close_statements(
        &self,
        closed_through: &mut Option<Month>,
    ) -> Result<usize, BillingError> {
        let now = time::now_ms();
        let last = Month::of(now).previous();
        if !last.is_closed(now) || *closed_through == Some(last) {
            return Ok(0);
        }
        let mut frozen = 0;
        loop {
            let accounts = {
                let mut connection = self.store.reader().acquire().await?;
                sql::unfrozen(&mut connection, last, CLOSE_BATCH).await?
            };
            if accounts.is_empty() {
                *closed_through = Some(last);
                return Ok(frozen);
            }
            for account_id in accounts {
                let account = self.statement_account(&account_id).await?;
                self.freeze(&account, last, now).await?;
                frozen += 1;
            }
        }
    }

    async fn statement_account(&self, account_id: &AccountId) -> Result<Account, BillingError> {
        let mut connection = self.store.reader().acquire().await?;
        crate::accounts::sql::by_id(&mut connection, account_id)
            .await?
            .ok_or(BillingError::NotFound("account"))
    }

    async fn statement_of(
        &self,
        account: &Account,
        month: Month,
        now: Millis,
    ) -> Result<Statement, BillingError> {
        if !month.is_closed(now) {
            let mut connection = self.store.reader().acquire().await?;
            return compute(&mut connection, account, month, now, false).await;
        }
        let frozen = {
            let mut connection = self.store.reader().acquire().await?;
            sql::frozen(&mut connection, &account.id, month).await?
        };
        match frozen {
            Some(statement) => Ok(statement),
            None => self.freeze(account, month, now).await,
        }
    }

    /// Freezes the closed `month`'s statement (or returns the one frozen first), in the account's shard so
    /// that one writer freezes it. The month that closed last gets its `statement.ready` event with it; an
    /// older month frozen when first read (an account older than this feature) gets none.
    async fn freeze(
        &self,
        account: &Account,
        month: Month,
        now: Millis,
    ) -> Result<Statement, BillingError> {
        let account = account.clone();
        let shard = account.id.clone();
        self.store
            .write(Shard::Account(&shard), move |batch| {
                Box::pin(async move {
                    let connection = batch.connection().await?;
                    if let Some(statement) = sql::frozen(connection, &account.id, month).await? {
                        return Ok(statement);
                    }
                    let statement = compute(connection, &account, month, now, true).await?;
                    sql::freeze(connection, &statement).await?;
                    if month == Month::of(now).previous() {
                        let data = json!({
                            "month": month.to_string(),
                            "number": statement.number,
                            "openingBalance": statement.opening_balance.to_string(),
                            "closingBalance": statement.closing_balance.to_string(),
                        });
                        emit(batch, &account.id, EventType::StatementReady, data, now);
                    }
                    Ok(statement)
                })
            })
            .await
    }
}

/// The statement of `month` from the ledger as it stands.
async fn compute(
    connection: &mut AnyConnection,
    account: &Account,
    month: Month,
    now: Millis,
    closed: bool,
) -> Result<Statement, BillingError> {
    let (start, end) = (month.start(), month.end());
    let opening_balance = sql::balance_before(connection, &account.id, start).await?;
    let closing_balance = sql::balance_before(connection, &account.id, end).await?;
    let mut statement = Statement {
        account_id: account.id.clone(),
        account_name: account.name.clone(),
        month,
        number: number(Month::of(account.created_at), month),
        closed,
        issued_at: now,
        opening_balance,
        credits: Movement::default(),
        grants: Movement::default(),
        usage: Movement::default(),
        refunds: Movement::default(),
        adjustments: Movement::default(),
        expiries: Movement::default(),
        closing_balance,
        usage_by_model: sql::usage_by_model(connection, &account.id, start, end).await?,
        volume_discounts: Money::ZERO,
    };
    for (kind, amount, count) in sql::movements(connection, &account.id, start, end).await? {
        let movement = match kind {
            TransactionType::CreditPurchase => &mut statement.credits,
            TransactionType::CreditGrant => &mut statement.grants,
            TransactionType::UsageDeduction => &mut statement.usage,
            TransactionType::Refund => &mut statement.refunds,
            TransactionType::CreditAdjustment => &mut statement.adjustments,
            TransactionType::CreditExpiry => &mut statement.expiries,
        };
        *movement = Movement { amount, count };
    }
    statement.volume_discounts = statement
        .usage_by_model
        .iter()
        .try_fold(Money::ZERO, |sum, model| {
            sum.checked_add(model.volume_discount)
        })
        .ok_or(BillingError::Overflow)?;
    if statement.opening_plus_movements() != Some(statement.closing_balance) {
        // The ledger's rows of one account are written in time order under its lock; only clocks of
        // replicas out of step across the month's boundary could break it.
        tracing::error!(account_id = %account.id, %month, "statement: opening + movements != closing balance");
    }
    Ok(statement)
}
