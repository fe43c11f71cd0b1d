//! The suites' side of the harness: the services on loopback ports with a fresh database each, plus the
//! clients and journeys the suites share. A service runs either as its binary, a process started through
//! the shared `harness` crate (processes, PostgreSQL clusters, databases and the ledger audit, the `Meter`
//! driver): [`Stack`], [`Billing`]; or as its library on the test's own runtime ([`in_process`]), which
//! starts in a fraction of the time: [`in_process::Stack`], [`in_process::Billing`]. Both are the same
//! types over a different [`Service`], with the same API; only what needs a process (logs, kill, signals,
//! an environment variable) is the process stack's alone.
//!
//! Binaries are taken from the cargo target directory this test binary was built into (`cargo build
//! --workspace --bins` first; the test script does it). Each service logs JSON lines on stdout
//! (`LOG_FORMAT=json`) and announces its bound address with a `listening` event carrying an `addr` field;
//! the harness waits for that line, so no sleeps and no fixed ports. Set `TEST_LOG=1` to see the services'
//! logs, `TEST_RUST_LOG` to change their filter (default `info`). PostgreSQL tests create their databases
//! on the cluster of `TEST_POSTGRES_URL`, and a test that crashes its own cluster takes PostgreSQL's
//! programs from `TEST_PG_BIN` (else from `PATH`); `scripts/test` sets both.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod agent_clis;
pub mod docs_harness;
mod executor_harness;
pub mod failing_provider;
pub mod fake_stripe;
mod gateway_harness;
pub mod in_process;
pub mod reliability;
pub mod replica;
pub mod smtp_receiver;
pub mod tcp_proxy;
pub mod tmpfs;
pub mod webhook_receiver;

pub use executor_harness::{Executor, MockModel, restart_billing_at};
pub use gateway_harness::{
    Answer, SseEvent, StackOf, answer as gateway_answer, default_cost, parse_sse,
};
/// The harness's pieces, under the names the suites import them by.
pub use harness::{Backend, Cluster, MeterSession, ServiceProcess};

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use harness::{Database, KeptLogs, Launcher};
use proto::billing::v1 as pb;
use proto::billing::v1::account_service_client::AccountServiceClient;
use proto::billing::v1::admin_service_client::AdminServiceClient;
use proto::billing::v1::metering_service_client::MeteringServiceClient;
use tonic::transport::Channel;

/// How long a service may take to announce it is listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How the suites start services: the binaries next to this test binary's profile folder, every log line
/// kept (tests assert on what a service logged), echoed with `TEST_LOG`.
pub fn launcher() -> &'static Launcher {
    static LAUNCHER: OnceLock<Launcher> = OnceLock::new();
    LAUNCHER.get_or_init(|| Launcher {
        bin_dir: harness::process::bin_dir_of_test_binary().expect("the target profile folder"),
        rust_log: std::env::var("TEST_RUST_LOG").unwrap_or_else(|_| "info".into()),
        extra_env: Vec::new(),
        echo_logs: std::env::var_os("TEST_LOG").is_some(),
        kept_logs: KeptLogs::All,
        start_timeout: START_TIMEOUT,
    })
}

/// The path of the workspace binary `name`, built next to this test binary.
pub fn binary_path(name: &str) -> PathBuf {
    launcher()
        .binary(name)
        .unwrap_or_else(|error| panic!("{error:#}; scripts/test builds them"))
}

/// A database owned by one test: the harness's [`Database`] (derefs to it), made the suites' way, a fresh
/// one per test, failing the test when that fails. billing-svc's ledger property test uses it too.
pub struct TestDatabase(Database);

impl TestDatabase {
    /// A fresh database of `backend`: a SQLite file in a folder billing-svc must create, or a new
    /// database on the cluster of `TEST_POSTGRES_URL`.
    pub async fn create(backend: Backend) -> TestDatabase {
        let cluster = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(Cluster::existing(postgres_admin_url())),
        };
        let database = Database::create(backend, cluster.as_ref(), DATABASE_PREFIX)
            .await
            .unwrap_or_else(|error| panic!("create a {} test database: {error:#}", backend.name()));
        TestDatabase(database)
    }

    /// A new empty database on `cluster` (e.g. a test's private cluster).
    pub async fn on_cluster(cluster: &Cluster) -> TestDatabase {
        let database = Database::create(Backend::Postgres, Some(cluster), DATABASE_PREFIX)
            .await
            .unwrap_or_else(|error| panic!("create a database on the cluster: {error:#}"));
        TestDatabase(database)
    }

    /// A database that already exists at `url` (another billing-svc's, or one a test prepared).
    pub fn existing(backend: Backend, url: String) -> TestDatabase {
        TestDatabase(Database::existing(backend, url))
    }

    /// A database as an earlier release left it, rebuilt from `tests/fixtures/<name>.<backend>.sql` (a
    /// `sqlite3 .dump` or a `pg_dump --inserts`), with the folder of a SQLite file (kept as long as it is).
    pub async fn from_fixture(
        backend: Backend,
        name: &str,
    ) -> (TestDatabase, Option<tempfile::TempDir>) {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let dump = std::fs::read_to_string(fixtures.join(format!("{name}.{}.sql", backend.name())))
            .unwrap_or_else(|error| panic!("fixture {name}: {error}"));
        let (database, dir) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a folder for the fixture");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("billing.db").display()
                );
                (TestDatabase::existing(backend, url), Some(dir))
            }
            Backend::Postgres => (TestDatabase::create(backend).await, None),
        };
        let mut connection = database
            .connect()
            .await
            .expect("connect to the fixture's database");
        sqlx::raw_sql(&dump)
            .execute(&mut connection)
            .await
            .unwrap_or_else(|error| panic!("load fixture {name}: {error}"));
        sqlx::Connection::close(connection).await.expect("close");
        (database, dir)
    }
}

impl Deref for TestDatabase {
    type Target = Database;

    fn deref(&self) -> &Database {
        &self.0
    }
}

/// How the names of the suites' PostgreSQL databases start (`t_<uuid>`).
const DATABASE_PREFIX: &str = "t";

/// The PostgreSQL cluster for tests. `scripts/test` starts one; without it the PostgreSQL variants fail
/// loudly rather than pass silently.
fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").expect(
        "TEST_POSTGRES_URL is not set: run the suite with scripts/test, which starts a throwaway PostgreSQL",
    )
}

/// PostgreSQL's bin folder for a test's private cluster: `TEST_PG_BIN` (scripts/test exports it), else
/// the folder of the `initdb` on `PATH`.
pub fn pg_bin_dir() -> PathBuf {
    match std::env::var_os("TEST_PG_BIN") {
        Some(dir) => PathBuf::from(dir),
        None => harness::postgres::bin_dir_on_path().unwrap_or_else(|error| {
            panic!("{error:#}: set TEST_PG_BIN to PostgreSQL's bin folder (scripts/test does)")
        }),
    }
}

/// The one ledger audit (`billing_svc::store::audit`, through the harness): panics with every violation.
pub async fn assert_ledger_invariants(database: &Database) {
    if let Err(error) = database.check_ledger_invariants().await {
        panic!("{error:#}");
    }
}

/// Seals again the hash chain of `account_id` (BILLING.md, "The hash chain") after a test moved its rows in
/// time on purpose (backdating what a month or a week needs): the audit would rightly call that tampering.
/// Rows are rehashed in id order from the genesis and the account's head is set to the last.
pub async fn reseal_ledger_chain(database: &Database, account_id: &str) {
    use billing_svc::credits::transactions::{chain, sql};
    let mut connection = database
        .connect()
        .await
        .expect("connect to the test database");
    let account = proto::ids::AccountId::from(account_id.to_string());
    let (mut prev, mut after) = (chain::GENESIS.to_string(), 0);
    loop {
        let rows = sql::chain_page(&mut connection, &account, after, chain::PAGE)
            .await
            .expect("read the account's rows");
        let Some(last) = rows.last() else { break };
        after = last.id;
        for mut row in rows {
            row.prev_hash = prev;
            row.hash = chain::hash(&row, &row.prev_hash);
            sql::set_chain(&mut connection, &row)
                .await
                .expect("reseal a row");
            prev = row.hash;
        }
    }
    let head = if after == 0 { String::new() } else { prev };
    sqlx::query("UPDATE billing_accounts SET ledger_hash = $1 WHERE id = $2")
        .bind(head)
        .bind(account_id)
        .execute(&mut connection)
        .await
        .expect("set the account's head");
}

/// The gRPC status a service refused a harness call with; panics when the call failed otherwise (an
/// answer out of protocol, a broken connection).
pub fn grpc_status(error: anyhow::Error) -> tonic::Status {
    error
        .downcast::<tonic::Status>()
        .unwrap_or_else(|error| panic!("not a refusal by the service: {error:#}"))
}

/// A bearer value for gRPC metadata.
pub fn bearer(secret: &str) -> tonic::metadata::MetadataValue<tonic::metadata::Ascii> {
    harness::grpc::bearer(secret).expect("ascii secret")
}

/// Wraps a message in a request carrying `authorization: Bearer <secret>`.
pub fn authed<T>(secret: &str, message: T) -> tonic::Request<T> {
    harness::grpc::authed(&bearer(secret), message)
}

/// A running service the suites talk to, however it runs: where it listens.
pub trait Service {
    /// `http://<addr>`.
    fn url(&self) -> String;
}

impl Service for ServiceProcess {
    fn url(&self) -> String {
        ServiceProcess::url(self)
    }
}

/// The stack whose services are processes (the binaries next to this test binary).
pub type Stack = StackOf<ServiceProcess>;

/// billing-svc as a process.
pub type Billing = BillingOf<ServiceProcess>;

/// A running billing-svc with its own database, admin key and service token; `process` is how it runs
/// (a [`ServiceProcess`], or [`in_process::InProcess`]).
pub struct BillingOf<S> {
    pub process: S,
    pub database: TestDatabase,
    pub admin_key: String,
    pub service_token: String,
}

/// A fresh admin key and service token for one billing-svc.
fn new_secrets() -> (String, String) {
    (
        format!("admin-{}", uuid::Uuid::new_v4().simple()),
        format!("svc-{}", uuid::Uuid::new_v4().simple()),
    )
}

impl Billing {
    /// Starts billing-svc on a fresh database of `backend`, with `extra_args` appended (e.g. `--hold-ttl-secs`).
    pub async fn start(backend: Backend, extra_args: &[&str]) -> Billing {
        Self::start_on(TestDatabase::create(backend).await, extra_args).await
    }

    /// Starts billing-svc on an existing database (e.g. to restart it on the same data).
    pub async fn start_on(database: TestDatabase, extra_args: &[&str]) -> Billing {
        let (admin_key, service_token) = new_secrets();
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
            launcher(),
            "billing-svc",
            &args,
            &[
                ("DATABASE_URL", database.url.as_str()),
                ("ADMIN_API_KEY", admin_key.as_str()),
                ("SERVICE_TOKEN", service_token.as_str()),
            ],
        )
        .await
        .expect("start billing-svc");
        Billing {
            process,
            database,
            admin_key,
            service_token,
        }
    }

    /// Stops the process (SIGKILL) and hands back its database.
    pub async fn stop(self) -> TestDatabase {
        self.process.kill().await;
        self.database
    }
}

impl<S: Service> BillingOf<S> {
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

    /// Opens a metering stream for `execution_id` with the service token; a refusal is an error holding
    /// the service's status (see [`grpc_status`]).
    pub async fn open(
        &self,
        key: &str,
        execution_id: &str,
        input_tokens: u64,
        max_output_tokens: u64,
    ) -> anyhow::Result<MeterSession> {
        MeterSession::open(
            self.metering().await,
            &bearer(&self.service_token),
            pb::MeterOpen {
                api_key: key.into(),
                execution_id: execution_id.into(),
                labels: Some(pb::Labels {
                    model: "test-model".into(),
                    workspace_id: "ws-1".into(),
                    session_id: "session-1".into(),
                    endpoint: "/execute".into(),
                    ..Default::default()
                }),
                estimated_input_tokens: input_tokens,
                max_output_tokens,
                ..Default::default()
            },
        )
        .await
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
