//! The sweeper: expires self-custody remittances never authorized in time and held remittances nobody decided on
//! before their expiry; prunes old idempotency keys and unused expired quotes; picks up sanctions lists another
//! node loaded.

use serde_json::json;

use super::state::State;
use super::views::*;
use super::{Engine, EngineError, Result, transition};
use crate::store::{now_ms, remittances};

impl Engine {
    /// Self-custody remittances never authorized before their expiry, and held remittances not released before
    /// it, become `expired` (cause `expired`, or `hold_expired`: the sender is told). Returns how many.
    pub async fn expire_stale(&self, now_unix_s: u64, limit: u32) -> Result<u32> {
        let mut n = 0u32;
        for (from, cause, reason) in [
            (State::Quoted, "expired", "never authorized"),
            (State::OnHold, "hold_expired", "no decision before expiry"),
        ] {
            let ids = remittances::expired_in_state(
                &self.db().pool,
                from.as_str(),
                i64::try_from(now_unix_s).unwrap_or(i64::MAX),
                i64::from(limit),
            )
            .await?;
            for id in ids {
                let mut tx = self.write_tx().await?;
                // both machines allow quoted/on_hold → expired
                match transition(
                    &mut tx,
                    &id,
                    from,
                    State::Expired,
                    cause,
                    json!({"reason": reason}),
                    false,
                )
                .await
                {
                    Ok(_) => {
                        tx.commit().await?;
                        n += 1;
                    }
                    Err(EngineError::Conflict(_)) => {} // moved on meanwhile (another process, a decision)
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(n)
    }

    /// Bounds the tables that only grow with traffic: idempotency keys older than
    /// [`IDEMPOTENCY_RETENTION_MS`] and unused quotes expired that long ago are deleted.
    pub async fn prune(&self, now_ms: i64) -> Result<(u64, u64)> {
        let cutoff = now_ms.saturating_sub(IDEMPOTENCY_RETENTION_MS);
        let mut tx = self.db().begin().await?;
        let keys = crate::store::idempotency::prune(&mut tx, now_ms).await?;
        let quotes = crate::store::quotes::prune_unused(&mut *tx, cutoff).await?;
        tx.commit().await?;
        Ok((keys, quotes))
    }

    /// Background housekeeping until `cancel`: expires stale remittances every 10 s.
    pub async fn run_sweeper(self, cancel: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
            }
            let now_s = u64::try_from(now_ms() / 1000).unwrap_or(0);
            match self.expire_stale(now_s, 500).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(target: "engine", expired = n, "stale remittances expired"),
                Err(e) => tracing::warn!(target: "engine", error = %e, "sweeper round failed"),
            }
            if let Err(e) = self.prune(now_ms()).await {
                tracing::warn!(target: "engine", error = %e, "pruning failed");
            }
            if let Err(e) = self.prune_sessions().await {
                tracing::warn!(target: "engine", error = %e, "pruning expired console sessions failed");
            }
            if let Err(e) = self.refresh_sanctions().await {
                tracing::warn!(target: "compliance", error = %e, "reading the stored sanctions lists failed");
            }
        }
    }
}
