//! Prompt caching as Anthropic does it, in memory: what a request reads from the cache, what it writes,
//! and what it pays in full.
//!
//! The cache keeps keys of prompt prefixes (see [`super::prompt::Boundary`]) in a [`PrefixCache`], bounded
//! and forgetting the least recently used, each alive for its TTL (`5m` by default, `1h` when the
//! breakpoint says) after it was last written or read.
//!
//! For a request whose prompt carries `cache_control` breakpoints (the last one at boundary `L`):
//! 1. read: the longest prefix ending at a boundary up to `L` whose key is cached counts as
//!    `cache_read_input_tokens` (its entry's TTL is refreshed);
//! 2. write: each breakpoint after that prefix writes its key, and the tokens from the end of the previous
//!    breakpoint (or of the read prefix) up to it count as `cache_creation_input_tokens`, in
//!    `ephemeral_5m_input_tokens` or `ephemeral_1h_input_tokens` by its TTL;
//! 3. the rest (after `L`, and the reply priming) counts as `input_tokens`.
//!
//! Without a breakpoint nothing is read or written. The same request sent twice therefore writes its
//! prefix the first time and reads it the second. Unlike Anthropic, any prefix is cached, however short
//! (Anthropic caches from 1,024 tokens on), so tests need no long prompts.

use std::time::Instant;

use super::prompt::{Boundary, Prompt};
use crate::prefix_cache::{PrefixCache, Ttl};

/// How a request's prompt tokens split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PromptUsage {
    /// `input_tokens`: not read from the cache, not written to it.
    pub uncached: u64,
    /// `cache_read_input_tokens`.
    pub read: u64,
    /// `cache_creation.ephemeral_5m_input_tokens`.
    pub written_5m: u64,
    /// `cache_creation.ephemeral_1h_input_tokens`.
    pub written_1h: u64,
}

impl PromptUsage {
    /// `cache_creation_input_tokens`.
    pub fn written(&self) -> u64 {
        self.written_5m + self.written_1h
    }
}

/// The prompt prefixes Messages requests cached, shared by every request.
#[derive(Debug, Default)]
pub struct PromptCache {
    prefixes: PrefixCache,
}

impl PromptCache {
    /// Reads and writes the cache for `prompt` (see the module docs) and says how its tokens split.
    pub fn apply(&self, prompt: &Prompt<'_, '_>, now: Instant) -> PromptUsage {
        let boundaries = prompt.boundaries();
        let total = prompt.tokens();
        let Some(last) = boundaries
            .iter()
            .rposition(|boundary| boundary.breakpoint.is_some())
        else {
            return PromptUsage {
                uncached: total,
                ..PromptUsage::default()
            };
        };
        let candidates = &boundaries[..=last];
        let mut entries = self.prefixes.lock();
        let hit = candidates
            .iter()
            .rposition(|boundary| entries.read(boundary.key, now));
        for boundary in candidates {
            if let Some(ttl) = boundary.breakpoint {
                entries.write(boundary.key, ttl, now);
            }
        }
        drop(entries);
        split(prompt, candidates, hit, total)
    }
}

/// The split of `total` prompt tokens when `candidates` (up to the last breakpoint) end in a breakpoint
/// and the prefix ending at `candidates[hit]` was read (see the module docs).
fn split(
    prompt: &Prompt<'_, '_>,
    candidates: &[Boundary],
    hit: Option<usize>,
    total: u64,
) -> PromptUsage {
    let read = hit.map_or(0, |hit| prompt.tokens_through(candidates[hit].at));
    let mut usage = PromptUsage {
        read,
        ..PromptUsage::default()
    };
    let mut covered = read;
    let after_hit = hit.map_or(0, |hit| hit + 1);
    for boundary in &candidates[after_hit..] {
        let Some(ttl) = boundary.breakpoint else {
            continue;
        };
        let through = prompt.tokens_through(boundary.at);
        let fresh = through.saturating_sub(covered);
        match ttl {
            Ttl::FiveMinutes => usage.written_5m += fresh,
            Ttl::OneHour => usage.written_1h += fresh,
        }
        covered = covered.max(through);
    }
    usage.uncached = total.saturating_sub(covered);
    debug_assert_eq!(
        usage.uncached + usage.read + usage.written(),
        total.max(covered)
    );
    usage
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::messages::prompt::Position;
    use crate::messages::request::{MessagesRequest, Purpose};
    use serde_json::{Value, json};
    use std::time::Duration;

    fn cached(text: &str, ttl: &str) -> Value {
        json!({ "type": "text", "text": text, "cache_control": { "type": "ephemeral", "ttl": ttl } })
    }

    fn usage(cache: &PromptCache, body: &Value, now: Instant) -> (PromptUsage, u64) {
        let request = MessagesRequest::parse(body, Purpose::Message).unwrap();
        let prompt = Prompt::new(&request);
        (cache.apply(&prompt, now), prompt.tokens())
    }

    #[test]
    fn the_same_request_twice_writes_then_reads() {
        let cache = PromptCache::default();
        let body = json!({ "model": "m", "max_tokens": 5,
            "system": [cached("You are a careful assistant.", "5m")],
            "messages": [{ "role": "user", "content": "Hi" }] });
        let now = Instant::now();
        let (first, total) = usage(&cache, &body, now);
        assert_eq!(first.read, 0);
        assert!(first.written_5m > 0);
        assert_eq!(first.written_1h, 0);
        assert_eq!(first.uncached + first.written(), total);
        let (second, _) = usage(&cache, &body, now);
        assert_eq!(second.read, first.written_5m);
        assert_eq!(second.written(), 0);
        assert_eq!(second.uncached, first.uncached);
    }

    #[test]
    fn a_longer_conversation_reads_the_prefix_an_earlier_turn_wrote() {
        let cache = PromptCache::default();
        let now = Instant::now();
        let turn_one = json!({ "model": "m", "max_tokens": 5, "messages": [
            { "role": "user", "content": [cached("What is the capital of France?", "5m")] } ] });
        let (one, _) = usage(&cache, &turn_one, now);
        let turn_two = json!({ "model": "m", "max_tokens": 5, "messages": [
            { "role": "user", "content": [{ "type": "text", "text": "What is the capital of France?" }] },
            { "role": "assistant", "content": "Paris." },
            { "role": "user", "content": [cached("And of Italy?", "5m")] } ] });
        let (two, total) = usage(&cache, &turn_two, now);
        assert_eq!(two.read, one.written_5m);
        assert!(two.written_5m > 0);
        assert_eq!(two.read + two.written() + two.uncached, total);
        assert_eq!(two.uncached, crate::prompt::REPLY_PRIMING_TOKENS);
    }

    #[test]
    fn one_hour_breakpoints_are_written_apart_from_five_minute_ones() {
        let cache = PromptCache::default();
        let body = json!({ "model": "m", "max_tokens": 5,
            "system": [cached("Long-lived instructions.", "1h")],
            "messages": [{ "role": "user", "content": [cached("Short-lived question?", "5m")] }] });
        let request = MessagesRequest::parse(&body, Purpose::Message).unwrap();
        let prompt = Prompt::new(&request);
        let usage = cache.apply(&prompt, Instant::now());
        let system = prompt.tokens_through(Position::System { through: 0 });
        assert_eq!(usage.written_1h, system);
        assert_eq!(
            usage.written_5m,
            prompt.tokens_through(Position::Message {
                message: 0,
                through: 0
            }) - system
        );
    }

    #[test]
    fn without_a_breakpoint_nothing_is_cached() {
        let cache = PromptCache::default();
        let body = json!({ "model": "m", "max_tokens": 5, "messages": [{ "role": "user", "content": "Hi" }] });
        let now = Instant::now();
        let (first, total) = usage(&cache, &body, now);
        let (second, _) = usage(&cache, &body, now);
        assert_eq!(
            first,
            PromptUsage {
                uncached: total,
                ..PromptUsage::default()
            }
        );
        assert_eq!(second, first);
    }

    #[test]
    fn entries_expire_after_their_ttl() {
        let cache = PromptCache::default();
        let body = json!({ "model": "m", "max_tokens": 5,
            "messages": [{ "role": "user", "content": [cached("Hello there", "5m")] }] });
        let now = Instant::now();
        usage(&cache, &body, now);
        let (later, _) = usage(&cache, &body, now + Duration::from_secs(6 * 60));
        assert_eq!(later.read, 0);
        assert!(later.written_5m > 0);
    }
}
