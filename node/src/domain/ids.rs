use std::fmt;
use std::str::FromStr;

use alloy::primitives::B256;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("remittance id must be 0x followed by 64 hex digits")]
    RemittanceId,
    #[error("partner id must be an integer from 1 to 2^63-1")]
    PartnerId,
    #[error("idempotency key must be 1 to 255 visible ASCII characters")]
    IdempotencyKey,
}

/// A remittance id: the escrow's terms hash (also the EIP-3009 nonce), `0x` + 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RemittanceId(B256);

impl RemittanceId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let hex = s.strip_prefix("0x").ok_or(IdError::RemittanceId)?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(IdError::RemittanceId);
        }
        B256::from_str(s).map(Self).map_err(|_| IdError::RemittanceId)
    }
    pub fn from_b256(h: B256) -> Self {
        Self(h)
    }
    pub fn as_b256(&self) -> B256 {
        self.0
    }
}

impl fmt::Display for RemittanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}
impl fmt::Debug for RemittanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemittanceId({self})")
    }
}
impl TryFrom<String> for RemittanceId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}
impl From<RemittanceId> for String {
    fn from(r: RemittanceId) -> String {
        r.to_string()
    }
}

/// A partner's id in the escrow registry (`uint64` on chain, at most `i64::MAX` so it fits a BIGINT).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct PartnerId(u64);

impl PartnerId {
    pub fn new(v: u64) -> Result<Self, IdError> {
        if v == 0 || i64::try_from(v).is_err() {
            return Err(IdError::PartnerId);
        }
        Ok(Self(v))
    }
    pub fn parse(s: &str) -> Result<Self, IdError> {
        s.trim()
            .parse::<u64>()
            .map_err(|_| IdError::PartnerId)
            .and_then(Self::new)
    }
    pub fn get(self) -> u64 {
        self.0
    }
    /// The stored (BIGINT) form.
    pub fn as_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }
}
impl fmt::Display for PartnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl TryFrom<u64> for PartnerId {
    type Error = IdError;
    fn try_from(v: u64) -> Result<Self, IdError> {
        Self::new(v)
    }
}
impl From<PartnerId> for u64 {
    fn from(p: PartnerId) -> u64 {
        p.0
    }
}

/// A client-chosen key that makes a POST safe to retry: 1–255 visible ASCII characters.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const LEN_MAX: usize = 255;
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.is_empty() || s.len() > Self::LEN_MAX || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(IdError::IdempotencyKey);
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for IdempotencyKey {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}
impl From<IdempotencyKey> for String {
    fn from(k: IdempotencyKey) -> String {
        k.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn remittance_id_round_trips_lowercase() {
        let s = format!("0x{}", "AB".repeat(32));
        let id = RemittanceId::parse(&s).expect("id");
        assert_eq!(id.to_string(), s.to_lowercase());
        assert!(RemittanceId::parse("0x12").is_err());
        assert!(RemittanceId::parse(&"ab".repeat(32)).is_err());
        assert!(RemittanceId::parse(&format!("0x{}", "zz".repeat(32))).is_err());
    }

    #[test]
    fn partner_id_bounds() {
        assert!(PartnerId::new(0).is_err());
        assert!(PartnerId::new(u64::MAX).is_err());
        assert_eq!(PartnerId::parse(" 7 ").map(PartnerId::get), Ok(7));
    }

    #[test]
    fn idempotency_key_rules() {
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(
            IdempotencyKey::parse("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=").is_ok()
        );
    }

    proptest! {
        #[test]
        fn any_b256_round_trips(bytes in proptest::array::uniform32(any::<u8>())) {
            let id = RemittanceId::from_b256(B256::from(bytes));
            prop_assert_eq!(RemittanceId::parse(&id.to_string()), Ok(id));
        }

        #[test]
        fn parse_never_panics(s in ".{0,80}") {
            let _ = RemittanceId::parse(&s);
            let _ = PartnerId::parse(&s);
            let _ = IdempotencyKey::parse(&s);
        }
    }
}
