//! The web console (CONSOLE.md) in a real browser: Debian's Chromium driven by playwright-core runs
//! tests/browser/journey.mjs against the whole stack: the operator creates an account and a key (shown once),
//! sends a bad amount (the page again, the message beside the field, the values kept), adds promotional and
//! paid credit, sets caps and a volume tier, sends a tier and a key's policy that are refused (each the page
//! again, 400, the message beside the field, as typed), sets prices (base and charged side by side,
//! a cached-input price and a request fee) and ends one; the customer signs in with that key, sees the API's
//! balance (rounded, the exact figure in its `<data value>`), makes calls, sees them in the chart and the table (token classes and fee, no provider cost),
//! filters, downloads CSVs whose rows and sums equal the API's, sees its price list (charged prices only), sends
//! a webhook URL that is not http(s) and an alert threshold that is not a number (each sent back, as typed),
//! signs out; the operator lands on the overview, sees revenue, provider cost and margin by model and by day, an
//! account's calls with their provider cost (filtered by status), refunds a call from its row and finds the
//! refund among the ledger rows, and sees on the overview the same revenue as `GET /admin/stats`; reloading the page of a new key makes no second key; a key revoked in
//! one tab and rotated from another is refused in words (409) with the operator still signed in, and is listed
//! as revoked with no actions (a revoke not confirmed revokes nothing); an operator webhook endpoint is added
//! (secret shown once), its failed delivery shown with its URL on the events page at 375 px, redelivered, and
//! removed; a revoked key's session is refused; a member's overview shows its own caps and
//! it cannot open owner pages; forms without their CSRF token are refused; the cookie flags and the CSP are
//! checked; axe-core finds no serious or critical violation on any screen; screenshots at 375 px and 1440 px
//! go to target/console-screenshots/.
//! Afterwards no key appears in any URL the browser visited nor in any service's log.

use std::path::PathBuf;

use tests::{Backend, Billing, Stack};

/// Where scripts/test installed playwright-core and axe-core (`npm ci` of tests/browser).
fn browser_tools() -> PathBuf {
    std::env::var_os("BROWSER_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/browser"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_serves_operators_and_customers_in_a_real_browser() {
    // Loopback webhook targets allowed, so the operator's endpoint can point where nothing listens and its
    // deliveries fail at once (the events page's Redeliver).
    let billing = Billing::start(
        Backend::Sqlite,
        &[
            "--webhook-allow-private-targets",
            "--webhook-poll-interval-ms",
            "50",
            "--webhook-timeout-secs",
            "2",
        ],
    )
    .await;
    let stack = Stack::start_on(billing, &[]).await;
    let tools = browser_tools();
    let script = tools.join("journey.mjs");
    std::fs::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser/journey.mjs"),
        &script,
    )
    .expect("copy the journey next to its node_modules (run scripts/test to install them)");
    let screenshots =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        tokio::process::Command::new("node")
            .arg(&script)
            .env("GATEWAY", stack.gateway.url())
            .env("ADMIN_KEY", &stack.billing.admin_key)
            .env("SCREENSHOTS", &screenshots)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the journey ends within 5 minutes")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "journey failed:\n{stdout}\n{stderr}"
    );
    let result: serde_json::Value = stdout
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .map(|json| serde_json::from_str(json).expect("the journey's result"))
        .expect("the journey printed its result");
    let screens = result["screens"].as_array().expect("screens").len();
    assert!(screens >= 20, "every screen was checked: {screens}");

    // No key in any log line of any service.
    let keys = [
        result["key"].as_str().expect("key"),
        result["memberKey"].as_str().expect("member key"),
        stack.billing.admin_key.as_str(),
    ];
    for process in [&stack.gateway, &stack.billing.process, &stack.executor] {
        for line in process.logs() {
            for key in keys {
                assert!(!line.contains(key), "{} logged a key: {line}", process.name);
            }
        }
    }
}

/// A browser without JavaScript: keeps cookies by hand, follows no redirect.
struct Visitor {
    http: reqwest::Client,
    cookies: std::collections::BTreeMap<String, String>,
}

impl Visitor {
    fn new() -> Visitor {
        Visitor {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .unwrap(),
            cookies: Default::default(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> (u16, String, String) {
        let response = request
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|value| value.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, location, response.text().await.unwrap())
    }

    async fn get(&mut self, url: String) -> (u16, String, String) {
        let request = self.http.get(url);
        self.send(request).await
    }

    async fn post(&mut self, url: String, form: &[(&str, &str)]) -> (u16, String, String) {
        let request = self.http.post(url).form(form);
        self.send(request).await
    }

    /// Signs in at `base` with `key`; answers the sign-in's status (or the form's, when it is refused).
    async fn sign_in(&mut self, base: &str, key: &str) -> u16 {
        let (status, _, page) = self.get(format!("{base}/console/sign-in")).await;
        if status != 200 {
            return status;
        }
        let csrf = csrf_of(&page);
        self.post(
            format!("{base}/console/sign-in"),
            &[("key", key), ("csrf", &csrf)],
        )
        .await
        .0
    }
}

/// The CSRF token of the first form of a page.
fn csrf_of(page: &str) -> String {
    let start = page
        .find(r#"name="csrf" value=""#)
        .expect("a form with a CSRF token")
        + 19;
    page[start..start + 64].to_string()
}

/// A session opened through one gateway is valid on another (billing-svc keeps it), and a sign-out through
/// either ends it on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_session_holds_on_every_gateway_replica_until_signed_out() {
    let stack = Stack::start(Backend::Sqlite).await;
    let billing_url = stack.billing.url();
    let executor_url = stack.executor.url();
    let second = tests::ServiceProcess::start(
        tests::launcher(),
        "gateway",
        &["--listen", "127.0.0.1:0"],
        &[
            ("BILLING_URL", billing_url.as_str()),
            ("EXECUTOR_URL", executor_url.as_str()),
        ],
    )
    .await
    .expect("start a second gateway");
    let (_, key) = stack.create_key("console user", "standard").await;
    let (first, second_url) = (stack.gateway.url(), second.url());
    let mut visitor = Visitor::new();
    assert_eq!(visitor.sign_in(&first, &key).await, 303);
    let session = visitor.cookies.get("console_session").unwrap().clone();
    assert!(session.starts_with("tbs_") && !session.contains(&key));

    let (status, _, overview) = visitor.get(format!("{second_url}/console/")).await;
    assert_eq!(status, 200, "the second replica knows the session");
    assert!(overview.contains("Balance"));
    let csrf = csrf_of(&overview);
    let (status, location, _) = visitor
        .post(format!("{second_url}/console/sign-out"), &[("csrf", &csrf)])
        .await;
    assert_eq!((status, location.as_str()), (303, "/console/sign-in"));

    // The browser may still hold the old cookie: both replicas refuse it.
    visitor
        .cookies
        .insert("console_session".to_string(), session);
    for base in [&first, &second_url] {
        let (status, location, _) = visitor.get(format!("{base}/console/usage")).await;
        assert_eq!((status, location.as_str()), (303, "/console/sign-in"));
    }
}

/// Wrong keys at the sign-in form are failed authentications: past the burst the gateway answers 429, while
/// the sign-in of nobody else is affected by the count of another address (here all come from one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_console_sign_ins_count_against_the_failed_authentication_limiter() {
    let billing = tests::Billing::start(Backend::Sqlite, &[]).await;
    let stack = Stack::start_on(
        billing,
        &[
            ("GATEWAY_AUTH_FAILURE_BURST", "3"),
            ("GATEWAY_AUTH_FAILURE_REFILL_PER_MIN", "1"),
        ],
    )
    .await;
    let base = stack.gateway.url();
    let mut visitor = Visitor::new();
    for _ in 0..3 {
        assert_eq!(visitor.sign_in(&base, "tb_prod_guess").await, 401);
    }
    assert_eq!(visitor.sign_in(&base, "tb_prod_guess").await, 429);
}
