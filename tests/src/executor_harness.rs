//! Harness pieces for executor-svc journeys: the mock model and executor-svc as processes, and a restart
//! of billing-svc at the same address (executor-svc keeps its `BILLING_URL`) with the same secrets.

use std::path::Path;

use proto::executor::v1::executor_service_client::ExecutorServiceClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;

use crate::{Billing, BillingOf, Service, ServiceProcess, TestDatabase, launcher};

/// A running mock-model (see the `mock-model` crate for the model-name directives).
pub struct MockModel {
    pub process: ServiceProcess,
}

impl MockModel {
    pub async fn start() -> MockModel {
        let process =
            ServiceProcess::start(launcher(), "mock-model", &["--listen", "127.0.0.1:0"], &[])
                .await
                .expect("start mock-model");
        MockModel { process }
    }

    /// The OpenAI-compatible base URL, e.g. `http://127.0.0.1:40123/v1`.
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.process.url())
    }

    /// Chat completions requested since the mock started (`GET /stats`).
    pub async fn requests(&self) -> u64 {
        let mut stream = tokio::net::TcpStream::connect(&self.process.addr)
            .await
            .expect("connect to mock-model");
        stream
            .write_all(b"GET /stats HTTP/1.1\r\nHost: mock\r\nConnection: close\r\n\r\n")
            .await
            .expect("send GET /stats");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .expect("read /stats");
        let body = response.split("\r\n\r\n").nth(1).expect("an HTTP body");
        let stats: serde_json::Value = serde_json::from_str(body).expect("JSON stats");
        stats["requests"].as_u64().expect("requests count")
    }
}

/// A running executor-svc.
pub struct Executor {
    pub process: ServiceProcess,
}

impl Executor {
    /// Starts executor-svc against `billing` (a process or not) and `model`, spooling into `spool_dir`,
    /// with `extra_envs`.
    pub async fn start<S: Service>(
        billing: &BillingOf<S>,
        model: &MockModel,
        spool_dir: &Path,
        extra_envs: &[(&str, &str)],
    ) -> Executor {
        let billing_url = billing.url();
        let model_url = model.base_url();
        let spool = spool_dir.display().to_string();
        let mut envs = vec![
            ("BILLING_URL", billing_url.as_str()),
            ("SERVICE_TOKEN", billing.service_token.as_str()),
            ("MOCK_MODEL_URL", model_url.as_str()),
            ("EXECUTOR_SPOOL_PATH", spool.as_str()),
            ("EXECUTOR_SPOOL_RETRY_MAX_SECS", "1"),
            ("EXECUTOR_BILLING_TIMEOUT_MS", "3000"),
            ("EXECUTOR_UPSTREAM_TIMEOUT_SECS", "10"),
        ];
        envs.extend_from_slice(extra_envs);
        let process = ServiceProcess::start(
            launcher(),
            "executor-svc",
            &["--listen", "127.0.0.1:0"],
            &envs,
        )
        .await
        .expect("start executor-svc");
        Executor { process }
    }

    pub async fn client(&self) -> ExecutorServiceClient<Channel> {
        let channel = tonic::transport::Endpoint::from_shared(self.process.url())
            .expect("valid url")
            .connect()
            .await
            .expect("connect to executor-svc");
        ExecutorServiceClient::new(channel)
    }
}

/// Starts billing-svc again on `database` at `addr` (the address it had) with the same admin key and
/// service token, so that running clients reconnect to it unchanged.
pub async fn restart_billing_at(
    database: TestDatabase,
    addr: &str,
    admin_key: String,
    service_token: String,
    extra_args: &[&str],
) -> Billing {
    let mut args = vec!["--listen", addr];
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
    .expect("restart billing-svc");
    Billing {
        process,
        database,
        admin_key,
        service_token,
    }
}
