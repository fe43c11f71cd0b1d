//! Webhook delivery (DESIGN §11), received by the official `standardwebhooks` Python library: every
//! delivery carries the Standard Webhooks headers and a signature the library verifies; a receiver that
//! fails its first attempts gets each event later, once per id; an endpoint that never answers is
//! disabled and the operator's endpoint is told; a private target is refused by default; the operator can
//! redeliver an event.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::docs_harness::docs_tools_bin;
use tests::{Backend, Billing, Stack, assert_ledger_invariants, backend_tests, eventually};

backend_tests!(
    deliveries_are_verified_by_standardwebhooks_and_retried_until_received,
    an_endpoint_that_never_answers_is_disabled_and_the_operator_is_told,
    committed_events_are_delivered_after_billing_is_killed,
);

/// A receiver verifying each delivery with `standardwebhooks`: it answers 500 to its first `fail_first`
/// requests, then 204, and writes one JSON line per request (`id`, `type`, `verified`, `answered`).
const RECEIVER: &str = r#"
import http.server, json, sys, threading
from standardwebhooks.webhooks import Webhook

secret_file, log_file, fail_first = sys.argv[1], sys.argv[2], int(sys.argv[3])
lock, seen = threading.Lock(), [0]

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

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

struct Receiver {
    url: String,
    secret_file: PathBuf,
    log_file: PathBuf,
    _process: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Receiver {
    async fn start(fail_first: u32) -> Receiver {
        use tokio::io::AsyncBufReadExt;
        let dir = tempfile::tempdir().unwrap();
        let (script, secret_file, log_file) = (
            dir.path().join("receiver.py"),
            dir.path().join("secret"),
            dir.path().join("log.jsonl"),
        );
        std::fs::write(&script, RECEIVER).unwrap();
        std::fs::write(&secret_file, "").unwrap();
        let mut process = tokio::process::Command::new(docs_tools_bin().join("python3"))
            .arg(&script)
            .arg(&secret_file)
            .arg(&log_file)
            .arg(fail_first.to_string())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = process.stdout.take().unwrap();
        let mut port = String::new();
        tokio::io::BufReader::new(stdout)
            .read_line(&mut port)
            .await
            .unwrap();
        Receiver {
            url: format!("http://127.0.0.1:{}/hook", port.trim()),
            secret_file,
            log_file,
            _process: process,
            _dir: dir,
        }
    }

    fn trust(&self, secret: &str) {
        std::fs::write(&self.secret_file, secret).unwrap();
    }

    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log_file)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

/// billing-svc delivering quickly: loopback targets allowed, retries after 1 s, twice.
async fn stack(backend: Backend) -> Stack {
    let billing = Billing::start(
        backend,
        &[
            "--webhook-allow-private-targets",
            "--webhook-retry-schedule-secs",
            "1,1",
            "--webhook-poll-interval-ms",
            "50",
            "--webhook-timeout-secs",
            "2",
        ],
    )
    .await;
    Stack::start_on(billing, &[]).await
}

async fn admin(stack: &Stack, method: Method, path: &str, body: Option<Value>) -> tests::Answer {
    stack
        .call(method, path, Some(&stack.billing.admin_key), body)
        .await
}

async fn deliveries_are_verified_by_standardwebhooks_and_retried_until_received(backend: Backend) {
    let stack = stack(backend).await;
    let receiver = Receiver::start(2).await;
    let (id, key) = stack.create_key("hooked", "standard").await;
    let created = stack
        .post("/billing/webhooks", &key, json!({"url": receiver.url}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let secret = created.json["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    receiver.trust(secret);
    let listed = stack.get("/billing/webhooks", &key).await;
    assert!(
        listed.json["webhooks"][0].get("secret").is_none(),
        "the secret is shown once"
    );

    for amount in [1, 2, 3] {
        stack.add_credits(&id, json!(amount)).await;
    }
    // Three events; the first two requests fail, so the first event is delivered on its third attempt.
    let delivered = eventually(Duration::from_secs(20), || async {
        receiver
            .received()
            .iter()
            .filter(|entry| entry["answered"] == 204)
            .count()
            >= 3
    })
    .await;
    assert!(delivered, "{:?}", receiver.received());
    let received = receiver.received();
    assert!(
        received.iter().all(|entry| entry["verified"] == true),
        "{received:?}"
    );
    let ok: Vec<&Value> = received
        .iter()
        .filter(|entry| entry["answered"] == 204)
        .collect();
    let amounts: Vec<&str> = ok
        .iter()
        .map(|entry| entry["data"]["amount"].as_str().unwrap())
        .collect();
    assert_eq!(amounts, vec!["1", "2", "3"], "in order, each once");
    assert!(ok.iter().all(|entry| entry["type"] == "credits.added"));
    assert_eq!(
        received.len(),
        5,
        "two failed attempts, then one delivery per event"
    );

    // Each event shows its attempts: the first one failed twice.
    let events = stack.get("/billing/events?type=credits.added", &key).await;
    let oldest = events.json["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let attempts: Vec<bool> = oldest["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| attempt["succeeded"].as_bool().unwrap())
        .collect();
    assert_eq!(attempts, vec![false, false, true]);

    // The operator redelivers an event: the receiver gets the same id again and dedupes by it.
    let event_id = oldest["id"].as_str().unwrap();
    let again = admin(
        &stack,
        Method::POST,
        &format!("/admin/events/{event_id}/redeliver"),
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json["attempts"][0]["succeeded"], true);
    assert_eq!(
        receiver
            .received()
            .iter()
            .filter(|entry| entry["id"] == event_id)
            .count(),
        4
    );
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn an_endpoint_that_never_answers_is_disabled_and_the_operator_is_told(backend: Backend) {
    let stack = stack(backend).await;
    let operator = Receiver::start(0).await;
    let created = admin(
        &stack,
        Method::POST,
        "/admin/webhooks",
        Some(json!({"url": operator.url, "eventTypes": ["webhook.disabled"]})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    operator.trust(created.json["secret"].as_str().unwrap());

    let (id, key) = stack.create_key("dead receiver", "standard").await;
    // Nothing listens on this port: every attempt fails.
    let dead = stack
        .post(
            "/billing/webhooks",
            &key,
            json!({"url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    assert_eq!(dead.status, StatusCode::CREATED, "{}", dead.text);
    stack.add_credits(&id, json!(1)).await;
    let told = eventually(Duration::from_secs(20), || async {
        operator
            .received()
            .iter()
            .any(|entry| entry["type"] == "webhook.disabled")
    })
    .await;
    assert!(told, "{:?}", operator.received());
    let notice = operator
        .received()
        .into_iter()
        .find(|entry| entry["type"] == "webhook.disabled")
        .unwrap();
    assert_eq!(notice["verified"], true);
    assert_eq!(notice["data"]["attempts"], 3);
    let listed = stack.get("/billing/webhooks", &key).await;
    assert!(
        listed.json["webhooks"][0]["disabledAt"].is_string(),
        "{}",
        listed.text
    );
}

/// Without `WEBHOOK_ALLOW_PRIVATE_TARGETS`, an endpoint on a loopback or private address is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_targets_are_refused_by_default() {
    let stack = Stack::start(Backend::Sqlite).await;
    let (_, key) = stack.create_key("ssrf", "standard").await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/hook",
        "ftp://example.com/hook",
    ] {
        let refused = stack
            .post("/billing/webhooks", &key, json!({"url": url}))
            .await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{url}: {}",
            refused.text
        );
    }
}

/// Events committed but not yet delivered when billing-svc is killed (SIGKILL) are delivered, each once,
/// by the restarted process.
async fn committed_events_are_delivered_after_billing_is_killed(backend: Backend) {
    use proto::billing::v1 as pb;

    let args = [
        "--webhook-allow-private-targets",
        "--webhook-retry-schedule-secs",
        "1",
        "--webhook-poll-interval-ms",
        "50",
        "--webhook-timeout-secs",
        "1",
    ];
    let billing = Billing::start(backend, &args).await;
    let receiver = Receiver::start(1).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    let endpoint = billing
        .account()
        .await
        .create_webhook(tests::authed(
            &key,
            pb::CreateWebhookRequest {
                url: receiver.url.clone(),
                event_types: vec!["credits.added".into()],
            },
        ))
        .await
        .unwrap()
        .into_inner();
    receiver.trust(endpoint.secret.as_deref().unwrap());
    billing.add_credits(&id, "1").await;
    billing.add_credits(&id, "2").await;
    // The first attempt fails; the retry is a second away when the process dies.
    let first_failed = eventually(Duration::from_secs(5), || async {
        !receiver.received().is_empty()
    })
    .await;
    assert!(first_failed);
    let (admin_key, service_token) = (billing.admin_key.clone(), billing.service_token.clone());
    let database = billing.stop().await;
    assert_eq!(
        receiver.received().len(),
        1,
        "nothing delivered before the kill"
    );

    let restarted = Billing::start_with(database, admin_key, service_token, &args).await;
    let delivered = eventually(Duration::from_secs(20), || async {
        receiver
            .received()
            .iter()
            .filter(|entry| entry["answered"] == 204)
            .count()
            >= 2
    })
    .await;
    assert!(delivered, "{:?}", receiver.received());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ok: Vec<Value> = receiver
        .received()
        .into_iter()
        .filter(|entry| entry["answered"] == 204)
        .collect();
    let amounts: Vec<&str> = ok
        .iter()
        .map(|entry| entry["data"]["amount"].as_str().unwrap())
        .collect();
    assert_eq!(
        amounts,
        vec!["1", "2"],
        "each committed event once, in order"
    );
    assert!(ok.iter().all(|entry| entry["verified"] == true));
    assert_ledger_invariants(&restarted.database).await;
}
