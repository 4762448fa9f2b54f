//! The node's claim key. Each remittance's release secret (a 128-bit salt and the recipient's pickup code,
//! [`ClaimSecret`]) is derived from this key and the remittance's quote id, so neither is ever stored: the database
//! holds the public claim hash and, for cash pickups, a keyed hash of the code that counter agents look codes up by.
//! Without the key (which comes from the node keystore) a copy of the database cannot be searched for codes: the
//! claim hash commits to the secret salt and the lookup hash is an HMAC.
//!
//! The chat bridge derives the code again when it delivers the recipient's message (the stored message holds a
//! placeholder, never the code), and when a lost code is re-sent.

use std::fmt;

use hmac::{Hmac, Mac};
use remesa_wallet::terms::{CLAIM_SALT_LEN, ClaimSecret, PickupCode};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::custody::{Custody, CustodyError};

/// What the claim key is derived for (a new label is a new key: changing it orphans every open remittance).
const PURPOSE: &str = "remesa/claim-key/v1";

/// The key behind every claim secret and code lookup hash. `Debug` never shows it.
pub struct ClaimKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for ClaimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClaimKey(<redacted>)")
    }
}

impl ClaimKey {
    /// The claim key of the node keystore.
    pub fn from_custody(custody: &Custody) -> Result<Self, CustodyError> {
        Ok(Self(custody.derive_secret(PURPOSE)?))
    }

    fn mac(&self, domain: &[u8], input: &[u8]) -> [u8; 32] {
        // A 32-byte key is always a valid HMAC key.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_slice()).expect("32-byte HMAC key");
        mac.update(domain);
        mac.update(&[0]);
        mac.update(input);
        mac.finalize().into_bytes().into()
    }

    /// The claim secret of the remittance made from quote `quote_id` (each quote makes at most one remittance).
    pub fn secret(&self, quote_id: &str) -> ClaimSecret {
        let h = Zeroizing::new(self.mac(b"claim-secret", quote_id.as_bytes()));
        let mut salt = [0u8; CLAIM_SALT_LEN];
        salt.copy_from_slice(&h[..CLAIM_SALT_LEN]);
        let mut bits = [0u8; 8];
        bits.copy_from_slice(&h[CLAIM_SALT_LEN..CLAIM_SALT_LEN + 8]);
        ClaimSecret::new(salt, PickupCode::from_bits(bits))
    }

    /// The keyed hash counter agents look a code up by (0x-hex), stored instead of the code.
    pub fn lookup(&self, code: &PickupCode) -> String {
        format!(
            "0x{}",
            hex::encode(self.mac(b"code-lookup", code.expose().as_bytes()))
        )
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    const PHRASE: &str = "test test test test test test test test test test test junk";

    #[test]
    fn secrets_are_derived_per_quote_and_hidden() {
        let key =
            ClaimKey::from_custody(&Custody::from_mnemonic(SecretString::from(PHRASE)).expect("custody"))
                .expect("key");
        let a = key.secret("q-1");
        assert_eq!(a, key.secret("q-1"));
        let b = key.secret("q-2");
        assert_ne!(a.claim_hash(), b.claim_hash());
        assert_ne!(a.salt(), b.salt());
        assert_eq!(ClaimSecret::from_preimage(a.preimage()), Some(a.clone()));
        assert_eq!(
            key.lookup(a.code()),
            key.lookup(&PickupCode::parse(&a.code().display_grouped()).expect("code"))
        );
        assert_ne!(key.lookup(a.code()), key.lookup(b.code()));
        assert!(!format!("{key:?}").contains("0x"));
        // Another keystore, other secrets for the same quote.
        let other = Custody::from_mnemonic(SecretString::from(
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
        ))
        .expect("custody");
        let other = ClaimKey::from_custody(&other).expect("key");
        assert_ne!(other.secret("q-1").claim_hash(), a.claim_hash());
        assert_ne!(other.lookup(a.code()), key.lookup(a.code()));
    }
}
