//! Ledger rows the operator writes: credits (as grants), adjustments and refunds (BILLING.md, "The ledger", "Credit grants"
//! and "Idempotency"); and the reads of an account's grants and ledger rows.

use serde_json::json;

use crate::accounts::Account;
use crate::credits::grants::{self, Category, CreditGrant};
use crate::credits::transactions::{self, Transaction, TransactionType};
use crate::error::BillingError;
use crate::ledger::{
    Entry, GrantEffect, GrantTerms, Ledger, Page, View, cursor, page, page_size, validate_text,
};
use crate::store::{Batch, Shard};
use crate::time;
use crate::usage;
use money::Money;
use proto::ids::{AccountId, ApiKeyId};

const MAX_DESCRIPTION_CHARS: usize = 500;
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;

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

    /// The grants of an account, live ones first in spending order (spent and expired ones too when asked).
    pub async fn list_grants(
        &self,
        id: &AccountId,
        include_spent: bool,
    ) -> Result<Vec<CreditGrant>, BillingError> {
        let mut connection = self.store.reader().acquire().await?;
        Ok(grants::sql::list(&mut connection, id, include_spent).await?)
    }

    pub async fn list_transactions(
        &self,
        view: &View,
        kind: Option<TransactionType>,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page<Transaction>, BillingError> {
        let limit = page_size(limit)?;
        let before = cursor(after)?;
        let mut connection = self.store.reader().acquire().await?;
        let rows = transactions::sql::list(
            &mut connection,
            &view.account_id,
            view.api_key_id.as_ref(),
            kind,
            before,
            limit + 1,
        )
        .await?;
        Ok(page(rows, limit, |transaction| transaction.id))
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
            transactions::sql::by_idempotency_key(
                batch.connection().await?,
                &request.account_id,
                key,
            )
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
pub(crate) async fn replayed(
    batch: &mut Batch,
    first: Transaction,
    account: Account,
) -> Result<LedgerWrite, BillingError> {
    let grant =
        crate::credits::grants::sql::by_transaction(batch.connection().await?, first.id).await?;
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
    let record = usage::sql::by_id(
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
    if let Some(first) = transactions::sql::by_idempotency_key(
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
    usage::sql::set_refunded(batch.connection().await?, request.record_id, amount).await?;
    batch.save(&account);
    Ok(LedgerWrite {
        transaction,
        account,
        grant,
    })
}
