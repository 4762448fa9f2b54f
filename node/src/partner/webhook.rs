//! Outbound partner webhooks: signed by the node's Ed25519 key with the same RFC 9421 scheme partners use,
//! delivered from the durable queue (`partner_webhook_deliveries`) with exponential back-off, and never dropped
//! silently: after `partner_webhook_max_attempts` a delivery is parked as `failed`, counted in `/metrics`
//! (`remesa_partner_webhook_deliveries_total{outcome="parked"}`, gauge `remesa_partner_webhook_failed`) and
//! listed by the admin endpoint, from where the operator can re-queue it.

use std::path::Path;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use rand::Rng as _;
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

use super::config::PartnerConfig;
use super::httpsig::Ed25519Signer;
use super::store::{AttemptOutcome, ClaimedDelivery, DeliveryAttempt, PartnerDb, StoreError, now_ms};

/// File in the data directory holding the node's webhook signing seed (hex), mode 0600.
pub const NODE_KEY_FILE: &str = "partner_webhook_ed25519.seed";
/// Deliveries one worker sends at once.
pub const DELIVERY_BATCH_MAX: i64 = 64;
/// Most bytes of a partner's response body kept for the operator (the rest is discarded unread).
const RESPONSE_SNIPPET_BYTES: usize = 200;

/// The keyid the node signs webhooks under: `remesa-node-` + the first 8 bytes of SHA-256(public key), hex.
pub fn node_keyid(public_key: &ed25519_dalek::VerifyingKey) -> String {
    let h = Sha256::digest(public_key.as_bytes());
    format!("remesa-node-{}", hex::encode(&h[..8]))
}

#[derive(Debug, thiserror::Error)]
pub enum NodeKeyError {
    #[error("node webhook key {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("node webhook key {path} is not a 64-character hex seed")]
    Invalid { path: String },
}

/// Loads the node's webhook signing key from `<data_dir>/partner_webhook_ed25519.seed`, creating it (random,
/// mode 0600) on first start.
pub fn load_or_create_node_key(data_dir: &Path) -> Result<Ed25519Signer, NodeKeyError> {
    let path = data_dir.join(NODE_KEY_FILE);
    let shown = path.display().to_string();
    let io = |source| NodeKeyError::Io {
        path: shown.clone(),
        source,
    };
    if !path.exists() {
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let seed = zeroize::Zeroizing::new(hex::encode(key.to_bytes()));
        write_secret_file(&path, seed.as_bytes()).map_err(io)?;
    }
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(&path).map_err(io)?);
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), seed.as_mut())
        .map_err(|_| NodeKeyError::Invalid { path: shown.clone() })?;
    let key = SigningKey::from_bytes(&seed);
    let keyid = node_keyid(&key.verifying_key());
    Ok(Ed25519Signer::new(keyid, key))
}

fn write_secret_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Delay before attempt `attempts + 1` after `attempts` failures: `base * 2^(attempts-1)`, capped, with up to
/// 10 % random jitter added (so many failing deliveries do not retry in lock-step).
pub fn backoff_ms(attempts: i64, base_ms: u64, max_ms: u64) -> u64 {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 40)).unwrap_or(40);
    let raw = base_ms
        .saturating_mul(1u64.checked_shl(exp).unwrap_or(u64::MAX))
        .min(max_ms);
    let jitter = if raw >= 10 {
        rand::thread_rng().gen_range(0..=raw / 10)
    } else {
        0
    };
    raw.saturating_add(jitter).min(max_ms.max(1))
}

/// Sends queued webhooks. Several workers (in several processes) may run on one database; each claims its
/// deliveries with a time-limited claim, so a crashed worker's deliveries are picked up again.
#[derive(Debug, Clone)]
pub struct WebhookWorker {
    db: PartnerDb,
    signer: Ed25519Signer,
    http: reqwest::Client,
    cfg: PartnerConfig,
    worker_id: String,
}

impl WebhookWorker {
    pub fn new(db: PartnerDb, signer: Ed25519Signer, cfg: PartnerConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.partner_webhook_timeout_ms.max(1)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("remesa-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            db,
            signer,
            http,
            cfg,
            worker_id: format!("webhooks@{}", uuid::Uuid::new_v4()),
        })
    }

    /// Claims as `worker_id` (the node's `Instance::worker_id("webhooks")`, so a restart takes them over at once).
    pub fn with_worker_id(mut self, worker_id: String) -> Self {
        self.worker_id = worker_id;
        self
    }

    pub fn signer(&self) -> &Ed25519Signer {
        &self.signer
    }

    /// Runs until `cancel` fires.
    pub async fn run(self, cancel: CancellationToken) {
        let poll = Duration::from_millis(self.cfg.partner_webhook_poll_interval_ms.max(10));
        tracing::info!(target: "partner::webhooks", keyid = self.signer.keyid(), "webhook worker started");
        loop {
            let sent = match self.tick().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(target: "partner::webhooks", error = %e, "webhook worker tick failed");
                    0
                }
            };
            if sent > 0 {
                continue;
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(poll) => {}
            }
        }
        tracing::info!(target: "partner::webhooks", "webhook worker stopped");
    }

    /// Claims due deliveries and sends them concurrently. Returns how many were attempted.
    pub async fn tick(&self) -> Result<usize, StoreError> {
        let claim_ms =
            i64::try_from(self.cfg.partner_webhook_timeout_ms.saturating_mul(3)).unwrap_or(i64::MAX / 4);
        let batch = self
            .db
            .claim_deliveries(&self.worker_id, DELIVERY_BATCH_MAX, claim_ms)
            .await?;
        let n = batch.len();
        let attempts = futures::future::join_all(batch.into_iter().map(|d| self.deliver(d))).await;
        self.db.record_attempts(&self.worker_id, &attempts).await?;
        let parked = self.db.count_deliveries("failed").await?;
        metrics::gauge!("remesa_partner_webhook_failed").set(parked as f64);
        Ok(n)
    }

    /// One attempt at a claimed delivery; its outcome is recorded with the rest of the round's.
    async fn deliver(&self, d: ClaimedDelivery) -> DeliveryAttempt {
        let outcome = self.send(&d).await;
        let attempt = d.attempts + 1;
        let outcome = match outcome {
            Ok(code) => {
                metrics::counter!("remesa_partner_webhook_deliveries_total", "outcome" => "delivered")
                    .increment(1);
                tracing::debug!(target: "partner::webhooks", delivery = %d.id, event = %d.event_type, attempt, "delivered");
                AttemptOutcome::Delivered { status_code: code }
            }
            Err((code, error)) => {
                let park = attempt >= d.max_attempts;
                let delay = backoff_ms(
                    attempt,
                    self.cfg.partner_webhook_backoff_base_ms,
                    self.cfg.partner_webhook_backoff_max_ms,
                );
                let next = now_ms().saturating_add(i64::try_from(delay).unwrap_or(i64::MAX / 4));
                if park {
                    metrics::counter!("remesa_partner_webhook_deliveries_total", "outcome" => "parked")
                        .increment(1);
                    tracing::error!(target: "partner::webhooks", delivery = %d.id, partner = %d.partner_id,
                        event = %d.event_type, attempts = attempt, error = %error,
                        "webhook delivery parked as failed after its last attempt; see GET /v1/admin/partner/webhooks?status=failed");
                } else {
                    metrics::counter!("remesa_partner_webhook_deliveries_total", "outcome" => "retry")
                        .increment(1);
                    tracing::warn!(target: "partner::webhooks", delivery = %d.id, partner = %d.partner_id,
                        event = %d.event_type, attempt, retry_in_ms = delay, error = %error, "webhook delivery failed");
                }
                AttemptOutcome::Failed {
                    status_code: code,
                    error,
                    park,
                    next_attempt_at_unix_ms: next,
                }
            }
        };
        DeliveryAttempt { id: d.id, outcome }
    }

    /// One HTTP attempt. `Ok(status)` for 2xx; otherwise the status (if any) and why.
    async fn send(&self, d: &ClaimedDelivery) -> Result<u16, (Option<u16>, String)> {
        let mut req = self
            .http
            .post(&d.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("remesa-event-id", &d.event_id)
            .header("remesa-event-type", &d.event_type)
            .body(d.payload.clone())
            .build()
            .map_err(|e| (None, format!("building the request: {e}")))?;
        self.signer
            .sign_reqwest(&mut req)
            .map_err(|e| (None, format!("signing: {e}")))?;
        let resp = self
            .http
            .execute(req)
            .await
            .map_err(|e| (None, describe_reqwest_error(&e)))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(status.as_u16());
        }
        let snippet = read_snippet(resp).await;
        Err((Some(status.as_u16()), format!("HTTP {status}: {snippet}")))
    }
}

/// What a webhook receiver (a partner, or a test) does with an incoming webhook: checks the node's signature
/// (`@method`, `@target-uri`, `content-digest`, age) with the node's published public key. `target_uri` is the
/// absolute URL the node posted to (the registered webhook URL). Replay protection is the receiver's: dedupe on
/// the `Remesa-Event-Id` header / payload `id`.
pub fn verify_webhook(
    method: &http::Method,
    target_uri: &str,
    headers: &http::HeaderMap,
    body: &[u8],
    node_key: &ed25519_dalek::VerifyingKey,
    max_age_s: u64,
) -> Result<super::httpsig::ParsedSignature, super::httpsig::SigError> {
    use super::httpsig::{Component, MessageParts, ParsedSignature, VerifyPolicy, now_unix_s};
    let parsed = ParsedSignature::from_headers(headers, None)?;
    let mut policy = VerifyPolicy::partner_api(max_age_s);
    policy
        .required
        .push(Component::Field(super::httpsig::CONTENT_DIGEST.to_owned()));
    parsed.check_params(&policy, now_unix_s())?;
    parsed.verify(
        &MessageParts {
            method,
            target_uri,
            headers,
        },
        body,
        node_key,
    )?;
    Ok(parsed)
}

fn describe_reqwest_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        // Without the URL: it may carry a partner's secret path or token.
        e.without_url_ref().to_string()
    }
}

trait WithoutUrlRef {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrlRef for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut s = self.to_string();
        if let Some(u) = self.url() {
            s = s.replace(u.as_str(), "<webhook url>");
        }
        s
    }
}

async fn read_snippet(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < RESPONSE_SNIPPET_BYTES {
        match resp.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c),
            _ => break,
        }
    }
    buf.truncate(RESPONSE_SNIPPET_BYTES);
    String::from_utf8_lossy(&buf)
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        for (attempts, lo) in [(1, 1_000), (2, 2_000), (3, 4_000), (4, 8_000)] {
            let d = backoff_ms(attempts, 1_000, 60_000);
            assert!(d >= lo && d <= lo + lo / 10, "attempt {attempts}: {d}");
        }
        assert_eq!(backoff_ms(50, 1_000, 60_000), 60_000);
        assert!(backoff_ms(0, 1_000, 60_000) >= 1_000);
        assert_eq!(backoff_ms(i64::MAX, u64::MAX, 5), 5);
    }

    #[test]
    fn node_key_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_node_key(dir.path()).unwrap();
        let b = load_or_create_node_key(dir.path()).unwrap();
        assert_eq!(a.verifying_key(), b.verifying_key());
        assert!(a.keyid().starts_with("remesa-node-"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(NODE_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join(NODE_KEY_FILE), "nope").unwrap();
        assert!(matches!(
            load_or_create_node_key(dir.path()),
            Err(NodeKeyError::Invalid { .. })
        ));
    }
}
