//! The HTTP surface without downstreams: both services point at a closed port, so these tests cover what
//! the gateway decides alone (routing, body and query validation, error shapes, request ids, operations
//! routes) and how an unreachable service is reported.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use clap::Parser;
use gateway::config::Config;
use serde_json::Value;
use tower::ServiceExt;

/// Nothing listens on port 1: every gRPC call fails with UNAVAILABLE at once.
const CLOSED: &str = "http://127.0.0.1:1";

fn app() -> Router {
    let config = Config::try_parse_from([
        "gateway",
        "--billing-url",
        CLOSED,
        "--executor-url",
        CLOSED,
        "--max-body-bytes",
        "4096",
    ])
    .unwrap();
    gateway::startup::app(&config).unwrap()
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Answer {
        status,
        headers,
        body,
    }
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri)
        .header("authorization", "Bearer tb_prod_x")
        .body(Body::empty())
        .unwrap()
}

fn post_json(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header("authorization", "Bearer admin")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn assert_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status.as_u16(), status, "{:?}", answer.body);
    assert_eq!(answer.body["code"], code, "{:?}", answer.body);
    assert!(answer.body["error"].is_string(), "{:?}", answer.body);
    assert!(answer.body["details"].is_object(), "{:?}", answer.body);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = app();
    assert_error(&send(&app, get("/nope")).await, 404, "route_not_found");
    let delete = Request::delete("/billing/account")
        .body(Body::empty())
        .unwrap();
    assert_error(&send(&app, delete).await, 405, "method_not_allowed");
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = app();
    let with_id = Request::get("/healthz")
        .header("x-request-id", "req-123")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, with_id).await.headers["x-request-id"], "req-123");
    let generated = send(&app, get("/healthz")).await;
    let id = generated.headers["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    let unfit = Request::get("/healthz")
        .header("x-request-id", "a b")
        .body(Body::empty())
        .unwrap();
    assert_ne!(send(&app, unfit).await.headers["x-request-id"], "a b");
}

#[tokio::test]
async fn bodies_are_refused_with_the_error_shape() {
    let app = app();
    let cases = [
        (
            post_json(
                "/billing/admin/9b83c80d-87d6-4799-988d-59440610c5b8/credits",
                "{not json",
            ),
            400,
            "malformed_json",
            "syntax",
        ),
        (
            post_json(
                "/billing/admin/9b83c80d-87d6-4799-988d-59440610c5b8/credits",
                r#"{"amount": true}"#,
            ),
            422,
            "invalid_body",
            "amount of the wrong type",
        ),
        (
            post_json(
                "/billing/admin/9b83c80d-87d6-4799-988d-59440610c5b8/credits",
                r#"{"amount": 0.1234567891}"#,
            ),
            422,
            "invalid_body",
            "10 decimals",
        ),
        (
            post_json(
                "/billing/admin/9b83c80d-87d6-4799-988d-59440610c5b8/credits",
                r#"{"amount": "0.0000000001"}"#,
            ),
            422,
            "invalid_body",
            "10 decimals in a string",
        ),
        (
            post_json(
                "/billing/admin/9b83c80d-87d6-4799-988d-59440610c5b8/credits",
                r#"{"amount": 1, "extra": 1}"#,
            ),
            422,
            "invalid_body",
            "unknown field",
        ),
        (
            post_json(
                "/billing/admin/9b83c80d-87d6-4799-988d-59440610c5b8/limits",
                r#"{"dailyLimit": 1}"#,
            ),
            422,
            "invalid_body",
            "monthlyLimit missing",
        ),
        (
            post_json("/admin/keys", r#"{"name": "a", "keyType": "gold"}"#),
            422,
            "invalid_body",
            "unknown key type",
        ),
        (
            post_json("/execute", r#"{"prompt": "x", "max_tokens": 5}"#),
            422,
            "invalid_body",
            "snake_case field",
        ),
        (
            Request::post("/admin/keys")
                .header("authorization", "Bearer admin")
                .header("content-type", "text/plain")
                .body(Body::from("{}"))
                .unwrap(),
            415,
            "unsupported_media_type",
            "text/plain",
        ),
        (
            post_json(
                "/execute",
                &format!(r#"{{"prompt": "{}"}}"#, "x".repeat(5000)),
            ),
            413,
            "payload_too_large",
            "over the limit",
        ),
    ];
    for (request, status, code, why) in cases {
        let answer = send(&app, request).await;
        assert_eq!(answer.status.as_u16(), status, "{why}: {:?}", answer.body);
        assert_error(&answer, status, code);
    }
    let answer = send(
        &app,
        post_json(
            "/billing/admin/9b83c80d-87d6-4799-988d-59440610c5b8/credits",
            r#"{"amount": 0.1234567891}"#,
        ),
    )
    .await;
    let message = answer.body["details"]["message"].as_str().unwrap();
    assert!(message.contains("more than 9 decimal places"), "{message}");
}

#[tokio::test]
async fn bad_query_values_are_400_with_a_clear_message() {
    let app = app();
    let cases = [
        ("/billing/usage?from=yesterday", "RFC 3339"),
        ("/billing/stats?to=2025-13-01T00:00:00Z", "RFC 3339"),
        ("/billing/usage?limit=0", "between 1 and 1000"),
        ("/billing/usage?limit=5000", "between 1 and 1000"),
        ("/billing/usage?limit=ten", "limit"),
        ("/billing/transactions?type=gift", "gift"),
        (
            "/billing/admin/9b83c80d-87d6-4799-988d-59440610c5b8/stats?from=1",
            "RFC 3339",
        ),
    ];
    for (uri, expected) in cases {
        let answer = send(&app, get(uri)).await;
        assert_error(&answer, 400, "invalid_request");
        let message = answer.body["details"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{uri}: {message}");
    }
}

#[tokio::test]
async fn an_unreachable_downstream_is_503_naming_it() {
    let app = app();
    let answer = send(&app, get("/billing/account")).await;
    assert_error(&answer, 503, "service_unavailable");
    assert_eq!(answer.body["details"]["service"], "billing");
    let answer = send(&app, post_json("/execute", r#"{"prompt": "hi"}"#)).await;
    assert_error(&answer, 503, "service_unavailable");
    assert_eq!(answer.body["details"]["service"], "executor");
}

#[tokio::test]
async fn a_non_ascii_authorization_is_401() {
    let app = app();
    let request = Request::get("/billing/account")
        .header(
            "authorization",
            axum::http::HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
        )
        .body(Body::empty())
        .unwrap();
    assert_error(&send(&app, request).await, 401, "unauthorized");
}

#[tokio::test]
async fn openai_errors_use_openai_shape() {
    let app = app();
    let answer = send(&app, post_json("/v1/chat/completions", "{oops")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body["error"]["type"], "invalid_request_error");
    assert!(answer.body["error"]["message"].is_string());
    assert!(answer.body["error"].get("param").is_some());
    let answer = send(
        &app,
        post_json(
            "/v1/chat/completions",
            r#"{"model": "m", "messages": [{"role": "user", "content": "hi"}]}"#,
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body["error"]["type"], "api_error");
    let answer = send(
        &app,
        post_json(
            "/v1/chat/completions",
            r#"{"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}"#,
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body["error"]["code"], "invalid_request");
}

#[tokio::test]
async fn operations_routes_answer() {
    let app = app();
    let health = send(&app, get("/healthz")).await;
    assert_eq!(
        (health.status, health.body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );

    let ready = send(&app, get("/readyz")).await;
    assert_error(&ready, 503, "not_ready");
    assert_eq!(ready.body["details"]["billing"], "unreachable");
    assert_eq!(ready.body["details"]["executor"], "unreachable");

    let document = send(&app, get("/openapi.json")).await;
    assert_eq!(document.status, StatusCode::OK);
    assert!(document.body["openapi"].as_str().unwrap().starts_with("3."));

    let metrics = send(&app, get("/metrics")).await;
    let text = metrics.body.as_str().unwrap();
    assert!(
        metrics.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(text.contains(r#"route="/healthz",status="200""#), "{text}");
    assert!(text.contains(r#"route="/readyz",status="503""#), "{text}");
}

#[tokio::test]
async fn a_missing_key_is_401_before_the_input_is_read() {
    let app = app();
    let bad_query = Request::get("/billing/usage?limit=0")
        .body(Body::empty())
        .unwrap();
    assert_error(&send(&app, bad_query).await, 401, "unauthorized");
    let bad_body = Request::post("/execute")
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    assert_error(&send(&app, bad_body).await, 401, "unauthorized");
    let openai = Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"n": 0, "messages": []}"#))
        .unwrap();
    let answer = send(&app, openai).await;
    assert_eq!(answer.status.as_u16(), 401, "{:?}", answer.body);
    assert_eq!(answer.body["error"]["code"], "invalid_api_key");
}
