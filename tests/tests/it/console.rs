//! The web console (DESIGN §13) in a real browser: Debian's Chromium driven by playwright-core runs
//! tests/browser/journey.mjs against the whole stack: the operator creates an account and a key (shown once),
//! adds promotional and paid credit and sets caps; the customer signs in with that key, sees the API's
//! balance, makes calls, sees them in the chart and the table, filters, downloads CSVs whose rows and sums
//! equal the API's, signs out; a revoked key's session is refused; a member cannot open owner pages; forms
//! without their CSRF token are refused; the cookie flags and the CSP are checked; axe-core finds no serious
//! or critical violation on any screen; screenshots at 375 px and 1440 px go to target/console-screenshots/.
//! Afterwards no key appears in any URL the browser visited nor in any service's log.

use std::path::PathBuf;

use tests::{Backend, Stack};

/// Where scripts/test installed playwright-core and axe-core (`npm ci` of tests/browser).
fn browser_tools() -> PathBuf {
    std::env::var_os("BROWSER_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/browser"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_serves_operators_and_customers_in_a_real_browser() {
    let stack = Stack::start(Backend::Sqlite).await;
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
    assert!(screens >= 15, "every screen was checked: {screens}");

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
