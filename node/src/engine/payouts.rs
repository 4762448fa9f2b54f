//! Payouts: a partner accepts, pays (the pickup-code check is in `payout_paid`) or fails a payout; settlements.

use serde_json::json;
use sqlx::Row;

use super::state::State;
use super::types::*;
use super::views::*;
use super::{Engine, EngineError, Result, transition};
use crate::chain::{self, ReleaseJob};
use crate::domain::{PartnerId, PayoutMethod, PickupCode, RemittanceId};
use crate::store::stored_u64;

impl Engine {
    pub(super) async fn partner_payout(
        &self,
        tx: &mut crate::store::Tx,
        id: &str,
        partner_id: u64,
    ) -> Result<RemRow> {
        let r = load(tx, id, self.db().dialect.for_update())
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        if r.partner_id != partner_id {
            // another partner's payout: indistinguishable from a missing one
            return Err(EngineError::NotFound("remittance"));
        }
        Ok(r)
    }

    /// The partner takes the payout (`payout_assigned` → `payout_accepted`). Repeating it is harmless.
    pub async fn payout_accepted(&self, id: &RemittanceId, partner_id: PartnerId) -> Result<Remittance> {
        let (id, partner_id) = (id.to_string(), partner_id.get());
        let id = id.as_str();
        let mut tx = self.write_tx().await?;
        let r = self.partner_payout(&mut tx, id, partner_id).await?;
        match r.state {
            State::PayoutAccepted => {}
            State::PayoutAssigned => {
                transition(
                    &mut tx,
                    id,
                    r.state,
                    State::PayoutAccepted,
                    "partner_accepted",
                    json!({"partner_id": partner_id}),
                    false,
                )
                .await?;
            }
            s => {
                return Err(EngineError::Conflict(format!(
                    "the payout is {s}, it cannot be accepted"
                )));
            }
        }
        let row = load(&mut tx, id, "")
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        tx.commit().await?;
        Ok(self.to_api(&row))
    }

    /// The partner paid the recipient: checks the pickup code (cash) or takes the reference, moves to `paid` and
    /// queues the release to the partner in the same transaction. Repeating it is harmless.
    pub async fn payout_paid(
        &self,
        id: &RemittanceId,
        partner_id: PartnerId,
        proof: PayoutProof,
    ) -> Result<Remittance> {
        let (id, partner_id) = (id.to_string(), partner_id.get());
        let id = id.as_str();
        let mut tx = self.write_tx().await?;
        let r = self.partner_payout(&mut tx, id, partner_id).await?;
        if matches!(r.state, State::Paid | State::Settled) {
            drop(tx);
            return Ok(self.to_api(&r));
        }
        if !matches!(r.state, State::PayoutAssigned | State::PayoutAccepted) {
            return Err(EngineError::Conflict(format!(
                "the payout is {}, it cannot be completed",
                r.state
            )));
        }
        let code = r.pickup()?;
        let reference = match &proof {
            PayoutProof::PickupCode { code: given } => {
                let given =
                    PickupCode::parse(given).map_err(|_| EngineError::Invalid("wrong pickup code".into()))?;
                use subtle::ConstantTimeEq;
                if !bool::from(given.claim_hash().as_slice().ct_eq(code.claim_hash().as_slice())) {
                    return Err(EngineError::Invalid("wrong pickup code".into()));
                }
                "pickup code".to_owned()
            }
            PayoutProof::Reference { reference } => {
                if r.payout_method == PayoutMethod::CashPickup {
                    return Err(EngineError::Invalid(
                        "cash pickups are completed with the recipient's pickup code".into(),
                    ));
                }
                text("reference", reference, 128)?
            }
        };
        if r.state == State::PayoutAssigned {
            transition(
                &mut tx,
                id,
                State::PayoutAssigned,
                State::PayoutAccepted,
                "partner_accepted",
                json!({"partner_id": partner_id, "implicit": true}),
                false,
            )
            .await?;
        }
        sqlx::query("UPDATE remittances SET payout_reference = $1 WHERE id = $2")
            .bind(&reference)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        transition(
            &mut tx,
            id,
            State::PayoutAccepted,
            State::Paid,
            "partner_completed",
            json!({"reference": reference}),
            false,
        )
        .await?;
        chain::enqueue_release(
            &mut tx,
            ReleaseJob {
                remittance_id: r.remittance_b256()?,
                terms: r.terms()?,
                preimage: code.preimage(),
            },
        )
        .await?;
        let row = load(&mut tx, id, "")
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        tx.commit().await?;
        metrics::counter!("remesa_payouts_paid_total").increment(1);
        Ok(self.to_api(&row))
    }

    /// The partner could not pay: the remittance waits for its expiry and is refunded to the sender.
    pub async fn payout_failed(
        &self,
        id: &RemittanceId,
        partner_id: PartnerId,
        reason: &str,
    ) -> Result<Remittance> {
        let (id, partner_id) = (id.to_string(), partner_id.get());
        let id = id.as_str();
        let reason = text("reason", reason, 500)?;
        let mut tx = self.write_tx().await?;
        let r = self.partner_payout(&mut tx, id, partner_id).await?;
        if r.state == State::RefundPending || r.state == State::Refunded {
            drop(tx);
            return Ok(self.to_api(&r));
        }
        if !matches!(r.state, State::PayoutAssigned | State::PayoutAccepted) {
            return Err(EngineError::Conflict(format!(
                "the payout is {}, it cannot fail",
                r.state
            )));
        }
        sqlx::query("UPDATE remittances SET failure_reason = $1 WHERE id = $2")
            .bind(&reason)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        transition(
            &mut tx,
            id,
            r.state,
            State::RefundPending,
            "partner_failed",
            json!({"reason": reason}),
            false,
        )
        .await?;
        let row = load(&mut tx, id, "")
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        tx.commit().await?;
        Ok(self.to_api(&row))
    }

    /// Settlements to a partner (newest first), from indexed `Settled` events.
    pub async fn settlements(&self, partner_id: PartnerId, limit: u32) -> Result<Vec<Settlement>> {
        let limit = i64::from(limit.clamp(1, self.config().page_limit_max));
        let rows = sqlx::query(
            "SELECT event_id, partner_id, settlement_address, amount_base_units, release_count, tx_hash, block_number, \
             at_unix_ms FROM settlements WHERE partner_id = $1 ORDER BY block_number DESC, event_id DESC LIMIT $2",
        )
        .bind(partner_id.as_i64())
        .bind(limit)
        .fetch_all(&self.db().pool)
        .await?;
        let d = self.token_decimals();
        rows.iter()
            .map(|r| {
                let amount: i64 = r.try_get(3)?;
                let pid: i64 = r.try_get(1)?;
                let count: i64 = r.try_get(4)?;
                let block: i64 = r.try_get(6)?;
                Ok(Settlement {
                    event_id: r.try_get(0)?,
                    partner_id: stored_u64(pid, "settlement partner_id")?,
                    settlement_address: r.try_get(2)?,
                    amount: tokens(amount, d).to_string(),
                    amount_base_units: amount.to_string(),
                    release_count: stored_u64(count, "settlement release_count")?,
                    tx_hash: r.try_get(5)?,
                    block_number: stored_u64(block, "settlement block_number")?,
                    at_unix_ms: r.try_get(7)?,
                })
            })
            .collect()
    }
}
