//! Console accounts (counter agents of a partner, operators), their sign-ins and sessions, the failure throttles
//! (wrong passwords, wrong pickup codes) and the consoles' audit log. Passwords are hashed with argon2id (its
//! default parameters, OWASP's minimum: 19 MiB, 2 passes) on the blocking pool; a session is a random 256-bit
//! token whose SHA-256 is stored, so a database dump holds neither passwords nor usable sessions.

use std::sync::OnceLock;

use argon2::password_hash::SaltString;
use argon2::password_hash::rand_core::OsRng;
use argon2::{Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _};
use base64::Engine as _;
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

use super::{Engine, EngineError, Result};
use crate::domain::PartnerId;
use crate::domain::account::{DisplayName, Password, Role, Username};
use crate::store::console::{self, AccountRow, AuditEntryRow, AuditRow};
use crate::store::{now_ms, partners, write_tx};

/// Most agents a partner's list returns.
pub const AGENTS_PER_PARTNER_MAX: i64 = 500;

/// An account to create.
#[derive(Debug)]
pub struct NewAccount {
    pub username: Username,
    pub password: Password,
    pub display_name: DisplayName,
    pub role: Role,
    /// The partner an agent works for (required for agents, none for operators).
    pub partner: Option<PartnerId>,
}

/// An account as the consoles and the APIs see it (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub partner: Option<PartnerId>,
    pub display_name: String,
    pub active: bool,
    pub created_at_unix_ms: i64,
}

impl TryFrom<AccountRow> for Account {
    type Error = EngineError;
    fn try_from(r: AccountRow) -> Result<Self> {
        let corrupt = |what: &str| EngineError::Internal(format!("console account {}: stored {what}", r.id));
        let role = Role::parse(&r.role).map_err(|_| corrupt("role"))?;
        let partner = r
            .partner_id
            .map(|p| u64::try_from(p).ok().and_then(|p| PartnerId::new(p).ok()))
            .map(|p| p.ok_or_else(|| corrupt("partner id")))
            .transpose()?;
        Ok(Self {
            role,
            partner,
            active: r.status == "active",
            id: r.id,
            username: r.username,
            display_name: r.display_name,
            created_at_unix_ms: r.created_at_unix_ms,
        })
    }
}

/// A failure limit: at most `failures_max` failures per `window_ms`, counted in fixed windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    pub failures_max: i64,
    pub window_ms: i64,
}

/// A session's token, the value of the browser's cookie. A secret: no `Debug` shows it.
pub struct SessionToken(SecretString);

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

impl SessionToken {
    /// The token as a cookie carries it.
    pub fn parse(s: &str) -> Option<Self> {
        // 32 bytes, base64url without padding: 43 characters.
        (s.len() == 43
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Self(SecretString::from(s.to_owned())))
    }
    fn generate() -> Self {
        let mut b = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut b);
        Self(SecretString::from(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b),
        ))
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
    /// What the database stores: the SHA-256 of the token, hex.
    fn stored(&self) -> String {
        hex::encode(Sha256::digest(self.0.expose_secret().as_bytes()))
    }
}

/// The outcome of a sign-in.
#[derive(Debug)]
pub enum SignIn {
    /// A new session.
    Session { token: SessionToken, account: Account },
    /// Unknown user, wrong password or a disabled account (one answer for all three).
    Refused,
    /// Too many wrong passwords for this username: try again after this many seconds.
    Throttled { retry_after_s: u64 },
}

fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| EngineError::Internal(format!("argon2: {e}")))
}

fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash to verify against when the username is unknown, so that answer takes as long as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("remesa decoy password, never valid").unwrap_or_default())
}

impl Engine {
    /// Creates a console account. An agent's partner must exist; a taken username is a conflict.
    pub async fn create_account(&self, new: NewAccount) -> Result<Account> {
        match (new.role, new.partner) {
            (Role::Agent, None) => return Err(EngineError::Invalid("an agent belongs to a partner".into())),
            (Role::Operator, Some(_)) => {
                return Err(EngineError::Invalid("an operator belongs to no partner".into()));
            }
            (Role::Agent, Some(p)) => {
                if !partners::exists(&self.db().pool, p.as_i64()).await? {
                    return Err(EngineError::NotFound("partner"));
                }
            }
            (Role::Operator, None) => {}
        }
        let password = new.password.expose().to_owned();
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| EngineError::Internal(format!("password hashing task: {e}")))??;
        let now = now_ms();
        let row = AccountRow {
            id: uuid::Uuid::now_v7().to_string(),
            username: new.username.as_str().to_owned(),
            role: new.role.as_str().to_owned(),
            partner_id: new.partner.map(PartnerId::as_i64),
            display_name: new.display_name.as_str().to_owned(),
            password_hash: hash,
            status: "active".into(),
            created_at_unix_ms: now,
            updated_at_unix_ms: now,
        };
        if !write_tx!(self.db(), |tx| console::insert_account(&mut *tx, &row))? {
            return Err(EngineError::Conflict(format!(
                "the username {} is taken",
                new.username
            )));
        }
        Account::try_from(row)
    }

    /// An account by username, if any.
    pub async fn account(&self, username: &Username) -> Result<Option<Account>> {
        console::account_by_username(&self.db().pool, username.as_str())
            .await?
            .map(Account::try_from)
            .transpose()
    }

    /// A partner's agents, by username.
    pub async fn agents_of(&self, partner: PartnerId) -> Result<Vec<Account>> {
        console::agents_of(&self.db().pool, partner.as_i64(), AGENTS_PER_PARTNER_MAX)
            .await?
            .into_iter()
            .map(Account::try_from)
            .collect()
    }

    /// Enables or disables an account (of `partner`, when given); disabling ends its sessions at once.
    pub async fn set_account_active(
        &self,
        username: &Username,
        partner: Option<PartnerId>,
        active: bool,
    ) -> Result<()> {
        let status = if active { "active" } else { "disabled" };
        let partner = partner.map(PartnerId::as_i64);
        let found = write_tx!(self.db(), |tx| async {
            let found = console::set_status(&mut *tx, username.as_str(), partner, status, now_ms()).await?;
            if found && !active {
                console::delete_sessions_of(&mut *tx, username.as_str()).await?;
            }
            Ok::<_, crate::store::StoreError>(found)
        })?;
        if found {
            Ok(())
        } else {
            Err(EngineError::NotFound("account"))
        }
    }

    /// Signs in: a session of `ttl_ms` for the right password of an active account. Wrong passwords are counted
    /// per username; past `throttle` the username is refused until its window ends, right password or not.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
        ttl_ms: i64,
        throttle: Throttle,
    ) -> Result<SignIn> {
        let Ok(username) = Username::parse(username) else {
            return Ok(SignIn::Refused);
        };
        let bucket = format!("login:{username}");
        if let Some(retry_after_s) = self.throttled(&bucket, throttle).await? {
            return Ok(SignIn::Throttled { retry_after_s });
        }
        let row = console::account_by_username(&self.db().pool, username.as_str()).await?;
        let stored = row
            .as_ref()
            .map_or_else(|| decoy_hash().to_owned(), |r| r.password_hash.clone());
        let password = password.to_owned();
        let right = tokio::task::spawn_blocking(move || verify_password(&password, &stored))
            .await
            .map_err(|e| EngineError::Internal(format!("password check task: {e}")))?;
        let row = match row {
            Some(r) if right && r.status == "active" => r,
            _ => {
                self.throttle_fail(&bucket, throttle).await?;
                return Ok(SignIn::Refused);
            }
        };
        let token = SessionToken::generate();
        let now = now_ms();
        let stored = token.stored();
        write_tx!(self.db(), |tx| async {
            console::throttle_clear(&mut *tx, &bucket).await?;
            console::insert_session(&mut *tx, &stored, &row.id, now, now.saturating_add(ttl_ms)).await
        })?;
        Ok(SignIn::Session {
            token,
            account: Account::try_from(row)?,
        })
    }

    /// The account of a live session (unexpired, account active).
    pub async fn session_account(&self, token: &SessionToken) -> Result<Option<Account>> {
        console::session_account(&self.db().pool, &token.stored(), now_ms())
            .await?
            .map(Account::try_from)
            .transpose()
    }

    /// Ends a session.
    pub async fn sign_out(&self, token: &SessionToken) -> Result<()> {
        let stored = token.stored();
        Ok(write_tx!(self.db(), |tx| console::delete_session(
            &mut *tx, &stored
        ))?)
    }

    /// Removes expired sessions (the sweeper's job).
    pub async fn prune_sessions(&self) -> Result<u64> {
        Ok(write_tx!(self.db(), |tx| console::delete_expired_sessions(
            &mut *tx,
            now_ms()
        ))?)
    }

    /// `Some(seconds until the window ends)` while `bucket` is at its limit.
    pub async fn throttled(&self, bucket: &str, t: Throttle) -> Result<Option<u64>> {
        let now = now_ms();
        let n = console::throttle_failures(&self.db().pool, bucket, now - t.window_ms).await?;
        Ok((n >= t.failures_max).then(|| u64::try_from(t.window_ms / 1000).unwrap_or(1).max(1)))
    }

    /// Counts a failure in `bucket`; returns the failures in its window.
    pub async fn throttle_fail(&self, bucket: &str, t: Throttle) -> Result<i64> {
        let now = now_ms();
        Ok(write_tx!(self.db(), |tx| console::throttle_fail(
            &mut *tx,
            bucket,
            now - t.window_ms,
            now
        ))?)
    }

    /// Records what `account` did (`action`, about `subject`, with `detail`). Never pass a code or a password.
    pub async fn audit(
        &self,
        account: &Account,
        action: &str,
        subject: Option<&str>,
        detail: Option<&str>,
    ) -> Result<()> {
        let row = AuditRow {
            id: uuid::Uuid::now_v7().to_string(),
            account_id: account.id.clone(),
            partner_id: account.partner.map(PartnerId::as_i64),
            action: action.to_owned(),
            subject: subject.map(str::to_owned),
            detail: detail.map(str::to_owned),
            created_at_unix_ms: now_ms(),
        };
        Ok(write_tx!(self.db(), |tx| console::insert_audit(&mut *tx, &row))?)
    }

    /// The consoles' audit entries about a remittance (or any subject), oldest first.
    pub async fn audit_of(&self, subject: &str) -> Result<Vec<AuditEntryRow>> {
        Ok(console::audit_of(&self.db().pool, subject, 500).await?)
    }

    /// A partner's audit entries of `action` since `since_ms`, newest first (at most 200).
    pub async fn partner_audit(
        &self,
        partner: PartnerId,
        action: &str,
        since_ms: i64,
    ) -> Result<Vec<AuditRow>> {
        Ok(console::audit_of_partner(&self.db().pool, partner.as_i64(), action, since_ms, 200).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let h = hash_password("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterx", &h));
        assert!(!verify_password("anything", "not a phc string"));
        assert!(!verify_password("remesa decoy password", decoy_hash()));
    }

    #[test]
    fn session_tokens_are_random_and_stored_hashed() {
        let a = SessionToken::generate();
        let b = SessionToken::generate();
        assert_ne!(a.expose(), b.expose());
        assert!(SessionToken::parse(a.expose()).is_some());
        assert_eq!(a.stored().len(), 64);
        assert!(!a.stored().contains(a.expose()));
        assert_eq!(format!("{a:?}"), "SessionToken(<redacted>)");
        assert!(SessionToken::parse("short").is_none());
        assert!(SessionToken::parse(&"a".repeat(42).replace('a', "/")).is_none());
    }
}
