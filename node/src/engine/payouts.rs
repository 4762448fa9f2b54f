//! Payouts: a partner accepts, pays (the pickup-code check is in `payout_paid`) or fails a payout; settlements.

use serde_json::json;

use super::state::State;
use super::types::*;
use super::views::*;
use super::{Engine, EngineError, Result, transition};
use crate::chain::{self, CancelJob, ReleaseJob};
use crate::domain::{PartnerId, PayoutMethod, PickupCode, RemittanceId};
use crate::store::{now_ms, remittances, settlements, stored_u64};
use remesa_wallet::eip3009::Signature65;

impl Engine {
    pub(super) async fn partner_payout(
        &self,
        tx: &mut crate::store::Tx,
        id: &str,
        partner_id: u64,
    ) -> Result<RemRow> {
        let r = load_for_update(tx, self.db().dialect, id)
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
        let row = load(&mut tx, id)
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
        // The escrow releases only before expiry: past the cutoff the release might not be mined in time, and the
        // partner would have paid money the sender gets back.
        let closes_at_unix_s = r.expiry_unix_s.saturating_sub(self.config().payout_cutoff_s);
        if u64::try_from(now_ms() / 1000).unwrap_or(u64::MAX) >= closes_at_unix_s {
            return Err(EngineError::Conflict(format!(
                "the payout window closed at unix time {closes_at_unix_s} ({} s before the remittance expires): \
                 do not pay it; the sender will be refunded",
                self.config().payout_cutoff_s
            )));
        }
        let secret = r.claim_secret(self.claim_key_required()?)?;
        let reference = match &proof {
            PayoutProof::PickupCode { code: given } => {
                let given =
                    PickupCode::parse(given).map_err(|_| EngineError::Invalid("wrong pickup code".into()))?;
                use subtle::ConstantTimeEq;
                if r.payout_method != PayoutMethod::CashPickup
                    || !bool::from(given.expose().as_bytes().ct_eq(secret.code().expose().as_bytes()))
                {
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
        remittances::set_payout_reference(&mut tx, id, &reference).await?;
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
                preimage: secret.preimage(),
            },
        )
        .await?;
        let row = load(&mut tx, id)
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        tx.commit().await?;
        metrics::counter!("remesa_payouts_paid_total").increment(1);
        Ok(self.to_api(&row))
    }

    /// The partner could not pay: the remittance is refunded to the sender at expiry — or at once, when the partner
    /// also signs "not paid, will not pay" (`decline`: the EIP-712 `Decline(id)` of the partner signer bound in the
    /// terms, checked here) and there is time before expiry: the escrow's `cancel` is queued in the same
    /// transaction. Repeating it is harmless.
    pub async fn payout_failed(
        &self,
        id: &RemittanceId,
        partner_id: PartnerId,
        reason: &str,
        decline: Option<&Signature65>,
    ) -> Result<Remittance> {
        let (id, partner_id) = (id.to_string(), partner_id.get());
        let id = id.as_str();
        let reason = text("reason", reason, 500)?;
        let mut tx = self.write_tx().await?;
        let r = self.partner_payout(&mut tx, id, partner_id).await?;
        // A payout the sender cancelled: the partner's decline now refunds at once.
        if r.state == State::RefundPending
            && let Some(job) = decline.map(|s| self.cancel_job(&r, s)).transpose()?.flatten()
        {
            chain::enqueue_cancel(&mut tx, job).await?;
            tx.commit().await?;
            return Ok(self.to_api(&r));
        }
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
        let cancel = match decline {
            None => None,
            Some(signature) => self.cancel_job(&r, signature)?,
        };
        remittances::set_failure_reason(&mut tx, id, &reason).await?;
        transition(
            &mut tx,
            id,
            r.state,
            State::RefundPending,
            if cancel.is_some() {
                "partner_declined"
            } else {
                "partner_failed"
            },
            json!({"reason": reason, "refund": if cancel.is_some() { "now" } else { "at_expiry" }}),
            false,
        )
        .await?;
        if let Some(job) = cancel {
            chain::enqueue_cancel(&mut tx, job).await?;
        }
        let row = load(&mut tx, id)
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        tx.commit().await?;
        Ok(self.to_api(&row))
    }

    /// The escrow `cancel` a partner's Decline signature allows, after checking it recovers to the partner signer in
    /// the terms (an ERC-1271 signer cannot be checked here: such partners are refunded at expiry). `None` when the
    /// cancel could not be mined before expiry anyway (within `payout_cutoff_s` of it): the refund comes then.
    fn cancel_job(&self, r: &RemRow, signature: &Signature65) -> Result<Option<CancelJob>> {
        let chain = self.chain_required()?;
        let terms = r.terms()?;
        let id = r.remittance_b256()?;
        let digest = remesa_wallet::terms::decline_digest(chain.chain_id, chain.escrow, id);
        let signer = signature
            .recover(&digest)
            .map_err(|_| EngineError::Invalid("decline_signature is not a valid signature".into()))?;
        if signer != terms.partner_signer {
            return Err(EngineError::Invalid(format!(
                "decline_signature was made by {signer:#x}, not by the partner signer {:#x} bound in this \
                 remittance's terms (sign the EIP-712 Decline(id) in the escrow's domain)",
                terms.partner_signer
            )));
        }
        let now_s = u64::try_from(now_ms() / 1000).unwrap_or(u64::MAX);
        if now_s.saturating_add(self.config().payout_cutoff_s) >= terms.expiry_unix_s {
            return Ok(None);
        }
        Ok(Some(CancelJob {
            remittance_id: id,
            terms,
            decline_signature: signature.as_bytes().to_vec().into(),
        }))
    }

    /// Settlements to a partner (newest first), from indexed `Settled` events.
    pub async fn settlements(&self, partner_id: PartnerId, limit: u32) -> Result<Vec<Settlement>> {
        let limit = i64::from(limit.clamp(1, self.config().page_limit_max));
        let rows = settlements::of_partner(&self.db().pool, partner_id.as_i64(), i64::MAX, "", limit).await?;
        let d = self.token_decimals();
        rows.into_iter()
            .map(|r| {
                Ok(Settlement {
                    partner_id: stored_u64(r.partner_id, "settlement partner_id")?,
                    amount: tokens(r.amount_base_units, d).to_string(),
                    amount_base_units: r.amount_base_units.to_string(),
                    release_count: stored_u64(r.release_count, "settlement release_count")?,
                    block_number: stored_u64(r.block_number, "settlement block_number")?,
                    event_id: r.event_id,
                    settlement_address: r.settlement_address,
                    tx_hash: r.tx_hash,
                    at_unix_ms: r.at_unix_ms,
                })
            })
            .collect()
    }
}
