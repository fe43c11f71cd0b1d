//! The client side of billing-svc's `MeteringService`: one bidirectional `Meter` stream per execution
//! (open, progress, close) and the unary, idempotent `Settle` that replays spooled settlements.
//!
//! Every call carries the service token as `authorization: Bearer <token>` and the caller's request id as
//! `x-request-id`. No call is given a gRPC deadline: a deadline would bound the whole stream, while the
//! execution may legitimately run for minutes. Each individual answer is awaited with a timeout instead.

use std::time::Duration;

use proto::billing::v1::meter_request::Message as Outbound;
use proto::billing::v1::meter_response::Message as Inbound;
use proto::billing::v1::metering_service_client::MeteringServiceClient;
use proto::billing::v1::{
    MeterClose, MeterExtended, MeterOpen, MeterOpened, MeterProgress, MeterRequest, MeterResponse,
    MeterStop, SettleRequest, Settlement,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

use crate::error::ExecutorError;
use lifecycle::secret::{ExposeSecret, SecretString};

/// Messages queued towards billing-svc per stream. Progress reports beyond it are skipped (each one is
/// cumulative, so the next supersedes a skipped one) rather than slowing generation down.
const OUTBOUND_CAPACITY: usize = 16;

/// A handle to billing-svc's MeteringService; cheap to clone.
#[derive(Clone)]
pub struct Metering {
    client: MeteringServiceClient<Channel>,
    service_token: SecretString,
    answer_timeout: Duration,
}

/// billing-svc's reply to a progress report.
#[derive(Debug, Clone, PartialEq)]
pub enum ProgressReply {
    Extended(MeterExtended),
    Stop(MeterStop),
}

/// The metering stream broke (billing-svc gone, protocol violation): the hold will not be extended again.
#[derive(Debug, thiserror::Error)]
#[error("metering stream broken: {0}")]
pub struct StreamBroken(pub String);

/// Why a settlement did not come back; the caller spools it.
#[derive(Debug, thiserror::Error)]
#[error("settlement not acknowledged: {0}")]
pub struct NotSettled(pub String);

impl Metering {
    pub fn new(
        channel: Channel,
        service_token: SecretString,
        answer_timeout: Duration,
    ) -> Metering {
        Metering {
            client: MeteringServiceClient::new(channel),
            service_token,
            answer_timeout,
        }
    }

    fn request<T>(&self, message: T, request_id: &str) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Ok(value) =
            MetadataValue::try_from(format!("Bearer {}", self.service_token.expose_secret()))
        {
            request.metadata_mut().insert("authorization", value);
        }
        if let Ok(value) = MetadataValue::try_from(request_id) {
            request.metadata_mut().insert("x-request-id", value);
        }
        request
    }

    /// Opens the stream and waits for `MeterOpened`: the hold is placed. A refusal comes back as
    /// [`ExecutorError::BillingRefused`] with billing's status untouched; an unreachable billing-svc as
    /// [`ExecutorError::BillingUnavailable`].
    pub async fn open(
        &self,
        open: MeterOpen,
        request_id: &str,
    ) -> Result<MeterSession, ExecutorError> {
        let (outbound, receiver) = mpsc::channel(OUTBOUND_CAPACITY);
        // Queued before the call so that billing-svc finds the Open as soon as the stream exists.
        outbound
            .send(MeterRequest {
                message: Some(Outbound::Open(open)),
            })
            .await
            .map_err(|_| ExecutorError::Internal("metering channel closed before open".into()))?;
        let request = self.request(ReceiverStream::new(receiver), request_id);
        let mut client = self.client.clone();
        let opening = async move {
            let mut inbound = client
                .meter(request)
                .await
                .map_err(refusal_or_unavailable)?
                .into_inner();
            match inbound.message().await.map_err(refusal_or_unavailable)? {
                Some(MeterResponse {
                    message: Some(Inbound::Opened(opened)),
                }) => Ok((inbound, opened)),
                Some(other) => Err(ExecutorError::Internal(format!(
                    "billing answered open with {other:?}"
                ))),
                None => Err(ExecutorError::BillingUnavailable(
                    "stream ended before the hold was placed".into(),
                )),
            }
        };
        let (inbound, opened) = tokio::time::timeout(self.answer_timeout, opening)
            .await
            .map_err(|_| ExecutorError::BillingUnavailable("no answer to open in time".into()))??;
        Ok(MeterSession {
            outbound: Some(outbound),
            inbound,
            opened,
            answer_timeout: self.answer_timeout,
        })
    }

    /// Settles a finished execution by id (idempotent on billing's side).
    pub async fn settle(
        &self,
        settle: SettleRequest,
        request_id: &str,
    ) -> Result<Settlement, Status> {
        let request = self.request(settle, request_id);
        let mut client = self.client.clone();
        match tokio::time::timeout(self.answer_timeout, client.settle(request)).await {
            Ok(result) => result.map(tonic::Response::into_inner),
            Err(_) => Err(Status::deadline_exceeded(
                "billing-svc did not answer Settle in time",
            )),
        }
    }
}

/// Statuses that mean "billing-svc could not be asked" become UNAVAILABLE; every other status is billing's
/// decision about this execution and is forwarded as is.
fn refusal_or_unavailable(status: Status) -> ExecutorError {
    match status.code() {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Cancelled
        | Code::Unknown
        | Code::Internal => {
            ExecutorError::BillingUnavailable(format!("{:?}: {}", status.code(), status.message()))
        }
        Code::Ok
        | Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::ResourceExhausted
        | Code::FailedPrecondition
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unimplemented
        | Code::DataLoss
        | Code::Unauthenticated => ExecutorError::BillingRefused(status),
    }
}

/// One open metering stream: the hold exists on billing's side until Close (or its TTL).
pub struct MeterSession {
    /// `None` once Close is sent, which half-closes the stream.
    outbound: Option<mpsc::Sender<MeterRequest>>,
    inbound: Streaming<MeterResponse>,
    pub opened: MeterOpened,
    answer_timeout: Duration,
}

impl MeterSession {
    /// Queues a progress report without waiting. `false` when it could not be queued (the queue is full or
    /// the stream is gone): no answer will come for it.
    pub fn report_progress(&mut self, output_tokens: u64) -> bool {
        let Some(outbound) = &self.outbound else {
            return false;
        };
        outbound
            .try_send(MeterRequest {
                message: Some(Outbound::Progress(MeterProgress { output_tokens })),
            })
            .is_ok()
    }

    /// The next reply to a progress report. Cancel-safe: dropping the future loses nothing.
    pub async fn next_reply(&mut self) -> Result<ProgressReply, StreamBroken> {
        match self.inbound.message().await {
            Ok(Some(MeterResponse {
                message: Some(Inbound::Extended(extended)),
            })) => Ok(ProgressReply::Extended(extended)),
            Ok(Some(MeterResponse {
                message: Some(Inbound::Stop(stop)),
            })) => Ok(ProgressReply::Stop(stop)),
            Ok(Some(other)) => Err(StreamBroken(format!(
                "unexpected answer to progress: {other:?}"
            ))),
            Ok(None) => Err(StreamBroken("billing-svc ended the stream".into())),
            Err(status) => Err(StreamBroken(format!(
                "{:?}: {}",
                status.code(),
                status.message()
            ))),
        }
    }

    /// Sends the final usage and waits for the settlement, skipping answers to progress still in flight.
    pub async fn close(mut self, close: MeterClose) -> Result<Settlement, NotSettled> {
        let outbound = self
            .outbound
            .take()
            .ok_or_else(|| NotSettled("stream already closed".into()))?;
        let answer_timeout = self.answer_timeout;
        let settling = async move {
            outbound
                .send(MeterRequest {
                    message: Some(Outbound::Close(close)),
                })
                .await
                .map_err(|_| NotSettled("stream gone before close".into()))?;
            // Half-close: billing-svc sees the end of our side once it has read the Close.
            drop(outbound);
            loop {
                match self.inbound.message().await {
                    Ok(Some(MeterResponse {
                        message: Some(Inbound::Settled(settlement)),
                    })) => {
                        // Read the stream to its end (billing-svc's trailers follow at once): a stream
                        // dropped unfinished is reset, and h2 closes the whole connection, every
                        // execution on it failing, after 1,024 such resets (BENCHMARKS.md, issue 24).
                        let _ = self.inbound.message().await;
                        return Ok(settlement);
                    }
                    Ok(Some(MeterResponse {
                        message: Some(Inbound::Extended(_) | Inbound::Stop(_)),
                    })) => {}
                    Ok(Some(other)) => {
                        return Err(NotSettled(format!("unexpected answer to close: {other:?}")));
                    }
                    Ok(None) => return Err(NotSettled("stream ended without a settlement".into())),
                    Err(status) => {
                        return Err(NotSettled(format!(
                            "{:?}: {}",
                            status.code(),
                            status.message()
                        )));
                    }
                }
            }
        };
        tokio::time::timeout(answer_timeout, settling)
            .await
            .map_err(|_| NotSettled("no settlement in time".into()))?
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn transport_failures_are_unavailable_and_decisions_are_forwarded() {
        let unavailable = [Code::Unavailable, Code::DeadlineExceeded, Code::Internal];
        for code in unavailable {
            assert!(
                matches!(
                    refusal_or_unavailable(Status::new(code, "x")),
                    ExecutorError::BillingUnavailable(_)
                ),
                "{code:?}"
            );
        }
        let forwarded = [
            Code::Unauthenticated,
            Code::ResourceExhausted,
            Code::AlreadyExists,
            Code::InvalidArgument,
        ];
        for code in forwarded {
            match refusal_or_unavailable(Status::new(code, "x")) {
                ExecutorError::BillingRefused(status) => assert_eq!(status.code(), code),
                other => panic!("{code:?} became {other:?}"),
            }
        }
    }
}
