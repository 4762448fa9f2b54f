//! Remittances: creation from a quote (the one balance check, `ensure_available`), authorization, look-ups,
//! lists and cancellation.

use alloy::primitives::{Address, B256, U256};
use serde_json::json;

use super::authorization::{self, AuthTerms};
use super::quotes::use_quote;
use super::state::State;
use super::types::*;
use super::views::*;
use super::{Engine, EngineError, Result, insert_transition, ledger, transition};
use crate::chain::{self, DepositJob, Terms};
use crate::domain::{IdempotencyKey, PayoutMethod, PickupCode, RemittanceId};
use crate::store::now_ms;
use crate::store::{StoreError, partners, quotes, remittances, users};

impl Engine {
    /// Creates a remittance from a quote (single use). For a custodial sender the node signs the EIP-3009
    /// authorization and queues the deposit in the same transaction (state `pending_funds`); a self-custody sender
    /// gets state `quoted` and an `authorization_request` to sign (then [`Engine::authorize`]).
    ///
    /// Idempotent on `idempotency_key`: the same key and request return the same remittance (`created = false`);
    /// the same key with another quote, sender or recipient is [`EngineError::IdempotencyMismatch`].
    ///
    /// Refused with [`EngineError::LimitExceeded`] when the send would pass a sending limit of the sender's KYC tier
    /// in the corridor (checked in the same transaction; the refusal is recorded as a compliance event).
    ///
    /// The sender and recipient are screened against the sanctions lists first (`screening`): a hit creates the
    /// remittance `on_hold`, with nothing signed or queued, for the operator to release or reject.
    #[tracing::instrument(skip_all, fields(quote_id = %req.quote_id))]
    pub async fn create_remittance(
        &self,
        req: CreateRemittance,
        idempotency_key: &IdempotencyKey,
    ) -> Result<(Remittance, bool)> {
        let result = self.create_remittance_in_tx(req, idempotency_key).await;
        if let Err(e @ EngineError::LimitExceeded { .. }) = &result {
            self.record_limit_refusal(e).await;
        }
        result
    }

    async fn create_remittance_in_tx(
        &self,
        req: CreateRemittance,
        idempotency_key: &IdempotencyKey,
    ) -> Result<(Remittance, bool)> {
        let chain_info = self.chain_required()?.clone();
        let phone = req.recipient.phone.clone();
        let recipient_name = text("recipient name", &req.recipient.name, NAME_LEN_MAX)?;
        let account = req
            .recipient
            .account
            .as_deref()
            .map(|a| text("recipient account", a, 64))
            .transpose()?;
        // Sanctions screening, before the transaction that would use the authorization: a hit holds the remittance.
        let sender = self.sender_identity(&req.sender).await?;
        let recipient_country = req.recipient.phone.region().map(|r| r.alpha2().to_owned());
        let screened = self.screen_send(&sender, &recipient_name, recipient_country.as_deref())?;

        let mut tx = self.write_tx().await?;
        let existing = remittances::by_idempotency_key(&mut tx, idempotency_key.as_str()).await?;
        if let Some(row) = existing {
            let r = RemRow::try_from(row)?;
            let same_sender = match &req.sender {
                SenderRef::User { user_id } => r.sender_user_id.as_deref() == Some(user_id.as_str()),
                SenderRef::Address { address, .. } => r.sender_address.eq_ignore_ascii_case(address.trim()),
            };
            if r.quote_id == req.quote_id && same_sender && r.recipient_phone == phone.as_str() {
                drop(tx);
                return Ok((self.to_api(&r), false));
            }
            return Err(EngineError::IdempotencyMismatch);
        }
        let q = quotes::terms_for_update(&mut *tx, self.db().dialect, &req.quote_id)
            .await?
            .ok_or(EngineError::NotFound("quote"))?;
        if q.used_by.is_some() {
            return Err(EngineError::QuoteUsed);
        }
        let now = now_ms();
        if q.expires_at_unix_ms <= now {
            return Err(EngineError::QuoteExpired);
        }
        let partner_id = q.partner_id;
        let method = q.payout_method.clone();
        let payout_method = PayoutMethod::parse(&method)
            .ok_or_else(|| StoreError::Corrupt(format!("quote payout method {method:?}")))?;
        if payout_method == PayoutMethod::RemesaWallet {
            return self
                .create_p2p(
                    tx,
                    &req,
                    idempotency_key,
                    &phone,
                    &recipient_name,
                    &q,
                    &chain_info,
                    &screened,
                )
                .await;
        }
        if matches!(
            payout_method,
            PayoutMethod::BankDeposit | PayoutMethod::MobileWallet
        ) && account.is_none()
        {
            return Err(EngineError::Invalid(
                "recipient account is required for this payout method".into(),
            ));
        }
        let total = q.total_base_units;
        // The partner's settlement address and signer go into the terms the sender signs: a later change of the
        // partner's addresses never moves this remittance's money.
        let partner = partners::by_id(&mut *tx, partner_id)
            .await?
            .ok_or(EngineError::NotFound("partner"))?;
        if partner.status != "active" {
            return Err(EngineError::Conflict(format!(
                "partner {partner_id} is {}, it takes no new payouts",
                partner.status
            )));
        }
        let settlement = parse_address("partner settlement address", &partner.settlement_address)?;
        let partner_signer = match partner.signer_address.as_deref() {
            Some(s) => parse_address("partner signer address", s)?,
            None => settlement,
        };

        // the sender
        let (sender_user_id, sender_address, signer) = match &req.sender {
            SenderRef::User { user_id } => {
                let u = users::custody(&mut *tx, user_id)
                    .await?
                    .ok_or(EngineError::NotFound("user"))?;
                let signer = self.signer_of(&u)?;
                let address = u.address;
                (
                    Some(user_id.clone()),
                    parse_address("sender address", &address)?,
                    signer,
                )
            }
            SenderRef::Address { address, .. } => {
                let a = parse_address("sender address", address)?;
                if users::is_custodial_address(&mut *tx, &addr_text(a)).await? {
                    return Err(EngineError::Invalid(
                        "this address is custodial: send as its user".into(),
                    ));
                }
                (None, a, None)
            }
        };
        self.check_limits(
            &mut tx,
            &addr_text(sender_address),
            &q.country,
            q.send_amount_base_units,
        )
        .await?;
        if signer.is_some() {
            self.ensure_available(&mut tx, sender_address, total).await?;
        }
        if self.config().kyc_recipient_countries.contains(&q.country) {
            let verified = match users::first_by_phone(&mut *tx, phone.as_str()).await? {
                Some(u) => crate::store::customers::tier(&mut *tx, &u.id).await?.unwrap_or(0) >= 1,
                None => false,
            };
            if !verified {
                return Err(EngineError::RecipientKycRequired {
                    phone: phone.as_str().to_owned(),
                    country: q.country.clone(),
                });
            }
        }
        let travel_rule = self
            .travel_rule_payload(
                &mut tx,
                &super::travel_rule::TravelRuleParties {
                    sender_address: &addr_text(sender_address),
                    country: &q.country,
                    send_usd: tokens(q.send_amount_base_units, self.token_decimals()),
                    recipient_name: &recipient_name,
                    recipient_account: account.as_deref().unwrap_or(phone.as_str()),
                },
            )
            .await?;

        // The claim secret (salt + pickup code) is derived from the claim key and the quote id, never stored.
        let claim_key = self.claim_key_required()?;
        let secret = claim_key.secret(&req.quote_id);
        let pickup_lookup =
            (payout_method == PayoutMethod::CashPickup).then(|| claim_key.lookup(secret.code()));
        let expiry_unix_s = u64::try_from(now / 1000)
            .unwrap_or(0)
            .saturating_add(self.config().remittance_expiry_s);
        let terms = Terms {
            sender: sender_address,
            amount_base_units: U256::from(
                u64::try_from(total).map_err(|_| EngineError::Internal("total".into()))?,
            ),
            partner_id: u64::try_from(partner_id).map_err(|_| EngineError::Internal("partner".into()))?,
            expiry_unix_s,
            settlement,
            partner_signer,
            claim_hash: secret.claim_hash(),
        };
        let id_b = terms.remittance_id(chain_info.escrow);
        let id = format!("{id_b:#x}");
        use_quote(&mut tx, &req.quote_id, &id).await?;
        let sender_text = addr_text(sender_address);
        let claim_hash = format!("{:#x}", terms.claim_hash);
        remittances::insert(
            &mut tx,
            &remittances::NewRemittanceRow {
                id: &id,
                quote_id: &req.quote_id,
                idempotency_key: idempotency_key.as_str(),
                sender_user_id: sender_user_id.as_deref(),
                sender_address: &sender_text,
                custodial: signer.is_some(),
                partner_id,
                recipient_phone: phone.as_str(),
                recipient_name: &recipient_name,
                recipient_account: account.as_deref(),
                recipient_address: None,
                country: &q.country,
                currency: &q.currency,
                payout_method: &method,
                send_amount_base_units: q.send_amount_base_units,
                fee_base_units: q.fee_base_units,
                total_base_units: total,
                payout_amount_minor: q.payout_amount_minor,
                rate: &q.rate,
                expiry_unix_s: i64::try_from(expiry_unix_s).unwrap_or(i64::MAX),
                claim_hash: &claim_hash,
                pickup_lookup: pickup_lookup.as_deref(),
                settlement_address: Some(&addr_text(settlement)),
                partner_signer: Some(&addr_text(partner_signer)),
                travel_rule: travel_rule.as_deref(),
                created_at_unix_ms: now,
            },
        )
        .await?;
        insert_transition(
            &mut tx,
            &id,
            None,
            State::Quoted,
            "created",
            json!({"quote_id": req.quote_id}),
            now,
        )
        .await?;
        let held = self.apply_screen(&mut tx, &id, &screened, false).await?;
        if let Some(signer) = signer.filter(|_| !held) {
            let auth_terms = self.auth_terms(&chain_info, &terms, id_b, now);
            let auth = authorization::sign(&signer, &chain_info.domain, &auth_terms)
                .map_err(|e| EngineError::Internal(e.to_string()))?;
            self.store_authorization_and_enqueue(
                &mut tx,
                &id,
                id_b,
                terms,
                auth,
                "authorized",
                json!({"by": "custodial key"}),
            )
            .await?;
        }
        let row = load(&mut tx, &id)
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        tx.commit().await?;
        metrics::counter!("remesa_remittances_created_total").increment(1);
        Ok((self.to_api(&row), true))
    }

    /// Refuses when the sender's ledger balance minus what its pending remittances will pull is below `total`.
    pub(super) async fn ensure_available(
        &self,
        tx: &mut crate::store::Tx,
        sender: Address,
        total: i64,
    ) -> Result<()> {
        let balance = ledger::balance(&mut **tx, &ledger::wallet(&addr_text(sender))).await?;
        let pending = remittances::pending_total(&mut **tx, &addr_text(sender)).await?;
        let available = balance.saturating_sub(pending);
        if available < total {
            let d = self.token_decimals();
            return Err(EngineError::InsufficientFunds {
                available: tokens(available.max(0), d).normalize().to_string(),
                required: tokens(total, d).normalize().to_string(),
            });
        }
        Ok(())
    }

    pub(super) fn auth_terms(
        &self,
        chain_info: &super::ChainInfo,
        terms: &Terms,
        id: B256,
        now_ms: i64,
    ) -> AuthTerms {
        let _ = now_ms;
        AuthTerms {
            from: terms.sender,
            escrow: chain_info.escrow,
            value: terms.amount_base_units,
            valid_after_unix_s: 0,
            valid_before_unix_s: terms.expiry_unix_s,
            nonce: id,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn store_authorization_and_enqueue(
        &self,
        tx: &mut crate::store::Tx,
        id: &str,
        id_b: B256,
        terms: Terms,
        auth: crate::chain::Authorization,
        cause: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        let after = u64::try_from(auth.valid_after_unix_s).unwrap_or(u64::MAX);
        let before = u64::try_from(auth.valid_before_unix_s).unwrap_or(u64::MAX);
        remittances::set_authorization(
            tx,
            id,
            i64::try_from(after).unwrap_or(i64::MAX),
            i64::try_from(before).unwrap_or(i64::MAX),
            &authorization::signature_hex(&auth),
        )
        .await?;
        transition(tx, id, State::Quoted, State::PendingFunds, cause, detail, false).await?;
        chain::enqueue_deposit(
            tx,
            DepositJob {
                remittance_id: id_b,
                terms,
                authorization: auth,
            },
        )
        .await?;
        Ok(())
    }

    /// A self-custody sender's signature (made with `remesa-wallet remit`): verified against the terms, stored, and
    /// the deposit queued (`quoted` → `pending_funds`).
    pub async fn authorize(&self, id: &RemittanceId, input: AuthorizationInput) -> Result<Remittance> {
        let id = &id.to_string();
        let chain_info = self.chain_required()?.clone();
        let mut tx = self.write_tx().await?;
        let r = load_for_update(&mut tx, self.db().dialect, id)
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        if r.state != State::Quoted || r.custodial {
            return Err(EngineError::Conflict(format!(
                "remittance is {}, not awaiting a signature",
                r.state
            )));
        }
        let now_s = u64::try_from(now_ms() / 1000).unwrap_or(0);
        if input.valid_before_unix_s <= now_s + 60 || input.valid_after_unix_s >= input.valid_before_unix_s {
            return Err(EngineError::Invalid(
                "the authorization window must be open for at least another minute".into(),
            ));
        }
        let terms = r.terms()?;
        let id_b = r.remittance_b256()?;
        let t = AuthTerms {
            from: terms.sender,
            escrow: chain_info.escrow,
            value: terms.amount_base_units,
            valid_after_unix_s: input.valid_after_unix_s,
            valid_before_unix_s: input.valid_before_unix_s,
            nonce: id_b,
        };
        let auth = authorization::verify(&chain_info.domain, &t, &input.signature)
            .map_err(|e| EngineError::Invalid(format!("authorization: {e}")))?;
        self.store_authorization_and_enqueue(
            &mut tx,
            id,
            id_b,
            terms,
            auth,
            "authorized",
            json!({"by": "sender signature"}),
        )
        .await?;
        let row = load(&mut tx, id)
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        tx.commit().await?;
        Ok(self.to_api(&row))
    }

    pub async fn remittance(&self, id: &RemittanceId) -> Result<Option<Remittance>> {
        let id = &id.to_string();
        let mut conn = self.db().pool.acquire().await?;
        Ok(load(&mut conn, id).await?.map(|r| self.to_api(&r)))
    }

    /// The recipient's pickup code, derived again from the claim key (nothing stores it). Only the chat bridge calls
    /// this, when it delivers the recipient's message (whose stored copy holds a placeholder) or re-sends a lost
    /// code; no endpoint returns a code. Never put it in logs. `None` when the remittance is not a cash pickup.
    pub async fn pickup_code(&self, id: &RemittanceId) -> Result<Option<PickupCode>> {
        let id = &id.to_string();
        let mut conn = self.db().pool.acquire().await?;
        let r = load(&mut conn, id)
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        if r.payout_method != PayoutMethod::CashPickup {
            return Ok(None);
        }
        Ok(Some(r.claim_secret(self.claim_key_required()?)?.code().clone()))
    }

    /// The keyed lookup hash of a pickup code (what `remittances.pickup_lookup` holds), for counter-agent lookups.
    pub fn pickup_lookup(&self, code: &PickupCode) -> Result<String> {
        Ok(self.claim_key_required()?.lookup(code))
    }

    /// A partner's remittance by the recipient's pickup code (counter agents look codes up).
    pub async fn find_by_pickup_code(
        &self,
        partner_id: u64,
        code: &PickupCode,
    ) -> Result<Option<Remittance>> {
        let Ok(partner_id) = i64::try_from(partner_id) else {
            return Ok(None);
        };
        let lookup = self.pickup_lookup(code)?;
        remittances::by_pickup_lookup(&self.db().pool, &lookup, partner_id)
            .await?
            .map(|r| Ok(self.to_api(&RemRow::try_from(r)?)))
            .transpose()
    }

    /// Newest first, cursor-paginated (`next_cursor` of the previous page).
    pub async fn list_remittances(
        &self,
        filter: &RemittanceFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Remittance>> {
        let limit = limit.clamp(1, self.config().page_limit_max);
        let sender_address = filter
            .sender_address
            .as_ref()
            .map(|a| a.trim().to_ascii_lowercase());
        let before = cursor
            .map(|c| {
                c.split_once('_')
                    .and_then(|(t, i)| Some((t.parse::<i64>().ok()?, i)))
                    .ok_or_else(|| EngineError::Invalid("bad cursor".into()))
            })
            .transpose()?;
        // an id past i64 matches nothing
        let partner_id = filter.partner_id.map(|p| i64::try_from(p).unwrap_or(-1));
        let list_filter = remittances::ListFilter {
            sender_user_id: filter.sender_user_id.as_deref(),
            recipient_phone: filter.recipient_phone.as_deref(),
            sender_address: sender_address.as_deref(),
            partner_id,
            states: filter.states.iter().map(|s| s.as_str()).collect(),
            before,
        };
        let rows = remittances::list(&self.db().pool, &list_filter, i64::from(limit) + 1).await?;
        let mut items: Vec<RemRow> = rows.into_iter().map(RemRow::try_from).collect::<Result<_>>()?;
        let more = items.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_cursor = if more {
            items.last().map(|r| format!("{}_{}", r.created_at_unix_ms, r.id))
        } else {
            None
        };
        Ok(Page {
            items: items.iter().map(|r| self.to_api(r)).collect(),
            next_cursor,
        })
    }

    /// Cancels: before the funds are locked, the remittance is `cancelled` (funds that arrive anyway are refunded at
    /// expiry); once locked, within `cancel_window_s` of its creation and until the partner paid, it goes to
    /// `refund_pending` (cause `sender_cancelled`): the partner is told (`payout.cancelled`) and the whole amount,
    /// fees included, is refunded — at once when the partner then declines with its signature (the escrow's
    /// cooperative `cancel`), else at expiry. `by_user`: when given, only that sender may cancel.
    pub async fn cancel(&self, id: &RemittanceId, by_user: Option<&str>) -> Result<Remittance> {
        let id = &id.to_string();
        let mut tx = self.write_tx().await?;
        let r = load_for_update(&mut tx, self.db().dialect, id)
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        if let Some(u) = by_user
            && r.sender_user_id.as_deref() != Some(u)
        {
            return Err(EngineError::NotFound("remittance"));
        }
        if r.state == State::Cancelled {
            drop(tx);
            return Ok(self.to_api(&r));
        }
        if r.payout_method == PayoutMethod::RemesaWallet && !matches!(r.state, State::Quoted | State::OnHold)
        {
            return Err(EngineError::Conflict(format!(
                "an instant transfer to a Remesa wallet cannot be cancelled once authorized (it is {})",
                r.state
            )));
        }
        if r.state == State::RefundPending {
            drop(tx);
            return Ok(self.to_api(&r));
        }
        let locked = matches!(
            r.state,
            State::FundsLocked | State::PayoutAssigned | State::PayoutAccepted
        );
        let window_ms = i64::try_from(self.config().cancel_window_s.saturating_mul(1000)).unwrap_or(i64::MAX);
        if locked && now_ms() <= r.created_at_unix_ms.saturating_add(window_ms) {
            transition(
                &mut tx,
                id,
                r.state,
                State::RefundPending,
                "sender_cancelled",
                json!({"by": by_user.unwrap_or("api"), "refund": "at_expiry unless the partner declines at once"}),
                false,
            )
            .await?;
            let row = load(&mut tx, id)
                .await?
                .ok_or(EngineError::NotFound("remittance"))?;
            tx.commit().await?;
            return Ok(self.to_api(&row));
        }
        if !matches!(r.state, State::Quoted | State::OnHold | State::PendingFunds) {
            return Err(EngineError::Conflict(if locked {
                format!(
                    "the {}-minute cancellation window of this remittance has passed",
                    self.config().cancel_window_s / 60
                )
            } else {
                format!("a remittance that is {} cannot be cancelled", r.state)
            }));
        }
        transition(
            &mut tx,
            id,
            r.state,
            State::Cancelled,
            "cancelled",
            json!({"by": by_user.unwrap_or("api")}),
            false,
        )
        .await?;
        let row = load(&mut tx, id)
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        tx.commit().await?;
        Ok(self.to_api(&row))
    }
}
