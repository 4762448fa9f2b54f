//! The public HTTP API (axum 0.8): quotes, remittances, events, balances, admin, health, metrics and the OpenAPI
//! document. Every error is RFC 9457 problem+json; every POST honours `Idempotency-Key`; bodies, pages and
//! handler time are limited.

pub mod admin;
pub mod api;
pub mod auth;
pub mod compliance;
pub mod idempotency;
pub mod openapi;
pub mod problem;
pub mod state;

use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

pub use problem::{ApiJson, Problem};
pub use state::AppState;

/// The process-wide Prometheus recorder (installed on first use).
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(target: "http", error = %e, "metrics recorder not installed");
                None
            }
        })
        .clone()
}

/// The node's own routes (without chat and partner routes and `/openapi.json`, which `app::router` adds).
pub fn routes(state: AppState) -> Router<AppState> {
    let v1 = Router::new()
        .route("/v1/quotes", post(api::create_quote))
        .route(
            "/v1/remittances",
            post(api::create_remittance).get(api::list_remittances),
        )
        .route("/v1/remittances/{id}", get(api::get_remittance))
        .route("/v1/remittances/{id}/cancel", post(api::cancel))
        .route("/v1/remittances/{id}/authorization", post(api::authorize))
        .route("/v1/remittances/{id}/events", get(api::remittance_events))
        .route("/v1/events", get(api::events))
        .route("/v1/balances/{address}", get(api::balance))
        .route(
            "/v1/admin/partners",
            post(admin::add_partner).get(admin::list_partners),
        )
        .route("/v1/admin/partners/{id}/status", post(admin::partner_status))
        .route("/v1/admin/partners/{id}/rates", put(admin::set_rates))
        .route("/v1/admin/fx/{currency}", put(admin::set_mid_rate))
        .route(
            "/v1/admin/users",
            post(admin::register_user).get(admin::find_user),
        )
        .route("/v1/admin/users/{id}", get(admin::get_user))
        .route("/v1/admin/payouts/{id}/accept", post(admin::payout_accept))
        .route("/v1/admin/payouts/{id}/complete", post(admin::payout_complete))
        .route("/v1/admin/payouts/{id}/fail", post(admin::payout_fail))
        .route("/v1/admin/ledger", get(admin::ledger_report))
        .route("/v1/admin/reconcile", get(admin::reconcile))
        .route("/v1/admin/chain/jobs/failed", get(admin::failed_chain_jobs))
        .route("/v1/admin/chain/jobs/{id}/retry", post(admin::retry_chain_job))
        .route("/v1/admin/sanctions", get(compliance::sanctions_status))
        .route(
            "/v1/admin/sanctions/lists",
            put(compliance::load_list).layer(DefaultBodyLimit::max(compliance::LIST_UPLOAD_BYTES_MAX)),
        )
        .route("/v1/admin/sanctions/screen", post(compliance::screen))
        .route("/v1/admin/compliance/holds", get(compliance::holds))
        .route(
            "/v1/admin/remittances/{id}/hold/release",
            post(compliance::release_hold),
        )
        .route(
            "/v1/admin/remittances/{id}/hold/reject",
            post(compliance::reject_hold),
        )
        .route("/v1/admin/customers/review", get(compliance::kyc_queue))
        .route("/v1/admin/customers/{user_id}", get(compliance::customer))
        .route("/v1/admin/customers/{user_id}/kyc", post(compliance::submit_kyc))
        .route(
            "/v1/admin/customers/{user_id}/decision",
            post(compliance::decide_kyc),
        )
        .route("/v1/admin/cases", get(compliance::cases))
        .route("/v1/admin/cases/{id}/resolve", post(compliance::resolve_case))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::middleware,
        ));
    Router::new()
        .merge(v1)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// Layers every route gets (also chat and partner routes): request ids, tracing, panics → 500 problem, a
/// The span of one request (what `tower_http`'s default span records: method, URI, version), with the secret
/// a deprecated path may carry redacted: `…/by-pickup-code/<code>` is logged as `…/by-pickup-code/[redacted]`.
fn request_span<B>(req: &axum::http::Request<B>) -> tracing::Span {
    tracing::debug_span!("request", method = %req.method(), uri = %redact_uri(req.uri()), version = ?req.version())
}

/// A request URI as it may be logged: the pickup code of a `by-pickup-code` look-up replaced by `[redacted]`.
pub fn redact_uri(uri: &axum::http::Uri) -> std::borrow::Cow<'_, str> {
    const SECRET_AFTER: &str = "/by-pickup-code/";
    let s = uri.path_and_query().map_or("/", |p| p.as_str());
    match s.find(SECRET_AFTER) {
        Some(i) => {
            let start = i + SECRET_AFTER.len();
            let end = s[start..].find(['/', '?']).map_or(s.len(), |j| start + j);
            std::borrow::Cow::Owned(format!("{}[redacted]{}", &s[..start], &s[end..]))
        }
        None => std::borrow::Cow::Borrowed(s),
    }
}

/// handler timeout → 503 problem, body limit, problem+json for unknown routes and methods.
pub fn finish(router: Router<AppState>, state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let body_limit = state.config.http_body_bytes_max;
    let in_flight = Arc::new(Semaphore::new(state.config.http_in_flight_max));
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), timeout))
        .layer(middleware::from_fn_with_state(in_flight, admit))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            Problem::internal().into_response()
        }))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Admission: at most `http_in_flight_max` requests are handled at once. One more is answered 503 with
/// `Retry-After` without being read, before it costs anything: under overload the node answers some requests fast
/// instead of all of them late (and its memory stays bounded).
async fn admit(State(in_flight): State<Arc<Semaphore>>, req: Request, next: Next) -> Response {
    let Ok(_permit) = in_flight.try_acquire() else {
        metrics::counter!("remesa_http_shed_total").increment(1);
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "The node is at capacity",
            Some("too many requests are being handled right now; nothing was done; try again".to_owned()),
        )
        .with_reason("overloaded")
        .into_response();
    };
    next.run(req).await
}

async fn timeout(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let limit = Duration::from_millis(st.config.http_timeout_ms);
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            metrics::counter!("remesa_http_timeouts_total").increment(1);
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "The request took too long",
                None,
            )
            .into_response()
        }
    }
}

async fn not_found() -> Problem {
    Problem::not_found("no such route")
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        None,
    )
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "alive")))]
pub async fn healthz() -> impl IntoResponse {
    ApiJson(serde_json::json!({"status": "ok"}))
}

/// Readiness: the database commits a small write (503 with `Retry-After` otherwise — unreachable, out of space,
/// read-only, or no commit within 5 s: the node cannot accept work durably). The body names the
/// dependencies' state: the database; the chain (`chain.state`: `ok` with the RPC's head, the indexed block and the
/// lag between them, `unreachable` when the RPC does not answer within 2 s — the node keeps accepting work and
/// sends it when the chain is back —, or `not_configured`); and the sanctions lists in force (`sanctions.state`:
/// `loaded`, `not_loaded` — sends are not screened —, or `required_not_loaded` — sends are refused until a list is
/// loaded —, with each list's date and entry count).
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, description = "ready"), (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn readyz(State(st): State<AppState>) -> Response {
    if st.shutdown.is_cancelled() {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting-down",
            "Shutting down",
            None,
        )
        .into_response();
    }
    let probe = tokio::time::timeout(READYZ_WRITE_PROBE_TIMEOUT, st.db.probe_write()).await;
    match probe {
        Ok(Ok(())) => {
            let s = st.engine.sanctions_status();
            let lists: Vec<_> = s
                .lists
                .iter()
                .map(|l| {
                    serde_json::json!({"source": l.source, "list_date": l.list_date, "entries": l.entries,
                    "loaded_at_unix_ms": l.loaded_at_unix_ms})
                })
                .collect();
            ApiJson(serde_json::json!({
                "status": "ready",
                "database": "ok",
                "chain": chain_readiness(&st).await,
                "sanctions": {"state": s.state, "required": s.required, "lists": lists},
            }))
            .into_response()
        }
        Ok(Err(e)) => {
            tracing::warn!(target: "http", error = %e, "not ready: the database refused a write");
            not_ready("the database cannot take a durable write (unreachable, out of space or read-only)")
        }
        Err(_) => {
            tracing::warn!(target: "http", "not ready: the database took too long to write");
            not_ready("the database did not commit a write within 5 s")
        }
    }
}

/// How long `/readyz` waits for its write to commit.
const READYZ_WRITE_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

fn not_ready(detail: &str) -> Response {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not-ready",
        "Database unavailable",
        Some(detail.to_owned()),
    )
    .into_response()
}

/// The chain's part of `/readyz`: the RPC's head (asked with a 2-second limit) against the indexer's cursor.
async fn chain_readiness(st: &AppState) -> serde_json::Value {
    use alloy::providers::Provider as _;
    let Some(chain) = &st.chain else {
        return serde_json::json!({"state": "not_configured"});
    };
    let name = crate::chain::indexer::cursor_name(chain.info.chain_id, chain.info.escrow);
    let indexed = crate::chain::indexer::cursor(&st.db, &name)
        .await
        .ok()
        .flatten()
        .map(|(block, _)| block);
    match tokio::time::timeout(Duration::from_secs(2), chain.provider.get_block_number()).await {
        Ok(Ok(head)) => serde_json::json!({
            "state": "ok",
            "head_block": head,
            "indexed_block": indexed,
            "lag_blocks": indexed.map(|i| head.saturating_sub(i)),
        }),
        _ => serde_json::json!({"state": "unreachable", "indexed_block": indexed}),
    }
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(st): State<AppState>) -> Response {
    state::record_gauges(&st).await;
    match metrics_handle() {
        Some(h) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], h.render()).into_response(),
        None => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics-unavailable",
            "Metrics unavailable",
            None,
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_uri;

    #[test]
    fn pickup_codes_are_redacted_from_logged_uris() {
        let r = |u: &str| redact_uri(&u.parse().expect("uri")).into_owned();
        assert_eq!(
            r("/v1/partner/payouts/by-pickup-code/K7QM-2XWD-9HPA"),
            "/v1/partner/payouts/by-pickup-code/[redacted]"
        );
        assert_eq!(
            r("/v1/partner/payouts/by-pickup-code/K7QM2XWD9HPA?x=1"),
            "/v1/partner/payouts/by-pickup-code/[redacted]?x=1"
        );
        assert_eq!(
            r("/v1/partner/payouts/0xab/accept"),
            "/v1/partner/payouts/0xab/accept"
        );
        assert_eq!(r("/v1/remittances?limit=5"), "/v1/remittances?limit=5");
    }
}
