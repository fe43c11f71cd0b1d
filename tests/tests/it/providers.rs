//! Several providers behind one gateway (PROVIDERS.md): executor-svc reads `PROVIDERS_FILE`, each route
//! reaches the provider it names (under its `upstream_model` when it has one), a provider that answers 500
//! or 429 or cannot be reached before its first chunk hands the call to the route's next provider, and
//! nothing falls back once a chunk reached the client. The usage record names the provider that served and
//! the providers asked; each call is charged once; the ledger audit holds. Two mock models, a provider that
//! answers 500, one that answers 429 and a dead port stand in for the upstreams.

use rust_decimal::Decimal;
use serde_json::{Value, json};
use tests::failing_provider::{FailingProvider, dead_port};
use tests::{Backend, Billing, MockModel, Stack, assert_ledger_invariants, default_cost};

/// The file of this test, as an operator would write it (secrets by variable name only).
fn providers_file(a: &MockModel, b: &MockModel, broken: &str, limited: &str, dead: &str) -> String {
    format!(
        r#"
[[providers]]
name = "mock-a"
kind = "openai"
base_url = "{a}"
api_key_env = "MOCK_A_API_KEY"
timeout_secs = 10

[[providers]]
name = "mock-b"
kind = "openai"
base_url = "{b}"
max_concurrent = 8
headers = {{ "x-team" = "billing" }}

[[providers]]
name = "broken"
kind = "openai"
base_url = "{broken}"

[[providers]]
name = "limited"
kind = "openai"
base_url = "{limited}"

[[providers]]
name = "dead"
kind = "openai"
base_url = "{dead}"

[[routes]]
model = "beta"
providers = ["mock-b"]
upstream_model = "mock-tokens-5"

[[routes]]
model = "fallback-500"
providers = ["broken", "mock-b"]

[[routes]]
model = "fallback-429"
providers = ["limited", "mock-a"]

[[routes]]
model = "fallback-dead"
providers = ["dead", "mock-b"]

[[routes]]
model = "all-down"
providers = ["broken", "dead"]

[[routes]]
model = "midstream-*"
providers = ["mock-a", "mock-b"]

[[routes]]
model = "gpt-*"
providers = ["mock-a"]
"#,
        a = a.base_url(),
        b = b.base_url(),
    )
}

async fn chat(stack: &Stack, key: &str, model: &str, stream: bool) -> tests::Answer {
    stack
        .post(
            "/v1/chat/completions",
            key,
            json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "Hello"}]}),
        )
        .await
}

async fn last_request_model(mock: &MockModel, http: &reqwest::Client) -> Value {
    let recorded: Value = http
        .get(format!("{}/requests/last", mock.process.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    recorded["body"]["model"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_reach_their_providers_and_fall_back_before_the_first_chunk() {
    let a = MockModel::start().await;
    let b = MockModel::start().await;
    let broken = FailingProvider::start(500).await;
    let limited = FailingProvider::start(429).await;
    let dead = dead_port().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("providers.toml");
    std::fs::write(
        &path,
        providers_file(&a, &b, &broken.base_url, &limited.base_url, &dead),
    )
    .unwrap();
    let path = path.display().to_string();
    let billing = Billing::start(Backend::Sqlite, &[]).await;
    let stack = Stack::start_with(
        billing,
        &[
            ("PROVIDERS_FILE", path.as_str()),
            ("MOCK_A_API_KEY", "sk-mock-a"),
        ],
        &[],
    )
    .await;
    let key = stack.funded_key("providers", "10").await;

    // Each route reaches the provider it names.
    let routed = chat(&stack, &key, "gpt-4o-mini", false).await;
    assert_eq!(routed.status, reqwest::StatusCode::OK, "{}", routed.text);
    assert_eq!((a.requests().await, b.requests().await), (1, 0));
    let renamed = chat(&stack, &key, "beta", false).await;
    assert_eq!(renamed.status, reqwest::StatusCode::OK, "{}", renamed.text);
    assert_eq!(last_request_model(&b, &stack.http).await, "mock-tokens-5");
    assert_eq!(
        renamed.json["usage"]["completion_tokens"], 5,
        "{}",
        renamed.text
    );
    assert_eq!((a.requests().await, b.requests().await), (1, 1));

    // A provider failing before its first chunk hands the call on, streamed or not.
    for (model, stream) in [
        ("fallback-500", false),
        ("fallback-429", true),
        ("fallback-dead", false),
    ] {
        let answer = chat(&stack, &key, model, stream).await;
        assert_eq!(
            answer.status,
            reqwest::StatusCode::OK,
            "{model}: {}",
            answer.text
        );
    }
    assert_eq!((broken.requests(), limited.requests()), (1, 1));
    assert_eq!((a.requests().await, b.requests().await), (2, 3));

    // Once a chunk reached the client, an error ends the call there: the next provider is never asked.
    let midstream = chat(&stack, &key, "midstream-streamerror-3", true).await;
    assert_eq!(
        midstream.status,
        reqwest::StatusCode::OK,
        "{}",
        midstream.text
    );
    assert!(midstream.text.contains("\"error\""), "{}", midstream.text);
    assert_eq!((a.requests().await, b.requests().await), (3, 3));

    // A model no route serves.
    let unrouted = chat(&stack, &key, "claude-sonnet-4-5", false).await;
    assert_eq!(
        unrouted.status,
        reqwest::StatusCode::NOT_FOUND,
        "{}",
        unrouted.text
    );
    assert!(
        unrouted.text.contains("claude-sonnet-4-5"),
        "{}",
        unrouted.text
    );

    // One record per call, each charged once, naming who served and how many were asked.
    let usage = stack.get("/billing/usage", &key).await;
    let mut records = usage.json["records"].as_array().unwrap().clone();
    records.reverse();
    let served: Vec<(&str, &str, u64)> = records
        .iter()
        .map(|record| {
            (
                record["model"].as_str().unwrap(),
                record["provider"].as_str().unwrap(),
                record["attempts"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        served,
        [
            ("gpt-4o-mini", "mock-a", 1),
            ("beta", "mock-b", 1),
            ("fallback-500", "mock-b", 2),
            ("fallback-429", "mock-a", 2),
            ("fallback-dead", "mock-b", 2),
            ("midstream-streamerror-3", "mock-a", 1),
        ]
    );
    let mut spent = Decimal::ZERO;
    for record in &records {
        let cost: Decimal = record["totalCost"].to_string().parse().unwrap();
        let (input, output) = (
            record["inputTokens"].as_u64().unwrap(),
            record["outputTokens"].as_u64().unwrap(),
        );
        assert_eq!(cost, default_cost(input, output), "{record}");
        spent += cost;
    }
    let account = stack.get("/billing/account", &key).await;
    let balance: Decimal = account.json["creditsBalance"].to_string().parse().unwrap();
    assert_eq!(balance, Decimal::from(10) - spent);
    assert_eq!(account.json["heldCredits"], 0);

    // The model list: each exact route, and the glob's models from its provider's own list.
    let models = stack.get("/v1/models", &key).await;
    let ids: Vec<&str> = models.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| model["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "beta",
            "fallback-500",
            "fallback-429",
            "fallback-dead",
            "all-down",
            "gpt-4o-mini"
        ],
        "{}",
        models.text
    );

    // A route all of whose providers are down: the call fails with the last provider's error and costs
    // nothing. After three such calls both count as down, `/readyz` names the route, and `/metrics` shows
    // each provider's attempts, failures and fallbacks.
    assert_eq!(
        stack.get("/readyz", &key).await.status,
        reqwest::StatusCode::OK
    );
    for _ in 0..3 {
        let down = chat(&stack, &key, "all-down", false).await;
        assert!(down.status.is_server_error(), "{}", down.text);
    }
    let ready = stack.get("/readyz", &key).await;
    assert_eq!(
        ready.status,
        reqwest::StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.text
    );
    assert_eq!(
        ready.json["details"]["unservedRoutes"],
        json!(["all-down"]),
        "{}",
        ready.text
    );
    let metrics = stack.get("/metrics", &key).await;
    for line in [
        r#"executor_provider_up{provider="broken",kind="openai"} 0"#,
        r#"executor_provider_up{provider="mock-b",kind="openai"} 1"#,
        r#"executor_provider_attempts_total{provider="broken",kind="openai"} 4"#,
        r#"executor_provider_fallbacks_total{provider="broken",kind="openai"} 4"#,
        r#"executor_provider_failures_total{provider="dead",kind="openai"} 4"#,
        // Last in "all-down", it hands nothing on there.
        r#"executor_provider_fallbacks_total{provider="dead",kind="openai"} 1"#,
        r#"executor_provider_fallbacks_total{provider="mock-a",kind="openai"} 0"#,
    ] {
        assert!(metrics.text.contains(line), "{line}\n{}", metrics.text);
    }
    let after: Decimal = stack.get("/billing/account", &key).await.json["creditsBalance"]
        .to_string()
        .parse()
        .unwrap();
    assert_eq!(after, balance, "a call no provider served costs nothing");
    assert_ledger_invariants(&stack.billing.database).await;
}

/// Fallback reaches across kinds: a `/v1/messages` call whose first provider fails goes to an Anthropic
/// provider natively, or to an OpenAI-compatible one translated, whichever is next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_fall_back_across_provider_kinds() {
    let a = MockModel::start().await;
    let b = MockModel::start().await;
    let broken = FailingProvider::start(500).await;
    let dead = dead_port().await;
    let file = format!(
        r#"
[[providers]]
name = "broken"
kind = "openai"
base_url = "{broken}"

[[providers]]
name = "claude-a"
kind = "anthropic"
base_url = "{a}"

[[providers]]
name = "dead-claude"
kind = "anthropic"
base_url = "{dead}"

[[providers]]
name = "mock-b"
kind = "openai"
base_url = "{b}"

[[routes]]
model = "claude-fallback"
providers = ["broken", "claude-a"]

[[routes]]
model = "claude-mixed"
providers = ["dead-claude", "mock-b"]
"#,
        broken = broken.base_url,
        a = a.base_url(),
        b = b.base_url(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("providers.toml");
    std::fs::write(&path, file).unwrap();
    let path = path.display().to_string();
    let billing = Billing::start(Backend::Sqlite, &[]).await;
    let stack = Stack::start_with(billing, &[("PROVIDERS_FILE", path.as_str())], &[]).await;
    let key = stack.funded_key("kinds", "10").await;
    let ask = |model: &str, stream: bool| {
        json!({"model": model, "max_tokens": 2000, "stream": stream,
            "messages": [{"role": "user", "content": "Hello"}],
            "thinking": {"type": "enabled", "budget_tokens": 1024}})
    };

    // broken (500) → claude-a, natively: the thinking block comes back.
    let native = stack
        .post("/v1/messages", &key, ask("claude-fallback", false))
        .await;
    assert_eq!(native.status, reqwest::StatusCode::OK, "{}", native.text);
    assert_eq!(
        native.json["content"][0]["type"], "thinking",
        "{}",
        native.text
    );
    assert_eq!(broken.requests(), 1);
    // dead-claude (no answer) → mock-b, translated: thinking became reasoning_effort.
    let translated = stack
        .post("/v1/messages", &key, ask("claude-mixed", true))
        .await;
    assert_eq!(
        translated.status,
        reqwest::StatusCode::OK,
        "{}",
        translated.text
    );
    let events = translated.events();
    assert_eq!(
        events.last().unwrap().event.as_deref(),
        Some("message_stop")
    );
    assert!(last_request_model(&b, &stack.http).await == "claude-mixed");
    assert_eq!((a.requests().await, b.requests().await), (1, 1));

    let usage = stack.get("/billing/usage", &key).await;
    let mut records = usage.json["records"].as_array().unwrap().clone();
    records.reverse();
    let served: Vec<(&str, u64)> = records
        .iter()
        .map(|record| {
            (
                record["provider"].as_str().unwrap(),
                record["attempts"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(served, [("claude-a", 2), ("mock-b", 2)]);
    for record in &records {
        let cost: Decimal = record["totalCost"].to_string().parse().unwrap();
        let (input, output) = (
            record["inputTokens"].as_u64().unwrap(),
            record["outputTokens"].as_u64().unwrap(),
        );
        assert_eq!(cost, default_cost(input, output), "{record}");
    }
    assert_ledger_invariants(&stack.billing.database).await;
}
