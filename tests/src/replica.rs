//! A service that can be killed and started again on the address it had, with the same arguments and
//! environment, as an orchestrator restarts a crashed replica: its clients reconnect to it unchanged.

use std::time::Duration;

use crate::{ServiceProcess, launcher};

/// Starts a restart may take: the port can be held for a moment by a connection of the dead process.
const RESTART_ATTEMPTS: usize = 40;
const RESTART_PAUSE: Duration = Duration::from_millis(250);

/// One replica of a service.
pub struct Replica {
    pub name: &'static str,
    /// `127.0.0.1:<port>`, fixed at the first start.
    pub addr: String,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    process: Option<ServiceProcess>,
    /// Times it was started again.
    pub restarts: usize,
}

impl Replica {
    /// Starts `name` on a free loopback port with `args` (after `--listen`) and `envs`.
    pub async fn start(name: &'static str, args: &[&str], envs: &[(&str, &str)]) -> Replica {
        let mut replica = Replica {
            name,
            addr: "127.0.0.1:0".into(),
            args: args.iter().map(|arg| arg.to_string()).collect(),
            envs: envs
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            process: None,
            restarts: 0,
        };
        let process = replica
            .spawn()
            .await
            .unwrap_or_else(|error| panic!("start {name}: {error:#}"));
        replica.addr = process.addr.clone();
        replica.process = Some(process);
        replica
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn spawn(&self) -> anyhow::Result<ServiceProcess> {
        let mut args = vec!["--listen", self.addr.as_str()];
        args.extend(self.args.iter().map(String::as_str));
        let envs: Vec<(&str, &str)> = self
            .envs
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        ServiceProcess::start(launcher(), self.name, &args, &envs).await
    }

    /// Kills the process (SIGKILL, no chance to drain), when it runs.
    pub async fn kill(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill().await;
        }
    }

    /// Starts the process again on its address; panics when it cannot within about ten seconds.
    pub async fn start_again(&mut self) {
        self.kill().await;
        let mut last_error = None;
        for _ in 0..RESTART_ATTEMPTS {
            match self.spawn().await {
                Ok(process) => {
                    self.process = Some(process);
                    self.restarts += 1;
                    return;
                }
                Err(error) => last_error = Some(error),
            }
            tokio::time::sleep(RESTART_PAUSE).await;
        }
        panic!(
            "{} could not start again on {}: {:#}",
            self.name,
            self.addr,
            last_error.expect("an attempt failed")
        );
    }
}
