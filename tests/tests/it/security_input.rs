//! Hostile input over gRPC, to billing-svc and executor-svc: oversized messages, control characters in
//! names and descriptions (unicode text is fine), malformed executions, and a metering stream that opens
//! and then goes silent. Each gets a clear error and writes nothing. Amounts, page sizes and metering
//! protocol errors are covered in billing_ledger.rs and billing_metering.rs.

use std::time::Duration;

use proto::billing::v1 as pb;
use proto::billing::v1::meter_request::Message as In;
use proto::executor::v1 as ex;
use tests::in_process::Billing;
use tests::reliability::{row_count, text_request};
use tests::{Backend, Executor, MockModel, assert_ledger_invariants, authed};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

/// Bigger than the 1 MiB billing-svc decodes and the 4 MiB executor-svc decodes.
const OVERSIZED: usize = 5 * 1024 * 1024;

async fn create_key(billing: &Billing, name: &str) -> Result<pb::CreateKeyResponse, tonic::Status> {
    billing
        .admin()
        .await
        .create_key(authed(
            &billing.admin_key,
            pb::CreateKeyRequest {
                name: name.into(),
                key_type: pb::KeyType::Standard.into(),
                ..Default::default()
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn add_credits(billing: &Billing, id: &str, description: &str) -> Result<(), tonic::Status> {
    billing
        .admin()
        .await
        .add_credits(authed(
            &billing.admin_key,
            pb::AddCreditsRequest {
                api_key_id: id.into(),
                amount: "1".into(),
                description: Some(description.into()),
                ..Default::default()
            },
        ))
        .await
        .map(|_| ())
}

async fn oversized_messages_are_refused_and_write_nothing(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    let huge = "x".repeat(OVERSIZED);

    let key_refused = create_key(&billing, &huge).await.expect_err("too large");
    let credit_refused = add_credits(&billing, &id, &huge)
        .await
        .expect_err("too large");
    let open_refused = billing
        .open(&key, &huge, 10, 10)
        .await
        .err()
        .map(tests::grpc_status)
        .expect("too large");

    for status in [&key_refused, &credit_refused, &open_refused] {
        assert!(
            [
                Code::OutOfRange,
                Code::ResourceExhausted,
                Code::InvalidArgument
            ]
            .contains(&status.code()),
            "{status:?}"
        );
    }
    assert_eq!(row_count(&billing.database, "api_keys").await, 1);
    assert_eq!(row_count(&billing.database, "transactions").await, 0);
    assert_eq!(row_count(&billing.database, "holds").await, 0);
    assert_ledger_invariants(&billing.database).await;
}

async fn unicode_names_are_kept_and_control_characters_refused(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let name = "Équipe 東京 🚀 — ünïcødé";
    let created = create_key(&billing, name)
        .await
        .expect("unicode is a fine name");
    let id = created.api_key.expect("api key").id;
    add_credits(&billing, &id, "Crédit d'essai 東京 🚀")
        .await
        .expect("unicode description");

    let hostile = [
        "nul\u{0}byte",
        "new\nline",
        "carriage\rreturn",
        "escape \u{1b}[31mred",
        "delete\u{7f}",
        "c1 \u{85} control",
    ];
    for text in hostile {
        let refused = create_key(&billing, text).await.expect_err(text);
        assert_eq!(
            refused.code(),
            Code::InvalidArgument,
            "{text:?}: {refused:?}"
        );
        let refused = add_credits(&billing, &id, text).await.expect_err(text);
        assert_eq!(
            refused.code(),
            Code::InvalidArgument,
            "{text:?}: {refused:?}"
        );
    }

    let listed = billing
        .admin()
        .await
        .list_keys(authed(&billing.admin_key, pb::ListKeysRequest::default()))
        .await
        .expect("list keys")
        .into_inner();
    assert_eq!(listed.keys.len(), 1, "nothing else was written");
    assert_eq!(listed.keys[0].name, name, "kept exactly");
    assert_eq!(row_count(&billing.database, "transactions").await, 1);
    assert_ledger_invariants(&billing.database).await;
}

fn execution(
    key: &str,
    change: impl FnOnce(&mut ex::ExecuteRequest),
) -> tonic::Request<ex::ExecuteRequest> {
    let mut request = text_request("Hello", "mock", None);
    change(&mut request);
    authed(key, request)
}

/// `/execute`'s request with another chat request in it. The checks of `/execute`'s own body (prompt or
/// messages, their roles, a blank prompt) are the gateway's, before anything reaches executor-svc.
fn chat(key: &str, chat: serde_json::Value) -> tonic::Request<ex::ExecuteRequest> {
    execution(key, |r| r.chat_request_json = Some(chat.to_string()))
}

async fn the_executor_refuses_malformed_executions_before_the_model(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let model = MockModel::start().await;
    let spool = tempfile::tempdir().expect("spool dir");
    let executor = Executor::start(&billing, &model, spool.path(), &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&id, "10").await;
    let hello = serde_json::json!([{"role": "user", "content": "Hello"}]);

    let cases: Vec<(&str, tonic::Request<ex::ExecuteRequest>, &[Code])> = vec![
        (
            "no chat request",
            execution(&key, |r| r.chat_request_json = None),
            &[Code::InvalidArgument],
        ),
        (
            "no messages",
            chat(&key, serde_json::json!({"model": "mock"})),
            &[Code::InvalidArgument],
        ),
        (
            "too many messages",
            chat(
                &key,
                serde_json::json!({"model": "mock",
                    "messages": vec![serde_json::json!({"role": "user", "content": "Hi"}); 10_001]}),
            ),
            &[Code::InvalidArgument],
        ),
        (
            "zero max tokens",
            chat(
                &key,
                serde_json::json!({"model": "mock", "messages": hello, "max_completion_tokens": 0}),
            ),
            &[Code::InvalidArgument],
        ),
        (
            "several choices answered as text",
            chat(
                &key,
                serde_json::json!({"model": "mock", "messages": hello, "n": 2}),
            ),
            &[Code::InvalidArgument],
        ),
        (
            "model too long",
            chat(
                &key,
                serde_json::json!({"model": "m".repeat(201), "messages": hello}),
            ),
            &[Code::InvalidArgument],
        ),
        (
            "model with a control character",
            chat(
                &key,
                serde_json::json!({"model": "mock\u{0}", "messages": hello}),
            ),
            &[Code::InvalidArgument],
        ),
        (
            "workspace too long",
            execution(&key, |r| r.workspace_id = "w".repeat(129)),
            &[Code::InvalidArgument],
        ),
        (
            "workspace with a control character",
            execution(&key, |r| r.workspace_id = "ws\n1".into()),
            &[Code::InvalidArgument],
        ),
        (
            "empty idempotency key",
            execution(&key, |r| r.idempotency_key = Some(String::new())),
            &[Code::InvalidArgument],
        ),
        (
            "oversized prompt",
            execution(&key, |r| {
                *r = text_request(&"x".repeat(OVERSIZED), "mock", None);
            }),
            &[Code::OutOfRange, Code::ResourceExhausted],
        ),
        (
            "no key",
            tonic::Request::new(text_request("Hello", "mock", None)),
            &[Code::Unauthenticated],
        ),
        (
            "a bad key prefix",
            execution("sk-not-ours-0000", |_| ()),
            &[Code::Unauthenticated],
        ),
    ];
    for (case, request, codes) in cases {
        let refused = executor
            .client()
            .await
            .execute(request)
            .await
            .expect_err(case);
        assert!(codes.contains(&refused.code()), "{case}: {refused:?}");
    }

    assert_eq!(model.requests().await, 0, "the model was never called");
    assert_eq!(row_count(&billing.database, "usage_records").await, 0);
    assert_eq!(row_count(&billing.database, "holds").await, 0);
    assert_ledger_invariants(&billing.database).await;
}

async fn a_silent_meter_stream_is_ended_after_the_idle_timeout(backend: Backend) {
    let billing = Billing::start(backend, &["--meter-idle-timeout-secs", "1"]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&id, "10").await;

    // A client that sends nothing at all after connecting.
    let (_silent, nothing) = tokio::sync::mpsc::channel::<pb::MeterRequest>(1);
    let mut responses = billing
        .metering()
        .await
        .meter(authed(&billing.service_token, ReceiverStream::new(nothing)))
        .await
        .expect("the stream is accepted")
        .into_inner();
    let ended = tokio::time::timeout(Duration::from_secs(10), responses.message())
        .await
        .expect("billing-svc ends the stream by itself")
        .expect_err("with an error");
    assert_eq!(ended.code(), Code::DeadlineExceeded, "{ended:?}");

    // A client that opens, then goes silent: its hold stays for the TTL to release, like a disconnect.
    let (requests, receiver) = tokio::sync::mpsc::channel(1);
    requests
        .send(pb::MeterRequest {
            message: Some(In::Open(pb::MeterOpen {
                api_key: key.clone(),
                execution_id: "silent-1".into(),
                labels: Some(pb::Labels {
                    model: "mock".into(),
                    ..Default::default()
                }),
                estimated_input_tokens: 10,
                max_output_tokens: 100,
                ..Default::default()
            })),
        })
        .await
        .expect("queue open");
    let mut responses = billing
        .metering()
        .await
        .meter(authed(
            &billing.service_token,
            ReceiverStream::new(receiver),
        ))
        .await
        .expect("the stream is accepted")
        .into_inner();
    let opened = responses
        .message()
        .await
        .expect("opened")
        .expect("a message");
    assert!(opened.message.is_some());
    let ended = tokio::time::timeout(Duration::from_secs(10), responses.message())
        .await
        .expect("billing-svc ends the stream by itself")
        .expect_err("with an error");
    assert_eq!(ended.code(), Code::DeadlineExceeded, "{ended:?}");
    drop(requests);
    assert_eq!(row_count(&billing.database, "holds").await, 1);
    assert_eq!(row_count(&billing.database, "usage_records").await, 0);
    assert_ledger_invariants(&billing.database).await;
}

tests::backend_tests!(
    oversized_messages_are_refused_and_write_nothing,
    unicode_names_are_kept_and_control_characters_refused,
    the_executor_refuses_malformed_executions_before_the_model,
    a_silent_meter_stream_is_ended_after_the_idle_timeout,
);
