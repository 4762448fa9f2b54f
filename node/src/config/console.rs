//! The web consoles' settings (`[console]`, or `REMESA_CONSOLE__<FIELD>`).

use serde::Deserialize;

/// Sessions, cookies and the failure limits of `/partner/` and `/ops/`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ConsoleConfig {
    /// Serve the consoles at all.
    pub enabled: bool,
    /// Mark the session cookie `Secure` (sent over HTTPS only). On by default; `remesa dev` turns it off, since
    /// the devnet is served over plain HTTP on 127.0.0.1.
    pub secure_cookies: bool,
    /// How long a session lasts from sign-in.
    pub session_ttl_s: u64,
    /// Wrong passwords per username within `throttle_window_s` before sign-ins of that username are refused.
    pub login_failures_max: u32,
    /// Wrong or unknown pickup codes per agent within `throttle_window_s` before that agent's look-ups are refused.
    pub code_failures_per_agent_max: u32,
    /// The same for all agents of one partner together.
    pub code_failures_per_partner_max: u32,
    /// The window the failure limits count in.
    pub throttle_window_s: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            secure_cookies: true,
            session_ttl_s: 12 * 3600,
            login_failures_max: 10,
            code_failures_per_agent_max: 5,
            code_failures_per_partner_max: 30,
            throttle_window_s: 900,
        }
    }
}

impl ConsoleConfig {
    /// Checked at start: every limit at least 1.
    pub fn check(&self) -> Result<(), String> {
        if self.session_ttl_s == 0 || self.throttle_window_s == 0 {
            return Err("console: session_ttl_s and throttle_window_s must be at least 1".into());
        }
        if self.login_failures_max == 0
            || self.code_failures_per_agent_max == 0
            || self.code_failures_per_partner_max == 0
        {
            return Err("console: the failure limits must be at least 1".into());
        }
        Ok(())
    }
}
