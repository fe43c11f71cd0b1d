//! `billing.v1.MeteringService`: the `Meter` stream (open, progress, close) and the `Settle` replay, for
//! executor-svc only (service token).
//!
//! A stream is served by a spawned task that reads requests in order and answers each through a bounded
//! channel; when the executor goes away mid-stream, or sends nothing for the idle timeout (a silent client
//! must not pin a task and a connection for ever), the task ends and the hold stays until settled by
//! `Settle` or released by its TTL.

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use proto::billing::v1 as pb;
use proto::billing::v1::meter_request::Message as In;
use proto::billing::v1::meter_response::Message as Out;
use proto::billing::v1::metering_service_server::MeteringService;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::{
    authorize_service, classes_from_pb, key_type_to_pb, price_to_pb, settlement_to_pb, timestamp,
    usage_status_from_pb,
};
use crate::error::BillingError;
use crate::holds::limits::Window;
use crate::holds::ops::{Extension, OpenRequest, OutputKind, SettleRequest};
use crate::keys::KeyType;
use crate::ledger::Ledger;
use crate::time;
use lifecycle::secret::SecretString;
use proto::ids::{ApiKeyId, ExecutionId};

pub struct MeteringApi {
    ledger: Ledger,
    service_token: SecretString,
    admin_key: SecretString,
    idle_timeout: Duration,
}

impl MeteringApi {
    pub fn new(
        ledger: Ledger,
        service_token: SecretString,
        admin_key: SecretString,
        idle_timeout: Duration,
    ) -> MeteringApi {
        MeteringApi {
            ledger,
            service_token,
            admin_key,
            idle_timeout,
        }
    }
}

type MeterStream = Pin<Box<dyn Stream<Item = Result<pb::MeterResponse, Status>> + Send>>;

fn response(message: Out) -> pb::MeterResponse {
    pb::MeterResponse {
        message: Some(message),
    }
}

#[tonic::async_trait]
impl MeteringService for MeteringApi {
    type MeterStream = MeterStream;

    async fn meter(
        &self,
        request: Request<Streaming<pb::MeterRequest>>,
    ) -> Result<Response<MeterStream>, Status> {
        authorize_service(
            &self.ledger,
            &self.service_token,
            &self.admin_key,
            request.metadata(),
        )
        .await?;
        let inbound = request.into_inner();
        let (sender, receiver) = mpsc::channel(8);
        let ledger = self.ledger.clone();
        let inbound = IdleLimited {
            inbound,
            idle_timeout: self.idle_timeout,
        };
        tokio::spawn(async move {
            if let Err(status) = serve_meter(&ledger, inbound, &sender).await {
                // The executor may already be gone; then there is nobody to tell.
                let _ = sender.send(Err(status)).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn settle(
        &self,
        request: Request<pb::SettleRequest>,
    ) -> Result<Response<pb::Settlement>, Status> {
        authorize_service(
            &self.ledger,
            &self.service_token,
            &self.admin_key,
            request.metadata(),
        )
        .await?;
        let mut request = request.into_inner();
        let labels = request.take_labels();
        let api_key_id = ApiKeyId::from(request.api_key_id);
        let settlement = self
            .ledger
            .settle(&SettleRequest {
                account_id: self.ledger.account_of_key(&api_key_id).await?,
                api_key_id,
                execution_id: ExecutionId::from(request.execution_id),
                labels,
                input_tokens: request.input_tokens,
                output_tokens: request.output_tokens,
                status: usage_status_from_pb(request.status)?,
                duration_ms: request.duration_ms,
                started_at: timestamp("started_at", request.started_at.as_ref())?,
                provider: request.provider,
                attempts: request.attempts,
                classes: classes_from_pb(request.classes.as_ref()),
            })
            .await?;
        Ok(Response::new(settlement_to_pb(&settlement)))
    }
}

/// The executor's side of a stream, each message awaited at most the idle timeout.
struct IdleLimited {
    inbound: Streaming<pb::MeterRequest>,
    idle_timeout: Duration,
}

impl IdleLimited {
    async fn message(&mut self) -> Result<Option<pb::MeterRequest>, Status> {
        match tokio::time::timeout(self.idle_timeout, self.inbound.message()).await {
            Ok(message) => message,
            Err(_) => Err(BillingError::StreamIdle {
                secs: self.idle_timeout.as_secs(),
            }
            .into()),
        }
    }
}

/// Runs one execution's stream to its Close. Returns early (Ok) when the executor hangs up.
async fn serve_meter(
    ledger: &Ledger,
    mut inbound: IdleLimited,
    sender: &mpsc::Sender<Result<pb::MeterResponse, Status>>,
) -> Result<(), Status> {
    let Some(first) = inbound.message().await? else {
        return Ok(());
    };
    let Some(In::Open(mut open)) = first.message else {
        return Err(BillingError::Protocol("the first message must be open").into());
    };
    let caller = ledger.authenticate(&open.api_key).await?;
    let request = OpenRequest {
        execution_id: ExecutionId::from(std::mem::take(&mut open.execution_id)),
        labels: open.take_labels(),
        estimated_input_tokens: open.estimated_input_tokens,
        max_output_tokens: open.max_output_tokens,
        output: if open.input_only {
            OutputKind::None
        } else {
            OutputKind::Tokens
        },
    };
    let opened = ledger.open(&caller, &request).await?;
    let started_at = time::now_ms();
    let opened_message = Out::Opened(pb::MeterOpened {
        api_key_id: opened.api_key_id.to_string(),
        account_id: opened.account_id.to_string(),
        key_type: key_type_to_pb(opened.key_type).into(),
        covered_output_tokens: opened.covered_output_tokens,
        held: opened.held.to_string(),
        price: Some(price_to_pb(&opened.price)),
        requests: opened.rates.requests.map(window_to_pb),
        tokens: opened.rates.tokens.map(window_to_pb),
        report_at_output_tokens: ledger.report_at(opened.covered_output_tokens),
    });
    if sender.send(Ok(response(opened_message))).await.is_err() {
        return Ok(());
    }
    let (mut covered, mut held) = (opened.covered_output_tokens, opened.held);

    while let Some(message) = inbound.message().await? {
        let answer = match message.message {
            Some(In::Progress(progress)) => {
                // Internal keys hold nothing; a standard key's hold is extended only when output nears what it
                // covers.
                let extension = if opened.key_type == KeyType::Internal
                    || !ledger.due_for_extension(progress.output_tokens, covered)
                {
                    Extension::Continue {
                        covered_output_tokens: covered,
                        held,
                    }
                } else {
                    ledger
                        .extend(
                            (&opened.account_id, &opened.api_key_id),
                            &request.execution_id,
                            progress.output_tokens,
                        )
                        .await?
                };
                match extension {
                    Extension::Continue {
                        covered_output_tokens,
                        held: now_held,
                    } => {
                        (covered, held) = (covered_output_tokens, now_held);
                        Out::Extended(pb::MeterExtended {
                            covered_output_tokens,
                            held: now_held.to_string(),
                            report_at_output_tokens: ledger.report_at(covered_output_tokens),
                        })
                    }
                    Extension::Stop {
                        covered_output_tokens,
                        reason,
                    } => Out::Stop(pb::MeterStop {
                        covered_output_tokens,
                        reason: reason.as_str().to_string(),
                    }),
                }
            }
            Some(In::Close(close)) => {
                let settlement = ledger
                    .settle(&SettleRequest {
                        account_id: opened.account_id.clone(),
                        api_key_id: opened.api_key_id.clone(),
                        execution_id: request.execution_id.clone(),
                        labels: request.labels.clone(),
                        input_tokens: close.input_tokens,
                        output_tokens: close.output_tokens,
                        status: usage_status_from_pb(close.status)?,
                        duration_ms: close.duration_ms,
                        started_at: Some(started_at),
                        provider: close.provider.clone(),
                        attempts: close.attempts,
                        classes: classes_from_pb(close.classes.as_ref()),
                    })
                    .await?;
                let _ = sender
                    .send(Ok(response(Out::Settled(settlement_to_pb(&settlement)))))
                    .await;
                return Ok(());
            }
            Some(In::Open(_)) => return Err(BillingError::Protocol("open sent twice").into()),
            None => return Err(BillingError::Protocol("empty message").into()),
        };
        if sender.send(Ok(response(answer))).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}

fn window_to_pb(window: Window) -> pb::RateLimitStatus {
    pb::RateLimitStatus {
        limit: window.limit,
        remaining: window.remaining,
        reset_secs: window.reset_secs,
    }
}
