//! A service binary run as a child process: started with JSON logs, ready once it logs `listening` with
//! its bound `addr` (port 0, no sleeps), its peak memory read from `/proc`, killed when dropped.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a service may take to announce that it listens (migrations on a fresh database included).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Log lines kept per service, to explain a failure without holding a whole run's logs in memory.
const KEPT_LOG_LINES: usize = 20;

/// The binaries a full run needs, and the command that builds them.
pub const SERVICES: [&str; 4] = ["billing-svc", "executor-svc", "gateway", "mock-model"];
pub const BUILD_COMMAND: &str =
    "cargo build --release -p billing-svc -p executor-svc -p gateway -p mock-model";

/// Fails with the build command when a service binary is missing from `bin_dir`.
pub fn check_binaries(bin_dir: &Path) -> anyhow::Result<()> {
    for name in SERVICES {
        let path = bin_dir.join(name);
        if !path.is_file() {
            bail!(
                "{} is missing: build the services first (`{BUILD_COMMAND}`, or \
                 `cargo build --workspace --bins` for a debug smoke run), or pass --bin-dir",
                path.display()
            );
        }
    }
    Ok(())
}

/// True when `billing-svc --help` offers `--write-mode` (group commit has landed).
pub fn billing_has_write_mode(bin_dir: &Path) -> anyhow::Result<bool> {
    let output = std::process::Command::new(bin_dir.join("billing-svc"))
        .arg("--help")
        .output()
        .context("run billing-svc --help")?;
    Ok(String::from_utf8_lossy(&output.stdout).contains("write-mode"))
}

/// How services are started: where the binaries are, their log level, extra environment, and whether
/// their logs are echoed.
#[derive(Debug, Clone)]
pub struct Launcher {
    pub bin_dir: PathBuf,
    pub rust_log: String,
    pub extra_env: Vec<(String, String)>,
    pub echo_logs: bool,
}

/// A running service.
pub struct ServiceProcess {
    pub name: String,
    pub addr: String,
    pub pid: u32,
    child: Child,
    recent_logs: Arc<Mutex<VecDeque<String>>>,
}

impl ServiceProcess {
    /// Starts `name` from the launcher's folder with a clean environment plus `envs` (then the launcher's
    /// extra environment), and waits for its `listening` event.
    pub async fn start(
        launcher: &Launcher,
        name: &str,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> anyhow::Result<ServiceProcess> {
        let path: PathBuf = launcher.bin_dir.join(name);
        let mut command = Command::new(&path);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", &launcher.rust_log)
            .envs(envs.iter().copied())
            .envs(launcher.extra_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("spawn {}", path.display()))?;
        let pid = child.id().context("a started child has a pid")?;
        let stdout = child.stdout.take().context("piped stdout")?;
        let recent_logs = Arc::new(Mutex::new(VecDeque::new()));
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let echo = launcher.echo_logs.then(|| name.to_string());
        tokio::spawn(drain_logs(stdout, recent_logs.clone(), addr_tx, echo));
        let waited = tokio::time::timeout(START_TIMEOUT, addr_rx).await;
        let process = ServiceProcess {
            name: name.to_string(),
            addr: String::new(),
            pid,
            child,
            recent_logs,
        };
        match waited {
            Ok(Ok(addr)) => Ok(ServiceProcess { addr, ..process }),
            Ok(Err(_)) => Err(anyhow!(
                "{name} exited before listening; last logs:\n{}",
                process.recent_logs()
            )),
            Err(_) => Err(anyhow!(
                "{name} did not log `listening` within {START_TIMEOUT:?}; last logs:\n{}",
                process.recent_logs()
            )),
        }
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The last log lines, for error messages.
    pub fn recent_logs(&self) -> String {
        self.recent_logs
            .lock()
            .map(|lines| lines.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// Peak resident memory so far (`VmHWM` of `/proc/<pid>/status`), in bytes.
    pub fn peak_rss_bytes(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .with_context(|| format!("read /proc/{}/status of {}", self.pid, self.name))?;
        let kilobytes = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| {
                value
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .with_context(|| format!("no VmHWM in /proc/{}/status", self.pid))?;
        Ok(kilobytes * 1024)
    }

    /// Kills the process and waits for it to be gone.
    pub async fn stop(mut self) {
        // The service is disposable (its database is checked separately), so no graceful shutdown.
        let _ = self.child.kill().await;
    }
}

/// Reads the service's stdout to the end (a full pipe would block it), reports the `listening` address
/// once, keeps the last lines, and echoes each line to stderr when `echo` names the service.
async fn drain_logs(
    stdout: tokio::process::ChildStdout,
    recent: Arc<Mutex<VecDeque<String>>>,
    addr_tx: tokio::sync::oneshot::Sender<String>,
    echo: Option<String>,
) {
    let mut addr_tx = Some(addr_tx);
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if addr_tx.is_some()
            && let Some(addr) = listening_addr(&line)
            && let Some(tx) = addr_tx.take()
        {
            let _ = tx.send(addr);
        }
        if let Some(name) = &echo {
            eprintln!("[{name}] {line}");
        }
        if let Ok(mut recent) = recent.lock() {
            if recent.len() == KEPT_LOG_LINES {
                recent.pop_front();
            }
            recent.push_back(line);
        }
    }
}

/// The `addr` of a `{"fields":{"message":"listening","addr":...}}` JSON log line.
fn listening_addr(line: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = value.get("fields")?;
    if fields.get("message")?.as_str()? != "listening" {
        return None;
    }
    Some(fields.get("addr")?.as_str()?.to_string())
}
