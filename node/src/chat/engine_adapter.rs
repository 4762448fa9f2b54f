//! [`ChatBackend`] over the node's [`Engine`]: users, balances, quotes, remittances and the transition feed.

use std::str::FromStr;

use rust_decimal::Decimal;

use super::backend::{
    BackendError, Balance, BoxFuture, COLLECTIBLE_MAX, ChatBackend, Collectible, EngineUser, KycView,
    NotificationView, QuoteRequest, TransitionEvent,
};
use super::model::{PICKUP_CODE_PLACEHOLDER, Platform};
use super::render::{QuoteView, RemittanceView};
use crate::domain::PhoneNumber;
use crate::domain::{IdempotencyKey, PartnerId, PayoutMethod, RemittanceId};
use crate::engine::{
    CreateRemittance, Engine, EngineError, NewUser, Recipient, Remittance, RemittanceFilter, SenderRef, State,
};

/// Remittances searched when a user types a reference.
const REFERENCE_SEARCH_MAX: u32 = 50;

/// The engine as the chat sees it.
#[derive(Debug, Clone)]
pub struct EngineBackend {
    engine: Engine,
}

impl EngineBackend {
    /// Wraps the engine.
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }
}

/// The short reference users see and type: the first 8 hex digits of the remittance id.
pub fn short_reference(id: &str) -> String {
    id.trim_start_matches("0x").chars().take(8).collect()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap_or_default()
}

fn internal(e: EngineError) -> BackendError {
    match e {
        EngineError::NotFound(_) => BackendError::NotFound,
        EngineError::QuoteExpired | EngineError::QuoteUsed => BackendError::QuoteExpired,
        EngineError::NoRoute => BackendError::NoRoute,
        EngineError::RecipientNotRegistered { phone } => BackendError::RecipientNotRegistered { phone },
        EngineError::Invalid(m) => BackendError::NoQuote(m),
        EngineError::LimitExceeded {
            window,
            limit_usd,
            left_usd,
            tier,
            ..
        } => BackendError::LimitExceeded {
            window,
            limit: limit_usd,
            left: left_usd,
            tier,
        },
        EngineError::SenderNameRequired => BackendError::SenderNameRequired,
        EngineError::RecipientKycRequired { phone, .. } => BackendError::RecipientKycRequired { phone },
        EngineError::TravelRuleDataRequired { threshold_usd } => BackendError::TravelRuleDataRequired {
            threshold: threshold_usd,
        },
        EngineError::InsufficientFunds { available, required } => BackendError::InsufficientFunds {
            balance: dec(&available),
            needed: dec(&required),
            currency: "USD".to_owned(),
        },
        other => BackendError::Internal(other.to_string()),
    }
}

fn kyc_view(c: crate::engine::customers::Customer) -> KycView {
    KycView {
        tier: c.tier,
        status: c.status,
        missing: c.missing,
    }
}

fn view(r: &Remittance) -> RemittanceView {
    RemittanceView {
        remittance_id: r.id.clone(),
        reference: short_reference(&r.id),
        state: r.state.as_str().to_owned(),
        send_amount: dec(&r.send_amount),
        send_currency: "USD".to_owned(),
        payout_amount: dec(&r.payout_amount),
        payout_currency: r.currency.clone(),
        recipient: if r.recipient_name.is_empty() {
            r.recipient_phone.clone()
        } else {
            r.recipient_name.clone()
        },
        created_at_unix_s: r.created_at_unix_ms / 1000,
        tx_hash: r
            .release_tx_hash
            .clone()
            .or_else(|| r.refund_tx_hash.clone())
            .or_else(|| r.lock_tx_hash.clone()),
        cancel_until_unix_s: None,
    }
}

impl EngineBackend {
    async fn user_address(&self, user_id: &str) -> Result<String, BackendError> {
        Ok(self
            .engine
            .user(user_id)
            .await
            .map_err(internal)?
            .ok_or(BackendError::NotFound)?
            .address)
    }

    /// The user's remittance by short reference (prefix of the id), or the latest.
    async fn find(&self, user_id: &str, reference: Option<&str>) -> Result<Remittance, BackendError> {
        let filter = RemittanceFilter {
            sender_user_id: Some(user_id.to_owned()),
            ..RemittanceFilter::default()
        };
        let limit = if reference.is_some() {
            REFERENCE_SEARCH_MAX
        } else {
            1
        };
        let page = self
            .engine
            .list_remittances(&filter, None, limit)
            .await
            .map_err(internal)?;
        let wanted = reference.map(|r| r.trim_start_matches("0x").to_ascii_lowercase());
        page.items
            .into_iter()
            .find(|r| {
                wanted
                    .as_deref()
                    .is_none_or(|w| r.id.trim_start_matches("0x").starts_with(w))
            })
            .ok_or(BackendError::NotFound)
    }
}

impl ChatBackend for EngineBackend {
    fn ensure_user<'a>(
        &'a self,
        platform: Platform,
        user_key: &'a str,
        phone: Option<&'a PhoneNumber>,
        display_name: Option<&'a str>,
    ) -> BoxFuture<'a, Result<EngineUser, BackendError>> {
        Box::pin(async move {
            // The engine stores only numbers valid per libphonenumber; test numbers (+1555…) chat without one.
            let phone = phone.and_then(|p| PhoneNumber::parse(p.as_str(), None).ok());
            let (user, created) = self
                .engine
                .register_user(NewUser {
                    channel: platform.as_str().to_owned(),
                    external_id: user_key.to_owned(),
                    phone,
                    display_name: display_name.map(|n| n.chars().take(100).collect()),
                    lang: None,
                    self_custody_address: None,
                })
                .await
                .map_err(|e| BackendError::Internal(e.to_string()))?;
            Ok(EngineUser {
                user_id: user.id,
                wallet_address: user.address,
                created,
                display_name: user.display_name.clone(),
            })
        })
    }

    fn balance<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<Balance, BackendError>> {
        Box::pin(async move {
            let address = self.user_address(user_id).await?;
            let b = self.engine.balance(&address).await.map_err(internal)?;
            Ok(Balance {
                amount: dec(&b.balance),
                currency: "USD".to_owned(),
            })
        })
    }

    fn quote<'a>(
        &'a self,
        user_id: &'a str,
        req: &'a QuoteRequest,
    ) -> BoxFuture<'a, Result<QuoteView, BackendError>> {
        Box::pin(async move {
            let country = req
                .recipient_phone
                .region()
                .map(|r| r.alpha2().to_owned())
                .ok_or_else(|| BackendError::NoQuote("unknown recipient country".into()))?;
            let q = self
                .engine
                .quote(crate::engine::QuoteRequest {
                    send_amount: req.amount.to_string(),
                    country,
                    currency: None,
                    payout_method: req.payout_method,
                    ttl_s: None,
                    recipient_phone: Some(req.recipient_phone.clone()),
                })
                .await
                .map_err(internal)?;
            let address = self.user_address(user_id).await?;
            // Tell the sender now rather than after "yes" when a sending limit refuses the amount (checked again,
            // atomically, when the quote is used).
            if let Some(h) = self
                .engine
                .send_headroom(&address, &q.country)
                .await
                .map_err(internal)?
                && let Some((window, limit, left)) = h.refusal(dec(&q.send_amount))
            {
                return Err(BackendError::LimitExceeded {
                    window,
                    limit,
                    left,
                    tier: h.tier,
                });
            }
            // Tell the sender now rather than after "yes" when the wallet cannot cover the total.
            let balance = self.engine.balance(&address).await.map_err(internal)?;
            let (available, total) = (dec(&balance.available), dec(&q.total));
            if available < total {
                return Err(BackendError::InsufficientFunds {
                    balance: available,
                    needed: total,
                    currency: "USD".into(),
                });
            }
            let now_s = crate::store::now_ms() / 1000;
            Ok(QuoteView {
                quote_id: q.id,
                send_amount: dec(&q.send_amount),
                send_currency: "USD".to_owned(),
                fee_fixed: dec(&q.fee_fixed),
                fee_bps: q.fee_bps,
                fee_total: dec(&q.fee),
                total_debit: total,
                rate: dec(&q.rate),
                mid_market_rate: Some(dec(&q.mid_market_rate)).filter(|m| *m > Decimal::ZERO),
                payout_amount: dec(&q.payout_amount),
                payout_currency: q.currency,
                payout_method: q.payout_method,
                partner_name: q.partner_name,
                recipient_name: req.recipient_name.clone(),
                recipient_phone: req.recipient_phone.to_string(),
                expires_at_unix_s: q.expires_at_unix_ms / 1000,
                now_unix_s: now_s,
            })
        })
    }

    fn set_sender_name<'a>(
        &'a self,
        user_id: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.engine.set_user_name(user_id, name).await.map_err(internal)?;
            Ok(())
        })
    }

    fn open_case<'a>(
        &'a self,
        user_id: &'a str,
        remittance_id: &'a str,
        description: &'a str,
    ) -> BoxFuture<'a, Result<(String, i64), BackendError>> {
        Box::pin(async move {
            let id = RemittanceId::parse(remittance_id).map_err(|_| BackendError::NotFound)?;
            match self.engine.open_case(user_id, &id, description).await {
                Ok((case, _)) => Ok((case.id, case.answer_due_unix_ms / 1000)),
                Err(EngineError::Conflict(_)) => Err(BackendError::ReportTooLate),
                Err(e) => Err(internal(e)),
            }
        })
    }

    fn kyc<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<KycView, BackendError>> {
        Box::pin(async move { Ok(kyc_view(self.engine.customer(user_id).await.map_err(internal)?)) })
    }

    fn submit_kyc_field<'a>(
        &'a self,
        user_id: &'a str,
        field: crate::domain::KycField,
        value: &'a str,
    ) -> BoxFuture<'a, Result<KycView, BackendError>> {
        Box::pin(async move {
            // The open request's tier (an operator may have asked again for a tier-2 field), else the next one.
            let c = self.engine.customer(user_id).await.map_err(internal)?;
            let tier = match c.requested_tier {
                Some(t) if c.status == crate::domain::KycStatus::NeedsInfo && t > c.tier => t,
                _ => c.tier.saturating_add(1),
            };
            let sub = crate::engine::customers::KycSubmission {
                tier,
                fields: [(field, value.to_owned())].into(),
            };
            match self.engine.submit_kyc(user_id, sub, "chat").await {
                Ok(c) => Ok(kyc_view(c)),
                Err(EngineError::Invalid(m)) => Err(BackendError::Invalid(m)),
                Err(e) => Err(internal(e)),
            }
        })
    }

    fn kyc_notices_since<'a>(
        &'a self,
        since_unix_ms: i64,
        limit: u32,
    ) -> BoxFuture<'a, Result<(Vec<crate::engine::customers::KycNotice>, i64), BackendError>> {
        Box::pin(async move {
            self.engine
                .kyc_notices_since(since_unix_ms, limit)
                .await
                .map_err(internal)
        })
    }

    fn confirm<'a>(
        &'a self,
        user_id: &'a str,
        quote_id: &'a str,
        req: &'a QuoteRequest,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<RemittanceView, BackendError>> {
        Box::pin(async move {
            let key = IdempotencyKey::parse(idempotency_key)
                .map_err(|e| BackendError::Internal(format!("idempotency key: {e}")))?;
            let name = req
                .recipient_name
                .clone()
                .unwrap_or_else(|| req.recipient_phone.to_string());
            let (r, _created) = self
                .engine
                .create_remittance(
                    CreateRemittance {
                        quote_id: quote_id.to_owned(),
                        sender: SenderRef::User {
                            user_id: user_id.to_owned(),
                        },
                        recipient: Recipient {
                            phone: req.recipient_phone.clone(),
                            name,
                            account: None,
                        },
                    },
                    &key,
                )
                .await
                .map_err(internal)?;
            let mut v = view(&r);
            // Locked remittances can be cancelled for a full refund within the window (the engine's rule).
            if matches!(
                r.payout_method,
                PayoutMethod::CashPickup | PayoutMethod::BankDeposit | PayoutMethod::MobileWallet
            ) {
                let window = i64::try_from(self.engine.config().cancel_window_s).unwrap_or(0);
                v.cancel_until_unix_s = Some(v.created_at_unix_s.saturating_add(window));
            }
            Ok(v)
        })
    }

    fn cancel<'a>(
        &'a self,
        user_id: &'a str,
        reference: Option<&'a str>,
    ) -> BoxFuture<'a, Result<RemittanceView, BackendError>> {
        Box::pin(async move {
            let r = self.find(user_id, reference).await?;
            let id = RemittanceId::parse(&r.id).map_err(|e| BackendError::Internal(e.to_string()))?;
            match self.engine.cancel(&id, Some(user_id)).await {
                Ok(r) => Ok(view(&r)),
                Err(EngineError::Conflict(_)) => Err(BackendError::NotCancellable {
                    state: r.state.as_str().to_owned(),
                }),
                Err(e) => Err(internal(e)),
            }
        })
    }

    fn remittance<'a>(
        &'a self,
        user_id: &'a str,
        reference: Option<&'a str>,
    ) -> BoxFuture<'a, Result<RemittanceView, BackendError>> {
        Box::pin(async move { self.find(user_id, reference).await.map(|r| view(&r)) })
    }

    fn history<'a>(
        &'a self,
        user_id: &'a str,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<RemittanceView>, BackendError>> {
        Box::pin(async move {
            let filter = RemittanceFilter {
                sender_user_id: Some(user_id.to_owned()),
                ..RemittanceFilter::default()
            };
            let page = self
                .engine
                .list_remittances(&filter, None, limit)
                .await
                .map_err(internal)?;
            Ok(page.items.iter().map(view).collect())
        })
    }

    fn events_after<'a>(
        &'a self,
        cursor: i64,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<TransitionEvent>, BackendError>> {
        Box::pin(async move {
            let events = self
                .engine
                .events_after(cursor, limit, None)
                .await
                .map_err(internal)?;
            Ok(events
                .into_iter()
                .map(|e| TransitionEvent {
                    seq: e.seq,
                    tx_hash: e
                        .detail
                        .get("tx_hash")
                        .and_then(|v| v.as_str())
                        .map(str::to_owned),
                    failure: ["error", "reason"]
                        .iter()
                        .find_map(|k| e.detail.get(*k).and_then(|v| v.as_str()))
                        .map(str::to_owned),
                    remittance_id: e.remittance_id,
                    to_state: e.to.as_str().to_owned(),
                    cause: e.cause,
                })
                .collect())
        })
    }

    fn notification_view<'a>(
        &'a self,
        remittance_id: &'a str,
    ) -> BoxFuture<'a, Result<NotificationView, BackendError>> {
        Box::pin(async move {
            let remittance_id = RemittanceId::parse(remittance_id).map_err(|_| BackendError::NotFound)?;
            let r = self
                .engine
                .remittance(&remittance_id)
                .await
                .map_err(internal)?
                .ok_or(BackendError::NotFound)?;
            // Remittances of self-custody API senders have no chat user: nobody to tell on the sender side.
            let sender_user_id = r.sender_user_id.clone().unwrap_or_default();
            let sender = match &r.sender_user_id {
                Some(id) => self.engine.user(id).await.map_err(internal)?,
                None => None,
            };
            let sender_label = sender
                .as_ref()
                .and_then(|u| match (&u.display_name, &u.phone) {
                    (Some(n), Some(p)) => Some(format!("{n} ({p})")),
                    (Some(n), None) => Some(n.clone()),
                    (None, Some(p)) => Some(p.clone()),
                    (None, None) => None,
                })
                .unwrap_or_else(|| "Someone".to_owned());
            // P2P transfers (partner id 0) have no partner.
            let partner = match PartnerId::new(r.partner_id) {
                Ok(id) => self.engine.partner(id).await.map_err(internal)?,
                Err(_) => None,
            };
            let method = r.payout_method;
            // The code itself is filled in at delivery (`ChatService::reveal`), so no stored message holds it.
            let pickup_code =
                (method == PayoutMethod::CashPickup).then(|| PICKUP_CODE_PLACEHOLDER.to_owned());
            let partner_name = partner
                .map(|p| p.name)
                .unwrap_or_else(|| format!("partner {}", r.partner_id));
            Ok(NotificationView {
                reference: short_reference(&r.id),
                sender_user_id,
                sender_label,
                recipient_phone: r.recipient_phone.clone(),
                state: r.state.as_str().to_owned(),
                payout_amount: dec(&r.payout_amount),
                payout_currency: r.currency.clone(),
                payout_method: method,
                // Partners publish no agent locations yet: the notice names the partner.
                where_to_collect: None,
                partner_name,
                pickup_code,
                expires_at_unix_s: i64::try_from(r.expiry_unix_s).ok(),
            })
        })
    }

    fn collectible_pickups<'a>(
        &'a self,
        recipient_phone: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Collectible>, BackendError>> {
        Box::pin(async move {
            let filter = RemittanceFilter {
                recipient_phone: Some(recipient_phone.to_owned()),
                states: vec![State::FundsLocked, State::PayoutAssigned, State::PayoutAccepted],
                ..RemittanceFilter::default()
            };
            let page = self
                .engine
                .list_remittances(&filter, None, COLLECTIBLE_MAX)
                .await
                .map_err(internal)?;
            Ok(page
                .items
                .iter()
                .filter(|r| r.payout_method == PayoutMethod::CashPickup)
                .map(|r| Collectible {
                    remittance_id: r.id.clone(),
                    reference: short_reference(&r.id),
                    sender_user_id: r.sender_user_id.clone(),
                })
                .collect())
        })
    }

    fn pickup_code<'a>(
        &'a self,
        remittance_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, BackendError>> {
        Box::pin(async move {
            let remittance_id = RemittanceId::parse(remittance_id).map_err(|_| BackendError::NotFound)?;
            Ok(self
                .engine
                .pickup_code(&remittance_id)
                .await
                .map_err(internal)?
                .map(|c| c.display_grouped()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_short_hex() {
        assert_eq!(short_reference("0x5f0c1a2b3c4d5e6f"), "5f0c1a2b");
        assert_eq!(short_reference("ab"), "ab");
    }
}
