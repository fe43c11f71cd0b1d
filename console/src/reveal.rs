//! Secrets shown once after a form (a new or rotated key, a webhook's signing secret), kept server-side for
//! one read so the form can answer with a redirect (post/redirect/get): reloading the page that shows the
//! secret never sends the form again.
//!
//! The handler that made the secret puts it here and redirects to a page whose URL holds only a random
//! reference. The reference is not a secret: it is tied to the session that made it (by its CSRF token, which
//! is per session), it is read at most once, and it lapses after [`REVEAL_TTL`]. The secret itself never
//! appears in a URL or a log. The store is in the gateway's memory: the redirect is answered by the replica
//! that served the form (behind a load balancer that does not keep a browser on one replica, the page says
//! the secret is no longer available, and the operator rotates the key).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use subtle::ConstantTimeEq;

/// How long a secret waits for its page.
const REVEAL_TTL: Duration = Duration::from_secs(600);
/// Secrets waiting at most; the oldest is dropped beyond this.
const MAX_REVEALS: usize = 1_000;

/// What a secret's page shows, waiting for its one read.
struct Reveal {
    /// The CSRF token of the session that made it.
    session_csrf: String,
    made_at: Instant,
    data: Value,
}

/// The secrets waiting to be shown, by reference.
#[derive(Default)]
pub struct Reveals {
    waiting: Mutex<HashMap<String, Reveal>>,
}

impl Reveals {
    /// Keeps `data` for one read by the session with `session_csrf`; returns its reference.
    pub fn put(&self, session_csrf: &str, data: Value) -> String {
        let reference = random_reference();
        let mut waiting = self
            .waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        waiting.retain(|_, reveal| reveal.made_at.elapsed() < REVEAL_TTL);
        while waiting.len() >= MAX_REVEALS {
            let oldest = waiting
                .iter()
                .min_by_key(|(_, reveal)| reveal.made_at)
                .map(|(reference, _)| reference.clone());
            match oldest {
                Some(oldest) => waiting.remove(&oldest),
                None => break,
            };
        }
        waiting.insert(
            reference.clone(),
            Reveal {
                session_csrf: session_csrf.to_string(),
                made_at: Instant::now(),
                data,
            },
        );
        debug_assert!(waiting.len() <= MAX_REVEALS);
        reference
    }

    /// The data kept under `reference` for this session, removed: a second read finds nothing.
    pub fn take(&self, session_csrf: &str, reference: &str) -> Option<Value> {
        let mut waiting = self
            .waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let reveal = waiting.get(reference)?;
        let same_session = bool::from(
            reveal
                .session_csrf
                .as_bytes()
                .ct_eq(session_csrf.as_bytes()),
        );
        if !same_session {
            return None;
        }
        let reveal = waiting.remove(reference)?;
        (reveal.made_at.elapsed() < REVEAL_TTL).then_some(reveal.data)
    }
}

fn random_reference() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_secret_is_read_once_and_only_by_its_session() {
        let reveals = Reveals::default();
        let reference = reveals.put("csrf-a", json!({"key": "secret"}));
        assert!(
            reveals.take("csrf-b", &reference).is_none(),
            "another session"
        );
        assert_eq!(
            reveals.take("csrf-a", &reference),
            Some(json!({"key": "secret"}))
        );
        assert!(
            reveals.take("csrf-a", &reference).is_none(),
            "a second read"
        );
    }
}
