//! A local fake of the one Stripe endpoint billing-svc calls, `POST /v1/checkout/sessions`: the one mock at
//! the payment boundary. It records each request (form fields and headers) and answers a session.

use std::path::PathBuf;

use serde_json::Value;
use tokio::io::AsyncBufReadExt;

use crate::docs_harness::docs_tools_bin;

const SCRIPT: &str = r#"
import http.server, json, sys, threading, urllib.parse
log_file, lock, count = sys.argv[1], threading.Lock(), [0]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["content-length"])).decode()))
        with lock:
            count[0] += 1
            session = f"cs_test_fake_{count[0]}"
            with open(log_file, "a") as log:
                log.write(json.dumps({"path": self.path, "form": form,
                                      "authorization": self.headers.get("authorization"),
                                      "idempotency_key": self.headers.get("idempotency-key")}) + "\n")
        body = json.dumps({"id": session, "object": "checkout.session",
                           "url": f"https://checkout.stripe.test/pay/{session}"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// The fake, running (stopped when dropped).
pub struct FakeStripe {
    /// What billing-svc gets as `STRIPE_API_BASE`.
    pub api_base: String,
    log: PathBuf,
    _process: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        let dir = tempfile::tempdir().expect("tempdir");
        let (script, log) = (dir.path().join("stripe.py"), dir.path().join("log.jsonl"));
        std::fs::write(&script, SCRIPT).expect("write the fake");
        let mut process = tokio::process::Command::new(docs_tools_bin().join("python3"))
            .arg(&script)
            .arg(&log)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the fake Stripe");
        let mut port = String::new();
        tokio::io::BufReader::new(process.stdout.take().expect("stdout"))
            .read_line(&mut port)
            .await
            .expect("its port");
        FakeStripe {
            api_base: format!("http://127.0.0.1:{}", port.trim()),
            log,
            _process: process,
            _dir: dir,
        }
    }

    /// The requests received, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("a logged request"))
            .collect()
    }
}
