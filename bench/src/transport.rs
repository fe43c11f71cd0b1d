//! Scenario `transport`: the ceiling set by the `Meter` transport and the load client alone. The settle
//! scenario's load (`settle::drive`, same flags, keys aside) runs against a null `MeteringService` served by
//! this process, which answers every message at once and stores nothing.
//!
//! No ledger exists, so no ledger check applies; the check is that the null server sent exactly as many
//! `Settled` answers as the client received.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use proto::billing::v1 as pb;
use proto::billing::v1::meter_request::Message as In;
use proto::billing::v1::meter_response::Message as Out;
use proto::billing::v1::metering_service_server::{MeteringService, MeteringServiceServer};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{Ascii, MetadataMap, MetadataValue};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

use crate::config::Plan;
use crate::probe::{self, Probe};
use crate::settle;
use crate::stats::Percentiles;

/// Name of the null server's threads (a `comm`, at most 15 bytes), by which their CPU time is told apart.
const SERVER_THREAD: &str = "null-billing";
/// Worker threads of the null server's runtime: what `#[tokio::main]` gives billing-svc on this 2-CPU box.
const SERVER_WORKER_THREADS: usize = 2;
/// Largest gRPC message accepted, either way, as in billing-svc.
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// How long the null server may take to drain its connections once told to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Execution-id prefix of the run's settlements.
const EXECUTION_PREFIX: &str = "bench-transport-";
/// The account every answer names.
const API_KEY_ID: &str = "transport";
/// Output tokens covered at Open when the client names no maximum.
const DEFAULT_GRANT_TOKENS: u64 = 1000;
/// The seed price of every model (0.01 / 0.03 USD per 1k tokens, times 1.5), in nano-dollars per token.
const INPUT_NANOS_PER_TOKEN: u64 = 15_000;
const OUTPUT_NANOS_PER_TOKEN: u64 = 45_000;
const NANOS_PER_USD: u64 = 1_000_000_000;

/// The figures of the transport run.
#[derive(Debug, Clone, Serialize)]
pub struct TransportRun {
    pub concurrency: u32,
    pub connections: u32,
    pub server_worker_threads: usize,
    /// Settlements started in the measured window.
    pub settlements: u64,
    /// Settlements received, warm-up included.
    pub settlements_total: u64,
    /// `Settled` answers the null server sent, warm-up included; must equal `settlements_total`.
    pub settled_answers: u64,
    pub window_secs: f64,
    pub settlements_per_sec: f64,
    pub open_latency: Percentiles,
    pub settle_latency: Percentiles,
    pub errors: u64,
    pub first_error: Option<String>,
    /// CPU time of the bench process (load client and null server) in the measured window, per measured
    /// settlement.
    pub process_cpu_ms_per_settlement: f64,
    /// The null server's threads' share of it.
    pub server_cpu_ms_per_settlement: f64,
    /// The rest: the load client (and whatever else the harness does meanwhile, which is nothing).
    pub client_cpu_ms_per_settlement: f64,
    /// Context switches of the null server's threads (voluntary + involuntary) in the measured window, per
    /// measured settlement.
    pub server_context_switches_per_settlement: f64,
}

/// Starts the null server, drives the settle load against it and stops it. A failed check is pushed to
/// `failures`.
pub async fn run(plan: &Plan, failures: &mut Vec<String>) -> anyhow::Result<TransportRun> {
    if cfg!(debug_assertions) && !plan.smoke {
        eprintln!(
            "bench: warning: this bench is a debug build, so are its transport figures; run \
             `cargo run --release -p bench`"
        );
    }
    let service_token = format!("svc-{}", uuid::Uuid::new_v4().simple());
    let server = NullServer::start(&service_token)?;
    // One key shaped like a real one (the null server does not look at it), as in the `hot` key set.
    let key = format!(
        "sk_live_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    eprintln!(
        "bench: transport (null MeteringService at {}, {SERVER_WORKER_THREADS} worker threads) \
         concurrency={} for {:?} (+{:?} warm-up)",
        server.url, plan.concurrency, plan.duration, plan.warmup
    );
    let (warmup, window) = (plan.warmup, plan.duration);
    let (outcome, probes) = settle::drive(
        plan,
        &server.url,
        &service_token,
        Arc::new(vec![key]),
        EXECUTION_PREFIX.to_string(),
        || {
            tokio::spawn(async move {
                tokio::time::sleep(warmup).await;
                let process = Probe::start(vec![std::process::id()], false, window);
                (process, probe::own_threads_usage(SERVER_THREAD))
            })
        },
    )
    .await?;
    let (process_probe, server_at_start) = probes.await.context("the probe task")?;
    let process_cpu_secs = process_probe.finish().await.cpu_secs;
    let server_at_end = probe::own_threads_usage(SERVER_THREAD);
    let server_cpu_secs = server_at_end.cpu_secs - server_at_start.cpu_secs;
    let server_context_switches = server_at_end
        .context_switches
        .saturating_sub(server_at_start.context_switches);
    let settled_answers = server.stop().await?;

    let per_settlement = |value: f64| value / outcome.measured.max(1) as f64;
    let per_settlement_ms = |secs: f64| per_settlement(secs * 1000.0);
    let settlements_per_sec = outcome.per_sec();
    eprintln!("bench:   {settlements_per_sec:.0} settlements/s");
    if outcome.errors > 0 {
        failures.push(format!(
            "transport: {} failed settlements, first: {}",
            outcome.errors,
            outcome.first_error.as_deref().unwrap_or("?")
        ));
    }
    if settled_answers != outcome.succeeded {
        failures.push(format!(
            "transport: the null server sent {settled_answers} Settled answers, the client received {}",
            outcome.succeeded
        ));
    }
    Ok(TransportRun {
        concurrency: plan.concurrency,
        connections: plan.connections,
        server_worker_threads: SERVER_WORKER_THREADS,
        settlements: outcome.measured,
        settlements_total: outcome.succeeded,
        settled_answers,
        window_secs: outcome.window.as_secs_f64(),
        settlements_per_sec,
        open_latency: outcome.first,
        settle_latency: outcome.second,
        errors: outcome.errors,
        first_error: outcome.first_error,
        process_cpu_ms_per_settlement: per_settlement_ms(process_cpu_secs),
        server_cpu_ms_per_settlement: per_settlement_ms(server_cpu_secs),
        client_cpu_ms_per_settlement: per_settlement_ms(process_cpu_secs - server_cpu_secs),
        server_context_switches_per_settlement: per_settlement(server_context_switches as f64),
    })
}

/// The null `MeteringService`, served like billing-svc serves (same listener settings, same message limits,
/// one spawned task per stream answering through a channel), but on its own tokio runtime: a dedicated OS
/// thread blocks on the server (as billing-svc's `#[tokio::main]` thread does) and the runtime has its own
/// `SERVER_WORKER_THREADS` workers. Its connections are thus never polled by the load client's workers,
/// which makes it resemble a separate service process as far as one process allows; it still shares the
/// allocator and the CPUs with the client.
struct NullServer {
    url: String,
    settled: Arc<AtomicU64>,
    /// Dropping it stops the server too.
    stop: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl NullServer {
    /// Binds 127.0.0.1:0 and starts serving; calls must carry `Bearer <service_token>`.
    fn start(service_token: &str) -> anyhow::Result<NullServer> {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").context("bind the null server")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        let settled = Arc::new(AtomicU64::new(0));
        let service = NullMetering {
            bearer: harness::grpc::bearer(service_token)?,
            settled: settled.clone(),
        };
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(SERVER_THREAD.to_string())
            .spawn(move || serve(listener, service, stopped))
            .context("spawn the null server's thread")?;
        Ok(NullServer {
            url,
            settled,
            stop,
            thread,
        })
    }

    /// Stops the server, waits for its thread, and returns how many `Settled` answers it sent.
    async fn stop(self) -> anyhow::Result<u64> {
        // An error means the server has already stopped, which the join reports.
        let _ = self.stop.send(());
        let thread = self.thread;
        tokio::time::timeout(
            STOP_TIMEOUT,
            tokio::task::spawn_blocking(move || thread.join()),
        )
        .await
        .context("the null server did not stop in time")?
        .context("wait for the null server's thread")?
        .map_err(|_| anyhow!("the null server's thread panicked"))?
        .context("the null server")?;
        // The join orders every increment before this read.
        Ok(self.settled.load(Ordering::Relaxed))
    }
}

/// The body of the null server's thread: its runtime, serving until `stopped` resolves.
fn serve(
    listener: std::net::TcpListener,
    service: NullMetering,
    stopped: oneshot::Receiver<()>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(SERVER_WORKER_THREADS)
        .thread_name(SERVER_THREAD)
        .enable_all()
        .build()
        .context("start the null server's runtime")?;
    runtime.block_on(async move {
        // Registered with this runtime's reactor, hence made here.
        let listener = tokio::net::TcpListener::from_std(listener)?;
        Server::builder()
            .add_service(
                MeteringServiceServer::new(service)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
            )
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .context("serve the null MeteringService")
    })
}

/// Answers at once, stores nothing; counts the `Settled` answers of `Meter`.
struct NullMetering {
    bearer: MetadataValue<Ascii>,
    settled: Arc<AtomicU64>,
}

impl NullMetering {
    fn authorize(&self, metadata: &MetadataMap) -> Result<(), Status> {
        match metadata.get("authorization") {
            Some(value) if *value == self.bearer => Ok(()),
            _ => Err(Status::unauthenticated("wrong or missing service token")),
        }
    }
}

type Answers = mpsc::Sender<Result<pb::MeterResponse, Status>>;

#[tonic::async_trait]
impl MeteringService for NullMetering {
    type MeterStream = ReceiverStream<Result<pb::MeterResponse, Status>>;

    async fn meter(
        &self,
        request: Request<Streaming<pb::MeterRequest>>,
    ) -> Result<Response<Self::MeterStream>, Status> {
        self.authorize(request.metadata())?;
        let inbound = request.into_inner();
        let (sender, receiver) = mpsc::channel(8);
        let settled = self.settled.clone();
        tokio::spawn(async move {
            if let Err(status) = answer(inbound, &sender, &settled).await {
                // The client may already be gone; then there is nobody to tell.
                let _ = sender.send(Err(status)).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn settle(
        &self,
        request: Request<pb::SettleRequest>,
    ) -> Result<Response<pb::Settlement>, Status> {
        self.authorize(request.metadata())?;
        Ok(Response::new(settlement(request.into_inner())))
    }
}

fn response(message: Out) -> pb::MeterResponse {
    pb::MeterResponse {
        message: Some(message),
    }
}

/// One stream, in billing-svc's protocol: Opened, a Grant per Progress, and Settled on Close, which ends it.
async fn answer(
    mut inbound: Streaming<pb::MeterRequest>,
    sender: &Answers,
    settled: &AtomicU64,
) -> Result<(), Status> {
    let Some(pb::MeterRequest {
        message: Some(In::Open(mut open)),
    }) = inbound.message().await?
    else {
        return Err(Status::invalid_argument("the first message must be open"));
    };
    let covered_output_tokens = match open.max_output_tokens {
        0 => DEFAULT_GRANT_TOKENS,
        max => max,
    };
    let opened = Out::Opened(pb::MeterOpened {
        api_key_id: API_KEY_ID.to_string(),
        account_id: API_KEY_ID.to_string(),
        key_type: pb::KeyType::Internal.into(),
        covered_output_tokens,
        held: "0".to_string(),
        price: Some(seed_price()),
        requests: None,
        tokens: None,
        // An internal key's hold is never extended: nothing to report before it is reached.
        report_at_output_tokens: covered_output_tokens,
    });
    if sender.send(Ok(response(opened))).await.is_err() {
        return Ok(());
    }
    while let Some(message) = inbound.message().await? {
        let close = match message.message {
            Some(In::Progress(_)) => {
                let extended = Out::Extended(pb::MeterExtended {
                    covered_output_tokens,
                    held: "0".to_string(),
                    report_at_output_tokens: covered_output_tokens,
                });
                if sender.send(Ok(response(extended))).await.is_err() {
                    return Ok(());
                }
                continue;
            }
            Some(In::Close(close)) => close,
            Some(In::Open(_)) | None => {
                return Err(Status::invalid_argument("expected progress or close"));
            }
        };
        let settled_message = Out::Settled(settlement(pb::SettleRequest {
            api_key_id: API_KEY_ID.to_string(),
            labels: Some(open.take_labels()),
            execution_id: open.execution_id,
            input_tokens: close.input_tokens,
            output_tokens: close.output_tokens,
            status: close.status,
            duration_ms: close.duration_ms,
            started_at: None,
            provider: close.provider.clone(),
            attempts: close.attempts,
            classes: close.classes,
            ..pb::SettleRequest::default()
        }));
        // Counted before it is queued, so that the count is complete once the client holds the answer.
        settled.fetch_add(1, Ordering::Relaxed);
        let _ = sender.send(Ok(response(settled_message))).await;
        return Ok(());
    }
    Ok(())
}

/// The seed's price row, as billing-svc prints it.
fn seed_price() -> pb::Price {
    pb::Price {
        model: "*".to_string(),
        base_input_price_per_1k: "0.01".to_string(),
        base_output_price_per_1k: "0.03".to_string(),
        markup: "1.5".to_string(),
        input_price_per_1k: "0.015".to_string(),
        output_price_per_1k: "0.045".to_string(),
        // The seed row is effective from the epoch, the default timestamp.
        effective_from: Some(Default::default()),
        base_cached_input_price_per_1k: "0.01".to_string(),
        base_cache_write_price_per_1k: "0.01".to_string(),
        base_cache_write_1h_price_per_1k: "0.01".to_string(),
        base_audio_input_price_per_1k: "0.01".to_string(),
        base_audio_output_price_per_1k: "0.03".to_string(),
        request_fee: "0".to_string(),
        account_id: String::new(),
        ended: false,
    }
}

/// A first settlement of an internal key (nothing charged) at the seed price, stamped now.
fn settlement(request: pb::SettleRequest) -> pb::Settlement {
    let input_nanos = request.input_tokens.saturating_mul(INPUT_NANOS_PER_TOKEN);
    let output_nanos = request.output_tokens.saturating_mul(OUTPUT_NANOS_PER_TOKEN);
    let mut usage = pb::UsageRecord {
        id: uuid::Uuid::new_v4().to_string(),
        account_id: request.api_key_id.clone(),
        api_key_id: request.api_key_id,
        execution_id: request.execution_id,
        session_id: request.session_id,
        workspace_id: request.workspace_id,
        model: request.model,
        input_tokens: request.input_tokens,
        output_tokens: request.output_tokens,
        total_tokens: request.input_tokens.saturating_add(request.output_tokens),
        input_cost: usd(input_nanos),
        output_cost: usd(output_nanos),
        total_cost: usd(input_nanos.saturating_add(output_nanos)),
        charged: "0".to_string(),
        overage: "0".to_string(),
        duration_ms: request.duration_ms,
        status: request.status,
        endpoint: request.endpoint,
        key_type: pb::KeyType::Internal.into(),
        timestamp: Some(Default::default()),
        refunded_amount: None,
        provider: request.provider,
        attempts: request.attempts,
        classes: request.classes,
        request_fee: "0".to_string(),
        provider_cost: Some(usd(input_nanos
            .saturating_add(output_nanos)
            .saturating_mul(2)
            / 3)),
        discount_percent: "0".to_string(),
        end_user_id: request.end_user_id,
    };
    // Set through the fields, so that the harness needs no prost-types of its own.
    if let (Some(timestamp), Ok(now)) = (
        usage.timestamp.as_mut(),
        SystemTime::now().duration_since(UNIX_EPOCH),
    ) {
        timestamp.seconds = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        timestamp.nanos = i32::try_from(now.subsec_nanos()).unwrap_or(0);
    }
    pb::Settlement {
        usage: Some(usage),
        balance_after: None,
        total_spent: None,
        replayed: false,
    }
}

/// Nano-dollars as a decimal USD string without trailing zeros ("0.00375", "0").
fn usd(nanos: u64) -> String {
    let text = format!("{}.{:09}", nanos / NANOS_PER_USD, nanos % NANOS_PER_USD);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use proto::billing::v1::metering_service_client::MeteringServiceClient;

    use super::*;
    use crate::billing;

    #[test]
    fn usd_prints_decimals_without_trailing_zeros() {
        assert_eq!(usd(3_750_000), "0.00375");
        assert_eq!(usd(0), "0");
        assert_eq!(usd(2 * NANOS_PER_USD), "2");
        assert_eq!(usd(1_500_000_001), "1.500000001");
    }

    #[tokio::test]
    async fn null_server_settles_and_counts_each_settlement() {
        let server = NullServer::start("token").unwrap();
        let client = MeteringServiceClient::new(harness::grpc::connect(&server.url).await.unwrap());
        let bearer = harness::grpc::bearer("token").unwrap();

        billing::settle_once(client.clone(), &bearer, "key", "run-1".into())
            .await
            .unwrap();
        let refused = billing::settle_once(
            client,
            &harness::grpc::bearer("wrong").unwrap(),
            "key",
            "run-2".into(),
        )
        .await;
        assert!(refused.is_err(), "a wrong service token is refused");

        assert_eq!(server.stop().await.unwrap(), 1);
    }
}
