//! EIP-3009 `ReceiveWithAuthorization` over the token's EIP-712 domain: signed by the node for custodial senders,
//! verified (signer recovery) for self-custody senders before anything is queued.

use alloy::primitives::{Address, B256, Signature, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct, eip712_domain};

use crate::chain::Authorization;

alloy::sol! {
    /// The EIP-3009 typed message (USDC's type string).
    #[derive(Debug)]
    struct ReceiveWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }
}

/// The token's EIP-712 domain (name and version as reported by its `eip712Domain()`).
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// What is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthTerms {
    pub from: Address,
    pub escrow: Address,
    pub value: U256,
    pub valid_after_unix_s: u64,
    pub valid_before_unix_s: u64,
    pub nonce: B256,
}

impl AuthTerms {
    fn message(&self) -> ReceiveWithAuthorization {
        ReceiveWithAuthorization {
            from: self.from,
            to: self.escrow,
            value: self.value,
            validAfter: U256::from(self.valid_after_unix_s),
            validBefore: U256::from(self.valid_before_unix_s),
            nonce: self.nonce,
        }
    }

    /// The EIP-712 digest that is signed.
    pub fn signing_hash(&self, domain: &TokenDomain) -> B256 {
        self.message().eip712_signing_hash(&domain.eip712())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("signing failed")]
    Sign,
    #[error("the signature is malformed")]
    Malformed,
    #[error("the signature was made by {recovered}, not by the sender {expected}")]
    WrongSigner { recovered: Address, expected: Address },
}

/// Signs for a custodial sender.
pub fn sign(
    signer: &PrivateKeySigner,
    domain: &TokenDomain,
    t: &AuthTerms,
) -> Result<Authorization, AuthError> {
    let sig = signer
        .sign_hash_sync(&t.signing_hash(domain))
        .map_err(|_| AuthError::Sign)?;
    Ok(to_authorization(t, &sig))
}

fn to_authorization(t: &AuthTerms, sig: &Signature) -> Authorization {
    Authorization {
        valid_after_unix_s: U256::from(t.valid_after_unix_s),
        valid_before_unix_s: U256::from(t.valid_before_unix_s),
        v: if sig.v() { 28 } else { 27 },
        r: B256::from(sig.r()),
        s: B256::from(sig.s()),
    }
}

/// Parses a 65-byte `r‖s‖v` signature (hex, with or without 0x) and checks it was made by `t.from`.
pub fn verify(domain: &TokenDomain, t: &AuthTerms, signature_hex: &str) -> Result<Authorization, AuthError> {
    let bytes =
        hex::decode(signature_hex.trim().trim_start_matches("0x")).map_err(|_| AuthError::Malformed)?;
    let sig = Signature::try_from(bytes.as_slice()).map_err(|_| AuthError::Malformed)?;
    let recovered = sig
        .recover_address_from_prehash(&t.signing_hash(domain))
        .map_err(|_| AuthError::Malformed)?;
    if recovered != t.from {
        return Err(AuthError::WrongSigner {
            recovered,
            expected: t.from,
        });
    }
    Ok(to_authorization(t, &sig))
}

/// The stored form of an authorization's signature: `0x` + r‖s‖v hex.
pub fn signature_hex(a: &Authorization) -> String {
    let mut b = Vec::with_capacity(65);
    b.extend_from_slice(a.r.as_slice());
    b.extend_from_slice(a.s.as_slice());
    b.push(a.v);
    format!("0x{}", hex::encode(b))
}

/// Inverse of [`signature_hex`] with the window.
pub fn from_stored(valid_after: u64, valid_before: u64, sig_hex: &str) -> Result<Authorization, AuthError> {
    let bytes = hex::decode(sig_hex.trim_start_matches("0x")).map_err(|_| AuthError::Malformed)?;
    if bytes.len() != 65 {
        return Err(AuthError::Malformed);
    }
    Ok(Authorization {
        valid_after_unix_s: U256::from(valid_after),
        valid_before_unix_s: U256::from(valid_before),
        v: bytes[64],
        r: B256::from_slice(&bytes[..32]),
        s: B256::from_slice(&bytes[32..64]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify() {
        let signer = PrivateKeySigner::random();
        let domain = TokenDomain {
            name: "Test Dollar".into(),
            version: "1".into(),
            chain_id: 31337,
            token: Address::repeat_byte(0x70),
        };
        let t = AuthTerms {
            from: signer.address(),
            escrow: Address::repeat_byte(0xee),
            value: U256::from(1_000_000u64),
            valid_after_unix_s: 0,
            valid_before_unix_s: 2_000_000_000,
            nonce: B256::repeat_byte(7),
        };
        let a = sign(&signer, &domain, &t).expect("sign");
        let hex = signature_hex(&a);
        assert_eq!(verify(&domain, &t, &hex).expect("verify"), a);
        assert_eq!(from_stored(0, 2_000_000_000, &hex).expect("stored"), a);
        let other = AuthTerms {
            value: U256::from(2u64),
            ..t
        };
        assert!(matches!(
            verify(&domain, &other, &hex),
            Err(AuthError::WrongSigner { .. })
        ));
        assert!(matches!(verify(&domain, &t, "0x1234"), Err(AuthError::Malformed)));
    }
}
