//! P2P transfers into a Remesa wallet (payout method `remesa_wallet`): quote and creation.

use alloy::primitives::{Address, U256};
use alloy::sol_types::SolValue;
use serde_json::json;

use super::authorization::{self, AuthTerms};
use super::quotes::{QuoteUnits, use_quote};
use super::state::State;
use super::types::*;
use super::views::*;
use super::{Engine, EngineError, Result, insert_transition, transition_direct};
use crate::chain::{self, TransferJob};
use crate::domain::{IdempotencyKey, PayoutMethod, PhoneNumber, parse_currency};
use crate::store::quotes::QuoteTermsRow;
use crate::store::{now_ms, remittances, users};

impl Engine {
    /// A quote for a P2P transfer into the recipient's Remesa wallet (payout method `remesa_wallet`): USD
    /// stablecoin, no partner (partner id 0), no FX (rate 1) and no fee ([`P2P_FEE_BASE_UNITS`]). Bound to the
    /// recipient's phone, which must belong to a registered user with a custodial (Remesa) wallet.
    pub(super) async fn quote_p2p(&self, req: QuoteRequest) -> Result<Quote> {
        let decimals = self.token_decimals();
        let send = send_amount(&req.send_amount, decimals)?;
        let c = country(&req.country)?;
        if let Some(cur) = req.currency.as_deref() {
            let cur = parse_currency(cur).map_err(|e| EngineError::Invalid(e.to_string()))?;
            if cur != "USD" {
                return Err(EngineError::Invalid(format!(
                    "a Remesa wallet holds USD (stablecoin), not {cur}"
                )));
            }
        }
        let phone = req.recipient_phone.clone().ok_or_else(|| {
            EngineError::Invalid("recipient_phone is required for payout method remesa_wallet".into())
        })?;
        let mut conn = self.db().pool.acquire().await?;
        p2p_recipient(&mut conn, &phone).await?;
        drop(conn);
        let send_base = to_base(send, decimals)?;
        let fee = tokens(P2P_FEE_BASE_UNITS, decimals);
        let total_base = send_base
            .checked_add(P2P_FEE_BASE_UNITS)
            .ok_or_else(|| EngineError::Invalid("amount too large".into()))?;
        let total = tokens(total_base, decimals);
        let cfg = self.config();
        let ttl_s = req
            .ttl_s
            .map_or(cfg.quote_ttl_s_default, u64::from)
            .clamp(1, cfg.quote_ttl_s_max);
        let now = now_ms();
        let quote = Quote {
            id: uuid::Uuid::now_v7().to_string(),
            partner_id: 0,
            partner_name: "Remesa".into(),
            country: c,
            currency: "USD".into(),
            payout_method: PayoutMethod::RemesaWallet,
            token_decimals: decimals,
            send_amount: send.normalize().to_string(),
            fee: fee.normalize().to_string(),
            fee_fixed: fee.normalize().to_string(),
            fee_variable: "0".into(),
            fee_bps: 0,
            total: total.normalize().to_string(),
            rate: "1".into(),
            payout_amount: send.normalize().to_string(),
            mid_market_rate: "1".into(),
            all_in_cost: fee.normalize().to_string(),
            all_in_cost_percent: "0".into(),
            rounding:
                "no conversion: the recipient's Remesa wallet receives exactly the amount sent, in USD \
                       stablecoin; no fee, the node pays the gas"
                    .into(),
            expires_at_unix_ms: now.saturating_add(i64::try_from(ttl_s * 1000).unwrap_or(i64::MAX)),
            created_at_unix_ms: now,
            recipient_phone: Some(phone.as_str().to_owned()),
        };
        // P2P: no FX (rate and mid-market rate 1), the payout is the amount sent.
        self.insert_quote(
            &quote,
            QuoteUnits {
                send_base,
                fee_base: P2P_FEE_BASE_UNITS,
                total_base,
                decimals,
                payout_minor: send_base,
                mid_market_rate: Some("1".into()),
            },
        )
        .await?;
        Ok(quote)
    }

    /// Creates a P2P remittance into the recipient's Remesa wallet from a `remesa_wallet` quote: the sender's
    /// custodial key signs an EIP-3009 `TransferWithAuthorization` (nonce = the remittance id) and the transfer is
    /// queued in the chain outbox in the same database transaction (`quoted` → `pending_funds`). It settles when the
    /// indexer sees the token `Transfer` (see the engine's chain sink).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn create_p2p(
        &self,
        mut tx: crate::store::Tx,
        req: &CreateRemittance,
        idempotency_key: &IdempotencyKey,
        phone: &PhoneNumber,
        recipient_name: &str,
        q: &QuoteTermsRow,
        chain_info: &super::ChainInfo,
        screened: &super::screening::Screened,
    ) -> Result<(Remittance, bool)> {
        if q.recipient_phone.as_deref() != Some(phone.as_str()) {
            return Err(EngineError::Invalid(
                "this quote was made for another recipient".into(),
            ));
        }
        let self_custody = || {
            EngineError::Invalid(
                "transfers into a Remesa wallet are sent by users whose wallet the node holds; a self-custody \
                 wallet transfers directly with remesa-wallet"
                    .into(),
            )
        };
        let SenderRef::User { user_id } = &req.sender else {
            return Err(self_custody());
        };
        let u = users::custody(&mut *tx, user_id)
            .await?
            .ok_or(EngineError::NotFound("user"))?;
        let Some(signer) = self.signer_of(&u)? else {
            return Err(self_custody());
        };
        let sender = parse_address("sender address", &u.address)?;
        let recipient = p2p_recipient(&mut tx, phone).await?;
        if recipient == sender {
            return Err(EngineError::Invalid(
                "that is your own Remesa wallet: send to someone else".into(),
            ));
        }
        let total = q.total_base_units;
        self.check_limits(&mut tx, &addr_text(sender), &q.country, q.send_amount_base_units)
            .await?;
        self.ensure_available(&mut tx, sender, total).await?;

        let now = now_ms();
        let expiry_unix_s = u64::try_from(now / 1000)
            .unwrap_or(0)
            .saturating_add(self.config().remittance_expiry_s);
        let value = U256::from(u64::try_from(total).map_err(|_| EngineError::Internal("total".into()))?);
        // A random salt makes each id (the EIP-3009 nonce) unique; its hash is stored as the claim hash column but
        // is no claim (a P2P transfer has no pickup code) and is never shown.
        let mut salt = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
        let salt_hash = alloy::primitives::keccak256(salt);
        let id_b = alloy::primitives::keccak256(
            (
                alloy::primitives::keccak256(P2P_ID_TAG),
                chain_info.token,
                sender,
                recipient,
                value,
                expiry_unix_s,
                salt_hash,
            )
                .abi_encode_params(),
        );
        let id = format!("{id_b:#x}");
        use_quote(&mut tx, &req.quote_id, &id).await?;
        let sender_text = addr_text(sender);
        let recipient_text = addr_text(recipient);
        let claim_hash = format!("{salt_hash:#x}");
        remittances::insert(
            &mut tx,
            &remittances::NewRemittanceRow {
                id: &id,
                quote_id: &req.quote_id,
                idempotency_key: idempotency_key.as_str(),
                sender_user_id: Some(user_id),
                sender_address: &sender_text,
                custodial: true,
                partner_id: 0,
                recipient_phone: phone.as_str(),
                recipient_name,
                recipient_account: None,
                recipient_address: Some(&recipient_text),
                country: &q.country,
                currency: "USD",
                payout_method: PayoutMethod::RemesaWallet.as_str(),
                send_amount_base_units: q.send_amount_base_units,
                fee_base_units: q.fee_base_units,
                total_base_units: total,
                // one to one: the recipient gets the tokens sent
                payout_amount_minor: q.send_amount_base_units,
                rate: "1",
                expiry_unix_s: i64::try_from(expiry_unix_s).unwrap_or(i64::MAX),
                claim_hash: &claim_hash,
                pickup_lookup: None,
                settlement_address: None,
                partner_signer: None,
                // between two of this node's own customers: no payout institution to pass it to
                travel_rule: None,
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
            json!({"quote_id": req.quote_id, "payout_method": "remesa_wallet"}),
            now,
        )
        .await?;
        if self.apply_screen(&mut tx, &id, screened, true).await? {
            let row = load(&mut tx, &id)
                .await?
                .ok_or(EngineError::NotFound("remittance"))?;
            tx.commit().await?;
            metrics::counter!("remesa_remittances_created_total").increment(1);
            return Ok((self.to_api(&row), true));
        }
        self.authorize_p2p(
            &mut tx,
            &P2pAuthorization {
                id: &id,
                id_b,
                signer: &signer,
                from: sender,
                to: recipient,
                value,
                expiry_unix_s,
            },
            chain_info,
        )
        .await?;
        let row = load(&mut tx, &id)
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        tx.commit().await?;
        metrics::counter!("remesa_remittances_created_total").increment(1);
        Ok((self.to_api(&row), true))
    }
}

/// What a P2P transfer's authorization covers.
pub(super) struct P2pAuthorization<'a> {
    pub id: &'a str,
    pub id_b: alloy::primitives::B256,
    pub signer: &'a alloy::signers::local::PrivateKeySigner,
    pub from: Address,
    pub to: Address,
    pub value: U256,
    pub expiry_unix_s: u64,
}

impl Engine {
    /// Signs a P2P transfer's EIP-3009 `TransferWithAuthorization` with the sender's custodial key (nonce = the
    /// remittance id), stores it, moves the remittance `quoted` → `pending_funds` and queues the transfer, in `tx`.
    pub(super) async fn authorize_p2p(
        &self,
        tx: &mut crate::store::Tx,
        a: &P2pAuthorization<'_>,
        chain_info: &super::ChainInfo,
    ) -> Result<()> {
        let auth_terms = AuthTerms {
            from: a.from,
            escrow: a.to, // the payee of a TransferWithAuthorization
            value: a.value,
            valid_after_unix_s: 0,
            valid_before_unix_s: a.expiry_unix_s,
            nonce: a.id_b,
        };
        let auth = authorization::sign_transfer(a.signer, &chain_info.domain, &auth_terms)
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        remittances::set_authorization(
            tx,
            a.id,
            0,
            i64::try_from(a.expiry_unix_s).unwrap_or(i64::MAX),
            &authorization::signature_hex(&auth),
        )
        .await?;
        transition_direct(
            tx,
            a.id,
            State::Quoted,
            State::PendingFunds,
            "authorized",
            json!({"by": "custodial key", "authorization": "transfer_with_authorization"}),
            false,
        )
        .await?;
        chain::enqueue_transfer(
            tx,
            TransferJob {
                remittance_id: a.id_b,
                from: a.from,
                to: a.to,
                value_base_units: a.value,
                authorization: auth,
            },
        )
        .await?;
        Ok(())
    }
}

/// The Remesa (custodial) wallet of the first registered user with this phone, or
/// [`EngineError::RecipientNotRegistered`].
async fn p2p_recipient(conn: &mut sqlx::AnyConnection, phone: &PhoneNumber) -> Result<Address> {
    let a = users::first_custodial_address_by_phone(&mut *conn, phone.as_str())
        .await?
        .ok_or_else(|| EngineError::RecipientNotRegistered {
            phone: phone.as_str().to_owned(),
        })?;
    parse_address("recipient address", &a)
}
