//! Partner API configuration. Flattened into the node's `Config` (`REMESA_<FIELD>`).

use serde::Deserialize;

/// Settings of the partner API and of outbound partner webhooks.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PartnerConfig {
    /// Largest accepted age of a signed request (`created` parameter), in seconds.
    pub partner_signature_max_age_s: u64,
    /// Largest accepted distance of `created` into the future (clock skew), in seconds.
    pub partner_signature_future_skew_s: u64,
    /// Most webhook delivery attempts before a delivery is parked as failed (visible to the operator).
    pub partner_webhook_max_attempts: u32,
    /// First retry delay of a failed webhook delivery; doubles per attempt up to `partner_webhook_backoff_max_ms`.
    pub partner_webhook_backoff_base_ms: u64,
    /// Longest delay between two webhook delivery attempts.
    pub partner_webhook_backoff_max_ms: u64,
    /// Time limit of one webhook HTTP request.
    pub partner_webhook_timeout_ms: u64,
    /// How often the webhook worker looks for due deliveries.
    pub partner_webhook_poll_interval_ms: u64,
    /// The node's public base URL as partners address it (e.g. `https://node.example.com`), used to rebuild the
    /// signed `@target-uri` behind a reverse proxy. When unset, `http://` + the request's `Host` header.
    pub partner_public_base_url: Option<String>,
    /// Most accepted request signatures remembered for replay protection (expired ones are pruned); when full,
    /// new requests are refused with 503 rather than forgetting signatures that could still be replayed.
    pub partner_replay_cache_max_entries: u64,
}

impl Default for PartnerConfig {
    fn default() -> Self {
        Self {
            partner_signature_max_age_s: 300,
            partner_signature_future_skew_s: 30,
            partner_webhook_max_attempts: 20,
            partner_webhook_backoff_base_ms: 1_000,
            partner_webhook_backoff_max_ms: 3_600_000,
            partner_webhook_timeout_ms: 10_000,
            partner_webhook_poll_interval_ms: 500,
            partner_public_base_url: None,
            partner_replay_cache_max_entries: 1_000_000,
        }
    }
}
