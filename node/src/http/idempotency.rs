//! `Idempotency-Key` on every POST: the first request with a key runs and its response is stored; the same key
//! with the same method, path and body gets the stored response again (`Idempotent-Replayed: true`); the same key
//! with another request is a 422 problem; a request still running with that key is a 409 problem. Server errors
//! (5xx) are not stored, so the client may retry them with the same key. The records and their crash recovery
//! are [`crate::store::idempotency`]; the partner API uses the same records with its own scope.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
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
        Begin::Mismatch => Some(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "Idempotency key reused with another request",
            Some("this Idempotency-Key was already used with a different request".to_owned()),
        )),
        Begin::InProgress => Some(Problem::new(
            StatusCode::CONFLICT,
            "idempotency-key-in-use",
            "A request with this Idempotency-Key is in progress",
            Some("retry after it completes".to_owned()),
        )),
        Begin::Run(_) | Begin::Replay { .. } => None,
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
    let pool = &state.db.pool;
    let outcome = idempotency::begin(
        pool,
        &scope,
        key.as_str(),
        &hash,
        &state.instance.start_id,
        stale_ms(state.config.http_timeout_ms),
    )
    .await;
    match outcome {
        Ok(Begin::Run(claim)) => {
            let req = Request::from_parts(parts, Body::from(bytes));
            run_and_store(&state, &claim, req, next).await
        }
        Ok(Begin::Replay { status, body }) => replay(status, body),
        Ok(other) => refusal(&other).unwrap_or_else(Problem::internal).into_response(),
        Err(e) => {
            tracing::error!(target: "http::idempotency", error = %e, "idempotency store failed");
            Problem::internal().into_response()
        }
    }
}

async fn run_and_store(state: &AppState, claim: &Claim, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let (parts, body) = response.into_parts();
    let pool = &state.db.pool;
    let bytes = match to_bytes(body, RESPONSE_BYTES_MAX).await {
        Ok(b) => b,
        Err(_) => {
            let _ = idempotency::forget(pool, claim).await;
            return Problem::internal().into_response();
        }
    };
    if status.is_server_error() {
        let _ = idempotency::forget(pool, claim).await;
    } else {
        let text = String::from_utf8_lossy(&bytes);
        match idempotency::finish(pool, claim, status.as_u16(), &text).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(target: "http::idempotency", scope = %claim.scope,
                "the key was taken over while this request ran; its response is not stored"),
            Err(e) => tracing::error!(target: "http::idempotency", error = %e, "storing the response failed"),
        }
    }
    Response::from_parts(parts, Body::from(bytes))
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
