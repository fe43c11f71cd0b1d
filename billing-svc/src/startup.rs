//! Lifecycle: connect and migrate, bind the listener (port 0 works), serve the three services with health
//! and reflection, release expired holds in the background, and stop gracefully, letting in-flight calls
//! (settlements included) finish.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use lifecycle::secret::ExposeSecret;
use proto::billing::v1::account_service_server::AccountServiceServer;
use proto::billing::v1::admin_service_server::AdminServiceServer;
use proto::billing::v1::console_service_server::ConsoleServiceServer;
use proto::billing::v1::metering_service_server::MeteringServiceServer;
use proto::billing::v1::payments_service_server::PaymentsServiceServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::config::Config;
use crate::events::mail::{self, MailSettings, Mailer};
use crate::events::webhooks::{WebhookSettings, Webhooks};
use crate::grpc::{AccountApi, AdminApi, ConsoleApi, MeteringApi, PaymentsApi};
use crate::ledger::{Ledger, LedgerSettings};
use crate::payments::stripe::StripeApi;
use crate::payments::stripe::recharger::Recharger;
use crate::sessions::Sessions;
use crate::store::{Store, WriteSettings};

/// Largest gRPC message accepted, either way.
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// How often pending auto-recharge charges are looked for.
const RECHARGE_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// One SMTP conversation's deadline.
const MAIL_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Application {
    config: Config,
    listener: TcpListener,
    ledger: Ledger,
    /// `None`: plaintext gRPC (the default).
    tls: Option<ServerTlsConfig>,
    /// `None`: no SMTP_URL, nothing is mailed.
    mailer: Option<Mailer>,
}

impl Application {
    /// Connects to the database, applies migrations and binds the listener.
    pub async fn build(config: Config) -> Result<Application, anyhow::Error> {
        let write = WriteSettings {
            mode: config.write_mode,
            max_batch: usize::try_from(config.write_batch_max)?,
            postgres_writers: usize::try_from(config.postgres_writers)?,
        };
        let tls = server_tls(&config)?;
        // Checked before any SQLite connection exists: see `ensure_sqlite_writable`.
        if config.database_url.starts_with("sqlite:") {
            ensure_sqlite_writable(&config.database_url)?;
        }
        // The cause chain is printed at exit; the URL itself is not, since it may carry a password.
        let store = Store::connect(&config.database_url, config.db_max_connections, write)
            .await
            .context("DATABASE_URL: cannot open, create or migrate the database")?;
        let settings = LedgerSettings {
            hold_ttl_ms: i64::try_from(config.hold_ttl_secs)? * 1000,
            hold_chunk_tokens: config.hold_chunk_tokens,
            min_output_tokens: config.min_output_tokens,
            max_execution_tokens: config.max_execution_tokens,
        };
        let mailer = mailer(&config, &store)?;
        let ledger = Ledger::new(store, settings);
        // Before serving: a row written now must chain after every older one (DESIGN §19).
        ledger
            .chain_unchained_rows()
            .await
            .context("chaining the ledger rows written before the hash chain")?;
        let listener = TcpListener::bind(config.listen).await?;
        Ok(Application {
            config,
            listener,
            ledger,
            tls,
            mailer,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then drains in-flight calls and closes the database.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), anyhow::Error> {
        let addr = self.listener.local_addr()?;
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<AdminServiceServer<AdminApi>>()
            .await;
        health_reporter
            .set_serving::<AccountServiceServer<AccountApi>>()
            .await;
        health_reporter
            .set_serving::<MeteringServiceServer<MeteringApi>>()
            .await;
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::BILLING_FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::BILLING_FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        let webhooks = Webhooks::new(
            self.ledger.store().clone(),
            WebhookSettings {
                allow_private_targets: self.config.webhook_allow_private_targets,
                retry_schedule: self
                    .config
                    .webhook_retry_schedule_secs
                    .0
                    .iter()
                    .map(|secs| Duration::from_secs(*secs))
                    .collect(),
                timeout: Duration::from_secs(self.config.webhook_timeout_secs),
                poll_interval: Duration::from_millis(self.config.webhook_poll_interval_ms),
                concurrency: 8,
            },
        );
        let ttl_ms = i64::try_from(self.config.console_session_ttl_secs * 1000).unwrap_or(i64::MAX);
        let sessions = Sessions::new(self.ledger.store().clone(), ttl_ms);
        let admin = AdminApi::new(
            self.ledger.clone(),
            webhooks.clone(),
            sessions.clone(),
            self.config.admin_api_key.clone(),
        );
        let console = ConsoleApi::new(
            self.ledger.clone(),
            sessions.clone(),
            self.config.admin_api_key.clone(),
        );
        let stripe = self
            .config
            .stripe_secret_key
            .clone()
            .map(|key| {
                StripeApi::new(
                    &self.config.stripe_api_base,
                    key,
                    &self.config.public_base_url,
                )
            })
            .transpose()?;
        let recharger = Recharger::new(
            self.ledger.clone(),
            stripe.clone(),
            RECHARGE_POLL_INTERVAL,
            Duration::from_secs(self.config.auto_recharge_reconcile_secs),
        );
        let account = AccountApi::new(
            self.ledger.clone(),
            webhooks.clone(),
            sessions.clone(),
            stripe,
            self.config.admin_api_key.clone(),
        );
        let payments = PaymentsApi::new(
            self.ledger.clone(),
            self.config.stripe_webhook_secret.clone(),
        );
        let metering = MeteringApi::new(
            self.ledger.clone(),
            self.config.service_token.clone(),
            self.config.admin_api_key.clone(),
            Duration::from_secs(self.config.meter_idle_timeout_secs),
        );

        let (stop_sweeper, stopped) = watch::channel(false);
        let sweeper = tokio::spawn(sweep_expired(
            self.ledger.clone(),
            sessions,
            Duration::from_millis(self.config.hold_sweep_interval_ms),
            stopped.clone(),
        ));
        let recharger = tokio::spawn(recharger.run(stopped.clone()));
        let mail = self
            .mailer
            .map(|mailer| tokio::spawn(mailer.run(stopped.clone())));
        let dispatcher = tokio::spawn(webhooks.run(stopped));

        tracing::info!(%addr, database = ?self.ledger.store().backend(), tls = self.tls.is_some(), "listening");
        let mut server = Server::builder();
        if let Some(tls) = self.tls {
            server = server.tls_config(tls)?;
        }
        server
            .trace_fn(|request| {
                let request_id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!("grpc", path = %request.uri().path(), request_id = %request_id)
            })
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(
                AdminServiceServer::new(admin)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
            )
            .add_service(
                AccountServiceServer::new(account)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES * 16),
            )
            .add_service(
                ConsoleServiceServer::new(console)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
            )
            .add_service(
                PaymentsServiceServer::new(payments)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
            )
            .add_service(
                MeteringServiceServer::new(metering)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
            )
            .serve_with_incoming_shutdown(
                TcpIncoming::from(self.listener).with_nodelay(Some(true)),
                shutdown,
            )
            .await?;

        let _ = stop_sweeper.send(true);
        let _ = sweeper.await;
        let _ = dispatcher.await;
        let _ = recharger.await;
        if let Some(mail) = mail {
            let _ = mail.await;
        }
        self.ledger.store().close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The mailer of SMTP_URL and MAIL_FROM (which it needs), checked at start; none without SMTP_URL.
fn mailer(config: &Config, store: &Store) -> Result<Option<Mailer>, anyhow::Error> {
    let Some(smtp_url) = &config.smtp_url else {
        return Ok(None);
    };
    let from = config
        .mail_from
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("MAIL_FROM is required with SMTP_URL"))?;
    let settings = MailSettings {
        smtp_url: smtp_url.expose_secret().to_string(),
        from: mail::mailbox(from)?,
        retry_schedule: config
            .mail_retry_schedule_secs
            .0
            .iter()
            .map(|secs| Duration::from_secs(*secs))
            .collect(),
        timeout: MAIL_TIMEOUT,
        poll_interval: Duration::from_millis(config.mail_poll_interval_ms),
    };
    Ok(Some(Mailer::new(store.clone(), settings)?))
}

/// The server's TLS identity from BILLING_TLS_CERT and BILLING_TLS_KEY, which are set together or not at
/// all. The files are read and checked here so that a bad certificate stops the start, not the first call.
fn server_tls(config: &Config) -> anyhow::Result<Option<ServerTlsConfig>> {
    let (cert_path, key_path) = match (&config.tls_cert_path, &config.tls_key_path) {
        (None, None) => return Ok(None),
        (Some(cert_path), Some(key_path)) => (cert_path, key_path),
        (Some(_), None) => anyhow::bail!("BILLING_TLS_KEY: must be set when BILLING_TLS_CERT is"),
        (None, Some(_)) => anyhow::bail!("BILLING_TLS_CERT: must be set when BILLING_TLS_KEY is"),
    };
    let cert = std::fs::read(cert_path)
        .with_context(|| format!("BILLING_TLS_CERT: cannot read {}", cert_path.display()))?;
    let key = std::fs::read(key_path)
        .with_context(|| format!("BILLING_TLS_KEY: cannot read {}", key_path.display()))?;
    let tls = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
    // Building the acceptor parses both files; the server builds it again when it starts serving.
    Server::builder().tls_config(tls.clone()).context(
        "BILLING_TLS_CERT, BILLING_TLS_KEY: not a PEM certificate chain and its private key",
    )?;
    Ok(Some(tls))
}

/// A SQLite database on a read-only file system opens and, when already migrated, needs no write to start,
/// so the service would come up and then refuse every write: refuse to start instead.
///
/// This must run before the first SQLite connection of the process. POSIX advisory locks belong to the
/// process, not to a descriptor: closing this plain descriptor drops every lock SQLite holds on the file,
/// including the SHARED lock of a WAL connection, and another process closing its connection would then
/// checkpoint and delete the live WAL, losing acknowledged writes. (A file that does not exist yet is
/// created by SQLite, whose failure `Store::connect` reports.)
fn ensure_sqlite_writable(database_url: &str) -> anyhow::Result<()> {
    let rest = database_url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//");
    let path = rest.split_once('?').map_or(rest, |(path, _)| path);
    if !std::path::Path::new(path).exists() {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("DATABASE_URL: the SQLite file {path} is not writable"))?;
    Ok(())
}

/// Releases expired holds, expires grants whose time has come, sends keys' expiry notices, freezes the
/// statements of a month that closed, writes a week's usage reports, sums the hours that closed of usage and
/// forgets ended console sessions, every `interval` until told to stop.
/// Errors are logged and retried next round.
async fn sweep_expired(
    ledger: Ledger,
    sessions: Sessions,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut statements_closed_through = None;
    let mut reports_written_through = None;
    let mut usage_rolled_for = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if let Err(error) = ledger.release_expired_holds().await {
                    tracing::warn!(error = %error, "releasing expired holds failed; will retry");
                }
                if let Err(error) = ledger.expire_grants().await {
                    tracing::warn!(error = %error, "expiring grants failed; will retry");
                }
                if let Err(error) = ledger.notify_expiring_keys().await {
                    tracing::warn!(error = %error, "key expiry notices failed; will retry");
                }
                if let Err(error) = ledger.close_statements(&mut statements_closed_through).await {
                    tracing::warn!(error = %error, "closing last month's statements failed; will retry");
                }
                if let Err(error) = ledger.write_weekly_reports(&mut reports_written_through).await {
                    tracing::warn!(error = %error, "writing weekly usage reports failed; will retry");
                }
                if let Err(error) = ledger.roll_up_accounts(&mut usage_rolled_for, crate::time::now_ms()).await {
                    tracing::warn!(error = %error, "summing usage by hour failed; will retry");
                }
                if let Err(error) = sessions.purge().await {
                    tracing::warn!(error = %error, "forgetting ended console sessions failed; will retry");
                }
            }
            _ = stop.changed() => return,
        }
    }
}
