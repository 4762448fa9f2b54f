//! A fresh PostgreSQL database for one run of figure 2c, on the server the tests use
//! (`REMESA_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`), dropped after the run.

use anyhow::Context as _;
use sqlx::Connection as _;

/// A database created for one run.
#[derive(Debug)]
pub struct FreshDatabase {
    pub url: String,
}

impl FreshDatabase {
    pub async fn create() -> anyhow::Result<Self> {
        let url = remesa_testkit::fresh_postgres_url()
            .await
            .map_err(|e| anyhow::anyhow!("PostgreSQL (REMESA_TEST_DATABASE_URL): {e}"))?;
        Ok(Self { url })
    }

    /// Drops the database (best effort: a failure is printed).
    pub async fn drop_now(self) {
        let dropped = async {
            let name = self
                .url
                .rsplit_once('/')
                .map(|(_, n)| n.to_owned())
                .context("the database URL has no name")?;
            let mut conn = sqlx::PgConnection::connect(&remesa_testkit::postgres_admin_url()).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut conn)
                .await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = dropped {
            eprintln!("[bench] dropping the run's PostgreSQL database failed: {e:#}");
        }
    }
}
