//! Keys: BIP-39 mnemonics, BIP-44 derivation (`m/44'/60'/0'/0/<index>`), and encrypted keystore files.
//!
//! A keystore directory holds one wallet per name: `<name>.json` is a Web3 Secret Storage v3 file (scrypt +
//! AES-128-CTR, written by `eth-keystore`) whose secret is either the mnemonic phrase (UTF-8) or a 32-byte private
//! key; `<name>.meta.json` holds what may be read without the passphrase (kind and first address).
//!
//! Secrets live in [`Mnemonic`], [`Passphrase`] and [`Unlocked`]: their `Debug` is redacted, they have no `Display`,
//! and their memory is zeroized on drop. Error messages never quote secret input.

use std::fmt;
use std::path::{Path, PathBuf};

use alloy::primitives::{Address, B256};
use alloy::signers::local::coins_bip39::{English, Mnemonic as Bip39};
use alloy::signers::local::{MnemonicBuilder, PrivateKeySigner};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Environment variable read for the keystore passphrase when no file is given.
pub const PASSPHRASE_ENV: &str = "REMESA_WALLET_PASSPHRASE";

/// Shortest passphrase accepted when creating a keystore.
pub const MIN_PASSPHRASE_LEN: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("that is not a valid BIP-39 English mnemonic (12, 15, 18, 21 or 24 words from the word list)")]
    InvalidMnemonic,
    #[error("that is not a valid private key (64 hex digits, optionally with 0x)")]
    InvalidPrivateKey,
    #[error("account {0} could not be derived")]
    Derivation(u32),
    #[error("wrong passphrase for {0:?}")]
    WrongPassphrase(String),
    #[error("no wallet named {name:?} in {dir} (create one with `remesa-wallet new` or `import`)")]
    NotFound { name: String, dir: PathBuf },
    #[error("a wallet named {name:?} already exists in {dir}")]
    AlreadyExists { name: String, dir: PathBuf },
    #[error("wallet names use 1 to 32 letters, digits, '-' or '_'")]
    InvalidName,
    #[error("the passphrase must have at least {MIN_PASSPHRASE_LEN} characters")]
    WeakPassphrase,
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    #[error("the keystore file {0} is damaged or not a Remesa wallet")]
    Corrupt(PathBuf),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> KeyError {
    let context = context.into();
    move |source| KeyError::Io { context, source }
}

/// A keystore passphrase. Redacted `Debug`, zeroized on drop.
#[derive(Clone)]
pub struct Passphrase(SecretString);

impl Passphrase {
    pub fn new(s: impl Into<String>) -> Result<Self, KeyError> {
        let s: String = s.into();
        if s.is_empty() {
            return Err(KeyError::EmptyPassphrase);
        }
        Ok(Self(SecretString::from(s)))
    }

    /// Reads the first line of a file (a trailing newline is not part of the passphrase).
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let content = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(io(format!("reading passphrase file {}", path.display())))?,
        );
        let line = content.lines().next().unwrap_or("");
        Self::new(line)
    }

    /// From [`PASSPHRASE_ENV`] if set and non-empty.
    pub fn from_env() -> Option<Self> {
        let v = Zeroizing::new(std::env::var(PASSPHRASE_ENV).ok()?);
        Self::new(v.as_str()).ok()
    }

    /// Refuses passphrases too short to protect a keystore.
    pub fn check_strength(&self) -> Result<(), KeyError> {
        if self.0.expose_secret().chars().count() < MIN_PASSPHRASE_LEN {
            return Err(KeyError::WeakPassphrase);
        }
        Ok(())
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// A BIP-39 English mnemonic, normalised (lower case, single spaces). Redacted `Debug`, zeroized on drop.
#[derive(Clone)]
pub struct Mnemonic(SecretString);

impl Mnemonic {
    /// A fresh random mnemonic of 12 or 24 words (from the OS random source).
    pub fn generate(words: usize) -> Result<Self, KeyError> {
        let m = Bip39::<English>::new_with_count(&mut rand::rngs::OsRng, words)
            .map_err(|_| KeyError::InvalidMnemonic)?;
        let phrase = Zeroizing::new(m.to_phrase());
        Ok(Self(SecretString::from(phrase.as_str())))
    }

    /// Checks the words and the checksum. The error never quotes the input.
    pub fn parse(input: &str) -> Result<Self, KeyError> {
        if input.len() > 1024 {
            return Err(KeyError::InvalidMnemonic);
        }
        // Room for lower-casing without reallocating (a reallocation would leave an unzeroized copy).
        let mut normalised = Zeroizing::new(String::with_capacity(input.len() * 3));
        for word in input.split_whitespace() {
            if !normalised.is_empty() {
                normalised.push(' ');
            }
            normalised.extend(word.chars().flat_map(char::to_lowercase));
        }
        Bip39::<English>::new_from_phrase(&normalised).map_err(|_| KeyError::InvalidMnemonic)?;
        Ok(Self(SecretString::from(normalised.as_str())))
    }

    /// The phrase itself: show it only to its owner, once.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The BIP-39 seed (no BIP-39 passphrase), for keys that are not accounts (the node's claim key).
    pub fn seed(&self) -> Result<Zeroizing<[u8; 64]>, KeyError> {
        let m = Bip39::<English>::new_from_phrase(self.0.expose_secret())
            .map_err(|_| KeyError::InvalidMnemonic)?;
        let seed = m.to_seed(None).map_err(|_| KeyError::InvalidMnemonic)?;
        Ok(Zeroizing::new(seed))
    }

    /// The account at `m/44'/60'/0'/0/<index>`.
    pub fn signer(&self, index: u32) -> Result<PrivateKeySigner, KeyError> {
        MnemonicBuilder::english()
            .phrase(self.0.expose_secret())
            .index(index)
            .and_then(|b| b.build())
            // the builder's error text may quote its input: keep only the kind
            .map_err(|_| KeyError::Derivation(index))
    }

    pub fn address(&self, index: u32) -> Result<Address, KeyError> {
        Ok(self.signer(index)?.address())
    }
}

impl fmt::Debug for Mnemonic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Mnemonic(<redacted>)")
    }
}

/// Parses a hex private key without ever quoting it.
pub fn parse_private_key(input: &str) -> Result<PrivateKeySigner, KeyError> {
    let t = input.trim();
    let t = t.strip_prefix("0x").unwrap_or(t);
    if t.len() != 64 {
        return Err(KeyError::InvalidPrivateKey);
    }
    let bytes = Zeroizing::new(hex::decode(t).map_err(|_| KeyError::InvalidPrivateKey)?);
    let b = B256::from_slice(&bytes);
    PrivateKeySigner::from_bytes(&b).map_err(|_| KeyError::InvalidPrivateKey)
}

/// What a wallet holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WalletKind {
    /// A BIP-39 mnemonic: any number of accounts by index.
    Mnemonic,
    /// One private key: only index 0.
    PrivateKey,
}

/// The non-secret description of a wallet (`<name>.meta.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletInfo {
    pub name: String,
    pub kind: WalletKind,
    /// The account at index 0.
    pub address: Address,
}

/// The secret of an unlocked wallet.
pub enum Unlocked {
    Mnemonic(Mnemonic),
    PrivateKey(Box<PrivateKeySigner>),
}

impl Unlocked {
    pub fn signer(&self, index: u32) -> Result<PrivateKeySigner, KeyError> {
        match self {
            Unlocked::Mnemonic(m) => m.signer(index),
            Unlocked::PrivateKey(k) if index == 0 => Ok((**k).clone()),
            Unlocked::PrivateKey(_) => Err(KeyError::Derivation(index)),
        }
    }
}

impl fmt::Debug for Unlocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unlocked::Mnemonic(_) => f.write_str("Unlocked::Mnemonic(<redacted>)"),
            Unlocked::PrivateKey(k) => write!(f, "Unlocked::PrivateKey({})", k.address()),
        }
    }
}

/// A directory of encrypted wallets.
#[derive(Clone, Debug)]
pub struct Keystore {
    dir: PathBuf,
}

impl Keystore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn check_name(name: &str) -> Result<(), KeyError> {
        let ok = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok { Ok(()) } else { Err(KeyError::InvalidName) }
    }

    fn key_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    fn meta_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.meta.json"))
    }

    fn prepare(&self, name: &str) -> Result<(), KeyError> {
        Self::check_name(name)?;
        if self.key_path(name).exists() || self.meta_path(name).exists() {
            return Err(KeyError::AlreadyExists {
                name: name.to_owned(),
                dir: self.dir.clone(),
            });
        }
        std::fs::create_dir_all(&self.dir).map_err(io(format!("creating {}", self.dir.display())))?;
        restrict(&self.dir, 0o700);
        Ok(())
    }

    fn write(&self, info: &WalletInfo, secret: &[u8], pass: &Passphrase) -> Result<(), KeyError> {
        write_keystore_file(&self.key_path(&info.name), secret, pass)?;
        let meta = serde_json::to_vec_pretty(info).map_err(|e| KeyError::Io {
            context: "encoding wallet metadata".into(),
            source: std::io::Error::other(e),
        })?;
        let path = self.meta_path(&info.name);
        std::fs::write(&path, meta).map_err(io(format!("writing {}", path.display())))?;
        Ok(())
    }

    /// Stores a mnemonic encrypted under `name`. Refuses to overwrite.
    pub fn store_mnemonic(
        &self,
        name: &str,
        mnemonic: &Mnemonic,
        pass: &Passphrase,
    ) -> Result<WalletInfo, KeyError> {
        self.prepare(name)?;
        let info = WalletInfo {
            name: name.to_owned(),
            kind: WalletKind::Mnemonic,
            address: mnemonic.address(0)?,
        };
        self.write(&info, mnemonic.expose().as_bytes(), pass)?;
        Ok(info)
    }

    /// Stores one private key encrypted under `name` (a standard keystore file). Refuses to overwrite.
    pub fn store_private_key(
        &self,
        name: &str,
        key: &PrivateKeySigner,
        pass: &Passphrase,
    ) -> Result<WalletInfo, KeyError> {
        self.prepare(name)?;
        let info = WalletInfo {
            name: name.to_owned(),
            kind: WalletKind::PrivateKey,
            address: key.address(),
        };
        let bytes = Zeroizing::new(key.to_bytes().0);
        self.write(&info, bytes.as_slice(), pass)?;
        Ok(info)
    }

    /// The wallet's public description (no passphrase needed).
    pub fn info(&self, name: &str) -> Result<WalletInfo, KeyError> {
        Self::check_name(name)?;
        let path = self.meta_path(name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyError::NotFound {
                    name: name.to_owned(),
                    dir: self.dir.clone(),
                });
            }
            Err(e) => return Err(io(format!("reading {}", path.display()))(e)),
        };
        serde_json::from_slice(&bytes).map_err(|_| KeyError::Corrupt(path))
    }

    /// Every wallet in the directory, sorted by name (an absent directory has none).
    pub fn list(&self) -> Result<Vec<WalletInfo>, KeyError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(format!("reading {}", self.dir.display()))(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io(format!("reading {}", self.dir.display())))?;
            let file = entry.file_name();
            let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".meta.json")) else {
                continue;
            };
            if Self::check_name(name).is_ok() {
                out.push(self.info(name)?);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Decrypts the wallet. A wrong passphrase is [`KeyError::WrongPassphrase`].
    pub fn unlock(&self, name: &str, pass: &Passphrase) -> Result<Unlocked, KeyError> {
        let info = self.info(name)?;
        let path = self.key_path(name);
        let secret = read_keystore_file(&path, pass).map_err(|e| match e {
            KeyError::WrongPassphrase(_) => KeyError::WrongPassphrase(name.to_owned()),
            other => other,
        })?;
        let unlocked = match info.kind {
            WalletKind::Mnemonic => {
                let phrase = std::str::from_utf8(&secret).map_err(|_| KeyError::Corrupt(path.clone()))?;
                Unlocked::Mnemonic(Mnemonic::parse(phrase).map_err(|_| KeyError::Corrupt(path.clone()))?)
            }
            WalletKind::PrivateKey => {
                if secret.len() != 32 {
                    return Err(KeyError::Corrupt(path));
                }
                let b = B256::from_slice(&secret);
                Unlocked::PrivateKey(Box::new(
                    PrivateKeySigner::from_bytes(&b).map_err(|_| KeyError::Corrupt(path.clone()))?,
                ))
            }
        };
        if unlocked.signer(0)?.address() != info.address {
            return Err(KeyError::Corrupt(path));
        }
        Ok(unlocked)
    }
}

/// Writes `secret` encrypted with `pass` to `path` as a Web3 Secret Storage v3 file (scrypt + AES-128-CTR), mode
/// 0600. Refuses to overwrite; creates the parent directory.
pub fn write_keystore_file(path: &Path, secret: &[u8], pass: &Passphrase) -> Result<(), KeyError> {
    if path.exists() {
        return Err(KeyError::Io {
            context: format!("writing {}", path.display()),
            source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        });
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| KeyError::Io {
            context: format!("writing {}", path.display()),
            source: std::io::Error::other("the keystore path has no file name"),
        })?;
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    eth_keystore::encrypt_key(dir, &mut rand::rngs::OsRng, secret, pass.expose(), Some(name)).map_err(
        |e| KeyError::Io {
            context: format!("writing the keystore {}", path.display()),
            source: std::io::Error::other(match e {
                eth_keystore::KeystoreError::StdIo(m) => m,
                _ => "encryption failed".into(),
            }),
        },
    )?;
    restrict(path, 0o600);
    Ok(())
}

/// Decrypts a file written by [`write_keystore_file`] (or any Web3 Secret Storage v3 file). A wrong passphrase is
/// [`KeyError::WrongPassphrase`] (with the file's name).
pub fn read_keystore_file(path: &Path, pass: &Passphrase) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    if !path.exists() {
        return Err(KeyError::Io {
            context: format!("reading {}", path.display()),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    eth_keystore::decrypt_key(path, pass.expose())
        .map(Zeroizing::new)
        .map_err(|e| match e {
            eth_keystore::KeystoreError::MacMismatch => KeyError::WrongPassphrase(path.display().to_string()),
            _ => KeyError::Corrupt(path.to_owned()),
        })
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    // Best effort: a filesystem without modes still gets the encrypted file.
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) {}

#[cfg(test)]
mod tests {
    use super::*;

    const PHRASE: &str = "test test test test test test test test test test test junk";

    #[test]
    fn derives_the_well_known_accounts() {
        let m = Mnemonic::parse(PHRASE).expect("mnemonic");
        assert_eq!(
            format!("{:#x}", m.address(0).expect("0")),
            "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
        );
        assert_eq!(
            format!("{:#x}", m.address(1).expect("1")),
            "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
        );
        let upper = Mnemonic::parse(&format!("  {}  ", PHRASE.to_uppercase())).expect("normalised");
        assert_eq!(upper.expose(), PHRASE);
    }

    #[test]
    fn secrets_are_redacted() {
        let m = Mnemonic::parse(PHRASE).expect("mnemonic");
        let p = Passphrase::new("hunter2hunter2").expect("pass");
        assert!(!format!("{m:?}").contains("junk"));
        assert!(!format!("{p:?}").contains("hunter2"));
        let u = Unlocked::Mnemonic(m);
        assert!(!format!("{u:?}").contains("junk"));
        let e = Mnemonic::parse("secretword test test").expect_err("bad");
        assert!(!format!("{e} {e:?}").contains("secretword"));
        let e = parse_private_key("0xabcdefzz").expect_err("bad");
        assert!(!format!("{e} {e:?}").contains("abcdef"));
    }

    #[test]
    fn generated_mnemonics_parse() {
        for words in [12, 24] {
            let m = Mnemonic::generate(words).expect("generate");
            assert_eq!(m.expose().split(' ').count(), words);
            Mnemonic::parse(m.expose()).expect("parses");
        }
    }

    #[test]
    fn keystore_round_trip_and_wrong_passphrase() {
        let dir = tempfile::tempdir().expect("tmp");
        let ks = Keystore::new(dir.path().join("wallets"));
        let pass = Passphrase::new("correct horse battery").expect("pass");
        let m = Mnemonic::parse(PHRASE).expect("mnemonic");
        let info = ks.store_mnemonic("alice", &m, &pass).expect("store");
        assert_eq!(info.address, m.address(0).expect("addr"));
        let u = ks.unlock("alice", &pass).expect("unlock");
        assert_eq!(u.signer(3).expect("3").address(), m.address(3).expect("3"));
        let wrong = Passphrase::new("wrong").expect("pass");
        assert!(matches!(
            ks.unlock("alice", &wrong),
            Err(KeyError::WrongPassphrase(_))
        ));
        assert!(matches!(
            ks.store_mnemonic("alice", &m, &pass),
            Err(KeyError::AlreadyExists { .. })
        ));
        let key = PrivateKeySigner::random();
        ks.store_private_key("bob", &key, &pass).expect("store key");
        let u = ks.unlock("bob", &pass).expect("unlock");
        assert_eq!(u.signer(0).expect("0").address(), key.address());
        assert!(u.signer(1).is_err());
        let names: Vec<_> = ks.list().expect("list").into_iter().map(|w| w.name).collect();
        assert_eq!(names, ["alice", "bob"]);
        assert!(matches!(ks.info("carol"), Err(KeyError::NotFound { .. })));
        assert!(matches!(ks.info("../etc"), Err(KeyError::InvalidName)));
        let raw = std::fs::read_to_string(ks.dir().join("alice.json")).expect("file");
        assert!(raw.contains("scrypt") && !raw.contains("junk"));
    }
}
