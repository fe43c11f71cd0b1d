//! Notices of a key's coming expiry, sent by the same sweeper as the expiry of grants.
//!
//! The sweep gives keys their `key.expiring` notices (BILLING.md, "Events and alerts"): 7 days and 1 day
//! before `expiresAt`, each once (a key created or changed to expire within a day gets only the 1-day one).

use proto::ids::{AccountId, ApiKeyId};
use serde_json::json;

use crate::error::BillingError;
use crate::events::EventType;
use crate::keys;
use crate::ledger::{Ledger, emit};
use crate::store::{Batch, Shard};
use crate::time::{self, Millis};

/// Keys given notice per sweep.
const NOTICE_BATCH: i64 = 500;
const DAY_MS: Millis = 86_400_000;

impl Ledger {
    /// Gives the keys whose expiry is near their due `key.expiring` notice. Returns how many were sent.
    pub async fn notify_expiring_keys(&self) -> Result<usize, BillingError> {
        let now = time::now_ms();
        let due = {
            let mut connection = self.store.reader().acquire().await?;
            keys::sql::expiry_notices_due(&mut connection, now, NOTICE_BATCH).await?
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
    if !keys::sql::set_expiry_notice(batch.connection().await?, &key_id, notice).await? {
        return Ok(false);
    }
    let data = json!({
        "keyId": key_id.as_str(), "name": key.name, "expiresAt": time::to_rfc3339(expires_at),
        "within": within,
    });
    emit(batch, account_id, EventType::KeyExpiring, data, now);
    Ok(true)
}
