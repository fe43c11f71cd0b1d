//! The client side of billing's `Meter` stream, driven as executor-svc drives it: Open and wait for Opened
//! (the hold is placed), Progress and wait for Grant or Stop, Close and wait for Settled, or hang up.
//!
//! A refusal is an error whose chain holds the service's `tonic::Status`
//! (`error.downcast_ref::<tonic::Status>()`); an answer out of protocol is an error without one.

use anyhow::{Context, bail};
use proto::billing::v1 as pb;
use proto::billing::v1::meter_request::Message as In;
use proto::billing::v1::meter_response::Message as Out;
use proto::billing::v1::metering_service_client::MeteringServiceClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::grpc::authed;

/// Messages queued ahead of the stream: the protocol has at most one unanswered message.
const QUEUED_MESSAGES: usize = 8;
/// The execution time reported at Close.
const DURATION_MS: u64 = 5;

/// An open execution: its hold is placed.
pub struct MeterSession {
    pub opened: pb::MeterOpened,
    requests: mpsc::Sender<pb::MeterRequest>,
    responses: Streaming<pb::MeterResponse>,
}

impl MeterSession {
    /// Opens a `Meter` stream authorized by `authorization` (`Bearer <service token>`, see
    /// [`crate::grpc::bearer`]), sends Open and waits for Opened.
    pub async fn open(
        mut client: MeteringServiceClient<Channel>,
        authorization: &MetadataValue<Ascii>,
        open: pb::MeterOpen,
    ) -> anyhow::Result<MeterSession> {
        let (requests, receiver) = mpsc::channel(QUEUED_MESSAGES);
        requests
            .send(request(In::Open(open)))
            .await
            .context("queue Open")?;
        let mut responses = client
            .meter(authed(authorization, ReceiverStream::new(receiver)))
            .await
            .context("start the Meter stream")?
            .into_inner();
        match answer(&mut responses).await.context("await Opened")? {
            Some(Out::Opened(opened)) => Ok(MeterSession {
                opened,
                requests,
                responses,
            }),
            other => bail!("expected Opened, got {other:?}"),
        }
    }

    /// Reports the output so far; billing's answer, Grant or Stop.
    pub async fn progress(&mut self, output_tokens: u64) -> anyhow::Result<Out> {
        self.requests
            .send(request(In::Progress(pb::MeterProgress { output_tokens })))
            .await
            .context("queue Progress")?;
        answer(&mut self.responses)
            .await
            .context("await the answer to Progress")?
            .context("the stream ended without an answer to Progress")
    }

    /// Settles with the provider's usage; the settlement.
    pub async fn close(
        mut self,
        input_tokens: u64,
        output_tokens: u64,
        status: pb::UsageStatus,
    ) -> anyhow::Result<pb::Settlement> {
        self.requests
            .send(request(In::Close(pb::MeterClose {
                input_tokens,
                output_tokens,
                status: status.into(),
                duration_ms: DURATION_MS,
                ..Default::default()
            })))
            .await
            .context("queue Close")?;
        match answer(&mut self.responses).await.context("await Settled")? {
            Some(Out::Settled(settlement)) => Ok(settlement),
            other => bail!("expected Settled, got {other:?}"),
        }
    }

    /// Hangs up without closing, as a crashed executor would.
    pub fn abandon(self) {}
}

fn request(message: In) -> pb::MeterRequest {
    pb::MeterRequest {
        message: Some(message),
    }
}

/// The next answer on the stream; None when the stream ended.
async fn answer(
    responses: &mut Streaming<pb::MeterResponse>,
) -> Result<Option<Out>, tonic::Status> {
    Ok(responses
        .message()
        .await?
        .and_then(|response| response.message))
}
