//! `Idempotency-Key` on every POST: the first request with a key runs and its response is stored; the same key
//! with the same method, path and body gets the stored response again (`Idempotent-Replayed: true`); the same key
//! with another request is a 422 problem; a request still running with that key is a 409 problem. Server errors
//! (5xx) are not stored, so the client may retry them with the same key.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::problem::Problem;
use crate::app::AppState;
use crate::domain::IdempotencyKey;
use crate::store::now_ms;

pub const HEADER: &str = "idempotency-key";
/// A stored "in progress" row older than this is considered abandoned (the process died mid-request).
const IN_PROGRESS_STALE_MS: i64 = 120_000;
const RESPONSE_BYTES_MAX: usize = 1 << 20;

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
    let mut h = Sha256::new();
    h.update(scope.as_bytes());
    h.update([0]);
    h.update(&bytes);
    let hash = hex::encode(h.finalize());
    let pool = &state.db.pool;

    for _ in 0..2 {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (scope, idem_key, request_hash, created_at_unix_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (scope, idem_key) DO NOTHING",
        )
        .bind(&scope)
        .bind(key.as_str())
        .bind(&hash)
        .bind(now_ms())
        .execute(pool)
        .await;
        match inserted {
            Ok(done) if done.rows_affected() == 1 => {
                let req = Request::from_parts(parts, Body::from(bytes));
                return run_and_store(&state, &scope, &key, req, next).await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(target: "http::idempotency", error = %e, "idempotency store failed");
                return Problem::internal().into_response();
            }
        }
        let row = sqlx::query(
            "SELECT request_hash, status_code, response_body, created_at_unix_ms FROM idempotency_keys \
             WHERE scope = $1 AND idem_key = $2",
        )
        .bind(&scope)
        .bind(key.as_str())
        .fetch_optional(pool)
        .await;
        let row = match row {
            Ok(Some(r)) => r,
            Ok(None) => continue, // deleted in between (a 5xx): try again
            Err(e) => {
                tracing::error!(target: "http::idempotency", error = %e, "idempotency lookup failed");
                return Problem::internal().into_response();
            }
        };
        let stored_hash: String = row.try_get(0).unwrap_or_default();
        let status: Option<i64> = row.try_get(1).unwrap_or(None);
        let body: Option<String> = row.try_get(2).unwrap_or(None);
        let created: i64 = row.try_get(3).unwrap_or(0);
        if stored_hash != hash {
            return Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency key reused with another request",
                Some("this Idempotency-Key was already used with a different request".to_owned()),
            )
            .into_response();
        }
        match (status, body) {
            (Some(status), Some(body)) => return replay(status, body),
            _ if now_ms() - created > IN_PROGRESS_STALE_MS => {
                let _ = sqlx::query(
                    "DELETE FROM idempotency_keys WHERE scope = $1 AND idem_key = $2 AND status_code IS NULL",
                )
                .bind(&scope)
                .bind(key.as_str())
                .execute(pool)
                .await;
                continue;
            }
            _ => {
                return Problem::new(
                    StatusCode::CONFLICT,
                    "idempotency-key-in-use",
                    "A request with this Idempotency-Key is in progress",
                    Some("retry after it completes".to_owned()),
                )
                .into_response();
            }
        }
    }
    Problem::new(
        StatusCode::CONFLICT,
        "idempotency-key-in-use",
        "Idempotency key contention",
        None,
    )
    .into_response()
}

async fn run_and_store(
    state: &AppState,
    scope: &str,
    key: &IdempotencyKey,
    req: Request,
    next: Next,
) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, RESPONSE_BYTES_MAX).await {
        Ok(b) => b,
        Err(_) => {
            forget(state, scope, key).await;
            return Problem::internal().into_response();
        }
    };
    if status.is_server_error() {
        forget(state, scope, key).await;
    } else {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Err(e) = sqlx::query(
            "UPDATE idempotency_keys SET status_code = $1, response_body = $2 WHERE scope = $3 AND idem_key = $4",
        )
        .bind(i64::from(status.as_u16()))
        .bind(text)
        .bind(scope)
        .bind(key.as_str())
        .execute(&state.db.pool)
        .await
        {
            tracing::error!(target: "http::idempotency", error = %e, "storing the response failed");
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

async fn forget(state: &AppState, scope: &str, key: &IdempotencyKey) {
    let _ = sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND idem_key = $2")
        .bind(scope)
        .bind(key.as_str())
        .execute(&state.db.pool)
        .await;
}

fn replay(status: i64, body: String) -> Response {
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
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
