//! Prompt caching as OpenAI does it, in memory: automatic, from [`MIN_CACHED_TOKENS`] tokens on, read in
//! whole [`BLOCK_TOKENS`]-token blocks.
//!
//! A chat prompt runs the `tools` field first (OpenAI puts the tool definitions ahead of the messages),
//! then the messages. A [`Boundary`] follows each message whose prefix (the tools and the messages up to
//! and with it, as [`crate::prompt`] counts them; the reply priming is never part of a prefix) has at
//! least [`MIN_CACHED_TOKENS`] tokens, with the key of the model name, the `tools` field and those
//! messages. A prompt whose messages and tools stay below [`MIN_CACHED_TOKENS`] has no boundary: it is
//! never cached and never reads the cache.
//!
//! Every request, with no opt-in:
//! 1. read: the longest prefix ending at a boundary whose key is cached gives
//!    `prompt_tokens_details.cached_tokens` = its tokens rounded down to whole [`BLOCK_TOKENS`] blocks
//!    (1,024, 1,152, 1,280, …), so never more than the prompt; 0 when no key is cached;
//! 2. write: every boundary's key is cached (or refreshed), so the same prompt sent again, or a later
//!    turn of the same conversation, reads it.
//!
//! The same request sent twice therefore reports 0 cached tokens, then its prefix through the last
//! message in whole blocks. The keys live in a [`PrefixCache`] of their own (not the Messages API's),
//! each for 5 minutes after it was last written or read (OpenAI keeps a prefix 5 to 10 minutes after its
//! last use).

use std::time::Instant;

use super::request::ChatRequest;
use crate::prefix_cache::{Key, PrefixCache, PrefixHasher, Ttl};
use crate::prompt::PromptParts;

/// The shortest prefix OpenAI caches.
pub const MIN_CACHED_TOKENS: u64 = 1_024;
/// Cached tokens come in whole blocks of this many.
pub const BLOCK_TOKENS: u64 = 128;
/// How long a prefix stays cached after its last use.
const TTL: Ttl = Ttl::FiveMinutes;

/// A place a cached prefix may end: after a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boundary {
    pub key: Key,
    /// Tokens of the prefix: the tools and the messages through this one.
    pub tokens: u64,
}

/// A chat request's prompt, counted once, with the places a cached prefix may end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatPrompt {
    tokens: u32,
    /// In prompt order; only prefixes of at least [`MIN_CACHED_TOKENS`].
    boundaries: Vec<Boundary>,
}

impl ChatPrompt {
    pub fn new(request: &ChatRequest<'_>) -> ChatPrompt {
        let tools = request.tools_json.filter(|tools| !tools.is_null());
        let parts = PromptParts::new(request.messages, tools);
        let through: Vec<u64> = parts
            .messages
            .iter()
            .scan(parts.tools, |prefix, tokens| {
                *prefix += tokens;
                Some(*prefix)
            })
            .collect();
        // Short prompts, the common case under load, are never hashed.
        let boundaries = match through
            .iter()
            .position(|&tokens| tokens >= MIN_CACHED_TOKENS)
        {
            None => Vec::new(),
            Some(first) => {
                let mut hasher = PrefixHasher::new(request.model);
                if let Some(tools) = tools {
                    hasher.push("tools", tools);
                }
                let mut boundaries = Vec::with_capacity(through.len() - first);
                for (index, (message, tokens)) in request.messages.iter().zip(through).enumerate() {
                    hasher.push("message", message);
                    if index >= first {
                        boundaries.push(Boundary {
                            key: hasher.key(),
                            tokens,
                        });
                    }
                }
                boundaries
            }
        };
        let prompt = ChatPrompt {
            tokens: parts.tokens(),
            boundaries,
        };
        debug_assert!(
            prompt
                .boundaries
                .iter()
                .all(|boundary| boundary.tokens < u64::from(prompt.tokens))
        );
        prompt
    }

    /// `prompt_tokens`.
    pub fn tokens(&self) -> u32 {
        self.tokens
    }

    pub fn boundaries(&self) -> &[Boundary] {
        &self.boundaries
    }

    /// `cached_tokens` when the prefix ending at `boundary` is read: its whole blocks.
    fn cached_tokens(&self, boundary: &Boundary) -> u32 {
        let cached = boundary.tokens / BLOCK_TOKENS * BLOCK_TOKENS;
        debug_assert!(cached >= MIN_CACHED_TOKENS);
        u32::try_from(cached).map_or(self.tokens, |cached| cached.min(self.tokens))
    }
}

/// The prompt prefixes chat completion requests cached, shared by every request.
#[derive(Debug, Default)]
pub struct ChatPromptCache {
    prefixes: PrefixCache,
}

impl ChatPromptCache {
    /// Reads and writes the cache for `prompt` (see the module docs) and says its `cached_tokens`.
    pub fn apply(&self, prompt: &ChatPrompt, now: Instant) -> u32 {
        if prompt.boundaries.is_empty() {
            return 0;
        }
        let mut entries = self.prefixes.lock();
        let hit = prompt
            .boundaries
            .iter()
            .rev()
            .find(|boundary| entries.read(boundary.key, now))
            .copied();
        for boundary in &prompt.boundaries {
            entries.write(boundary.key, TTL, now);
        }
        drop(entries);
        hit.map_or(0, |boundary| prompt.cached_tokens(&boundary))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::time::Duration;

    /// A user message of about `words` tokens.
    fn user(words: usize) -> Value {
        json!({ "role": "user", "content": " cat".repeat(words) })
    }

    fn body(messages: Value) -> Value {
        json!({ "model": "mock", "messages": messages })
    }

    fn prompt(body: &Value) -> ChatPrompt {
        ChatPrompt::new(&ChatRequest::parse(body).unwrap())
    }

    fn cached(cache: &ChatPromptCache, body: &Value, now: Instant) -> u32 {
        cache.apply(&prompt(body), now)
    }

    #[test]
    fn the_same_prompt_twice_reads_its_whole_blocks_the_second_time() {
        let cache = ChatPromptCache::default();
        let body = body(json!([
            { "role": "system", "content": "You are a careful assistant." },
            user(1_500),
        ]));
        let now = Instant::now();
        let tokens = prompt(&body).tokens();
        assert!(tokens > 1_500, "{tokens}");
        assert_eq!(cached(&cache, &body, now), 0, "first call");
        let second = cached(&cache, &body, now);
        assert!(second.is_multiple_of(128), "{second}");
        assert!(second >= 1_024, "{second}");
        assert!(second <= tokens);
        assert!(tokens - second < 128 + 3, "every whole block is read");
        assert_eq!(cached(&cache, &body, now), second, "and again");
    }

    #[test]
    fn a_prompt_below_1024_tokens_is_never_cached() {
        let cache = ChatPromptCache::default();
        let body = body(json!([user(1_000)]));
        let now = Instant::now();
        let short = prompt(&body);
        assert!(short.tokens() < 1_024 + 3, "{}", short.tokens());
        assert!(short.boundaries().is_empty());
        assert_eq!(cached(&cache, &body, now), 0);
        assert_eq!(cached(&cache, &body, now), 0);
    }

    #[test]
    fn a_later_turn_reads_the_prefix_an_earlier_turn_cached() {
        let cache = ChatPromptCache::default();
        let now = Instant::now();
        let first_turn = body(json!([user(1_200)]));
        assert_eq!(cached(&cache, &first_turn, now), 0);
        let first_prefix = prompt(&first_turn).boundaries()[0].tokens;
        let second_turn = body(json!([
            user(1_200),
            { "role": "assistant", "content": "Meow." },
            { "role": "user", "content": "Again?" },
        ]));
        assert_eq!(
            u64::from(cached(&cache, &second_turn, now)),
            first_prefix / 128 * 128
        );
        let other_model = json!({ "model": "other", "messages": [user(1_200)] });
        assert_eq!(cached(&cache, &other_model, now), 0, "keys are per model");
        let other_tools = json!({ "model": "mock", "messages": [user(1_200)],
            "tools": [{ "type": "function", "function": { "name": "f" } }] });
        assert_eq!(cached(&cache, &other_tools, now), 0, "tools come first");
    }

    #[test]
    fn a_prefix_is_forgotten_five_minutes_after_its_last_use() {
        let cache = ChatPromptCache::default();
        let body = body(json!([user(1_100)]));
        let now = Instant::now();
        cached(&cache, &body, now);
        let four_minutes = Duration::from_secs(4 * 60);
        assert!(cached(&cache, &body, now + four_minutes) >= 1_024);
        assert!(cached(&cache, &body, now + 2 * four_minutes) >= 1_024);
        assert_eq!(cached(&cache, &body, now + 4 * four_minutes), 0);
    }
}
