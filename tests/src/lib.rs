//! Test harness: starts the real service binaries as processes on loopback ports, with a fresh database
//! each, and checks the ledger invariants straight in the database.
//!
//! Binaries are taken from the cargo target directory (`cargo build --workspace --bins` first; the test
//! script does it). Each service logs JSON lines on stdout (`LOG_FORMAT=json`) and announces its bound address
//! with a `listening` event carrying an `addr` field; the harness waits for that line, so no sleeps and no
//! fixed ports. Set `TEST_LOG=1` to see the services' logs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod database;
pub mod docs_harness;
mod executor_harness;
pub mod fake_stripe;
mod gateway_harness;
mod metering;
mod postgres_cluster;
mod process;
pub mod reliability;

pub use database::{Backend, TestDatabase, assert_ledger_invariants};
pub use executor_harness::{Executor, MockModel, restart_billing_at};
pub use gateway_harness::{
    Answer, SseEvent, Stack, answer as gateway_answer, default_cost, parse_sse,
};
pub use metering::MeterSession;
pub use postgres_cluster::PgCluster;
pub use process::{ServiceProcess, binary_path};

use proto::billing::v1 as pb;
use proto::billing::v1::account_service_client::AccountServiceClient;
use proto::billing::v1::admin_service_client::AdminServiceClient;
use proto::billing::v1::metering_service_client::MeteringServiceClient;
use tonic::transport::Channel;

use std::time::Duration;

/// How long a service may take to announce it is listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A bearer value for gRPC metadata.
pub fn bearer(secret: &str) -> tonic::metadata::MetadataValue<tonic::metadata::Ascii> {
    format!("Bearer {secret}").parse().expect("ascii secret")
}

/// Wraps a message in a request carrying `authorization: Bearer <secret>`.
pub fn authed<T>(secret: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", bearer(secret));
    request
}

/// A running billing-svc with its own database, admin key and service token.
pub struct Billing {
    pub process: ServiceProcess,
    pub database: TestDatabase,
    pub admin_key: String,
    pub service_token: String,
}

impl Billing {
    /// Starts billing-svc on a fresh database of `backend`, with `extra_args` appended (e.g. `--hold-ttl-secs`).
    pub async fn start(backend: Backend, extra_args: &[&str]) -> Billing {
        let database = TestDatabase::create(backend).await;
        Self::start_on(database, extra_args).await
    }

    /// Starts billing-svc on an existing database (e.g. to restart it on the same data).
    pub async fn start_on(database: TestDatabase, extra_args: &[&str]) -> Billing {
        let admin_key = format!("admin-{}", uuid::Uuid::new_v4().simple());
        let service_token = format!("svc-{}", uuid::Uuid::new_v4().simple());
        Self::start_with(database, admin_key, service_token, extra_args).await
    }

    /// Starts billing-svc on `database` with the given secrets (to restart a service as it was).
    pub async fn start_with(
        database: TestDatabase,
        admin_key: String,
        service_token: String,
        extra_args: &[&str],
    ) -> Billing {
        let mut args = vec!["--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra_args);
        let process = ServiceProcess::start(
            "billing-svc",
            &args,
            &[
                ("DATABASE_URL", database.url.as_str()),
                ("ADMIN_API_KEY", admin_key.as_str()),
                ("SERVICE_TOKEN", service_token.as_str()),
            ],
        )
        .await;
        Billing {
            process,
            database,
            admin_key,
            service_token,
        }
    }

    /// The gRPC endpoint, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        self.process.url()
    }

    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.url())
            .expect("valid url")
            .connect()
            .await
            .expect("connect to billing-svc")
    }

    pub async fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel().await)
    }

    pub async fn account(&self) -> AccountServiceClient<Channel> {
        AccountServiceClient::new(self.channel().await)
    }

    pub async fn metering(&self) -> MeteringServiceClient<Channel> {
        MeteringServiceClient::new(self.channel().await)
    }

    /// Creates a key through AdminService; returns its id and plain key.
    pub async fn create_key(&self, key_type: pb::KeyType) -> (String, String) {
        let response = self
            .admin()
            .await
            .create_key(authed(
                &self.admin_key,
                pb::CreateKeyRequest {
                    name: "test key".into(),
                    key_type: key_type.into(),
                    ..Default::default()
                },
            ))
            .await
            .expect("create key")
            .into_inner();
        (response.api_key.expect("api key").id, response.key)
    }

    /// Adds `amount` (a decimal string) of credits to `api_key_id`.
    pub async fn add_credits(&self, api_key_id: &str, amount: &str) -> pb::LedgerResponse {
        self.admin()
            .await
            .add_credits(authed(
                &self.admin_key,
                pb::AddCreditsRequest {
                    api_key_id: api_key_id.into(),
                    amount: amount.into(),
                    ..Default::default()
                },
            ))
            .await
            .expect("add credits")
            .into_inner()
    }

    /// The account as its own key sees it.
    pub async fn account_of(&self, key: &str) -> pb::Account {
        self.account()
            .await
            .get_account(authed(key, pb::GetAccountRequest {}))
            .await
            .expect("get account")
            .into_inner()
    }

    /// Opens a metering stream for `execution_id` with the service token.
    pub async fn open(
        &self,
        key: &str,
        execution_id: &str,
        input_tokens: u64,
        max_output_tokens: u64,
    ) -> Result<MeterSession, tonic::Status> {
        MeterSession::open(
            self.metering().await,
            &self.service_token,
            pb::MeterOpen {
                api_key: key.into(),
                execution_id: execution_id.into(),
                model: "test-model".into(),
                estimated_input_tokens: input_tokens,
                max_output_tokens,
                workspace_id: "ws-1".into(),
                session_id: "session-1".into(),
                endpoint: "/execute".into(),
                ..Default::default()
            },
        )
        .await
    }

    /// Stops the process (SIGKILL) and hands back its database.
    pub async fn stop(self) -> TestDatabase {
        self.process.kill().await;
        self.database
    }
}

/// Generates one `#[tokio::test]` per backend for each `async fn name(backend: Backend)` listed:
/// `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await
                }
            )*
        }
    };
}

/// Polls `check` every 20 ms until it returns true, for at most `timeout`. For waiting on something the
/// service does by itself (expiry); the bound keeps a broken service from hanging the suite.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check().await
}
