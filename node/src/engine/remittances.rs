//! Remittances: creation from a quote (the one balance check, `ensure_available`), authorization, look-ups,
//! lists and cancellation.

use alloy::primitives::{Address, B256, U256};
use serde_json::json;
use sqlx::Row;

use super::authorization::{self, AuthTerms};
use super::quotes::use_quote;
use super::state::State;
use super::types::*;
use super::views::*;
use super::{Engine, EngineError, Result, insert_transition, ledger, transition};
use crate::chain::{self, DepositJob, Terms};
use crate::domain::{IdempotencyKey, PayoutMethod, PhoneNumber, PickupCode, RemittanceId};
use crate::store::now_ms;
use crate::store::{StoreError, quotes, users};

impl Engine {
    /// Creates a remittance from a quote (single use). For a custodial sender the node signs the EIP-3009
    /// authorization and queues the deposit in the same transaction (state `pending_funds`); a self-custody sender
    /// gets state `quoted` and an `authorization_request` to sign (then [`Engine::authorize`]).
    ///
    /// Idempotent on `idempotency_key`: the same key and request return the same remittance (`created = false`);
    /// the same key with another quote, sender or recipient is [`EngineError::IdempotencyMismatch`].
    #[tracing::instrument(skip_all, fields(quote_id = %req.quote_id))]
    pub async fn create_remittance(
        &self,
        req: CreateRemittance,
        idempotency_key: &IdempotencyKey,
    ) -> Result<(Remittance, bool)> {
        let chain_info = self.chain_required()?.clone();
        let phone = PhoneNumber::parse(&req.recipient.phone, None)
            .map_err(|e| EngineError::Invalid(format!("recipient phone: {e}")))?;
        let recipient_name = text("recipient name", &req.recipient.name, NAME_LEN_MAX)?;
        let account = req
            .recipient
            .account
            .as_deref()
            .map(|a| text("recipient account", a, 64))
            .transpose()?;

        let mut tx = self.write_tx().await?;
        let existing = sqlx::query(&format!(
            "SELECT {R_COLS} FROM remittances WHERE idempotency_key = $1"
        ))
        .bind(idempotency_key.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = existing {
            let r = RemRow::from_row(&row)?;
            let same_sender = match &req.sender {
                SenderRef::User { user_id } => r.sender_user_id.as_deref() == Some(user_id.as_str()),
                SenderRef::Address { address } => r.sender_address.eq_ignore_ascii_case(address.trim()),
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
            SenderRef::Address { address } => {
                let a = parse_address("sender address", address)?;
                if users::is_custodial_address(&mut *tx, &addr_text(a)).await? {
                    return Err(EngineError::Invalid(
                        "this address is custodial: send as its user".into(),
                    ));
                }
                (None, a, None)
            }
        };
        if signer.is_some() {
            self.ensure_available(&mut tx, sender_address, total).await?;
        }

        let code = PickupCode::generate();
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
            claim_hash: code.claim_hash(),
        };
        let id_b = terms.remittance_id(chain_info.escrow);
        let id = format!("{id_b:#x}");
        use_quote(&mut tx, &req.quote_id, &id).await?;
        sqlx::query(
            "INSERT INTO remittances (id, quote_id, idempotency_key, sender_user_id, sender_address, custodial, \
             partner_id, recipient_phone, recipient_name, recipient_account, country, currency, payout_method, \
             send_amount_base_units, fee_base_units, total_base_units, payout_amount_minor, rate, expiry_unix_s, \
             claim_hash, pickup_code, state, created_at_unix_ms, updated_at_unix_ms) VALUES ($1, $2, $3, $4, $5, $6, \
             $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, 'quoted', $22, $22)",
        )
        .bind(&id)
        .bind(&req.quote_id)
        .bind(idempotency_key.as_str())
        .bind(&sender_user_id)
        .bind(addr_text(sender_address))
        .bind(i64::from(signer.is_some()))
        .bind(partner_id)
        .bind(phone.as_str())
        .bind(&recipient_name)
        .bind(&account)
        .bind(&q.country)
        .bind(&q.currency)
        .bind(&method)
        .bind(q.send_amount_base_units)
        .bind(q.fee_base_units)
        .bind(total)
        .bind(q.payout_amount_minor)
        .bind(&q.rate)
        .bind(i64::try_from(expiry_unix_s).unwrap_or(i64::MAX))
        .bind(format!("{:#x}", terms.claim_hash))
        .bind(code.expose())
        .bind(now)
        .execute(&mut *tx)
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
        if let Some(signer) = signer {
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
        let row = load(&mut tx, &id, "")
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
        let pending = sqlx::query(
            "SELECT CAST(COALESCE(SUM(total_base_units), 0) AS BIGINT) FROM remittances \
             WHERE sender_address = $1 AND state IN ('quoted', 'pending_funds')",
        )
        .bind(addr_text(sender))
        .fetch_one(&mut **tx)
        .await?
        .try_get::<i64, _>(0)?;
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
        sqlx::query("UPDATE remittances SET auth_valid_after = $1, auth_valid_before = $2, auth_signature = $3 WHERE id = $4")
            .bind(i64::try_from(after).unwrap_or(i64::MAX))
            .bind(i64::try_from(before).unwrap_or(i64::MAX))
            .bind(authorization::signature_hex(&auth))
            .bind(id)
            .execute(&mut **tx)
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
        let r = load(&mut tx, id, self.db().dialect.for_update())
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
        let row = load(&mut tx, id, "")
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        tx.commit().await?;
        Ok(self.to_api(&row))
    }

    pub async fn remittance(&self, id: &RemittanceId) -> Result<Option<Remittance>> {
        let id = &id.to_string();
        let mut conn = self.db().pool.acquire().await?;
        Ok(load(&mut conn, id, "").await?.map(|r| self.to_api(&r)))
    }

    /// The recipient's pickup code (for the chat bridge to tell the recipient). Never put it in logs.
    pub async fn pickup_code(&self, id: &RemittanceId) -> Result<PickupCode> {
        let id = &id.to_string();
        let mut conn = self.db().pool.acquire().await?;
        load(&mut conn, id, "")
            .await?
            .ok_or(EngineError::NotFound("remittance"))?
            .pickup()
    }

    /// A partner's remittance by the recipient's pickup code (counter agents look codes up).
    pub async fn find_by_pickup_code(
        &self,
        partner_id: u64,
        code: &PickupCode,
    ) -> Result<Option<Remittance>> {
        let r = sqlx::query(&format!(
            "SELECT {R_COLS} FROM remittances WHERE claim_hash = $1 AND partner_id = $2"
        ))
        .bind(format!("{:#x}", code.claim_hash()))
        .bind(i64::try_from(partner_id).unwrap_or(-1))
        .fetch_optional(&self.db().pool)
        .await?;
        Ok(r.as_ref()
            .map(RemRow::from_row)
            .transpose()?
            .map(|r| self.to_api(&r)))
    }

    /// Newest first, cursor-paginated (`next_cursor` of the previous page).
    pub async fn list_remittances(
        &self,
        filter: &RemittanceFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Remittance>> {
        let limit = limit.clamp(1, self.config().page_limit_max);
        let mut sql = format!("SELECT {R_COLS} FROM remittances WHERE 1 = 1");
        let mut binds: Vec<BindVal> = Vec::new();
        let mut n = 0usize;
        let mut next = |v: BindVal, binds: &mut Vec<BindVal>| {
            binds.push(v);
            n += 1;
            format!("${n}")
        };
        if let Some(u) = &filter.sender_user_id {
            let p = next(BindVal::Text(u.clone()), &mut binds);
            sql.push_str(&format!(" AND sender_user_id = {p}"));
        }
        if let Some(a) = &filter.sender_address {
            let p = next(BindVal::Text(a.trim().to_ascii_lowercase()), &mut binds);
            sql.push_str(&format!(" AND sender_address = {p}"));
        }
        if let Some(pid) = filter.partner_id {
            let p = next(BindVal::Int(i64::try_from(pid).unwrap_or(-1)), &mut binds);
            sql.push_str(&format!(" AND partner_id = {p}"));
        }
        if !filter.states.is_empty() {
            let ps: Vec<String> = filter
                .states
                .iter()
                .map(|s| next(BindVal::Text(s.as_str().to_owned()), &mut binds))
                .collect();
            sql.push_str(&format!(" AND state IN ({})", ps.join(", ")));
        }
        if let Some(c) = cursor {
            let (ts, id) = c
                .split_once('_')
                .and_then(|(t, i)| Some((t.parse::<i64>().ok()?, i.to_owned())))
                .ok_or_else(|| EngineError::Invalid("bad cursor".into()))?;
            let p1 = next(BindVal::Int(ts), &mut binds);
            let p2 = next(BindVal::Text(id), &mut binds);
            sql.push_str(&format!(
                " AND (created_at_unix_ms < {p1} OR (created_at_unix_ms = {p1} AND id < {p2}))"
            ));
        }
        let pl = next(BindVal::Int(i64::from(limit) + 1), &mut binds);
        sql.push_str(&format!(" ORDER BY created_at_unix_ms DESC, id DESC LIMIT {pl}"));
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = match b {
                BindVal::Text(t) => q.bind(t),
                BindVal::Int(i) => q.bind(i),
            };
        }
        let rows = q.fetch_all(&self.db().pool).await?;
        let mut items: Vec<RemRow> = rows.iter().map(RemRow::from_row).collect::<Result<_>>()?;
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

    /// Cancels before the funds are locked. `by_user`: when given, only that sender may cancel. Funds that
    /// arrive anyway (a deposit already in flight) are refunded at expiry.
    pub async fn cancel(&self, id: &RemittanceId, by_user: Option<&str>) -> Result<Remittance> {
        let id = &id.to_string();
        let mut tx = self.write_tx().await?;
        let r = load(&mut tx, id, self.db().dialect.for_update())
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
        if r.payout_method == PayoutMethod::RemesaWallet && r.state != State::Quoted {
            return Err(EngineError::Conflict(format!(
                "an instant transfer to a Remesa wallet cannot be cancelled once authorized (it is {})",
                r.state
            )));
        }
        if !matches!(r.state, State::Quoted | State::PendingFunds) {
            return Err(EngineError::Conflict(format!(
                "a remittance that is {} cannot be cancelled",
                r.state
            )));
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
        let row = load(&mut tx, id, "")
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        tx.commit().await?;
        Ok(self.to_api(&row))
    }
}

enum BindVal {
    Text(String),
    Int(i64),
}
