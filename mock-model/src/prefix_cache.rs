//! The bounded, in-memory store of prompt-prefix keys behind both APIs' prompt caches: Anthropic's rules
//! are in [`crate::messages::cache`], OpenAI's in [`crate::completion::cache`]; this module only keeps
//! keys alive and forgets them.
//!
//! A key is the SHA-256 of the model name and the prompt up to a place a cached prefix may end, built by
//! [`PrefixHasher`]. The store holds at most [`CAPACITY`] keys, each alive for its TTL after it was last
//! written or read; when full, the expired entries go first, then the least recently used one.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The most prefixes one store keeps.
pub const CAPACITY: usize = 1_000;

/// The SHA-256 of a prompt prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key(pub [u8; 32]);

/// How long an entry lives after it was last written or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    FiveMinutes,
    OneHour,
}

impl Ttl {
    pub fn duration(self) -> Duration {
        match self {
            Ttl::FiveMinutes => Duration::from_secs(5 * 60),
            Ttl::OneHour => Duration::from_secs(60 * 60),
        }
    }
}

/// Builds the keys of a prompt's prefixes, item by item in prompt order.
#[derive(Debug, Clone)]
pub struct PrefixHasher(Sha256);

impl PrefixHasher {
    /// A hasher whose keys belong to `model` alone.
    pub fn new(model: &str) -> PrefixHasher {
        let mut hasher = PrefixHasher(Sha256::new());
        hasher.push("model", &Value::String(model.into()));
        hasher
    }

    /// Feeds one item of the prompt: its kind, then its compact JSON.
    pub fn push(&mut self, kind: &str, item: &Value) {
        self.0.update(kind.as_bytes());
        self.0.update([0]);
        match serde_json::to_vec(item) {
            Ok(bytes) => self.0.update(&bytes),
            Err(error) => tracing::warn!(%error, "prompt item does not serialise; not hashed"),
        }
        self.0.update([0]);
    }

    /// The key of the prefix fed so far.
    pub fn key(&self) -> Key {
        Key(self.0.clone().finalize().into())
    }
}

/// A bounded store of prefix keys, shared by every request of one API.
#[derive(Debug, Default)]
pub struct PrefixCache {
    entries: Mutex<Entries>,
}

impl PrefixCache {
    /// The entries, locked: one request reads and writes them under one lock, so two requests never
    /// interleave their reads and writes.
    pub fn lock(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    expires_at: Instant,
    /// What a read extends its life by.
    ttl: Ttl,
    /// When it was last written or read, in uses of the store.
    last_used: u64,
}

/// The keys of a [`PrefixCache`], at most [`CAPACITY`].
#[derive(Debug, Default)]
pub struct Entries {
    map: HashMap<Key, Entry>,
    uses: u64,
}

impl Entries {
    /// Whether `key` is cached and alive; a hit is used again and lives a TTL more.
    pub fn read(&mut self, key: Key, now: Instant) -> bool {
        self.uses += 1;
        let uses = self.uses;
        match self.map.get_mut(&key) {
            Some(entry) if entry.expires_at > now => {
                entry.expires_at = entry.expires_at.max(now + entry.ttl.duration());
                entry.last_used = uses;
                true
            }
            Some(_) | None => false,
        }
    }

    /// Caches `key` for `ttl` from `now` (an entry alive for longer keeps its longer life and TTL).
    pub fn write(&mut self, key: Key, ttl: Ttl, now: Instant) {
        self.uses += 1;
        if !self.map.contains_key(&key) && self.map.len() >= CAPACITY {
            self.map.retain(|_, entry| entry.expires_at > now);
            if self.map.len() >= CAPACITY
                && let Some(oldest) = self
                    .map
                    .iter()
                    .min_by_key(|(_, entry)| entry.last_used)
                    .map(|(key, _)| *key)
            {
                self.map.remove(&oldest);
            }
        }
        let expires_at = now + ttl.duration();
        let entry = self.map.entry(key).or_insert(Entry {
            expires_at,
            ttl,
            last_used: self.uses,
        });
        if entry.expires_at <= now {
            // An expired entry is written afresh.
            entry.ttl = ttl;
        } else if ttl == Ttl::OneHour {
            entry.ttl = Ttl::OneHour;
        }
        entry.expires_at = entry.expires_at.max(expires_at);
        entry.last_used = self.uses;
        debug_assert!(self.map.len() <= CAPACITY);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn key(index: usize) -> Key {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&(index as u64).to_le_bytes());
        Key(bytes)
    }

    #[test]
    fn the_store_keeps_at_most_its_capacity_forgetting_the_least_recently_used() {
        let mut entries = Entries::default();
        let now = Instant::now();
        for index in 0..CAPACITY {
            entries.write(key(index), Ttl::FiveMinutes, now);
        }
        assert!(entries.read(key(0), now));
        entries.write(key(CAPACITY), Ttl::FiveMinutes, now);
        assert_eq!(entries.map.len(), CAPACITY);
        assert!(entries.read(key(0), now), "recently read, kept");
        assert!(!entries.read(key(1), now), "least recently used, forgotten");
    }

    #[test]
    fn a_read_extends_an_entry_by_its_ttl_and_an_expired_one_is_missed() {
        let mut entries = Entries::default();
        let now = Instant::now();
        entries.write(key(0), Ttl::FiveMinutes, now);
        let four_minutes = Duration::from_secs(4 * 60);
        assert!(entries.read(key(0), now + four_minutes));
        assert!(entries.read(key(0), now + 2 * four_minutes), "refreshed");
        assert!(!entries.read(key(0), now + 5 * four_minutes), "expired");
    }

    #[test]
    fn keys_depend_on_the_model_and_every_item_fed() {
        let mut hasher = PrefixHasher::new("m");
        let empty = hasher.key();
        hasher.push(
            "message",
            &serde_json::json!({ "role": "user", "content": "Hi" }),
        );
        assert_ne!(hasher.key(), empty);
        assert_ne!(PrefixHasher::new("n").key(), empty);
        assert_eq!(PrefixHasher::new("m").key(), empty);
    }
}
