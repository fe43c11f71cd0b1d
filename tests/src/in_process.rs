//! The stack of the behaviour suites: billing-svc, mock-model, executor-svc and the gateway run as
//! libraries on the test's own tokio runtime (each service's `Application::build`, then
//! `run_until_stopped`, as devstack runs them), with the same API as the process stack: [`Stack`] and
//! [`Billing`] are [`StackOf`] and [`BillingOf`] over [`InProcess`] services. No binary is started, and
//! what every service builds once per process (the tokenizer tables) is built once per test binary, so a
//! stack starts in milliseconds rather than a second.
//!
//! Each service is configured as its binary would be from the same environment variables, translated
//! into the flags they are the fallbacks of (clap's own metadata, so an unknown name fails the test), and
//! it reads nothing from the test process's environment, as a process started with a clean one would not.
//! What only a process can do stays with [`crate::Stack`]: its logs, SIGKILL and SIGTERM, a restart on
//! the same address, a secret a `PROVIDERS_FILE` names by its environment variable, replicas that are
//! separate processes. `TEST_LOG` prints the services' logs (filtered by `TEST_RUST_LOG`, default `info`)
//! through the test's captured output.

use std::ffi::OsStr;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Once;

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::gateway_harness::{executor_envs, gateway_envs, http_client};
use crate::{Backend, BillingOf, Service, StackOf, TestDatabase, new_secrets};

/// The stack whose services run inside the test process.
pub type Stack = StackOf<InProcess>;

/// billing-svc inside the test process.
pub type Billing = BillingOf<InProcess>;

/// A service serving on the test's runtime. Asked to stop (gracefully) when dropped; whatever is left
/// when the test ends goes with its runtime.
pub struct InProcess {
    pub name: &'static str,
    /// The address it listens on (bound by its `Application::build`).
    pub addr: SocketAddr,
    stop: CancellationToken,
}

impl InProcess {
    /// Serves `serve` (a built application's `run_until_stopped`) on its own task until dropped. A service
    /// that stops by itself says why on stderr, since no process exit will.
    fn spawn<F, E>(
        name: &'static str,
        addr: std::io::Result<SocketAddr>,
        serve: impl FnOnce(WaitForCancellationFutureOwned) -> F,
    ) -> InProcess
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<anyhow::Error>,
    {
        let addr = addr.unwrap_or_else(|error| panic!("{name}'s bound address: {error}"));
        let stop = CancellationToken::new();
        let served = serve(stop.clone().cancelled_owned());
        tokio::spawn(async move {
            if let Err(error) = served.await {
                eprintln!("{name} stopped: {:#}", error.into());
            }
        });
        InProcess { name, addr, stop }
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Service for InProcess {
    fn url(&self) -> String {
        InProcess::url(self)
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Billing {
    /// Starts billing-svc on a fresh database of `backend`, with `extra_args` appended (e.g. `--hold-ttl-secs`).
    pub async fn start(backend: Backend, extra_args: &[&str]) -> Billing {
        Self::start_on(TestDatabase::create(backend).await, extra_args).await
    }

    /// Starts billing-svc on an existing database (e.g. one made from a fixture).
    pub async fn start_on(database: TestDatabase, extra_args: &[&str]) -> Billing {
        let (admin_key, service_token) = new_secrets();
        Self::start_with(database, admin_key, service_token, extra_args).await
    }

    /// Starts billing-svc on `database` with the given secrets.
    pub async fn start_with(
        database: TestDatabase,
        admin_key: String,
        service_token: String,
        extra_args: &[&str],
    ) -> Billing {
        init_logging();
        let config: billing_svc::config::Config = configure(
            "billing-svc",
            extra_args,
            &[
                ("BILLING_LISTEN", "127.0.0.1:0"),
                ("DATABASE_URL", database.url.as_str()),
                ("ADMIN_API_KEY", admin_key.as_str()),
                ("SERVICE_TOKEN", service_token.as_str()),
            ],
        );
        let application = billing_svc::startup::Application::build(config)
            .await
            .unwrap_or_else(|error| panic!("start billing-svc: {error:#}"));
        let process = InProcess::spawn("billing-svc", application.local_addr(), |stop| {
            application.run_until_stopped(stop)
        });
        Billing {
            process,
            database,
            admin_key,
            service_token,
        }
    }
}

impl Stack {
    pub async fn start(backend: Backend) -> Stack {
        Self::start_on(Billing::start(backend, &[]).await, &[]).await
    }

    /// The rest of the stack in front of a running billing-svc, the gateway with `gateway_envs` added.
    pub async fn start_on(billing: Billing, gateway_envs: &[(&str, &str)]) -> Stack {
        Self::start_with(billing, &[], gateway_envs).await
    }

    /// [`Stack::start_on`] with `executor_envs` added to executor-svc's environment (each the fallback of
    /// one of its flags).
    pub async fn start_with(
        billing: Billing,
        executor_envs: &[(&str, &str)],
        gateway_envs: &[(&str, &str)],
    ) -> Stack {
        let mock_config: mock_model::Config =
            configure("mock-model", &[], &[("MOCK_MODEL_LISTEN", "127.0.0.1:0")]);
        let mock = mock_model::Application::build(mock_config)
            .await
            .unwrap_or_else(|error| panic!("start mock-model: {error}"));
        let mock = InProcess::spawn("mock-model", mock.local_addr(), |stop| {
            mock.run_until_stopped(stop)
        });

        let spool = tempfile::tempdir().expect("spool dir");
        let mut envs = self::executor_envs(&billing, &mock.url(), spool.path(), executor_envs);
        envs.push(("EXECUTOR_LISTEN".into(), "127.0.0.1:0".into()));
        let executor_config: executor_svc::Config = configure("executor-svc", &[], &envs);
        let executor = executor_svc::Application::build(executor_config)
            .await
            .unwrap_or_else(|error| panic!("start executor-svc: {error}"));
        let executor = InProcess::spawn("executor-svc", executor.local_addr(), |stop| {
            executor.run_until_stopped(stop)
        });

        let mut envs = self::gateway_envs(&billing, &executor.url(), gateway_envs);
        envs.push(("GATEWAY_LISTEN".into(), "127.0.0.1:0".into()));
        let gateway_config: gateway::config::Config = configure("gateway", &[], &envs);
        let gateway = gateway::startup::Application::build(gateway_config)
            .await
            .unwrap_or_else(|error| panic!("start the gateway: {error}"));
        let gateway = InProcess::spawn("gateway", gateway.local_addr(), |stop| {
            gateway.run_until_stopped(stop)
        });

        Stack {
            billing,
            mock,
            executor,
            gateway,
            http: http_client(),
            _spool: spool,
        }
    }
}

/// A service's configuration from its flags' environment variables `envs`, each turned into its flag (a
/// later one wins, and a flag in `args` wins over its variable, as with a process), then `args`. Nothing
/// is read from this process's environment: a service sees only what the test gives it, as a process
/// started with a clean environment does. Panics on anything its binary would refuse, or on a variable
/// that is no flag's.
fn configure<C, K, V>(binary: &str, args: &[&str], envs: &[(K, V)]) -> C
where
    C: clap::Parser,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let command = C::command();
    let mut flags: Vec<(String, Option<String>)> = Vec::new();
    for (name, value) in envs {
        let (name, value) = (name.as_ref(), value.as_ref());
        let arg = command
            .get_arguments()
            .find(|arg| arg.get_env() == Some(OsStr::new(name)))
            .unwrap_or_else(|| panic!("{name} is not the variable of a {binary} flag"));
        let long = arg
            .get_long()
            .unwrap_or_else(|| panic!("{name}: its {binary} flag has no long name"));
        flags.retain(|(flag, _)| flag != long);
        // A switch (`--webhook-allow-private-targets`) takes no value: present when the variable is true.
        let value = if arg.get_action().takes_values() {
            Some(value.to_string())
        } else {
            let set = !matches!(
                value.to_ascii_lowercase().as_str(),
                "" | "0" | "false" | "no" | "off" | "n" | "f"
            );
            if !set {
                continue;
            }
            None
        };
        flags.push((long.to_string(), value));
    }
    let given = |flag: &str| {
        args.iter()
            .any(|arg| arg.strip_prefix("--").and_then(|arg| arg.split('=').next()) == Some(flag))
    };
    let mut argv = vec![binary.to_string()];
    for (flag, value) in flags.into_iter().filter(|(flag, _)| !given(flag)) {
        argv.push(match value {
            Some(value) => format!("--{flag}={value}"),
            None => format!("--{flag}"),
        });
    }
    argv.extend(args.iter().map(ToString::to_string));
    let matches = command
        .mut_args(|arg| arg.env(None::<&'static str>))
        .try_get_matches_from(argv)
        .unwrap_or_else(|error| panic!("invalid {binary} configuration: {error}"));
    C::from_arg_matches(&matches)
        .unwrap_or_else(|error| panic!("invalid {binary} configuration: {error}"))
}

/// With `TEST_LOG` set, installs a log subscriber for the services (filter `TEST_RUST_LOG`, default
/// `info`) writing through the test harness's capture, once per test binary.
fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_none() {
            return;
        }
        let filter = std::env::var("TEST_RUST_LOG").unwrap_or_else(|_| "info".into());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_become_flags_and_a_flag_wins_over_its_variable() {
        let config: gateway::config::Config = configure(
            "gateway",
            &["--auth-failure-burst", "5"],
            &[
                ("GATEWAY_LISTEN", "127.0.0.1:0"),
                ("EXECUTOR_URL", "http://first:1"),
                ("EXECUTOR_URL", "http://second:1"),
                ("GATEWAY_AUTH_FAILURE_BURST", "9"),
            ],
        );
        assert_eq!(config.listen.port(), 0);
        assert_eq!(config.executor_url, "http://second:1", "the later variable");
        assert_eq!(config.auth_failure_burst, 5, "the flag");
    }

    #[test]
    fn a_switch_is_set_by_a_true_variable_only() {
        let secrets = [
            ("ADMIN_API_KEY", "admin-0123456789abcdef"),
            ("SERVICE_TOKEN", "svc-0123456789abcdef"),
        ];
        let with = |value: &'static str| {
            let mut envs = secrets.to_vec();
            envs.push(("WEBHOOK_ALLOW_PRIVATE_TARGETS", value));
            configure::<billing_svc::config::Config, _, _>("billing-svc", &[], &envs)
                .webhook_allow_private_targets
        };
        assert!(with("true"));
        assert!(!with("false"));
    }
}
