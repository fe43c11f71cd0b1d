//! Fresh databases per test (a SQLite file in a temporary folder, or a new PostgreSQL database on the
//! cluster of `TEST_POSTGRES_URL`) and the ledger invariants checked straight in SQL.

use sqlx::{AnyConnection, Connection};

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

/// The one ledger audit (`billing_svc::store::audit`): every account's balance, total spent and holds
/// reconcile with its rows, balances chain, no execution is settled twice, every row is in its key's
/// account. Panics with every violation found.
pub async fn assert_ledger_invariants(database: &TestDatabase) {
    let mut connection = database.connect().await;
    let violations = billing_svc::store::audit::audit(&mut connection)
        .await
        .expect("audit the ledger");
    assert!(
        violations.is_empty(),
        "ledger invariants broken: {violations:?}"
    );
}
