//! Lifecycle: [`Application::build`] binds the listener and prepares every client (port 0 works);
//! [`Application::run_until_stopped`] serves ExecutorService, health and reflection until the shutdown
//! signal, then drains in-flight executions (which settle or spool) and flushes the spool once more.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proto::executor::v1::executor_service_server::ExecutorServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{
    Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig,
};

use crate::config::{Config, ConfigError};
use crate::execution::{Executor, Limits};
use crate::grpc::{Defaults, ExecutorGrpc};
use crate::metering::Metering;
use crate::providers::{Providers, ProvidersError};
use crate::spool::Spool;
use crate::tokens;
use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// Why the service could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the spool at {path}: {source}")]
    Spool {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Providers(#[from] ProvidersError),
    #[error("invalid BILLING_URL: {0}")]
    BillingUrl(tonic::transport::Error),
    #[error("reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A bound, not yet serving, executor-svc.
pub struct Application {
    listener: TcpListener,
    /// `None`: plaintext gRPC (the default).
    tls: Option<ServerTlsConfig>,
    executor: Arc<Executor>,
    defaults: Defaults,
    metering: Metering,
    spool: Spool,
    tasks: TaskTracker,
    spool_retry_max: Duration,
    shutdown_grace: Duration,
    billing_timeout: Duration,
}

impl Application {
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        config.validate()?;
        let tls = server_tls(&config)?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: config.listen,
                    source,
                })?;

        let channel = billing_channel(&config)?;
        let metering = Metering::new(
            channel,
            config.service_token.clone(),
            config.billing_timeout(),
        );

        let spool = Spool::open(&config.spool_path).map_err(|source| StartupError::Spool {
            path: config.spool_path.display().to_string(),
            source,
        })?;

        let providers = match &config.providers_file {
            Some(path) => {
                let providers = Providers::load(path, config.upstream_timeout(), |name| {
                    std::env::var(name).ok()
                })?;
                tracing::info!(file = %path.display(), providers = ?providers.names(), "model providers");
                providers
            }
            None => {
                let endpoint = config.model_endpoint();
                tracing::info!(kind = ?endpoint.kind, base_url = %endpoint.base_url, "model endpoint");
                Providers::single(&endpoint, config.upstream_timeout())
            }
        };

        // Building the tokenizer tables takes a moment; do it before the first request waits for it.
        tokio::task::spawn_blocking(tokens::warm_up)
            .await
            .map_err(std::io::Error::other)?;

        let tasks = TaskTracker::new();
        let limits = Limits {
            progress_interval_tokens: u64::from(config.progress_interval_tokens),
        };
        let executor = Arc::new(Executor::new(
            providers,
            metering.clone(),
            spool.clone(),
            limits,
            tasks.clone(),
        ));
        Ok(Application {
            listener,
            tls,
            executor,
            defaults: Defaults {
                model: config.default_model.clone(),
                embedding_model: config.default_embedding_model.clone(),
                max_output_tokens: config.max_output_tokens,
            },
            metering,
            spool,
            tasks,
            spool_retry_max: config.spool_retry_max(),
            shutdown_grace: config.shutdown_grace(),
            billing_timeout: config.billing_timeout(),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then drains: in-flight executions finish and settle (or spool)
    /// within the grace period, and the spool is flushed one last time.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let local_addr = self.listener.local_addr()?;
        let stop_replay = CancellationToken::new();
        let replayer = tokio::spawn(self.spool.clone().replay_until_stopped(
            self.metering.clone(),
            stop_replay.clone(),
            self.spool_retry_max,
        ));

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<ExecutorServiceServer<ExecutorGrpc>>()
            .await;
        let readiness = tokio::spawn(report_spool_readiness(
            self.spool.clone(),
            health_reporter,
            stop_replay.clone(),
        ));
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::EXECUTOR_FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::EXECUTOR_FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;
        let executor_service = ExecutorServiceServer::new(ExecutorGrpc::new(
            self.executor.clone(),
            self.defaults.clone(),
        ));

        let signalled = CancellationToken::new();
        let on_signal = {
            let signalled = signalled.clone();
            async move {
                shutdown.await;
                tracing::info!("shutting down: draining in-flight executions");
                signalled.cancel();
            }
        };
        tracing::info!(addr = %local_addr, tls = self.tls.is_some(), "listening");
        let mut server = Server::builder();
        if let Some(tls) = self.tls {
            server = server.tls_config(tls)?;
        }
        let server = server
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(executor_service)
            .serve_with_incoming_shutdown(
                TcpIncoming::from(self.listener).with_nodelay(Some(true)),
                on_signal,
            );
        let grace = self.shutdown_grace;
        let grace_over = async {
            signalled.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            served = server => served?,
            () = grace_over => tracing::warn!("grace period over with requests still open"),
        }

        // Executions run in their own tasks; they settle (or spool) even if their client is gone.
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                in_flight = self.tasks.len(),
                "grace period over with executions in flight"
            );
        }
        stop_replay.cancel();
        let _ = replayer.await;
        let _ = readiness.await;
        let flush_time = self.billing_timeout.saturating_mul(2);
        match tokio::time::timeout(flush_time, self.spool.flush(&self.metering)).await {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                tracing::warn!(
                    pending = self.spool.pending().len(),
                    "settlements left in the spool for the next start"
                );
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// A lazy channel to billing-svc: plaintext for an `http://` BILLING_URL, TLS for an `https://` one,
/// trusting TLS_CA_CERT when set and the system's root certificates otherwise.
fn billing_channel(config: &Config) -> Result<Channel, StartupError> {
    let mut endpoint = Endpoint::from_shared(config.billing_url.clone())
        .map_err(StartupError::BillingUrl)?
        .connect_timeout(config.billing_timeout())
        .tcp_nodelay(true);
    if config.billing_url.starts_with("https://") {
        let tls = match &config.tls_ca_path {
            Some(path) => {
                let ca = read_pem("TLS_CA_CERT", path)?;
                // tonic skips what is not a certificate: a wrong file would fail every call, not the start.
                if !String::from_utf8_lossy(&ca).contains("-----BEGIN CERTIFICATE-----") {
                    return Err(ConfigError {
                        key: "TLS_CA_CERT",
                        reason: format!("{} holds no PEM certificate", path.display()),
                    }
                    .into());
                }
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca))
            }
            None => ClientTlsConfig::new().with_native_roots(),
        };
        endpoint = endpoint.tls_config(tls).map_err(|error| ConfigError {
            key: "TLS_CA_CERT",
            reason: format!("cannot set up TLS to billing-svc: {}", with_cause(&error)),
        })?;
    }
    Ok(endpoint.connect_lazy())
}

/// How often readiness follows the spool.
const READINESS_PERIOD: Duration = Duration::from_millis(250);

/// Reports ExecutorService and the server as not serving (gRPC health: the gateway's `/readyz`, a load
/// balancer's probe) while the spool cannot be written, and as serving again once it can, until `stop`.
async fn report_spool_readiness(spool: Spool, reporter: HealthReporter, stop: CancellationToken) {
    let mut ready = true;
    let mut ticks = tokio::time::interval(READINESS_PERIOD);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let writable = spool.writable();
        if writable == ready {
            continue;
        }
        ready = writable;
        let status = if ready {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        // The service and the server as a whole (""), which the gateway's /readyz asks about.
        reporter
            .set_service_status(
                <ExecutorServiceServer<ExecutorGrpc> as NamedService>::NAME,
                status,
            )
            .await;
        reporter.set_service_status("", status).await;
    }
}

/// The server's TLS identity from EXECUTOR_TLS_CERT and EXECUTOR_TLS_KEY (validated as set together).
/// The files are read and checked here so that a bad certificate stops the start, not the first call.
fn server_tls(config: &Config) -> Result<Option<ServerTlsConfig>, StartupError> {
    let (Some(cert_path), Some(key_path)) = (&config.tls_cert_path, &config.tls_key_path) else {
        return Ok(None);
    };
    let cert = read_pem("EXECUTOR_TLS_CERT", cert_path)?;
    let key = read_pem("EXECUTOR_TLS_KEY", key_path)?;
    let tls = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
    // Building the acceptor parses both files; the server builds it again when it starts serving.
    Server::builder()
        .tls_config(tls.clone())
        .map_err(|error| ConfigError {
            key: "EXECUTOR_TLS_CERT",
            reason: format!(
                "with EXECUTOR_TLS_KEY, not a PEM certificate chain and its private key: {}",
                with_cause(&error)
            ),
        })?;
    Ok(Some(tls))
}

fn read_pem(key: &'static str, path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|error| ConfigError {
        key,
        reason: format!("cannot read {}: {error}", path.display()),
    })
}

/// tonic's transport errors print as "transport error"; the reason is their source.
fn with_cause(error: &tonic::transport::Error) -> String {
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}
