//! Configuration: command-line flags with environment fallbacks (names in README.md, "Configuration"),
//! checked at start.
//! The gateway holds no secret: the keys it forwards come from each request.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// gateway: the public REST API in front of billing-svc and executor-svc.
#[derive(Debug, Clone, Parser)]
#[command(name = "gateway", version)]
pub struct Config {
    /// Address the HTTP server listens on (port 0 picks a free port).
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// billing-svc's gRPC endpoint.
    #[arg(long, env = "BILLING_URL", default_value = "http://127.0.0.1:50051")]
    pub billing_url: String,

    /// executor-svc's gRPC endpoint.
    #[arg(long, env = "EXECUTOR_URL", default_value = "http://127.0.0.1:50052")]
    pub executor_url: String,

    /// PEM certificate of a private CA that signs the services' certificates, for `https://` URLs;
    /// without it, the system's root certificates.
    #[arg(long, env = "TLS_CA_CERT")]
    pub tls_ca_path: Option<PathBuf>,

    /// Largest request body accepted; larger ones get 413.
    #[arg(long, env = "GATEWAY_MAX_BODY_BYTES", default_value_t = 1_048_576, value_parser = clap::value_parser!(u64).range(1024..=67_108_864))]
    pub max_body_bytes: u64,

    /// Deadline of every call to billing-svc.
    #[arg(long, env = "GATEWAY_BILLING_TIMEOUT_SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub billing_timeout_secs: u64,

    /// Deadline of a whole execution, streamed or not (the model may be slow).
    #[arg(long, env = "GATEWAY_EXECUTOR_TIMEOUT_SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub executor_timeout_secs: u64,

    /// Deadline of each readiness probe (`/readyz`).
    #[arg(long, env = "GATEWAY_READINESS_TIMEOUT_MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub readiness_timeout_ms: u64,

    /// Failed authentications (answers 401) a client IP may make in a burst before it gets 429.
    #[arg(long, env = "GATEWAY_AUTH_FAILURE_BURST", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub auth_failure_burst: u32,

    /// Failed authentications given back to each client IP per minute.
    #[arg(long, env = "GATEWAY_AUTH_FAILURE_REFILL_PER_MIN", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub auth_failure_refill_per_min: u32,

    /// The operator's name, shown at the top of every statement's PDF (BILLING.md, "Statements").
    #[arg(long, env = "OPERATOR_NAME", default_value = "Billing")]
    pub operator_name: String,

    /// `json` for JSON lines on stdout, anything else for human-readable logs.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}
