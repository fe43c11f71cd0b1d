//! A service binary run as a child process, its stdout log captured and its listening address parsed.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::START_TIMEOUT;

/// The path of a workspace binary in the target directory this test binary was built into.
pub fn binary_path(name: &str) -> PathBuf {
    // The test binary lives in `<target>/<profile>/deps/`.
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target profile dir");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test does)",
        path.display()
    );
    path
}

/// A running service. Killed when dropped.
pub struct ServiceProcess {
    pub name: String,
    pub addr: String,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl ServiceProcess {
    /// Starts `name` with `args` and `envs` and waits for its `listening` log event.
    pub async fn start(name: &str, args: &[&str], envs: &[(&str, &str)]) -> ServiceProcess {
        let mut command = Command::new(binary_path(name));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOG_FORMAT", "json")
            .env(
                "RUST_LOG",
                std::env::var("TEST_RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(capture_logs(
            name.to_string(),
            stdout,
            logs.clone(),
            addr_tx,
        ));
        let addr = tokio::time::timeout(START_TIMEOUT, addr_rx)
            .await
            .unwrap_or_else(|_| panic!("{name} did not report `listening` in time"))
            .unwrap_or_else(|_| panic!("{name} exited before listening"));
        ServiceProcess {
            name: name.to_string(),
            addr,
            child,
            logs,
        }
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every log line printed so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().expect("logs lock").clone()
    }

    /// Sends SIGKILL and waits for the process to be gone.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        tokio::time::timeout(START_TIMEOUT, self.child.wait())
            .await
            .expect("service stops after SIGTERM")
            .expect("wait")
    }
}

async fn capture_logs(
    name: String,
    stdout: tokio::process::ChildStdout,
    logs: Arc<Mutex<Vec<String>>>,
    addr_tx: tokio::sync::oneshot::Sender<String>,
) {
    let echo = std::env::var_os("TEST_LOG").is_some();
    let mut addr_tx = Some(addr_tx);
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if echo {
            eprintln!("[{name}] {line}");
        }
        if let Some(tx) = addr_tx.take_if(|_| listening_addr(&line).is_some()) {
            let _ = tx.send(listening_addr(&line).expect("checked"));
        }
        logs.lock().expect("logs lock").push(line);
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
