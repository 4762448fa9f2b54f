//! EIP-712 signatures for the stablecoin: EIP-3009 `ReceiveWithAuthorization` / `TransferWithAuthorization`
//! (USDC's type strings) and EIP-2612 `Permit`. Signatures are 65 bytes `r‖s‖v` (v = 27 or 28), written as `0x` +
//! 130 hex digits — the form the node's self-custody API takes.

use std::fmt;

use alloy::primitives::{Address, B256, Signature, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct, eip712_domain};
use serde::{Deserialize, Serialize};

use crate::contracts::IRemittanceEscrow;

alloy::sol! {
    /// EIP-3009: only `to` may redeem it (front-running safe when `to` is a contract that calls it).
    #[derive(Debug)]
    struct ReceiveWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }

    /// EIP-3009: anyone may submit it (gasless P2P transfer through a relayer).
    #[derive(Debug)]
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }

    /// EIP-2612.
    #[derive(Debug)]
    struct Permit {
        address owner;
        address spender;
        uint256 value;
        uint256 nonce;
        uint256 deadline;
    }
}

/// The token's EIP-712 domain (name and version as the token reports them, see `chain::Chain::token_domain`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenDomain {
    pub name: String,
    pub version: String,
    pub chain_id: u64,
    pub token: Address,
}

impl TokenDomain {
    pub fn eip712(&self) -> Eip712Domain {
        eip712_domain! {
            name: self.name.clone(),
            version: self.version.clone(),
            chain_id: self.chain_id,
            verifying_contract: self.token,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signing failed")]
    Sign,
    #[error("the signature is malformed (expected 0x and 130 hex digits: r, s, v)")]
    Malformed,
    #[error("the signature was made by {recovered}, not by {expected}")]
    WrongSigner { recovered: Address, expected: Address },
}

/// A 65-byte `r‖s‖v` signature with v = 27 or 28.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature65([u8; 65]);

impl Signature65 {
    pub fn from_signature(sig: &Signature) -> Self {
        Self(sig.as_bytes())
    }

    /// Parses `0x` + 130 hex digits (the `0x` is optional); v may be 0/1 or 27/28.
    pub fn parse(s: &str) -> Result<Self, SignatureError> {
        let t = s.trim();
        let t = t.strip_prefix("0x").unwrap_or(t);
        if t.len() != 130 {
            return Err(SignatureError::Malformed);
        }
        let bytes = hex::decode(t).map_err(|_| SignatureError::Malformed)?;
        let sig = Signature::try_from(bytes.as_slice()).map_err(|_| SignatureError::Malformed)?;
        Ok(Self::from_signature(&sig))
    }

    pub fn r(&self) -> B256 {
        B256::from_slice(&self.0[..32])
    }

    pub fn s(&self) -> B256 {
        B256::from_slice(&self.0[32..64])
    }

    pub fn v(&self) -> u8 {
        self.0[64]
    }

    pub fn to_signature(&self) -> Result<Signature, SignatureError> {
        Signature::try_from(self.0.as_slice()).map_err(|_| SignatureError::Malformed)
    }

    /// Recovers the signer of `hash`.
    pub fn recover(&self, hash: &B256) -> Result<Address, SignatureError> {
        self.to_signature()?
            .recover_address_from_prehash(hash)
            .map_err(|_| SignatureError::Malformed)
    }

    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.0))
    }

    /// `r‖s‖v`, as contracts take it.
    pub fn as_bytes(&self) -> &[u8; 65] {
        &self.0
    }
}

impl fmt::Display for Signature65 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Signature65 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature65({})", self.to_hex())
    }
}

impl Serialize for Signature65 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Signature65 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What an EIP-3009 authorization says (for receive and transfer alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthorizationTerms {
    pub from: Address,
    pub to: Address,
    pub value: U256,
    pub valid_after_unix_s: u64,
    pub valid_before_unix_s: u64,
    pub nonce: B256,
}

/// Which EIP-3009 typed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthorizationKind {
    Receive,
    Transfer,
}

impl AuthorizationTerms {
    /// The EIP-712 digest that is signed.
    pub fn signing_hash(&self, kind: AuthorizationKind, domain: &TokenDomain) -> B256 {
        let d = domain.eip712();
        let (after, before) = (
            U256::from(self.valid_after_unix_s),
            U256::from(self.valid_before_unix_s),
        );
        match kind {
            AuthorizationKind::Receive => ReceiveWithAuthorization {
                from: self.from,
                to: self.to,
                value: self.value,
                validAfter: after,
                validBefore: before,
                nonce: self.nonce,
            }
            .eip712_signing_hash(&d),
            AuthorizationKind::Transfer => TransferWithAuthorization {
                from: self.from,
                to: self.to,
                value: self.value,
                validAfter: after,
                validBefore: before,
                nonce: self.nonce,
            }
            .eip712_signing_hash(&d),
        }
    }
}

/// A signed EIP-3009 authorization: the JSON the node's self-custody API takes
/// (`{signature, valid_after_unix_s, valid_before_unix_s}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedAuthorization {
    pub signature: Signature65,
    pub valid_after_unix_s: u64,
    pub valid_before_unix_s: u64,
}

impl SignedAuthorization {
    /// The escrow's `Authorization` struct.
    pub fn to_sol(&self) -> IRemittanceEscrow::Authorization {
        IRemittanceEscrow::Authorization {
            validAfter: U256::from(self.valid_after_unix_s),
            validBefore: U256::from(self.valid_before_unix_s),
            v: self.signature.v(),
            r: self.signature.r(),
            s: self.signature.s(),
        }
    }
}

/// Signs an EIP-3009 authorization with `signer` (which must be `t.from`).
pub fn sign_authorization(
    signer: &PrivateKeySigner,
    kind: AuthorizationKind,
    domain: &TokenDomain,
    t: &AuthorizationTerms,
) -> Result<SignedAuthorization, SignatureError> {
    if signer.address() != t.from {
        return Err(SignatureError::WrongSigner {
            recovered: signer.address(),
            expected: t.from,
        });
    }
    let sig = signer
        .sign_hash_sync(&t.signing_hash(kind, domain))
        .map_err(|_| SignatureError::Sign)?;
    Ok(SignedAuthorization {
        signature: Signature65::from_signature(&sig),
        valid_after_unix_s: t.valid_after_unix_s,
        valid_before_unix_s: t.valid_before_unix_s,
    })
}

/// Checks that `sig` over `t` was made by `t.from`.
pub fn verify_authorization(
    kind: AuthorizationKind,
    domain: &TokenDomain,
    t: &AuthorizationTerms,
    sig: &Signature65,
) -> Result<(), SignatureError> {
    let recovered = sig.recover(&t.signing_hash(kind, domain))?;
    if recovered != t.from {
        return Err(SignatureError::WrongSigner {
            recovered,
            expected: t.from,
        });
    }
    Ok(())
}

/// What an EIP-2612 permit says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PermitTerms {
    pub owner: Address,
    pub spender: Address,
    pub value: U256,
    /// The owner's current `nonces(owner)` on the token.
    pub nonce: U256,
    pub deadline_unix_s: u64,
}

impl PermitTerms {
    pub fn signing_hash(&self, domain: &TokenDomain) -> B256 {
        Permit {
            owner: self.owner,
            spender: self.spender,
            value: self.value,
            nonce: self.nonce,
            deadline: U256::from(self.deadline_unix_s),
        }
        .eip712_signing_hash(&domain.eip712())
    }
}

/// Signs an EIP-2612 permit.
pub fn sign_permit(
    signer: &PrivateKeySigner,
    domain: &TokenDomain,
    t: &PermitTerms,
) -> Result<Signature65, SignatureError> {
    let sig = signer
        .sign_hash_sync(&t.signing_hash(domain))
        .map_err(|_| SignatureError::Sign)?;
    Ok(Signature65::from_signature(&sig))
}

/// A random 32-byte nonce for a P2P transfer authorization.
pub fn random_nonce() -> B256 {
    B256::from(rand::random::<[u8; 32]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain() -> TokenDomain {
        TokenDomain {
            name: "Test Dollar".into(),
            version: "1".into(),
            chain_id: 31337,
            token: Address::repeat_byte(0x70),
        }
    }

    #[test]
    fn sign_then_verify_and_hex_round_trip() {
        let signer = PrivateKeySigner::random();
        let t = AuthorizationTerms {
            from: signer.address(),
            to: Address::repeat_byte(0xee),
            value: U256::from(1_000_000u64),
            valid_after_unix_s: 0,
            valid_before_unix_s: 2_000_000_000,
            nonce: B256::repeat_byte(7),
        };
        let a = sign_authorization(&signer, AuthorizationKind::Receive, &domain(), &t).expect("sign");
        assert!(matches!(a.signature.v(), 27 | 28));
        let hex = a.signature.to_hex();
        assert_eq!(hex.len(), 132);
        assert_eq!(Signature65::parse(&hex), Ok(a.signature));
        verify_authorization(AuthorizationKind::Receive, &domain(), &t, &a.signature).expect("verify");
        // The same signature is not a transfer authorization, nor one for other terms.
        assert!(verify_authorization(AuthorizationKind::Transfer, &domain(), &t, &a.signature).is_err());
        let other = AuthorizationTerms {
            value: U256::from(2u8),
            ..t
        };
        assert!(matches!(
            verify_authorization(AuthorizationKind::Receive, &domain(), &other, &a.signature),
            Err(SignatureError::WrongSigner { .. })
        ));
        assert_eq!(Signature65::parse("0x1234"), Err(SignatureError::Malformed));
        let json = serde_json::to_value(a).expect("json");
        assert_eq!(json["signature"], hex);
        assert_eq!(json["valid_before_unix_s"], 2_000_000_000u64);
    }

    #[test]
    fn refuses_to_sign_for_someone_else() {
        let signer = PrivateKeySigner::random();
        let t = AuthorizationTerms {
            from: Address::repeat_byte(1),
            to: Address::repeat_byte(2),
            value: U256::from(1u8),
            valid_after_unix_s: 0,
            valid_before_unix_s: 1,
            nonce: B256::ZERO,
        };
        assert!(sign_authorization(&signer, AuthorizationKind::Transfer, &domain(), &t).is_err());
    }
}
