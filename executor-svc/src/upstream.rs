//! What every provider's answer becomes inside the executor, whatever API it speaks: a stream of JSON items
//! ([`Upstream`]) read one at a time under the provider's timeout. The provider's error answers are
//! [`crate::provider_error`]'s.
//!
//! An [`Upstream`] carries OpenAI `chat.completion.chunk`s ([`Wire::ChatChunks`]: an OpenAI-compatible
//! provider, or an Anthropic one translated) or Anthropic's stream events ([`Wire::MessageEvents`]: the
//! native pass-through of `/v1/messages`). It is started only once its first item has arrived, so that a
//! provider that fails before answering can still hand the call to the next one (PROVIDERS.md,
//! "Fallback"). Dropping it cancels the upstream HTTP request.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::value::RawValue;
use tokio::sync::OwnedSemaphorePermit;

use crate::error::ExecutorError;

/// What the items of an [`Upstream`] are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI `chat.completion.chunk` objects.
    ChatChunks,
    /// Anthropic Messages stream events (`message_start`, `content_block_delta`, ...), `ping` left out.
    MessageEvents,
}

/// A provider's streamed answer, item by item.
pub struct Upstream {
    pub wire: Wire,
    items: BoxStream<'static, Result<Box<RawValue>, ExecutorError>>,
    timeout: Duration,
    /// The first item (or the end), read when the stream started.
    first: Option<Option<Box<RawValue>>>,
    /// The provider's call slot, given back when the stream is dropped.
    _slot: Option<OwnedSemaphorePermit>,
}

impl Upstream {
    /// Waits (at most `timeout`) for the first of `items` and answers the started stream, or the error that
    /// came first.
    pub async fn start(
        wire: Wire,
        items: BoxStream<'static, Result<Box<RawValue>, ExecutorError>>,
        timeout: Duration,
    ) -> Result<Upstream, ExecutorError> {
        let mut upstream = Upstream {
            wire,
            items,
            timeout,
            first: None,
            _slot: None,
        };
        let first = upstream.next().await?;
        upstream.first = Some(first);
        Ok(upstream)
    }

    /// The stream holding the provider's call slot for as long as it lives.
    pub fn holding(mut self, slot: Option<OwnedSemaphorePermit>) -> Upstream {
        self._slot = slot;
        self
    }

    /// The next item's JSON text, `None` at the end of the answer. Cancel-safe.
    pub async fn next(&mut self) -> Result<Option<Box<RawValue>>, ExecutorError> {
        if let Some(first) = self.first.take() {
            return Ok(first);
        }
        tokio::time::timeout(self.timeout, self.items.next())
            .await
            .map_err(|_| ExecutorError::UpstreamTimeout(self.timeout))?
            .transpose()
    }
}
