//! Test support for Remesa's suites (a dev-dependency; nothing here ships in the node).
//!
//! - [`TestDb`]: a fresh migrated database, a SQLite file in a temporary directory or a new PostgreSQL database on
//!   the server at `REMESA_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`). Where that server
//!   is unreachable the PostgreSQL half of a suite prints why and skips; with `REMESA_REQUIRE_POSTGRES=1` (CI) it
//!   fails instead.
//! - [`both_dbs!`]: one test body, run on both databases.
//! - [`LocalDevnet`] (the wallet's throw-away anvil with the contracts deployed from the committed artifacts),
//!   [`node_config`] and [`spawn_node`]: a whole node in process on it.
//! - [`RecipientChats`]: pickup codes learnt as a recipient learns them, from the recipient's chat messages.

mod db;
mod node;
mod recipient;
pub mod sanctions;

pub use db::{TestDb, fresh_postgres_url, postgres_admin_url, postgres_required, postgres_url_or_skip};
pub use node::{
    KEYSTORE_PASSPHRASE, RELAYER_FUNDS_WEI, TestNode, demo_settlement, mint, node_config, spawn_node,
};
pub use recipient::{RecipientChats, codes_in, short_reference};
pub use remesa_wallet::devnet::LocalDevnet;

/// A remittance id the test knows to be valid.
pub fn rid(id: &str) -> remesa::domain::RemittanceId {
    remesa::domain::RemittanceId::parse(id).expect("a remittance id")
}

/// A partner id the test knows to be valid.
pub fn pid(id: u64) -> remesa::domain::PartnerId {
    remesa::domain::PartnerId::new(id).expect("a partner id")
}

/// An E.164 phone number the test knows to be valid.
pub fn phone(e164: &str) -> remesa::domain::PhoneNumber {
    remesa::domain::PhoneNumber::parse(e164, None).expect("a phone number")
}

/// What a test body takes, built from a fresh [`TestDb`] (the database alone, or a suite's environment around it).
#[allow(async_fn_in_trait)]
pub trait FromTestDb: Sized {
    async fn from_test_db(db: TestDb) -> Self;
}

impl FromTestDb for TestDb {
    async fn from_test_db(db: TestDb) -> Self {
        db
    }
}

/// Builds the body's argument from `db` and runs the body (what [`both_dbs!`] expands to).
pub async fn run_on<T, F, Fut>(db: TestDb, body: F)
where
    T: FromTestDb,
    F: FnOnce(T) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    body(T::from_test_db(db).await).await;
}

/// Runs one async test body on SQLite and on PostgreSQL. The body takes any [`FromTestDb`] type.
///
/// - `both_dbs!(name, body);` makes two tests, `name::sqlite` and `name::postgres` (the PostgreSQL one skips with a
///   printed reason where the server is unreachable, and fails under `REMESA_REQUIRE_POSTGRES=1`);
/// - `both_dbs!(body);` inside a test runs the body on SQLite, then on PostgreSQL, in that one test.
#[macro_export]
macro_rules! both_dbs {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::TestDb::sqlite()
                    .await
                    .expect("a fresh SQLite database");
                $crate::run_on(db, super::$body).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = $crate::TestDb::postgres().await else {
                    return;
                };
                $crate::run_on(db, super::$body).await;
            }
        }
    };
    ($body:ident) => {
        let db = $crate::TestDb::sqlite().await.expect("a fresh SQLite database");
        $crate::run_on(db, $body).await;
        if let Some(db) = $crate::TestDb::postgres().await {
            $crate::run_on(db, $body).await;
        }
    };
}
