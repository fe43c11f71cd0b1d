//! A client side of the `Meter` stream, as executor-svc drives it, for tests of billing-svc.

use proto::billing::v1 as pb;
use proto::billing::v1::meter_request::Message as In;
use proto::billing::v1::meter_response::Message as Out;
use proto::billing::v1::metering_service_client::MeteringServiceClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

use crate::authed;

/// An open execution: the hold is placed.
pub struct MeterSession {
    pub opened: pb::MeterOpened,
    requests: mpsc::Sender<pb::MeterRequest>,
    responses: Streaming<pb::MeterResponse>,
}

fn request(message: In) -> pb::MeterRequest {
    pb::MeterRequest {
        message: Some(message),
    }
}

impl MeterSession {
    /// Sends Open and waits for Opened (or the refusal status).
    pub async fn open(
        mut client: MeteringServiceClient<Channel>,
        service_token: &str,
        open: pb::MeterOpen,
    ) -> Result<MeterSession, tonic::Status> {
        let (requests, receiver) = mpsc::channel(8);
        requests
            .send(request(In::Open(open)))
            .await
            .expect("queue open");
        let mut responses = client
            .meter(authed(service_token, ReceiverStream::new(receiver)))
            .await?
            .into_inner();
        match responses
            .message()
            .await?
            .and_then(|response| response.message)
        {
            Some(Out::Opened(opened)) => Ok(MeterSession {
                opened,
                requests,
                responses,
            }),
            other => panic!("expected Opened, got {other:?}"),
        }
    }

    /// Reports output so far; returns Grant or Stop.
    pub async fn progress(&mut self, output_tokens: u64) -> Result<Out, tonic::Status> {
        self.requests
            .send(request(In::Progress(pb::MeterProgress { output_tokens })))
            .await
            .expect("queue progress");
        Ok(self
            .responses
            .message()
            .await?
            .and_then(|response| response.message)
            .expect("an answer to progress"))
    }

    /// Settles with the provider's usage.
    pub async fn close(
        mut self,
        input_tokens: u64,
        output_tokens: u64,
        status: pb::UsageStatus,
    ) -> Result<pb::Settlement, tonic::Status> {
        self.requests
            .send(request(In::Close(pb::MeterClose {
                input_tokens,
                output_tokens,
                status: status.into(),
                duration_ms: 5,
            })))
            .await
            .expect("queue close");
        match self
            .responses
            .message()
            .await?
            .and_then(|response| response.message)
        {
            Some(Out::Settled(settlement)) => Ok(settlement),
            other => panic!("expected Settled, got {other:?}"),
        }
    }

    /// Hangs up without closing, as a crashed executor would.
    pub fn abandon(self) {}
}
