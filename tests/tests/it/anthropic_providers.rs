//! A native Anthropic provider (`kind = "anthropic"`, PROVIDERS.md) behind the gateway, the mock model
//! speaking Anthropic's Messages API as the upstream:
//! - `/v1/messages` passes through unchanged: thinking, `cache_control`, `context_management`, unknown
//!   fields and the `anthropic-version` / `anthropic-beta` headers reach the provider as the client sent
//!   them; thinking blocks with their signatures and the cache usage come back; the whole prompt (cache
//!   reads and writes included) is charged; the stream carries the provider's events and the billing
//!   figures on `message_delta`; credit running out ends a native stream cleanly.
//! - `/v1/chat/completions` and `/v1/responses` are translated to Messages and back, streamed and not,
//!   with tools, and the official OpenAI SDK reads the answers.
//! - The ledger audit holds after each.

use rust_decimal::Decimal;
use serde_json::{Value, json};
use tests::docs_harness::run_bash;
use tests::{Backend, Stack, assert_ledger_invariants, default_cost};

/// Posts an Anthropic request as Anthropic's SDKs do (`x-api-key`, `anthropic-version`, a beta).
async fn messages(stack: &Stack, key: &str, body: &Value) -> tests::Answer {
    let response = stack
        .http
        .post(stack.url("/v1/messages?beta=true"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "context-management-2025-06-27")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    tests::gateway_answer(response).await
}

/// Every usage record of `key`, oldest first, each charged exactly at the default prices for its tokens.
async fn exact_records(stack: &Stack, key: &str) -> Vec<Value> {
    let usage = stack.get("/billing/usage?limit=100", key).await;
    let mut records = usage.json["records"].as_array().unwrap().clone();
    records.reverse();
    for record in &records {
        let cost: Decimal = record["totalCost"].to_string().parse().unwrap();
        let (input, output) = (
            record["inputTokens"].as_u64().unwrap(),
            record["outputTokens"].as_u64().unwrap(),
        );
        assert_eq!(cost, default_cost(input, output), "{record}");
        assert_eq!(record["provider"], "anthropic", "{record}");
    }
    records
}

fn claude_request(stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 2000,
        "stream": stream,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "say hello in five words", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
        ]}],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
        "metadata": {"user_id": "{\"device_id\":\"d-1\",\"session_id\":\"s-1\"}"},
        "temperature": 1,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_pass_through_to_an_anthropic_provider_unchanged() {
    let stack = Stack::start_anthropic(Backend::Sqlite).await;
    let key = stack.funded_key("native", "10").await;

    // Unary: the request reaches the provider as sent (but `stream`, which the platform controls), numbers
    // as written.
    let mut request = claude_request(false);
    request["top_p"] = serde_json::from_str("0.990").unwrap();
    let first = messages(&stack, &key, &request).await;
    assert_eq!(first.status, reqwest::StatusCode::OK, "{}", first.text);
    let upstream = stack.last_upstream_call().await;
    assert_eq!(upstream["path"], "/v1/messages");
    let mut expected = request.clone();
    expected["stream"] = json!(true);
    assert_eq!(upstream["body"], expected);
    assert!(
        upstream["body"].to_string().contains(r#""top_p":0.990"#),
        "{upstream}"
    );
    let headers = &upstream["headers"];
    assert_eq!(headers["anthropic-version"], "2023-06-01");
    assert_eq!(headers["anthropic-beta"], "context-management-2025-06-27");
    assert_eq!(
        headers["x-api-key"], "sk-ant-mock",
        "the provider's key, not the client's"
    );
    assert!(headers.get("authorization").is_none());
    assert!(first.header("x-dropped-tools").is_none());

    // The answer is the provider's: a signed thinking block, then text; the cache writes of the first call.
    let message = &first.json;
    assert_eq!(message["type"], "message");
    assert_eq!(message["content"][0]["type"], "thinking", "{message}");
    assert!(
        message["content"][0]["signature"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{message}"
    );
    assert_eq!(message["content"][1]["type"], "text");
    assert_eq!(message["stop_reason"], "end_turn");
    let usage = &message["usage"];
    assert!(
        usage["cache_creation_input_tokens"].as_u64().unwrap() > 0,
        "{usage}"
    );
    assert_eq!(usage["cache_read_input_tokens"], 0);
    assert!(
        usage["cache_creation"]["ephemeral_1h_input_tokens"]
            .as_u64()
            .unwrap()
            > 0,
        "{usage}"
    );
    let cost: Decimal = first.header("x-billing-cost").unwrap().parse().unwrap();

    // The same prompt again reads the cache; the whole prompt is charged either way.
    let second = messages(&stack, &key, &request).await;
    assert_eq!(second.status, reqwest::StatusCode::OK, "{}", second.text);
    let reads = second.json["usage"]["cache_read_input_tokens"]
        .as_u64()
        .unwrap();
    assert!(reads > 0, "{}", second.text);
    let whole_prompt = |usage: &Value| {
        [
            "input_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ]
        .iter()
        .map(|field| usage[field].as_u64().unwrap())
        .sum::<u64>()
    };
    assert_eq!(whole_prompt(&second.json["usage"]), whole_prompt(usage));

    // Streamed: the provider's events as it sent them, the billing figures on message_delta.
    let streamed = messages(&stack, &key, &claude_request(true)).await;
    assert_eq!(
        streamed.status,
        reqwest::StatusCode::OK,
        "{}",
        streamed.text
    );
    let events = streamed.events();
    let names: Vec<&str> = events
        .iter()
        .map(|event| event.event.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
    assert_eq!(
        &names[names.len() - 2..],
        ["message_delta", "message_stop"],
        "{names:?}"
    );
    let deltas: Vec<Value> = events
        .iter()
        .map(|event| event.json())
        .filter(|data| data["type"] == "content_block_delta")
        .collect();
    assert!(
        deltas
            .iter()
            .any(|data| data["delta"]["type"] == "thinking_delta"),
        "{}",
        streamed.text
    );
    assert!(
        deltas
            .iter()
            .any(|data| data["delta"]["type"] == "signature_delta"),
        "{}",
        streamed.text
    );
    assert!(
        deltas
            .iter()
            .any(|data| data["delta"]["type"] == "text_delta"),
        "{}",
        streamed.text
    );
    for event in &events {
        assert_eq!(
            event.json()["type"].as_str(),
            event.event.as_deref(),
            "each event is named by its type"
        );
    }
    let delta = events[events.len() - 2].json();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["billing"]["status"], "settled", "{delta}");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);

    // Each call is one record, charged for the whole prompt and the output (thinking included).
    let records = exact_records(&stack, &key).await;
    assert_eq!(records.len(), 3);
    assert_eq!(
        records[0]["inputTokens"].as_u64().unwrap(),
        whole_prompt(usage)
    );
    assert_eq!(records[0]["outputTokens"], usage["output_tokens"]);
    assert_eq!(
        cost,
        default_cost(
            whole_prompt(usage),
            usage["output_tokens"].as_u64().unwrap()
        )
    );
    assert!(
        records
            .iter()
            .all(|record| record["endpoint"] == "/v1/messages" && record["attempts"] == 1)
    );

    // Credit running out mid-stream ends the provider's stream cleanly: its open block closed, then
    // message_delta with max_tokens and the cut-off, then message_stop; exactly what was delivered is charged.
    let long = json!({"model": "claude-tokens-4000", "max_tokens": 8000, "stream": true,
        "messages": [{"role": "user", "content": "Write at length"}]});
    // Enough to open the call and pay a few hundred output tokens, not 4,000.
    let input_cost: Decimal = records[0]["inputCost"].to_string().parse().unwrap();
    let credit = input_cost + Decimal::new(2, 2);
    let (low_id, low) = stack.create_key("low", "standard").await;
    let funded = stack
        .add_credits(&low_id, serde_json::from_str(&credit.to_string()).unwrap())
        .await;
    assert!(funded.status.is_success(), "{}", funded.text);
    let cut = messages(&stack, &low, &long).await;
    assert_eq!(cut.status, reqwest::StatusCode::OK, "{}", cut.text);
    let events = cut.events();
    let names: Vec<&str> = events
        .iter()
        .map(|event| event.event.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(
        &names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"],
        "{names:?}"
    );
    let delta = events[events.len() - 2].json();
    assert_eq!(delta["delta"]["stop_reason"], "max_tokens", "{delta}");
    assert_eq!(delta["billing"]["cut_off"], "credit_exhausted", "{delta}");
    let account = stack.get("/billing/account", &low).await;
    assert_eq!(account.json["heldCredits"], 0, "{}", account.text);
    let cut_records = exact_records(&stack, &low).await;
    assert_eq!(cut_records.len(), 1);
    assert_eq!(
        cut_records[0]["status"], "stopped_by_credit",
        "{cut_records:?}"
    );

    // A long unary answer comes back whole (never cut at a first hold), and an error inside the provider's
    // stream ends the client's stream with that error.
    let long = json!({"model": "claude-tokens-2000", "max_tokens": 4000,
        "messages": [{"role": "user", "content": "Write at length"}]});
    let whole = messages(&stack, &key, &long).await;
    assert_eq!(whole.status, reqwest::StatusCode::OK, "{}", whole.text);
    assert_eq!(
        whole.json["usage"]["output_tokens"], 2000,
        "{}",
        whole.json["usage"]
    );
    assert_eq!(whole.json["stop_reason"], "end_turn");
    let failing = json!({"model": "claude-streamerror-5", "max_tokens": 200, "stream": true,
        "messages": [{"role": "user", "content": "Hello"}]});
    let broken = messages(&stack, &key, &failing).await;
    assert_eq!(broken.status, reqwest::StatusCode::OK, "{}", broken.text);
    let events = broken.events();
    assert!(
        events
            .iter()
            .any(|event| event.event.as_deref() == Some("content_block_delta"))
    );
    assert_eq!(
        events.last().unwrap().event.as_deref(),
        Some("error"),
        "{}",
        broken.text
    );
    assert_ledger_invariants(&stack.billing.database).await;
}

/// The OpenAI SDK against a model routed to an Anthropic provider: chat completions streamed and not, a
/// tool call and its result, and the Responses API, all translated to Messages and back.
const OPENAI_SDK_SCRIPT: &str = r#"
import json, os, openai
client = openai.OpenAI(base_url=os.environ["BASE_URL"] + "/v1", api_key=os.environ["KEY"], max_retries=0)
tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
ask = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is the weather in Paris?"}]
text = client.chat.completions.create(model="claude-usage-20-30", messages=[{"role": "user", "content": "Hello"}],
    max_completion_tokens=100, seed=7, user="u-1", stream_options=None)
tool = client.chat.completions.create(model="claude-sonnet-4-5", messages=ask, tools=tools, tool_choice="required")
call = tool.choices[0].message.tool_calls[0]
follow = client.chat.completions.create(model="claude-sonnet-4-5", tools=tools, messages=ask + [
    tool.choices[0].message.model_dump(exclude_none=True),
    {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"}])
chunks = list(client.chat.completions.create(model="claude-sonnet-4-5", messages=ask, tools=tools, stream=True,
    stream_options={"include_usage": True}))
streamed_args = "".join(c.choices[0].delta.tool_calls[0].function.arguments or ""
    for c in chunks if c.choices and c.choices[0].delta.tool_calls)
finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
usage = [c.usage for c in chunks if c.usage][0]
response = client.responses.create(model="claude-sonnet-4-5", input="What is the weather in Paris?",
    tools=[{"type": "function", "name": "get_weather", "parameters": tools[0]["function"]["parameters"]}])
calls = [item for item in response.output if item.type == "function_call"]
print(json.dumps({
    "text": text.choices[0].message.content, "text_usage": [text.usage.prompt_tokens, text.usage.completion_tokens],
    "text_finish": text.choices[0].finish_reason,
    "tool_finish": tool.choices[0].finish_reason, "tool_name": call.function.name,
    "tool_args": json.loads(call.function.arguments), "follow": follow.choices[0].message.content,
    "follow_finish": follow.choices[0].finish_reason,
    "streamed_args": json.loads(streamed_args), "streamed_finish": finish,
    "streamed_usage": [usage.prompt_tokens, usage.completion_tokens],
    "response_status": response.status, "response_call": [calls[0].name, json.loads(calls[0].arguments)] if calls else None,
}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_completions_and_responses_are_translated_to_an_anthropic_provider() {
    let stack = Stack::start_anthropic(Backend::Sqlite).await;
    let key = stack.funded_key("translated", "10").await;
    let dir = tempfile::tempdir().unwrap();
    let script = format!("python3 - <<'PY'\n{OPENAI_SDK_SCRIPT}\nPY");
    let base_url = stack.url("");
    let output = run_bash(
        &script,
        dir.path(),
        &[("BASE_URL", base_url.as_str()), ("KEY", key.as_str())],
    )
    .await;
    output.assert_success("the OpenAI SDK script");
    let result: Value = serde_json::from_str(output.stdout.trim()).unwrap();
    assert!(!result["text"].as_str().unwrap().is_empty(), "{result}");
    assert_eq!(result["text_usage"], json!([20, 30]));
    assert_eq!(result["text_finish"], "stop");
    assert_eq!(result["tool_finish"], "tool_calls");
    assert_eq!(result["tool_name"], "get_weather");
    assert!(result["tool_args"]["city"].is_string(), "{result}");
    assert!(!result["follow"].as_str().unwrap().is_empty(), "{result}");
    assert_eq!(result["follow_finish"], "stop");
    assert_eq!(result["streamed_args"], result["tool_args"]);
    assert_eq!(result["streamed_finish"], json!(["tool_calls"]));
    assert!(
        result["streamed_usage"][0].as_u64().unwrap() > 0,
        "{result}"
    );
    assert_eq!(result["response_status"], "completed");
    assert_eq!(result["response_call"][0], "get_weather", "{result}");

    // What reached the provider is a Messages request: the system prompt on top, OpenAI-only fields gone
    // (the mock refuses them as Anthropic does).
    let upstream = stack.last_upstream_call().await;
    assert_eq!(upstream["path"], "/v1/messages");
    assert!(upstream["body"]["max_tokens"].is_u64(), "{upstream}");

    let records = exact_records(&stack, &key).await;
    assert_eq!(records.len(), 5, "one record per call");
    assert_eq!(
        (
            records[0]["inputTokens"].as_u64(),
            records[0]["outputTokens"].as_u64()
        ),
        (Some(20), Some(30))
    );
    assert_ledger_invariants(&stack.billing.database).await;
}
