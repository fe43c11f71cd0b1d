//! A service binary run as a child process: started with a clean environment and JSON logs, ready once it
//! logs `listening` with its bound `addr` (port 0, no sleeps, no fixed ports), its log lines kept (and
//! echoed on request), its peak memory read from `/proc`, killed when dropped.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// How long a service may take to exit after SIGTERM (it drains in-flight work first).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Log lines quoted in the error about a service that did not start.
const QUOTED_LOG_LINES: usize = 20;

/// Which log lines a service's [`ServiceProcess::logs`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptLogs {
    /// Every line, for tests that assert on what a service logged (a request id, no secret).
    All,
    /// The last lines only, to explain a failure without holding a long run's logs in memory.
    Last(usize),
}

/// How services are started: where the binaries are, their log level, extra environment, whether their
/// logs are echoed to stderr and which are kept, and how long a start may take.
#[derive(Debug, Clone)]
pub struct Launcher {
    pub bin_dir: PathBuf,
    /// The services' `RUST_LOG`.
    pub rust_log: String,
    /// Set after each service's own variables, so it wins over them.
    pub extra_env: Vec<(String, String)>,
    /// Echo every log line to stderr, prefixed with `[<service>]`.
    pub echo_logs: bool,
    pub kept_logs: KeptLogs,
    /// How long a service may take to log `listening` (migrations on a fresh database included).
    pub start_timeout: Duration,
}

impl Launcher {
    /// The path of the binary `name` in [`Launcher::bin_dir`]; fails when it is not there.
    pub fn binary(&self, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.bin_dir.join(name);
        if !path.is_file() {
            bail!(
                "{} is missing (`cargo build --workspace --bins` builds every service binary)",
                path.display()
            );
        }
        Ok(path)
    }
}

/// The folder cargo builds the workspace's binaries into, seen from the running test binary: that lives
/// in `<target>/<profile>/deps/`, the binaries in `<target>/<profile>/`.
pub fn bin_dir_of_test_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locate the test binary")?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .with_context(|| format!("{} is not in <target>/<profile>/deps/", exe.display()))?;
    Ok(profile_dir.to_path_buf())
}

/// A running service. Killed when dropped.
pub struct ServiceProcess {
    pub name: String,
    /// The address it listens on, from its `listening` event.
    pub addr: String,
    pub pid: u32,
    child: Child,
    logs: Arc<Mutex<VecDeque<String>>>,
}

impl ServiceProcess {
    /// Starts `name` from the launcher's folder with `args`, a clean environment (`PATH`, JSON logs, the
    /// launcher's `RUST_LOG`) plus `envs` and then the launcher's extra environment, and waits for its
    /// `listening` event.
    pub async fn start(
        launcher: &Launcher,
        name: &str,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> anyhow::Result<ServiceProcess> {
        let path = launcher.binary(name)?;
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
        let logs = Arc::new(Mutex::new(VecDeque::new()));
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let reader = LogReader {
            name: name.to_string(),
            echo: launcher.echo_logs,
            kept: launcher.kept_logs,
            logs: logs.clone(),
        };
        tokio::spawn(reader.read(stdout, addr_tx));
        let waited = tokio::time::timeout(launcher.start_timeout, addr_rx).await;
        let process = ServiceProcess {
            name: name.to_string(),
            addr: String::new(),
            pid,
            child,
            logs,
        };
        match waited {
            Ok(Ok(addr)) => Ok(ServiceProcess { addr, ..process }),
            Ok(Err(_)) => Err(anyhow!(
                "{name} exited before listening; last logs:\n{}",
                process.last_logs()
            )),
            Err(_) => Err(anyhow!(
                "{name} did not log `listening` within {:?}; last logs:\n{}",
                launcher.start_timeout,
                process.last_logs()
            )),
        }
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The log lines printed so far, as [`Launcher::kept_logs`] keeps them.
    pub fn logs(&self) -> Vec<String> {
        self.logs
            .lock()
            .map(|lines| lines.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The last few log lines as one text, for error messages.
    fn last_logs(&self) -> String {
        let lines = self.logs();
        lines[lines.len().saturating_sub(QUOTED_LOG_LINES)..].join("\n")
    }

    /// Peak resident memory so far (`VmHWM` of `/proc/<pid>/status`), in bytes.
    pub fn peak_rss_bytes(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .with_context(|| format!("read /proc/{}/status of {}", self.pid, self.name))?;
        let kilobytes = kilobytes_field(&status, "VmHWM:")
            .with_context(|| format!("no VmHWM in /proc/{}/status", self.pid))?;
        Ok(kilobytes * 1024)
    }

    /// Sends SIGKILL and waits for the process to be gone: no graceful shutdown, like a crash (or a
    /// disposable service whose database is checked separately).
    pub async fn kill(mut self) {
        // An error means the process is gone already, which is what was asked for.
        let _ = self.child.kill().await;
    }

    /// Sends SIGTERM and waits up to [`STOP_TIMEOUT`] for the service to drain and exit; its exit status.
    pub async fn terminate(mut self) -> anyhow::Result<ExitStatus> {
        // `kill` fails only when the process has exited already; waiting then returns its status at once.
        std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .context("run kill -TERM")?;
        tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .map_err(|_| {
                anyhow!(
                    "{} did not exit within {STOP_TIMEOUT:?} of SIGTERM",
                    self.name
                )
            })?
            .with_context(|| format!("wait for {} to exit", self.name))
    }
}

/// Reads a service's stdout to the end (a full pipe would block the service).
struct LogReader {
    name: String,
    echo: bool,
    kept: KeptLogs,
    logs: Arc<Mutex<VecDeque<String>>>,
}

impl LogReader {
    /// Reports the `listening` address once, echoes each line when asked, and keeps the lines.
    async fn read(self, stdout: ChildStdout, addr_tx: tokio::sync::oneshot::Sender<String>) {
        let mut addr_tx = Some(addr_tx);
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if addr_tx.is_some()
                && let Some(addr) = listening_addr(&line)
                && let Some(tx) = addr_tx.take()
            {
                let _ = tx.send(addr);
            }
            if self.echo {
                eprintln!("[{}] {line}", self.name);
            }
            if let Ok(mut logs) = self.logs.lock() {
                keep(&mut logs, self.kept, line);
            }
        }
    }
}

/// Appends `line`, dropping the oldest lines beyond what `kept` allows.
fn keep(logs: &mut VecDeque<String>, kept: KeptLogs, line: String) {
    logs.push_back(line);
    if let KeptLogs::Last(limit) = kept {
        while logs.len() > limit {
            logs.pop_front();
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

/// The value of a `Field:   1234 kB` line of a `/proc` file, in kB.
pub fn kilobytes_field(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_event_gives_the_address_and_nothing_else_does() {
        let listening =
            r#"{"level":"INFO","fields":{"message":"listening","addr":"127.0.0.1:4000"}}"#;
        assert_eq!(listening_addr(listening).as_deref(), Some("127.0.0.1:4000"));
        let other = r#"{"level":"INFO","fields":{"message":"migrated","addr":"127.0.0.1:4000"}}"#;
        assert_eq!(listening_addr(other), None, "another event");
        assert_eq!(
            listening_addr("listening on 127.0.0.1:4000"),
            None,
            "not JSON"
        );
    }

    #[test]
    fn kept_logs_hold_every_line_or_the_last_ones() {
        let mut all = VecDeque::new();
        let mut last = VecDeque::new();
        for n in 0..5 {
            keep(&mut all, KeptLogs::All, n.to_string());
            keep(&mut last, KeptLogs::Last(2), n.to_string());
        }
        assert_eq!(all, ["0", "1", "2", "3", "4"]);
        assert_eq!(last, ["3", "4"]);
    }
}
