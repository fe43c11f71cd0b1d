//! Configuration: flags with environment fallbacks (names in README.md, "Configuration"), validated before
//! anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lifecycle::secret::{ExposeSecret, SecretString, given};

/// OpenAI's public endpoint, used when only `OPENAI_API_KEY` is set.
pub const OPENAI_PUBLIC_BASE_URL: &str = "https://api.openai.com/v1";

/// Everything executor-svc needs to run.
///
/// The model endpoint: with neither `OPENAI_API_KEY` nor `OPENAI_BASE_URL`, the local mock model at
/// `MOCK_MODEL_URL`; with a key alone, OpenAI's public endpoint; with a base URL, any OpenAI-compatible
/// server (with the key when one is given).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "executor-svc",
    version,
    about = "Runs prompts against an OpenAI-compatible model, metered by billing-svc"
)]
pub struct Config {
    /// gRPC listen address; port 0 picks a free port (logged as `listening`).
    #[arg(long, env = "EXECUTOR_LISTEN", default_value = "127.0.0.1:50052")]
    pub listen: SocketAddr,

    /// billing-svc's gRPC endpoint.
    #[arg(long, env = "BILLING_URL", default_value = "http://127.0.0.1:50051")]
    pub billing_url: String,

    /// PEM certificate of a private CA that signs billing-svc's certificate, for an `https://` BILLING_URL;
    /// without it, the system's root certificates.
    #[arg(long, env = "TLS_CA_CERT")]
    pub tls_ca_path: Option<PathBuf>,

    /// PEM certificate chain the gRPC server presents; with EXECUTOR_TLS_KEY, the server speaks TLS only.
    #[arg(long, env = "EXECUTOR_TLS_CERT")]
    pub tls_cert_path: Option<PathBuf>,

    /// PEM private key of EXECUTOR_TLS_CERT.
    #[arg(long, env = "EXECUTOR_TLS_KEY")]
    pub tls_key_path: Option<PathBuf>,

    /// Shared secret for billing-svc's MeteringService.
    #[arg(long, env = "SERVICE_TOKEN", hide_env_values = true, value_parser = given)]
    pub service_token: SecretString,

    /// API key of the model provider.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true, value_parser = given)]
    pub openai_api_key: Option<SecretString>,

    /// Base URL of any OpenAI-compatible server, e.g. `http://localhost:11434/v1`.
    #[arg(long, env = "OPENAI_BASE_URL")]
    pub openai_base_url: Option<String>,

    /// TOML file of model providers and routes (PROVIDERS.md); without it, the one provider of
    /// OPENAI_BASE_URL / OPENAI_API_KEY (or the mock model) serves every model.
    #[arg(long, env = "PROVIDERS_FILE")]
    pub providers_file: Option<PathBuf>,

    /// The local mock model, used when neither OPENAI_API_KEY nor OPENAI_BASE_URL is set.
    #[arg(
        long,
        env = "MOCK_MODEL_URL",
        default_value = "http://127.0.0.1:8000/v1"
    )]
    pub mock_model_url: String,

    /// Model used when a request names none.
    #[arg(long, env = "EXECUTOR_DEFAULT_MODEL", default_value = "gpt-4o-mini")]
    pub default_model: String,

    /// Embedding model used when an embeddings request names none.
    #[arg(
        long,
        env = "EXECUTOR_DEFAULT_EMBEDDING_MODEL",
        default_value = "text-embedding-3-small"
    )]
    pub default_embedding_model: String,

    /// Output tokens of a request answered as text (`/execute`) that asks for no limit, and the ceiling of
    /// those that do. Requests answered as chat completions keep the client's own limit.
    #[arg(long, env = "EXECUTOR_MAX_OUTPUT_TOKENS", default_value_t = 4096)]
    pub max_output_tokens: u32,

    /// Longest wait for the model's first answer and between two streamed chunks, in seconds.
    #[arg(long, env = "EXECUTOR_UPSTREAM_TIMEOUT_SECS", default_value_t = 60)]
    pub upstream_timeout_secs: u64,

    /// Longest wait for one billing-svc answer (open, extension, settlement), in milliseconds.
    #[arg(long, env = "EXECUTOR_BILLING_TIMEOUT_MS", default_value_t = 5000)]
    pub billing_timeout_ms: u64,

    /// Folder of the settlement spool (created if missing).
    #[arg(
        long,
        env = "EXECUTOR_SPOOL_PATH",
        default_value = "./data/executor-spool"
    )]
    pub spool_path: PathBuf,

    /// Report progress every this many output tokens to a billing-svc that does not say when to report (an
    /// older release; BILLING.md, "Holds and the metering stream").
    #[arg(long, env = "EXECUTOR_PROGRESS_INTERVAL_TOKENS", default_value_t = 16)]
    pub progress_interval_tokens: u32,

    /// Longest pause between two replays of the spool while billing-svc is unreachable, in seconds.
    #[arg(long, env = "EXECUTOR_SPOOL_RETRY_MAX_SECS", default_value_t = 30)]
    pub spool_retry_max_secs: u64,

    /// How long a shutdown waits for in-flight executions to finish and settle, in seconds.
    #[arg(long, env = "EXECUTOR_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,
}

/// A setting that cannot work, named by its environment variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration {key}: {reason}")]
pub struct ConfigError {
    pub key: &'static str,
    pub reason: String,
}

/// The name of the one provider used without `PROVIDERS_FILE` (the [`ModelEndpoint`]), recorded on its
/// usage records.
pub const DEFAULT_PROVIDER: &str = "default";

/// Where the model calls go.
#[derive(Debug, Clone)]
pub struct ModelEndpoint {
    pub base_url: String,
    pub api_key: SecretString,
    pub kind: EndpointKind,
}

/// Which of the three endpoint choices is in use (logged at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointKind {
    MockModel,
    OpenAi,
    Custom,
}

impl Config {
    /// Checks every setting; the error names the offending variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| {
            Err(ConfigError {
                key,
                reason: reason.to_string(),
            })
        };
        if self.service_token.expose_secret().trim().is_empty() {
            return invalid("SERVICE_TOKEN", "must not be empty");
        }
        if !is_http_url(&self.billing_url) {
            return invalid("BILLING_URL", "must be an http:// or https:// URL");
        }
        match (&self.tls_cert_path, &self.tls_key_path) {
            (Some(_), None) => {
                return invalid("EXECUTOR_TLS_KEY", "must be set when EXECUTOR_TLS_CERT is");
            }
            (None, Some(_)) => {
                return invalid("EXECUTOR_TLS_CERT", "must be set when EXECUTOR_TLS_KEY is");
            }
            (None, None) | (Some(_), Some(_)) => {}
        }
        if self
            .provider_base_url()
            .is_some_and(|base_url| !is_http_url(base_url))
        {
            return invalid("OPENAI_BASE_URL", "must be an http:// or https:// URL");
        }
        if !is_http_url(&self.mock_model_url) {
            return invalid("MOCK_MODEL_URL", "must be an http:// or https:// URL");
        }
        if self.default_model.trim().is_empty() {
            return invalid("EXECUTOR_DEFAULT_MODEL", "must not be empty");
        }
        if self.max_output_tokens == 0 {
            return invalid("EXECUTOR_MAX_OUTPUT_TOKENS", "must be at least 1");
        }
        if self.upstream_timeout_secs == 0 {
            return invalid("EXECUTOR_UPSTREAM_TIMEOUT_SECS", "must be at least 1");
        }
        if self.billing_timeout_ms == 0 {
            return invalid("EXECUTOR_BILLING_TIMEOUT_MS", "must be at least 1");
        }
        if self.progress_interval_tokens == 0 {
            return invalid("EXECUTOR_PROGRESS_INTERVAL_TOKENS", "must be at least 1");
        }
        if self.spool_retry_max_secs == 0 {
            return invalid("EXECUTOR_SPOOL_RETRY_MAX_SECS", "must be at least 1");
        }
        Ok(())
    }

    /// `OPENAI_BASE_URL`, an empty value counting as unset (as compose files pass unset variables).
    fn provider_base_url(&self) -> Option<&str> {
        self.openai_base_url
            .as_deref()
            .filter(|base_url| !base_url.trim().is_empty())
    }

    /// `OPENAI_API_KEY`, an empty value counting as unset.
    fn provider_api_key(&self) -> Option<&SecretString> {
        self.openai_api_key
            .as_ref()
            .filter(|key| !key.expose_secret().trim().is_empty())
    }

    /// The model endpoint chosen by `OPENAI_BASE_URL` and `OPENAI_API_KEY` (see [`Config`]).
    pub fn model_endpoint(&self) -> ModelEndpoint {
        match (self.provider_base_url(), self.provider_api_key()) {
            (Some(base_url), api_key) => ModelEndpoint {
                base_url: trim_slash(base_url),
                api_key: api_key.cloned().unwrap_or_else(|| SecretString::from("")),
                kind: EndpointKind::Custom,
            },
            (None, Some(api_key)) => ModelEndpoint {
                base_url: OPENAI_PUBLIC_BASE_URL.to_string(),
                api_key: api_key.clone(),
                kind: EndpointKind::OpenAi,
            },
            (None, None) => ModelEndpoint {
                base_url: trim_slash(&self.mock_model_url),
                api_key: SecretString::from("mock"),
                kind: EndpointKind::MockModel,
            },
        }
    }

    pub fn upstream_timeout(&self) -> Duration {
        Duration::from_secs(self.upstream_timeout_secs)
    }

    pub fn billing_timeout(&self) -> Duration {
        Duration::from_millis(self.billing_timeout_ms)
    }

    pub fn spool_retry_max(&self) -> Duration {
        Duration::from_secs(self.spool_retry_max_secs)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

fn is_http_url(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://"))
        && url.parse::<tonic::transport::Uri>().is_ok()
}

/// async-openai appends paths such as `/chat/completions` to the base as they are.
fn trim_slash(url: &str) -> String {
    url.trim_end_matches('/').to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Config {
        let mut argv = vec!["executor-svc", "--service-token", "t"];
        argv.extend_from_slice(args);
        Config::try_parse_from(argv).unwrap()
    }

    #[test]
    fn endpoint_follows_the_three_documented_choices() {
        let mock = parse(&[]).model_endpoint();
        assert_eq!(mock.kind, EndpointKind::MockModel);
        assert_eq!(mock.base_url, "http://127.0.0.1:8000/v1");

        let openai = parse(&["--openai-api-key", "sk-1"]).model_endpoint();
        assert_eq!(
            (openai.kind, openai.base_url.as_str()),
            (EndpointKind::OpenAi, OPENAI_PUBLIC_BASE_URL)
        );
        assert_eq!(openai.api_key.expose_secret(), "sk-1");

        let custom = parse(&["--openai-base-url", "http://localhost:11434/v1/"]).model_endpoint();
        assert_eq!(
            (custom.kind, custom.base_url.as_str()),
            (EndpointKind::Custom, "http://localhost:11434/v1")
        );
    }

    #[test]
    fn empty_provider_settings_count_as_unset() {
        let endpoint = parse(&["--openai-api-key", "", "--openai-base-url", " "]);
        assert!(endpoint.validate().is_ok());
        assert_eq!(endpoint.model_endpoint().kind, EndpointKind::MockModel);
    }

    #[test]
    fn invalid_settings_are_named() {
        let cases: &[(&[&str], &str)] = &[
            (&["--billing-url", "localhost:1"], "BILLING_URL"),
            (&["--max-output-tokens", "0"], "EXECUTOR_MAX_OUTPUT_TOKENS"),
            (
                &["--progress-interval-tokens", "0"],
                "EXECUTOR_PROGRESS_INTERVAL_TOKENS",
            ),
            (&["--openai-base-url", "ftp://x"], "OPENAI_BASE_URL"),
            (&["--tls-cert-path", "cert.pem"], "EXECUTOR_TLS_KEY"),
            (&["--tls-key-path", "key.pem"], "EXECUTOR_TLS_CERT"),
        ];
        for (args, key) in cases {
            let error = parse(args).validate().unwrap_err();
            assert_eq!(error.key, *key, "{args:?}");
        }
        assert!(parse(&[]).validate().is_ok());
    }

    #[test]
    fn secrets_do_not_print() {
        let config = parse(&["--openai-api-key", "sk-very-secret"]);
        let printed = format!("{config:?}");
        assert!(
            !printed.contains("sk-very-secret") && !printed.contains("\"t\""),
            "{printed}"
        );
    }
}
