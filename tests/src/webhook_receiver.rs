//! A webhook receiver that verifies each delivery with the official `standardwebhooks` Python library (from
//! the docs venv, see [`docs_tools_bin`]), as an operator's or customer's endpoint would. It answers 500
//! to its first `fail_first` requests, then 204, and writes one JSON line per request (`id`, `type`,
//! `verified`, `answered`, `data`) before answering, so every 2xx it gave is in its log. It can be killed
//! and started again on the same port, as a receiver going down and up.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncBufReadExt;

use crate::docs_harness::docs_tools_bin;
use crate::eventually;

/// The receiver. On start it ends the log's last line, which a kill may have torn.
const RECEIVER: &str = r#"
import http.server, json, sys, threading
from standardwebhooks.webhooks import Webhook

secret_file, log_file, fail_first, port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
lock, seen = threading.Lock(), [0]
with open(log_file, "a") as log:
    log.write("\n")

class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        with lock:
            seen[0] += 1
            status = 500 if seen[0] <= fail_first else 204
        try:
            payload = Webhook(open(secret_file).read().strip()).verify(body, dict(self.headers))
            verified = payload["id"] == self.headers["webhook-id"]
        except Exception as error:
            payload, verified = json.loads(body), False
        with lock, open(log_file, "a") as log:
            log.write(json.dumps({"id": payload["id"], "type": payload["type"], "verified": verified,
                                  "answered": status, "data": payload["data"]}) + "\n")
        self.send_response(status)
        self.end_headers()
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// A running (or stopped) receiver. Killed when dropped.
pub struct WebhookReceiver {
    /// `http://127.0.0.1:<port>/hook`, the same across restarts.
    pub url: String,
    port: u16,
    script: PathBuf,
    secret_file: PathBuf,
    log_file: PathBuf,
    process: Option<tokio::process::Child>,
    _dir: tempfile::TempDir,
}

impl WebhookReceiver {
    /// Starts a receiver on a free port that fails its first `fail_first` requests.
    pub async fn start(fail_first: u32) -> WebhookReceiver {
        let dir = tempfile::tempdir().expect("receiver folder");
        let (script, secret_file, log_file) = (
            dir.path().join("receiver.py"),
            dir.path().join("secret"),
            dir.path().join("log.jsonl"),
        );
        std::fs::write(&script, RECEIVER).expect("write the receiver");
        std::fs::write(&secret_file, "").expect("write the secret file");
        let mut receiver = WebhookReceiver {
            url: String::new(),
            port: 0,
            script,
            secret_file,
            log_file,
            process: None,
            _dir: dir,
        };
        receiver.port = receiver.spawn(fail_first).await;
        receiver.url = format!("http://127.0.0.1:{}/hook", receiver.port);
        receiver
    }

    /// Runs the script on `self.port` (0: a free one) and returns the port it listens on.
    async fn spawn(&mut self, fail_first: u32) -> u16 {
        let mut process = tokio::process::Command::new(docs_tools_bin().join("python3"))
            .arg(&self.script)
            .arg(&self.secret_file)
            .arg(&self.log_file)
            .arg(fail_first.to_string())
            .arg(self.port.to_string())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the webhook receiver");
        let stdout = process.stdout.take().expect("piped stdout");
        let mut port = String::new();
        tokio::io::BufReader::new(stdout)
            .read_line(&mut port)
            .await
            .expect("the receiver's port");
        self.process = Some(process);
        port.trim()
            .parse()
            .unwrap_or_else(|_| panic!("the receiver did not start: {port:?}"))
    }

    /// Trusts `secret` (the endpoint's `whsec_` secret) from now on.
    pub fn trust(&self, secret: &str) {
        std::fs::write(&self.secret_file, secret).expect("write the secret");
    }

    /// Kills the receiver (SIGKILL): deliveries fail until [`WebhookReceiver::start_again`].
    pub async fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            // An error means it is gone already.
            let _ = process.kill().await;
        }
    }

    /// Starts the receiver again on its port, answering 204 at once.
    pub async fn start_again(&mut self) {
        self.stop().await;
        self.spawn(0).await;
    }

    /// The requests it answered with a 2xx (deliveries), in order.
    pub fn delivered(&self) -> Vec<Value> {
        self.received()
            .into_iter()
            .filter(|entry| entry["answered"] == 204)
            .collect()
    }

    /// Waits up to `timeout` for at least `count` deliveries; whether they came.
    pub async fn wait_for_deliveries(&self, count: usize, timeout: Duration) -> bool {
        eventually(timeout, || async { self.delivered().len() >= count }).await
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log_file)
            .unwrap_or_default()
            .lines()
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .collect()
    }
}
