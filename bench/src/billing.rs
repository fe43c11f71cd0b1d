//! billing-svc under test: started on a database with fresh secrets (and a write mode when it has the
//! flag), keys created and credited through AdminService, and one settlement driven over `Meter`
//! exactly as executor-svc drives it (open, wait for the hold, close, wait for the settlement), timed.

use anyhow::{Context, ensure};
use futures::{StreamExt, TryStreamExt};
use harness::grpc::{authed, bearer, connect};
use harness::{Database, Launcher, MeterSession, ServiceProcess};
use proto::billing::v1 as pb;
use proto::billing::v1::admin_service_client::AdminServiceClient;
use proto::billing::v1::metering_service_client::MeteringServiceClient;
use tokio::time::Instant;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::config::WriteMode;
use crate::load::Timing;

/// Admin calls in flight while seeding keys: enough to fill a group-commit batch, few enough not to
/// queue for seconds behind a naive writer.
const SEED_CONCURRENCY: usize = 32;

/// Token counts of every benchmark execution: a short chat turn. The hold covers exactly this usage,
/// so no settlement records an overage.
pub const INPUT_TOKENS: u64 = 100;
pub const OUTPUT_TOKENS: u64 = 50;

/// A running billing-svc and the secrets it was started with.
pub struct Billing {
    pub process: ServiceProcess,
    pub admin_key: String,
    pub service_token: String,
}

/// A key the harness created and credited: the plain key, as a customer would present it.
#[derive(Debug, Clone)]
pub struct Key {
    pub plain: String,
}

impl Billing {
    /// Starts billing-svc on `database`; `write_mode` is passed only when given (the flag may not exist).
    pub async fn start(
        launcher: &Launcher,
        database: &Database,
        write_mode: Option<WriteMode>,
    ) -> anyhow::Result<Billing> {
        let admin_key = format!("admin-{}", uuid::Uuid::new_v4().simple());
        let service_token = format!("svc-{}", uuid::Uuid::new_v4().simple());
        let mut args = vec!["--listen", "127.0.0.1:0"];
        if let Some(mode) = write_mode {
            args.extend(["--write-mode", mode.name()]);
        }
        let process = ServiceProcess::start(
            launcher,
            "billing-svc",
            &args,
            &[
                ("DATABASE_URL", database.url.as_str()),
                ("ADMIN_API_KEY", admin_key.as_str()),
                ("SERVICE_TOKEN", service_token.as_str()),
            ],
        )
        .await?;
        Ok(Billing {
            process,
            admin_key,
            service_token,
        })
    }

    /// A new HTTP/2 connection to the service.
    pub async fn connect(&self) -> anyhow::Result<Channel> {
        connect(&self.process.url()).await
    }

    /// Creates `count` standard keys through AdminService and credits each with `credit_usd`.
    pub async fn create_funded_keys(
        &self,
        count: u32,
        credit_usd: &str,
    ) -> anyhow::Result<Vec<Key>> {
        let admin = AdminServiceClient::new(self.connect().await?);
        let bearer = bearer(&self.admin_key)?;
        futures::stream::iter(0..count)
            .map(|index| {
                let mut admin = admin.clone();
                let bearer = bearer.clone();
                async move {
                    let created = admin
                        .create_key(authed(
                            &bearer,
                            pb::CreateKeyRequest {
                                name: format!("bench key {index}"),
                                key_type: pb::KeyType::Standard.into(),
                                ..Default::default()
                            },
                        ))
                        .await
                        .context("AdminService.CreateKey")?
                        .into_inner();
                    let id = created.api_key.context("CreateKey answered no key")?.id;
                    admin
                        .add_credits(authed(
                            &bearer,
                            pb::AddCreditsRequest {
                                api_key_id: id,
                                amount: credit_usd.to_string(),
                                ..Default::default()
                            },
                        ))
                        .await
                        .context("AdminService.AddCredits")?;
                    anyhow::Ok(Key { plain: created.key })
                }
            })
            .buffer_unordered(SEED_CONCURRENCY)
            .try_collect()
            .await
    }

    pub async fn stop(self) {
        self.process.kill().await;
    }
}

/// One execution on its own `Meter` stream: Open → Opened, then Close → Settled. Times the open (Open sent
/// to Opened received, stream set-up included) and the settlement (Close sent to Settled received).
pub async fn settle_once(
    client: MeteringServiceClient<Channel>,
    service_bearer: &MetadataValue<Ascii>,
    key: &str,
    execution_id: String,
) -> anyhow::Result<Timing> {
    let opening = Instant::now();
    let session = MeterSession::open(
        client,
        service_bearer,
        pb::MeterOpen {
            api_key: key.to_string(),
            execution_id,
            labels: Some(pb::Labels {
                model: "gpt-4o-mini".into(),
                workspace_id: "bench".into(),
                session_id: "bench".into(),
                endpoint: "/execute".into(),
                ..Default::default()
            }),
            estimated_input_tokens: INPUT_TOKENS,
            max_output_tokens: OUTPUT_TOKENS,
            ..Default::default()
        },
    )
    .await?;
    let open = opening.elapsed();

    let closing = Instant::now();
    let settlement = session
        .close(INPUT_TOKENS, OUTPUT_TOKENS, pb::UsageStatus::Completed)
        .await?;
    ensure!(
        !settlement.replayed,
        "expected a first settlement, got a replayed one: {settlement:?}"
    );
    Ok(Timing {
        first: open,
        second: Some(closing.elapsed()),
    })
}
