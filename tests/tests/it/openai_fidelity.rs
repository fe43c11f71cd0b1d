//! The model-facing API is faithful: what a client sends reaches the provider (mock-model records it),
//! what the provider answers reaches the client (tool calls, every choice, long answers whole), provider
//! errors keep their meaning, embeddings and the model list work, and every charge is the provider's
//! usage at the price, exactly. Ends with the official OpenAI Python SDK doing the same, unchanged.

use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tests::docs_harness::run_bash;
use tests::in_process::{Billing, Stack};
use tests::{Answer, Backend, assert_ledger_invariants, backend_tests, default_cost};

backend_tests!(
    request_fields_reach_the_provider_unchanged,
    tool_calls_come_back_whole_and_are_charged_the_providers_usage,
    a_long_non_streamed_answer_arrives_whole_unless_credit_runs_out,
    n_choices_are_all_returned_and_charged_once,
    embeddings_are_billed_on_input_tokens,
    provider_errors_reach_the_client_as_the_provider_meant_them,
    the_official_openai_sdk_works_unchanged,
);

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

async fn chat(stack: &Stack, key: &str, body: Value) -> Answer {
    stack.post("/v1/chat/completions", key, body).await
}

/// The chunks of a streamed chat answer (without `[DONE]`), checking it ends with `[DONE]`.
fn chunks(answer: &Answer) -> Vec<Value> {
    let events = answer.events();
    assert_eq!(
        events.last().map(|e| e.data.as_str()),
        Some("[DONE]"),
        "{}",
        answer.text
    );
    events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect()
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                       "required": ["city"]}}}])
}

async fn request_fields_reach_the_provider_unchanged(backend: Backend) {
    let stack = Stack::start(backend).await;
    let key = stack.funded_key("fidelity", "10").await;
    let body = json!({
        "model": "mock",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
            ]},
        ],
        "tools": weather_tool(),
        "tool_choice": "auto",
        "parallel_tool_calls": false,
        "response_format": {"type": "json_object"},
        "temperature": 0.25,
        "top_p": 0.5,
        "stop": ["\n\n"],
        "seed": 7,
        "logprobs": true,
        "top_logprobs": 2,
        "presence_penalty": 0.1,
        "user": "user-42",
        "metadata": {"team": "search"},
        "max_completion_tokens": 300,
        "x_vendor_option": {"nested": [1, 2.5, "three"]},
    });
    for stream in [false, true] {
        let mut sent = body.clone();
        if stream {
            sent["stream"] = json!(true);
        }
        let answer = chat(&stack, &key, sent.clone()).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        let upstream = stack.last_upstream_request().await;
        for (field, value) in sent.as_object().unwrap() {
            if field != "stream" {
                assert_eq!(&upstream[field], value, "`{field}` (stream: {stream})");
            }
        }
        // Only what billing needs is set: a stream with usage.
        assert_eq!(upstream["stream"], true);
        assert_eq!(upstream["stream_options"]["include_usage"], true);
        // The unknown field's number travelled as written.
        assert!(upstream.to_string().contains("2.5"));
    }
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn tool_calls_come_back_whole_and_are_charged_the_providers_usage(backend: Backend) {
    let stack = Stack::start(backend).await;
    let key = stack.funded_key("fidelity", "10").await;
    let body = json!({"model": "mock", "tools": weather_tool(),
        "messages": [{"role": "user", "content": "Weather in Paris?"}]});

    let whole = chat(&stack, &key, body.clone()).await;
    assert_eq!(whole.status, StatusCode::OK, "{}", whole.text);
    let choice = &whole.json["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert!(call.get("index").is_none(), "{call}");
    let arguments = call["function"]["arguments"].as_str().unwrap().to_string();
    let parsed: Value = serde_json::from_str(&arguments).unwrap();
    assert!(parsed.get("city").is_some(), "{arguments}");
    assert_eq!(whole.json["system_fingerprint"], "fp_mock");
    let usage = &whole.json["usage"];
    let charged = default_cost(
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["completion_tokens"].as_u64().unwrap(),
    );
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(dec(whole.header("x-billing-cost").unwrap()), charged);

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let answer = chat(&stack, &key, streamed).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let chunks = chunks(&answer);
    let mut reassembled = String::new();
    let mut name = String::new();
    for chunk in &chunks {
        for call in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            reassembled.push_str(call["function"]["arguments"].as_str().unwrap_or(""));
            name.push_str(call["function"]["name"].as_str().unwrap_or(""));
        }
    }
    assert_eq!(name, "get_weather");
    assert_eq!(reassembled, arguments);
    let last = chunks.last().unwrap();
    let usage = &last["usage"];
    assert!(last.to_string().contains(&format!(
        "\"cost\":{}",
        default_cost(
            usage["prompt_tokens"].as_u64().unwrap(),
            usage["completion_tokens"].as_u64().unwrap()
        )
        .normalize()
    )));
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn a_long_non_streamed_answer_arrives_whole_unless_credit_runs_out(backend: Backend) {
    let stack = Stack::start(backend).await;
    let key = stack.funded_key("fidelity", "50").await;
    let body = json!({"model": "mock-tokens-3000", "max_tokens": 4000,
        "messages": [{"role": "user", "content": "Write at length."}]});

    let whole = chat(&stack, &key, body.clone()).await;
    assert_eq!(whole.status, StatusCode::OK, "{}", whole.text);
    assert_eq!(whole.json["choices"][0]["finish_reason"], "stop");
    assert_eq!(whole.json["usage"]["completion_tokens"], 3000);
    let content = whole.json["choices"][0]["message"]["content"]
        .as_str()
        .unwrap();
    // The mock cycles through ten one-token words: 3,000 tokens hold 300 foxes.
    assert_eq!(content.matches(" fox").count(), 300);
    assert!(whole.header("x-billing-cut-off").is_none());
    let prompt_tokens = whole.json["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(
        dec(whole.header("x-billing-cost").unwrap()),
        default_cost(prompt_tokens, 3000)
    );
    // The same through `/execute` (the seed's shape): every token, `stop`.
    let execute = stack
        .post(
            "/execute",
            &key,
            json!({"prompt": "Write at length.", "model": "mock-tokens-3000", "maxTokens": 4000}),
        )
        .await;
    assert_eq!(execute.status, StatusCode::OK, "{}", execute.text);
    assert_eq!(execute.json["usage"]["outputTokens"], 3000);
    assert_eq!(execute.json["finishReason"], "stop");

    // Credit for about 200 output tokens: the answer ends early, within the credit, and says why.
    let poor = stack.funded_key("fidelity", "0.01").await;
    let short = chat(&stack, &poor, body).await;
    assert_eq!(short.status, StatusCode::OK, "{}", short.text);
    assert_eq!(short.json["choices"][0]["finish_reason"], "length");
    assert_eq!(short.header("x-billing-cut-off"), Some("credit_exhausted"));
    let output = short.json["usage"]["completion_tokens"].as_u64().unwrap();
    assert!((100..=230).contains(&output), "{output} tokens");
    assert!(dec(short.header("x-billing-balance-after").unwrap()) >= Decimal::ZERO);
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn n_choices_are_all_returned_and_charged_once(backend: Backend) {
    let stack = Stack::start(backend).await;
    let key = stack.funded_key("fidelity", "10").await;
    let answer = chat(
        &stack,
        &key,
        json!({"model": "mock", "n": 3, "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let choices = answer.json["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 3);
    for (index, choice) in choices.iter().enumerate() {
        assert_eq!(choice["index"], index);
        assert_eq!(choice["finish_reason"], "stop");
        assert!(!choice["message"]["content"].as_str().unwrap().is_empty());
    }
    let usage = &answer.json["usage"];
    assert_eq!(usage["completion_tokens"], 48);
    let charged = default_cost(usage["prompt_tokens"].as_u64().unwrap(), 48);
    assert_eq!(dec(answer.header("x-billing-cost").unwrap()), charged);
    let records = stack.get("/billing/usage", &key).await;
    assert_eq!(records.json["records"].as_array().unwrap().len(), 1);
    assert_eq!(
        dec(answer.header("x-billing-balance-after").unwrap()),
        dec("10") - charged
    );
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn embeddings_are_billed_on_input_tokens(backend: Backend) {
    let stack = Stack::start(backend).await;
    let key = stack.funded_key("fidelity", "10").await;
    let body = json!({"model": "text-embedding-3-small", "input": ["The quick brown fox", "jumps over the lazy dog"],
        "dimensions": 8, "encoding_format": "float"});
    let answer = stack.post("/v1/embeddings", &key, body.clone()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json["object"], "list");
    let data = answer.json["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["embedding"].as_array().unwrap().len(), 8);
    let upstream = stack.last_upstream_request().await;
    assert_eq!(upstream, body);
    let input_tokens = answer.json["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(input_tokens > 0);
    let charged = default_cost(input_tokens, 0);
    assert_eq!(dec(answer.header("x-billing-cost").unwrap()), charged);
    assert_eq!(
        dec(answer.header("x-billing-balance-after").unwrap()),
        dec("10") - charged
    );
    let records = stack.get("/billing/usage", &key).await;
    let record = &records.json["records"][0];
    assert_eq!(record["endpoint"], "/v1/embeddings");
    assert_eq!(record["outputTokens"], 0);

    // base64 passes through too.
    let base64 = stack
        .post(
            "/v1/embeddings",
            &key,
            json!({"input": "hello", "encoding_format": "base64"}),
        )
        .await;
    assert_eq!(base64.status, StatusCode::OK, "{}", base64.text);
    assert!(base64.json["data"][0]["embedding"].is_string());

    // Without credit: 402, and the provider is never called.
    let (_, broke) = stack.create_key("broke", "standard").await;
    let refused = stack.post("/v1/embeddings", &broke, body.clone()).await;
    assert_eq!(
        refused.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        refused.text
    );
    assert_eq!(refused.json["error"]["code"], "insufficient_credits");

    // An internal key: recorded, never charged, no billing headers.
    let (_, internal) = stack.create_key("internal", "internal").await;
    let free = stack.post("/v1/embeddings", &internal, body).await;
    assert_eq!(free.status, StatusCode::OK, "{}", free.text);
    assert!(free.header("x-billing-status").is_none());
    assert_ledger_invariants(&stack.billing.database).await;
}

async fn provider_errors_reach_the_client_as_the_provider_meant_them(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let stack = Stack::start_with(billing, &[("EXECUTOR_UPSTREAM_TIMEOUT_SECS", "1")], &[]).await;
    let key = stack.funded_key("fidelity", "10").await;
    let call = |model: &str, stream: bool| json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "Hi"}]});

    let bad = chat(&stack, &key, call("mock-fail-400", false)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert_eq!(
        bad.json["error"],
        json!({"message": "Invalid value for 'messages'.", "type": "invalid_request_error",
               "param": "messages", "code": "invalid_value"})
    );

    let limited = chat(&stack, &key, call("mock-fail-429", false)).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.text
    );
    assert_eq!(limited.header("retry-after"), Some("2"));
    assert_eq!(limited.json["error"]["code"], "rate_limit_exceeded");
    let limited_stream = chat(&stack, &key, call("mock-fail-429", true)).await;
    assert_eq!(limited_stream.status, StatusCode::TOO_MANY_REQUESTS);

    let failed = chat(&stack, &key, call("mock-fail-500", false)).await;
    assert_eq!(failed.status, StatusCode::BAD_GATEWAY, "{}", failed.text);
    assert_eq!(failed.json["error"]["type"], "server_error");

    let slow = chat(&stack, &key, call("mock-stall-3000", false)).await;
    assert_eq!(slow.status, StatusCode::GATEWAY_TIMEOUT, "{}", slow.text);

    // The same 400 through `/execute`: our error shape, the provider's message and status.
    let execute = stack
        .post(
            "/execute",
            &key,
            json!({"prompt": "Hi", "model": "mock-fail-400"}),
        )
        .await;
    assert_eq!(execute.status, StatusCode::BAD_REQUEST, "{}", execute.text);
    assert_eq!(execute.json["code"], "provider_error");
    assert_eq!(execute.json["details"]["providerStatus"], 400);

    // An error event inside the stream ends the client's stream with that error.
    let broken = chat(&stack, &key, call("mock-streamerror-3", true)).await;
    assert_eq!(broken.status, StatusCode::OK, "{}", broken.text);
    let events = broken.events();
    let last = events.last().unwrap().json();
    assert_eq!(
        last["error"]["message"],
        "The server had an error while processing your request. Sorry about that!"
    );
    assert_eq!(last["error"]["type"], "server_error");
    assert!(events.len() >= 4, "{events:?}");

    // None of these was billed by the provider, so none is charged.
    let account = stack.get("/billing/account", &key).await;
    assert_eq!(account.json["creditsBalance"], json!(10));
    assert_eq!(account.json["heldCredits"], json!(0));

    // The model list: the provider's, behind a key.
    let models = stack.get("/v1/models", &key).await;
    assert_eq!(models.status, StatusCode::OK, "{}", models.text);
    assert_eq!(models.json["object"], "list");
    assert!(
        models.json["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|model| model["id"] == "mock")
    );
    let anonymous = stack
        .call(reqwest::Method::GET, "/v1/models", None, None)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_ledger_invariants(&stack.billing.database).await;
}

/// The official OpenAI Python SDK (the docs venv's), unchanged client code.
const SDK_SCRIPT: &str = r#"
import json, os
from openai import OpenAI
client = OpenAI(base_url=os.environ["BASE_URL"], api_key=os.environ["KEY"], max_retries=0)
tools = [{"type": "function", "function": {"name": "get_weather",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
messages = [{"role": "user", "content": "Weather in Paris?"}]
raw = client.chat.completions.with_raw_response.create(model="mock", messages=messages, tools=tools)
whole = raw.parse()
call = whole.choices[0].message.tool_calls[0]
streamed_args, name = "", ""
stream = client.chat.completions.create(model="mock", messages=messages, tools=tools, stream=True,
                                        stream_options={"include_usage": True})
usage = None
for chunk in stream:
    if chunk.usage:
        usage = chunk.usage
    for choice in chunk.choices:
        for delta in choice.delta.tool_calls or []:
            streamed_args += delta.function.arguments or ""
            name += delta.function.name or ""
long = client.chat.completions.create(model="mock-tokens-3000", max_tokens=4000,
                                      messages=[{"role": "user", "content": "Write."}])
models = [model.id for model in client.models.list()]
embedding = client.embeddings.create(model="text-embedding-3-small", input=["hello", "world"])
three = client.chat.completions.create(model="mock", n=3, messages=[{"role": "user", "content": "Hi."}])
import openai
try:
    client.chat.completions.create(model="mock-fail-429", messages=[{"role": "user", "content": "Hi."}])
    limited = None
except openai.RateLimitError as error:
    limited = {"status": error.status_code, "retry_after": error.response.headers.get("retry-after")}
streamed_before_error, stream_error = 0, None
try:
    for chunk in client.chat.completions.create(model="mock-streamerror-3", stream=True,
                                                messages=[{"role": "user", "content": "Hi."}]):
        streamed_before_error += len(chunk.choices)
except openai.APIError as error:
    stream_error = type(error).__name__
print(json.dumps({
    "name": call.function.name, "arguments": call.function.arguments, "finish": whole.choices[0].finish_reason,
    "cost": raw.headers.get("x-billing-cost"), "prompt": whole.usage.prompt_tokens,
    "completion": whole.usage.completion_tokens, "streamed_name": name, "streamed_arguments": streamed_args,
    "streamed_usage": usage.completion_tokens if usage else None,
    "long": long.usage.completion_tokens, "long_finish": long.choices[0].finish_reason,
    "models": models, "embeddings": len(embedding.data), "embedding_tokens": embedding.usage.prompt_tokens,
    "choices": len(three.choices), "limited": limited, "streamed_before_error": streamed_before_error,
    "stream_error": stream_error,
}))
"#;

async fn the_official_openai_sdk_works_unchanged(backend: Backend) {
    let stack = Stack::start(backend).await;
    let key = stack.funded_key("fidelity", "50").await;
    let dir = tempfile::tempdir().unwrap();
    let script = format!("python3 - <<'PY'\n{SDK_SCRIPT}\nPY");
    let base_url = stack.url("/v1");
    let output = run_bash(
        &script,
        dir.path(),
        &[("BASE_URL", base_url.as_str()), ("KEY", key.as_str())],
    )
    .await;
    output.assert_success("the OpenAI SDK script");
    let result: Value = serde_json::from_str(output.stdout.trim()).unwrap();
    assert_eq!(result["name"], "get_weather");
    assert_eq!(result["finish"], "tool_calls");
    assert_eq!(result["streamed_name"], "get_weather");
    assert_eq!(result["streamed_arguments"], result["arguments"]);
    assert_eq!(result["streamed_usage"], result["completion"]);
    assert_eq!(
        dec(result["cost"].as_str().unwrap()),
        default_cost(
            result["prompt"].as_u64().unwrap(),
            result["completion"].as_u64().unwrap()
        )
    );
    assert_eq!(result["long"], 3000);
    assert_eq!(result["long_finish"], "stop");
    assert!(
        result["models"]
            .as_array()
            .unwrap()
            .contains(&json!("mock"))
    );
    assert_eq!(result["embeddings"], 2);
    assert_eq!(result["choices"], 3);
    assert_eq!(result["limited"]["status"], 429);
    assert!(result["limited"]["retry_after"].is_string(), "{result}");
    assert!(result["streamed_before_error"].as_u64().unwrap() > 0);
    assert!(result["stream_error"].is_string(), "{result}");
    assert!(result["embedding_tokens"].as_u64().unwrap() > 0);
    assert_ledger_invariants(&stack.billing.database).await;
}
