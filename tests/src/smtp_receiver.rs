//! A real SMTP server on loopback: `aiosmtpd` (from the docs venv, see [`docs_tools_bin`]), as the
//! operator's mail relay would be. Each message it accepts is parsed with Python's `email` package and
//! written as one JSON line (envelope recipients, `Message-ID`, `Subject`, `To`, `From`, the content type,
//! and the plain-text and HTML parts) before it answers 250, so every mail it took is in its log. It can be
//! started on a port chosen before it runs (the server "down" until then) and killed.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncBufReadExt;

use crate::docs_harness::docs_tools_bin;
use crate::eventually;

const SERVER: &str = r#"
import email, email.policy, json, sys, threading
from aiosmtpd.controller import Controller

log_file, port = sys.argv[1], int(sys.argv[2])
lock = threading.Lock()

class Handler:
    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        parts = {}
        for part in message.walk():
            if part.get_content_type() in ("text/plain", "text/html") and not part.is_multipart():
                parts[part.get_content_type()] = part.get_content()
        entry = {"rcpt": envelope.rcpt_tos, "message_id": message["Message-ID"], "subject": message["Subject"],
                 "to": message["To"], "from": message["From"], "content_type": message.get_content_type(),
                 "text": parts.get("text/plain"), "html": parts.get("text/html")}
        with lock, open(log_file, "a") as log:
            log.write(json.dumps(entry) + "\n")
        return "250 OK"

controller = Controller(Handler(), hostname="127.0.0.1", port=port)
controller.start()
print(controller.port, flush=True)
threading.Event().wait()
"#;

/// An SMTP server (running or not). Killed when dropped.
pub struct SmtpReceiver {
    /// `smtp://127.0.0.1:<port>`, the same across restarts.
    pub url: String,
    port: u16,
    script: PathBuf,
    log_file: PathBuf,
    process: Option<tokio::process::Child>,
    _dir: tempfile::TempDir,
}

impl SmtpReceiver {
    /// Starts a server on a free port.
    pub async fn start() -> SmtpReceiver {
        let mut receiver = SmtpReceiver::down();
        receiver.start_again().await;
        receiver
    }

    /// A server not running yet, on a port free now: mail to it fails until [`SmtpReceiver::start_again`].
    pub fn down() -> SmtpReceiver {
        let dir = tempfile::tempdir().expect("receiver folder");
        let (script, log_file) = (dir.path().join("smtp.py"), dir.path().join("mail.jsonl"));
        std::fs::write(&script, SERVER).expect("write the SMTP server");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        SmtpReceiver {
            url: format!("smtp://127.0.0.1:{port}"),
            port,
            script,
            log_file,
            process: None,
            _dir: dir,
        }
    }

    /// (Re)starts the server on its port.
    pub async fn start_again(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill().await;
        }
        let mut process = tokio::process::Command::new(docs_tools_bin().join("python3"))
            .arg(&self.script)
            .arg(&self.log_file)
            .arg(self.port.to_string())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the SMTP server");
        let stdout = process.stdout.take().expect("piped stdout");
        let mut port = String::new();
        tokio::io::BufReader::new(stdout)
            .read_line(&mut port)
            .await
            .expect("the SMTP server's port");
        assert_eq!(
            port.trim(),
            self.port.to_string(),
            "the SMTP server did not start"
        );
        self.process = Some(process);
    }

    /// Every mail accepted so far, in order.
    pub fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log_file)
            .unwrap_or_default()
            .lines()
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .collect()
    }

    /// Waits up to `timeout` for at least `count` mails; whether they came.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> bool {
        eventually(timeout, || async { self.received().len() >= count }).await
    }
}
