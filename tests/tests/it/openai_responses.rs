//! OpenAI's Responses API (QUICK_START.md §6) through the official OpenAI Python SDK, unchanged client code
//! against `base_url = <gateway>/v1`: `responses.create` non-streamed and streamed and `responses.stream`,
//! with a function tool and its output sent back; usage and exact costs; credit running out mid-stream ends
//! the stream with `response.incomplete` (`credit_exhausted`); errors in OpenAI's shape (401; no credit as
//! OpenAI's 429 `insufficient_quota`, never retried; 404; 429 with `Retry-After`).

use rust_decimal::Decimal;
use serde_json::{Value, json};
use tests::docs_harness::run_bash;
use tests::in_process::Stack;
use tests::{Backend, assert_ledger_invariants, backend_tests, default_cost};

backend_tests!(
    the_official_openai_sdk_speaks_the_responses_api,
    credit_running_out_ends_a_responses_stream_as_incomplete,
);

const SDK_SCRIPT: &str = r#"
import json, os, openai
base, key, broke = os.environ["BASE_URL"], os.environ["KEY"], os.environ["BROKE_KEY"]
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
tools = [{"type": "function", "name": "get_weather", "description": "Weather of a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]

raw = client.responses.with_raw_response.create(model="mock-usage-20-30", instructions="Be brief.", input="Hello")
text = raw.parse()
tool = client.responses.create(model="mock", input="What is the weather in Paris?", tools=tools)
call = [item for item in tool.output if item.type == "function_call"][0]
follow = client.responses.create(model="mock", input=[
    {"role": "user", "content": "What is the weather in Paris?"},
    {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
    {"type": "function_call_output", "call_id": call.call_id, "output": "18C and sunny"}])
events, completed = [], None
for event in client.responses.create(model="mock", input="What is the weather in Paris?", tools=tools, stream=True):
    events.append(event.type)
    if event.type == "response.completed":
        completed = event.response
streamed_text = ""
with client.responses.stream(model="mock-tokens-40", input="Go", max_output_tokens=100) as stream:
    for event in stream:
        if event.type == "response.output_text.delta":
            streamed_text += event.delta
    final = stream.get_final_response()

errors = {}
try:
    openai.OpenAI(base_url=base, api_key="tb_prod_wrong", max_retries=0).responses.create(model="mock", input="x")
except openai.AuthenticationError as error:
    errors["401"] = error.status_code
try:
    openai.OpenAI(base_url=base, api_key=broke, max_retries=0).responses.create(model="mock", input="x")
except openai.RateLimitError as error:
    errors["no_credit"] = [error.status_code, error.type, error.code,
                           error.response.headers.get("x-should-retry"), error.response.headers.get("retry-after")]
try:
    client.responses.create(model="mock-fail-404", input="x")
except openai.NotFoundError as error:
    errors["404"] = error.status_code
try:
    client.responses.create(model="mock-fail-429", input="x")
except openai.RateLimitError as error:
    errors["429"] = error.response.headers.get("retry-after")
try:
    client.responses.create(model="mock", input="x", previous_response_id="resp_1")
except openai.BadRequestError as error:
    errors["400"] = error.message

print(json.dumps({
    "text": text.output_text, "text_status": text.status, "text_usage": [text.usage.input_tokens, text.usage.output_tokens],
    "text_cost": raw.headers.get("x-billing-cost"),
    "tool_name": call.name, "tool_arguments": call.arguments, "follow_status": follow.status,
    "events": events, "streamed_call": [item.arguments for item in completed.output if item.type == "function_call"],
    "streamed_text": streamed_text, "final_text": final.output_text, "final_usage": final.usage.output_tokens,
    "final_status": final.status, "errors": errors,
}))
"#;

async fn the_official_openai_sdk_speaks_the_responses_api(backend: Backend) {
    let stack = Stack::start(backend).await;
    let key = stack.funded_key("responses", "50").await;
    let (_, broke) = stack.create_key("no credit", "standard").await;
    let dir = tempfile::tempdir().unwrap();
    let script = format!("python3 - <<'PY'\n{SDK_SCRIPT}\nPY");
    let base_url = stack.url("/v1");
    let output = run_bash(
        &script,
        dir.path(),
        &[
            ("BASE_URL", base_url.as_str()),
            ("KEY", key.as_str()),
            ("BROKE_KEY", broke.as_str()),
        ],
    )
    .await;
    output.assert_success("the OpenAI SDK Responses script");
    let result: Value = serde_json::from_str(output.stdout.trim()).unwrap();
    assert!(!result["text"].as_str().unwrap().is_empty());
    assert_eq!(result["text_status"], "completed");
    assert_eq!(result["text_usage"], json!([20, 30]));
    assert_eq!(
        result["text_cost"]
            .as_str()
            .unwrap()
            .parse::<Decimal>()
            .unwrap(),
        default_cost(20, 30)
    );
    assert_eq!(result["tool_name"], "get_weather");
    let arguments: Value =
        serde_json::from_str(result["tool_arguments"].as_str().unwrap()).unwrap();
    assert!(arguments["city"].is_string(), "{result}");
    assert_eq!(result["follow_status"], "completed");
    let events: Vec<&str> = result["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event.as_str().unwrap())
        .collect();
    assert_eq!(events.first(), Some(&"response.created"));
    assert_eq!(events.last(), Some(&"response.completed"));
    assert!(
        events.contains(&"response.function_call_arguments.delta"),
        "{events:?}"
    );
    assert!(events.contains(&"response.output_item.done"));
    assert_eq!(result["streamed_call"][0], result["tool_arguments"]);
    assert_eq!(result["streamed_text"], result["final_text"]);
    assert_eq!(result["final_usage"], 40);
    assert_eq!(result["final_status"], "completed");
    let errors = &result["errors"];
    assert_eq!(errors["401"], 401);
    // OpenAI's own answer for an account without credit, on which Codex stops at once (QUICK_START.md §6).
    assert_eq!(
        errors["no_credit"],
        json!([
            429,
            "insufficient_quota",
            "insufficient_credits",
            "false",
            null
        ])
    );
    assert_eq!(errors["404"], 404);
    assert!(errors["429"].is_string(), "{errors}");
    assert!(
        errors["400"]
            .as_str()
            .unwrap()
            .contains("previous_response_id")
    );

    let usage = stack.get("/billing/usage?limit=100", &key).await;
    let records = usage.json["records"].as_array().unwrap();
    assert!(
        records
            .iter()
            .all(|record| record["endpoint"] == "/v1/responses"),
        "{}",
        usage.text
    );
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn credit_running_out_ends_a_responses_stream_as_incomplete(backend: Backend) {
    let stack = Stack::start(backend).await;
    let key = stack.funded_key("responses", "0.05").await;
    let answer = stack
        .post(
            "/v1/responses",
            &key,
            json!({"model": "mock-tokens-3000", "max_output_tokens": 4000, "stream": true,
                   "input": "A long story, please"}),
        )
        .await;
    assert_eq!(answer.status, reqwest::StatusCode::OK, "{}", answer.text);
    let events = answer.events();
    let last = events.last().unwrap();
    assert_eq!(
        last.event.as_deref(),
        Some("response.incomplete"),
        "{}",
        answer.text
    );
    let response = &last.json()["response"];
    assert_eq!(response["status"], "incomplete");
    assert_eq!(response["incomplete_details"]["reason"], "credit_exhausted");
    assert_eq!(response["billing"]["cut_off"], "credit_exhausted");
    let output = response["usage"]["output_tokens"].as_u64().unwrap();
    assert!(output > 0 && output < 3000, "{response}");
    let sequence: Vec<u64> = events
        .iter()
        .map(|event| event.json()["sequence_number"].as_u64().unwrap())
        .collect();
    assert!(sequence.windows(2).all(|pair| pair[1] == pair[0] + 1));
    let account = stack.get("/billing/account", &key).await;
    assert!(account.json["creditsBalance"].as_f64().unwrap() >= 0.0);
    assert_ledger_invariants(&stack.billing.database).await;
}

fn assert_openai_refusal(answer: &tests::Answer, status: u16, code: &str) {
    answer.assert_final(status);
    assert_eq!(answer.json["error"]["code"], code, "{}", answer.text);
}

/// Codex's tools (QUICK_START.md §6): a namespace's function is called back under its namespace, a custom
/// tool as a `custom_tool_call`, streamed and not; hosted tools are dropped and named; its WebSocket attempt
/// is refused with 426; refusals under `/v1` are OpenAI's shape and final.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_tools_are_served_and_refusals_are_final() {
    let stack = Stack::start(Backend::Sqlite).await;
    let key = stack.funded_key("codex", "10").await;
    let tools = json!([
        {"type": "function", "name": "exec_command", "parameters": {"type": "object",
            "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}},
        {"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents", "tools": [
            {"type": "function", "name": "close_agent", "parameters": {"type": "object",
                "properties": {"target": {"type": "string"}}, "required": ["target"]}}]},
        {"type": "custom", "name": "apply_patch", "description": "Edit files.",
            "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch hunk+ end_patch"}},
        {"type": "web_search", "external_web_access": false},
    ]);
    let cases = [
        (
            "Call close_agent on `agent-7`",
            "function_call",
            "close_agent",
        ),
        (
            "Use apply_patch: `*** Begin Patch\n*** End Patch\n`",
            "custom_tool_call",
            "apply_patch",
        ),
    ];
    for stream in [false, true] {
        for (prompt, item_type, name) in cases {
            let body = json!({"model": "gpt-5.5", "stream": stream, "store": false, "tools": tools,
                "tool_choice": "auto", "include": ["reasoning.encrypted_content"], "prompt_cache_key": "k",
                "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]}]});
            let answer = stack.post("/v1/responses", &key, body).await;
            assert_eq!(answer.status, reqwest::StatusCode::OK, "{}", answer.text);
            assert_eq!(answer.header("x-dropped-tools"), Some("web_search"));
            let response = if stream {
                let events = answer.events();
                let done: Vec<Value> = events
                    .iter()
                    .filter(|event| event.event.as_deref() == Some("response.output_item.done"))
                    .map(|event| event.json()["item"].clone())
                    .collect();
                assert_eq!(done.len(), 1, "{}", answer.text);
                if item_type == "custom_tool_call" {
                    let input: Vec<Value> = events
                        .iter()
                        .filter(|event| {
                            event.event.as_deref() == Some("response.custom_tool_call_input.done")
                        })
                        .map(|event| event.json()["input"].clone())
                        .collect();
                    assert_eq!(
                        input,
                        [json!("*** Begin Patch\n*** End Patch\n")],
                        "{}",
                        answer.text
                    );
                }
                events.last().unwrap().json()["response"].clone()
            } else {
                answer.json.clone()
            };
            let item = &response["output"][0];
            assert_eq!(item["type"], item_type, "{response}");
            assert_eq!(item["name"], name, "{response}");
            match item_type {
                "function_call" => {
                    assert_eq!(item["namespace"], "multi_agent_v1", "{response}");
                    assert_eq!(item["arguments"], "{\"target\":\"agent-7\"}", "{response}");
                }
                _ => assert_eq!(
                    item["input"], "*** Begin Patch\n*** End Patch\n",
                    "{response}"
                ),
            }
        }
    }
    let upstream = stack.last_upstream_request().await;
    let names: Vec<&str> = upstream["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["exec_command", "multi_agent_v1__close_agent", "apply_patch"]
    );

    // Codex's WebSocket attempt: 426, on which it falls back to HTTP at once.
    let websocket = stack
        .http
        .get(stack.url("/v1/responses"))
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_openai_refusal(
        &tests::gateway_answer(websocket).await,
        426,
        "websocket_not_supported",
    );

    // A tool_choice that needs a dropped hosted tool cannot be honoured.
    let hosted = stack
        .post("/v1/responses", &key, json!({"model": "m", "input": "x", "tools": tools, "tool_choice": {"type": "web_search"}}))
        .await;
    assert_openai_refusal(&hosted, 400, "invalid_request");
    let unknown = stack
        .post("/v1/responses/resp_1/cancel", &key, json!({}))
        .await;
    assert_openai_refusal(&unknown, 404, "route_not_found");
    assert_eq!(unknown.json["error"]["type"], "invalid_request_error");
    let (_, broke) = stack.create_key("broke", "standard").await;
    let chat = stack
        .post(
            "/v1/chat/completions",
            &broke,
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_openai_refusal(&chat, 402, "insufficient_credits");
    let responses = stack
        .post("/v1/responses", &broke, json!({"model": "m", "input": "x"}))
        .await;
    assert_openai_refusal(&responses, 429, "insufficient_credits");
    assert_eq!(responses.json["error"]["type"], "insufficient_quota");
    assert_eq!(responses.header("retry-after"), None);
    let unauthenticated = stack
        .post(
            "/v1/responses",
            "tb_prod_wrong",
            json!({"model": "m", "input": "x"}),
        )
        .await;
    assert_openai_refusal(&unauthenticated, 401, "invalid_api_key");
    assert_ledger_invariants(&stack.billing.database).await;
}
