//! Anthropic's Messages API (QUICK_START.md §6) through the official Anthropic Python SDK, unchanged client
//! code against `base_url = <gateway>`: text, a tool call and its result, streams with `messages.stream`,
//! usage and exact costs; credit running out mid-stream ends the stream cleanly with `stop_reason:
//! max_tokens`; errors come in Anthropic's shape (401, 402, 403 for a model the key's policy does not allow,
//! 404, 429 with `Retry-After`). The SDK script runs twice: translated to an OpenAI-compatible provider, and
//! passed through to a native Anthropic one.

use rust_decimal::Decimal;
use serde_json::{Value, json};
use tests::docs_harness::run_bash;
use tests::in_process::Stack;
use tests::{Backend, Service, StackOf, assert_ledger_invariants, backend_tests, default_cost};

backend_tests!(
    the_official_anthropic_sdk_works_unchanged,
    credit_running_out_ends_a_message_stream_cleanly,
);

const SDK_SCRIPT: &str = r#"
import json, os, anthropic
base, key, broke = os.environ["BASE_URL"], os.environ["KEY"], os.environ["BROKE_KEY"]
client = anthropic.Anthropic(base_url=base, api_key=key, max_retries=0)
tools = [{"name": "get_weather", "description": "Weather of a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
ask = [{"role": "user", "content": "What is the weather in Paris?"}]

raw = client.messages.with_raw_response.create(model="mock-usage-20-30", max_tokens=100, system="Be brief.",
    messages=[{"role": "user", "content": "Hello"}])
text = raw.parse()
tool = client.messages.create(model="mock", max_tokens=200, tools=tools, messages=ask)
use = [block for block in tool.content if block.type == "tool_use"][0]
follow = client.messages.create(model="mock", max_tokens=100, messages=ask + [
    {"role": "assistant", "content": [block.model_dump() for block in tool.content]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18C and sunny"}]}])
with client.messages.stream(model="mock", max_tokens=200, tools=tools, messages=ask) as stream:
    streamed_tool = stream.get_final_message()
with client.messages.stream(model="mock-tokens-40", max_tokens=100, messages=[{"role": "user", "content": "Go"}]) as stream:
    streamed_text = "".join(stream.text_stream)
    streamed = stream.get_final_message()

errors = {}
try:
    anthropic.Anthropic(base_url=base, api_key="tb_prod_wrong", max_retries=0).messages.create(
        model="mock", max_tokens=10, messages=ask)
except anthropic.AuthenticationError as error:
    errors["401"] = error.body["error"]["type"]
try:
    anthropic.Anthropic(base_url=base, api_key=broke, max_retries=0).messages.create(
        model="mock", max_tokens=10, messages=ask)
except anthropic.APIStatusError as error:
    errors["402"] = [error.status_code, error.body["error"]["type"], error.body["error"]["message"]]
try:
    anthropic.Anthropic(base_url=base, api_key=os.environ["LIMITED_KEY"], max_retries=0).messages.create(
        model="mock-usage-1-1", max_tokens=10, messages=ask)
except anthropic.PermissionDeniedError as error:
    errors["403"] = error.body["error"]["type"]
try:
    client.messages.create(model="mock-fail-404", max_tokens=10, messages=ask)
except anthropic.NotFoundError as error:
    errors["404"] = error.body["error"]["type"]
try:
    client.messages.create(model="mock-fail-429", max_tokens=10, messages=ask)
except anthropic.RateLimitError as error:
    errors["429"] = [error.body["error"]["type"], error.response.headers.get("retry-after")]

print(json.dumps({
    "text": text.content[0].text, "text_type": text.type, "text_stop": text.stop_reason,
    "text_usage": [text.usage.input_tokens, text.usage.output_tokens], "text_cost": raw.headers.get("x-billing-cost"),
    "tool_stop": tool.stop_reason, "tool_name": use.name, "tool_input": use.input,
    "follow_stop": follow.stop_reason, "follow_text": follow.content[0].text if follow.content else None,
    "streamed_tool": [block.type for block in streamed_tool.content], "streamed_tool_stop": streamed_tool.stop_reason,
    "streamed_tool_input": [block.input for block in streamed_tool.content if block.type == "tool_use"],
    "streamed_text": streamed_text, "streamed_usage": [streamed.usage.input_tokens, streamed.usage.output_tokens],
    "streamed_stop": streamed.stop_reason, "errors": errors,
}))
"#;

async fn the_official_anthropic_sdk_works_unchanged(backend: Backend) {
    the_sdk_script_passes(Stack::start(backend).await).await;
}

/// The same script against a native Anthropic provider (PROVIDERS.md): the requests pass through, the
/// answers come back as the provider sent them, and the platform's refusals stay the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_anthropic_sdk_works_through_a_native_provider() {
    // A process stack: the native provider's key is read from executor-svc's environment.
    let stack = tests::Stack::start_anthropic(Backend::Sqlite).await;
    the_sdk_script_passes(stack).await;
}

async fn the_sdk_script_passes<S: Service>(stack: StackOf<S>) {
    let key = stack.funded_key("anthropic", "50").await;
    let (_, broke) = stack.create_key("no credit", "standard").await;
    // A key whose policy allows only the model `mock` (API_KEY_MANAGEMENT.md, "Keys").
    let limited = stack
        .post(
            "/admin/keys",
            &stack.billing.admin_key,
            json!({"name": "mock only", "keyType": "standard", "policy": {"allowedModels": ["mock"]}}),
        )
        .await;
    assert_eq!(
        limited.status,
        reqwest::StatusCode::CREATED,
        "{}",
        limited.text
    );
    let limited = limited.json["key"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let script = format!("python3 - <<'PY'\n{SDK_SCRIPT}\nPY");
    let base_url = stack.url("");
    let output = run_bash(
        &script,
        dir.path(),
        &[
            ("BASE_URL", base_url.as_str()),
            ("KEY", key.as_str()),
            ("BROKE_KEY", broke.as_str()),
            ("LIMITED_KEY", limited.as_str()),
        ],
    )
    .await;
    output.assert_success("the Anthropic SDK script");
    let result: Value = serde_json::from_str(output.stdout.trim()).unwrap();
    assert_eq!(result["text_type"], "message");
    assert_eq!(result["text_stop"], "end_turn");
    assert_eq!(result["text_usage"], json!([20, 30]));
    assert_eq!(
        result["text_cost"]
            .as_str()
            .unwrap()
            .parse::<Decimal>()
            .unwrap(),
        default_cost(20, 30)
    );
    assert!(!result["text"].as_str().unwrap().is_empty());
    assert_eq!(result["tool_stop"], "tool_use");
    assert_eq!(result["tool_name"], "get_weather");
    assert!(result["tool_input"]["city"].is_string(), "{result}");
    assert!(result["follow_stop"].is_string());
    assert_eq!(
        result["streamed_tool"].as_array().unwrap().last().unwrap(),
        "tool_use"
    );
    assert_eq!(result["streamed_tool_stop"], "tool_use");
    assert_eq!(result["streamed_tool_input"][0], result["tool_input"]);
    assert_eq!(result["streamed_usage"][1], 40);
    assert!(result["streamed_usage"][0].as_u64().unwrap() > 0);
    assert_eq!(result["streamed_stop"], "end_turn");
    assert!(!result["streamed_text"].as_str().unwrap().is_empty());
    let errors = &result["errors"];
    assert_eq!(errors["401"], "authentication_error");
    assert_eq!(errors["402"][0], 402);
    assert_eq!(errors["402"][1], "billing_error");
    assert!(
        errors["402"][2]
            .as_str()
            .unwrap()
            .contains("Insufficient Credits"),
        "{errors}"
    );
    assert_eq!(errors["403"], "permission_error");
    assert_eq!(errors["404"], "not_found_error");
    assert_eq!(errors["429"][0], "rate_limit_error");
    assert!(errors["429"][1].is_string(), "{errors}");

    // Usage records name their endpoint.
    let usage = stack.get("/billing/usage?limit=100", &key).await;
    let records = usage.json["records"].as_array().unwrap();
    assert!(
        records
            .iter()
            .all(|record| record["endpoint"] == "/v1/messages"),
        "{}",
        usage.text
    );
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn credit_running_out_ends_a_message_stream_cleanly(backend: Backend) {
    let stack = Stack::start(backend).await;
    let key = stack.funded_key("anthropic", "0.05").await;
    let answer = stack
        .http
        .post(stack.url("/v1/messages"))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .json(
            &json!({"model": "mock-tokens-3000", "max_tokens": 4000, "stream": true,
                      "messages": [{"role": "user", "content": "A long story, please"}]}),
        )
        .send()
        .await
        .unwrap();
    let answer = tests::gateway_answer(answer).await;
    assert_eq!(answer.status, reqwest::StatusCode::OK, "{}", answer.text);
    let events = answer.events();
    let names: Vec<&str> = events
        .iter()
        .map(|event| event.event.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"), "{names:?}");
    let delta = events
        .iter()
        .find(|event| event.event.as_deref() == Some("message_delta"))
        .unwrap()
        .json();
    assert_eq!(delta["delta"]["stop_reason"], "max_tokens");
    assert_eq!(delta["billing"]["cut_off"], "credit_exhausted");
    let output = delta["usage"]["output_tokens"].as_u64().unwrap();
    assert!(output > 0 && output < 3000, "{delta}");
    let account = stack.get("/billing/account", &key).await;
    assert!(account.json["creditsBalance"].as_f64().unwrap() >= 0.0);
    assert_ledger_invariants(&stack.billing.database).await;
}

/// Posts `body` to `path` the way Anthropic's SDKs do: the key in `x-api-key`, `anthropic-version` and an
/// `anthropic-beta` header.
async fn anthropic_post(stack: &Stack, path: &str, key: &str, body: &Value) -> tests::Answer {
    let response = stack
        .http
        .post(stack.url(path))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .header(
            "anthropic-beta",
            "context-management-2025-06-27,interleaved-thinking-2025-05-14",
        )
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    tests::gateway_answer(response).await
}

fn assert_anthropic_refusal(answer: &tests::Answer, status: u16, kind: &str) {
    answer.assert_final(status);
    assert_eq!(answer.json["type"], "error", "{}", answer.text);
    assert_eq!(answer.json["error"]["type"], kind, "{}", answer.text);
}

/// What Claude Code sends (QUICK_START.md §6) is accepted, mapped for a chat completions provider, streamed
/// and not; count_tokens counts what a call is then charged for, unbilled; every refusal under `/v1/messages`
/// is in Anthropic's shape and says not to retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_requests_are_mapped_and_refusals_are_final() {
    let billing = tests::in_process::Billing::start(Backend::Sqlite, &[]).await;
    let stack = Stack::start_on(
        billing,
        &[
            ("GATEWAY_AUTH_FAILURE_BURST", "3"),
            ("GATEWAY_AUTH_FAILURE_REFILL_PER_MIN", "1"),
        ],
    )
    .await;
    let key = stack.funded_key("claude code", "10").await;
    let mut request = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 2000,
        "system": [{"type": "text", "text": "You are a coding agent.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "What is the weather in Paris?", "cache_control": {"type": "ephemeral"}}]},
            {"role": "system", "content": "Answer briefly."},
        ],
        "tools": [
            {"name": "get_weather", "description": "Weather of a city", "cache_control": {"type": "ephemeral"},
             "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
        ],
        "thinking": {"type": "enabled", "budget_tokens": 20000},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "medium"},
        "metadata": {"user_id": "{\"device_id\":\"d\",\"session_id\":\"s\"}"},
    });
    for stream in [false, true] {
        request["stream"] = json!(stream);
        let answer = anthropic_post(&stack, "/v1/messages?beta=true", &key, &request).await;
        assert_eq!(answer.status, reqwest::StatusCode::OK, "{}", answer.text);
        assert_eq!(answer.header("x-dropped-tools"), Some("web_search"));
        let upstream = stack.last_upstream_request().await;
        assert_eq!(
            upstream["reasoning_effort"], "medium",
            "output_config wins over thinking"
        );
        for field in [
            "thinking",
            "context_management",
            "output_config",
            "system",
            "metadata",
        ] {
            assert!(
                upstream.get(field).is_none(),
                "{field} reached the provider: {upstream}"
            );
        }
        let roles: Vec<&str> = upstream["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|message| message["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["system", "user", "system"]);
        assert_eq!(upstream["tools"].as_array().unwrap().len(), 1, "{upstream}");
        assert!(
            !upstream.to_string().contains("cache_control"),
            "{upstream}"
        );
        let tool_use = if stream {
            let events = answer.events();
            let last = events
                .iter()
                .rev()
                .find(|event| event.event.as_deref() == Some("message_delta"))
                .unwrap();
            assert_eq!(
                last.json()["delta"]["stop_reason"],
                "tool_use",
                "{}",
                answer.text
            );
            events
                .iter()
                .find(|event| event.json()["content_block"]["type"] == "tool_use")
                .map(|event| event.json()["content_block"]["name"].clone())
        } else {
            assert_eq!(answer.json["stop_reason"], "tool_use", "{}", answer.text);
            Some(answer.json["content"][0]["name"].clone())
        };
        assert_eq!(tool_use, Some(json!("get_weather")), "{}", answer.text);
    }

    // count_tokens: the prompt tokens the next call is charged for, and nothing is billed for counting.
    let before = stack.get("/billing/account", &key).await.json;
    let mut counted_request = request.clone();
    counted_request
        .as_object_mut()
        .unwrap()
        .remove("max_tokens");
    counted_request.as_object_mut().unwrap().remove("stream");
    let counted = anthropic_post(&stack, "/v1/messages/count_tokens", &key, &counted_request).await;
    assert_eq!(counted.status, reqwest::StatusCode::OK, "{}", counted.text);
    let input_tokens = counted.json["input_tokens"].as_u64().unwrap();
    let after = stack.get("/billing/account", &key).await.json;
    assert_eq!(before["creditsBalance"], after["creditsBalance"]);
    let usage = stack.get("/billing/usage", &key).await.json;
    assert_eq!(
        usage["records"].as_array().unwrap().len(),
        2,
        "counting is not a call"
    );
    assert_eq!(usage["records"][0]["inputTokens"], input_tokens, "{usage}");

    // Refusals: Anthropic's shape under /v1/messages, final.
    let missing_key = stack
        .http
        .post(stack.url("/v1/messages/count_tokens"))
        .header("content-type", "application/json")
        .body(counted_request.to_string())
        .send()
        .await
        .unwrap();
    assert_anthropic_refusal(
        &tests::gateway_answer(missing_key).await,
        401,
        "authentication_error",
    );
    let unknown = anthropic_post(&stack, "/v1/messages/batches", &key, &json!({})).await;
    assert_anthropic_refusal(&unknown, 404, "not_found_error");
    let (_, broke) = stack.create_key("broke", "standard").await;
    request["stream"] = json!(false);
    let refused = anthropic_post(&stack, "/v1/messages", &broke, &request).await;
    assert_anthropic_refusal(&refused, 402, "billing_error");
    assert!(
        refused.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Credit"),
        "{}",
        refused.text
    );
    let malformed = anthropic_post(
        &stack,
        "/v1/messages",
        &key,
        &json!({"model": "m", "max_tokens": 5, "messages": "hi"}),
    )
    .await;
    assert_anthropic_refusal(&malformed, 400, "invalid_request_error");
    // The missing key above took one of the three failed attempts allowed.
    for _ in 0..2 {
        let guess = anthropic_post(&stack, "/v1/messages", "tb_prod_guess", &request).await;
        assert_anthropic_refusal(&guess, 401, "authentication_error");
    }
    // The failed-authentication limiter answers in Anthropic's shape too, and may be retried later.
    let throttled = anthropic_post(&stack, "/v1/messages", "tb_prod_guess", &request).await;
    assert_eq!(
        throttled.status,
        reqwest::StatusCode::TOO_MANY_REQUESTS,
        "{}",
        throttled.text
    );
    assert_eq!(
        throttled.json["error"]["type"], "rate_limit_error",
        "{}",
        throttled.text
    );
    assert!(throttled.header("retry-after").is_some());
    assert_eq!(throttled.header("x-should-retry"), None);
    assert_ledger_invariants(&stack.billing.database).await;
}
