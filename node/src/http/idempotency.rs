//! `Idempotency-Key` on every POST: the first request with a key runs and its response is stored; the same key
//! with the same method, path and body gets the stored response again (`Idempotent-Replayed: true`); the same key
//! with another request is a 422 problem; a request still running with that key is a 409 problem. Server errors
//! (5xx) are not stored, so the client may retry them with the same key. The records and their crash recovery
//! are [`crate::store::idempotency`]; [`Keyed::run_once`] is the one mechanism: this middleware and the partner
//! API (scope `partner:<id>`, behind its signature check) both run through it.

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::AppState;
use super::problem::Problem;
use crate::domain::IdempotencyKey;
use crate::store::idempotency::{self, Begin, Claim};

pub const HEADER: &str = "idempotency-key";
const RESPONSE_BYTES_MAX: usize = 1 << 20;
/// A handler runs at most `http_timeout_ms` (the timeout layer drops it); an unfinished key older than that plus
/// this margin has nobody working on it.
const STALE_MARGIN_MS: u64 = 5_000;

/// From when an unfinished key is abandoned (see [`store::idempotency`]).
pub fn stale_ms(http_timeout_ms: u64) -> i64 {
    i64::try_from(http_timeout_ms.saturating_add(STALE_MARGIN_MS)).unwrap_or(i64::MAX)
}

/// The request fingerprint stored with a key: SHA-256 over the scope, a zero byte and the body.
pub fn request_hash(scope: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(scope.as_bytes());
    h.update([0]);
    h.update(body);
    hex::encode(h.finalize())
}

/// The problem answered for a key that cannot run now.
pub fn refusal(outcome: &Begin) -> Option<Problem> {
    match outcome {
        Begin::Mismatch => Some(
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency key reused with another request",
                Some("this Idempotency-Key was already used with a different request".to_owned()),
            )
            .with_reason("idempotency_key_reused"),
        ),
        Begin::InProgress => Some(
            Problem::new(
                StatusCode::CONFLICT,
                "idempotency-key-in-use",
                "A request with this Idempotency-Key is in progress",
                Some(
                    "a request with this Idempotency-Key is still being processed; retry it unchanged"
                        .to_owned(),
                ),
            )
            .with_reason("idempotency_key_in_use"),
        ),
        Begin::Run(_) | Begin::Replay { .. } => None,
    }
}

/// The `Idempotency-Key` a route requires, parsed (missing or malformed: 400). An extractor, so it is checked
/// before the body is read.
#[derive(Clone, Debug)]
pub struct RequiredKey(pub IdempotencyKey);

impl<S: Send + Sync> FromRequestParts<S> for RequiredKey {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let raw = parts
            .headers
            .get(HEADER)
            .ok_or_else(|| Problem::bad_request("the Idempotency-Key header is required"))?;
        raw.to_str()
            .ok()
            .map(IdempotencyKey::parse)
            .and_then(Result::ok)
            .map(RequiredKey)
            .ok_or_else(|| Problem::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters"))
    }
}

pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST && req.method() != Method::PUT {
        return next.run(req).await;
    }
    let Some(raw) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let key = match raw.to_str().ok().map(IdempotencyKey::parse) {
        Some(Ok(k)) => k,
        _ => {
            return Problem::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
                .into_response();
        }
    };
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, state.config.http_body_bytes_max).await {
        Ok(b) => b,
        Err(_) => {
            return Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Request body too large",
                None,
            )
            .into_response();
        }
    };
    let scope = format!("{} {}", parts.method, parts.uri.path());
    let hash = request_hash(&scope, &bytes);
    let keyed = Keyed {
        db: &state.db,
        start_id: &state.instance.start_id,
        stale_ms: stale_ms(state.config.http_timeout_ms),
    };
    keyed
        .run_once(&scope, &key, &hash, || {
            next.run(Request::from_parts(parts, Body::from(bytes)))
        })
        .await
}

/// Where the `Idempotency-Key` records are kept and who this process is: what [`Keyed::run_once`] needs.
#[derive(Clone, Copy, Debug)]
pub struct Keyed<'a> {
    pub db: &'a crate::store::Db,
    /// This process's start id: it owns the keys it is working on.
    pub start_id: &'a str,
    /// From when an unfinished key is abandoned ([`stale_ms`]).
    pub stale_ms: i64,
}

impl Keyed<'_> {
    /// The one `Idempotency-Key` mechanism, for the middleware and the partner API alike: the first request with
    /// (`scope`, `key`) runs `work` and its response is stored; the same key with the same `request_hash` gets the
    /// stored response (`Idempotent-Replayed: true`); another request is 422, a request still running 409
    /// ([`refusal`]). A server error (5xx) is not stored, so the client may retry it with the same key; neither
    /// is a response too large to keep (it is answered 500).
    pub async fn run_once<F, Fut>(
        &self,
        scope: &str,
        key: &IdempotencyKey,
        request_hash: &str,
        work: F,
    ) -> Response
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Response>,
    {
        let db = self.db;
        let outcome = async {
            let mut tx = db.begin().await?;
            let begun = idempotency::begin(
                &mut tx,
                scope,
                key.as_str(),
                request_hash,
                self.start_id,
                self.stale_ms,
            )
            .await?;
            tx.commit().await?;
            Ok::<_, crate::store::StoreError>(begun)
        }
        .await;
        let claim = match outcome {
            Ok(Begin::Run(claim)) => claim,
            Ok(Begin::Replay { status, body }) => return replay(status, body),
            Ok(other) => return refusal(&other).unwrap_or_else(Problem::internal).into_response(),
            Err(e) if e.is_transient() => {
                tracing::warn!(target: "http::idempotency", error = %e, "idempotency store unavailable");
                return Problem::storage_unavailable().into_response();
            }
            Err(e) => {
                tracing::error!(target: "http::idempotency", error = %e, "idempotency store failed");
                return Problem::internal().into_response();
            }
        };
        let response = work().await;
        store_response(db, &claim, response).await
    }
}

async fn store_response(db: &crate::store::Db, claim: &Claim, response: Response) -> Response {
    let status = response.status();
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, RESPONSE_BYTES_MAX).await {
        Ok(b) => b,
        Err(_) => {
            let _ = forget(db, claim).await;
            return Problem::internal().into_response();
        }
    };
    let stored = if status.is_server_error() {
        let _ = forget(db, claim).await;
        None
    } else {
        let text = String::from_utf8_lossy(&bytes);
        Some(
            async {
                let mut tx = db.begin().await?;
                let done = idempotency::finish(&mut tx, claim, status.as_u16(), &text).await?;
                tx.commit().await?;
                Ok::<_, crate::store::StoreError>(done)
            }
            .await,
        )
    };
    if let Some(stored) = stored {
        match stored {
            Ok(true) => {}
            Ok(false) => tracing::warn!(target: "http::idempotency", scope = %claim.scope,
                "the key was taken over while this request ran; its response is not stored"),
            Err(e) => tracing::error!(target: "http::idempotency", error = %e, "storing the response failed"),
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Deletes the unfinished key (the client may retry with it).
async fn forget(db: &crate::store::Db, claim: &Claim) -> Result<(), crate::store::StoreError> {
    let mut tx = db.begin().await?;
    idempotency::forget(&mut tx, claim).await?;
    tx.commit().await?;
    Ok(())
}

/// The stored response again, marked `Idempotent-Replayed: true`.
pub fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let ct = if status.is_success() {
        "application/json"
    } else {
        "application/problem+json"
    };
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    r
}
