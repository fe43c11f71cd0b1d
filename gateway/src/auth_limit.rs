//! Throttling of repeated failed authentication, per client IP, so that keys cannot be guessed at speed.
//!
//! Each client IP has a token bucket of failed attempts (`GATEWAY_AUTH_FAILURE_BURST` tokens, refilled at
//! `GATEWAY_AUTH_FAILURE_REFILL_PER_MIN`). Every answer 401 takes a token. Once the bucket is empty, calls
//! from that IP are answered 429 (`rate_limited`, with `Retry-After`) without reaching billing-svc, except
//! calls carrying a credential that was recently accepted: a valid key is never locked out by someone
//! else's guessing from the same address (a NAT, a proxy). Successful calls take nothing.
//!
//! Credentials are remembered only as a keyed in-memory hash, never as text. Both tables are bounded.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ApiError;
use crate::model_api::error_shape::ErrorShape;

/// Client IPs tracked at most; past it, buckets that have refilled are forgotten.
const MAX_TRACKED_CLIENTS: usize = 100_000;
/// Accepted credentials remembered at most; past it, the memory starts afresh.
const MAX_KNOWN_CREDENTIALS: usize = 100_000;

/// The header Anthropic's clients send their key in.
const API_KEY_HEADER: &str = "x-api-key";

/// Routes served without a key.
const UNAUTHENTICATED_ROUTES: &[&str] = &["/healthz", "/readyz", "/metrics", "/openapi.json"];

/// The limiter's settings.
#[derive(Debug, Clone, Copy)]
pub struct AuthLimitSettings {
    /// Failed attempts a client IP may make in a burst.
    pub burst: u32,
    /// Failed attempts given back per minute.
    pub refill_per_min: u32,
}

/// Failed-authentication buckets per client IP and the credentials recently accepted.
pub struct AuthFailureLimiter {
    settings: AuthLimitSettings,
    hasher: RandomState,
    state: Mutex<LimiterState>,
}

#[derive(Default)]
struct LimiterState {
    buckets: HashMap<IpAddr, Bucket>,
    accepted: HashSet<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl AuthFailureLimiter {
    pub fn new(settings: AuthLimitSettings) -> AuthFailureLimiter {
        AuthFailureLimiter {
            settings,
            hasher: RandomState::new(),
            state: Mutex::new(LimiterState::default()),
        }
    }

    fn refill_per_sec(&self) -> f64 {
        f64::from(self.settings.refill_per_min) / 60.0
    }

    /// The bucket of `ip` brought up to `now`.
    fn refilled(&self, bucket: Option<Bucket>, now: Instant) -> Bucket {
        let burst = f64::from(self.settings.burst);
        match bucket {
            None => Bucket {
                tokens: burst,
                updated: now,
            },
            Some(bucket) => {
                let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
                Bucket {
                    tokens: (bucket.tokens + elapsed * self.refill_per_sec()).min(burst),
                    updated: now,
                }
            }
        }
    }

    /// None when the call may go on; otherwise how long until `ip` has an attempt again.
    fn check(&self, ip: IpAddr, credential: Option<u64>, now: Instant) -> Option<Duration> {
        let state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if credential.is_some_and(|credential| state.accepted.contains(&credential)) {
            return None;
        }
        let bucket = self.refilled(state.buckets.get(&ip).copied(), now);
        if bucket.tokens >= 1.0 {
            return None;
        }
        let wait = (1.0 - bucket.tokens) / self.refill_per_sec();
        Some(Duration::from_secs_f64(wait.max(0.0)))
    }

    /// Takes a token from `ip` after a 401, or remembers a credential that was accepted: only a success or
    /// a 402 proves it passed (a 400 or 404 can come before the key is looked at, so they prove nothing).
    fn record(&self, ip: IpAddr, credential: Option<u64>, status: StatusCode, now: Instant) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if status == StatusCode::UNAUTHORIZED {
            if let Some(credential) = credential {
                // A key revoked since it was last accepted is a stranger again.
                state.accepted.remove(&credential);
            }
            let mut bucket = self.refilled(state.buckets.get(&ip).copied(), now);
            bucket.tokens = (bucket.tokens - 1.0).max(0.0);
            if state.buckets.len() >= MAX_TRACKED_CLIENTS && !state.buckets.contains_key(&ip) {
                let burst = f64::from(self.settings.burst);
                let refill = self.refill_per_sec();
                state.buckets.retain(|_, other| {
                    let elapsed = now.saturating_duration_since(other.updated).as_secs_f64();
                    other.tokens + elapsed * refill < burst
                });
            }
            state.buckets.insert(ip, bucket);
        } else if let Some(credential) = credential
            && (status.is_success() || status == StatusCode::PAYMENT_REQUIRED)
        {
            if state.accepted.len() >= MAX_KNOWN_CREDENTIALS {
                state.accepted.clear();
            }
            state.accepted.insert(credential);
        }
    }
}

/// The layer: refuses a throttled client before the handler runs, and accounts for the answer after.
pub async fn limit_failed_auth(
    State(limiter): State<Arc<AuthFailureLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    // Unknown paths (404) and the routes that authenticate nobody are not gated: the latter are never
    // throttled, and their 200 vouches for no credential.
    let gated = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|route| !UNAUTHENTICATED_ROUTES.contains(&route.as_str()));
    if !gated {
        return next.run(request).await;
    }
    // Anthropic's clients send the key in `x-api-key`.
    let credential = request
        .headers()
        .get(AUTHORIZATION)
        .or_else(|| request.headers().get(API_KEY_HEADER))
        .map(|value| limiter.hasher.hash_one(value.as_bytes()));
    if let Some(wait) = limiter.check(ip, credential, Instant::now()) {
        let retry_after_secs = wait.as_secs().saturating_add(1);
        let error = ApiError::TooManyFailedAuthentications { retry_after_secs };
        // Every shape carries `Retry-After`.
        return ErrorShape::of(request.uri().path()).respond(error);
    }
    let response = next.run(request).await;
    limiter.record(ip, credential, response.status(), Instant::now());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> AuthFailureLimiter {
        AuthFailureLimiter::new(AuthLimitSettings {
            burst: 3,
            refill_per_min: 60,
        })
    }

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn a_burst_of_failures_is_allowed_then_refused_until_refilled() {
        let limiter = limiter();
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check(IP, Some(1), start), None);
            limiter.record(IP, Some(1), StatusCode::UNAUTHORIZED, start);
        }
        assert!(limiter.check(IP, Some(1), start).is_some());
        assert!(limiter.check(IP, None, start).is_some());
        let other = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(limiter.check(other, Some(1), start), None, "per client IP");
        assert_eq!(
            limiter.check(IP, Some(1), start + Duration::from_millis(1100)),
            None,
            "one attempt back per second"
        );
    }

    #[test]
    fn an_accepted_key_is_never_throttled_until_it_fails() {
        let limiter = limiter();
        let now = Instant::now();
        limiter.record(IP, Some(7), StatusCode::OK, now);
        for _ in 0..3 {
            limiter.record(IP, Some(1), StatusCode::UNAUTHORIZED, now);
        }
        assert_eq!(limiter.check(IP, Some(7), now), None);
        assert!(limiter.check(IP, Some(8), now).is_some());
        limiter.record(IP, Some(7), StatusCode::UNAUTHORIZED, now);
        assert!(
            limiter.check(IP, Some(7), now).is_some(),
            "revoked: a stranger again"
        );
    }
}
