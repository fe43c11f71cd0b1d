//! Starts the services in dependency order and stops them in the reverse one.
//!
//! Every service binds its listener when it is built, so the next one can be pointed at the real address
//! (port 0 works everywhere, which the tests use) and nothing waits or retries. Stopping goes from the front
//! to the back: the gateway first, so no new work comes in; then executor-svc, which finishes its in-flight
//! executions against a model and a billing-svc that are still up, and settles them; then the mock model
//! and billing-svc.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::Secrets;

/// Where each part of the running stack is.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub gateway: SocketAddr,
    pub billing: SocketAddr,
    pub executor: SocketAddr,
    /// The mock model, when it runs (neither `OPENAI_API_KEY` nor `OPENAI_BASE_URL` is set).
    pub mock_model: Option<SocketAddr>,
    /// The base URL executor-svc sends model calls to.
    pub model_base_url: String,
    pub database_url: String,
}

impl Endpoints {
    /// The gateway's base URL, e.g. `http://127.0.0.1:8080`.
    pub fn gateway_url(&self) -> String {
        format!("http://{}", reachable(self.gateway))
    }

    /// billing-svc's address as grpcurl takes it, e.g. `127.0.0.1:50051`.
    pub fn billing_target(&self) -> String {
        reachable(self.billing).to_string()
    }
}

/// How long the services may take to answer their first readiness probe.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const READY_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// One running service.
struct Service {
    name: &'static str,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

/// The running stack.
pub struct Stack {
    pub endpoints: Endpoints,
    /// In stopping order.
    services: Vec<Service>,
    /// Cancelled as soon as any service's server returns, asked to or not.
    exited: CancellationToken,
}

impl Stack {
    /// Builds every service (each binds its listener, migrates, loads what it needs), then starts serving.
    /// A service that cannot be built stops the start before anything serves.
    pub async fn start(secrets: &Secrets) -> anyhow::Result<Stack> {
        let billing_config: billing_svc::config::Config = configure(
            "billing-svc",
            &[
                "--admin-api-key",
                &secrets.admin_api_key,
                "--service-token",
                &secrets.service_token,
            ],
        )?;
        // The stack wires its services together with plain `http://` loopback URLs: a TLS listener would
        // cut them apart, so refuse the settings instead of failing at the first call.
        if billing_config.tls_cert_path.is_some() || billing_config.tls_key_path.is_some() {
            anyhow::bail!(
                "BILLING_TLS_CERT, BILLING_TLS_KEY: devstack serves plain gRPC on loopback; unset them"
            );
        }
        let database_url = billing_config.database_url.clone();
        let billing = billing_svc::startup::Application::build(billing_config)
            .await
            .context("cannot start billing-svc")?;
        let billing_addr = billing.local_addr()?;

        let mut executor_config: executor_svc::Config = configure(
            "executor-svc",
            &[
                "--service-token",
                &secrets.service_token,
                "--billing-url",
                &http_url(billing_addr),
            ],
        )?;
        if executor_config.tls_cert_path.is_some() || executor_config.tls_key_path.is_some() {
            anyhow::bail!(
                "EXECUTOR_TLS_CERT, EXECUTOR_TLS_KEY: devstack serves plain gRPC on loopback; unset them"
            );
        }
        let mock = if executor_config.model_endpoint().kind
            == executor_svc::config::EndpointKind::MockModel
        {
            let mock_config: mock_model::Config = configure("mock-model", &[])?;
            let mock = mock_model::Application::build(mock_config)
                .await
                .context("cannot start the mock model")?;
            executor_config.mock_model_url = format!("{}/v1", http_url(mock.local_addr()?));
            Some(mock)
        } else {
            None
        };
        let mock_addr = mock.as_ref().map(|mock| mock.local_addr()).transpose()?;
        let model_base_url = executor_config.model_endpoint().base_url;
        let executor = executor_svc::Application::build(executor_config)
            .await
            .context("cannot start executor-svc")?;
        let executor_addr = executor.local_addr()?;

        let gateway_config: gateway::config::Config = configure(
            "gateway",
            &[
                "--billing-url",
                &http_url(billing_addr),
                "--executor-url",
                &http_url(executor_addr),
            ],
        )?;
        let gateway = gateway::startup::Application::build(gateway_config)
            .await
            .context("cannot start the gateway")?;
        let gateway_addr = gateway.local_addr()?;

        let exited = CancellationToken::new();
        let mut services = vec![spawn("gateway", &exited, |shutdown| {
            gateway.run_until_stopped(shutdown)
        })];
        services.push(spawn("executor-svc", &exited, |shutdown| {
            executor.run_until_stopped(shutdown)
        }));
        if let Some(mock) = mock {
            services.push(spawn("mock-model", &exited, |shutdown| {
                mock.run_until_stopped(shutdown)
            }));
        }
        services.push(spawn("billing-svc", &exited, |shutdown| {
            billing.run_until_stopped(shutdown)
        }));

        Ok(Stack {
            endpoints: Endpoints {
                gateway: gateway_addr,
                billing: billing_addr,
                executor: executor_addr,
                mock_model: mock_addr,
                model_base_url,
                database_url,
            },
            services,
            exited,
        })
    }

    /// Waits until the gateway's `/readyz` (which checks billing-svc and executor-svc) and the mock model
    /// answer, so that "up" is printed only when a call would succeed. Every listener is bound already, so
    /// this normally answers at the first try; the bound keeps a broken wiring from hanging the start.
    pub async fn wait_until_ready(&self) -> anyhow::Result<()> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()?;
        let mut probes = vec![format!("{}/readyz", self.endpoints.gateway_url())];
        if let Some(mock) = self.endpoints.mock_model {
            probes.push(format!("{}/healthz", http_url(mock)));
        }
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        for probe in probes {
            loop {
                let answer = http.get(&probe).send().await;
                if answer
                    .as_ref()
                    .is_ok_and(|answer| answer.status().is_success())
                {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    let answer = match answer {
                        Ok(answer) => answer.text().await.unwrap_or_default(),
                        Err(error) => error.to_string(),
                    };
                    anyhow::bail!("{probe} is not ready after {READY_TIMEOUT:?}: {answer}");
                }
                tokio::time::sleep(READY_POLL_INTERVAL).await;
            }
        }
        Ok(())
    }

    /// Resolves when a service has stopped by itself (its server failed): the stack is broken.
    pub async fn exited(&self) {
        self.exited.cancelled().await;
    }

    /// Stops every service in order, each after the one in front of it has finished draining. Returns the
    /// failures of those that did not stop cleanly.
    pub async fn stop(self) -> anyhow::Result<()> {
        let mut failures = Vec::new();
        for service in self.services {
            service.stop.cancel();
            match service.task.await {
                Ok(Ok(())) => tracing::info!(service = service.name, "stopped"),
                Ok(Err(error)) => failures.push(format!("{}: {error:#}", service.name)),
                Err(panicked) => failures.push(format!("{}: {panicked}", service.name)),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(anyhow::anyhow!(failures.join("; ")))
        }
    }
}

/// A service's configuration from its own flags' environment variables, with `args` on top (what the
/// stack decides: secrets and the addresses of the other services).
fn configure<C: clap::Parser>(binary: &str, args: &[&str]) -> anyhow::Result<C> {
    C::try_parse_from(std::iter::once(binary).chain(args.iter().copied()))
        .with_context(|| format!("invalid {binary} configuration"))
}

/// Serves one service on its own task until its token is cancelled.
fn spawn<F, E>(
    name: &'static str,
    exited: &CancellationToken,
    serve: impl FnOnce(WaitForCancellationFutureOwned) -> F,
) -> Service
where
    F: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<anyhow::Error>,
{
    let stop = CancellationToken::new();
    let served = serve(stop.clone().cancelled_owned());
    let exited = exited.clone();
    let task = tokio::spawn(async move {
        let result = served.await.map_err(Into::into);
        exited.cancel();
        result
    });
    Service { name, stop, task }
}

/// `http://<addr>` with a wildcard address (`0.0.0.0`, `::`) replaced by loopback, since a wildcard is
/// where one listens, not where one connects.
fn http_url(addr: SocketAddr) -> String {
    format!("http://{}", reachable(addr))
}

fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}
