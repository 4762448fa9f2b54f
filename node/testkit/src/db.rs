//! Fresh databases for tests: a SQLite file in a temporary directory, or a new PostgreSQL database on the local
//! server (`REMESA_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`). When PostgreSQL is not
//! reachable, [`TestDb::postgres`] returns `None` after printing why, and the caller skips.

use std::str::FromStr;

use sqlx::AnyConnection;
use sqlx::ConnectOptions;
use sqlx::any::AnyConnectOptions;

use remesa::store::{Db, StoreError};

/// The PostgreSQL server tests use: `REMESA_TEST_DATABASE_URL` (or `REMESA_TEST_POSTGRES_URL`), default
/// `postgres://postgres@127.0.0.1:5432/test`.
pub fn postgres_admin_url() -> String {
    std::env::var("REMESA_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("REMESA_TEST_POSTGRES_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `REMESA_REQUIRE_POSTGRES=1` (CI): an unreachable server fails the test instead of skipping it.
pub fn postgres_required() -> bool {
    std::env::var("REMESA_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// A migrated database that lives as long as the value (SQLite: the directory is removed on drop).
#[derive(Debug)]
pub struct TestDb {
    pub db: Db,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A fresh SQLite file.
    pub async fn sqlite() -> Result<TestDb, StoreError> {
        Self::sqlite_with(5).await
    }

    /// A fresh SQLite file with a pool of at most `connections_max` connections.
    pub async fn sqlite_with(connections_max: u32) -> Result<TestDb, StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Corrupt(format!("tempdir: {e}")))?;
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.sqlite").display());
        let db = Db::connect(&url, connections_max).await?;
        db.migrate().await?;
        Ok(TestDb {
            db,
            url,
            _dir: Some(dir),
        })
    }

    /// A fresh PostgreSQL database named `remesa_test_<random>`, or `None` when the server cannot be reached (see
    /// [`postgres_url_or_skip`]: the reason is printed, and with `REMESA_REQUIRE_POSTGRES=1` it panics instead).
    pub async fn postgres() -> Option<TestDb> {
        let url = postgres_url_or_skip().await?;
        match Db::connect(&url, 5).await {
            Ok(db) => match db.migrate().await {
                Ok(()) => Some(TestDb { db, url, _dir: None }),
                Err(e) => panic!("migrating a fresh PostgreSQL database failed: {e}"),
            },
            Err(e) => panic!("connecting to a fresh PostgreSQL database failed: {e}"),
        }
    }

    /// The PostgreSQL part of a suite that runs on SQLite always and on PostgreSQL when reachable: a fresh migrated
    /// database with a pool of at most `connections_max` connections, or `Ok(None)` after printing
    /// `SKIPPED (PostgreSQL part): <reason>` when the server cannot be reached. With `REMESA_REQUIRE_POSTGRES=1`
    /// ([`postgres_required`]) an unreachable server is an error instead; any other failure is always an error.
    pub async fn postgres_part(connections_max: u32) -> Result<Option<TestDb>, String> {
        let admin = postgres_admin_url();
        let conn = match admin_connection(&admin).await {
            Ok(conn) => conn,
            Err(e) => {
                let reason = match e {
                    Unreachable::TimedOut => format!("connecting to {admin} timed out"),
                    Unreachable::Failed(e) => format!("cannot connect to {admin}: {e}"),
                };
                if postgres_required() {
                    return Err(format!(
                        "PostgreSQL required (REMESA_REQUIRE_POSTGRES=1) but {reason}"
                    ));
                }
                eprintln!("SKIPPED (PostgreSQL part): {reason}");
                return Ok(None);
            }
        };
        let url = create_database(conn, admin).await?;
        let db = Db::connect(&url, connections_max)
            .await
            .map_err(|e| format!("connecting to a fresh PostgreSQL database failed: {e}"))?;
        db.migrate()
            .await
            .map_err(|e| format!("migrating a fresh PostgreSQL database failed: {e}"))?;
        Ok(Some(TestDb { db, url, _dir: None }))
    }
}

/// Why the test server could not be reached.
enum Unreachable {
    TimedOut,
    Failed(String),
}

/// A connection to the test server's admin URL (5 s timeout).
async fn admin_connection(admin: &str) -> Result<AnyConnection, Unreachable> {
    sqlx::any::install_default_drivers();
    let opts = AnyConnectOptions::from_str(admin).map_err(|e| Unreachable::Failed(e.to_string()))?;
    tokio::time::timeout(std::time::Duration::from_secs(5), opts.connect())
        .await
        .map_err(|_| Unreachable::TimedOut)?
        .map_err(|e| Unreachable::Failed(e.to_string()))
}

/// Creates `remesa_test_<random>` over `conn` and returns its URL.
async fn create_database(mut conn: AnyConnection, admin: String) -> Result<String, String> {
    let name = format!("remesa_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin);
    Ok(format!("{base}/{name}"))
}

/// The URL of a fresh, empty database on the test server; or `None` after printing `SKIPPED (PostgreSQL not
/// reachable at …)` when the server cannot be reached. With `REMESA_REQUIRE_POSTGRES=1` (CI) an unreachable server
/// panics instead, so a PostgreSQL test never passes without running.
pub async fn postgres_url_or_skip() -> Option<String> {
    match fresh_postgres_url().await {
        Ok(url) => Some(url),
        Err(reason) if postgres_required() => panic!(
            "PostgreSQL required (REMESA_REQUIRE_POSTGRES=1) but not reachable at {}: {reason}",
            postgres_admin_url()
        ),
        Err(reason) => {
            eprintln!(
                "SKIPPED (PostgreSQL not reachable at {}): {reason}",
                postgres_admin_url()
            );
            None
        }
    }
}

/// Creates an empty database on the test server and returns its URL.
pub async fn fresh_postgres_url() -> Result<String, String> {
    let admin = postgres_admin_url();
    let conn = admin_connection(&admin).await.map_err(|e| match e {
        Unreachable::TimedOut => "timed out".to_owned(),
        Unreachable::Failed(e) => e,
    })?;
    create_database(conn, admin).await
}
