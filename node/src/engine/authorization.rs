//! EIP-3009 `ReceiveWithAuthorization` over the token's EIP-712 domain: signed by the node for custodial senders,
//! verified (signer recovery) for self-custody senders before anything is queued. The typed data, signing and
//! recovery are the wallet's ([`remesa_wallet::eip3009`]); this module adapts them to the node's types.

use alloy::primitives::{Address, B256, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use remesa_wallet::eip3009::{
    self, AuthorizationKind, AuthorizationTerms, Signature65, SignatureError, SignedAuthorization,
};

use crate::chain::Authorization;

pub use remesa_wallet::eip3009::{ReceiveWithAuthorization, TokenDomain};

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
    fn to_wallet(self) -> AuthorizationTerms {
        AuthorizationTerms {
            from: self.from,
            to: self.escrow,
            value: self.value,
            valid_after_unix_s: self.valid_after_unix_s,
            valid_before_unix_s: self.valid_before_unix_s,
            nonce: self.nonce,
        }
    }

    /// The EIP-712 digest that is signed.
    pub fn signing_hash(&self, domain: &TokenDomain) -> B256 {
        self.to_wallet().signing_hash(AuthorizationKind::Receive, domain)
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

impl From<SignatureError> for AuthError {
    fn from(e: SignatureError) -> Self {
        match e {
            SignatureError::Sign => AuthError::Sign,
            SignatureError::Malformed => AuthError::Malformed,
            SignatureError::WrongSigner { recovered, expected } => {
                AuthError::WrongSigner { recovered, expected }
            }
        }
    }
}

fn to_authorization(a: &SignedAuthorization) -> Authorization {
    Authorization {
        valid_after_unix_s: U256::from(a.valid_after_unix_s),
        valid_before_unix_s: U256::from(a.valid_before_unix_s),
        v: a.signature.v(),
        r: a.signature.r(),
        s: a.signature.s(),
    }
}

/// Signs for a custodial sender. (Unlike the wallet's `sign_authorization`, it does not insist that `signer` is
/// `t.from`: tests use it to forge signatures by someone else.)
pub fn sign(
    signer: &PrivateKeySigner,
    domain: &TokenDomain,
    t: &AuthTerms,
) -> Result<Authorization, AuthError> {
    let sig = signer
        .sign_hash_sync(&t.signing_hash(domain))
        .map_err(|_| AuthError::Sign)?;
    Ok(to_authorization(&SignedAuthorization {
        signature: Signature65::from_signature(&sig),
        valid_after_unix_s: t.valid_after_unix_s,
        valid_before_unix_s: t.valid_before_unix_s,
    }))
}

/// Signs an EIP-3009 `TransferWithAuthorization` for a custodial sender's P2P payment: `t.escrow` is then the
/// recipient (the payee), and `t.nonce` the remittance id. Anyone may submit it (the node's relayer does), which is
/// safe because it can only move `t.value` from `t.from` to that recipient, once, within the window.
pub fn sign_transfer(
    signer: &PrivateKeySigner,
    domain: &TokenDomain,
    t: &AuthTerms,
) -> Result<Authorization, AuthError> {
    let signed = eip3009::sign_authorization(signer, AuthorizationKind::Transfer, domain, &t.to_wallet())?;
    Ok(to_authorization(&signed))
}

/// Parses a 65-byte `r‖s‖v` signature (hex, with or without 0x) and checks it was made by `t.from`.
pub fn verify(domain: &TokenDomain, t: &AuthTerms, signature_hex: &str) -> Result<Authorization, AuthError> {
    let signature = Signature65::parse(signature_hex)?;
    eip3009::verify_authorization(AuthorizationKind::Receive, domain, &t.to_wallet(), &signature)?;
    Ok(to_authorization(&SignedAuthorization {
        signature,
        valid_after_unix_s: t.valid_after_unix_s,
        valid_before_unix_s: t.valid_before_unix_s,
    }))
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
    let signature = Signature65::parse(sig_hex)?;
    Ok(to_authorization(&SignedAuthorization {
        signature,
        valid_after_unix_s: valid_after,
        valid_before_unix_s: valid_before,
    }))
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
