//! Leases: at most one holder per name (a sending key's writer, the indexer, the refund keeper) across every
//! process sharing the database. A fencing number grows on every takeover; writes that matter renew the lease with
//! that number inside their own transaction, so a holder that lost its lease cannot commit.

use super::db::now_ms;
use super::error::ChainError;
use super::sink::DbTx;
use crate::store::{Db, lease, write_tx};

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
        let fencing = write_tx!(db, |tx| lease::try_acquire(
            &mut *tx,
            name,
            holder,
            now.saturating_add(ttl_ms),
            now
        ))?;
        Ok(fencing.map(|fencing| Lease {
            name: name.to_owned(),
            holder: holder.to_owned(),
            fencing,
            ttl_ms,
        }))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn fencing(&self) -> i64 {
        self.fencing
    }

    /// Extends the lease; `LeaseLost` if another holder took it over.
    pub async fn renew(&self, db: &Db) -> Result<(), ChainError> {
        let mut tx = db.begin().await?;
        self.renew_on(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Extends the lease inside `tx`: the transaction can only commit while the lease is still ours, and (on
    /// PostgreSQL) the lease row stays locked until it does, so a takeover waits for it.
    pub async fn renew_in(&self, tx: &mut DbTx) -> Result<(), ChainError> {
        self.renew_on(tx).await
    }

    async fn renew_on(&self, conn: &mut sqlx::AnyConnection) -> Result<(), ChainError> {
        let expires = now_ms().saturating_add(self.ttl_ms);
        if lease::renew(conn, &self.name, &self.holder, self.fencing, expires).await? {
            Ok(())
        } else {
            Err(ChainError::LeaseLost {
                name: self.name.clone(),
            })
        }
    }

    /// Gives the lease up (graceful shutdown), so another process need not wait for it to expire.
    pub async fn release(self, db: &Db) -> Result<(), ChainError> {
        write_tx!(db, |tx| lease::release(
            &mut *tx,
            &self.name,
            &self.holder,
            self.fencing
        ))?;
        Ok(())
    }
}
