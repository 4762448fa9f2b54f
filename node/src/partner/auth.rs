//! Server side of partner authentication: an axum middleware that verifies the RFC 9421 signature of every
//! partner request (keyid = partner id), checks the body against `Content-Digest`, refuses old, future-dated and
//! replayed requests (replay cache in the database, shared by every node process), and hands the handler an
//! [`AuthenticatedPartner`] extension. Refusals are `401 application/problem+json` with a `reason`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ed25519_dalek::VerifyingKey;
use futures::future::BoxFuture;

use super::config::PartnerConfig;
use super::httpsig::{MessageParts, ParsedSignature, SigError, VerifyPolicy, now_unix_s};
use super::store::{PartnerDb, ReplayOutcome};
use crate::http::problem::Problem;

/// What the key lookup returns for a keyid.
#[derive(Debug, Clone)]
pub struct PartnerKey {
    pub partner_id: String,
    pub key: VerifyingKey,
}

/// Finds the active key of a partner by keyid; `Ok(None)` when unknown or disabled.
pub type KeyLookup = Arc<
    dyn Fn(String) -> BoxFuture<'static, Result<Option<PartnerKey>, crate::store::StoreError>> + Send + Sync,
>;

/// The partner a request was signed by; put into the request's extensions by [`verify_partner_signature`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedPartner {
    pub partner_id: String,
    pub keyid: String,
}

/// State of the signature middleware.
#[derive(Clone)]
pub struct PartnerAuth {
    pub db: PartnerDb,
    pub cfg: PartnerConfig,
    pub keys: KeyLookup,
    /// Largest request body read for verification.
    pub body_limit_bytes: usize,
}

impl std::fmt::Debug for PartnerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerAuth")
            .field("cfg", &self.cfg)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .finish()
    }
}

/// Problem type URI of every signature refusal.
/// The problem type (slug) of a refused signature.
pub const PROBLEM_SIGNATURE: &str = "partner-signature";

/// What a client should sign, advertised on 401 answers (RFC 9421 §5.1).
pub const ACCEPT_SIGNATURE: &str =
    r#"sig1=("@method" "@target-uri" "content-digest");created;keyid;nonce;alg="ed25519""#;

/// A refused partner request.
#[derive(Debug)]
pub enum AuthFailure {
    Signature(SigError),
    /// The replay cache is full of unexpired entries (fail closed).
    Busy,
    /// The replay cache's commit queue is full (or its shared transaction failed): nothing recorded, try again.
    Overloaded,
    Internal(String),
}

impl AuthFailure {
    /// A store error while checking a request: 503 with `Retry-After` when it can pass (the database busy,
    /// restarting, out of reach), 500 otherwise.
    fn from_store(e: crate::store::StoreError) -> Self {
        if e.is_transient() {
            Self::Overloaded
        } else {
            Self::Internal(e.to_string())
        }
    }
}

impl From<SigError> for AuthFailure {
    fn from(e: SigError) -> Self {
        Self::Signature(e)
    }
}

/// A problem+json response with the partner API's `reason` member.
pub(crate) fn problem(status: StatusCode, slug: &str, title: &str, detail: &str, reason: &str) -> Response {
    Problem::new(status, slug, title, Some(detail.to_owned()))
        .with_reason(reason)
        .into_response()
}

impl IntoResponse for AuthFailure {
    fn into_response(self) -> Response {
        match self {
            Self::Signature(e) => {
                let (status, title) = match e {
                    SigError::BodyTooLarge { .. } => {
                        (StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
                    }
                    _ => (StatusCode::UNAUTHORIZED, "Request signature refused"),
                };
                let mut resp = problem(status, PROBLEM_SIGNATURE, title, &e.to_string(), e.code());
                resp.headers_mut()
                    .insert("accept-signature", HeaderValue::from_static(ACCEPT_SIGNATURE));
                resp
            }
            Self::Busy => problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Try again shortly",
                "the node cannot take more signed requests right now",
                "replay_cache_full",
            ),
            Self::Overloaded => problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Try again shortly",
                "the node is busy; the request was not processed",
                "busy",
            ),
            Self::Internal(e) => {
                tracing::error!(target: "partner::auth", error = %e, "partner authentication failed internally");
                problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                    "the request could not be checked; try again",
                    "internal",
                )
            }
        }
    }
}

/// The absolute target URI of a request as the partner addressed it: the configured public base URL (behind a
/// proxy) or `http://` + `Host`, then the path and query.
pub fn target_uri(cfg: &PartnerConfig, parts: &http::request::Parts) -> String {
    let pq = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    if let Some(base) = &cfg.partner_public_base_url {
        return format!("{}{pq}", base.trim_end_matches('/'));
    }
    if parts.uri.scheme().is_some() && parts.uri.authority().is_some() {
        return parts.uri.to_string();
    }
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}{pq}")
}

impl PartnerAuth {
    /// Verifies a request given as parts and its whole body.
    pub async fn authenticate(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
    ) -> Result<AuthenticatedPartner, AuthFailure> {
        let parsed = ParsedSignature::from_headers(&parts.headers, None)?;
        let mut policy = VerifyPolicy::partner_api(self.cfg.partner_signature_max_age_s);
        policy.future_skew_s = self.cfg.partner_signature_future_skew_s;
        parsed.check_params(&policy, now_unix_s())?;
        let keyid = parsed.keyid().unwrap_or_default().to_owned();
        let Some(pk) = (self.keys)(keyid.clone())
            .await
            .map_err(AuthFailure::from_store)?
        else {
            return Err(SigError::UnknownKey(keyid).into());
        };
        let target = target_uri(&self.cfg, parts);
        let msg = MessageParts {
            method: &parts.method,
            target_uri: &target,
            headers: &parts.headers,
        };
        parsed.verify(&msg, body, &pk.key)?;
        let window_end_ms = i64::try_from(parsed.replay_window_end_unix_s(&policy).saturating_mul(1000))
            .unwrap_or(i64::MAX)
            // Also cover the future skew: a signature dated ahead stays valid that much longer.
            .saturating_add(i64::try_from(policy.future_skew_s.saturating_mul(1000)).unwrap_or(0));
        match self
            .db
            .record_signature(
                &keyid,
                &parsed.signature,
                window_end_ms,
                self.cfg.partner_replay_cache_max_entries,
            )
            .await
            .map_err(AuthFailure::from_store)?
        {
            ReplayOutcome::Fresh => {}
            ReplayOutcome::Replayed => return Err(SigError::Replay.into()),
            ReplayOutcome::CacheFull => return Err(AuthFailure::Busy),
        }
        Ok(AuthenticatedPartner {
            partner_id: pk.partner_id,
            keyid,
        })
    }
}

/// axum middleware (`axum::middleware::from_fn_with_state(auth, verify_partner_signature)`).
pub async fn verify_partner_signature(State(auth): State<PartnerAuth>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, auth.body_limit_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return AuthFailure::Signature(SigError::BodyTooLarge {
                limit_bytes: auth.body_limit_bytes,
            })
            .into_response();
        }
    };
    match auth.authenticate(&parts, &bytes).await {
        Ok(partner) => {
            tracing::Span::current().record("partner_id", partner.partner_id.as_str());
            parts.extensions.insert(partner);
            next.run(Request::from_parts(parts, Body::from(bytes))).await
        }
        Err(e) => {
            if let AuthFailure::Signature(se) = &e {
                metrics::counter!("remesa_partner_auth_refused_total", "reason" => se.code()).increment(1);
                tracing::info!(target: "partner::auth", reason = se.code(), path = %parts.uri.path(), "partner request refused");
            }
            e.into_response()
        }
    }
}
