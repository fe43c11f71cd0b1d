//! Keys by hash, kept in memory so that a call does not read `api_keys` to authenticate.
//!
//! Revocation (and rotation, and a policy change) still takes effect on the next call:
//! - a revocation made through this process drops the key from the cache before it is answered;
//! - every operation that moves money (open of an execution) reads the key row again inside its own
//!   transaction and refuses a revoked or expired key (or a rotated-out secret past its grace period)
//!   there, whatever the cache holds, so a key revoked through another billing-svc process sharing the
//!   database cannot hold or spend either;
//! - read-only calls on another process see such a revocation once the entry is older than [`TTL`].
//!
//! Only keys that exist are cached (a flood of unknown keys cannot fill it), and the cache is bounded.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::Found;
use proto::ids::ApiKeyId;

/// How long an entry is trusted before the key row is read again.
pub const TTL: Duration = Duration::from_secs(5);
/// Most keys kept; when full the cache starts afresh.
const CAPACITY: usize = 100_000;

#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    found: Found,
    read_at: Instant,
}

impl KeyCache {
    fn entries(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // Every update is a single insert or remove: a panic elsewhere cannot leave an entry half-written.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key of `hash` if it was read less than [`TTL`] ago.
    pub fn get(&self, hash: &str) -> Option<Found> {
        self.entries()
            .get(hash)
            .filter(|entry| entry.read_at.elapsed() < TTL)
            .map(|entry| entry.found.clone())
    }

    /// Remembers a key just read from the database.
    pub fn insert(&self, hash: String, found: &Found) {
        let mut entries = self.entries();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(
            hash,
            Entry {
                found: found.clone(),
                read_at: Instant::now(),
            },
        );
    }

    /// Drops every secret of the key `id` (after it was revoked, rotated or changed).
    pub fn forget(&self, id: &ApiKeyId) {
        self.entries().retain(|_, entry| &entry.found.key.id != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{ApiKey, KeyType, Role};
    use proto::ids::AccountId;

    fn found(id: &str) -> Found {
        Found {
            key: ApiKey {
                id: ApiKeyId::from(id),
                account_id: AccountId::from("account"),
                name: "test".into(),
                key_type: KeyType::Standard,
                role: Role::Owner,
                policy: Default::default(),
                prefix: "sk-".into(),
                hint: "…abcd".into(),
                created_at: 0,
                revoked_at: None,
                expires_at: None,
                previous_key_expires_at: None,
                rotated_at: None,
            },
            previous_secret: false,
        }
    }

    #[test]
    fn a_forgotten_key_is_read_again() {
        let cache = KeyCache::default();
        cache.insert("hash-a".into(), &found("a"));
        cache.insert("hash-b".into(), &found("b"));
        assert_eq!(
            cache.get("hash-a").map(|f| f.key.id),
            Some(ApiKeyId::from("a"))
        );
        cache.forget(&ApiKeyId::from("a"));
        assert!(cache.get("hash-a").is_none());
        assert_eq!(
            cache.get("hash-b").map(|f| f.key.id),
            Some(ApiKeyId::from("b"))
        );
        assert!(cache.get("hash-unknown").is_none());
    }
}
