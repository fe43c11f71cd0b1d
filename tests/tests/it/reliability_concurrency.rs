//! Load on one key: hundreds of concurrent executions (streamed and unary, through executor-svc against
//! the mock model) on a key whose credit pays for a fraction of them. Nothing may be overspent beyond the
//! recorded overage, every answered execution is settled exactly once, refusals are clean 402s, and the
//! ledger invariants hold. 1,000 executions by default, 5,000 with `RELIABILITY_LONG=1`.

use std::collections::HashMap;

use proto::billing::v1 as pb;
use proto::executor::v1 as ex;
use proto::executor::v1::executor_service_client::ExecutorServiceClient;
use rust_decimal::Decimal;
use tests::reliability::{
    Delivery, charged_and_overage, execute_request, grpc_channel, run_execution, scaled,
    settled_executions,
};
use tests::{Backend, Billing, Executor, MockModel, assert_ledger_invariants};
use tonic::Code;
use tonic_types::StatusExt;

/// Each execution: 8 prompt tokens and 40 output tokens = 0.00012 + 0.0018 = 0.00192 USD.
const MODEL: &str = "mock-tokens-40-latency-2";
const CREDIT: &str = "0.25";

async fn concurrent_executions_on_one_key_never_overspend_and_settle_once(backend: Backend) {
    let executions = scaled(1000, 5000);
    let billing = Billing::start(backend, &["--hold-ttl-secs", "30"]).await;
    let model = MockModel::start().await;
    let spool = tempfile::tempdir().expect("spool dir");
    let executor = Executor::start(
        &billing,
        &model,
        spool.path(),
        &[("EXECUTOR_BILLING_TIMEOUT_MS", "30000")],
    )
    .await;
    let (key_id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&key_id, CREDIT).await;
    // A few connections, each multiplexing many calls, as a real gateway would.
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(grpc_channel(&executor.process.url()).await);
    }

    let runs = (0..executions).map(|index| {
        let client = ExecutorServiceClient::new(channels[index % channels.len()].clone());
        let delivery = if index % 2 == 0 {
            Delivery::Streamed
        } else {
            Delivery::Unary
        };
        let request = execute_request(&key, MODEL, 40);
        async move { run_execution(client, request, delivery).await }
    });
    let results = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        futures::future::join_all(runs),
    )
    .await
    .expect("every execution ends");

    let mut answered: HashMap<String, Decimal> = HashMap::new();
    for result in &results {
        match result {
            Ok(done) => {
                let billing_block = done.billing.as_ref().expect("billing block");
                assert_eq!(billing_block.status(), ex::BillingStatus::Settled);
                let cost: Decimal = done
                    .usage
                    .as_ref()
                    .and_then(|usage| usage.total_cost.as_deref())
                    .expect("total cost")
                    .parse()
                    .expect("decimal cost");
                assert!(
                    answered.insert(done.execution_id.clone(), cost).is_none(),
                    "execution id {} answered twice",
                    done.execution_id
                );
            }
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert_eq!(
                    status.get_details_error_info().expect("ErrorInfo").reason,
                    "insufficient_credits"
                );
            }
        }
    }
    eprintln!(
        "{executions} concurrent executions: {} answered, {} refused",
        answered.len(),
        executions - answered.len()
    );
    assert!(!answered.is_empty(), "some executions ran");
    assert!(
        answered.len() < executions,
        "the credit pays for a fraction only"
    );

    let settled = settled_executions(&billing.database).await;
    assert_eq!(
        settled.len(),
        answered.len(),
        "usage records == successful responses"
    );
    for (execution_id, records) in &settled {
        assert_eq!(*records, 1, "{execution_id} settled {records} times");
        assert!(
            answered.contains_key(execution_id),
            "{execution_id} was charged but never answered"
        );
    }
    let credit: Decimal = CREDIT.parse().expect("decimal");
    let (charged, overage) = charged_and_overage(&billing.database, &key_id).await;
    assert_eq!(charged, answered.values().copied().sum::<Decimal>());
    assert!(
        charged <= credit + overage,
        "charged {charged} > credit {credit} + overage {overage}"
    );
    let account = billing.account_of(&key).await;
    let balance: Decimal = account.credits_balance.parse().expect("decimal");
    eprintln!("charged {charged} of {credit}, overage {overage}");
    assert_eq!(balance, credit - charged);
    assert_eq!(
        account.held_credits.parse::<Decimal>().expect("decimal"),
        Decimal::ZERO
    );
    assert_ledger_invariants(&billing.database).await;
}

tests::backend_tests!(concurrent_executions_on_one_key_never_overspend_and_settle_once);
