//! Fresh databases per test (a SQLite file in a temporary folder, or a new PostgreSQL database on the
//! cluster of `TEST_POSTGRES_URL`) and the ledger invariants checked straight in SQL.

use sqlx::{AnyConnection, Connection, Row};

/// The storage backends every billing test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database owned by one test.
pub struct TestDatabase {
    pub backend: Backend,
    /// What billing-svc gets as `DATABASE_URL`.
    pub url: String,
    /// Keeps the SQLite folder alive for the test's life.
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> TestDatabase {
        sqlx::any::install_default_drivers();
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                // A folder that does not exist yet: billing-svc must create it.
                let url = format!("sqlite://{}/data/billing.db", dir.path().display());
                TestDatabase {
                    backend,
                    url,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let name = format!("t_{}", uuid::Uuid::new_v4().simple());
                let mut connection = AnyConnection::connect(&admin_url)
                    .await
                    .expect("connect to TEST_POSTGRES_URL");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut connection)
                    .await
                    .expect("create test database");
                let base = admin_url
                    .rsplit_once('/')
                    .map(|(base, _)| base)
                    .expect("url with a database");
                TestDatabase {
                    backend,
                    url: format!("{base}/{name}"),
                    _dir: None,
                }
            }
        }
    }

    /// A database that already exists at `url` (e.g. on a test's private cluster).
    pub fn existing(backend: Backend, url: String) -> TestDatabase {
        TestDatabase {
            backend,
            url,
            _dir: None,
        }
    }

    /// A direct connection, for assertions.
    pub async fn connect(&self) -> AnyConnection {
        sqlx::any::install_default_drivers();
        AnyConnection::connect(&self.url)
            .await
            .expect("connect to the test database")
    }
}

/// The PostgreSQL cluster for tests. `scripts/test` starts one; without it the PostgreSQL variants fail
/// loudly rather than pass silently.
fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").expect(
        "TEST_POSTGRES_URL is not set: run the suite with scripts/test, which starts a throwaway PostgreSQL",
    )
}

/// For every account: `credits_balance == sum(transactions.amount)`, `total_spent == -(usage deductions) -
/// refunds`, `held_credits == sum(active holds)`, each transaction's `balance_after` chains, and each
/// execution id appears at most once among usage records.
pub async fn assert_ledger_invariants(database: &TestDatabase) {
    let mut connection = database.connect().await;
    let accounts = sqlx::query(
        "SELECT a.api_key_id, a.credits_balance, a.total_spent, a.held_credits, \
           CAST(COALESCE((SELECT SUM(t.amount) FROM transactions t WHERE t.api_key_id = a.api_key_id), 0) AS BIGINT), \
           CAST(COALESCE((SELECT SUM(t.amount) FROM transactions t WHERE t.api_key_id = a.api_key_id \
               AND t.type IN ('usage_deduction', 'refund')), 0) AS BIGINT), \
           CAST(COALESCE((SELECT SUM(h.amount) FROM holds h WHERE h.api_key_id = a.api_key_id), 0) AS BIGINT) \
         FROM billing_accounts a",
    )
    .fetch_all(&mut connection)
    .await
    .expect("read accounts");
    for row in accounts {
        let id: String = row.get(0);
        let balance: i64 = row.get(1);
        let total_spent: i64 = row.get(2);
        let held: i64 = row.get(3);
        let sum: i64 = row.get(4);
        let usage_net: i64 = row.get(5);
        let holds: i64 = row.get(6);
        assert_eq!(balance, sum, "account {id}: balance != sum of transactions");
        assert_eq!(
            total_spent, -usage_net,
            "account {id}: total_spent does not reconcile"
        );
        assert_eq!(held, holds, "account {id}: held_credits != sum of holds");

        let chain = sqlx::query(
            "SELECT amount, balance_after FROM transactions WHERE api_key_id = $1 ORDER BY id",
        )
        .bind(&id)
        .fetch_all(&mut connection)
        .await
        .expect("read transactions");
        let mut running = 0i64;
        for row in chain {
            let amount: i64 = row.get(0);
            let balance_after: i64 = row.get(1);
            running += amount;
            assert_eq!(
                running, balance_after,
                "account {id}: balance_after does not chain"
            );
        }
    }
    let duplicates: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT execution_id FROM usage_records \
         GROUP BY execution_id HAVING COUNT(*) > 1) d",
    )
    .fetch_one(&mut connection)
    .await
    .expect("count duplicate executions");
    assert_eq!(duplicates, 0, "an execution was settled more than once");
}
