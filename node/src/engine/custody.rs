//! Custodial keys: every chat user gets one account derived from the node's master mnemonic
//! (BIP-44 `m/44'/60'/0'/0/<index>`); index 0 is the node's relayer (the chain writer's sending key).
//! Mnemonic handling, derivation and the encrypted keystore file are the wallet's ([`remesa_wallet::keys`]).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Mutex;

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use remesa_wallet::keys::{self, KeyError, Mnemonic, Passphrase};
use secrecy::{ExposeSecret, SecretString};

/// The node's master seed. `Debug` never shows it.
pub struct Custody {
    mnemonic: Mnemonic,
    cache: Mutex<HashMap<u32, PrivateKeySigner>>,
}

impl fmt::Debug for Custody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Custody(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("key derivation failed: {0}")]
pub struct CustodyError(String);

fn passphrase(p: &SecretString) -> Result<Passphrase, CustodyError> {
    Passphrase::new(p.expose_secret()).map_err(|e| CustodyError(e.to_string()))
}

impl Custody {
    /// Relayer (chain writer) key index.
    pub const RELAYER_INDEX: u32 = 0;

    /// From a BIP-39 English mnemonic; checks it derives.
    pub fn from_mnemonic(phrase: SecretString) -> Result<Custody, CustodyError> {
        // The wallet's error never quotes the phrase.
        let mnemonic = Mnemonic::parse(phrase.expose_secret()).map_err(|e| CustodyError(e.to_string()))?;
        let c = Custody {
            mnemonic,
            cache: Mutex::new(HashMap::new()),
        };
        c.signer(Self::RELAYER_INDEX)?;
        Ok(c)
    }

    /// The signer of account `index` (cached after the first derivation).
    pub fn signer(&self, index: u32) -> Result<PrivateKeySigner, CustodyError> {
        if let Ok(cache) = self.cache.lock()
            && let Some(s) = cache.get(&index)
        {
            return Ok(s.clone());
        }
        let signer = self
            .mnemonic
            .signer(index)
            .map_err(|_| CustodyError(format!("account {index} could not be derived")))?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 100_000 {
                cache.clear();
            }
            cache.insert(index, signer.clone());
        }
        Ok(signer)
    }

    pub fn address(&self, index: u32) -> Result<Address, CustodyError> {
        Ok(self.signer(index)?.address())
    }

    /// A 32-byte secret for `purpose` that is no account: HMAC-SHA256 keyed with the BIP-39 seed. The same
    /// keystore gives the same secret, so backing up the keystore backs it up.
    pub fn derive_secret(&self, purpose: &str) -> Result<zeroize::Zeroizing<[u8; 32]>, CustodyError> {
        use hmac::{Hmac, Mac};
        let seed = self
            .mnemonic
            .seed()
            .map_err(|_| CustodyError("the seed could not be derived".into()))?;
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(seed.as_slice())
            .map_err(|_| CustodyError("the seed could not key an HMAC".into()))?;
        mac.update(purpose.as_bytes());
        Ok(zeroize::Zeroizing::new(mac.finalize().into_bytes().into()))
    }

    /// The relayer's key (pays gas for deposits, releases and refunds).
    pub fn relayer(&self) -> Result<PrivateKeySigner, CustodyError> {
        self.signer(Self::RELAYER_INDEX)
    }

    /// Creates a new random 24-word master mnemonic and stores it encrypted with `passphrase` (Web3 Secret
    /// Storage: scrypt + AES-128-CTR) at `path`. Refuses to overwrite an existing file.
    pub fn create_keystore(path: &Path, passphrase_: &SecretString) -> Result<Custody, CustodyError> {
        if path.exists() {
            return Err(CustodyError(format!("{} already exists", path.display())));
        }
        let pass = passphrase(passphrase_)?;
        let mnemonic =
            Mnemonic::generate(24).map_err(|_| CustodyError("mnemonic generation failed".into()))?;
        keys::write_keystore_file(path, mnemonic.expose().as_bytes(), &pass)
            .map_err(|e| CustodyError(format!("writing the keystore: {e}")))?;
        Custody::from_mnemonic(SecretString::from(mnemonic.expose()))
    }

    /// Opens the keystore at `path` with `passphrase`.
    pub fn open_keystore(path: &Path, passphrase_: &SecretString) -> Result<Custody, CustodyError> {
        let pass = passphrase(passphrase_)?;
        let bytes = keys::read_keystore_file(path, &pass).map_err(|e| match e {
            KeyError::WrongPassphrase(_) => {
                CustodyError(format!("cannot open {} (wrong passphrase?)", path.display()))
            }
            other => CustodyError(format!("cannot open {}: {other}", path.display())),
        })?;
        let phrase = std::str::from_utf8(&bytes)
            .map_err(|_| CustodyError("keystore content is not a mnemonic".into()))?;
        Custody::from_mnemonic(SecretString::from(phrase))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHRASE: &str = "test test test test test test test test test test test junk";

    #[test]
    fn derives_the_well_known_accounts_and_hides_the_phrase() {
        let c = Custody::from_mnemonic(SecretString::from(PHRASE)).expect("custody");
        assert_eq!(
            format!("{:#x}", c.address(0).expect("0")),
            "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
        );
        assert_eq!(
            format!("{:#x}", c.address(1).expect("1")),
            "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
        );
        assert!(!format!("{c:?}").contains("junk"));
    }

    #[test]
    fn keystore_round_trip() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("node-keystore.json");
        let pass = SecretString::from("correct horse");
        let a = Custody::create_keystore(&path, &pass).expect("create");
        let b = Custody::open_keystore(&path, &pass).expect("open");
        assert_eq!(a.address(5).expect("a"), b.address(5).expect("b"));
        assert!(Custody::open_keystore(&path, &SecretString::from("wrong")).is_err());
        assert!(Custody::create_keystore(&path, &pass).is_err());
    }

    #[test]
    fn bad_phrase_is_refused_without_echo() {
        let e = Custody::from_mnemonic(SecretString::from("not a mnemonic secretword")).expect_err("bad");
        assert!(!e.to_string().contains("secretword"));
    }
}
