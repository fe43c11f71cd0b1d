//! The mock over HTTP, in process (router + `oneshot`): what a client of each route sees.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode, header};
use mock_model::{AppState, Config, router};
use serde_json::{Value, json};
use tower::ServiceExt;

fn app() -> Router {
    router(AppState::new(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        output_tokens: 16,
        token_latency_ms: 0,
    }))
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The SSE events: parsed JSON, or the string `[DONE]`.
    fn events(&self) -> Vec<Value> {
        std::str::from_utf8(&self.body)
            .unwrap()
            .split("\n\n")
            .filter(|event| !event.is_empty())
            .map(|event| {
                let data = event.strip_prefix("data: ").expect("a data event");
                if data == "[DONE]" {
                    json!("[DONE]")
                } else {
                    serde_json::from_str(data).unwrap()
                }
            })
            .collect()
    }
}

async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

async fn post(app: &Router, path: &str, body: impl Into<Body>) -> Answer {
    let request = Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap();
    send(app, request).await
}

async fn chat(app: &Router, body: Value) -> Answer {
    post(app, "/v1/chat/completions", body.to_string()).await
}

async fn get(app: &Router, path: &str) -> Answer {
    send(app, Request::get(path).body(Body::empty()).unwrap()).await
}

fn weather_tools() -> Value {
    json!([
        { "type": "function", "function": { "name": "get_weather", "parameters": { "type": "object",
          "properties": { "city": { "type": "string" }, "days": { "type": "integer" } } } } },
        { "type": "function", "function": { "name": "get_time", "parameters": { "type": "object",
          "properties": { "timezone": { "type": "string", "enum": ["UTC", "CET"] } } } } },
    ])
}

fn user(text: &str) -> Value {
    json!([{ "role": "user", "content": text }])
}

fn tok(text: &str) -> u64 {
    tiktoken_rs::cl100k_base_singleton()
        .encode_ordinary(text)
        .len() as u64
}

/// The chunks that carry choices (not the usage chunk, not `[DONE]`).
fn choice_chunks(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|event| event["choices"].as_array().is_some_and(|c| !c.is_empty()))
        .collect()
}

#[tokio::test]
async fn a_streamed_tool_call_reassembles_to_the_unstreamed_arguments() {
    let app = app();
    let body = |stream: bool| {
        json!({ "model": "mock-parallel", "messages": user("Weather and time?"), "tools": weather_tools(),
                "stream": stream, "stream_options": if stream { json!({ "include_usage": true }) } else { Value::Null } })
    };

    let whole = chat(&app, body(false)).await.json();
    let streamed = chat(&app, body(true)).await.events();

    let calls = whole["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(whole["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(whole["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert_eq!(
        calls[0]["function"]["arguments"],
        r#"{"city":"Paris","days":1}"#
    );
    assert_eq!(calls[1]["function"]["arguments"], r#"{"timezone":"UTC"}"#);
    assert_eq!(calls[0]["id"], "call_mock_1_0");

    let mut names = vec![String::new(); 2];
    let mut arguments = vec![String::new(); 2];
    let mut argument_tokens = 0;
    for chunk in choice_chunks(&streamed) {
        assert_eq!(chunk["system_fingerprint"], "fp_mock");
        assert_eq!(chunk["usage"], Value::Null);
        for call in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let index = call["index"].as_u64().unwrap() as usize;
            if let Some(name) = call["function"]["name"].as_str() {
                assert_eq!(call["id"], format!("call_mock_2_{index}"));
                assert_eq!(call["type"], "function");
                names[index].push_str(name);
            }
            let piece = call["function"]["arguments"].as_str().unwrap();
            if !piece.is_empty() {
                assert_eq!(tok(piece), 1, "one token per chunk: {piece:?}");
                argument_tokens += 1;
            }
            arguments[index].push_str(piece);
        }
    }
    for index in 0..2 {
        assert_eq!(
            names[index],
            calls[index]["function"]["name"].as_str().unwrap()
        );
        assert_eq!(
            arguments[index],
            calls[index]["function"]["arguments"].as_str().unwrap()
        );
    }
    let finish = &choice_chunks(&streamed).last().unwrap()["choices"][0];
    assert_eq!(finish["finish_reason"], "tool_calls");
    let usage = &streamed[streamed.len() - 2]["usage"];
    let expected = tok("get_weather") + tok("get_time") + argument_tokens;
    assert_eq!(usage["completion_tokens"].as_u64(), Some(expected));
    assert_eq!(whole["usage"]["completion_tokens"].as_u64(), Some(expected));
    assert_eq!(streamed.last().unwrap(), "[DONE]");
}

#[tokio::test]
async fn the_last_request_is_recorded_with_unknown_fields_intact() {
    let app = app();
    let nothing = get(&app, "/requests/last").await;
    assert_eq!(nothing.status, StatusCode::NOT_FOUND);
    assert_eq!(nothing.json()["error"]["type"], "invalid_request_error");

    let raw = r#"{"model":"mock","messages":[{"role":"user","content":"Hi"}],
                  "x_vendor_flag":{"deep":[1,2.50,"x"]},"temperature":0.7}"#;
    assert_eq!(
        post(&app, "/v1/chat/completions", raw).await.status,
        StatusCode::OK
    );

    let last = get(&app, "/requests/last").await.json();
    assert_eq!(last["path"], "/v1/chat/completions");
    assert_eq!(last["body"], serde_json::from_str::<Value>(raw).unwrap());
    assert_eq!(last["body"]["x_vendor_flag"]["deep"][1].to_string(), "2.50");
}

#[tokio::test]
async fn a_rate_limit_says_when_to_retry() {
    let app = app();
    let answer = chat(
        &app,
        json!({ "model": "mock-fail-429", "messages": user("Hi") }),
    )
    .await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answer.headers[header::RETRY_AFTER], "2");
    assert_eq!(
        answer.json(),
        json!({ "error": { "message": "Rate limit reached for requests", "type": "requests",
                           "param": null, "code": "rate_limit_exceeded" } })
    );
}

#[tokio::test]
async fn injected_failures_have_the_bodies_of_a_real_provider() {
    let app = app();
    let bad = chat(
        &app,
        json!({ "model": "mock-fail-400", "messages": user("Hi") }),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["error"]["param"], "messages");
    assert_eq!(bad.json()["error"]["code"], "invalid_value");
    let down = chat(
        &app,
        json!({ "model": "mock-fail-503", "messages": user("Hi") }),
    )
    .await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(down.json()["error"]["type"], "server_error");
    let unstreamed = chat(
        &app,
        json!({ "model": "mock-streamerror-2", "messages": user("Hi") }),
    )
    .await;
    assert_eq!(unstreamed.status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn malformed_bodies_get_openai_errors_and_parsed_ones_are_recorded() {
    let app = app();
    let not_json = post(&app, "/v1/chat/completions", "{not json").await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    let error = &not_json.json()["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert!(error.get("param").is_some() && error.get("code").is_some());
    assert_eq!(
        get(&app, "/requests/last").await.status,
        StatusCode::NOT_FOUND
    );

    let no_messages = chat(&app, json!({ "model": "mock", "extra": true })).await;
    assert_eq!(no_messages.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_messages.json()["error"]["param"], "messages");
    assert_eq!(
        get(&app, "/requests/last").await.json()["body"],
        json!({ "model": "mock", "extra": true })
    );
    let stats = get(&app, "/stats").await.json();
    assert_eq!(stats["requests"], json!(2));
}

#[tokio::test]
async fn n_choices_stream_interleaved_and_sum_their_usage() {
    let app = app();
    let events = chat(
        &app,
        json!({ "model": "mock-tokens-3", "messages": user("Hello world"), "n": 2, "stream": true,
                "stream_options": { "include_usage": true } }),
    )
    .await
    .events();
    let indexes: Vec<u64> = choice_chunks(&events)
        .iter()
        .map(|chunk| chunk["choices"][0]["index"].as_u64().unwrap())
        .collect();
    // Two role chunks, three tokens each interleaved, two finish chunks.
    assert_eq!(indexes, [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
    let texts: Vec<String> = (0..2)
        .map(|choice| {
            choice_chunks(&events)
                .iter()
                .filter(|chunk| chunk["choices"][0]["index"] == json!(choice))
                .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
                .collect()
        })
        .collect();
    assert_eq!(texts, [" The quick brown", " The quick brown"]);
    let usage_chunk = &events[events.len() - 2];
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], json!(9));
    assert_eq!(usage_chunk["usage"]["completion_tokens"], json!(6));
    assert_eq!(
        usage_chunk["usage"]["prompt_tokens_details"]["cached_tokens"],
        json!(0)
    );
    assert_eq!(
        usage_chunk["usage"]["completion_tokens_details"]["reasoning_tokens"],
        json!(0)
    );
}

#[tokio::test]
async fn a_long_prompt_is_cached_the_second_time_streamed_or_not() {
    let app = app();
    let body = |stream: bool| {
        let mut body = json!({ "model": "mock-tokens-8", "reasoning_effort": "medium", "messages": [
            { "role": "system", "content": " You answer from the manual.".repeat(250) },
            { "role": "user", "content": "How do I reset it?" },
        ] });
        if stream {
            body["stream"] = json!(true);
            body["stream_options"] = json!({ "include_usage": true });
        }
        body
    };

    let first = chat(&app, body(false)).await.json()["usage"].clone();
    assert_eq!(first["prompt_tokens_details"]["cached_tokens"], json!(0));
    assert_eq!(first["completion_tokens"], json!(8));
    assert_eq!(
        first["completion_tokens_details"]["reasoning_tokens"],
        json!(4)
    );

    let streamed = chat(&app, body(true)).await.events();
    let streamed = streamed[streamed.len() - 2]["usage"].clone();
    let cached = streamed["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(cached >= 1_024 && cached.is_multiple_of(128), "{cached}");
    assert!(cached <= streamed["prompt_tokens"].as_u64().unwrap());
    assert_eq!(streamed["prompt_tokens"], first["prompt_tokens"]);
    assert_eq!(
        streamed["completion_tokens_details"]["reasoning_tokens"],
        json!(4)
    );

    let whole = chat(&app, body(false)).await.json()["usage"].clone();
    assert_eq!(whole, streamed, "the same usage streamed or whole");
}

#[tokio::test]
async fn a_plain_completion_is_sixteen_words_by_default() {
    let app = app();
    let whole = chat(
        &app,
        json!({ "model": "gpt-4o-mini", "messages": user("Hi") }),
    )
    .await
    .json();
    assert_eq!(whole["object"], "chat.completion");
    assert_eq!(whole["system_fingerprint"], "fp_mock");
    let choice = &whole["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["refusal"], Value::Null);
    assert!(choice["message"].get("tool_calls").is_none());
    assert_eq!(choice["logprobs"], Value::Null);
    assert_eq!(choice["finish_reason"], "stop");
    let content = choice["message"]["content"].as_str().unwrap();
    assert!(content.starts_with(" The quick brown fox jumps over the lazy dog. The"));
    assert_eq!(whole["usage"]["completion_tokens"], json!(16));

    let events = chat(
        &app,
        json!({ "model": "mock", "messages": user("Hi"), "stream": true }),
    )
    .await
    .events();
    assert!(events.iter().all(|event| event.get("usage").is_none()));
    assert_eq!(events.len(), 1 + 16 + 1 + 1);
}

#[tokio::test]
async fn a_stream_error_ends_the_body_without_done_or_usage() {
    let app = app();
    let answer = chat(
        &app,
        json!({ "model": "mock-streamerror-3", "messages": user("Hi"), "stream": true,
                "stream_options": { "include_usage": true } }),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let events = answer.events();
    let words: String = events
        .iter()
        .filter_map(|event| event["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(words, " The quick brown");
    assert_eq!(
        events.last().unwrap(),
        &json!({ "error": { "message": "The server had an error while processing your request. Sorry about that!",
                            "type": "server_error", "param": null, "code": null } })
    );
    assert!(!events.iter().any(|event| event == "[DONE]"));
    assert!(!events.iter().any(|event| event["usage"].is_object()));
}

#[tokio::test]
async fn json_mode_streams_a_json_object_token_by_token_until_max_tokens() {
    let app = app();
    let body = |max_tokens: Value| {
        json!({ "model": "mock-tokens-5", "messages": user("JSON please"), "stream": true,
                "stream_options": { "include_usage": true }, "max_tokens": max_tokens,
                "response_format": { "type": "json_object" } })
    };
    let events = chat(&app, body(Value::Null)).await.events();
    let pieces: Vec<&str> = events
        .iter()
        .filter_map(|event| event["choices"][0]["delta"]["content"].as_str())
        .filter(|piece| !piece.is_empty())
        .collect();
    let content: String = pieces.concat();
    assert_eq!(content, r#"{"answer":" The quick brown fox jumps"}"#);
    assert!(pieces.iter().all(|piece| tok(piece) == 1));
    let usage = &events[events.len() - 2]["usage"];
    assert_eq!(usage["completion_tokens"].as_u64(), Some(tok(&content)));

    let cut = chat(&app, body(json!(4))).await.events();
    let content: String = cut
        .iter()
        .filter_map(|event| event["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(serde_json::from_str::<Value>(&content).is_err());
    assert_eq!(tok(&content), 4);
    assert_eq!(
        choice_chunks(&cut).last().unwrap()["choices"][0]["finish_reason"],
        "length"
    );
}

#[tokio::test]
async fn logprobs_come_with_every_content_piece() {
    let app = app();
    let events = chat(
        &app,
        json!({ "model": "mock-tokens-2", "messages": user("Hi"), "stream": true, "logprobs": true, "top_logprobs": 2 }),
    )
    .await
    .events();
    let with_logprobs: Vec<&Value> = choice_chunks(&events)
        .into_iter()
        .filter(|chunk| chunk["choices"][0]["logprobs"].is_object())
        .collect();
    assert_eq!(with_logprobs.len(), 2);
    let entry = &with_logprobs[1]["choices"][0]["logprobs"]["content"][0];
    assert_eq!(entry["token"], " quick");
    assert_eq!(entry["bytes"], json!(" quick".as_bytes()));
    assert_eq!(entry["top_logprobs"].as_array().unwrap().len(), 2);

    let whole = chat(
        &app,
        json!({ "model": "mock-tokens-2", "messages": user("Hi"), "logprobs": true }),
    )
    .await
    .json();
    let content = whole["choices"][0]["logprobs"]["content"]
        .as_array()
        .unwrap();
    assert_eq!(content.len(), 2);
    assert_eq!(content[0]["top_logprobs"], json!([]));
}

#[tokio::test]
async fn a_refusal_is_streamed_as_refusal_pieces() {
    let app = app();
    let refusal = "I'm sorry, I can't help with that.";
    let events = chat(
        &app,
        json!({ "model": "mock-refuse", "messages": user("Hi"), "stream": true,
                                     "stream_options": { "include_usage": true } }),
    )
    .await
    .events();
    let text: String = events
        .iter()
        .filter_map(|event| event["choices"][0]["delta"]["refusal"].as_str())
        .collect();
    assert_eq!(text, refusal);
    assert!(events.iter().all(|event| {
        event["choices"][0]["delta"]["content"]
            .as_str()
            .unwrap_or("")
            .is_empty()
    }));
    assert_eq!(
        events[events.len() - 2]["usage"]["completion_tokens"].as_u64(),
        Some(tok(refusal))
    );

    let whole = chat(
        &app,
        json!({ "model": "mock-refuse", "messages": user("Hi") }),
    )
    .await
    .json();
    assert_eq!(whole["choices"][0]["message"]["refusal"], refusal);
    assert_eq!(whole["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(whole["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn embeddings_and_models_have_openai_shapes() {
    let app = app();
    let list = post(
        &app,
        "/v1/embeddings",
        json!({ "model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 4 })
            .to_string(),
    )
    .await
    .json();
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert_eq!(list["data"][1]["embedding"].as_array().unwrap().len(), 4);
    assert_eq!(
        get(&app, "/requests/last").await.json()["path"],
        "/v1/embeddings"
    );
    let failed = post(
        &app,
        "/v1/embeddings",
        json!({ "model": "e-fail-500", "input": "a" }).to_string(),
    )
    .await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);

    let models = get(&app, "/v1/models").await.json();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["mock", "gpt-4o-mini", "text-embedding-3-small"]);
    assert_eq!(models["data"][0]["created"], json!(1_700_000_000));
    assert_eq!(get(&app, "/v1/nothing").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_stall_holds_back_even_the_status_line() {
    let app = app();
    let started = std::time::Instant::now();
    let response = app
        .clone()
        .oneshot(
            Request::post("/v1/chat/completions")
                .body(Body::from(
                    json!({ "model": "mock-stall-60", "messages": user("Hi") }).to_string(),
                ))
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(60));
    assert_eq!(response.status(), StatusCode::OK);
    // Recorded on receipt, before the stall.
    assert_eq!(
        get(&app, "/requests/last").await.json()["body"]["model"],
        "mock-stall-60"
    );
}

// Anthropic's Messages API.

async fn messages(app: &Router, body: Value) -> Answer {
    post(app, "/v1/messages", body.to_string()).await
}

impl Answer {
    /// Anthropic's SSE events: `(event, data)`.
    fn anthropic_events(&self) -> Vec<(String, Value)> {
        std::str::from_utf8(&self.body)
            .unwrap()
            .split("\n\n")
            .filter(|event| !event.is_empty())
            .map(|event| {
                let (name, data) = event.split_once('\n').expect("an event and a data line");
                let name = name.strip_prefix("event: ").expect("an event line");
                let data = data.strip_prefix("data: ").expect("a data line");
                let data: Value = serde_json::from_str(data).unwrap();
                assert_eq!(data["type"], name, "the data's type names the event");
                (name.to_owned(), data)
            })
            .collect()
    }
}

/// The text of the `delta.<member>`s of the deltas of block `index`.
fn deltas(events: &[(String, Value)], index: u64, member: &str) -> String {
    events
        .iter()
        .filter(|(name, data)| name == "content_block_delta" && data["index"] == json!(index))
        .filter_map(|(_, data)| data["delta"][member].as_str())
        .collect()
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(name, _)| name.as_str()).collect()
}

#[tokio::test]
async fn a_message_answers_in_words_whole_and_streamed() {
    let app = app();
    let body = |stream: bool| {
        json!({ "model": "claude-mock-tokens-3", "max_tokens": 1024, "stream": stream,
                "messages": [{ "role": "user", "content": "Hello world" }] })
    };
    let whole = messages(&app, body(false)).await;
    assert_eq!(whole.status, StatusCode::OK);
    let input_tokens = 3 + 3 + tok("user") + tok("Hello world");
    assert_eq!(
        whole.json(),
        json!({ "id": "msg_mock_1", "type": "message", "role": "assistant", "model": "claude-mock-tokens-3",
                "content": [{ "type": "text", "text": " The quick brown" }],
                "stop_reason": "end_turn", "stop_sequence": null,
                "usage": { "input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                           "cache_read_input_tokens": 0,
                           "cache_creation": { "ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0 },
                           "output_tokens": 3, "service_tier": "standard" } })
    );

    let streamed = post(&app, "/v1/messages?beta=true", body(true).to_string()).await;
    assert_eq!(streamed.headers[header::CONTENT_TYPE], "text/event-stream");
    let events = streamed.anthropic_events();
    assert_eq!(
        names(&events),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let start = &events[0].1["message"];
    assert_eq!(start["id"], "msg_mock_2");
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["usage"]["input_tokens"], json!(input_tokens));
    assert_eq!(start["usage"]["output_tokens"], json!(1));
    assert_eq!(
        events[2].1["content_block"],
        json!({ "type": "text", "text": "" })
    );
    assert_eq!(deltas(&events, 0, "text"), " The quick brown");
    assert_eq!(
        events[7].1,
        json!({ "type": "message_delta", "delta": { "stop_reason": "end_turn", "stop_sequence": null },
                "usage": { "input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                           "cache_read_input_tokens": 0, "output_tokens": 3 } })
    );
}

#[tokio::test]
async fn a_streamed_tool_use_reassembles_to_the_unstreamed_input() {
    let app = app();
    let tools = json!([
        { "name": "get_weather", "input_schema": { "type": "object",
          "properties": { "city": { "type": "string" }, "days": { "type": "integer" } } } },
        { "name": "get_time", "input_schema": { "type": "object",
          "properties": { "timezone": { "type": "string", "enum": ["UTC", "CET"] } } } },
        { "type": "web_search_20250305", "name": "web_search", "max_uses": 3 },
    ]);
    let body = |stream: bool| {
        json!({ "model": "mock-parallel", "max_tokens": 1024, "stream": stream, "tools": tools,
                "messages": [{ "role": "user", "content": "Weather and time?" }] })
    };
    let whole = messages(&app, body(false)).await.json();
    assert_eq!(whole["stop_reason"], "tool_use");
    assert_eq!(
        whole["content"],
        json!([
            { "type": "tool_use", "id": "toolu_mock_1_0", "name": "get_weather", "input": { "city": "Paris", "days": 1 } },
            { "type": "tool_use", "id": "toolu_mock_1_1", "name": "get_time", "input": { "timezone": "UTC" } },
        ])
    );

    let events = messages(&app, body(true)).await.anthropic_events();
    let starts: Vec<&Value> = events
        .iter()
        .filter(|(name, _)| name == "content_block_start")
        .map(|(_, data)| data)
        .collect();
    assert_eq!(
        starts[1]["content_block"],
        json!({ "type": "tool_use", "id": "toolu_mock_2_1", "name": "get_time", "input": {} })
    );
    for index in 0..2 {
        let input: Value = serde_json::from_str(&deltas(&events, index, "partial_json")).unwrap();
        assert_eq!(input, whole["content"][index as usize]["input"]);
    }
    let stops = events
        .iter()
        .filter(|(name, _)| name == "content_block_stop")
        .count();
    assert_eq!(stops, 2);
    let delta = &events[events.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(
        delta["usage"]["output_tokens"],
        whole["usage"]["output_tokens"]
    );

    let answered = messages(
        &app,
        json!({ "model": "mock", "max_tokens": 1024, "tools": tools, "messages": [
            { "role": "user", "content": "Weather in Paris?" },
            { "role": "assistant", "content": [{ "type": "tool_use", "id": "toolu_1", "name": "get_weather",
              "input": { "city": "Paris" } }] },
            { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny" }] },
        ] }),
    )
    .await
    .json();
    assert_eq!(answered["stop_reason"], "end_turn");
    assert_eq!(answered["content"][0]["type"], "text");
}

#[tokio::test]
async fn thinking_comes_first_with_its_signature() {
    let app = app();
    let body = |stream: bool| {
        json!({ "model": "mock-tokens-2", "max_tokens": 2048, "stream": stream,
                "thinking": { "type": "enabled", "budget_tokens": 1024 },
                "messages": [{ "role": "user", "content": "Hi" }] })
    };
    let whole = messages(&app, body(false)).await.json();
    let thinking = &whole["content"][0];
    assert_eq!(thinking["type"], "thinking");
    let text = thinking["thinking"].as_str().unwrap();
    let signature = thinking["signature"].as_str().unwrap();
    assert!(!text.is_empty() && !signature.is_empty());
    assert_eq!(
        whole["content"][1],
        json!({ "type": "text", "text": " The quick" })
    );
    assert_eq!(whole["usage"]["output_tokens"], json!(tok(text) + 2));

    let events = messages(&app, body(true)).await.anthropic_events();
    assert_eq!(
        events[2].1["content_block"],
        json!({ "type": "thinking", "thinking": "", "signature": "" })
    );
    assert_eq!(deltas(&events, 0, "thinking"), text);
    assert_eq!(deltas(&events, 0, "signature"), signature);
    let signature_at = events
        .iter()
        .position(|(_, data)| data["delta"]["type"] == "signature_delta")
        .unwrap();
    assert_eq!(
        events[signature_at + 1].1,
        json!({ "type": "content_block_stop", "index": 0 })
    );
    assert_eq!(events[signature_at + 2].1["content_block"]["type"], "text");
    assert_eq!(deltas(&events, 1, "text"), " The quick");

    let adaptive = messages(
        &app,
        json!({ "model": "mock", "max_tokens": 50, "thinking": { "type": "adaptive" },
                "messages": [{ "role": "user", "content": "Hi" }] }),
    )
    .await
    .json();
    assert_eq!(adaptive["content"][0]["signature"], signature);
    let disabled = messages(
        &app,
        json!({ "model": "mock", "max_tokens": 50, "thinking": { "type": "disabled" },
                "messages": [{ "role": "user", "content": "Hi" }] }),
    )
    .await
    .json();
    assert_eq!(disabled["content"][0]["type"], "text");
}

#[tokio::test]
async fn the_same_prompt_twice_writes_the_cache_then_reads_it() {
    let app = app();
    let body = |stream: bool| {
        json!({ "model": "mock", "max_tokens": 100, "stream": stream,
                "system": [{ "type": "text", "text": "You are a meticulous assistant who answers briefly.",
                             "cache_control": { "type": "ephemeral", "ttl": "1h" } }],
                "messages": [{ "role": "user", "content": [
                    { "type": "text", "text": "Summarise the plot of Hamlet.", "cache_control": { "type": "ephemeral" } },
                ] }] })
    };
    let system = 3 + tok("system") + tok("You are a meticulous assistant who answers briefly.");
    let user = 3 + tok("user") + tok("Summarise the plot of Hamlet.");

    let first = messages(&app, body(false)).await.json();
    assert_eq!(first["usage"]["input_tokens"], json!(3));
    assert_eq!(first["usage"]["cache_read_input_tokens"], json!(0));
    assert_eq!(
        first["usage"]["cache_creation_input_tokens"],
        json!(system + user)
    );
    assert_eq!(
        first["usage"]["cache_creation"],
        json!({ "ephemeral_5m_input_tokens": user, "ephemeral_1h_input_tokens": system })
    );

    let second = messages(&app, body(true)).await.anthropic_events();
    let start_usage = &second[0].1["message"]["usage"];
    assert_eq!(start_usage["input_tokens"], json!(3));
    assert_eq!(start_usage["cache_read_input_tokens"], json!(system + user));
    assert_eq!(start_usage["cache_creation_input_tokens"], json!(0));
    let delta_usage = &second[second.len() - 2].1["usage"];
    assert_eq!(delta_usage["cache_read_input_tokens"], json!(system + user));

    let counted = post(&app, "/v1/messages/count_tokens", body(false).to_string()).await;
    assert_eq!(counted.status, StatusCode::OK);
    assert_eq!(counted.json(), json!({ "input_tokens": 3 + system + user }));
    let third = messages(&app, body(false)).await.json();
    assert_eq!(
        third["usage"]["cache_read_input_tokens"],
        json!(system + user),
        "count_tokens neither reads nor writes the cache"
    );
}

#[tokio::test]
async fn count_tokens_counts_the_prompt_as_chat_completions_would() {
    let app = app();
    let counted = post(
        &app,
        "/v1/messages/count_tokens",
        json!({ "model": "mock", "system": "Be brief.",
                "messages": [{ "role": "user", "content": "Hello world" }] })
        .to_string(),
    )
    .await
    .json();
    let chat = chat(
        &app,
        json!({ "model": "mock", "messages": [{ "role": "system", "content": "Be brief." },
                                              { "role": "user", "content": "Hello world" }] }),
    )
    .await
    .json();
    assert_eq!(counted["input_tokens"], chat["usage"]["prompt_tokens"]);
    assert_eq!(
        get(&app, "/requests/last").await.json()["path"],
        "/v1/chat/completions"
    );
    let stats = get(&app, "/stats").await.json();
    assert_eq!(
        stats,
        json!({ "requests": 1, "chat_completions": 1, "messages": 0, "count_tokens": 1, "embeddings": 0 })
    );
}

#[tokio::test]
async fn messages_failures_have_anthropics_error_bodies() {
    let app = app();
    let user = json!([{ "role": "user", "content": "Hi" }]);
    let limited = messages(
        &app,
        json!({ "model": "mock-fail-429", "max_tokens": 5, "messages": user }),
    )
    .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers[header::RETRY_AFTER], "2");
    assert_eq!(limited.json()["type"], "error");
    assert_eq!(limited.json()["error"]["type"], "rate_limit_error");

    let overloaded = messages(
        &app,
        json!({ "model": "mock-fail-529", "max_tokens": 5, "messages": user }),
    )
    .await;
    assert_eq!(overloaded.status.as_u16(), 529);
    assert_eq!(
        overloaded.json(),
        json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } })
    );
    for (status, kind) in [
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (500, "api_error"),
    ] {
        let failed = messages(
            &app,
            json!({ "model": format!("mock-fail-{status}"), "max_tokens": 5, "messages": user }),
        )
        .await;
        assert_eq!(failed.status.as_u16(), status);
        assert_eq!(failed.json()["error"]["type"], kind, "{status}");
    }

    let no_max_tokens = messages(&app, json!({ "model": "mock", "messages": user })).await;
    assert_eq!(no_max_tokens.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        no_max_tokens.json(),
        json!({ "type": "error", "error": { "type": "invalid_request_error", "message": "max_tokens: Field required" } })
    );
    let openai_only = messages(
        &app,
        json!({ "model": "mock", "max_tokens": 5, "messages": user, "reasoning_effort": "high" }),
    )
    .await;
    assert_eq!(openai_only.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        openai_only.json()["error"]["message"],
        "reasoning_effort: Extra inputs are not permitted"
    );

    let stream_error = messages(
        &app,
        json!({ "model": "mock-streamerror-2", "max_tokens": 5, "stream": true, "messages": user }),
    )
    .await;
    assert_eq!(stream_error.status, StatusCode::OK);
    let events = stream_error.anthropic_events();
    assert_eq!(deltas(&events, 0, "text"), " The quick");
    assert_eq!(
        events.last().unwrap(),
        &(
            "error".to_owned(),
            json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } })
        )
    );
    assert!(!names(&events).contains(&"message_stop"));
    let unstreamed = messages(
        &app,
        json!({ "model": "mock-streamerror-2", "max_tokens": 5, "messages": user }),
    )
    .await;
    assert_eq!(unstreamed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(unstreamed.json()["error"]["type"], "api_error");

    let stats = get(&app, "/stats").await.json();
    assert_eq!(stats["messages"], json!(10));
    assert_eq!(stats["requests"], json!(10));
}

#[tokio::test]
async fn messages_are_recorded_whole_and_refusals_stop_with_refusal() {
    let app = app();
    let raw = r#"{"model":"mock-refuse","max_tokens":100,"messages":[{"role":"user","content":"Hi"}],
                  "metadata":{"user_id":"u1"},"x_vendor":{"deep":[1,2.50]}}"#;
    let answer = post(&app, "/v1/messages", raw).await.json();
    assert_eq!(answer["stop_reason"], "refusal");
    assert_eq!(
        answer["content"][0]["text"],
        "I'm sorry, I can't help with that."
    );
    let last = get(&app, "/requests/last").await.json();
    assert_eq!(last["path"], "/v1/messages");
    assert_eq!(last["body"], serde_json::from_str::<Value>(raw).unwrap());

    let cut = messages(
        &app,
        json!({ "model": "mock", "max_tokens": 4, "messages": [{ "role": "user", "content": "Hi" }] }),
    )
    .await
    .json();
    assert_eq!(cut["stop_reason"], "max_tokens");
    assert_eq!(cut["usage"]["output_tokens"], json!(4));
}
