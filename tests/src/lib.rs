//! Test harness: starts the real service binaries as processes on loopback ports, with a fresh database
//! each, and checks the ledger invariants straight in the database.
//!
//! Binaries are taken from the cargo target directory (`cargo build --workspace --bins` first; the test
//! script does it). Each service logs JSON lines on stdout (`LOG_FORMAT=json`) and announces its bound address
//! with a `listening` event carrying an `addr` field; the harness waits for that line, so no sleeps and no
//! fixed ports. Set `TEST_LOG=1` to see the services' logs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod database;
mod process;

pub use database::{Backend, TestDatabase, assert_ledger_invariants};
pub use process::{ServiceProcess, binary_path};

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

    /// Stops the process (SIGKILL) and hands back its database.
    pub async fn stop(self) -> TestDatabase {
        self.process.kill().await;
        self.database
    }
}
