//! The chaos soak: three replicas of each service on one PostgreSQL database, load on a few keys with
//! small credit topped up as it runs, a loop that kills a random process with SIGKILL and starts it again
//! on its address every second or two, and the operator's webhook receiver going down and up. At the end
//! every answered execution is charged exactly once for the tokens its client saw, nothing is overspent
//! beyond the overage the ledger recorded, every acknowledged credit is there, every committed event was
//! delivered to the receiver, no hold is left and the audit holds. Short in CI; `RELIABILITY_LONG=1`
//! soaks for five minutes.
//!
//! The wiring crosses the replicas as a load balancer would: gateway `i` sends executions to executor
//! `i` and everything else to billing-svc `i + 1`; executor `i` meters on billing-svc `i`. Each executor
//! has its own spool folder, kept across its restarts.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tests::reliability::{scaled, settled_tokens};
use tests::replica::Replica;
use tests::webhook_receiver::WebhookReceiver;
use tests::{Backend, MockModel, TestDatabase, assert_ledger_invariants, eventually, parse_sse};

const REPLICAS: usize = 3;
const KEYS: usize = 3;
/// Concurrent clients.
const WORKERS: usize = 6;
/// 8 prompt + 20 output tokens = 0.00102 USD, about 200 ms.
const MODEL: &str = "mock-tokens-20-latency-10";
/// What a key starts with, and what each top-up adds: a key runs dry within seconds, so 402s, holds
/// refused and depletion events happen all along.
const CREDIT: &str = "0.03";
const TOP_UP: &str = "0.01";
/// A request that takes longer is a hang, which the soak reports as a failure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Most requests one client sends (a bound on the load loop besides its duration).
const MAX_ROUNDS: usize = 100_000;
/// How long the ledger may take, after the chaos, to settle what the spools hold, release the holds of
/// killed executors and deliver every event.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);

/// billing-svc as the soak runs it: holds of a killed executor expire in 5 s; webhooks are retried every
/// second or two for about 25 s, longer than the receiver is ever down, so an endpoint is never disabled.
const BILLING_ARGS: &[&str] = &[
    "--hold-ttl-secs",
    "5",
    "--hold-sweep-interval-ms",
    "200",
    "--webhook-allow-private-targets",
    "--webhook-retry-schedule-secs",
    "1,1,1,2,2,2,2,2,2,2,2,2,2",
    "--webhook-poll-interval-ms",
    "100",
    "--webhook-timeout-secs",
    "2",
];

/// How one request ended, as its client saw it.
enum Outcome {
    /// 200 with a result: the execution id and the total tokens the client was told.
    Answered { execution_id: String, tokens: i64 },
    /// A clean refusal before any output, with its status.
    Refused(StatusCode, String),
    /// The gateway could not be reached (it was down): nothing was sent, nothing can be charged.
    NotSent,
    /// The connection broke after the request was sent, or a stream ended without its result: the
    /// execution may have run and been charged without the client knowing.
    Interrupted,
    /// No answer within [`REQUEST_TIMEOUT`].
    Hung,
}

/// What the clients saw.
#[derive(Default)]
struct Seen {
    answered: HashMap<String, i64>,
    statuses: HashMap<StatusCode, usize>,
    unexpected: Vec<String>,
    not_sent: usize,
    interrupted: usize,
    hung: usize,
}

impl Seen {
    fn record(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Answered {
                execution_id,
                tokens,
            } => {
                *self.statuses.entry(StatusCode::OK).or_default() += 1;
                assert!(
                    self.answered.insert(execution_id.clone(), tokens).is_none(),
                    "{execution_id} answered twice"
                );
            }
            Outcome::Refused(status, body) => {
                *self.statuses.entry(status).or_default() += 1;
                if ![
                    StatusCode::PAYMENT_REQUIRED,
                    StatusCode::SERVICE_UNAVAILABLE,
                ]
                .contains(&status)
                {
                    self.unexpected.push(format!("{status}: {body}"));
                }
            }
            Outcome::NotSent => self.not_sent += 1,
            Outcome::Interrupted => self.interrupted += 1,
            Outcome::Hung => self.hung += 1,
        }
    }

    fn absorb(&mut self, other: Seen) {
        for (id, tokens) in other.answered {
            assert!(
                self.answered.insert(id.clone(), tokens).is_none(),
                "{id} answered twice"
            );
        }
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        self.unexpected.extend(other.unexpected);
        self.not_sent += other.not_sent;
        self.interrupted += other.interrupted;
        self.hung += other.hung;
    }
}

/// A small deterministic generator for the chaos, seeded from the clock (or `CHAOS_SEED`) and printed,
/// so a failing run can be replayed.
struct Chaos(u64);

impl Chaos {
    fn seeded() -> Chaos {
        let seed = std::env::var("CHAOS_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(1, |elapsed| elapsed.as_nanos() as u64)
            });
        eprintln!("chaos seed {seed} (CHAOS_SEED={seed} replays the same choices)");
        Chaos(seed | 1)
    }

    /// xorshift64*.
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.next() % (to - from))
    }
}

/// Sends one execution to `gateway` and reads it to its end.
async fn execute(client: &reqwest::Client, gateway: &str, key: &str, stream: bool) -> Outcome {
    let body = json!({"prompt": "Hello", "model": MODEL, "maxTokens": 64, "stream": stream});
    let sent = client
        .post(format!("{gateway}/execute"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(error) if error.is_connect() => return Outcome::NotSent,
        Err(error) if error.is_timeout() => return Outcome::Hung,
        Err(_) => return Outcome::Interrupted,
    };
    let status = response.status();
    let text = match response.text().await {
        Ok(text) => text,
        Err(error) if error.is_timeout() => return Outcome::Hung,
        Err(_) => return Outcome::Interrupted,
    };
    if status != StatusCode::OK {
        return Outcome::Refused(status, text);
    }
    let result = if stream {
        parse_sse(&text)
            .into_iter()
            .find(|event| event.event.as_deref() == Some("result"))
            .and_then(|event| serde_json::from_str::<Value>(&event.data).ok())
    } else {
        serde_json::from_str::<Value>(&text).ok()
    };
    match result {
        Some(result) => Outcome::Answered {
            execution_id: result["executionId"]
                .as_str()
                .unwrap_or_else(|| panic!("a result without executionId: {result}"))
                .to_string(),
            tokens: result["usage"]["totalTokens"]
                .as_i64()
                .unwrap_or_else(|| panic!("a result without usage: {result}")),
        },
        // A stream that broke after it started: its `error` event, or nothing.
        None => Outcome::Interrupted,
    }
}

/// One client: executions round the gateways and keys, streamed and not, until `stop`.
async fn client_loop(
    worker: usize,
    client: reqwest::Client,
    gateways: Arc<Vec<String>>,
    keys: Arc<Vec<String>>,
    stop: Arc<AtomicBool>,
) -> Seen {
    let mut seen = Seen::default();
    for round in worker..worker + MAX_ROUNDS {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let gateway = &gateways[round % gateways.len()];
        let key = &keys[(round / gateways.len()) % keys.len()];
        let outcome = execute(&client, gateway, key, round % 2 == 0).await;
        match &outcome {
            // That gateway is down; a load balancer would take it out for a moment.
            Outcome::NotSent => tokio::time::sleep(Duration::from_millis(20)).await,
            // The key is dry: its application waits for a top-up rather than spin.
            Outcome::Refused(StatusCode::PAYMENT_REQUIRED, _) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => {}
        }
        seen.record(outcome);
    }
    seen
}

/// The operator tops the keys up as the soak runs, each credit with its idempotency key, retried on
/// another gateway until acknowledged (the retry never credits twice). Returns what was acknowledged per
/// key id.
async fn top_up_loop(
    client: reqwest::Client,
    gateways: Arc<Vec<String>>,
    key_ids: Arc<Vec<String>>,
    admin_key: String,
    stop: Arc<AtomicBool>,
) -> HashMap<String, Decimal> {
    let amount: Value = serde_json::from_str(TOP_UP).expect("a decimal");
    let mut acknowledged: HashMap<String, Decimal> = HashMap::new();
    for round in 0..MAX_ROUNDS {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        let key_id = &key_ids[round % key_ids.len()];
        let body = json!({"amount": amount, "idempotencyKey": uuid::Uuid::new_v4().to_string()});
        let mut done = false;
        for attempt in 0..120 {
            let gateway = &gateways[(round + attempt) % gateways.len()];
            let answer = client
                .post(format!("{gateway}/billing/admin/{key_id}/credits"))
                .bearer_auth(&admin_key)
                .json(&body)
                .send()
                .await;
            if let Ok(answer) = answer {
                let status = answer.status();
                let text = answer.text().await.unwrap_or_default();
                if status == StatusCode::OK {
                    done = true;
                    break;
                }
                assert_eq!(
                    status,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "a top-up answered {status}: {text}"
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(done, "a top-up was not acknowledged within 30 s of retries");
        *acknowledged.entry(key_id.clone()).or_default() +=
            Decimal::from_str_exact(TOP_UP).expect("a decimal");
    }
    acknowledged
}

/// The receiver goes down for a second or two every few seconds until `stop`, then stays up.
async fn receiver_loop(
    mut receiver: WebhookReceiver,
    mut chaos: Chaos,
    stop: Arc<AtomicBool>,
) -> (WebhookReceiver, usize) {
    let mut outages = 0;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(chaos.millis(2_000, 4_000)).await;
        receiver.stop().await;
        outages += 1;
        tokio::time::sleep(chaos.millis(500, 2_000)).await;
        receiver.start_again().await;
    }
    (receiver, outages)
}

/// Admin REST call through `gateway`; panics unless it answers `expected`.
async fn admin_call(
    client: &reqwest::Client,
    gateway: &str,
    admin_key: &str,
    (method, path): (reqwest::Method, &str),
    body: Value,
    expected: StatusCode,
) -> Value {
    let answer = client
        .request(method, format!("{gateway}{path}"))
        .bearer_auth(admin_key)
        .json(&body)
        .send()
        .await
        .expect("the gateway answers");
    let status = answer.status();
    let text = answer.text().await.expect("a body");
    assert_eq!(status, expected, "{path}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_of_each_service_killed_at_random_lose_and_double_nothing() {
    let soak = Duration::from_secs(scaled(25, 300) as u64);
    let mut chaos = Chaos::seeded();
    let database = TestDatabase::create(Backend::Postgres).await;
    let admin_key = format!("admin-{}", uuid::Uuid::new_v4().simple());
    let service_token = format!("svc-{}", uuid::Uuid::new_v4().simple());
    let model = MockModel::start().await;
    let model_url = model.base_url();
    let spools: Vec<tempfile::TempDir> = (0..REPLICAS)
        .map(|_| tempfile::tempdir().expect("spool folder"))
        .collect();

    let mut replicas = Vec::new();
    for _ in 0..REPLICAS {
        let envs = [
            ("DATABASE_URL", database.url.as_str()),
            ("ADMIN_API_KEY", admin_key.as_str()),
            ("SERVICE_TOKEN", service_token.as_str()),
            ("DB_MAX_CONNECTIONS", "8"),
        ];
        replicas.push(Replica::start("billing-svc", BILLING_ARGS, &envs).await);
    }
    for (n, spool) in spools.iter().enumerate() {
        let (billing_url, spool_path) = (
            replicas[n].url(),
            spool.path().join("spool").display().to_string(),
        );
        let envs = [
            ("BILLING_URL", billing_url.as_str()),
            ("SERVICE_TOKEN", service_token.as_str()),
            ("OPENAI_BASE_URL", model_url.as_str()),
            ("EXECUTOR_SPOOL_PATH", spool_path.as_str()),
            ("EXECUTOR_SPOOL_RETRY_MAX_SECS", "1"),
            ("EXECUTOR_BILLING_TIMEOUT_MS", "3000"),
        ];
        replicas.push(Replica::start("executor-svc", &[], &envs).await);
    }
    for n in 0..REPLICAS {
        let (billing_url, executor_url) = (
            replicas[(n + 1) % REPLICAS].url(),
            replicas[REPLICAS + n].url(),
        );
        let envs = [
            ("BILLING_URL", billing_url.as_str()),
            ("EXECUTOR_URL", executor_url.as_str()),
        ];
        replicas.push(Replica::start("gateway", &[], &envs).await);
    }
    let gateways: Arc<Vec<String>> =
        Arc::new(replicas[2 * REPLICAS..].iter().map(Replica::url).collect());
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("http client");

    // The operator's endpoint receives every account's events.
    let receiver = WebhookReceiver::start(0).await;
    let post = reqwest::Method::POST;
    let endpoint = admin_call(
        &client,
        &gateways[0],
        &admin_key,
        (post.clone(), "/admin/webhooks"),
        json!({"url": receiver.url}),
        StatusCode::CREATED,
    )
    .await;
    receiver.trust(endpoint["secret"].as_str().expect("the secret"));
    let (mut key_ids, mut keys) = (Vec::new(), Vec::new());
    for n in 0..KEYS {
        let created = admin_call(
            &client,
            &gateways[0],
            &admin_key,
            (post.clone(), "/admin/keys"),
            json!({"name": format!("chaos {n}"), "keyType": "standard"}),
            StatusCode::CREATED,
        )
        .await;
        let id = created["id"].as_str().expect("an id").to_string();
        let credit: Value = serde_json::from_str(CREDIT).expect("a decimal");
        admin_call(
            &client,
            &gateways[0],
            &admin_key,
            (post.clone(), &format!("/billing/admin/{id}/credits")),
            json!({"amount": credit}),
            StatusCode::OK,
        )
        .await;
        admin_call(
            &client,
            &gateways[0],
            &admin_key,
            (reqwest::Method::PUT, &format!("/billing/admin/{id}/alerts")),
            json!({"lowBalance": [0.02, 0.01]}),
            StatusCode::OK,
        )
        .await;
        keys.push(created["key"].as_str().expect("a key").to_string());
        key_ids.push(id);
    }
    let (keys, key_ids) = (Arc::new(keys), Arc::new(key_ids));

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..WORKERS)
        .map(|worker| {
            tokio::spawn(client_loop(
                worker,
                client.clone(),
                gateways.clone(),
                keys.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let top_ups = tokio::spawn(top_up_loop(
        client.clone(),
        gateways.clone(),
        key_ids.clone(),
        admin_key.clone(),
        stop.clone(),
    ));
    let receiver_chaos = Chaos(chaos.next() | 1);
    let receiver = tokio::spawn(receiver_loop(receiver, receiver_chaos, stop.clone()));

    // The chaos: a random process killed with SIGKILL and started again on its address, again and again.
    let started = Instant::now();
    let mut kills: HashMap<&str, usize> = HashMap::new();
    while started.elapsed() < soak {
        tokio::time::sleep(chaos.millis(700, 1_800)).await;
        let victim = chaos.below(replicas.len());
        let replica = &mut replicas[victim];
        replica.kill().await;
        *kills.entry(replica.name).or_default() += 1;
        tokio::time::sleep(chaos.millis(100, 1_000)).await;
        replica.start_again().await;
    }
    // The last restart gets a moment before the clients stop.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut seen = Seen::default();
    for client in clients {
        seen.absorb(client.await.expect("a client"));
    }
    let acknowledged = top_ups.await.expect("the top-ups");
    let (receiver, receiver_outages) = receiver.await.expect("the receiver loop");
    eprintln!(
        "chaos soak {soak:?}: {} kills ({kills:?}), receiver down {receiver_outages} times; statuses \
         {:?}, {} answered, {} not sent (gateway down), {} interrupted, {} hung",
        kills.values().sum::<usize>(),
        seen.statuses,
        seen.answered.len(),
        seen.not_sent,
        seen.interrupted,
        seen.hung,
    );

    assert!(kills.values().sum::<usize>() >= 10, "the chaos ran");
    assert_eq!(seen.hung, 0, "no request hung");
    assert!(
        seen.unexpected.is_empty(),
        "only 200, 402 and 503: {:?}",
        seen.unexpected
    );
    assert!(
        seen.answered.len() >= 50,
        "the platform served through the chaos"
    );
    assert!(
        seen.statuses.contains_key(&StatusCode::PAYMENT_REQUIRED),
        "the keys ran dry along the way: {:?}",
        seen.statuses
    );

    // Every answered execution lands, once, for the tokens its client was told (the spools replay what
    // could not be settled while a billing-svc was down).
    let all_landed = eventually(SETTLE_TIMEOUT, || async {
        let settled = usage_tokens(&database).await;
        seen.answered.keys().all(|id| settled.contains_key(id))
    })
    .await;
    let settled = usage_tokens(&database).await;
    assert!(
        all_landed,
        "{} answered executions have no usage record",
        seen.answered
            .keys()
            .filter(|id| !settled.contains_key(*id))
            .count()
    );
    for (id, tokens) in &seen.answered {
        assert_eq!(
            settled[id], *tokens,
            "{id}: charged for the tokens answered"
        );
    }
    // `usage_records.execution_id` is unique, so no execution has two; one the client never heard of
    // can only come from a request whose answer was lost.
    let unanswered: HashSet<&String> = settled
        .keys()
        .filter(|id| !seen.answered.contains_key(*id))
        .collect();
    let lost_answers = seen.interrupted
        + seen
            .statuses
            .get(&StatusCode::SERVICE_UNAVAILABLE)
            .copied()
            .unwrap_or(0);
    assert!(
        unanswered.len() <= lost_answers,
        "{} executions charged without an answer, but only {lost_answers} answers were lost",
        unanswered.len()
    );

    // Nothing overspent beyond the overage the ledger recorded; every acknowledged credit is there.
    for key_id in key_ids.iter() {
        let (credited, charged, overage) = money_of(&database, key_id).await;
        let expected = Decimal::from_str_exact(CREDIT).expect("a decimal")
            + acknowledged.get(key_id).copied().unwrap_or_default();
        assert_eq!(
            credited, expected,
            "{key_id}: every acknowledged credit, once"
        );
        assert!(
            charged <= credited + overage,
            "{key_id}: charged {charged} > credited {credited} + recorded overage {overage}"
        );
        eprintln!("{key_id}: credited {credited}, charged {charged}, overage {overage}");
    }

    // The holds of killed executors expire; nothing stays reserved.
    let released = eventually(SETTLE_TIMEOUT, || async {
        tests::reliability::row_count(&database, "holds").await == 0
    })
    .await;
    assert!(released, "every hold released");

    // Every committed event reaches the operator's receiver, verified.
    let events = committed_events(&database).await;
    let delivered = eventually(SETTLE_TIMEOUT, || async {
        let received = delivered_ids(&receiver);
        events.iter().all(|id| received.contains(id))
    })
    .await;
    let received = delivered_ids(&receiver);
    let missing: Vec<&String> = events.iter().filter(|id| !received.contains(*id)).collect();
    assert!(
        delivered,
        "{} of {} committed events never delivered: {missing:?}",
        missing.len(),
        events.len()
    );
    let unverified = receiver
        .received()
        .into_iter()
        .filter(|entry| entry["verified"] != true)
        .count();
    assert_eq!(unverified, 0, "every delivery verified by standardwebhooks");
    let failed_attempts = failed_deliveries(&database).await;
    eprintln!(
        "{} usage records ({} unanswered), {} events delivered ({} requests to the receiver, {failed_attempts} \
         failed attempts)",
        settled.len(),
        unanswered.len(),
        events.len(),
        receiver.received().len()
    );
    assert!(
        failed_attempts > 0,
        "deliveries failed while the receiver was down, and were retried"
    );
    assert_ledger_invariants(&database).await;
}

/// Total tokens of every usage record, by execution id.
async fn usage_tokens(database: &TestDatabase) -> HashMap<String, i64> {
    settled_tokens(database).await.into_iter().collect()
}

/// What a key was credited (paid credit), charged, and the overage its usage recorded, in USD.
async fn money_of(database: &TestDatabase, key_id: &str) -> (Decimal, Decimal, Decimal) {
    let mut connection = database.connect().await.expect("connect");
    let credited: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM transactions \
         WHERE api_key_id = $1 AND type = 'credit_purchase'",
    )
    .bind(key_id)
    .fetch_one(&mut connection)
    .await
    .expect("sum credits");
    let (charged, overage) = tests::reliability::charged_and_overage(database, key_id).await;
    (Decimal::new(credited, 9), charged, overage)
}

/// The ids of every event in the outbox.
async fn committed_events(database: &TestDatabase) -> Vec<String> {
    let mut connection = database.connect().await.expect("connect");
    sqlx::query_scalar("SELECT id FROM events ORDER BY seq")
        .fetch_all(&mut connection)
        .await
        .expect("read the outbox")
}

/// The event ids the receiver answered with a 2xx.
fn delivered_ids(receiver: &WebhookReceiver) -> HashSet<String> {
    receiver
        .delivered()
        .into_iter()
        .filter_map(|entry| entry["id"].as_str().map(str::to_string))
        .collect()
}

/// Delivery attempts that failed (the receiver down), each retried later.
async fn failed_deliveries(database: &TestDatabase) -> i64 {
    let mut connection = database.connect().await.expect("connect");
    sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM webhook_attempts WHERE succeeded = 0")
        .fetch_one(&mut connection)
        .await
        .expect("count failed attempts")
}
