//! Fresh databases for tests: a SQLite file in a temporary directory, or a new PostgreSQL database on the local
//! server (`REMESA_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`). When PostgreSQL is not
//! reachable, [`TestDb::postgres`] returns `None` after printing why, and the caller skips.

use std::str::FromStr;

use sqlx::ConnectOptions;
use sqlx::any::AnyConnectOptions;

use super::{Db, StoreError};

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
        let dir = tempfile::tempdir().map_err(|e| StoreError::Corrupt(format!("tempdir: {e}")))?;
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.sqlite").display());
        let db = Db::connect(&url, 5).await?;
        db.migrate().await?;
        Ok(TestDb {
            db,
            url,
            _dir: Some(dir),
        })
    }

    /// A fresh PostgreSQL database named `remesa_test_<random>`, or `None` (with the reason printed) when the
    /// server cannot be reached.
    pub async fn postgres() -> Option<TestDb> {
        match fresh_postgres_url().await {
            Ok(url) => match Db::connect(&url, 5).await {
                Ok(db) => match db.migrate().await {
                    Ok(()) => Some(TestDb { db, url, _dir: None }),
                    Err(e) => panic!("migrating a fresh PostgreSQL database failed: {e}"),
                },
                Err(e) => panic!("connecting to a fresh PostgreSQL database failed: {e}"),
            },
            Err(reason) => {
                eprintln!(
                    "SKIPPED (PostgreSQL not reachable at {}): {reason}",
                    postgres_admin_url()
                );
                None
            }
        }
    }
}

/// Creates an empty database on the test server and returns its URL.
pub async fn fresh_postgres_url() -> Result<String, String> {
    sqlx::any::install_default_drivers();
    let admin = postgres_admin_url();
    let opts = AnyConnectOptions::from_str(&admin).map_err(|e| e.to_string())?;
    let mut conn = tokio::time::timeout(std::time::Duration::from_secs(5), opts.connect())
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let name = format!("remesa_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin);
    Ok(format!("{base}/{name}"))
}
