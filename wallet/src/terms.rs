//! Remittance terms, their id (= terms hash = the EIP-3009 nonce the sender signs), and pickup codes.
//!
//! `id = keccak256(abi.encode(escrow, sender, amount, partnerId, expiry, settlement, partnerSigner, claimHash))`
//! with `partnerId` and `expiry` as `uint64` (each padded to a 32-byte word by `abi.encode`), exactly as
//! `RemittanceEscrow._id`: the partner's settlement address and signer are bound by the sender's signature.
//! `claimHash = keccak256(abi.encodePacked(preimage))` where the preimage is the pickup code's ASCII right-padded
//! with zero bytes to 32 bytes.

use std::fmt;

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::sol_types::SolValue;
use rand::Rng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::contracts::IRemittanceEscrow;

/// Crockford base32 alphabet (no I, L, O, U).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a pickup code (60 bits).
pub const PICKUP_CODE_LEN: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickupCodeError {
    #[error("a pickup code has 12 characters of Crockford base32 (dashes and spaces are ignored)")]
    Invalid,
}

/// The recipient's pickup code: 12 Crockford base32 characters. Its ASCII bytes, right-padded with zeros to 32
/// bytes, are the escrow's release preimage. A secret until paid out: `Debug` hides it; zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize)]
#[zeroize(drop)]
pub struct PickupCode(String);

impl PickupCode {
    /// A fresh random code (OS random source).
    pub fn generate() -> Self {
        let mut rng = rand::rngs::OsRng;
        let s: String = (0..PICKUP_CODE_LEN)
            .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
            .collect();
        Self(s)
    }

    /// Parses what a person typed: case-insensitive, dashes/spaces ignored, O→0, I/L→1 (Crockford).
    pub fn parse(input: &str) -> Result<Self, PickupCodeError> {
        if input.len() > 64 {
            return Err(PickupCodeError::Invalid);
        }
        let mut out = String::with_capacity(PICKUP_CODE_LEN);
        for c in input.chars() {
            let c = match c.to_ascii_uppercase() {
                '-' | ' ' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
                return Err(PickupCodeError::Invalid);
            }
            out.push(c);
        }
        if out.len() != PICKUP_CODE_LEN {
            return Err(PickupCodeError::Invalid);
        }
        Ok(Self(out))
    }

    /// The code itself (show it only to the sender, the recipient and the paying partner).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Grouped for people: `ABCD-EFGH-JKMN`.
    pub fn display_grouped(&self) -> String {
        format!("{}-{}-{}", &self.0[0..4], &self.0[4..8], &self.0[8..12])
    }

    /// The release preimage: ASCII right-padded with zero bytes.
    pub fn preimage(&self) -> B256 {
        let mut b = [0u8; 32];
        b[..PICKUP_CODE_LEN].copy_from_slice(self.0.as_bytes());
        B256::from(b)
    }

    /// `keccak256(abi.encodePacked(preimage))`.
    pub fn claim_hash(&self) -> B256 {
        claim_hash(self.preimage())
    }
}

impl fmt::Debug for PickupCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PickupCode(<redacted>)")
    }
}

/// `keccak256(abi.encodePacked(bytes32 preimage))`.
pub fn claim_hash(preimage: B256) -> B256 {
    keccak256(preimage)
}

/// The terms of one remittance at one escrow. Hashing them gives the remittance id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RemittanceTerms {
    pub escrow: Address,
    pub sender: Address,
    /// Token base units.
    #[serde(with = "u256_dec")]
    pub amount_base_units: U256,
    pub partner_id: u64,
    /// Releases pay here (bound in the id: the escrow's owner cannot redirect it).
    pub settlement: Address,
    /// The partner's EVM signer whose EIP-712 `Decline(id)` lets the sender be refunded before expiry.
    pub partner_signer: Address,
    pub expires_at_unix_s: u64,
    pub claim_hash: B256,
}

impl RemittanceTerms {
    /// The remittance id:
    /// `keccak256(abi.encode(escrow, sender, amount, partnerId, expiry, settlement, partnerSigner, claimHash))`.
    pub fn id(&self) -> B256 {
        keccak256(
            (
                self.escrow,
                self.sender,
                self.amount_base_units,
                self.partner_id,
                self.expires_at_unix_s,
                self.settlement,
                self.partner_signer,
                self.claim_hash,
            )
                .abi_encode(),
        )
    }

    /// The contract's `Terms` struct (the escrow address is implicit there).
    pub fn to_sol(&self) -> IRemittanceEscrow::Terms {
        IRemittanceEscrow::Terms {
            sender: self.sender,
            amount: self.amount_base_units,
            partnerId: self.partner_id,
            expiry: self.expires_at_unix_s,
            settlement: self.settlement,
            partnerSigner: self.partner_signer,
            claimHash: self.claim_hash,
        }
    }

    pub fn from_sol(escrow: Address, t: &IRemittanceEscrow::Terms) -> Self {
        Self {
            escrow,
            sender: t.sender,
            amount_base_units: t.amount,
            partner_id: t.partnerId,
            settlement: t.settlement,
            partner_signer: t.partnerSigner,
            expires_at_unix_s: t.expiry,
            claim_hash: t.claimHash,
        }
    }
}

alloy::sol! {
    /// A partner's consent to refund a remittance before its expiry: "not paid, will not pay" (EIP-712, signed in
    /// the escrow's domain by the partner signer bound in the terms; the escrow's `cancel` checks it).
    #[derive(Debug)]
    struct Decline {
        bytes32 id;
    }
}

/// The escrow's EIP-712 domain: name "Remesa Escrow", version "2", the chain id and the escrow's address.
pub fn escrow_domain(chain_id: u64, escrow: Address) -> alloy::sol_types::Eip712Domain {
    alloy::sol_types::eip712_domain! {
        name: "Remesa Escrow",
        version: "2",
        chain_id: chain_id,
        verifying_contract: escrow,
    }
}

/// The digest a partner signer signs to let remittance `id` be refunded before expiry (the escrow's
/// `declineDigest(id)`).
pub fn decline_digest(chain_id: u64, escrow: Address, id: B256) -> B256 {
    use alloy::sol_types::SolStruct;
    Decline { id }.eip712_signing_hash(&escrow_domain(chain_id, escrow))
}

/// Signs [`decline_digest`] with a partner signer's key.
pub fn sign_decline(
    signer: &alloy::signers::local::PrivateKeySigner,
    chain_id: u64,
    escrow: Address,
    id: B256,
) -> Result<crate::eip3009::Signature65, crate::eip3009::SignatureError> {
    use alloy::signers::SignerSync;
    let sig = signer
        .sign_hash_sync(&decline_digest(chain_id, escrow, id))
        .map_err(|_| crate::eip3009::SignatureError::Sign)?;
    Ok(crate::eip3009::Signature65::from_signature(&sig))
}

/// Serialises a `U256` as a decimal string (JSON numbers cannot hold it exactly).
pub(crate) mod u256_dec {
    use alloy::primitives::U256;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &U256, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<U256, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || s.len() > 78 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(D::Error::custom("expected a decimal integer string"));
        }
        U256::from_str_radix(&s, 10).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_codes_parse_and_hide() {
        let c = PickupCode::generate();
        assert_eq!(PickupCode::parse(&c.display_grouped()), Ok(c.clone()));
        assert!(!format!("{c:?}").contains(c.expose()));
    }

    #[test]
    fn preimage_is_right_padded_ascii() {
        let c = PickupCode::parse("abcd-efgh-jkmn").expect("code");
        assert_eq!(c.expose(), "ABCDEFGHJKMN");
        let p = c.preimage();
        assert_eq!(&p[..12], b"ABCDEFGHJKMN");
        assert!(p[12..].iter().all(|b| *b == 0));
        assert_eq!(c.claim_hash(), keccak256(p.as_slice()));
    }

    #[test]
    fn confusable_letters_are_mapped() {
        assert_eq!(
            PickupCode::parse("oooo iiii llll").map(|c| c.expose().to_owned()),
            Ok("000011111111".into())
        );
        assert!(PickupCode::parse("UUUUUUUUUUUU").is_err());
        assert!(PickupCode::parse("ABC").is_err());
    }

    #[test]
    fn id_is_abi_encode_of_eight_words() {
        let t = RemittanceTerms {
            escrow: Address::repeat_byte(0xee),
            sender: Address::repeat_byte(0x11),
            amount_base_units: U256::from(1_000_000u64),
            partner_id: 7,
            settlement: Address::repeat_byte(0x5e),
            partner_signer: Address::repeat_byte(0x51),
            expires_at_unix_s: 1_900_000_000,
            claim_hash: B256::repeat_byte(0xcc),
        };
        let mut buf = Vec::new();
        buf.extend_from_slice(B256::left_padding_from(t.escrow.as_slice()).as_slice());
        buf.extend_from_slice(B256::left_padding_from(t.sender.as_slice()).as_slice());
        buf.extend_from_slice(&t.amount_base_units.to_be_bytes::<32>());
        buf.extend_from_slice(&U256::from(t.partner_id).to_be_bytes::<32>());
        buf.extend_from_slice(&U256::from(t.expires_at_unix_s).to_be_bytes::<32>());
        buf.extend_from_slice(B256::left_padding_from(t.settlement.as_slice()).as_slice());
        buf.extend_from_slice(B256::left_padding_from(t.partner_signer.as_slice()).as_slice());
        buf.extend_from_slice(t.claim_hash.as_slice());
        assert_eq!(buf.len(), 256);
        assert_eq!(t.id(), keccak256(&buf));
        let json = serde_json::to_string(&t).expect("json");
        assert!(json.contains("\"amount_base_units\":\"1000000\""));
        assert_eq!(serde_json::from_str::<RemittanceTerms>(&json).expect("back"), t);
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,100}") {
            let _ = PickupCode::parse(&s);
        }

        #[test]
        fn valid_codes_round_trip(s in "[0-9ABCDEFGHJKMNPQRSTVWXYZ]{12}") {
            let c = PickupCode::parse(&s).expect("valid");
            prop_assert_eq!(c.expose(), s.as_str());
            prop_assert_eq!(PickupCode::parse(&c.display_grouped().to_lowercase()), Ok(c));
        }
    }
}
