//! Faults under load, with real processes over loopback: billing-svc killed (SIGKILL) and restarted again
//! and again, executor-svc killed mid-stream and with a non-empty spool, and PostgreSQL crashed and
//! restarted under the whole stack. Each scenario checks that every answered execution is charged exactly
//! once, that nothing is charged twice or left held, that clients only ever see clean errors, and that the
//! ledger invariants hold. Loop counts are short by default and full with `RELIABILITY_LONG=1`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use proto::billing::v1 as pb;
use proto::executor::v1 as ex;
use proto::executor::v1::execute_stream_response::Message as Event;
use proto::executor::v1::executor_service_client::ExecutorServiceClient;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use tests::reliability::{
    Delivery, execute_request, grpc_channel, run_execution, scaled, settled_executions,
};
use tests::tcp_proxy::TcpProxy;
use tests::{
    Backend, Billing, Cluster, Executor, MockModel, Stack, TestDatabase, assert_ledger_invariants,
    eventually, restart_billing_at,
};
use tonic::Code;

/// What the load of one scenario saw: the ids of answered executions and the codes of failed ones.
#[derive(Default)]
struct LoadReport {
    answered: HashSet<String>,
    failures: HashMap<Code, usize>,
}

/// Runs executions on `workers` concurrent loops until `stop` is set; each alternates streamed and unary.
async fn load_until(
    channel: tonic::transport::Channel,
    key: String,
    model: &'static str,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> LoadReport {
    let loops = (0..workers).map(|worker| {
        let client = ExecutorServiceClient::new(channel.clone());
        let (key, stop) = (key.clone(), stop.clone());
        async move {
            let mut report = LoadReport::default();
            let mut round = worker;
            while !stop.load(Ordering::Relaxed) {
                let delivery = if round % 2 == 0 {
                    Delivery::Streamed
                } else {
                    Delivery::Unary
                };
                round += 1;
                let call =
                    run_execution(client.clone(), execute_request(&key, model, 64), delivery);
                match tokio::time::timeout(Duration::from_secs(30), call).await {
                    Ok(Ok(done)) => {
                        assert!(report.answered.insert(done.execution_id.clone()));
                    }
                    Ok(Err(status)) => *report.failures.entry(status.code()).or_default() += 1,
                    Err(_) => panic!("an execution hung for 30 s"),
                }
            }
            report
        }
    });
    let mut total = LoadReport::default();
    for report in futures::future::join_all(loops).await {
        total.answered.extend(report.answered);
        for (code, count) in report.failures {
            *total.failures.entry(code).or_default() += count;
        }
    }
    total
}

/// Waits until the executor's spool has drained into the ledger (as many usage records as answered
/// executions), then checks that the answered executions, and only they, are settled, each once.
async fn assert_each_answered_execution_settled_once(
    database: &tests::TestDatabase,
    answered: &HashSet<String>,
) {
    let drained = eventually(Duration::from_secs(60), || async {
        settled_executions(database).await.len() >= answered.len()
    })
    .await;
    let settled = settled_executions(database).await;
    assert!(
        drained,
        "spool not drained: {} usage records for {} answered executions",
        settled.len(),
        answered.len()
    );
    for (execution_id, records) in &settled {
        assert_eq!(*records, 1, "{execution_id} settled {records} times");
        assert!(
            answered.contains(execution_id),
            "{execution_id} was charged but its client got an error"
        );
    }
    assert_eq!(
        settled.len(),
        answered.len(),
        "usage records == answered executions"
    );
    assert_ledger_invariants(database).await;
}

async fn billing_killed_under_load_charges_each_answered_execution_once(backend: Backend) {
    let restarts = scaled(3, 10);
    let args: &[&str] = &["--hold-ttl-secs", "30"];
    let mut billing = Billing::start(backend, args).await;
    let model = MockModel::start().await;
    let spool = tempfile::tempdir().expect("spool dir");
    let executor = Executor::start(&billing, &model, spool.path(), &[]).await;
    let (key_id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&key_id, "100").await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(load_until(
        grpc_channel(&executor.process.url()).await,
        key.clone(),
        // About 200 ms per execution: many are in flight at each kill.
        "mock-tokens-20-latency-10",
        8,
        stop.clone(),
    ));

    for _ in 0..restarts {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let (addr, admin_key, service_token) = (
            billing.process.addr.clone(),
            billing.admin_key.clone(),
            billing.service_token.clone(),
        );
        let database = billing.stop().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        billing = restart_billing_at(database, &addr, admin_key, service_token, args).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::Relaxed);
    let report = load.await.expect("load task");

    eprintln!(
        "billing killed {restarts} times: {} executions answered, failures {:?}",
        report.answered.len(),
        report.failures
    );
    assert!(!report.answered.is_empty(), "executions were answered");
    for code in report.failures.keys() {
        assert_eq!(*code, Code::Unavailable, "failures: {:?}", report.failures);
    }
    assert_each_answered_execution_settled_once(&billing.database, &report.answered).await;
    let account = billing.account_of(&key).await;
    let spent: Decimal = account.total_spent.parse().expect("decimal");
    let balance: Decimal = account.credits_balance.parse().expect("decimal");
    assert_eq!(balance + spent, Decimal::from(100), "{account:?}");
}

/// Starts a slow streamed execution and waits for its first delta.
async fn stream_in_flight(
    executor: &Executor,
    key: &str,
    model: &str,
) -> tonic::Streaming<ex::ExecuteStreamResponse> {
    let mut events = executor
        .client()
        .await
        .execute_stream(execute_request(key, model, 200))
        .await
        .expect("stream starts")
        .into_inner();
    let first = events
        .message()
        .await
        .expect("first event")
        .expect("an event");
    assert!(matches!(first.message, Some(Event::Delta(_))), "{first:?}");
    events
}

async fn executor_killed_mid_stream_releases_the_hold_by_ttl(backend: Backend) {
    let billing = Billing::start(
        backend,
        &["--hold-ttl-secs", "1", "--hold-sweep-interval-ms", "100"],
    )
    .await;
    let model = MockModel::start().await;
    let spool = tempfile::tempdir().expect("spool dir");
    let executor = Executor::start(&billing, &model, spool.path(), &[]).await;
    let (key_id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&key_id, "1").await;

    let _events = stream_in_flight(&executor, &key, "mock-tokens-200-latency-20").await;
    let held: Decimal = billing
        .account_of(&key)
        .await
        .held_credits
        .parse()
        .expect("decimal");
    assert!(
        held > Decimal::ZERO,
        "a hold is placed while the stream runs"
    );
    executor.process.kill().await;

    let released = eventually(Duration::from_secs(10), || async {
        billing
            .account_of(&key)
            .await
            .held_credits
            .parse::<Decimal>()
            .ok()
            == Some(Decimal::ZERO)
    })
    .await;
    assert!(released, "the TTL released the abandoned hold");
    let account = billing.account_of(&key).await;
    assert_eq!(
        account.credits_balance.parse::<Decimal>().ok(),
        Some(Decimal::ONE)
    );
    assert!(
        settled_executions(&billing.database).await.is_empty(),
        "nothing charged"
    );
    assert_ledger_invariants(&billing.database).await;
}

async fn executor_killed_with_a_pending_spool_replays_it_once_on_restart(backend: Backend) {
    let args: &[&str] = &["--hold-ttl-secs", "30"];
    let billing = Billing::start(backend, args).await;
    let model = MockModel::start().await;
    let spool = tempfile::tempdir().expect("spool dir");
    let executor = Executor::start(&billing, &model, spool.path(), &[]).await;
    let (key_id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&key_id, "10").await;

    // billing-svc dies while the execution runs: its settlement goes to the spool.
    let mut events = stream_in_flight(&executor, &key, "mock-tokens-20-latency-50").await;
    let (addr, admin_key, service_token) = (
        billing.process.addr.clone(),
        billing.admin_key.clone(),
        billing.service_token.clone(),
    );
    let database = billing.stop().await;
    let done = loop {
        match events
            .message()
            .await
            .expect("no error")
            .expect("a final message")
        {
            ex::ExecuteStreamResponse {
                message: Some(Event::Done(done)),
            } => break done,
            _ => continue,
        }
    };
    assert_eq!(
        done.billing.as_ref().map(ex::Billing::status),
        Some(ex::BillingStatus::Pending)
    );
    // Then executor-svc dies too, without a chance to replay; the spool is all that is left.
    executor.process.kill().await;
    let billing = restart_billing_at(database, &addr, admin_key, service_token, args).await;
    let _executor = Executor::start(&billing, &model, spool.path(), &[]).await;

    let answered = HashSet::from([done.execution_id.clone()]);
    assert_each_answered_execution_settled_once(&billing.database, &answered).await;
    // 8 input + 20 output tokens = 0.00012 + 0.0009.
    let account = billing.account_of(&key).await;
    assert_eq!(
        account.total_spent.parse::<Decimal>().ok(),
        "0.00102".parse().ok()
    );
}

/// What clients of the gateway saw: how many answers of each status, and the ids of answered executions.
#[derive(Default)]
struct GatewaySeen {
    statuses: HashMap<StatusCode, usize>,
    answered: HashSet<String>,
}

/// Loops of requests through the gateway: `/execute` two rounds in three, `/billing/account` the third.
struct GatewayLoad(Vec<tokio::task::JoinHandle<GatewaySeen>>);

impl GatewayLoad {
    /// Starts `workers` loops on `key`, each until `stop` or 5,000 rounds; a request that takes 30 s is
    /// a hang and fails the test.
    fn start(stack: &Arc<Stack>, key: &str, workers: usize, stop: &Arc<AtomicBool>) -> GatewayLoad {
        let loops = (0..workers).map(|worker| {
            let (stack, key, stop) = (stack.clone(), key.to_string(), stop.clone());
            tokio::spawn(async move {
                let mut seen = GatewaySeen::default();
                for round in worker..worker + 5_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let call = async {
                        if round % 3 == 0 {
                            stack.get("/billing/account", &key).await
                        } else {
                            let body = serde_json::json!({"prompt": "Hello", "model": "mock-tokens-10-latency-5"});
                            stack.post("/execute", &key, body).await
                        }
                    };
                    let answer = tokio::time::timeout(Duration::from_secs(30), call)
                        .await
                        .expect("a request hung for 30 s");
                    if answer.status == StatusCode::OK
                        && let Some(id) = answer.json["executionId"].as_str()
                    {
                        seen.answered.insert(id.to_string());
                    }
                    *seen.statuses.entry(answer.status).or_default() += 1;
                }
                seen
            })
        });
        GatewayLoad(loops.collect())
    }

    /// Waits for the loops (stopped by their flag) and adds up what they saw.
    async fn finish(self) -> GatewaySeen {
        let mut total = GatewaySeen::default();
        for worker in self.0 {
            let seen = worker.await.expect("a load loop");
            for (status, count) in seen.statuses {
                *total.statuses.entry(status).or_default() += count;
            }
            total.answered.extend(seen.answered);
        }
        total
    }
}

/// Clients saw only 200 and 503: never a 500, a 502 or anything else.
fn assert_only_ok_and_unavailable(statuses: &HashMap<StatusCode, usize>) {
    for status in statuses.keys() {
        assert!(
            [StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE].contains(status),
            "unexpected {status}: {statuses:?}"
        );
    }
}

/// PostgreSQL crashes (immediate stop) under load through the gateway and comes back: clients get 503
/// (never a 500, never a hang), the services recover without a restart, and nothing is half-written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_load_gives_503s_and_recovers_without_a_restart() {
    let outages = scaled(1, 3);
    let cluster = Cluster::throwaway(&tests::pg_bin_dir()).expect("start a private cluster");
    let billing = Billing::start_on(
        TestDatabase::on_cluster(&cluster).await,
        &["--hold-ttl-secs", "30"],
    )
    .await;
    let stack = Arc::new(Stack::start_on(billing, &[("GATEWAY_BILLING_TIMEOUT_SECS", "20")]).await);
    let (key_id, key) = stack.create_key("pg-restart", "standard").await;
    stack.add_credits(&key_id, serde_json::json!(100)).await;
    let stop = Arc::new(AtomicBool::new(false));

    let load = GatewayLoad::start(&stack, &key, 6, &stop);

    let mut probes = HashMap::new();
    for _ in 0..outages {
        tokio::time::sleep(Duration::from_millis(800)).await;
        cluster.crash().expect("crash the cluster");
        // A read sent once the database is down waits out billing-svc's 10 s pool acquire timeout and is
        // answered 503. The load's own requests may all ride the outage out (a settlement that fails is
        // spooled and its client answered 200; a hold queued behind a failed batch commits once the
        // database is back), so this probe is what shows the outage to a client.
        let probe = {
            let (stack, key) = (stack.clone(), key.clone());
            tokio::spawn(async move { stack.get("/billing/account", &key).await.status })
        };
        // Longer than the acquire timeout, with room for a slow machine: shorter outages are ridden out
        // by waiting for a connection, and clients see nothing at all.
        tokio::time::sleep(Duration::from_secs(13)).await;
        cluster.start_again().expect("start the cluster again");
        let status = probe.await.expect("the probe");
        *probes.entry(status).or_insert(0_usize) += 1;
    }
    // Recovery without restarting anything: a successful execution after the last outage.
    let recovered = eventually(Duration::from_secs(30), || async {
        let body = serde_json::json!({"prompt": "Hello", "model": "mock"});
        stack.post("/execute", &key, body).await.status == StatusCode::OK
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let GatewaySeen { statuses, answered } = load.finish().await;
    eprintln!(
        "postgres restart: statuses {statuses:?}, {} executions answered, probes {probes:?}",
        answered.len()
    );
    assert!(recovered, "the stack recovered by itself: {statuses:?}");
    assert_eq!(
        probes,
        HashMap::from([(StatusCode::SERVICE_UNAVAILABLE, outages)]),
        "a read during each outage is answered 503"
    );
    assert_only_ok_and_unavailable(&statuses);
    // The recovery probe's execution is answered too; it is the only one not counted by a worker.
    let settled = settled_executions(&stack.billing.database).await;
    assert!(
        eventually(Duration::from_secs(60), || async {
            settled_executions(&stack.billing.database).await.len() > answered.len()
        })
        .await,
        "every answered execution settled: {} records for {} answered + 1",
        settled.len(),
        answered.len()
    );
    let settled = settled_executions(&stack.billing.database).await;
    for (execution_id, records) in &settled {
        assert_eq!(*records, 1, "{execution_id} settled {records} times");
    }
    assert!(
        answered
            .iter()
            .all(|id| settled.iter().any(|(s, _)| s == id))
    );
    assert_eq!(settled.len(), answered.len() + 1);
    assert_ledger_invariants(&stack.billing.database).await;
}

/// PostgreSQL fails over under load: a primary with a synchronous standby (streaming replication,
/// `synchronous_commit = on`), billing-svc connecting through an address the test moves (a TCP proxy, as
/// a virtual IP would be). Under load through the gateway the primary is killed (`-m immediate`), the
/// standby promoted and the address moved to it. Clients see only 200 and 503, billing-svc recovers
/// without a restart, every answered execution is settled exactly once on the new primary (the
/// executors' spools replay what could not be settled during the switch), the credit acknowledged before
/// is there, and the audit holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_failover_to_a_synchronous_standby_keeps_every_acknowledged_write() {
    let primary = Cluster::throwaway(&tests::pg_bin_dir()).expect("start the primary");
    let primary_url = primary
        .create_database("failover")
        .await
        .expect("create the database");
    let standby = primary.standby().expect("start the standby");
    primary
        .require_standby()
        .await
        .expect("make the standby synchronous");
    let proxy = TcpProxy::start(primary.port().expect("the primary's port")).await;
    let (_, name) = primary_url.rsplit_once('/').expect("a database name");
    let database = TestDatabase::existing(
        Backend::Postgres,
        format!("postgres://postgres@127.0.0.1:{}/{name}", proxy.port),
    );
    let billing = Billing::start_on(database, &["--hold-ttl-secs", "30"]).await;
    let stack = Arc::new(Stack::start_on(billing, &[("GATEWAY_BILLING_TIMEOUT_SECS", "20")]).await);
    let (key_id, key) = stack.create_key("failover", "standard").await;
    stack.add_credits(&key_id, serde_json::json!(100)).await;
    let stop = Arc::new(AtomicBool::new(false));

    let load = GatewayLoad::start(&stack, &key, 4, &stop);

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    primary.crash().expect("kill the primary");
    standby.promote().expect("promote the standby");
    proxy.switch(standby.port().expect("the standby's port"));
    let recovered = eventually(Duration::from_secs(40), || async {
        let body = serde_json::json!({"prompt": "Hello", "model": "mock"});
        stack.post("/execute", &key, body).await.status == StatusCode::OK
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let GatewaySeen { statuses, answered } = load.finish().await;
    eprintln!(
        "postgres failover: statuses {statuses:?}, {} executions answered",
        answered.len()
    );
    assert!(
        recovered,
        "billing-svc recovered without a restart: {statuses:?}"
    );
    assert_only_ok_and_unavailable(&statuses);
    // Every answered execution (and the recovery probe's) settles once on the new primary.
    assert!(
        eventually(Duration::from_secs(60), || async {
            let settled = settled_executions(&stack.billing.database).await;
            answered
                .iter()
                .all(|id| settled.iter().any(|(s, _)| s == id))
        })
        .await,
        "every answered execution is on the new primary"
    );
    let settled = settled_executions(&stack.billing.database).await;
    for (execution_id, records) in &settled {
        assert_eq!(*records, 1, "{execution_id} settled {records} times");
    }
    let mut connection = stack.billing.database.connect().await.expect("connect");
    let credited: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM transactions WHERE amount > 0",
    )
    .fetch_one(&mut connection)
    .await
    .expect("credits");
    assert_eq!(
        credited, 100_000_000_000,
        "the credit acknowledged before is on the new primary"
    );
    assert_ledger_invariants(&stack.billing.database).await;
}

tests::backend_tests!(
    billing_killed_under_load_charges_each_answered_execution_once,
    executor_killed_mid_stream_releases_the_hold_by_ttl,
    executor_killed_with_a_pending_spool_replays_it_once_on_restart,
);
