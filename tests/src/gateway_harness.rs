//! The whole stack for the gateway's end-to-end tests: billing-svc on a fresh database, mock-model,
//! executor-svc metered by that billing-svc and calling that mock, and the gateway in front of both, each
//! on a free loopback port, as a real process here ([`crate::Stack`]) or in the test's process
//! ([`crate::in_process::Stack`]). Plus a small REST client and an SSE reader.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::{Backend, Billing, BillingOf, Service, ServiceProcess, Stack, launcher};

/// A running stack, its services run as `S`. Every process is killed when it is dropped (an in-process
/// service is stopped).
pub struct StackOf<S> {
    pub billing: BillingOf<S>,
    pub mock: S,
    pub executor: S,
    pub gateway: S,
    pub http: reqwest::Client,
    /// The executor's settlement spool, private to this stack.
    pub(crate) _spool: tempfile::TempDir,
}

/// executor-svc's environment in a stack: metered by `billing`, calling the chat completions API of the
/// mock model at `mock_url`, spooling into `spool_dir`; `extra` comes last, so it wins.
pub(crate) fn executor_envs<S: Service>(
    billing: &BillingOf<S>,
    mock_url: &str,
    spool_dir: &Path,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut envs = vec![
        ("BILLING_URL".to_string(), billing.url()),
        ("SERVICE_TOKEN".to_string(), billing.service_token.clone()),
        ("OPENAI_BASE_URL".to_string(), format!("{mock_url}/v1")),
        (
            "EXECUTOR_SPOOL_PATH".to_string(),
            spool_dir.join("spool").display().to_string(),
        ),
    ];
    envs.extend(owned(extra));
    envs
}

/// The gateway's environment in a stack: in front of `billing` and the executor at `executor_url`;
/// `extra` comes last, so it wins.
pub(crate) fn gateway_envs<S: Service>(
    billing: &BillingOf<S>,
    executor_url: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut envs = vec![
        ("BILLING_URL".to_string(), billing.url()),
        ("EXECUTOR_URL".to_string(), executor_url.to_string()),
    ];
    envs.extend(owned(extra));
    envs
}

fn owned(envs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
    envs.iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
}

/// Borrows owned environment pairs the way [`ServiceProcess::start`] takes them.
fn borrowed(envs: &[(String, String)]) -> Vec<(&str, &str)> {
    envs.iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

/// The HTTP client of a stack (no proxy: everything is on loopback).
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
}

/// The API the stack's mock model is spoken to in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpstreamApi {
    /// Chat completions (`OPENAI_BASE_URL`), the devstack's setup.
    OpenAi,
    /// Anthropic's Messages API, natively.
    Anthropic,
}

/// One HTTP answer, its body kept as text (to check how numbers are written) and parsed.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Answer {
    /// The `x-request-id` response header.
    pub fn request_id(&self) -> &str {
        self.headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The server-sent events of a streamed answer.
    pub fn events(&self) -> Vec<SseEvent> {
        parse_sse(&self.text)
    }

    /// Panics unless the answer is `status` marked `x-should-retry: false`: a model API's refusal that
    /// repeating cannot change, on which SDKs and agents stop at once.
    pub fn assert_final(&self, status: u16) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(
            self.header("x-should-retry"),
            Some("false"),
            "a {status} is final: {:?}",
            self.headers
        );
    }
}

/// One server-sent event: its `event:` name (None for unnamed events) and its `data:`.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data {:?} is not JSON: {e}", self.data))
    }
}

/// Splits an SSE body into events; comment lines (keep-alives) are skipped.
pub fn parse_sse(text: &str) -> Vec<SseEvent> {
    let mut events = Vec::new();
    for block in text.split("\n\n") {
        let mut event = None;
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines() {
            if let Some(name) = line.strip_prefix("event:") {
                event = Some(name.trim().to_string());
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push(value.strip_prefix(' ').unwrap_or(value));
            }
        }
        if !data.is_empty() {
            events.push(SseEvent {
                event,
                data: data.join("\n"),
            });
        }
    }
    events
}

impl Stack {
    pub async fn start(backend: Backend) -> Stack {
        Self::start_on(Billing::start(backend, &[]).await, &[]).await
    }

    /// The rest of the stack in front of a running billing-svc, the gateway with `gateway_envs` added.
    pub async fn start_on(billing: Billing, gateway_envs: &[(&str, &str)]) -> Stack {
        Self::start_with(billing, &[], gateway_envs).await
    }

    /// [`Stack::start_on`] with `executor_envs` added to executor-svc's environment.
    pub async fn start_with(
        billing: Billing,
        executor_envs: &[(&str, &str)],
        gateway_envs: &[(&str, &str)],
    ) -> Stack {
        Self::start_full(billing, UpstreamApi::OpenAi, executor_envs, gateway_envs).await
    }

    /// The stack with its mock model connected as a native Anthropic provider (`kind = "anthropic"` in a
    /// `PROVIDERS_FILE` routing every model to it, as PROVIDERS.md shows), its key `sk-ant-mock` in
    /// `MOCK_ANTHROPIC_API_KEY`.
    pub async fn start_anthropic(backend: Backend) -> Stack {
        let billing = Billing::start(backend, &[]).await;
        Self::start_full(billing, UpstreamApi::Anthropic, &[], &[]).await
    }

    async fn start_full(
        billing: Billing,
        upstream: UpstreamApi,
        executor_envs: &[(&str, &str)],
        gateway_envs: &[(&str, &str)],
    ) -> Stack {
        let mock = ServiceProcess::start(
            launcher(),
            "mock-model",
            &[],
            &[("MOCK_MODEL_LISTEN", "127.0.0.1:0")],
        )
        .await
        .expect("start mock-model");
        let spool = tempfile::tempdir().expect("spool dir");
        let mut upstream_envs = Vec::new();
        let providers_path = spool.path().join("providers.toml").display().to_string();
        if upstream == UpstreamApi::Anthropic {
            let file = format!(
                "[[providers]]\nname = \"anthropic\"\nkind = \"anthropic\"\nbase_url = \"{}\"\n\
                 api_key_env = \"MOCK_ANTHROPIC_API_KEY\"\n\n[[routes]]\nmodel = \"*\"\nproviders = [\"anthropic\"]\n",
                mock.url()
            );
            std::fs::write(&providers_path, file).expect("write the providers file");
            upstream_envs.push(("PROVIDERS_FILE", providers_path.as_str()));
            upstream_envs.push(("MOCK_ANTHROPIC_API_KEY", "sk-ant-mock"));
        }
        upstream_envs.extend_from_slice(executor_envs);
        let envs = self::executor_envs(&billing, &mock.url(), spool.path(), &upstream_envs);
        let executor = ServiceProcess::start(
            launcher(),
            "executor-svc",
            &["--listen", "127.0.0.1:0"],
            &borrowed(&envs),
        )
        .await
        .expect("start executor-svc");
        let envs = self::gateway_envs(&billing, &executor.url(), gateway_envs);
        let gateway = ServiceProcess::start(
            launcher(),
            "gateway",
            &["--listen", "127.0.0.1:0"],
            &borrowed(&envs),
        )
        .await
        .expect("start gateway");
        Stack {
            billing,
            mock,
            executor,
            gateway,
            http: http_client(),
            _spool: spool,
        }
    }
}

impl<S: Service> StackOf<S> {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway.url())
    }

    /// Sends a request with an optional bearer and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self.http.request(method, self.url(path));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        answer(request.send().await.expect("send")).await
    }

    pub async fn get(&self, path: &str, bearer: &str) -> Answer {
        self.call(Method::GET, path, Some(bearer), None).await
    }

    pub async fn post(&self, path: &str, bearer: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(bearer), Some(body))
            .await
    }

    /// The body of the last request the mock model received (`GET /requests/last`).
    pub async fn last_upstream_request(&self) -> Value {
        self.last_upstream_call().await["body"].clone()
    }

    /// The last request the mock model received: `{"path", "headers", "body"}`.
    pub async fn last_upstream_call(&self) -> Value {
        let recorded: Value = self
            .http
            .get(format!("{}/requests/last", self.mock.url()))
            .send()
            .await
            .expect("GET /requests/last")
            .json()
            .await
            .expect("a recorded request");
        recorded
    }

    /// Creates a key through `POST /admin/keys`; returns `(id, plain key)`.
    pub async fn create_key(&self, name: &str, key_type: &str) -> (String, String) {
        let created = self
            .post(
                "/admin/keys",
                &self.billing.admin_key,
                serde_json::json!({"name": name, "keyType": key_type}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        (
            created.json["id"].as_str().unwrap().to_string(),
            created.json["key"].as_str().unwrap().to_string(),
        )
    }

    /// Adds credits through `POST /billing/admin/{id}/credits`; `amount` is written into the JSON as is.
    pub async fn add_credits(&self, id: &str, amount: Value) -> Answer {
        let answer = self
            .post(
                &format!("/billing/admin/{id}/credits"),
                &self.billing.admin_key,
                serde_json::json!({"amount": amount}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        answer
    }

    /// A new standard key holding `credit` USD (a decimal string, written into the JSON exactly).
    pub async fn funded_key(&self, name: &str, credit: &str) -> String {
        let (id, key) = self.create_key(name, "standard").await;
        let amount: Value = serde_json::from_str(credit).expect("a decimal amount");
        self.add_credits(&id, amount).await;
        key
    }
}

/// What a call costs at the default prices (BILLING.md, "Rounding and the cost of a call": 0.015 and 0.045
/// USD per 1,000 input / output tokens), exactly.
pub fn default_cost(input_tokens: u64, output_tokens: u64) -> rust_decimal::Decimal {
    use rust_decimal::Decimal;
    (Decimal::from(input_tokens) * Decimal::new(15, 3)
        + Decimal::from(output_tokens) * Decimal::new(45, 3))
        / Decimal::from(1000)
}

/// Reads a whole response (an SSE stream ends when the execution does).
pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        json,
    }
}
