//! The expiry of grants, run by the service itself (the same kind of sweeper as the release of expired
//! holds): at `expiresAt` a grant's remainder leaves the balance as a `credit_expiry` transaction. An active
//! hold is never broken: it settles later and whatever the grants no longer cover becomes overage.
//!
//! Safe with several billing-svc processes on one database: each expiry runs under the account's lock and
//! acts only on a grant that still holds credit, and its ledger row carries the idempotency key
//! `expiry:<grant id>`, so a grant expires once.

use proto::ids::{AccountId, GrantId};
use serde_json::json;

use crate::credits::transactions::TransactionType;
use crate::error::BillingError;
use crate::ledger::{Entry, GrantEffect, Ledger};
use crate::store::{Batch, Shard};
use crate::time::{self, Millis};

/// Grants expired per sweep.
const EXPIRY_BATCH: i64 = 500;

impl Ledger {
    /// Expires the grants whose time has come, one account transaction each. Returns how many expired.
    pub async fn expire_grants(&self) -> Result<usize, BillingError> {
        let now = time::now_ms();
        let candidates = {
            let mut connection = self.store.reader().acquire().await?;
            crate::credits::grants::sql::expired(&mut connection, now, EXPIRY_BATCH).await?
        };
        let mut expired = 0;
        for (grant_id, account_id) in candidates {
            let shard = account_id.clone();
            let done = self
                .store
                .write(Shard::Account(&shard), move |batch| {
                    Box::pin(async move { expire_in(batch, &account_id, grant_id, now).await })
                })
                .await?;
            expired += usize::from(done);
        }
        Ok(expired)
    }
}

/// Expires one grant if it still holds credit and its time has come; false when there was nothing to do.
async fn expire_in(
    batch: &mut Batch,
    account_id: &AccountId,
    grant_id: GrantId,
    now: Millis,
) -> Result<bool, BillingError> {
    let mut account = batch.lock(account_id).await?;
    let Some(grant) = account
        .grants
        .iter()
        .find(|grant| grant.id == grant_id)
        .filter(|grant| grant.expires_at.is_some_and(|expires_at| expires_at <= now))
    else {
        return Ok(false);
    };
    let entry = Entry {
        kind: TransactionType::CreditExpiry,
        grant: GrantEffect::Expire(grant.id.clone()),
        api_key_id: None,
        amount: grant.remaining.negated(),
        description: format!("Credit expired ({} grant)", grant.category.as_str()),
        metadata: json!({}),
        idempotency_key: Some(format!("expiry:{grant_id}")),
    };
    let (transaction, _) = Ledger::post(batch, &mut account, entry, now).await?;
    batch.save(&account);
    tracing::info!(%grant_id, amount = %transaction.amount, "grant expired");
    Ok(true)
}
