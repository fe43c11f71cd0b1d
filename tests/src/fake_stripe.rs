//! A local fake of the Stripe endpoints billing-svc calls: the one mock at the payment boundary. It records
//! each request (method, path, form fields and headers) and answers like Stripe: `POST /v1/checkout/sessions`
//! a session; `GET /v1/payment_methods?customer=` the customer's saved card (none for a customer id
//! containing `nocard`); `POST /v1/payment_intents` an off-session charge that succeeds, or, once told to
//! decline, a 402 card error; `GET /v1/payment_intents/<id>` an intent it made. A repeated Idempotency-Key
//! gets the first answer and charges nothing more.
//! Like Stripe, it then sends the matching signed event (`payment_intent.succeeded` /
//! `payment_intent.payment_failed`, signed by the official `stripe` library's code) to the webhook URL it was
//! given.

use std::path::PathBuf;

use serde_json::Value;
use tokio::io::AsyncBufReadExt;

use crate::docs_harness::docs_tools_bin;

const SCRIPT: &str = r#"
import http.server, json, sys, threading, time, urllib.parse, urllib.request
from stripe._webhook import WebhookSignature
log_file, lock, count = sys.argv[1], threading.Lock(), [0]
control = {"decline": False, "webhook_url": None, "webhook_secret": None}
answered = {}  # Idempotency-Key -> (status, body): Stripe answers a repeated key with its first answer
intents = {}  # PaymentIntent id -> the intent, for GET /v1/payment_intents/<id>

def send_event(kind, intent):
    url, secret = control["webhook_url"], control["webhook_secret"]
    if not url:
        return
    time.sleep(0.2)
    with lock:
        count[0] += 1
        event_id = f"evt_fake_{count[0]}"
    payload = json.dumps({"id": event_id, "object": "event", "type": kind, "data": {"object": intent}})
    t = int(time.time())
    signature = WebhookSignature._compute_signature(f"{t}.{payload}", secret)
    request = urllib.request.Request(url, data=payload.encode(), method="POST", headers={
        "content-type": "application/json", "stripe-signature": f"t={t},v1={signature}"})
    for _ in range(5):
        try:
            urllib.request.urlopen(request, timeout=10).read()
            return
        except Exception:
            time.sleep(0.5)

class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, status, body):
        body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def record(self, form):
        with open(log_file, "a") as log:
            log.write(json.dumps({"method": self.command, "path": self.path, "form": form,
                                  "authorization": self.headers.get("authorization"),
                                  "idempotency_key": self.headers.get("idempotency-key")}) + "\n")

    def do_GET(self):
        with lock:
            self.record({})
        url = urllib.parse.urlparse(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path.startswith("/v1/payment_intents/"):
            intent = intents.get(url.path.rsplit("/", 1)[1])
            if intent is None:
                return self.answer(404, {"error": {"type": "invalid_request_error", "message": "No such payment_intent"}})
            return self.answer(200, intent)
        if url.path != "/v1/payment_methods":
            return self.answer(404, {"error": {"type": "invalid_request_error", "message": "no such path"}})
        customer = query.get("customer", "")
        cards = [] if "nocard" in customer else [{"id": f"pm_card_{customer}", "object": "payment_method"}]
        self.answer(200, {"object": "list", "data": cards, "has_more": False})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
        if self.path == "/_control":
            control.update(json.loads(raw))
            return self.answer(200, control)
        form = dict(urllib.parse.parse_qsl(raw))
        key = self.headers.get("idempotency-key")
        with lock:
            self.record(form)
            if key in answered:
                return self.answer(*answered[key])
            count[0] += 1
            n = count[0]
            event = None
            if self.path == "/v1/checkout/sessions":
                session = f"cs_test_fake_{n}"
                status, body = 200, {"id": session, "object": "checkout.session",
                                     "url": f"https://checkout.stripe.test/pay/{session}"}
            elif self.path == "/v1/payment_intents":
                intent = {"id": f"pi_fake_{n}", "object": "payment_intent", "amount": int(form["amount"]),
                          "currency": form["currency"], "customer": form.get("customer"),
                          "payment_method": form.get("payment_method"),
                          "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")}}
                if control["decline"]:
                    message = "Your card has insufficient funds."
                    intent.update(status="requires_payment_method", amount_received=0,
                                  last_payment_error={"code": "card_declined", "message": message})
                    status, body = 402, {"error": {"type": "card_error", "code": "card_declined",
                                                   "decline_code": "insufficient_funds", "message": message,
                                                   "payment_intent": intent}}
                    event = ("payment_intent.payment_failed", intent)
                else:
                    intent.update(status="succeeded", amount_received=intent["amount"])
                    status, body = 200, intent
                    event = ("payment_intent.succeeded", intent)
                intents[intent["id"]] = intent
            else:
                status, body = 404, {"error": {"type": "invalid_request_error", "message": "no such path"}}
            if key:
                answered[key] = (status, body)
        self.answer(status, body)
        if event:
            threading.Thread(target=send_event, args=event, daemon=True).start()

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
        let (script, log) = (
            dir.path().join("fake_stripe.py"),
            dir.path().join("log.jsonl"),
        );
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
        let port: u16 = port
            .trim()
            .parse()
            .expect("the fake Stripe prints its port");
        FakeStripe {
            api_base: format!("http://127.0.0.1:{port}"),
            log,
            _process: process,
            _dir: dir,
        }
    }

    /// Sends Stripe's events for the payment intents it creates to `url`, signed with `secret`.
    pub async fn send_events_to(&self, url: &str, secret: &str) {
        self.control(serde_json::json!({"webhook_url": url, "webhook_secret": secret}))
            .await;
    }

    /// Declines every later charge (or accepts them again).
    pub async fn decline_charges(&self, decline: bool) {
        self.control(serde_json::json!({"decline": decline})).await;
    }

    async fn control(&self, settings: Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/_control", self.api_base))
            .body(settings.to_string())
            .send()
            .await
            .expect("the fake Stripe answers");
        assert!(response.status().is_success());
    }

    /// The requests received to `path` (without its query), oldest first.
    pub fn requests_to(&self, path: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|request| {
                request["path"]
                    .as_str()
                    .is_some_and(|sent| sent.split('?').next() == Some(path))
            })
            .collect()
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
