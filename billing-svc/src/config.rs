//! Configuration: command-line flags with environment fallbacks (names in README.md, "Configuration"),
//! checked at start.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::store::WriteMode;
use lifecycle::secret::{SecretString, credential};

/// billing-svc: keys, accounts, the ledger, pricing and metering over gRPC.
#[derive(Debug, Clone, Parser)]
#[command(name = "billing-svc", version)]
pub struct Config {
    /// Address the gRPC server listens on (port 0 picks a free port).
    #[arg(long, env = "BILLING_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// `sqlite://path` (file and folder created if missing) or `postgres://...`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://./data/billing.db"
    )]
    pub database_url: String,

    /// The operator's key for AdminService.
    #[arg(long, env = "ADMIN_API_KEY", hide_env_values = true, value_parser = credential)]
    pub admin_api_key: SecretString,

    /// Shared secret executor-svc presents to MeteringService.
    #[arg(long, env = "SERVICE_TOKEN", hide_env_values = true, value_parser = credential)]
    pub service_token: SecretString,

    /// Stripe's secret API key (`sk_…`); without it top-ups are refused (503).
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true, value_parser = credential)]
    pub stripe_secret_key: Option<SecretString>,

    /// Stripe's API (tests point it at a local fake Stripe).
    #[arg(
        long,
        env = "STRIPE_API_BASE",
        default_value = "https://api.stripe.com"
    )]
    pub stripe_api_base: String,

    /// Where customers come back to after paying (Checkout's return URLs).
    #[arg(long, env = "PUBLIC_BASE_URL", default_value = "http://127.0.0.1:8080")]
    pub public_base_url: String,

    /// The signing secret of Stripe's webhook endpoint (`whsec_…`); without it payments are refused (503).
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET", hide_env_values = true, value_parser = credential)]
    pub stripe_webhook_secret: Option<SecretString>,

    /// Allow webhook URLs on loopback and private addresses (local development and tests only).
    #[arg(long, env = "WEBHOOK_ALLOW_PRIVATE_TARGETS", default_value_t = false)]
    pub webhook_allow_private_targets: bool,

    /// Seconds to wait before each webhook retry, comma-separated; after the last the endpoint is disabled.
    #[arg(long, env = "WEBHOOK_RETRY_SCHEDULE_SECS", default_value = "5,300,1800,7200,18000,36000", value_parser = parse_schedule)]
    pub webhook_retry_schedule_secs: Schedule,

    /// Timeout of one webhook request.
    #[arg(long, env = "WEBHOOK_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=120))]
    pub webhook_timeout_secs: u64,

    /// How often endpoints with events to deliver are looked for.
    #[arg(long, env = "WEBHOOK_POLL_INTERVAL_MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub webhook_poll_interval_ms: u64,

    /// The SMTP server mail goes through (BILLING.md, "Email"): `smtp://[user:password@]host[:port]`
    /// (STARTTLS when offered; add `?tls=required` to insist) or `smtps://…`. Without it nothing is mailed.
    #[arg(long, env = "SMTP_URL", hide_env_values = true, value_parser = lifecycle::secret::given)]
    pub smtp_url: Option<SecretString>,

    /// The sender of mail: `billing@example.com` or `Example Billing <billing@example.com>`; required with
    /// SMTP_URL.
    #[arg(long, env = "MAIL_FROM")]
    pub mail_from: Option<String>,

    /// Seconds to wait before each retry of a mail the SMTP server did not take (no connection, a 4xx
    /// reply), comma-separated; after the last that mail is given up.
    #[arg(long, env = "MAIL_RETRY_SCHEDULE_SECS", default_value = "5,60,300,1800,7200,21600", value_parser = parse_schedule)]
    pub mail_retry_schedule_secs: Schedule,

    /// How often the mailer looks for events to mail.
    #[arg(long, env = "MAIL_POLL_INTERVAL_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub mail_poll_interval_ms: u64,

    /// Connections to PostgreSQL (SQLite uses one writer and this many readers).
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=200))]
    pub db_max_connections: u32,

    /// A hold not extended or settled within this time is released by the service.
    #[arg(long, env = "HOLD_TTL_SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub hold_ttl_secs: u64,

    /// How long an auto-recharge charge Stripe took may wait for its webhook before billing-svc looks the
    /// PaymentIntent up itself.
    #[arg(long, env = "AUTO_RECHARGE_RECONCILE_SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub auto_recharge_reconcile_secs: u64,

    /// How long a console session lasts after sign-in.
    #[arg(long, env = "CONSOLE_SESSION_TTL_SECS", default_value_t = 43_200, value_parser = clap::value_parser!(u64).range(60..=2_592_000))]
    pub console_session_ttl_secs: u64,

    /// How often expired holds are released and grants past their expiry are expired.
    #[arg(long, env = "HOLD_SWEEP_INTERVAL_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub hold_sweep_interval_ms: u64,

    /// Output tokens a hold grows by at a time.
    #[arg(long, env = "HOLD_CHUNK_TOKENS", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub hold_chunk_tokens: u64,

    /// Output tokens the available credit must cover, beyond the input, for an execution to start.
    #[arg(long, env = "MIN_OUTPUT_TOKENS", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub min_output_tokens: u64,

    /// Ceiling on the input and output tokens of one execution; larger counts are refused as invalid.
    #[arg(long, env = "MAX_EXECUTION_TOKENS", default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub max_execution_tokens: u64,

    /// `batched`: group commit, many settlements per durable transaction (each caller answered after its
    /// batch commits); `naive`: one transaction per operation.
    #[arg(
        long,
        env = "BILLING_WRITE_MODE",
        value_enum,
        default_value = "batched"
    )]
    pub write_mode: WriteMode,

    /// Most write operations committed together in one batch.
    #[arg(long, env = "BILLING_WRITE_BATCH_MAX", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub write_batch_max: u32,

    /// Concurrent batch writers on PostgreSQL (accounts are spread over them); SQLite always has one.
    #[arg(long, env = "BILLING_POSTGRES_WRITERS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub postgres_writers: u32,

    /// A metering stream that sends nothing for this long is ended (DEADLINE_EXCEEDED); its hold stays
    /// until settled or released by its TTL, as when the executor disconnects.
    #[arg(long, env = "METER_IDLE_TIMEOUT_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub meter_idle_timeout_secs: u64,

    /// PEM certificate chain the gRPC server presents; with BILLING_TLS_KEY, the server speaks TLS only.
    #[arg(long, env = "BILLING_TLS_CERT")]
    pub tls_cert_path: Option<PathBuf>,

    /// PEM private key of BILLING_TLS_CERT.
    #[arg(long, env = "BILLING_TLS_KEY")]
    pub tls_key_path: Option<PathBuf>,

    /// `json` for JSON lines on stdout, anything else for human-readable logs.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

/// A retry schedule: seconds before each retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule(pub Vec<u64>);

fn parse_schedule(text: &str) -> Result<Schedule, String> {
    let waits = text
        .split(',')
        .map(|part| {
            part.trim()
                .parse::<u64>()
                .ok()
                .filter(|secs| (1..=604_800).contains(secs))
                .ok_or_else(|| format!("{part:?} is not a number of seconds between 1 and 604800"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if waits.is_empty() || waits.len() > 20 {
        return Err("give 1 to 20 waits".into());
    }
    Ok(Schedule(waits))
}
