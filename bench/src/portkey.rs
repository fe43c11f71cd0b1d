//! Portkey's OSS AI gateway (`@portkey-ai/gateway` from npm, no auth, no billing) as the peer of the
//! end-to-end scenario: the same chat completion sent through it to the same mock model, side by side in
//! the same run. `scripts/bench` installs the version pinned in `bench/portkey/package-lock.json` into
//! `target/portkey` and passes its `build/start-server.js` as `--portkey`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// How long Node may take to start the gateway.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The running gateway, killed when dropped.
pub struct Portkey {
    child: Child,
    pub pid: u32,
    port: u16,
}

impl Portkey {
    /// Starts `node <script> --port=<free port> --headless` and waits until the port accepts connections.
    pub async fn start(script: &Path) -> anyhow::Result<Portkey> {
        let port = {
            let listener =
                std::net::TcpListener::bind("127.0.0.1:0").context("find a free port")?;
            listener.local_addr().context("free port")?.port()
        };
        let mut child = Command::new("node")
            .arg(script)
            .arg(format!("--port={port}"))
            .arg("--headless")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start node {}", script.display()))?;
        let pid = child.id().context("the Portkey gateway exited at once")?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(Portkey { child, pid, port });
            }
            if let Some(status) = child.try_wait().context("the Portkey gateway")? {
                bail!("the Portkey gateway exited: {status}");
            }
            if Instant::now() >= deadline {
                bail!("the Portkey gateway did not listen within {START_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Its OpenAI-compatible chat completions URL.
    pub fn chat_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/chat/completions", self.port)
    }

    /// The headers that send a request through it to an OpenAI-compatible server at `base_url`.
    pub fn route_headers(base_url: &str) -> Vec<(&'static str, String)> {
        vec![
            ("x-portkey-provider", "openai".to_string()),
            ("x-portkey-custom-host", base_url.to_string()),
        ]
    }

    /// Peak resident memory (`VmHWM`), in MiB.
    pub fn peak_rss_mb(&self) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .context("read the Portkey gateway's /proc status")?;
        let kilobytes = harness::kilobytes_field(&status, "VmHWM:")
            .context("no VmHWM for the Portkey gateway")?;
        Ok(kilobytes as f64 / 1024.0)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
