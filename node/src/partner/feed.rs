//! Follows the engine's transition feed (`remittance_transitions`, whose `seq` grows in commit order) and turns
//! the transitions a partner cares about into partner events (`GET /v1/partner/events`) and queued webhooks.
//! One follower at a time across processes (a lease row); its cursor is stored, and each event is keyed by its
//! transition (`transition:<seq>`), so a crash between writing events and moving the cursor adds nothing twice.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::config::PartnerConfig;
use super::store::{NewEvent, PartnerDb, StoreError};
use crate::store::transitions;

const CURSOR: &str = "engine_feed";
const LEASE_MS: i64 = 30_000;
/// Transitions read per batch.
pub const FEED_BATCH_MAX: i64 = 200;

/// The partner event a transition becomes, if any. `seen_before`: the partner already has events for this payout.
pub fn event_type(from: Option<&str>, to: &str, seen_before: bool) -> Option<&'static str> {
    let was_offered = matches!(from, Some("payout_assigned" | "payout_accepted" | "paid"));
    match to {
        "payout_assigned" => Some("payout.created"),
        "payout_accepted" => Some("payout.accepted"),
        "paid" => Some("payout.paid"),
        "settled" => Some("payout.settled"),
        // Withdrawn from the partner: expiry reached, or the partner failed it (refund to the sender follows).
        "refund_pending" if was_offered => Some("payout.cancelled"),
        // A reorg removed the deposit after the payout was offered: do not pay until it is offered again.
        "pending_funds" if was_offered => Some("payout.cancelled"),
        "refunded" if seen_before => Some("payout.refunded"),
        _ => None,
    }
}

/// Turns engine transitions into partner events and webhooks.
#[derive(Debug, Clone)]
pub struct FeedFollower {
    db: PartnerDb,
    cfg: PartnerConfig,
    owner: String,
}

impl FeedFollower {
    pub fn new(db: PartnerDb, cfg: PartnerConfig) -> Self {
        Self {
            db,
            cfg,
            owner: format!("partner-feed-{}", uuid::Uuid::new_v4()),
        }
    }

    /// Holds the feed's lease under `owner` (the node's `partner-feed@<start id>`, so a restart of the same node
    /// takes it over at once) instead of a random name.
    pub fn with_owner(mut self, owner: String) -> Self {
        self.owner = owner;
        self
    }

    /// Runs until `cancel` fires.
    pub async fn run(self, cancel: CancellationToken) {
        let poll = Duration::from_millis(self.cfg.partner_webhook_poll_interval_ms.max(10));
        loop {
            let n = match self.tick().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(target: "partner::feed", error = %e, "partner feed follower tick failed");
                    0
                }
            };
            if n > 0 {
                continue;
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Processes one batch if this process holds the lease. Returns how many transitions were read.
    pub async fn tick(&self) -> Result<usize, StoreError> {
        if !self.db.try_lease(CURSOR, &self.owner, LEASE_MS).await? {
            return Ok(0);
        }
        // The lease creates the cursor empty: start of the feed.
        let cursor: i64 = match self.db.get_cursor(CURSOR).await?.as_deref() {
            None | Some("") => 0,
            Some(c) => c
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("partner cursor {CURSOR} = {c:?}")))?,
        };
        let rows = transitions::after(&self.db.pool, cursor, FEED_BATCH_MAX, None).await?;
        let Some(last) = rows.last().map(|t| t.seq) else {
            return Ok(0);
        };
        // Read everything first, then write the whole batch (its events, their deliveries and the cursor) in one
        // transaction: one durable commit per batch instead of one per event.
        struct Pending {
            partner: String,
            kind: &'static str,
            payout_id: String,
            source: String,
            data: serde_json::Value,
            webhook: Option<String>,
        }
        let mut pending = Vec::new();
        let mut webhooks: std::collections::HashMap<i64, Option<String>> = Default::default();
        for t in &rows {
            let partner = t.partner_id.to_string();
            let seen_before = if t.to_state == "refunded" {
                self.db.has_events_for_payout(&partner, &t.remittance_id).await?
                    || pending
                        .iter()
                        .any(|p: &Pending| p.partner == partner && p.payout_id == t.remittance_id)
            } else {
                false
            };
            let Some(kind) = event_type(t.from_state.as_deref(), &t.to_state, seen_before) else {
                continue;
            };
            let detail: serde_json::Value = serde_json::from_str(&t.detail)
                .map_err(|e| StoreError::Corrupt(format!("transition detail: {e}")))?;
            let payout = self.db.partner_payout(t.partner_id, &t.remittance_id).await?;
            let webhook = match webhooks.get(&t.partner_id) {
                Some(w) => w.clone(),
                None => {
                    let w = self
                        .db
                        .partner_key_and_webhook(t.partner_id)
                        .await?
                        .and_then(|(_, url)| url);
                    webhooks.insert(t.partner_id, w.clone());
                    w
                }
            };
            let data = serde_json::json!({
                "payout": payout,
                "from": t.from_state,
                "to": t.to_state,
                "cause": t.cause,
                "detail": public_detail(&detail),
                "transition_seq": t.seq,
                "at_unix_ms": t.at_unix_ms,
            });
            pending.push(Pending {
                partner,
                kind,
                payout_id: t.remittance_id.clone(),
                source: format!("transition:{}", t.seq),
                data,
                webhook,
            });
        }
        let events: Vec<NewEvent<'_>> = pending
            .iter()
            .map(|p| NewEvent {
                partner_id: &p.partner,
                event_type: p.kind,
                payout_id: Some(&p.payout_id),
                source_key: Some(&p.source),
                data: p.data.clone(),
                webhook_url: p.webhook.as_deref(),
                max_attempts: self.cfg.partner_webhook_max_attempts,
            })
            .collect();
        let last = last.to_string();
        let added = self.db.append_events(&events, Some((CURSOR, &last))).await?;
        for (p, seq) in pending.iter().zip(added) {
            if seq.is_some() {
                metrics::counter!("remesa_partner_events_total", "type" => p.kind).increment(1);
            }
        }
        Ok(rows.len())
    }
}

/// The transition detail without anything a partner must not learn (a pickup code never travels to partners).
fn public_detail(detail: &serde_json::Value) -> serde_json::Value {
    match detail {
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.iter()
                .filter(|(k, _)| !k.contains("pickup") && !k.contains("preimage") && !k.contains("code"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        _ => serde_json::Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_map_to_partner_events() {
        assert_eq!(
            event_type(Some("funds_locked"), "payout_assigned", false),
            Some("payout.created")
        );
        assert_eq!(
            event_type(Some("payout_assigned"), "payout_accepted", false),
            Some("payout.accepted")
        );
        assert_eq!(
            event_type(Some("payout_accepted"), "paid", false),
            Some("payout.paid")
        );
        assert_eq!(event_type(Some("paid"), "settled", false), Some("payout.settled"));
        assert_eq!(
            event_type(Some("payout_accepted"), "refund_pending", false),
            Some("payout.cancelled")
        );
        assert_eq!(
            event_type(Some("payout_assigned"), "pending_funds", false),
            Some("payout.cancelled")
        );
        assert_eq!(event_type(Some("funds_locked"), "refund_pending", false), None);
        assert_eq!(
            event_type(Some("refund_pending"), "refunded", true),
            Some("payout.refunded")
        );
        assert_eq!(event_type(Some("refund_pending"), "refunded", false), None);
        assert_eq!(event_type(None, "quoted", false), None);
        assert_eq!(event_type(Some("quoted"), "pending_funds", false), None);
    }

    #[test]
    fn pickup_codes_never_reach_partners() {
        let d = serde_json::json!({"reference": "BANK-1", "pickup_code": "ABCD", "code": "x", "reason": "closed"});
        let p = public_detail(&d);
        assert_eq!(p, serde_json::json!({"reference": "BANK-1", "reason": "closed"}));
    }
}
