//! Leases: at most one holder per name (a sending key's writer, the indexer, the refund keeper) across every
//! process sharing the database. A fencing number grows on every takeover; writes that matter renew the lease with
//! that number inside their own transaction, so a holder that lost its lease cannot commit.

use sqlx::Row;

use super::db::now_ms;
use super::error::ChainError;
use super::sink::DbTx;
use crate::store::Db;

#[derive(Clone, Debug)]
pub struct Lease {
    name: String,
    holder: String,
    fencing: i64,
    ttl_ms: i64,
}

impl Lease {
    /// Takes the lease if it is free, expired, or already ours. `None` when another holder has it.
    pub async fn try_acquire(
        db: &Db,
        name: &str,
        holder: &str,
        ttl_ms: u64,
    ) -> Result<Option<Lease>, ChainError> {
        let ttl_ms = i64::try_from(ttl_ms).unwrap_or(i64::MAX / 4);
        let now = now_ms();
        let row = sqlx::query(
            "INSERT INTO chain_leases (name, holder, fencing, expires_at_unix_ms) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, fencing = chain_leases.fencing + 1, \
             expires_at_unix_ms = excluded.expires_at_unix_ms \
             WHERE chain_leases.expires_at_unix_ms < $4 OR chain_leases.holder = excluded.holder \
             RETURNING fencing",
        )
        .bind(name)
        .bind(holder)
        .bind(now.saturating_add(ttl_ms))
        .bind(now)
        .fetch_optional(&db.pool)
        .await?;
        match row {
            Some(row) => Ok(Some(Lease {
                name: name.to_owned(),
                holder: holder.to_owned(),
                fencing: row.try_get::<i64, _>(0)?,
                ttl_ms,
            })),
            None => Ok(None),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn fencing(&self) -> i64 {
        self.fencing
    }

    /// Extends the lease; `LeaseLost` if another holder took it over.
    pub async fn renew(&self, db: &Db) -> Result<(), ChainError> {
        let mut conn = db.pool.acquire().await?;
        self.renew_on(&mut conn).await
    }

    /// Extends the lease inside `tx`: the transaction can only commit while the lease is still ours, and (on
    /// PostgreSQL) the lease row stays locked until it does, so a takeover waits for it.
    pub async fn renew_in(&self, tx: &mut DbTx) -> Result<(), ChainError> {
        self.renew_on(tx).await
    }

    async fn renew_on(&self, conn: &mut sqlx::AnyConnection) -> Result<(), ChainError> {
        let done = sqlx::query(
            "UPDATE chain_leases SET expires_at_unix_ms = $1 WHERE name = $2 AND holder = $3 AND fencing = $4",
        )
        .bind(now_ms().saturating_add(self.ttl_ms))
        .bind(&self.name)
        .bind(&self.holder)
        .bind(self.fencing)
        .execute(conn)
        .await?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(ChainError::LeaseLost {
                name: self.name.clone(),
            })
        }
    }

    /// Gives the lease up (graceful shutdown), so another process need not wait for it to expire.
    pub async fn release(self, db: &Db) -> Result<(), ChainError> {
        sqlx::query("DELETE FROM chain_leases WHERE name = $1 AND holder = $2 AND fencing = $3")
            .bind(&self.name)
            .bind(&self.holder)
            .bind(self.fencing)
            .execute(&db.pool)
            .await?;
        Ok(())
    }
}
