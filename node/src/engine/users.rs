//! Users: registration (custodial key or self-custody address), look-ups, balances.

use sqlx::Row;

use super::types::*;
use super::views::*;
use super::{Engine, EngineError, Result, ledger};
use crate::domain::PhoneNumber;
use crate::store::{next_counter, now_ms};

impl Engine {
    /// Registers a chat user (idempotent on channel + external id): a custodial account is derived for them
    /// unless `self_custody_address` is given. Returns the user and whether it was created now.
    #[tracing::instrument(skip_all, fields(channel = %new.channel))]
    pub async fn register_user(&self, new: NewUser) -> Result<(User, bool)> {
        let channel = new.channel.trim().to_ascii_lowercase();
        if channel.is_empty()
            || channel.len() > 32
            || !channel.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(EngineError::Invalid(
                "channel must be 1 to 32 of [a-z0-9_]".into(),
            ));
        }
        let external_id = text("external_id", &new.external_id, 128)?;
        let phone = match new.phone.as_deref().filter(|p| !p.trim().is_empty()) {
            Some(p) => Some(
                PhoneNumber::parse(p, None)
                    .map_err(|e| EngineError::Invalid(format!("phone: {e}")))?
                    .as_str()
                    .to_owned(),
            ),
            None => None,
        };
        let display_name = new
            .display_name
            .as_deref()
            .map(|n| text("display_name", n, NAME_LEN_MAX))
            .transpose()?;
        let lang = new.lang.as_deref().map(|l| text("lang", l, 16)).transpose()?;
        if let Some(u) = self.find_user_by_chat(&channel, &external_id).await? {
            return Ok((u, false));
        }
        let mut tx = self.write_tx().await?;
        let existing = sqlx::query(&format!(
            "SELECT {U_COLS} FROM users WHERE channel = $1 AND external_id = $2"
        ))
        .bind(&channel)
        .bind(&external_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(r) = existing {
            return Ok((user_from_row(&r)?, false));
        }
        let (custody, index, address) = match new.self_custody_address.as_deref() {
            Some(a) => ("self", None, parse_address("self_custody_address", a)?),
            None => {
                let custody = self.custody_required()?;
                let index = next_counter(&mut tx, "derivation_index").await?;
                let idx = u32::try_from(index)
                    .map_err(|_| EngineError::Internal("derivation index overflow".into()))?;
                let address = custody
                    .address(idx)
                    .map_err(|e| EngineError::Internal(e.to_string()))?;
                ("custodial", Some(index), address)
            }
        };
        let taken = sqlx::query("SELECT id FROM users WHERE address = $1")
            .bind(addr_text(address))
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(EngineError::Conflict(
                "this address belongs to another user".into(),
            ));
        }
        let user = User {
            id: uuid::Uuid::now_v7().to_string(),
            channel,
            external_id,
            phone,
            display_name,
            lang,
            custody: custody.to_owned(),
            address: addr_text(address),
            created_at_unix_ms: now_ms(),
        };
        sqlx::query(
            "INSERT INTO users (id, channel, external_id, phone, display_name, lang, custody, derivation_index, \
             address, created_at_unix_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&user.id)
        .bind(&user.channel)
        .bind(&user.external_id)
        .bind(&user.phone)
        .bind(&user.display_name)
        .bind(&user.lang)
        .bind(&user.custody)
        .bind(index)
        .bind(&user.address)
        .bind(user.created_at_unix_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        metrics::counter!("remesa_users_registered_total").increment(1);
        Ok((user, true))
    }

    pub async fn find_user_by_chat(&self, channel: &str, external_id: &str) -> Result<Option<User>> {
        let r = sqlx::query(&format!(
            "SELECT {U_COLS} FROM users WHERE channel = $1 AND external_id = $2"
        ))
        .bind(channel.trim().to_ascii_lowercase())
        .bind(external_id.trim())
        .fetch_optional(&self.db().pool)
        .await?;
        r.as_ref().map(user_from_row).transpose()
    }

    /// The first registered user with this E.164 phone.
    pub async fn find_user_by_phone(&self, phone: &PhoneNumber) -> Result<Option<User>> {
        let r = sqlx::query(&format!(
            "SELECT {U_COLS} FROM users WHERE phone = $1 ORDER BY created_at_unix_ms LIMIT 1"
        ))
        .bind(phone.as_str())
        .fetch_optional(&self.db().pool)
        .await?;
        r.as_ref().map(user_from_row).transpose()
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>> {
        let r = sqlx::query(&format!("SELECT {U_COLS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.db().pool)
            .await?;
        r.as_ref().map(user_from_row).transpose()
    }

    pub async fn user_by_address(&self, address: &str) -> Result<Option<User>> {
        let r = sqlx::query(&format!("SELECT {U_COLS} FROM users WHERE address = $1"))
            .bind(address.trim().to_ascii_lowercase())
            .fetch_optional(&self.db().pool)
            .await?;
        r.as_ref().map(user_from_row).transpose()
    }

    /// The custodial signer of a user (for node-side transfers); `None` for self-custody users.
    pub async fn custodial_signer(
        &self,
        user_id: &str,
    ) -> Result<Option<alloy::signers::local::PrivateKeySigner>> {
        let r = sqlx::query("SELECT derivation_index FROM users WHERE id = $1 AND custody = 'custodial'")
            .bind(user_id)
            .fetch_optional(&self.db().pool)
            .await?;
        let Some(r) = r else { return Ok(None) };
        let index: i64 = r.try_get(0)?;
        let idx = u32::try_from(index).map_err(|_| EngineError::Internal("derivation index".into()))?;
        let signer = self
            .custody_required()?
            .signer(idx)
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        Ok(Some(signer))
    }

    /// The ledger balance of an address (as indexed from the chain) and what is still available after pending
    /// remittances.
    pub async fn balance(&self, address: &str) -> Result<Balance> {
        let address = addr_text(parse_address("address", address)?);
        let balance = ledger::balance(&self.db().pool, &ledger::wallet(&address)).await?;
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(total_base_units), 0) AS BIGINT) FROM remittances \
             WHERE sender_address = $1 AND state IN ('quoted', 'pending_funds')",
        )
        .bind(&address)
        .fetch_one(&self.db().pool)
        .await?;
        let pending: i64 = row.try_get(0)?;
        let available = balance.saturating_sub(pending).max(0);
        let d = self.token_decimals();
        Ok(Balance {
            address,
            balance: tokens(balance, d).to_string(),
            balance_base_units: balance.to_string(),
            available: tokens(available, d).to_string(),
            available_base_units: available.to_string(),
            token_decimals: d,
        })
    }
}
