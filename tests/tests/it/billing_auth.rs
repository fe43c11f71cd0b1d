//! billing-svc authentication: who may call what, health and reflection, and no plain key in the logs.

use std::time::Duration;

use proto::billing::v1 as pb;
use tests::in_process::Billing;
use tests::{Backend, BillingOf, Service, TestDatabase, authed, eventually};
use tonic::Code;

/// Sends GetAccount with the given `authorization` value (or none).
async fn get_account<S: Service>(
    billing: &BillingOf<S>,
    authorization: Option<&str>,
) -> Result<pb::Account, tonic::Status> {
    let mut request = tonic::Request::new(pb::GetAccountRequest {});
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.parse().expect("ascii"));
    }
    billing
        .account()
        .await
        .get_account(request)
        .await
        .map(tonic::Response::into_inner)
}

async fn customer_keys_are_checked(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (revoked_id, revoked) = billing.create_key(pb::KeyType::Standard).await;
    let (_, valid) = billing.create_key(pb::KeyType::Standard).await;
    billing
        .admin()
        .await
        .revoke_key(authed(
            &billing.admin_key,
            pb::RevokeKeyRequest { id: revoked_id },
        ))
        .await
        .expect("revoke");
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        + Duration::from_secs(1);
    let expiring = billing
        .admin()
        .await
        .create_key(authed(
            &billing.admin_key,
            pb::CreateKeyRequest {
                name: "short-lived".into(),
                key_type: pb::KeyType::Standard.into(),
                prefix: None,
                expires_at: Some(prost_types::Timestamp {
                    seconds: i64::try_from(soon.as_secs()).expect("secs"),
                    nanos: i32::try_from(soon.subsec_nanos()).expect("nanos"),
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("create expiring key")
        .into_inner()
        .key;
    assert!(
        get_account(&billing, Some(&format!("Bearer {expiring}")))
            .await
            .is_ok(),
        "valid until it expires"
    );

    let unknown = format!("tb_prod_{}", "0".repeat(64));
    let cases = [
        (None, "no key"),
        (Some("Basic abc".to_string()), "not a bearer"),
        (Some("Bearer".to_string()), "bearer without a key"),
        (Some(format!("Bearer {unknown}")), "unknown key"),
        (Some(format!("Bearer {revoked}")), "revoked key"),
        (
            Some(format!("Bearer {}", billing.admin_key)),
            "the admin key is not a customer key",
        ),
        (
            Some(format!("Bearer {}", billing.service_token)),
            "the service token is not a customer key",
        ),
    ];
    for (authorization, why) in cases {
        let status = get_account(&billing, authorization.as_deref())
            .await
            .expect_err(why);
        assert_eq!(status.code(), Code::Unauthenticated, "{why}: {status:?}");
    }
    let expired = eventually(Duration::from_secs(5), || async {
        get_account(&billing, Some(&format!("Bearer {expiring}")))
            .await
            .is_err_and(|status| status.code() == Code::Unauthenticated)
    })
    .await;
    assert!(expired, "an expired key is refused");
    assert!(
        get_account(&billing, Some(&format!("bearer {valid}")))
            .await
            .is_ok(),
        "the scheme is case-insensitive"
    );
}

/// billing-svc keeps authenticated keys in memory. A key revoked through another billing-svc process on the
/// same database must still be refused on the next execution by the process that has it cached.
async fn a_key_revoked_elsewhere_cannot_open_an_execution(backend: Backend) {
    // Processes, as replicas are deployed: each has its own cache of keys.
    let first = tests::Billing::start(backend, &[]).await;
    let (id, key) = first.create_key(pb::KeyType::Standard).await;
    first.add_credits(&id, "10").await;
    let warm = first
        .open(&key, "exec-cached", 100, 50)
        .await
        .expect("open");
    warm.close(100, 50, pb::UsageStatus::Completed)
        .await
        .expect("settle");
    let ledger = || async {
        let mut connection = first
            .database
            .connect()
            .await
            .expect("connect to the test database");
        sqlx::query_as::<_, (i64, i64)>(
            "SELECT (SELECT COUNT(*) FROM holds), (SELECT credits_balance FROM billing_accounts)",
        )
        .fetch_one(&mut connection)
        .await
        .expect("read the ledger")
    };
    let (_, balance) = ledger().await;

    let second = tests::Billing::start_with(
        TestDatabase::existing(backend, first.database.url.clone()),
        first.admin_key.clone(),
        first.service_token.clone(),
        &[],
    )
    .await;
    second
        .admin()
        .await
        .revoke_key(authed(&second.admin_key, pb::RevokeKeyRequest { id }))
        .await
        .expect("revoke through the second process");

    let Err(refused) = first.open(&key, "exec-after-revocation", 100, 50).await else {
        panic!("a revoked key opened an execution");
    };
    let refused = tests::grpc_status(refused);
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let (holds, balance_now) = ledger().await;
    assert_eq!(holds, 0, "no hold was placed");
    assert_eq!(balance_now, balance, "the balance did not move");
    tests::assert_ledger_invariants(&first.database).await;
}

async fn admin_and_metering_refuse_customer_keys(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&id, "10").await;

    let admin_with_customer = billing
        .admin()
        .await
        .add_credits(authed(
            &key,
            pb::AddCreditsRequest {
                api_key_id: id.clone(),
                amount: "100".into(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("a customer key on AdminService");
    let admin_with_unknown = billing
        .admin()
        .await
        .list_keys(authed("not-the-admin-key", pb::ListKeysRequest::default()))
        .await
        .expect_err("an unknown key on AdminService");
    let metering_with_customer = tests::MeterSession::open(
        billing.metering().await,
        &tests::bearer(&key),
        pb::MeterOpen {
            api_key: key.clone(),
            execution_id: "e".into(),
            labels: Some(pb::Labels {
                model: "m".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await
    .err()
    .map(tests::grpc_status)
    .expect("a customer key on MeteringService");
    let settle_with_customer = billing
        .metering()
        .await
        .settle(authed(
            &key,
            pb::SettleRequest {
                api_key_id: id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("a customer key on Settle");
    let settle_with_admin = billing
        .metering()
        .await
        .settle(authed(
            &billing.admin_key,
            pb::SettleRequest {
                api_key_id: id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("the admin key on Settle");

    assert_eq!(admin_with_customer.code(), Code::PermissionDenied);
    assert_eq!(admin_with_unknown.code(), Code::Unauthenticated);
    assert_eq!(metering_with_customer.code(), Code::PermissionDenied);
    assert_eq!(settle_with_customer.code(), Code::PermissionDenied);
    assert_eq!(settle_with_admin.code(), Code::PermissionDenied);
    assert_eq!(billing.account_of(&key).await.credits_balance, "10");
}

async fn a_key_sees_only_its_own_records(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (a_id, a) = billing.create_key(pb::KeyType::Standard).await;
    let (b_id, b) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&a_id, "1").await;
    billing.add_credits(&b_id, "2").await;
    let session = billing.open(&b, "exec-of-b", 100, 0).await.expect("open");
    session
        .close(100, 10, pb::UsageStatus::Completed)
        .await
        .expect("close");
    let mut account = billing.account().await;

    let a_usage = account
        .list_usage(authed(&a, pb::ListUsageRequest::default()))
        .await
        .expect("usage")
        .into_inner();
    let a_transactions = account
        .list_transactions(authed(&a, pb::ListTransactionsRequest::default()))
        .await
        .expect("tx")
        .into_inner();
    let a_account = account
        .get_account(authed(&a, pb::GetAccountRequest {}))
        .await
        .expect("account")
        .into_inner();
    let b_cursor_from_a = account
        .list_usage(authed(
            &a,
            pb::ListUsageRequest {
                cursor: Some("999999".into()),
                ..Default::default()
            },
        ))
        .await
        .expect("a cursor only pages the caller's own records")
        .into_inner();

    assert!(a_usage.records.is_empty());
    assert_eq!(a_transactions.transactions.len(), 1);
    assert!(
        a_transactions
            .transactions
            .iter()
            .all(|t| t.api_key_id == a_id)
    );
    assert_eq!(
        (
            a_account.api_key_id.as_str(),
            a_account.credits_balance.as_str()
        ),
        (a_id.as_str(), "1")
    );
    assert!(b_cursor_from_a.records.is_empty());
}

async fn health_and_reflection_are_served(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(billing.channel().await);

    let overall = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health")
        .into_inner();
    let metering = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "billing.v1.MeteringService".into(),
        })
        .await
        .expect("health of a service")
        .into_inner();

    assert_eq!(
        overall.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    assert_eq!(
        metering.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    for service in [
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(
            reflection_lists(&billing, service).await,
            "{service} lists billing.v1.AdminService"
        );
    }
}

/// Asks a reflection service for the list of services over a raw HTTP/2 gRPC call.
async fn reflection_lists(billing: &Billing, service: &str) -> bool {
    // ServerReflectionRequest { list_services: "" } is field 7 (string), empty: bytes 0x3a 0x00.
    let request: Vec<u8> = vec![0x3a, 0x00];
    let mut client = tonic::client::Grpc::new(billing.channel().await);
    client.ready().await.expect("ready");
    let path: tonic::codegen::http::uri::PathAndQuery = format!("/{service}/ServerReflectionInfo")
        .parse()
        .expect("path");
    let codec = RawCodec;
    let response = client
        .streaming(
            tonic::Request::new(futures::stream::iter([request])),
            path,
            codec,
        )
        .await
        .expect("reflection call");
    let mut stream = response.into_inner();
    let message = stream
        .message()
        .await
        .expect("answer")
        .expect("one message");
    String::from_utf8_lossy(&message).contains("billing.v1.AdminService")
}

/// A codec of raw message bytes, to call reflection without its generated client.
#[derive(Clone, Copy)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf;
        let mut bytes = vec![0; src.remaining()];
        src.copy_to_slice(&mut bytes);
        Ok(Some(bytes))
    }
}

async fn plain_keys_never_reach_the_logs(backend: Backend) {
    // A process: its logs are read.
    let billing = tests::Billing::start(backend, &[]).await;
    let (id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&id, "1").await;
    let session = billing.open(&key, "exec-log", 10, 0).await.expect("open");
    session
        .close(10, 1, pb::UsageStatus::Completed)
        .await
        .expect("close");
    let _ = get_account(&billing, Some("Bearer tb_prod_wrong")).await;

    let logs = billing.process.logs().join("\n");

    assert!(logs.contains("key created"), "the log is captured");
    assert!(!logs.contains(&key[8..]), "a plain key appears in the logs");
    assert!(
        !logs.contains(&billing.admin_key),
        "the admin key appears in the logs"
    );
}

tests::backend_tests!(
    customer_keys_are_checked,
    admin_and_metering_refuse_customer_keys,
    a_key_revoked_elsewhere_cannot_open_an_execution,
    a_key_sees_only_its_own_records,
    health_and_reflection_are_served,
    plain_keys_never_reach_the_logs,
);
