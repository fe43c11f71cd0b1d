//! Every REST route fuzzed from the gateway's own `/openapi.json` with schemathesis, once with the admin
//! key and once with a customer key: no answer may be a 5xx, and every answer must conform to the
//! document (status codes, content types, response schemas).
//!
//! schemathesis is installed by scripts/test into a virtualenv under `target/` and found through the
//! `SCHEMATHESIS` variable it exports. Examples per operation: 50 by default, 500 with
//! `RELIABILITY_LONG=1`.

use std::time::Duration;

use serde_json::json;
use tests::reliability::scaled;
use tests::{Backend, Billing, Stack, assert_ledger_invariants};

/// Checks every answer must pass. `positive_data_acceptance` and the stateful checks are left out: a
/// schema-valid request may still be refused for business reasons (402 without credit, 404 for an id
/// that does not exist), which the document states.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,negative_data_rejection,missing_required_header,unsupported_method";

async fn fuzz(stack: &Stack, who: &str, bearer: &str) {
    // schemathesis itself sometimes crashes while generating a case (a "Runtime Error" in its ERRORS
    // section, e.g. hypothesis' "AST constructor recursion depth mismatch"): that says nothing about the
    // API, so such a run is made again, at most twice. A run that found a failure never is.
    for run in 1..=3 {
        let (succeeded, report) = fuzz_once(stack, bearer).await;
        let summary: Vec<&str> = report.lines().rev().take(12).collect();
        eprintln!(
            "schemathesis as {who} (run {run}): {}",
            summary.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
        if succeeded {
            return;
        }
        let tool_crash_only = report.contains(" ERRORS ") && !report.contains(" FAILURES ");
        assert!(
            tool_crash_only && run < 3,
            "schemathesis as {who} found failures:\n{report}"
        );
    }
}

/// One schemathesis run: whether it passed, and its report.
async fn fuzz_once(stack: &Stack, bearer: &str) -> (bool, String) {
    let st = std::env::var("SCHEMATHESIS").expect(
        "SCHEMATHESIS is not set: run the suite with scripts/test, which installs schemathesis",
    );
    let examples = scaled(50, 500).to_string();
    let run = tokio::process::Command::new(st)
        .args([
            "run",
            &stack.url("/openapi.json"),
            "--url",
            &stack.gateway.url(),
            "--checks",
            CHECKS,
            "--max-examples",
            &examples,
            "--workers",
            "2",
            "--request-timeout",
            "30",
            "--phases",
            "examples,coverage,fuzzing",
            "--suppress-health-check",
            "all",
            "--no-color",
            "-H",
            &format!("Authorization: Bearer {bearer}"),
        ])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(1500), run)
        .await
        .expect("schemathesis finishes")
        .expect("run schemathesis");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rest_route_survives_schema_fuzzing_with_admin_and_customer_keys() {
    // Stripe configured (its API faked), so the payment routes answer what a caller sent (a forged
    // signature is 400, a top-up 201) rather than 503.
    let stripe = tests::fake_stripe::FakeStripe::start().await;
    let billing = Billing::start(
        Backend::Sqlite,
        &[
            "--stripe-webhook-secret",
            "whsec_fuzzing_0123456789",
            "--stripe-secret-key",
            "sk_test_fuzzing_0123456789",
            "--stripe-api-base",
            &stripe.api_base,
        ],
    )
    .await;
    // The fuzzer sends many requests without a valid key on purpose: no throttling for it.
    let stack = Stack::start_on(billing, &[("GATEWAY_AUTH_FAILURE_BURST", "1000000")]).await;
    let (id, key) = stack.create_key("fuzzed", "standard").await;
    stack.add_credits(&id, json!(1000)).await;

    fuzz(&stack, "admin", &stack.billing.admin_key).await;
    fuzz(&stack, "customer", &key).await;

    assert_ledger_invariants(&stack.billing.database).await;
}
