//! Console sessions (CONSOLE.md, "Sessions and security"): signing in with a customer key or the admin key
//! creates a session whose token (`tbs_<64 hex>`, shown once, kept by the browser in an HttpOnly cookie) is
//! then the bearer of the console's calls. billing-svc stores only its SHA-256, so every gateway replica sees
//! the same sessions. A
//! session ends at its expiry, at sign-out, or when the key that opened it is revoked or expires (checked on
//! every call, not cached).

pub mod sql;

use proto::ids::ApiKeyId;
use rand::RngCore;

use crate::error::BillingError;
use crate::keys;
use crate::store::{Shard, Store};
use crate::time::{self, Millis};

/// What a session token starts with.
pub const TOKEN_PREFIX: &str = "tbs_";
/// Ended and expired sessions are forgotten this long after.
const KEEP_ENDED_MS: Millis = 86_400_000;

/// One console session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_hash: String,
    /// The key that signed in; `None` for the operator.
    pub api_key_id: Option<ApiKeyId>,
    pub csrf_token: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub ended_at: Option<Millis>,
}

/// Who signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Operator,
    Key(ApiKeyId),
}

/// A new session: its token (never stored) and its row.
#[derive(Debug, Clone)]
pub struct Opened {
    pub token: String,
    pub session: Session,
}

/// The sessions, on billing-svc's database.
#[derive(Clone)]
pub struct Sessions {
    store: Store,
    ttl_ms: Millis,
}

impl Sessions {
    pub fn new(store: Store, ttl_ms: Millis) -> Sessions {
        Sessions { store, ttl_ms }
    }

    /// Opens a session for an authenticated principal.
    pub async fn open(&self, principal: Principal) -> Result<Opened, BillingError> {
        let token = format!("{TOKEN_PREFIX}{}", random_hex());
        let now = time::now_ms();
        let session = Session {
            token_hash: keys::hash(&token),
            api_key_id: match principal {
                Principal::Operator => None,
                Principal::Key(id) => Some(id),
            },
            csrf_token: random_hex(),
            created_at: now,
            expires_at: now + self.ttl_ms,
            ended_at: None,
        };
        let stored = session.clone();
        self.store
            .write(Shard::Sessions, move |batch| {
                Box::pin(async move { Ok(sql::insert(batch.connection().await?, &stored).await?) })
            })
            .await?;
        Ok(Opened { token, session })
    }

    /// The live session of a token; `None` when the token is no session at all (it may be a key).
    pub async fn find(&self, token: &str) -> Result<Option<Session>, BillingError> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let mut connection = self.store.reader().acquire().await?;
        let Some(session) = sql::by_hash(&mut connection, &keys::hash(token)).await? else {
            return Ok(None);
        };
        if session.ended_at.is_some() || session.expires_at <= time::now_ms() {
            return Err(BillingError::SessionEnded);
        }
        Ok(Some(session))
    }

    /// Ends the session of a token (sign-out); ending it twice is fine.
    pub async fn end(&self, token: &str) -> Result<(), BillingError> {
        let hash = keys::hash(token);
        self.store
            .write(Shard::Sessions, move |batch| {
                Box::pin(async move {
                    sql::end(batch.connection().await?, &hash, time::now_ms()).await?;
                    Ok(())
                })
            })
            .await
    }

    /// Forgets sessions that ended or expired more than a day ago.
    pub async fn purge(&self) -> Result<u64, BillingError> {
        let before = time::now_ms() - KEEP_ENDED_MS;
        self.store
            .write(Shard::Sessions, move |batch| {
                Box::pin(async move { Ok(sql::purge(batch.connection().await?, before).await?) })
            })
            .await
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}
