//! Remittance terms, their id (= terms hash = the EIP-3009 nonce the sender signs), and pickup codes.
//!
//! `id = keccak256(abi.encode(escrow, sender, amount, partnerId, expiry, settlement, partnerSigner, claimHash))`
//! with `partnerId` and `expiry` as `uint64` (each padded to a 32-byte word by `abi.encode`), exactly as
//! `RemittanceEscrow._id`: the partner's settlement address and signer are bound by the sender's signature.
//! `claimHash = keccak256(abi.encodePacked(preimage))` where the 32-byte preimage is a secret random 16-byte salt,
//! the pickup code's 12 ASCII characters and 4 zero bytes ([`ClaimSecret`]): the claim hash published at deposit
//! commits to 128 secret bits besides the code, so it cannot be searched for the code.

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

/// The recipient's pickup code: 12 Crockford base32 characters (60 bits). With a secret salt it makes the escrow's
/// release preimage ([`ClaimSecret`]). A secret until paid out: `Debug` hides it; zeroized on drop.
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

    /// The first code written grouped (`ABCD-EFGH-JKMN`, upper case) in a message, as a recipient's chat shows it.
    pub fn find_in(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        let is_code_char = |c: u8| ALPHABET.contains(&c);
        (0..b.len().saturating_sub(13)).find_map(|i| {
            let w = &b[i..i + 14];
            let shape = w.iter().enumerate().all(|(j, &c)| {
                if j == 4 || j == 9 {
                    c == b'-'
                } else {
                    is_code_char(c)
                }
            });
            let bounded = (i == 0 || !b[i - 1].is_ascii_alphanumeric())
                && b.get(i + 14).is_none_or(|c| !c.is_ascii_alphanumeric());
            if shape && bounded {
                std::str::from_utf8(w).ok().and_then(|s| Self::parse(s).ok())
            } else {
                None
            }
        })
    }

    /// The code made of the first 60 bits of `bytes` (a key-derived code: see the node's claim key).
    pub fn from_bits(bytes: [u8; 8]) -> Self {
        let bits = u64::from_be_bytes(bytes);
        let s: String = (0..PICKUP_CODE_LEN)
            .map(|i| {
                let shift = 64 - 5 * (i + 1);
                char::from(ALPHABET[usize::try_from((bits >> shift) & 0x1f).unwrap_or(0)])
            })
            .collect();
        Self(s)
    }
}

/// Bytes of secret salt in a claim preimage (128 bits).
pub const CLAIM_SALT_LEN: usize = 16;

/// What releases a remittance: a secret random salt and the recipient's pickup code. The preimage is
/// `salt (16 bytes) ‖ code (12 ASCII bytes) ‖ 4 zero bytes`; `claimHash = keccak256(preimage)`. Both are revealed
/// on chain by the release (by design: the code is spent then). `Debug` hides both; zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize)]
#[zeroize(drop)]
pub struct ClaimSecret {
    salt: [u8; CLAIM_SALT_LEN],
    code: PickupCode,
}

impl ClaimSecret {
    pub fn new(salt: [u8; CLAIM_SALT_LEN], code: PickupCode) -> Self {
        Self { salt, code }
    }

    /// A fresh random salt and code (OS random source).
    pub fn generate() -> Self {
        let mut salt = [0u8; CLAIM_SALT_LEN];
        rand::rngs::OsRng.fill(&mut salt);
        Self::new(salt, PickupCode::generate())
    }

    /// Rebuilds a secret from its preimage (as `salt ‖ code ‖ 0000`); `None` when it is not one.
    pub fn from_preimage(preimage: B256) -> Option<Self> {
        let b = preimage.as_slice();
        if b[CLAIM_SALT_LEN + PICKUP_CODE_LEN..].iter().any(|&x| x != 0) {
            return None;
        }
        let code = std::str::from_utf8(&b[CLAIM_SALT_LEN..CLAIM_SALT_LEN + PICKUP_CODE_LEN]).ok()?;
        let code = PickupCode::parse(code).ok()?;
        if code.expose().as_bytes() != &b[CLAIM_SALT_LEN..CLAIM_SALT_LEN + PICKUP_CODE_LEN] {
            return None;
        }
        let mut salt = [0u8; CLAIM_SALT_LEN];
        salt.copy_from_slice(&b[..CLAIM_SALT_LEN]);
        Some(Self::new(salt, code))
    }

    pub fn code(&self) -> &PickupCode {
        &self.code
    }

    /// The salt (to keep beside the code where the releaser is not the node: `remesa-wallet remit --save`).
    pub fn salt(&self) -> &[u8; CLAIM_SALT_LEN] {
        &self.salt
    }

    /// The release preimage: `salt ‖ code ‖ 0000`.
    pub fn preimage(&self) -> B256 {
        let mut b = [0u8; 32];
        b[..CLAIM_SALT_LEN].copy_from_slice(&self.salt);
        b[CLAIM_SALT_LEN..CLAIM_SALT_LEN + PICKUP_CODE_LEN].copy_from_slice(self.code.expose().as_bytes());
        B256::from(b)
    }

    /// `keccak256(abi.encodePacked(preimage))`.
    pub fn claim_hash(&self) -> B256 {
        claim_hash(self.preimage())
    }
}

impl fmt::Debug for ClaimSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClaimSecret(<redacted>)")
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

/// The escrow's EIP-712 domain: name "Remesa Escrow", version "3", the chain id and the escrow's address.
pub fn escrow_domain(chain_id: u64, escrow: Address) -> alloy::sol_types::Eip712Domain {
    alloy::sol_types::eip712_domain! {
        name: "Remesa Escrow",
        version: "3",
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
    fn preimage_is_salt_then_code_then_zeros() {
        let c = PickupCode::parse("abcd-efgh-jkmn").expect("code");
        let s = ClaimSecret::new([0x5a; 16], c);
        let p = s.preimage();
        assert_eq!(&p[..16], &[0x5a; 16]);
        assert_eq!(&p[16..28], b"ABCDEFGHJKMN");
        assert!(p[28..].iter().all(|b| *b == 0));
        assert_eq!(s.claim_hash(), keccak256(p.as_slice()));
        assert_eq!(ClaimSecret::from_preimage(p), Some(s.clone()));
        assert!(!format!("{s:?}").contains("ABCD"));
        // Another salt, another claim hash for the same code.
        let other = ClaimSecret::new([0x5b; 16], s.code().clone());
        assert_ne!(other.claim_hash(), s.claim_hash());
        // Not a claim preimage: a lower-case code, or bytes after the code.
        let mut bad = p;
        bad.0[16] = b'a';
        assert_eq!(ClaimSecret::from_preimage(bad), None);
        let mut bad = p;
        bad.0[31] = 1;
        assert_eq!(ClaimSecret::from_preimage(bad), None);
    }

    #[test]
    fn codes_are_found_in_messages() {
        let m = "Collect it with this pickup code and your ID:\nB4HC-SW05-GWD4\nRef: e93a37ef";
        assert_eq!(
            PickupCode::find_in(m).map(|c| c.expose().to_owned()),
            Some("B4HCSW05GWD4".into())
        );
        assert_eq!(PickupCode::find_in("ref 12345-ABCD-EFGH-JK"), None);
        assert_eq!(PickupCode::find_in("XABCD-EFGH-JKMN"), None);
        assert_eq!(PickupCode::find_in("ABCD-EFGH-JKMU"), None);
        assert_eq!(PickupCode::find_in(""), None);
        assert_eq!(
            PickupCode::find_in("ñ ABCD-EFGH-JKMN."),
            PickupCode::parse("ABCDEFGHJKMN").ok()
        );
    }

    #[test]
    fn codes_from_bits_use_the_first_sixty() {
        assert_eq!(PickupCode::from_bits([0; 8]).expose(), "000000000000");
        assert_eq!(PickupCode::from_bits([0xff; 8]).expose(), "ZZZZZZZZZZZZ");
        assert_eq!(
            PickupCode::from_bits([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0]).expose(),
            "ZZZZZZZZZZZZ"
        );
        assert_eq!(
            PickupCode::from_bits([0x08, 0, 0, 0, 0, 0, 0, 0]).expose(),
            "100000000000"
        );
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
