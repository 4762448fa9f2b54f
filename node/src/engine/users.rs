//! Users: registration (custodial key or self-custody address), look-ups, balances.

use super::types::*;
use super::views::*;
use super::{Engine, EngineError, Result, ledger};
use crate::domain::PhoneNumber;
use crate::store::users::{self, CustodyRow, NewUserRow, UserRow};
use crate::store::{next_counter, now_ms, remittances};

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
        let phone = new.phone.as_ref().map(|p| p.as_str().to_owned());
        let display_name = new
            .display_name
            .as_deref()
            .map(|n| text("display_name", n, NAME_LEN_MAX))
            .transpose()?;
        let lang = new.lang.as_deref().map(|l| text("lang", l, 16)).transpose()?;
        // Parsed before the look-up: a request that does not parse is refused even when the user exists.
        let self_custody = new
            .self_custody_address
            .as_deref()
            .map(|a| parse_address("self_custody_address", a))
            .transpose()?;
        if let Some(u) = self.find_user_by_chat(&channel, &external_id).await? {
            return Ok((u, false));
        }
        let mut tx = self.write_tx().await?;
        if let Some(r) = users::by_chat(&mut *tx, &channel, &external_id).await? {
            return Ok((r.into(), false));
        }
        let (custody, index, address) = match self_custody {
            Some(a) => ("self", None, a),
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
        if users::address_taken(&mut *tx, &addr_text(address)).await? {
            return Err(EngineError::Conflict(
                "this address belongs to another user".into(),
            ));
        }
        let row = UserRow {
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
        users::insert(
            &mut *tx,
            NewUserRow {
                row: &row,
                derivation_index: index,
            },
        )
        .await?;
        if let Some(name) = &row.display_name {
            self.screen_customer(&mut tx, &row.id, name).await?;
        }
        tx.commit().await?;
        metrics::counter!("remesa_users_registered_total").increment(1);
        Ok((row.into(), true))
    }

    /// Sets the user's full name (the chat asks for it when screening needs it), screened and recorded as a
    /// compliance event like a registration's. Sends made from now on are screened by it.
    pub async fn set_user_name(&self, user_id: &str, name: &str) -> Result<User> {
        let name = text("name", name, NAME_LEN_MAX)?;
        let mut tx = self.write_tx().await?;
        if !users::set_display_name(&mut *tx, user_id, &name).await? {
            return Err(EngineError::NotFound("user"));
        }
        self.screen_customer(&mut tx, user_id, &name).await?;
        let u = users::by_id(&mut *tx, user_id)
            .await?
            .ok_or(EngineError::NotFound("user"))?;
        tx.commit().await?;
        Ok(u.into())
    }

    pub async fn find_user_by_chat(&self, channel: &str, external_id: &str) -> Result<Option<User>> {
        let channel = channel.trim().to_ascii_lowercase();
        let r = users::by_chat(&self.db().pool, &channel, external_id.trim()).await?;
        Ok(r.map(User::from))
    }

    /// The first registered user with this E.164 phone.
    pub async fn find_user_by_phone(&self, phone: &PhoneNumber) -> Result<Option<User>> {
        Ok(users::first_by_phone(&self.db().pool, phone.as_str())
            .await?
            .map(User::from))
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>> {
        Ok(users::by_id(&self.db().pool, id).await?.map(User::from))
    }

    pub async fn user_by_address(&self, address: &str) -> Result<Option<User>> {
        let address = address.trim().to_ascii_lowercase();
        Ok(users::by_address(&self.db().pool, &address)
            .await?
            .map(User::from))
    }

    /// The custodial signer of a user (for node-side transfers); `None` for self-custody users.
    pub async fn custodial_signer(
        &self,
        user_id: &str,
    ) -> Result<Option<alloy::signers::local::PrivateKeySigner>> {
        match users::custody(&self.db().pool, user_id).await? {
            Some(c) => self.signer_of(&c),
            None => Ok(None),
        }
    }

    /// The node-held signer of a custodial user (`None` for self custody). A custodial row without a derivation
    /// index is corrupt.
    pub(super) fn signer_of(
        &self,
        c: &CustodyRow,
    ) -> Result<Option<alloy::signers::local::PrivateKeySigner>> {
        if c.custody != "custodial" {
            return Ok(None);
        }
        let index = c
            .derivation_index
            .ok_or_else(|| EngineError::Internal("custodial user without a derivation index".into()))?;
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
        // Any address has a balance to read, the zero address's being 0 (only writes refuse it).
        let address = addr_text(
            address
                .trim()
                .parse::<alloy::primitives::Address>()
                .map_err(|_| EngineError::Invalid("address is not an address".into()))?,
        );
        let balance = ledger::balance(&self.db().pool, &ledger::wallet(&address)).await?;
        let pending = remittances::pending_total(&self.db().pool, &address).await?;
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
