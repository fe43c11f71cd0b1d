//! Keys by hash, kept in memory so that a call does not read `api_keys` to authenticate.
//!
//! Revocation still takes effect on the next call:
//! - a revocation made through this process drops the key from the cache before it is answered;
//! - every operation that moves money (open of an execution) reads the key row again inside its own
//!   transaction and refuses a revoked or expired key there, whatever the cache holds, so a key revoked
//!   through another billing-svc process sharing the database cannot reserve or spend either;
//! - read-only calls on another process see such a revocation once the entry is older than [`TTL`].
//!
//! Only keys that exist are cached (a flood of unknown keys cannot fill it), and the cache is bounded.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::store::keys::ApiKey;

/// How long an entry is trusted before the key row is read again.
pub const TTL: Duration = Duration::from_secs(5);
/// Most keys kept; when full the cache starts afresh.
const CAPACITY: usize = 100_000;

#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    key: ApiKey,
    read_at: Instant,
}

impl KeyCache {
    fn entries(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // Every update is a single insert or remove: a panic elsewhere cannot leave an entry half-written.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key of `hash` if it was read less than [`TTL`] ago.
    pub fn get(&self, hash: &str) -> Option<ApiKey> {
        self.entries()
            .get(hash)
            .filter(|entry| entry.read_at.elapsed() < TTL)
            .map(|entry| entry.key.clone())
    }

    /// Remembers a key just read from the database.
    pub fn insert(&self, hash: String, key: &ApiKey) {
        let mut entries = self.entries();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(
            hash,
            Entry {
                key: key.clone(),
                read_at: Instant::now(),
            },
        );
    }

    /// Drops the key `id` (after it was revoked).
    pub fn forget(&self, id: &str) {
        self.entries().retain(|_, entry| entry.key.id != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyType;

    fn key(id: &str) -> ApiKey {
        ApiKey {
            id: id.into(),
            name: "test".into(),
            key_type: KeyType::Standard,
            prefix: "sk-".into(),
            hint: "…abcd".into(),
            created_at: 0,
            revoked_at: None,
            expires_at: None,
        }
    }

    #[test]
    fn a_forgotten_key_is_read_again() {
        let cache = KeyCache::default();
        cache.insert("hash-a".into(), &key("a"));
        cache.insert("hash-b".into(), &key("b"));
        assert_eq!(cache.get("hash-a").map(|k| k.id), Some("a".into()));
        cache.forget("a");
        assert!(cache.get("hash-a").is_none());
        assert_eq!(cache.get("hash-b").map(|k| k.id), Some("b".into()));
        assert!(cache.get("hash-unknown").is_none());
    }
}
