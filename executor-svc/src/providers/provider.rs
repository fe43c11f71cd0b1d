//! One provider: its name, the API it speaks with its client, its call slots (`max_concurrent`) and its
//! health.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::health::{Health, ProviderStatus};
use crate::anthropic::Anthropic;
use crate::openai::OpenAi;

/// One upstream.
pub struct Provider {
    pub name: String,
    pub(super) api: Api,
    /// Calls in flight at most, when the operator set a limit.
    pub(super) slots: Option<Arc<Semaphore>>,
    pub(super) health: Health,
}

/// The API a provider speaks, with its client.
pub(super) enum Api {
    OpenAi(OpenAi),
    Anthropic(Anthropic),
}

impl Provider {
    pub(super) fn status(&self) -> ProviderStatus {
        let health = &self.health;
        ProviderStatus {
            name: self.name.clone(),
            kind: match self.api {
                Api::OpenAi(_) => "openai",
                Api::Anthropic(_) => "anthropic",
            },
            up: health.is_up(),
            attempts: health.attempts.load(Ordering::Relaxed),
            failures: health.failures.load(Ordering::Relaxed),
            fallbacks: health.fallbacks.load(Ordering::Relaxed),
            first_item_seconds_sum: Duration::from_micros(
                health.first_item_micros.load(Ordering::Relaxed),
            )
            .as_secs_f64(),
        }
    }

    /// A call slot: `None` when the provider is at its `max_concurrent`; always one without a limit.
    pub(super) fn slot(&self) -> Option<Option<OwnedSemaphorePermit>> {
        match &self.slots {
            None => Some(None),
            Some(slots) => slots.clone().try_acquire_owned().ok().map(Some),
        }
    }
}
