//! TLS on the gRPC listeners: billing-svc and executor-svc serve TLS with a certificate signed by a private
//! CA generated for the test, refuse plaintext and clients that do not trust that CA, and executor-svc
//! reaches billing-svc over `https://` with `TLS_CA_CERT`, billing an execution exactly as over plaintext, as
//! does the gateway reaching both services.
//! A certificate without its key stops the start with an error naming the missing variable.

use std::path::{Path, PathBuf};
use std::time::Duration;

use proto::billing::v1 as pb;
use proto::billing::v1::admin_service_client::AdminServiceClient;
use proto::executor::v1 as ex;
use proto::executor::v1::executor_service_client::ExecutorServiceClient;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tests::{
    Backend, Billing, Executor, MockModel, ServiceProcess, assert_ledger_invariants, authed,
    binary_path, gateway_answer,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// How long a refused connection may take to fail.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(10);

/// A private CA and a server certificate it signed for `localhost` and `127.0.0.1`, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
}

impl Pki {
    fn generate() -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "billing test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("self-signed CA");

        let server_key = KeyPair::generate().expect("server key");
        let mut server_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("server params");
        server_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let server_cert = server_params
            .signed_by(&server_key, &ca)
            .expect("server certificate");

        let dir = tempfile::tempdir().expect("temp dir");
        let pki = Pki {
            dir,
            ca_pem: ca.pem(),
        };
        std::fs::write(pki.ca_path(), &pki.ca_pem).expect("write CA");
        std::fs::write(pki.cert_path(), server_cert.pem()).expect("write certificate");
        std::fs::write(pki.key_path(), server_key.serialize_pem()).expect("write key");
        pki
    }

    fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn cert_path(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    fn key_path(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
}

fn decimal(text: &str) -> rust_decimal::Decimal {
    text.parse().unwrap_or_else(|_| panic!("decimal: {text:?}"))
}

fn text(path: &Path) -> String {
    path.display().to_string()
}

/// `https://localhost:<port>` of a service listening on `127.0.0.1:<port>`, the name its certificate has.
fn https_url(addr: &str) -> String {
    let port = addr.rsplit(':').next().expect("a port");
    format!("https://localhost:{port}")
}

/// A TLS channel to `url` trusting only `ca_pem`.
async fn tls_channel(url: &str, ca_pem: &str) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(url.to_string())?
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem)))?
        .connect()
        .await
}

/// Creates a standard key through AdminService over `channel`; returns its id and plain key.
async fn create_key(
    channel: Channel,
    admin_key: &str,
) -> Result<(String, String), Box<dyn std::error::Error>> {
    let response = AdminServiceClient::new(channel)
        .create_key(authed(
            admin_key,
            pb::CreateKeyRequest {
                name: "tls key".into(),
                key_type: pb::KeyType::Standard.into(),
                ..Default::default()
            },
        ))
        .await?
        .into_inner();
    Ok((response.api_key.ok_or("no api key")?.id, response.key))
}

async fn billing_with_tls(pki: &Pki) -> Billing {
    let cert = text(&pki.cert_path());
    let key = text(&pki.key_path());
    Billing::start(
        Backend::Sqlite,
        &["--tls-cert-path", &cert, "--tls-key-path", &key],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_over_tls_refuses_plaintext_and_untrusted_clients_and_serves_trusting_ones() {
    let pki = Pki::generate();
    let billing = billing_with_tls(&pki).await;
    let url = https_url(&billing.process.addr);

    // Plaintext HTTP/2 to a TLS listener: the handshake fails, nothing reaches AdminService.
    let plaintext = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        let channel = Endpoint::from_shared(billing.url())?.connect().await?;
        create_key(channel, &billing.admin_key).await
    })
    .await
    .expect("plaintext refused in time");
    assert!(plaintext.is_err(), "a plaintext client was served");

    // A TLS client trusting another CA rejects the server's certificate.
    let stranger = Pki::generate();
    let untrusted = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        let channel = tls_channel(&url, &stranger.ca_pem).await?;
        create_key(channel, &billing.admin_key).await
    })
    .await
    .expect("untrusted client refused in time");
    assert!(untrusted.is_err(), "a client trusting another CA connected");

    // A client trusting the private CA is served.
    let channel = tls_channel(&url, &pki.ca_pem)
        .await
        .expect("TLS connection trusting the CA");
    let (id, key) = create_key(channel, &billing.admin_key)
        .await
        .expect("create a key over TLS");
    assert!(!id.is_empty() && !key.is_empty());
    assert_ledger_invariants(&billing.database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_bills_over_tls_to_billing_and_serves_tls_itself() {
    let pki = Pki::generate();
    let billing = billing_with_tls(&pki).await;
    let billing_url = https_url(&billing.process.addr);
    let channel = tls_channel(&billing_url, &pki.ca_pem)
        .await
        .expect("TLS connection to billing-svc");
    let (id, key) = create_key(channel.clone(), &billing.admin_key)
        .await
        .expect("create a key over TLS");
    AdminServiceClient::new(channel)
        .add_credits(authed(
            &billing.admin_key,
            pb::AddCreditsRequest {
                api_key_id: id.clone(),
                amount: "10".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("add credits over TLS");

    let model = MockModel::start().await;
    let spool = tempfile::tempdir().expect("spool dir");
    let (ca, cert, tls_key) = (
        text(&pki.ca_path()),
        text(&pki.cert_path()),
        text(&pki.key_path()),
    );
    let executor = Executor::start(
        &billing,
        &model,
        spool.path(),
        &[
            ("BILLING_URL", billing_url.as_str()),
            ("TLS_CA_CERT", ca.as_str()),
            ("EXECUTOR_TLS_CERT", cert.as_str()),
            ("EXECUTOR_TLS_KEY", tls_key.as_str()),
        ],
    )
    .await;

    let channel = tls_channel(&https_url(&executor.process.addr), &pki.ca_pem)
        .await
        .expect("TLS connection to executor-svc");
    let response = ExecutorServiceClient::new(channel)
        .execute(authed(
            &key,
            ex::ExecuteRequest {
                workspace_id: "ws-1".into(),
                session_id: "session-1".into(),
                endpoint: "/execute".into(),
                ..tests::reliability::text_request(
                    "Summarise the quarterly report.",
                    "mock-usage-6548-108",
                    None,
                )
            },
        ))
        .await
        .expect("execute over TLS")
        .into_inner();

    // The same charge as over plaintext (see executor.rs), settled through the TLS Meter stream.
    let billing_block = response.billing.as_ref().expect("billing block");
    assert_eq!(billing_block.status(), ex::BillingStatus::Settled);
    assert_eq!(
        decimal(billing_block.total_spent.as_deref().expect("total spent")),
        decimal("0.10308")
    );
    assert_eq!(
        decimal(billing_block.balance_after.as_deref().expect("balance")),
        decimal("9.89692")
    );
    let mut connection = billing
        .database
        .connect()
        .await
        .expect("connect to the test database");
    let usage_records: i64 =
        sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM usage_records")
            .fetch_one(&mut connection)
            .await
            .expect("count usage records");
    assert_eq!(usage_records, 1);

    // The gateway reaches both over `https://` with the same CA: ready, and a REST execution is billed.
    let executor_url = https_url(&executor.process.addr);
    let gateway = ServiceProcess::start(
        tests::launcher(),
        "gateway",
        &["--listen", "127.0.0.1:0"],
        &[
            ("BILLING_URL", billing_url.as_str()),
            ("EXECUTOR_URL", executor_url.as_str()),
            ("TLS_CA_CERT", ca.as_str()),
        ],
    )
    .await
    .expect("start the gateway");
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client");
    let ready = gateway_answer(
        http.get(format!("{}/readyz", gateway.url()))
            .send()
            .await
            .expect("GET /readyz"),
    )
    .await;
    assert_eq!(ready.status, reqwest::StatusCode::OK, "{}", ready.text);
    let run = gateway_answer(
        http.post(format!("{}/execute", gateway.url()))
            .bearer_auth(&key)
            .json(&serde_json::json!({"prompt": "Summarise.", "model": "mock-usage-6548-108"}))
            .send()
            .await
            .expect("POST /execute"),
    )
    .await;
    assert_eq!(run.status, reqwest::StatusCode::OK, "{}", run.text);
    assert!(
        run.text
            .contains(r#""billing":{"balanceAfter":9.79384,"totalSpent":0.20616}"#),
        "{}",
        run.text
    );
    assert_ledger_invariants(&billing.database).await;
}

#[test]
fn a_certificate_without_its_key_stops_the_start_naming_the_missing_variable() {
    let pki = Pki::generate();
    let cases = [
        ("billing-svc", "BILLING_TLS_CERT", "BILLING_TLS_KEY"),
        ("executor-svc", "EXECUTOR_TLS_CERT", "EXECUTOR_TLS_KEY"),
    ];
    for (binary, cert_var, key_var) in cases {
        for (set, missing) in [(cert_var, key_var), (key_var, cert_var)] {
            let output = std::process::Command::new(binary_path(binary))
                .env_clear()
                .env("ADMIN_API_KEY", "admin-0123456789abcdef")
                .env("SERVICE_TOKEN", "svc-0123456789abcdef")
                .env("DATABASE_URL", "sqlite::memory:")
                .env("BILLING_LISTEN", "127.0.0.1:0")
                .env("EXECUTOR_LISTEN", "127.0.0.1:0")
                .env("EXECUTOR_SPOOL_PATH", text(&pki.dir.path().join("spool")))
                .env(set, pki.cert_path())
                .output()
                .unwrap_or_else(|e| panic!("run {binary}: {e}"));
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                !output.status.success() && stderr.contains(missing),
                "{binary} with only {set} set: {:?}, stderr: {stderr}",
                output.status
            );
        }
    }
}
