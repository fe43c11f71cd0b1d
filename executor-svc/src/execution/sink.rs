//! Where an execution's output goes ([`Sink`]): the whole result once for a unary call, or deltas, chunks
//! and events as they come, then the result, for a streaming one.

use proto::executor::v1::RateLimits;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};

use super::outcome::{Outcome, StreamEvent};
use super::request::Shape;
use crate::error::ExecutorError;
use crate::upstream::Wire;

/// Where the output goes.
pub enum Sink {
    /// Unary: the whole result once.
    Unary(oneshot::Sender<Result<Outcome, ExecutorError>>),
    /// Streaming: deltas as they come, then the result.
    Stream(mpsc::Sender<StreamEvent>),
}

/// The client went away.
pub(super) struct ClientGone;

impl Sink {
    /// Resolves once nobody is waiting for this execution any more.
    pub(super) async fn client_gone(&mut self) {
        match self {
            Sink::Unary(reply) => reply.closed().await,
            Sink::Stream(events) => events.closed().await,
        }
    }

    /// Delivers one chunk of the answer in the request's shape.
    pub(super) async fn deliver(
        &mut self,
        shape: Shape,
        wire: Wire,
        chunk: &RawValue,
        first_choice_text: Option<&str>,
    ) -> Result<(), ClientGone> {
        let sent = match (self, shape, first_choice_text) {
            (Sink::Unary(reply), _, _) if reply.is_closed() => return Err(ClientGone),
            (Sink::Unary(_), _, _) | (Sink::Stream(_), Shape::Text, None) => return Ok(()),
            (Sink::Stream(events), Shape::ChatCompletion, _) => {
                let item = chunk.get().to_string();
                let event = match wire {
                    Wire::ChatChunks => StreamEvent::Chunk(item),
                    Wire::MessageEvents => StreamEvent::Event(item),
                };
                events.send(event).await
            }
            (Sink::Stream(events), Shape::Text, Some(text)) => {
                events.send(StreamEvent::Delta(text.to_string())).await
            }
        };
        sent.map_err(|_| ClientGone)
    }

    /// Tells a streaming client the key's per-minute limits before any output.
    pub(super) async fn limits(&mut self, limits: &RateLimits) {
        if let Sink::Stream(events) = self {
            let _ = events.send(StreamEvent::Limits(*limits)).await;
        }
    }

    /// A chunk the executor made (the end of a cut-off stream); only chunk streams receive it.
    pub(super) async fn made_chunk(&mut self, shape: Shape, chunk: Value) {
        if let (Sink::Stream(events), Shape::ChatCompletion) = (self, shape) {
            let _ = events.send(StreamEvent::Chunk(chunk.to_string())).await;
        }
    }

    pub(super) async fn finish(self, result: Result<Outcome, ExecutorError>) {
        // A client that is gone no longer cares; the settlement is already done.
        match self {
            Sink::Unary(reply) => {
                let _ = reply.send(result);
            }
            Sink::Stream(events) => {
                let _ = events.send(StreamEvent::Done(Box::new(result))).await;
            }
        }
    }

    pub(super) fn is_unary(&self) -> bool {
        matches!(self, Sink::Unary(_))
    }
}
