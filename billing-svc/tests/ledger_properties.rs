//! Property test of the ledger: random sequences of credits, adjustments, refunds, opens, progress, closes,
//! retries and hold expiry, run against the real ledger on a real database and against a simple model of
//! the rules. After every step the database must match the model and the invariants must hold.
//!
//! SQLite always; PostgreSQL too when `TEST_POSTGRES_URL` is set (the test script sets it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use billing_svc::credits::grants::Category;
use billing_svc::error::BillingError;
use billing_svc::holds::ops::{Extension, OpenRequest, OutputKind, SettleRequest};
use billing_svc::keys::KeyType;
use billing_svc::keys::ops::NewKey;
use billing_svc::keys::policy::Policy;
use billing_svc::ledger::{Caller, GrantTerms, Ledger, LedgerSettings};
use billing_svc::prices::TokenClasses;
use billing_svc::store::{Store, WriteMode, WriteSettings};
use billing_svc::time;
use billing_svc::usage::UsageStatus;
use money::Money;
use proptest::prelude::*;
use proto::billing::v1::Labels;
use proto::ids::ExecutionId;
use tests::{Backend, TestDatabase, assert_ledger_invariants};

/// Seed prices in nano-dollars per token: 0.015 and 0.045 per 1k tokens.
const INPUT_NANOS_PER_TOKEN: i64 = 15_000;
const OUTPUT_NANOS_PER_TOKEN: i64 = 45_000;
const KEYS: usize = 3; // two standard keys and one internal key

#[derive(Debug, Clone)]
enum Step {
    Credit {
        key: usize,
        cents: i64,
        idempotency: Option<u8>,
    },
    Adjust {
        key: usize,
        cents: i64,
    },
    Open {
        key: usize,
        execution: u8,
        input: u64,
        max_output: u64,
    },
    Progress {
        execution: u8,
        output: u64,
    },
    Close {
        execution: u8,
        input: u64,
        output: u64,
        /// Shares (per mille) of the input read from and written to the cache, and of the output spent
        /// reasoning: at the seed's price every class costs its side's price, so the charge must not move.
        classes: (u64, u64, u64),
    },
    Retry {
        execution: u8,
    },
    Refund {
        execution: u8,
        all: bool,
    },
    Expire,
    /// A promotional grant, expiring `expires_in_ms` from now when given.
    Promo {
        key: usize,
        cents: i64,
        expires_in_ms: Option<u8>,
    },
    /// Waits until every expiring grant is due, then runs the grant sweeper.
    ExpireGrants,
}

fn step() -> impl Strategy<Value = Step> {
    let key = 0..KEYS;
    prop_oneof![
        (key.clone(), 1..2_000i64, proptest::option::of(0..3u8)).prop_map(
            |(key, cents, idempotency)| Step::Credit {
                key,
                cents,
                idempotency
            }
        ),
        (key.clone(), -500..500i64).prop_map(|(key, cents)| Step::Adjust { key, cents }),
        (key, 0..8u8, 0..20_000u64, 0..3_000u64).prop_map(|(key, execution, input, max_output)| {
            Step::Open {
                key,
                execution,
                input,
                max_output,
            }
        }),
        (0..8u8, 0..3_000u64).prop_map(|(execution, output)| Step::Progress { execution, output }),
        (
            0..8u8,
            0..20_000u64,
            0..3_000u64,
            (0..=600u64, 0..=400u64, 0..=1000u64)
        )
            .prop_map(|(execution, input, output, classes)| Step::Close {
                execution,
                input,
                output,
                classes,
            }),
        (0..8u8).prop_map(|execution| Step::Retry { execution }),
        (0..8u8, any::<bool>()).prop_map(|(execution, all)| Step::Refund { execution, all }),
        Just(Step::Expire),
        (0..KEYS, 1..500i64, proptest::option::of(1..50u8)).prop_map(
            |(key, cents, expires_in_ms)| Step::Promo {
                key,
                cents,
                expires_in_ms
            }
        ),
        Just(Step::ExpireGrants),
    ]
}

/// What the model knows of one account.
#[derive(Debug, Default, Clone)]
struct ModelAccount {
    balance: i64,
    total_spent: i64,
    /// Sum of recorded overage: the only way the balance may go below zero.
    overage: i64,
    credits: HashMap<u8, i64>,
}

#[derive(Debug, Clone)]
struct ModelExecution {
    key: usize,
    settled: Option<SettledModel>,
    /// Its hold was released by expiry: the id may be opened again (a late close still settles it once).
    expired: bool,
}

#[derive(Debug, Clone)]
struct SettledModel {
    usage_record_id: String,
    charged: i64,
    refunded: Option<i64>,
}

struct World {
    ledger: Ledger,
    database: TestDatabase,
    keys: Vec<Caller>,
    accounts: Vec<ModelAccount>,
    executions: HashMap<u8, ModelExecution>,
}

fn money(nanos: i64) -> Money {
    Money::from_nanos(nanos)
}

fn execution_id(execution: u8) -> ExecutionId {
    ExecutionId::from(format!("exec-{execution}"))
}

/// What names every execution of the model.
fn labels() -> Labels {
    Labels {
        model: "m".into(),
        endpoint: "/execute".into(),
        ..Labels::default()
    }
}

impl World {
    async fn new(backend: Backend, mode: WriteMode) -> World {
        let database = TestDatabase::create(backend).await;
        let write = WriteSettings {
            mode,
            max_batch: 64,
            postgres_writers: 2,
        };
        let store = Store::connect(&database.url, 4, write)
            .await
            .expect("connect");
        // Holds expire at once: they stay until an Expire step sweeps them, which lets the model decide.
        let settings = LedgerSettings {
            hold_ttl_ms: 0,
            hold_chunk_tokens: 64,
            min_output_tokens: 16,
            max_execution_tokens: 1_000_000,
        };
        let ledger = Ledger::new(store, settings);
        let mut keys = Vec::new();
        for key_type in [KeyType::Standard, KeyType::Standard, KeyType::Internal] {
            let created = ledger
                .create_key(NewKey {
                    name: "prop".into(),
                    key_type,
                    prefix: None,
                    expires_at: None,
                    account_id: None,
                    role: None,
                    policy: Policy::default(),
                })
                .await
                .expect("key");
            keys.push(
                ledger
                    .authenticate(&created.plain_key)
                    .await
                    .expect("authenticate"),
            );
        }
        World {
            ledger,
            database,
            keys,
            accounts: vec![ModelAccount::default(); KEYS],
            executions: HashMap::new(),
        }
    }

    fn settle_request(&self, execution: u8, key: usize, input: u64, output: u64) -> SettleRequest {
        SettleRequest {
            account_id: self.keys[key].key.account_id.clone(),
            api_key_id: self.keys[key].key.id.clone(),
            execution_id: execution_id(execution),
            labels: labels(),
            input_tokens: input,
            output_tokens: output,
            status: UsageStatus::Completed,
            duration_ms: 1,
            started_at: None,
            provider: String::new(),
            attempts: 1,
            classes: TokenClasses::default(),
        }
    }

    async fn apply(&mut self, step: &Step) {
        match *step {
            Step::Credit {
                key,
                cents,
                idempotency,
            } => {
                let amount = cents * 10_000_000;
                let idempotency_key = idempotency.map(|n| format!("idem-{n}"));
                let result = self
                    .ledger
                    .add_credits(
                        self.keys[key].key.id.as_str(),
                        money(amount),
                        GrantTerms::paid(),
                        None,
                        idempotency_key.as_deref(),
                    )
                    .await;
                let account = &mut self.accounts[key];
                match idempotency.and_then(|n| account.credits.get(&n).copied()) {
                    Some(first) if first == amount => assert!(result.is_ok(), "retry: {result:?}"),
                    Some(_) => assert!(matches!(result, Err(BillingError::IdempotencyConflict))),
                    None => {
                        result.expect("credit");
                        account.balance += amount;
                        if let Some(n) = idempotency {
                            account.credits.insert(n, amount);
                        }
                    }
                }
            }
            Step::Adjust { key, cents } => {
                let amount = cents * 10_000_000;
                let result = self
                    .ledger
                    .adjust_credits(self.keys[key].key.id.as_str(), money(amount), "prop", None)
                    .await;
                let held = self
                    .ledger
                    .account(&self.keys[key].key.account_id)
                    .await
                    .expect("account")
                    .held_credits
                    .nanos();
                let account = &mut self.accounts[key];
                if amount == 0 {
                    assert!(matches!(result, Err(BillingError::InvalidArgument { .. })));
                } else if amount < 0 && account.balance - held + amount < 0 {
                    assert!(
                        matches!(result, Err(BillingError::WouldOverdraw)),
                        "{result:?}"
                    );
                } else {
                    result.expect("adjust");
                    account.balance += amount;
                }
            }
            Step::Open {
                key,
                execution,
                input,
                max_output,
            } => {
                let request = OpenRequest {
                    execution_id: execution_id(execution),
                    labels: labels(),
                    estimated_input_tokens: input,
                    max_output_tokens: max_output,
                    output: OutputKind::Tokens,
                };
                let before = self
                    .ledger
                    .account(&self.keys[key].key.account_id)
                    .await
                    .expect("account");
                let result = self.ledger.open(&self.keys[key], &request).await;
                let reusable = self
                    .executions
                    .get(&execution)
                    .map(|e| e.settled.is_none() && e.expired);
                if reusable == Some(false) {
                    assert!(
                        matches!(result, Err(BillingError::ExecutionExists)),
                        "{result:?}"
                    );
                    return;
                }
                // The input plus a minimal output of 16 tokens (fewer when the caller asks for fewer).
                let minimal_output = if max_output == 0 {
                    16
                } else {
                    max_output.min(16)
                };
                let needed = i64::try_from(input).unwrap() * INPUT_NANOS_PER_TOKEN
                    + i64::try_from(minimal_output).unwrap() * OUTPUT_NANOS_PER_TOKEN;
                let available = before.available().nanos();
                match (key, result) {
                    (2, Ok(opened)) => assert!(opened.held.is_zero(), "internal keys hold nothing"),
                    (2, Err(error)) => panic!("internal keys are never refused: {error:?}"),
                    (_, Ok(opened)) => {
                        assert!(
                            available >= needed,
                            "opened without room: {available} < {needed}"
                        );
                        assert!(
                            opened.held.nanos() <= available,
                            "hold above the available credit"
                        );
                    }
                    (_, Err(BillingError::InsufficientCredits { .. })) => {
                        assert!(
                            available < needed,
                            "refused with room: {available} >= {needed}"
                        );
                        return;
                    }
                    (_, Err(error)) => panic!("unexpected {error:?}"),
                }
                self.executions.insert(
                    execution,
                    ModelExecution {
                        key,
                        settled: None,
                        expired: false,
                    },
                );
            }
            Step::Progress { execution, output } => {
                let Some(model) = self.executions.get(&execution) else {
                    return;
                };
                if model.settled.is_some() {
                    return;
                }
                let key = &self.keys[model.key];
                let grant = self
                    .ledger
                    .extend(
                        (&key.key.account_id, &key.key.id),
                        &execution_id(execution),
                        output,
                    )
                    .await
                    .expect("extend");
                if let Extension::Continue { held, .. } = grant {
                    assert!(!held.is_negative());
                }
            }
            Step::Close {
                execution,
                input,
                output,
                classes: (cached, written, reasoning),
            } => {
                let Some(model) = self.executions.get(&execution).cloned() else {
                    return;
                };
                let mut request = self.settle_request(execution, model.key, input, output);
                request.classes = TokenClasses {
                    cached_input: input * cached / 1000,
                    cache_write: input * written / 1000,
                    cache_write_1h: input * written / 2000,
                    reasoning: output * reasoning / 1000,
                    ..TokenClasses::default()
                };
                let settlement = self.ledger.settle(&request).await.expect("settle");
                if model.settled.is_some() {
                    assert!(settlement.replayed, "a second close must replay");
                    return;
                }
                let cost = i64::try_from(input).unwrap() * INPUT_NANOS_PER_TOKEN
                    + i64::try_from(output).unwrap() * OUTPUT_NANOS_PER_TOKEN;
                assert_eq!(
                    settlement.usage.total_cost.nanos(),
                    cost,
                    "cost of {input}/{output}"
                );
                let charged = if model.key == 2 { 0 } else { cost };
                assert_eq!(settlement.usage.charged.nanos(), charged);
                let account = &mut self.accounts[model.key];
                account.balance -= charged;
                account.total_spent += charged;
                account.overage += settlement.usage.overage.nanos();
                self.executions.insert(
                    execution,
                    ModelExecution {
                        key: model.key,
                        expired: model.expired,
                        settled: Some(SettledModel {
                            usage_record_id: settlement.usage.id.to_string(),
                            charged,
                            refunded: None,
                        }),
                    },
                );
            }
            Step::Retry { execution } => {
                let Some(model) = self.executions.get(&execution).cloned() else {
                    return;
                };
                let Some(settled) = model.settled else { return };
                let request = self.settle_request(execution, model.key, 1, 1);
                let replay = self.ledger.settle(&request).await.expect("replay");
                assert!(replay.replayed);
                assert_eq!(
                    replay.usage.charged.nanos(),
                    settled.charged,
                    "the first settlement stands"
                );
            }
            Step::Refund { execution, all } => {
                let Some(model) = self.executions.get(&execution).cloned() else {
                    return;
                };
                let Some(settled) = model.settled else { return };
                let amount = if all {
                    settled.charged
                } else {
                    settled.charged / 2
                };
                let key_id = self.keys[model.key].key.id.clone();
                let result = self
                    .ledger
                    .refund(
                        key_id.as_str(),
                        &settled.usage_record_id,
                        Some(money(amount)),
                        None,
                    )
                    .await;
                match settled.refunded {
                    _ if settled.charged == 0 => assert!(result.is_err(), "nothing to refund"),
                    _ if amount == 0 => assert!(result.is_err(), "a zero refund"),
                    Some(first) if first == amount => {
                        assert!(result.is_ok(), "same refund again: {result:?}")
                    }
                    Some(_) => assert!(
                        matches!(result, Err(BillingError::AlreadyRefunded)),
                        "{result:?}"
                    ),
                    None => {
                        result.expect("refund");
                        let account = &mut self.accounts[model.key];
                        account.balance += amount;
                        account.total_spent -= amount;
                        let mut settled = settled.clone();
                        settled.refunded = Some(amount);
                        self.executions.insert(
                            execution,
                            ModelExecution {
                                key: model.key,
                                expired: model.expired,
                                settled: Some(settled),
                            },
                        );
                    }
                }
            }
            Step::Promo {
                key,
                cents,
                expires_in_ms,
            } => {
                let amount = cents * 10_000_000;
                let terms = GrantTerms {
                    category: Category::Promotional,
                    priority: Category::Promotional.default_priority(),
                    expires_at: expires_in_ms.map(|ms| time::now_ms() + i64::from(ms)),
                };
                self.ledger
                    .add_credits(
                        self.keys[key].key.id.as_str(),
                        money(amount),
                        terms,
                        None,
                        None,
                    )
                    .await
                    .expect("promotional grant");
                self.accounts[key].balance += amount;
            }
            Step::ExpireGrants => {
                tokio::time::sleep(std::time::Duration::from_millis(60)).await;
                let now = time::now_ms();
                // What each account's due grants hold is what must leave it.
                let mut due = Vec::new();
                for key in &self.keys {
                    let grants = self
                        .ledger
                        .list_grants(&key.key.account_id, false)
                        .await
                        .expect("grants");
                    due.push(
                        grants
                            .iter()
                            .filter(|grant| grant.expires_at.is_some_and(|at| at <= now))
                            .map(|grant| grant.remaining.nanos())
                            .sum::<i64>(),
                    );
                }
                self.ledger.expire_grants().await.expect("expire grants");
                for ((key, model), due) in self.keys.iter().zip(&mut self.accounts).zip(due) {
                    model.balance -= due;
                    // An expiry may take credit that holds reserve (they settle as overage later).
                    model.overage += due;
                    let left = self
                        .ledger
                        .list_grants(&key.key.account_id, false)
                        .await
                        .expect("grants");
                    assert!(
                        left.iter()
                            .all(|grant| grant.expires_at.is_none_or(|at| at > now)),
                        "a due grant still holds credit"
                    );
                }
            }
            Step::Expire => {
                self.ledger.release_expired_holds().await.expect("release");
                for execution in self.executions.values_mut().filter(|e| e.settled.is_none()) {
                    execution.expired = true;
                }
                for key in &self.keys {
                    let account = self
                        .ledger
                        .account(&key.key.account_id)
                        .await
                        .expect("account");
                    assert!(
                        account.held_credits.is_zero(),
                        "every hold is past its TTL of 0"
                    );
                }
            }
        }
    }

    /// The database agrees with the model and the ledger invariants hold.
    async fn check(&self) {
        for (key, model) in self.keys.iter().zip(&self.accounts) {
            let account = self
                .ledger
                .account(&key.key.account_id)
                .await
                .expect("account");
            assert_eq!(
                account.credits_balance.nanos(),
                model.balance,
                "balance of {}",
                key.key.id
            );
            assert_eq!(
                account.total_spent.nanos(),
                model.total_spent,
                "total spent of {}",
                key.key.id
            );
            assert!(
                account.available().nanos() >= -model.overage,
                "available {} below the bound -{}",
                account.available(),
                model.overage
            );
        }
        assert_ledger_invariants(&self.database).await;
    }
}

fn run(backend: Backend, mode: WriteMode, steps: &[Step]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut world = World::new(backend, mode).await;
        for step in steps {
            world.apply(step).await;
            world.check().await;
        }
        world.ledger.store().close().await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn ledger_matches_the_model_on_sqlite(steps in prop::collection::vec(step(), 1..40)) {
        run(Backend::Sqlite, WriteMode::Batched, &steps);
    }

    #[test]
    fn ledger_matches_the_model_on_sqlite_one_transaction_per_operation(steps in prop::collection::vec(step(), 1..40)) {
        run(Backend::Sqlite, WriteMode::Naive, &steps);
    }

    #[test]
    fn ledger_matches_the_model_on_postgres(steps in prop::collection::vec(step(), 1..40)) {
        if std::env::var_os("TEST_POSTGRES_URL").is_some() {
            run(Backend::Postgres, WriteMode::Batched, &steps);
        }
    }
}
