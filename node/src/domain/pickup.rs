use std::fmt;

use alloy::primitives::{B256, keccak256};
use rand::Rng;
use zeroize::Zeroize;

/// Crockford base32 alphabet (no I, L, O, U).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const LEN: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickupCodeError {
    #[error("a pickup code has 12 characters of Crockford base32 (dashes and spaces are ignored)")]
    Invalid,
}

/// The recipient's pickup code: 12 Crockford base32 characters (60 bits). Its ASCII bytes, right-padded with zeros
/// to 32 bytes, are the escrow's release preimage. A secret until paid out: `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Zeroize)]
#[zeroize(drop)]
pub struct PickupCode(String);

impl PickupCode {
    /// A fresh random code.
    pub fn generate() -> Self {
        let mut rng = rand::rngs::OsRng;
        let s: String = (0..LEN)
            .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
            .collect();
        Self(s)
    }

    /// Parses what a person typed: case-insensitive, dashes/spaces ignored, O→0, I/L→1 (Crockford).
    pub fn parse(input: &str) -> Result<Self, PickupCodeError> {
        if input.len() > 64 {
            return Err(PickupCodeError::Invalid);
        }
        let mut out = String::with_capacity(LEN);
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
        if out.len() != LEN {
            return Err(PickupCodeError::Invalid);
        }
        Ok(Self(out))
    }

    /// The code itself (show it only to the recipient and the paying partner).
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
        b[..LEN].copy_from_slice(self.0.as_bytes());
        B256::from(b)
    }

    /// `keccak256(abi.encodePacked(preimage))`.
    pub fn claim_hash(&self) -> B256 {
        keccak256(self.preimage())
    }
}

impl fmt::Debug for PickupCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PickupCode(<redacted>)")
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
