//! Sending limits per KYC tier and corridor (`config::compliance`): per remittance, in the last 24 hours and in the
//! last 30 days, in USD (the stablecoin). Checked inside the write transaction that uses the quote: engine writes
//! are serialized by the feed lock, so concurrent sends cannot pass a limit together. A refusal is recorded as a
//! compliance event (`store::compliance`), in its own transaction after the refused one rolled back.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::views::tokens;
use super::{Engine, EngineError, Result};
use crate::config::compliance::rule_for;
use crate::store::compliance::{self as events, NewComplianceEvent};
use crate::store::now_ms;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Which limit a send would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitWindow {
    /// The most one remittance may send.
    PerTransaction,
    /// The most sent in the last 24 hours.
    Day,
    /// The most sent in the last 30 days.
    ThirtyDays,
}

impl LimitWindow {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitWindow::PerTransaction => "per_transaction",
            LimitWindow::Day => "day",
            LimitWindow::ThirtyDays => "30_days",
        }
    }
}

impl std::fmt::Display for LimitWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LimitWindow::PerTransaction => "per-transfer",
            LimitWindow::Day => "24-hour",
            LimitWindow::ThirtyDays => "30-day",
        })
    }
}

/// What a sender may still send in a corridor now (USD); `None` where the window has no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headroom {
    /// The sender's KYC tier.
    pub tier: u8,
    /// The most one remittance may send.
    pub per_transaction_usd: Option<Decimal>,
    /// The 24-hour limit, and what is left of it (never negative).
    pub day_limit_usd: Option<Decimal>,
    pub day_left_usd: Option<Decimal>,
    /// The 30-day limit, and what is left of it (never negative).
    pub thirty_days_limit_usd: Option<Decimal>,
    pub thirty_days_left_usd: Option<Decimal>,
}

impl Headroom {
    /// The most the next remittance may send (the smallest of the three), if any window is limited.
    pub fn max_send_usd(&self) -> Option<Decimal> {
        [
            self.per_transaction_usd,
            self.day_left_usd,
            self.thirty_days_left_usd,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The first window `send_usd` would pass, with its limit and what is left of it.
    pub fn refusal(&self, send_usd: Decimal) -> Option<(LimitWindow, Decimal, Decimal)> {
        let checks = [
            (
                LimitWindow::PerTransaction,
                self.per_transaction_usd,
                self.per_transaction_usd,
            ),
            (LimitWindow::Day, self.day_limit_usd, self.day_left_usd),
            (
                LimitWindow::ThirtyDays,
                self.thirty_days_limit_usd,
                self.thirty_days_left_usd,
            ),
        ];
        checks
            .into_iter()
            .find_map(|(w, limit, left)| match (limit, left) {
                (Some(limit), Some(left)) if send_usd > left => Some((w, limit, left)),
                _ => None,
            })
    }
}

impl Engine {
    /// The headroom of `sender_address` (lower-case 0x-hex) sending to `country`; `None` when no
    /// rule limits the sender's tier there.
    async fn headroom_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        sender_address: &str,
        country: &str,
    ) -> Result<Option<Headroom>> {
        let tier = events::kyc_tier_of_address(&mut *conn, sender_address)
            .await?
            .and_then(|t| u8::try_from(t).ok())
            .unwrap_or(0);
        let Some(rule) = rule_for(&self.config().limits, tier, &country.to_ascii_uppercase()) else {
            return Ok(None);
        };
        let d = self.token_decimals();
        let now = now_ms();
        let left = |limit: Option<Decimal>, sent_base: i64| {
            limit.map(|l| (l - tokens(sent_base, d)).max(Decimal::ZERO))
        };
        let day = match rule.per_day_usd {
            Some(_) => events::sent_since(&mut *conn, sender_address, now - DAY_MS).await?,
            None => 0,
        };
        let month = match rule.per_30d_usd {
            Some(_) => events::sent_since(&mut *conn, sender_address, now - 30 * DAY_MS).await?,
            None => 0,
        };
        let headroom = Headroom {
            tier,
            per_transaction_usd: rule.per_tx_usd,
            day_limit_usd: rule.per_day_usd,
            day_left_usd: left(rule.per_day_usd, day),
            thirty_days_limit_usd: rule.per_30d_usd,
            thirty_days_left_usd: left(rule.per_30d_usd, month),
        };
        Ok(Some(headroom))
    }

    /// What `sender_address` may still send to `country` now; `None` when not limited.
    pub async fn send_headroom(&self, sender_address: &str, country: &str) -> Result<Option<Headroom>> {
        let mut conn = self.db().pool.acquire().await?;
        let address = sender_address.trim().to_ascii_lowercase();
        self.headroom_in(&mut conn, &address, country).await
    }

    /// Refuses a send of `send_base` base units from `sender_address` to `country` that would pass a limit. Call it
    /// inside the write transaction that uses the quote.
    pub(super) async fn check_limits(
        &self,
        conn: &mut sqlx::AnyConnection,
        sender_address: &str,
        country: &str,
        send_base: i64,
    ) -> Result<()> {
        let Some(headroom) = self.headroom_in(conn, sender_address, country).await? else {
            return Ok(());
        };
        let send_usd = tokens(send_base, self.token_decimals());
        match headroom.refusal(send_usd) {
            None => Ok(()),
            Some((window, limit, left)) => Err(EngineError::LimitExceeded {
                window,
                limit_usd: limit,
                left_usd: left,
                tier: headroom.tier,
                subject: sender_address.to_owned(),
                send_usd,
                country: country.to_owned(),
            }),
        }
    }

    /// Records a refused send as a compliance event (its own transaction: the refused one rolled back).
    pub(super) async fn record_limit_refusal(&self, e: &EngineError) {
        let EngineError::LimitExceeded {
            window,
            limit_usd,
            left_usd,
            tier,
            subject,
            send_usd,
            country,
        } = e
        else {
            return;
        };
        let detail = json!({"window": window.as_str(), "limit_usd": limit_usd.to_string(),
            "left_usd": left_usd.to_string(), "send_usd": send_usd.to_string(), "tier": tier, "country": country});
        let reason = e.to_string();
        let detail = detail.to_string();
        let result = async {
            let mut tx = self.db().begin().await?;
            events::insert(
                &mut *tx,
                &NewComplianceEvent {
                    kind: "limit_refused",
                    subject,
                    actor: "engine",
                    reason: &reason,
                    detail: &detail,
                    at_unix_ms: now_ms(),
                },
            )
            .await?;
            tx.commit().await?;
            Ok::<_, crate::store::StoreError>(())
        }
        .await;
        if let Err(err) = result {
            // The refusal itself stands; losing its record is logged loudly.
            tracing::error!(target: "compliance", error = %err, subject, "a limit refusal could not be recorded");
        }
        tracing::info!(target: "compliance", subject, window = window.as_str(), %limit_usd, %left_usd, "send refused by a limit");
    }
}
