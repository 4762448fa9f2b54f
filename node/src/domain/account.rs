//! Console accounts: who signs in to the web consoles (`/partner/` counter agents, `/ops/` operators). A username
//! and a password are parsed here; the password is a secret from the moment it is read.

use std::fmt;

use secrecy::{ExposeSecret as _, SecretString};

/// Shortest and longest accepted password, in characters. Length is what makes a password strong; there is no
/// composition rule (NIST SP 800-63B).
pub const PASSWORD_CHARS_MIN: usize = 10;
pub const PASSWORD_CHARS_MAX: usize = 128;
/// Longest username, in characters.
pub const USERNAME_CHARS_MAX: usize = 64;

/// Why a username, password or role was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error(
        "username: 3 to {USERNAME_CHARS_MAX} characters, lower-case letters, digits, '.', '_', '-' and '@', starting with a letter or digit"
    )]
    Username,
    #[error("password: {PASSWORD_CHARS_MIN} to {PASSWORD_CHARS_MAX} characters, no control characters")]
    Password,
    #[error("display name: 1 to 100 characters, no control characters")]
    DisplayName,
    #[error("role: `agent` or `operator`")]
    Role,
}

/// A console username: 3–64 characters of `[a-z0-9._@-]`, starting with a letter or digit. Upper case is folded
/// to lower case, so `Ana.Lopez` and `ana.lopez` are the same account.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Self, AccountError> {
        let s = s.trim().to_ascii_lowercase();
        let ok_len = (3..=USERNAME_CHARS_MAX).contains(&s.len());
        let ok_first = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        let ok_chars = s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '@'));
        if ok_len && ok_first && ok_chars {
            Ok(Self(s))
        } else {
            Err(AccountError::Username)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password as typed: 10–128 characters (Unicode counts as characters), no control characters. Kept as a
/// secret: no `Debug`, log or error shows it.
pub struct Password(SecretString);

impl Password {
    pub fn parse(s: &str) -> Result<Self, AccountError> {
        let n = s.chars().count();
        if (PASSWORD_CHARS_MIN..=PASSWORD_CHARS_MAX).contains(&n) && !s.chars().any(char::is_control) {
            Ok(Self(SecretString::from(s.to_owned())))
        } else {
            Err(AccountError::Password)
        }
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A person's name as the consoles show it: 1–100 characters, trimmed, no control characters.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(s: &str) -> Result<Self, AccountError> {
        let s = s.trim();
        let n = s.chars().count();
        if (1..=100).contains(&n) && !s.chars().any(char::is_control) {
            Ok(Self(s.to_owned()))
        } else {
            Err(AccountError::DisplayName)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an account may do: a counter agent acts for one partner only; an operator runs the node.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    Agent,
    Operator,
}

impl Role {
    pub fn parse(s: &str) -> Result<Self, AccountError> {
        match s {
            "agent" => Ok(Self::Agent),
            "operator" => Ok(Self::Operator),
            _ => Err(AccountError::Role),
        }
    }
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Operator => "operator",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_fold_case_and_refuse_what_a_url_or_log_would_mangle() {
        assert_eq!(
            Username::parse(" Ana.Lopez ").map(|u| u.0),
            Ok("ana.lopez".into())
        );
        assert!(Username::parse("agent-1@tienda").is_ok());
        for bad in ["", "ab", ".ana", "ana lopez", "ana/../x", "añа", &"a".repeat(65)] {
            assert_eq!(Username::parse(bad), Err(AccountError::Username), "{bad:?}");
        }
    }

    #[test]
    fn passwords_are_long_enough_and_never_shown() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse(&"x".repeat(129)).is_err());
        assert!(Password::parse("line\nbreak password").is_err());
        let p = Password::parse("correct horse battery").expect("valid");
        assert_eq!(format!("{p:?}"), "Password(<redacted>)");
        assert!(Password::parse("contraseña segura ñ").is_ok());
    }

    #[test]
    fn roles_parse_from_their_stored_form() {
        for r in [Role::Agent, Role::Operator] {
            assert_eq!(Role::parse(r.as_str()), Ok(r));
        }
        assert_eq!(Role::parse("admin"), Err(AccountError::Role));
    }
}
