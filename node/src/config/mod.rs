//! Node configuration: an optional TOML file (`--config`), then `REMESA_*` environment variables (flat keys:
//! `REMESA_HTTP_ADDR`, `REMESA_DATABASE_URL`, …; the chain workers' tuning also as `REMESA_CHAIN__<FIELD>`).
//! Secrets are [`SecretString`]s: they never appear in `Debug` output or logs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub mod chain;
pub mod chat;
pub mod compliance;
pub mod console;
pub mod partner;

pub use chain::ChainConfig;
pub use chat::ChatConfig;
pub use compliance::{KycConfig, LimitRule, SanctionsConfig, TravelRuleConfig};
pub use console::ConsoleConfig;
pub use partner::PartnerConfig;

/// Everything `remesa serve` needs. Units are in the names. `Debug` shows no secret (the database URL's password
/// is masked).
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Where the HTTP API listens (`REMESA_HTTP_ADDR`, default `127.0.0.1:8080`; port 0 picks a free port).
    pub http_addr: SocketAddr,
    /// This process's name among the processes sharing the database (`REMESA_NODE_NAME`; default
    /// `<hostname>:<port>`). Two processes running at once must not share it; a process restarted under the same
    /// name takes over the claims its previous run left behind at once (see `store::instances`).
    pub node_name: Option<String>,
    /// Injected faults for crash tests (`REMESA_FAULTS`, see `faults`); never set in production.
    pub faults: Option<String>,
    /// Holds the SQLite file, the node keystore and devnet state (`REMESA_DATA_DIR`, default `./.remesa`).
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…` (`REMESA_DATABASE_URL`); default: `sqlite://<data_dir>/remesa.sqlite`.
    /// It may carry a password: `Debug` masks it.
    pub database_url: Option<String>,
    /// Most connections in the database pool.
    pub database_connections_max: u32,
    /// JSON-RPC endpoint of the chain (`REMESA_RPC_URL`); without it the chain workers are not started.
    pub rpc_url: Option<String>,
    /// Expected chain id (`REMESA_CHAIN_ID`); checked against the RPC endpoint and the deployment file.
    pub chain_id: Option<u64>,
    /// Deployment JSON (`REMESA_DEPLOYMENT`), default `<data_dir>/deployment.json` when it exists.
    pub deployment: Option<PathBuf>,
    /// Expected EIP-712 name of the token (`REMESA_TOKEN_NAME`, e.g. "USD Coin"); the node refuses to start on a
    /// token reporting another. Unset: whatever the token reports.
    pub token_name: Option<String>,
    /// Expected EIP-712 version of the token (`REMESA_TOKEN_VERSION`, "2" for USDC).
    pub token_version: Option<String>,
    /// Bearer token of the admin endpoints (`REMESA_OPERATOR_TOKEN`). Without it the admin endpoints answer 503.
    pub operator_token: Option<SecretString>,
    /// Private key (hex) of the escrow owner, when this node may register partners on chain (devnet).
    pub escrow_owner_key: Option<SecretString>,
    /// Passphrase of the node keystore (`REMESA_KEYSTORE_PASSPHRASE`) …
    pub keystore_passphrase: Option<SecretString>,
    /// … or a file holding it (`REMESA_KEYSTORE_PASSPHRASE_FILE`).
    pub keystore_passphrase_file: Option<PathBuf>,
    /// Blocks on top of a block before the indexer applies its events (`REMESA_CONFIRMATIONS`).
    pub confirmations: Option<u64>,
    /// Largest deposit/release/refund batch (`REMESA_BATCH_SIZE_MAX`).
    pub batch_size_max: Option<u32>,
    /// A partial batch is sent once its oldest job waited this long (`REMESA_BATCH_DELAY_MS_MAX`).
    pub batch_delay_ms_max: Option<u64>,
    /// Longest validity of a quote; a client asking for more gets this (`REMESA_QUOTE_TTL_S_MAX`).
    pub quote_ttl_s_max: u64,
    /// Validity of a quote when the client does not ask.
    pub quote_ttl_s_default: u64,
    /// On-chain expiry of a remittance after its creation: refundable from then on (`REMESA_REMITTANCE_EXPIRY_S`).
    pub remittance_expiry_s: u64,
    /// Payouts can be completed only until this long before expiry (`REMESA_PAYOUT_CUTOFF_S`): the release must
    /// be mined before the escrow lets the sender refund. Less than `remittance_expiry_s`.
    pub payout_cutoff_s: u64,
    /// A sender may cancel a locked remittance for a full refund within this long of creating it, until the partner
    /// paid (`REMESA_CANCEL_WINDOW_S`, default 1800: Regulation E's 30 minutes).
    pub cancel_window_s: u64,
    /// Largest accepted request body (`REMESA_HTTP_BODY_BYTES_MAX`).
    pub http_body_bytes_max: usize,
    /// Handlers taking longer answer 503 (`REMESA_HTTP_TIMEOUT_MS`).
    pub http_timeout_ms: u64,
    /// Most requests handled at once; past it a request is answered 503 with `Retry-After` at once instead of
    /// queueing (`REMESA_HTTP_IN_FLIGHT_MAX`), so an overload cannot grow latency and memory without bound.
    pub http_in_flight_max: usize,
    /// Largest page of any list endpoint.
    pub page_limit_max: u32,
    /// Decimals of the token when no chain is configured (with a chain, `decimals()` of the token wins).
    pub token_decimals_default: u8,
    /// Start the chain workers (outbox writer, indexer, refund keeper) in this process (`REMESA_CHAIN_WORKERS`).
    pub chain_workers: bool,
    /// Tuning of the chain workers (`REMESA_CHAIN__<FIELD>` or a `[chain]` table in the file).
    pub chain: ChainConfig,
    /// Sending limits per KYC tier and corridor (`[[limits]]` tables, or `REMESA_LIMITS`); none: not limited.
    pub limits: Vec<LimitRule>,
    /// Sanctions lists and screening (`[sanctions]`, or `REMESA_SANCTIONS__<FIELD>`).
    pub sanctions: SanctionsConfig,
    /// KYC tiers (`[kyc]`, or `REMESA_KYC__TIER1_FIELDS`).
    pub kyc: KycConfig,
    /// The travel rule (`[travel_rule]`, or `REMESA_TRAVEL_RULE__<FIELD>`).
    pub travel_rule: TravelRuleConfig,
    /// The web consoles (`[console]`, or `REMESA_CONSOLE__<FIELD>`).
    pub console: ConsoleConfig,
    #[serde(flatten)]
    pub chat: ChatConfig,
    #[serde(flatten)]
    pub partner: PartnerConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            node_name: None,
            faults: None,
            data_dir: PathBuf::from(".remesa"),
            database_url: None,
            database_connections_max: 10,
            rpc_url: None,
            chain_id: None,
            deployment: None,
            token_name: None,
            token_version: None,
            operator_token: None,
            escrow_owner_key: None,
            keystore_passphrase: None,
            keystore_passphrase_file: None,
            confirmations: None,
            batch_size_max: None,
            batch_delay_ms_max: None,
            quote_ttl_s_max: 300,
            quote_ttl_s_default: 300,
            remittance_expiry_s: 24 * 3600,
            payout_cutoff_s: 600,
            cancel_window_s: 1800,
            http_body_bytes_max: 64 * 1024,
            http_timeout_ms: 15_000,
            http_in_flight_max: 1_024,
            page_limit_max: 200,
            token_decimals_default: 6,
            chain_workers: true,
            chain: ChainConfig::default(),
            limits: Vec::new(),
            sanctions: SanctionsConfig::default(),
            kyc: KycConfig::default(),
            travel_rule: TravelRuleConfig::default(),
            console: ConsoleConfig::default(),
            chat: Default::default(),
            partner: Default::default(),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("http_addr", &self.http_addr)
            .field("node_name", &self.node_name)
            .field("faults", &self.faults)
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.database_url.as_deref().map(mask_password))
            .field("database_connections_max", &self.database_connections_max)
            .field("rpc_url", &self.rpc_url)
            .field("chain_id", &self.chain_id)
            .field("deployment", &self.deployment)
            .field("token_name", &self.token_name)
            .field("token_version", &self.token_version)
            .field("operator_token", &self.operator_token)
            .field("escrow_owner_key", &self.escrow_owner_key)
            .field("keystore_passphrase", &self.keystore_passphrase)
            .field("keystore_passphrase_file", &self.keystore_passphrase_file)
            .field("quote_ttl_s_max", &self.quote_ttl_s_max)
            .field("quote_ttl_s_default", &self.quote_ttl_s_default)
            .field("remittance_expiry_s", &self.remittance_expiry_s)
            .field("payout_cutoff_s", &self.payout_cutoff_s)
            .field("cancel_window_s", &self.cancel_window_s)
            .field("http_body_bytes_max", &self.http_body_bytes_max)
            .field("http_timeout_ms", &self.http_timeout_ms)
            .field("http_in_flight_max", &self.http_in_flight_max)
            .field("page_limit_max", &self.page_limit_max)
            .field("token_decimals_default", &self.token_decimals_default)
            .field("chain_workers", &self.chain_workers)
            .field("chain", &self.chain)
            .field("limits", &self.limits)
            .field("sanctions", &self.sanctions)
            .field("kyc", &self.kyc)
            .field("travel_rule", &self.travel_rule)
            .field("console", &self.console)
            .field("chat", &self.chat)
            .field("partner", &self.partner)
            .finish_non_exhaustive()
    }
}

/// `scheme://user:password@host/db` → `scheme://user:***@host/db`.
fn mask_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A configuration that cannot be loaded. Never contains secret values.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Figment(String),
    #[error("configuration: {0}")]
    Invalid(String),
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Keys read verbatim from the environment (never parsed as numbers or booleans).
const NODE_NAME_LEN_MAX: usize = 128;

const STRING_KEYS: &[&str] = &[
    "node_name",
    "faults",
    "operator_token",
    "keystore_passphrase",
    "escrow_owner_key",
    "database_url",
    "rpc_url",
    "token_name",
    "token_version",
    "whatsapp_app_secret",
    "whatsapp_verify_token",
    "whatsapp_access_token",
    "whatsapp_phone_number_id",
    "whatsapp_api_base",
    "telegram_secret_token",
    "telegram_bot_token",
    "telegram_api_base",
    "whatsapp_recipient_template",
    "partner_public_base_url",
];

/// The scalar defaults as a figment provider (the nested chain table is merged separately).
#[derive(Serialize)]
struct Defaults {
    http_addr: String,
    data_dir: PathBuf,
}

impl Config {
    /// Loads defaults, then the TOML file (if given), then `REMESA_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Defaults {
            http_addr: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from(".remesa"),
        }));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            fig = fig.merge(Toml::file(path));
        }
        fig = fig.merge(Env::prefixed("REMESA_").split("__").ignore(STRING_KEYS));
        // secrets, ids and URLs are strings even when they look like numbers ("0042" stays "0042")
        for key in STRING_KEYS {
            if let Ok(v) = std::env::var(format!("REMESA_{}", key.to_ascii_uppercase())) {
                fig = fig.merge(Serialized::default(key, v));
            }
        }
        Self::from_figment(fig)
    }

    /// Extracts and checks a configuration from any figment (tests build one in memory).
    pub fn from_figment(fig: Figment) -> Result<Config, ConfigError> {
        let mut config: Config = fig.extract().map_err(|e| ConfigError::Figment(e.to_string()))?;
        config.apply_overrides();
        config.validate()?;
        Ok(config)
    }

    fn apply_overrides(&mut self) {
        if let Some(c) = self.confirmations {
            self.chain.confirmations = c;
        }
        if let Some(b) = self.batch_size_max {
            self.chain.batch_size_max = b;
        }
        if let Some(d) = self.batch_delay_ms_max {
            self.chain.batch_delay_ms_max = d;
        }
    }

    /// Checks limits; the message names the offending key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.quote_ttl_s_max == 0 {
            return bad("quote_ttl_s_max must be at least 1");
        }
        if self.quote_ttl_s_default == 0 {
            return bad("quote_ttl_s_default must be at least 1");
        }
        if self.remittance_expiry_s < 60 {
            return bad("remittance_expiry_s must be at least 60");
        }
        if self.payout_cutoff_s >= self.remittance_expiry_s {
            return bad("payout_cutoff_s must be less than remittance_expiry_s");
        }
        if self.http_in_flight_max == 0 {
            return bad("http_in_flight_max must be at least 1");
        }
        if self.http_body_bytes_max < 1024 {
            return bad("http_body_bytes_max must be at least 1024");
        }
        if self.page_limit_max == 0 {
            return bad("page_limit_max must be at least 1");
        }
        if self.database_connections_max == 0 {
            return bad("database_connections_max must be at least 1");
        }
        if let Some(n) = &self.node_name
            && (n.is_empty() || n.len() > NODE_NAME_LEN_MAX || !n.bytes().all(|b| b.is_ascii_graphic()))
        {
            return bad("node_name must be 1 to 128 visible ASCII characters");
        }
        if let Some(f) = &self.faults {
            crate::faults::Faults::parse(f).map_err(|e| ConfigError::Invalid(format!("faults: {e}")))?;
        }
        self.chain
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("chain: {e}")))?;
        compliance::parse_limits(&self.limits).map_err(ConfigError::Invalid)?;
        self.sanctions.validate().map_err(ConfigError::Invalid)?;
        self.kyc.tier1().map_err(ConfigError::Invalid)?;
        self.kyc.recipient_countries().map_err(ConfigError::Invalid)?;
        self.travel_rule.parse().map_err(ConfigError::Invalid)?;
        self.console.check().map_err(ConfigError::Invalid)?;
        Ok(())
    }

    /// This process's node name: the configured one, or `<hostname>:<port>` of the port it listens on.
    pub fn node_name_for_port(&self, port: u16) -> String {
        if let Some(n) = &self.node_name {
            return n.clone();
        }
        let host = gethostname::gethostname();
        let host: String = host
            .to_string_lossy()
            .chars()
            .filter(char::is_ascii_graphic)
            .take(NODE_NAME_LEN_MAX - 6)
            .collect();
        let host = if host.is_empty() {
            "localhost".to_owned()
        } else {
            host
        };
        format!("{host}:{port}")
    }

    /// The database URL: the configured one, or a SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("remesa.sqlite").display()
            ),
        }
    }

    /// The deployment file: the configured one, or `<data_dir>/deployment.json` if it exists.
    pub fn deployment_path(&self) -> Option<PathBuf> {
        if let Some(p) = &self.deployment {
            return Some(p.clone());
        }
        let p = self.data_dir.join("deployment.json");
        p.exists().then_some(p)
    }

    /// The keystore passphrase from the variable or the file (trailing newline removed).
    pub fn keystore_passphrase(&self) -> Result<Option<SecretString>, ConfigError> {
        if let Some(p) = &self.keystore_passphrase {
            return Ok(Some(p.clone()));
        }
        let Some(path) = &self.keystore_passphrase_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.clone(),
            source,
        })?;
        let trimmed = text.trim_end_matches(['\r', '\n']).to_owned();
        Ok(Some(SecretString::from(trimmed)))
    }

    /// Whether `token` is the operator token (constant-time comparison).
    pub fn operator_token_matches(&self, token: &str) -> bool {
        use subtle::ConstantTimeEq;
        match &self.operator_token {
            Some(expected) => {
                let e = expected.expose_secret().as_bytes();
                e.len() == token.len() && bool::from(e.ct_eq(token.as_bytes()))
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Serialized as S;

    #[test]
    fn defaults_are_valid() {
        let c = Config::from_figment(Figment::new()).expect("defaults");
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:8080");
        assert!(c.database_url().starts_with("sqlite://"));
        assert_eq!(c.quote_ttl_s_max, 300);
    }

    #[test]
    fn env_style_keys_override_and_secrets_stay_hidden() {
        let fig = Figment::new()
            .merge(S::default("operator_token", "hunter2-very-secret"))
            .merge(S::default(
                "database_url",
                "postgres://remesa:hunter2-db@localhost/remesa",
            ))
            .merge(S::default("confirmations", 3))
            .merge(S::default("http_addr", "0.0.0.0:9000"));
        let c = Config::from_figment(fig).expect("config");
        assert_eq!(c.chain.confirmations, 3);
        assert_eq!(c.http_addr.port(), 9000);
        assert!(c.operator_token_matches("hunter2-very-secret"));
        assert!(!c.operator_token_matches("hunter2"));
        let printed = format!("{c:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's signature
    fn numeric_looking_secrets_from_the_environment_stay_strings() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("REMESA_OPERATOR_TOKEN", "12345678");
            jail.set_env("REMESA_KEYSTORE_PASSPHRASE", "0042");
            jail.set_env("REMESA_CHAIN__LEASE_MS", "3000");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert!(c.operator_token_matches("12345678"));
            assert_eq!(
                c.keystore_passphrase()
                    .ok()
                    .flatten()
                    .map(|p| p.expose_secret().to_owned()),
                Some("0042".into())
            );
            assert_eq!(c.chain.lease_ms, 3000);
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's signature
    fn limits_from_the_file_or_the_environment_and_bad_ones_stop_the_start() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "remesa.toml",
                "[[limits]]\ntier = 0\nper_tx_usd = \"500\"\nper_day_usd = \"1000\"\n\n[[limits]]\ntier = 0\ncountry = \"MX\"\nper_tx_usd = \"300\"\n",
            )?;
            let c = Config::load(Some(Path::new("remesa.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.limits.len(), 2);
            assert_eq!(c.limits[0].country, "*");
            jail.set_env(
                "REMESA_LIMITS",
                r#"[{tier = 1, country = "GT", per_30d_usd = "9000"}]"#,
            );
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.limits[0].tier, 1);
            assert_eq!(c.limits[0].per_30d_usd.as_deref(), Some("9000"));
            jail.set_env("REMESA_LIMITS", r#"[{tier = 7, per_tx_usd = "1"}]"#);
            let e = Config::load(None).expect_err("tier 7");
            assert!(e.to_string().contains("unknown tier 7"), "{e}");
            jail.set_env("REMESA_LIMITS", r#"[{tier = 0, country = "XYZ"}]"#);
            let e = Config::load(None).expect_err("corridor");
            assert!(e.to_string().contains("unknown corridor"), "{e}");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's signature
    fn file_then_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "remesa.toml",
                "http_addr = \"127.0.0.1:9999\"\nquote_ttl_s_max = 120\nwhatsapp_phone_number_id = \"1234\"\n\n[chain]\nconfirmations = 4\nbatch_size_max = 8\n",
            )?;
            jail.set_env("REMESA_QUOTE_TTL_S_MAX", "60");
            let c = Config::load(Some(Path::new("remesa.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.http_addr.port(), 9999);
            assert_eq!(c.quote_ttl_s_max, 60, "the environment wins over the file");
            assert_eq!(c.chain.confirmations, 4);
            assert_eq!(c.chain.batch_size_max, 8);
            assert_eq!(c.chat.whatsapp_phone_number_id.as_deref(), Some("1234"));
            assert!(Config::load(Some(Path::new("missing.toml"))).is_err());
            jail.create_file("bad.toml", "[chain]\nno_such_key = 1\n")?;
            assert!(
                Config::load(Some(Path::new("bad.toml"))).is_err(),
                "unknown chain keys are refused"
            );
            Ok(())
        });
    }

    #[test]
    fn bad_limits_are_refused() {
        let fig = Figment::new().merge(S::default("quote_ttl_s_max", 0));
        assert!(Config::from_figment(fig).is_err());
    }
}
