//! Fresh databases for each test.

use remesa::partner::store::{MIGRATION_POSTGRES, MIGRATION_SQLITE, PartnerDb};
use sqlx::any::AnyPoolOptions;

pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database with the partner tables, dropped (PostgreSQL) or deleted (SQLite) with the guard.
pub struct TestDb {
    pub db: PartnerDb,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            let pool = self.db.pool.clone();
            // Best effort: close our pool, then drop the database from a fresh connection.
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    pool.close().await;
                    if let Ok(admin) = AnyPoolOptions::new()
                        .max_connections(1)
                        .connect(PG_ADMIN_URL)
                        .await
                    {
                        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&admin)
                            .await;
                    }
                });
            })
            .join()
            .ok();
        }
    }
}

pub async fn sqlite() -> TestDb {
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("partner.sqlite").display()
    );
    let pool = AnyPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .unwrap();
    sqlx::raw_sql(MIGRATION_SQLITE).execute(&pool).await.unwrap();
    TestDb {
        db: PartnerDb::new(remesa::store::Db::detect(pool).await.unwrap()),
        _dir: Some(dir),
        pg_name: None,
    }
}

/// `None` (after printing why) when the PostgreSQL server cannot be reached.
pub async fn postgres() -> Option<TestDb> {
    sqlx::any::install_default_drivers();
    let admin = match AnyPoolOptions::new()
        .max_connections(1)
        .connect(PG_ADMIN_URL)
        .await
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("SKIPPED (PostgreSQL part): cannot connect to {PG_ADMIN_URL}: {e}");
            return None;
        }
    };
    let name = format!("partner_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let pool = AnyPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .unwrap();
    sqlx::raw_sql(MIGRATION_POSTGRES).execute(&pool).await.unwrap();
    Some(TestDb {
        db: PartnerDb::new(remesa::store::Db::detect(pool).await.unwrap()),
        _dir: None,
        pg_name: Some(name),
    })
}

/// Runs `f` on SQLite, then on PostgreSQL when reachable.
#[macro_export]
macro_rules! both_dbs {
    ($f:ident) => {
        $f($crate::support::sqlite().await).await;
        if let Some(db) = $crate::support::postgres().await {
            $f(db).await;
        }
    };
}
