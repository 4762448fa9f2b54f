//! An in-process stand-in for the remittance engine behind the `ChatBackend` trait, used to test the chat layer
//! (webhooks, dedupe, conversation, notifications) on a real database while the engine is tested on its own. The
//! full-node conversation test (`full_node.rs`) uses the real engine instead.

#![allow(dead_code)]

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;

use remesa::chat::backend::KycView;
use remesa::chat::backend::{
    BackendError, Balance, BoxFuture, ChatBackend, Collectible, EngineUser, NotificationView, QuoteRequest,
    TransitionEvent,
};
use remesa::chat::model::Platform;
use remesa::chat::render::{QuoteView, RemittanceView};
use remesa::domain::{KycField, KycStatus, PayoutMethod, PhoneNumber};

const TIER1: [KycField; 5] = [
    KycField::FullName,
    KycField::BirthDate,
    KycField::Address,
    KycField::IdType,
    KycField::IdNumber,
];

fn kyc_view(fields: &std::collections::BTreeMap<KycField, String>, tier: u8) -> KycView {
    let missing: Vec<KycField> = if tier > 0 {
        vec![KycField::DocumentRef]
    } else {
        TIER1.into_iter().filter(|f| !fields.contains_key(f)).collect()
    };
    KycView {
        tier,
        status: if tier > 0 || fields.is_empty() {
            KycStatus::Accepted
        } else {
            KycStatus::NeedsInfo
        },
        missing,
    }
}
use rust_decimal::Decimal;

#[derive(Debug, Default)]
pub struct FakeEngine {
    pub state: Mutex<FakeState>,
}

#[derive(Debug, Default)]
pub struct FakeState {
    pub users: HashMap<String, EngineUser>,
    pub balances: HashMap<String, Decimal>,
    pub quotes: HashMap<String, (String, QuoteRequest, QuoteView)>,
    pub remittances: Vec<(String, String, QuoteView, String)>, // (id, user, quote, state)
    pub confirms: Vec<String>,                                 // idempotency keys seen
    pub by_key: HashMap<String, String>,                       // idempotency key -> remittance id
    pub events: Vec<TransitionEvent>,
    pub fail_next_quote: bool,
    /// Names set with `set_sender_name`, by user id.
    pub names: HashMap<String, String>,
    /// KYC fields given, by user id, and the tier in force (the fake grants tier 1 once its fields are complete).
    pub kyc: HashMap<String, (std::collections::BTreeMap<KycField, String>, u8)>,
}

impl FakeState {
    /// The remittance with this id (the fake's references are its ids).
    fn remittance(&self, id: &str) -> Result<&(String, String, QuoteView, String), BackendError> {
        self.remittances
            .iter()
            .find(|r| r.0 == id)
            .ok_or(BackendError::NotFound)
    }
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap_or_default()
}

fn now_s() -> i64 {
    remesa::chat::store::now_ms() / 1000
}

impl FakeEngine {
    pub fn transition(&self, remittance_id: &str, to: &str) {
        let mut st = self.state.lock().expect("lock");
        let seq = i64::try_from(st.events.len()).unwrap_or(0) + 1;
        if let Some(r) = st.remittances.iter_mut().find(|r| r.0 == remittance_id) {
            r.3 = to.to_owned();
        }
        st.events.push(TransitionEvent {
            seq,
            remittance_id: remittance_id.to_owned(),
            to_state: to.to_owned(),
            cause: String::new(),
            tx_hash: Some(format!("0x{seq:064x}")),
            failure: (to == "failed").then(|| {
                "deposit refused on chain: AuthorizationFailed: Blacklistable: account is blacklisted"
                    .to_owned()
            }),
        });
    }

    fn view(r: &(String, String, QuoteView, String)) -> RemittanceView {
        RemittanceView {
            remittance_id: r.0.clone(),
            reference: r.0.clone(),
            state: r.3.clone(),
            send_amount: r.2.send_amount,
            send_currency: r.2.send_currency.clone(),
            payout_amount: r.2.payout_amount,
            payout_currency: r.2.payout_currency.clone(),
            recipient: r
                .2
                .recipient_name
                .clone()
                .unwrap_or_else(|| r.2.recipient_phone.clone()),
            created_at_unix_s: now_s(),
            tx_hash: None,
            cancel_until_unix_s: Some(now_s() + 1800),
        }
    }
}

impl ChatBackend for FakeEngine {
    fn ensure_user<'a>(
        &'a self,
        platform: Platform,
        user_key: &'a str,
        _phone: Option<&'a PhoneNumber>,
        _name: Option<&'a str>,
    ) -> BoxFuture<'a, Result<EngineUser, BackendError>> {
        Box::pin(async move {
            let mut st = self.state.lock().expect("lock");
            let key = format!("{}:{user_key}", platform.as_str());
            let n = st.users.len();
            let created = !st.users.contains_key(&key);
            let user = st
                .users
                .entry(key)
                .or_insert_with(|| EngineUser {
                    user_id: format!("u{n}"),
                    wallet_address: format!("0x{:040x}", n + 1),
                    created: true,
                    display_name: None,
                })
                .clone();
            st.balances
                .entry(user.user_id.clone())
                .or_insert_with(|| d("1000"));
            Ok(EngineUser { created, ..user })
        })
    }

    fn set_sender_name<'a>(
        &'a self,
        user_id: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let mut st = self.state.lock().expect("lock");
            st.names.insert(user_id.to_owned(), name.to_owned());
            Ok(())
        })
    }

    fn open_case<'a>(
        &'a self,
        _user_id: &'a str,
        remittance_id: &'a str,
        _description: &'a str,
    ) -> BoxFuture<'a, Result<(String, i64), BackendError>> {
        Box::pin(async move { Ok((format!("case-{remittance_id}"), now_s() + 90 * 86_400)) })
    }

    fn kyc<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<KycView, BackendError>> {
        Box::pin(async move {
            let st = self.state.lock().expect("lock");
            let (fields, tier) = st.kyc.get(user_id).cloned().unwrap_or_default();
            Ok(kyc_view(&fields, tier))
        })
    }

    fn submit_kyc_field<'a>(
        &'a self,
        user_id: &'a str,
        field: KycField,
        value: &'a str,
    ) -> BoxFuture<'a, Result<KycView, BackendError>> {
        Box::pin(async move {
            let today = time::OffsetDateTime::now_utc().date();
            let v = field
                .normalize(value, today)
                .map_err(|e| BackendError::Invalid(e.to_string()))?;
            let mut st = self.state.lock().expect("lock");
            let entry = st.kyc.entry(user_id.to_owned()).or_default();
            entry.0.insert(field, v);
            if TIER1.iter().all(|f| entry.0.contains_key(f)) {
                entry.1 = 1;
            }
            Ok(kyc_view(&entry.0, entry.1))
        })
    }

    fn kyc_notices_since<'a>(
        &'a self,
        since_unix_ms: i64,
        _limit: u32,
    ) -> BoxFuture<'a, Result<(Vec<remesa::engine::customers::KycNotice>, i64), BackendError>> {
        Box::pin(async move { Ok((Vec::new(), since_unix_ms)) })
    }

    fn balance<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<Balance, BackendError>> {
        Box::pin(async move {
            let st = self.state.lock().expect("lock");
            Ok(Balance {
                amount: st.balances.get(user_id).copied().unwrap_or_default(),
                currency: "USD".into(),
            })
        })
    }

    fn quote<'a>(
        &'a self,
        user_id: &'a str,
        req: &'a QuoteRequest,
    ) -> BoxFuture<'a, Result<QuoteView, BackendError>> {
        Box::pin(async move {
            let mut st = self.state.lock().expect("lock");
            if std::mem::take(&mut st.fail_next_quote) {
                return Err(BackendError::Internal("database is locked".into()));
            }
            if !req.recipient_phone.as_str().starts_with("+502") {
                return Err(BackendError::NoQuote(
                    "no partner pays out to that country yet".into(),
                ));
            }
            let fee = (d("1.99") + req.amount * d("0.005"))
                .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::AwayFromZero);
            let rate = d("7.75");
            let q = QuoteView {
                quote_id: format!("q{}", st.quotes.len() + 1),
                send_amount: req.amount,
                send_currency: "USD".into(),
                fee_fixed: d("1.99"),
                fee_bps: 50,
                fee_total: fee,
                total_debit: req.amount + fee,
                rate,
                mid_market_rate: Some(d("7.80")),
                payout_amount: (req.amount * rate)
                    .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero),
                payout_currency: "GTQ".into(),
                payout_method: req.payout_method,
                partner_name: "Demo Pagos".into(),
                recipient_name: req.recipient_name.clone(),
                recipient_phone: req.recipient_phone.to_string(),
                expires_at_unix_s: now_s() + 300,
                now_unix_s: now_s(),
            };
            st.quotes
                .insert(q.quote_id.clone(), (user_id.to_owned(), req.clone(), q.clone()));
            Ok(q)
        })
    }

    fn confirm<'a>(
        &'a self,
        user_id: &'a str,
        quote_id: &'a str,
        _req: &'a QuoteRequest,
        key: &'a str,
    ) -> BoxFuture<'a, Result<RemittanceView, BackendError>> {
        Box::pin(async move {
            let mut st = self.state.lock().expect("lock");
            st.confirms.push(key.to_owned());
            if let Some(id) = st.by_key.get(key).cloned() {
                let r = st
                    .remittances
                    .iter()
                    .find(|r| r.0 == id)
                    .ok_or(BackendError::NotFound)?;
                return Ok(Self::view(r));
            }
            let (owner, _req, q) = st.quotes.remove(quote_id).ok_or(BackendError::QuoteExpired)?;
            if owner != user_id {
                return Err(BackendError::QuoteExpired);
            }
            let id = format!("R{}", st.remittances.len() + 1);
            st.by_key.insert(key.to_owned(), id.clone());
            let bal = st.balances.entry(user_id.to_owned()).or_default();
            *bal -= q.total_debit;
            st.remittances
                .push((id.clone(), user_id.to_owned(), q, "pending_funds".into()));
            let r = st.remittances.last().ok_or(BackendError::NotFound)?;
            Ok(Self::view(r))
        })
    }

    fn cancel<'a>(
        &'a self,
        user_id: &'a str,
        _reference: Option<&'a str>,
    ) -> BoxFuture<'a, Result<RemittanceView, BackendError>> {
        Box::pin(async move {
            let mut st = self.state.lock().expect("lock");
            let r = st
                .remittances
                .iter_mut()
                .rev()
                .find(|r| r.1 == user_id)
                .ok_or(BackendError::NotFound)?;
            if r.3 != "pending_funds" {
                return Err(BackendError::NotCancellable { state: r.3.clone() });
            }
            r.3 = "cancelled".into();
            Ok(Self::view(r))
        })
    }

    fn remittance<'a>(
        &'a self,
        user_id: &'a str,
        reference: Option<&'a str>,
    ) -> BoxFuture<'a, Result<RemittanceView, BackendError>> {
        Box::pin(async move {
            let st = self.state.lock().expect("lock");
            st.remittances
                .iter()
                .rev()
                .find(|r| r.1 == user_id && reference.is_none_or(|x| x == r.0))
                .map(Self::view)
                .ok_or(BackendError::NotFound)
        })
    }

    fn history<'a>(
        &'a self,
        user_id: &'a str,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<RemittanceView>, BackendError>> {
        Box::pin(async move {
            let st = self.state.lock().expect("lock");
            Ok(st
                .remittances
                .iter()
                .rev()
                .filter(|r| r.1 == user_id)
                .take(limit as usize)
                .map(Self::view)
                .collect())
        })
    }

    fn events_after<'a>(
        &'a self,
        cursor: i64,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<TransitionEvent>, BackendError>> {
        Box::pin(async move {
            let st = self.state.lock().expect("lock");
            Ok(st
                .events
                .iter()
                .filter(|e| e.seq > cursor)
                .take(limit as usize)
                .cloned()
                .collect())
        })
    }

    fn notification_view<'a>(
        &'a self,
        remittance_id: &'a str,
    ) -> BoxFuture<'a, Result<NotificationView, BackendError>> {
        Box::pin(async move {
            let st = self.state.lock().expect("lock");
            let r = st.remittance(remittance_id)?;
            Ok(NotificationView {
                reference: r.0.clone(),
                sender_user_id: r.1.clone(),
                sender_label: "Ana".into(),
                recipient_phone: r.2.recipient_phone.clone(),
                state: r.3.clone(),
                payout_amount: r.2.payout_amount,
                payout_currency: r.2.payout_currency.clone(),
                payout_method: r.2.payout_method,
                partner_name: r.2.partner_name.clone(),
                where_to_collect: Some("any Demo Pagos agent".into()),
                pickup_code: (r.2.payout_method == PayoutMethod::CashPickup)
                    .then(|| remesa::chat::model::PICKUP_CODE_PLACEHOLDER.to_owned()),
                expires_at_unix_s: Some(now_s() + 86_400),
            })
        })
    }

    fn collectible_pickups<'a>(
        &'a self,
        recipient_phone: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Collectible>, BackendError>> {
        Box::pin(async move {
            let st = self.state.lock().expect("lock");
            Ok(st
                .remittances
                .iter()
                .rev()
                .filter(|r| {
                    r.2.recipient_phone == recipient_phone
                        && r.2.payout_method == PayoutMethod::CashPickup
                        && matches!(
                            r.3.as_str(),
                            "funds_locked" | "payout_assigned" | "payout_accepted"
                        )
                })
                .map(|r| Collectible {
                    remittance_id: r.0.clone(),
                    reference: r.0.clone(),
                    sender_user_id: Some(r.1.clone()),
                })
                .collect())
        })
    }

    fn pickup_code<'a>(
        &'a self,
        remittance_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, BackendError>> {
        Box::pin(async move {
            let st = self.state.lock().expect("lock");
            let r = st.remittance(remittance_id)?;
            Ok((r.2.payout_method == PayoutMethod::CashPickup).then(|| FAKE_PICKUP_CODE.to_owned()))
        })
    }
}

/// The pickup code the fake engine gives every cash pickup.
pub const FAKE_PICKUP_CODE: &str = "ABCD-2345-EFGH";
