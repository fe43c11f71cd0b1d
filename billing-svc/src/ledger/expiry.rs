//! The expiry of grants, run by the service itself (the same kind of sweeper as the release of expired
//! holds): at `expiresAt` a grant's remainder leaves the balance as a `credit_expiry` transaction. An active
//! hold is never broken: it settles later and whatever the grants no longer cover becomes overage.
//!
//! Safe with several billing-svc processes on one database: each expiry runs under the account's lock and
//! acts only on a grant that still holds credit, and its ledger row carries the idempotency key
//! `expiry:<grant id>`, so a grant expires once.
//!
//! The same sweep gives keys their `key.expiring` notices (BILLING.md, "Events and alerts"): 7 days and 1 day
//! before `expiresAt`, each once (a key created or changed to expire within a day gets only the 1-day one).

use proto::ids::{AccountId, ApiKeyId, GrantId};
use serde_json::json;

use super::{Entry, GrantEffect, Ledger, emit};
use crate::error::BillingError;
use crate::store::events::EventType;
use crate::store::transactions::TransactionType;
use crate::store::{self, Batch, Shard};
use crate::time::{self, Millis};

/// Grants expired (and keys given notice) per sweep.
const EXPIRY_BATCH: i64 = 500;
const DAY_MS: Millis = 86_400_000;

impl Ledger {
    /// Expires the grants whose time has come, one account transaction each. Returns how many expired.
    pub async fn expire_grants(&self) -> Result<usize, BillingError> {
        let now = time::now_ms();
        let candidates = {
            let mut connection = self.store.reader().acquire().await?;
            store::grants::expired(&mut connection, now, EXPIRY_BATCH).await?
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

    /// Gives the keys whose expiry is near their due `key.expiring` notice. Returns how many were sent.
    pub async fn notify_expiring_keys(&self) -> Result<usize, BillingError> {
        let now = time::now_ms();
        let due = {
            let mut connection = self.store.reader().acquire().await?;
            store::keys::expiry_notices_due(&mut connection, now, EXPIRY_BATCH).await?
        };
        let mut sent = 0;
        for (key_id, account_id) in due {
            let shard = account_id.clone();
            let done = self
                .store
                .write(Shard::Account(&shard), move |batch| {
                    Box::pin(async move { notify_in(batch, &account_id, key_id, now).await })
                })
                .await?;
            sent += usize::from(done);
        }
        Ok(sent)
    }
}

/// Sends a key its due notice, once; false when it is not due (any more).
async fn notify_in(
    batch: &mut Batch,
    account_id: &AccountId,
    key_id: ApiKeyId,
    now: Millis,
) -> Result<bool, BillingError> {
    batch.lock(account_id).await?;
    let key = batch.key(&key_id).await?;
    let Some(expires_at) = key.expires_at.filter(|at| *at > now) else {
        return Ok(false);
    };
    if key.revoked_at.is_some() {
        return Ok(false);
    }
    let (notice, within) = if expires_at - now <= DAY_MS {
        (2, "1d")
    } else if expires_at - now <= 7 * DAY_MS {
        (1, "7d")
    } else {
        return Ok(false);
    };
    if !store::keys::set_expiry_notice(batch.connection().await?, &key_id, notice).await? {
        return Ok(false);
    }
    let data = json!({
        "keyId": key_id.as_str(), "name": key.name, "expiresAt": time::to_rfc3339(expires_at),
        "within": within,
    });
    emit(batch, account_id, EventType::KeyExpiring, data, now);
    Ok(true)
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
