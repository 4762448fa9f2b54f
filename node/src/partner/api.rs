//! The partner HTTP API (`/v1/partner/*`, every request RFC 9421-signed) and the operator's webhook admin
//! endpoints (`/v1/admin/partner/*`, bearer operator token). Handlers call the engine for every state change;
//! reads are scoped to the signing partner, so another partner's payout is a 404.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use base64::Engine as _;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::auth::{AuthenticatedPartner, KeyLookup, PartnerAuth, PartnerKey, verify_partner_signature};
use super::config::PartnerConfig;
use super::httpsig::Ed25519Signer;
use super::store::{PartnerDb, PartnerEvent, StoreError, WebhookDelivery};
use super::views::{PartnerPayout, PartnerSettlement, VISIBLE_STATES};
use crate::domain::{IdempotencyKey, PartnerId, PickupCode, RemittanceId};
use crate::engine::{Engine, EngineError, PayoutProof, Rate, RateInput};
use crate::faults::Faults;
use crate::http::idempotency::Keyed;
use crate::http::problem::{ApiQuery, Problem};
use crate::store::instances::Instance;
use remesa_wallet::eip3009::Signature65;

/// Default and largest page sizes of the partner lists.
pub const PAGE_DEFAULT: i64 = 50;

/// Most rates one `PUT /v1/partner/rates` posts (so that a full card fits the signed body's limit).
pub const PARTNER_RATES_PER_CALL_MAX: usize = crate::engine::RATES_PER_CALL_MAX;

/// A page size from a query: absent → [`PAGE_DEFAULT`]; outside 1 to 500 → 422 (never clamped).
fn page_limit(limit: Option<i64>) -> ApiResult<i64> {
    match limit {
        None => Ok(PAGE_DEFAULT),
        Some(l) if (1..=super::store::PAGE_LIMIT_MAX).contains(&l) => Ok(l),
        Some(_) => Err(ApiError::Unprocessable(format!(
            "limit must be 1 to {}",
            super::store::PAGE_LIMIT_MAX
        ))),
    }
}
/// How long a partner's verifying key is used from memory before it is read again (suspensions and key changes
/// take effect within this time).
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(1);
/// Most partners' keys kept in memory (the cache starts over past it).
const KEY_CACHE_MAX: usize = 4_096;

/// Largest accepted partner request body.
pub const PARTNER_BODY_BYTES_MAX: usize = 64 * 1024;

/// What the partner router needs.
#[derive(Clone)]
pub struct PartnerState {
    pub engine: Engine,
    pub db: PartnerDb,
    pub cfg: PartnerConfig,
    /// The node's webhook signing key (its public half is served at `/v1/partner/webhook-key`).
    pub node_signer: Ed25519Signer,
    /// Bearer token of the admin endpoints; without it they answer 503.
    pub operator_token: Option<SecretString>,
    /// This process: its start id owns the Idempotency-Keys it is working on.
    pub instance: Instance,
    /// From when an unfinished Idempotency-Key is abandoned (`http::idempotency::stale_ms`).
    pub idempotency_stale_ms: i64,
    /// Injected faults (crash tests only).
    pub faults: Faults,
}

impl std::fmt::Debug for PartnerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerState")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl PartnerState {
    /// The keyid → key lookup over the `partners` table (keyid = the partner id; only active partners). A key
    /// found is kept for [`KEY_CACHE_TTL`] (a suspended partner or a replaced key takes effect within that time,
    /// on every node); an unknown or suspended keyid is looked up every time.
    pub fn key_lookup(&self) -> KeyLookup {
        let db = self.db.clone();
        let cache: Arc<std::sync::Mutex<HashMap<i64, (Instant, PartnerKey)>>> = Arc::default();
        Arc::new(move |keyid: String| {
            let db = db.clone();
            let cache = cache.clone();
            Box::pin(async move {
                let Ok(id) = keyid.parse::<i64>() else {
                    return Ok(None);
                };
                let cached = cache
                    .lock()
                    .ok()
                    .and_then(|c| c.get(&id).filter(|(at, _)| at.elapsed() < KEY_CACHE_TTL).cloned());
                if let Some((_, key)) = cached {
                    return Ok(Some(key));
                }
                let found = Self::load_key(&db, id).await?;
                if let (Some(key), Ok(mut c)) = (&found, cache.lock()) {
                    if c.len() >= KEY_CACHE_MAX {
                        c.clear();
                    }
                    c.insert(id, (Instant::now(), key.clone()));
                }
                Ok(found)
            })
        })
    }

    async fn load_key(db: &PartnerDb, id: i64) -> Result<Option<PartnerKey>, StoreError> {
        let Some((key_b64, _)) = db.partner_key_and_webhook(id).await? else {
            return Ok(None);
        };
        let corrupt = |what: String| StoreError::Corrupt(format!("partner {id}'s stored key: {what}"));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key_b64.trim())
            .map_err(|e| corrupt(e.to_string()))?;
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("not 32 bytes".to_owned()))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&arr).map_err(|e| corrupt(e.to_string()))?;
        Ok(Some(PartnerKey {
            partner_id: id.to_string(),
            key,
        }))
    }

    fn auth(&self) -> PartnerAuth {
        PartnerAuth {
            db: self.db.clone(),
            cfg: self.cfg.clone(),
            keys: self.key_lookup(),
            body_limit_bytes: PARTNER_BODY_BYTES_MAX,
        }
    }
}

/// `/v1/partner/*` (signed) and `/v1/admin/partner/*` (operator token).
pub fn partner_router<S: Clone + Send + Sync + 'static>(state: PartnerState) -> Router<S> {
    let signed = Router::new()
        .route("/v1/partner/me", get(me))
        .route("/v1/partner/rates", put(put_rates).get(get_rates))
        .route("/v1/partner/payouts", get(list_payouts))
        .route("/v1/partner/payouts/lookup", post(lookup_payout))
        .route(
            "/v1/partner/payouts/by-pickup-code/{code}",
            get(payout_by_pickup_code),
        )
        .route("/v1/partner/payouts/{id}", get(get_payout))
        .route("/v1/partner/payouts/{id}/accept", post(accept_payout))
        .route("/v1/partner/payouts/{id}/complete", post(complete_payout))
        .route("/v1/partner/payouts/{id}/fail", post(fail_payout))
        .route("/v1/partner/settlements", get(list_settlements))
        .route("/v1/partner/events", get(list_events))
        .route("/v1/partner/webhook-key", get(webhook_key))
        .merge(super::agents::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.auth(),
            verify_partner_signature,
        ));
    let admin = Router::new()
        .route("/v1/admin/partner/webhooks", get(admin_list_webhooks))
        .route(
            "/v1/admin/partner/webhooks/{id}/requeue",
            post(admin_requeue_webhook),
        );
    signed.merge(admin).with_state(state)
}

// ------------------------------------------------------------------------------------------------ errors

/// Errors of the partner API as RFC 9457 problem+json. Internal details stay in the logs.
#[derive(Debug)]
pub enum ApiError {
    NotFound(&'static str),
    BadRequest(String),
    Unprocessable(String),
    Conflict(String),
    Unauthorized(String),
    Unavailable(String),
    Internal(String),
    /// An engine error, with the node's one status per error kind (`Problem: From<EngineError>`).
    Engine(Problem),
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let p = Problem::from(e);
        let reason = p.slug().replace('-', "_");
        Self::Engine(p.with_reason(reason))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            tracing::warn!(target: "partner::api", error = %e, "storage unavailable");
            Self::Engine(Problem::storage_unavailable().with_reason("storage_unavailable"))
        } else {
            Self::Internal(e.to_string())
        }
    }
}

impl ApiError {
    fn problem(self) -> Problem {
        use StatusCode as S;
        match self {
            Self::NotFound(what) => Problem::not_found(format!("{what} not found")).with_reason("not_found"),
            Self::BadRequest(m) => Problem::bad_request(m).with_reason("bad_request"),
            Self::Unprocessable(m) => Problem::validation(m).with_reason("invalid"),
            Self::Conflict(m) => {
                Problem::new(S::CONFLICT, "conflict", "Conflict", Some(m)).with_reason("conflict")
            }
            Self::Unauthorized(m) => Problem::unauthorized(m).with_reason("unauthorized"),
            Self::Unavailable(m) => {
                Problem::new(S::SERVICE_UNAVAILABLE, "unavailable", "Unavailable", Some(m))
                    .with_reason("unavailable")
            }
            Self::Internal(m) => {
                tracing::error!(target: "partner::api", error = %m, "partner API internal error");
                Problem::new(
                    S::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                    Some("something went wrong; try again".into()),
                )
                .with_reason("internal")
            }
            Self::Engine(p) => p,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.problem().into_response()
    }
}

pub(super) type ApiResult<T> = Result<T, ApiError>;

/// A page cursor from a query: at most 200 characters (422 otherwise). One that does not parse starts from the
/// beginning.
fn page_cursor(cursor: Option<&str>) -> ApiResult<Option<&str>> {
    match cursor {
        Some(c) if c.chars().count() > 200 => Err(ApiError::Unprocessable(
            "cursor must be at most 200 characters".into(),
        )),
        c => Ok(c),
    }
}

/// The signed body as `T`: unreadable JSON is 400, JSON of the wrong shape 422 (as everywhere in the node's API).
pub(super) fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    crate::http::problem::json_body(body).map_err(|e| {
        if e.is_data() {
            ApiError::Unprocessable(format!("invalid body: {e}"))
        } else {
            ApiError::BadRequest(format!("invalid JSON body: {e}"))
        }
    })
}

pub(super) fn partner_id(p: &AuthenticatedPartner) -> ApiResult<(i64, PartnerId)> {
    let id = PartnerId::parse(&p.partner_id).map_err(|_| ApiError::Internal("invalid partner id".into()))?;
    Ok((id.as_i64(), id))
}

/// A payout id from a path: one that cannot be a remittance id names no payout (404).
fn payout_id(id: &str) -> ApiResult<RemittanceId> {
    RemittanceId::parse(id).map_err(|_| ApiError::NotFound("payout"))
}

// ------------------------------------------------------------------------------------------- idempotency

/// Runs `work` at most once per (partner, Idempotency-Key) through the node's one mechanism
/// ([`crate::http::idempotency::Keyed::run_once`], scope `partner:<id>`): a retry with the same key and body gets the
/// stored response; the same key with another request is refused (422); a retry while the first is running gets
/// 409 (reason `idempotency_key_in_use`). Server errors are not stored. A request whose process crashed before its
/// response was stored is run again by the next retry once the node restarted (or the record went stale); the work
/// (the engine's accept, complete and fail) accepts a repeat, so it happens once.
pub(super) async fn idempotent<F, Fut>(
    st: &PartnerState,
    partner: &AuthenticatedPartner,
    headers: &HeaderMap,
    action: &str,
    fingerprint: &[u8],
    work: F,
) -> Response
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ApiResult<(StatusCode, serde_json::Value)>>,
{
    let respond = |r: ApiResult<(StatusCode, serde_json::Value)>| match r {
        Ok((s, v)) => (s, Json(v)).into_response(),
        Err(e) => e.into_response(),
    };
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => return respond(work().await),
        Some(raw) => match raw.ok().map(IdempotencyKey::parse) {
            Some(Ok(k)) => k,
            _ => {
                return ApiError::BadRequest("Idempotency-Key: 1 to 255 visible ASCII characters".into())
                    .into_response();
            }
        },
    };
    let scope = format!("partner:{}", partner.partner_id);
    let hash = hex::encode(Sha256::digest(fingerprint));
    let keyed = Keyed {
        db: st.db.node_db(),
        start_id: &st.instance.start_id,
        stale_ms: st.idempotency_stale_ms,
    };
    keyed
        .run_once(&scope, &key, &hash, || async {
            st.faults.hit(&format!("partner.{action}.before_work")).await;
            let result = work().await;
            if result.is_ok() {
                st.faults.hit(&format!("partner.{action}.after_work")).await;
            }
            respond(result)
        })
        .await
}

pub(super) fn fingerprint(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(method.len() + path.len() + body.len() + 2);
    v.extend_from_slice(method.as_bytes());
    v.push(0);
    v.extend_from_slice(path.as_bytes());
    v.push(0);
    v.extend_from_slice(body);
    v
}

// ---------------------------------------------------------------------------------------------- handlers

/// The signing partner as registered.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerMe {
    pub id: u64,
    pub name: String,
    pub countries: Vec<String>,
    pub currencies: Vec<String>,
    pub payout_methods: Vec<String>,
    pub webhook_url: Option<String>,
    pub settlement_address: String,
    /// The EVM signer whose EIP-712 `Decline(bytes32 id)` lets a declined payout be refunded at once (`fail`).
    pub signer_address: String,
    /// The escrow (the EIP-712 domain's `verifyingContract`: name "Remesa Escrow", version "3") and its chain id;
    /// `null` when the node has no chain.
    pub escrow_address: Option<String>,
    pub chain_id: Option<u64>,
    pub status: String,
}

#[utoipa::path(get, path = "/v1/partner/me", tag = "partner", security(("http_signature" = [])),
    responses((status = 200, description = "The signing partner", body = PartnerMe),
              (status = 401, description = "Signature refused (problem+json with `reason`)")))]
async fn me(
    State(st): State<PartnerState>,
    Extension(p): Extension<AuthenticatedPartner>,
) -> ApiResult<Json<PartnerMe>> {
    let (_, id) = partner_id(&p)?;
    let partner = st
        .engine
        .partner(id)
        .await?
        .ok_or(ApiError::NotFound("partner"))?;
    Ok(Json(PartnerMe {
        id: partner.id,
        name: partner.name,
        countries: partner.countries,
        currencies: partner.currencies,
        payout_methods: partner
            .payout_methods
            .iter()
            .map(|m| m.as_str().to_owned())
            .collect(),
        webhook_url: partner.webhook_url,
        settlement_address: partner.settlement_address,
        signer_address: partner.signer_address,
        escrow_address: st.engine.chain().map(|c| format!("{:#x}", c.escrow)),
        chain_id: st.engine.chain().map(|c| c.chain_id),
        status: partner.status,
    }))
}

/// Rates to post: each replaces the partner's rate for its corridor (country + currency) and payout method.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"rates": [{
    "country": "GT", "currency": "GTQ", "payout_method": "cash_pickup", "rate": "7.6543",
    "fee_fixed": "1.50", "fee_bps": 75, "send_min": "1", "send_max": "2500", "valid_for_s": 86400
}]}))]
pub struct PutRates {
    /// 1 to 200 rates (they replace the posted rates of the same corridors and methods; the signed body's limit,
    /// 64 KiB, holds 200 at their longest).
    #[schema(min_items = 1, max_items = 200)]
    pub rates: Vec<RateInput>,
}

/// The partner's current rates.
#[derive(Debug, Serialize, ToSchema)]
pub struct RatesOut {
    pub rates: Vec<Rate>,
}

#[utoipa::path(put, path = "/v1/partner/rates", tag = "partner", security(("http_signature" = [])),
    request_body = PutRates,
    description = "Posts rates per corridor and payout method: rate (payout currency per token), fixed fee, \
        variable fee (bps), minimum and maximum send amount, validity. Quotes pick, among the partners serving the \
        corridor, method and amount with a valid rate, the one whose net payout to the recipient is best, and name it.",
    responses((status = 200, description = "All of the partner's rates after the update", body = RatesOut),
              (status = 422, description = "A rate outside the partner's registered corridors, or invalid numbers"),
              (status = 401, description = "Signature refused")))]
async fn put_rates(
    State(st): State<PartnerState>,
    Extension(p): Extension<AuthenticatedPartner>,
    body: Bytes,
) -> ApiResult<Json<RatesOut>> {
    let (_, id) = partner_id(&p)?;
    let req: PutRates = parse_json(&body)?;
    if req.rates.is_empty() || req.rates.len() > PARTNER_RATES_PER_CALL_MAX {
        return Err(ApiError::Unprocessable(format!(
            "1 to {PARTNER_RATES_PER_CALL_MAX} rates per call"
        )));
    }
    let rates = st.engine.set_rates(id, req.rates).await?;
    tracing::info!(target: "partner::api", partner_id = %id, count = rates.len(), "rates posted");
    Ok(Json(RatesOut { rates }))
}

#[utoipa::path(get, path = "/v1/partner/rates", tag = "partner", security(("http_signature" = [])),
    responses((status = 200, description = "The partner's rates", body = RatesOut)))]
async fn get_rates(
    State(st): State<PartnerState>,
    Extension(p): Extension<AuthenticatedPartner>,
) -> ApiResult<Json<RatesOut>> {
    let (_, id) = partner_id(&p)?;
    Ok(Json(RatesOut {
        rates: st.engine.rates(id).await?,
    }))
}

/// Filter and page of the payout list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PayoutListQuery {
    /// `payout_assigned`, `payout_accepted`, `paid`, `settled`, `refund_pending` or `refunded`.
    #[param(
        nullable = false,
        pattern = "^(payout_assigned|payout_accepted|paid|settled|refund_pending|refunded)$"
    )]
    pub status: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(nullable = false, max_length = 200)]
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50); outside that range, 422.
    #[param(nullable = false, minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// A page of payouts, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PayoutPage {
    pub items: Vec<PartnerPayout>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/partner/payouts", tag = "partner", security(("http_signature" = [])), params(PayoutListQuery),
    responses((status = 200, description = "The partner's payouts", body = PayoutPage),
              (status = 400, description = "Unknown status")))]
async fn list_payouts(
    State(st): State<PartnerState>,
    Extension(p): Extension<AuthenticatedPartner>,
    ApiQuery(q): ApiQuery<PayoutListQuery>,
) -> ApiResult<Json<PayoutPage>> {
    let (pid, _) = partner_id(&p)?;
    if let Some(s) = &q.status
        && !VISIBLE_STATES.contains(&s.as_str())
    {
        return Err(ApiError::Unprocessable(format!(
            "status must be one of {}",
            VISIBLE_STATES.join(", ")
        )));
    }
    let limit = page_limit(q.limit)?;
    let (items, next_cursor) = st
        .db
        .partner_payouts(pid, q.status.as_deref(), page_cursor(q.cursor.as_deref())?, limit)
        .await?;
    Ok(Json(PayoutPage { items, next_cursor }))
}

async fn load_payout(st: &PartnerState, pid: i64, id: &str) -> ApiResult<PartnerPayout> {
    st.db
        .partner_payout(pid, id)
        .await?
        .ok_or(ApiError::NotFound("payout"))
}

#[utoipa::path(get, path = "/v1/partner/payouts/{id}", tag = "partner", security(("http_signature" = [])),
    params(("id" = String, Path, description = "Remittance id (0x + 64 hex)")),
    responses((status = 200, description = "The payout", body = PartnerPayout),
              (status = 404, description = "No such payout for this partner (another partner's payouts are not found either)")))]
async fn get_payout(
    State(st): State<PartnerState>,
    Extension(p): Extension<AuthenticatedPartner>,
    Path(id): Path<String>,
) -> ApiResult<Json<PartnerPayout>> {
    let (pid, _) = partner_id(&p)?;
    Ok(Json(load_payout(&st, pid, &id).await?))
}

/// Body of a payout look-up by pickup code.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"pickup_code": "K7QM-2XWD-9HPA"}))]
pub struct PayoutLookup {
    /// The recipient's 12-character pickup code (dashes, spaces and case ignored).
    #[schema(max_length = 64)]
    pub pickup_code: String,
}

#[utoipa::path(post, path = "/v1/partner/payouts/lookup", tag = "partner", security(("http_signature" = [])),
    description = "For counter agents: the payout the recipient's pickup code belongs to. The code travels in the \
        signed body, so it never appears in a URL (access logs, proxies). Reads only; repeating it is harmless.",
    request_body = PayoutLookup,
    responses((status = 200, description = "The payout", body = PartnerPayout),
              (status = 404, description = "No payout of this partner has that code")))]
async fn lookup_payout(
    State(st): State<PartnerState>,
    Extension(p): Extension<AuthenticatedPartner>,
    body: Bytes,
) -> ApiResult<Json<PartnerPayout>> {
    let q: PayoutLookup = parse_json(&body)?;
    Ok(Json(payout_for_code(&st, &p, &q.pickup_code).await?))
}

/// The payout of partner `p` whose pickup code is `code` (a malformed code is as unknown as a wrong one: 404).
async fn payout_for_code(
    st: &PartnerState,
    p: &AuthenticatedPartner,
    code: &str,
) -> ApiResult<PartnerPayout> {
    let (pid, _) = partner_id(p)?;
    let code = PickupCode::parse(code).map_err(|_| ApiError::NotFound("payout"))?;
    let lookup = st.engine.pickup_lookup(&code)?;
    st.db
        .partner_payout_by_pickup_lookup(pid, &lookup)
        .await?
        .ok_or(ApiError::NotFound("payout"))
}

#[utoipa::path(get, path = "/v1/partner/payouts/by-pickup-code/{code}", tag = "partner", security(("http_signature" = [])),
    description = "Deprecated: use `POST /v1/partner/payouts/lookup`, which keeps the code out of the URL. The payout \
        the recipient's pickup code belongs to (dashes and case ignored); the node redacts the code from its own logs.",
    params(("code" = String, Path, description = "The recipient's 12-character pickup code", example = "K7QM-2XWD-9HPA")),
    responses((status = 200, description = "The payout", body = PartnerPayout),
              (status = 404, description = "No payout of this partner has that code")))]
async fn payout_by_pickup_code(
    State(st): State<PartnerState>,
    Extension(p): Extension<AuthenticatedPartner>,
    Path(code): Path<String>,
) -> ApiResult<Json<PartnerPayout>> {
    Ok(Json(payout_for_code(&st, &p, &code).await?))
}

/// Body of an accept (nothing to say; `{}` or empty).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({}))]
pub struct AcceptPayout {}

#[utoipa::path(post, path = "/v1/partner/payouts/{id}/accept", tag = "partner", security(("http_signature" = [])),
    description = "Takes the payout (`payout_assigned` → `payout_accepted`). Repeating it is harmless. Honours `Idempotency-Key`.",
    request_body(content = AcceptPayout, description = "Empty object (or no body)"),
    params(("id" = String, Path, description = "Remittance id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Same key + same request → the same response")),
    responses((status = 200, description = "The accepted payout", body = PartnerPayout),
              (status = 404, description = "Not this partner's payout"),
              (status = 409, description = "The payout is in a state that cannot be accepted; or the same Idempotency-Key is still running (reason `idempotency_key_in_use`: retry unchanged)")))]
async fn accept_payout(
    State(st): State<PartnerState>,
    Extension(p): Extension<AuthenticatedPartner>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fp = fingerprint("accept", &id, &body);
    idempotent(&st, &p, &headers, "accept", &fp, || async {
        let (pid, uid) = partner_id(&p)?;
        load_payout(&st, pid, &id).await?;
        st.engine.payout_accepted(&payout_id(&id)?, uid).await?;
        st.db
            .record_action(&p.partner_id, &id, "accept", None, None)
            .await?;
        Ok((
            StatusCode::OK,
            serde_json::to_value(load_payout(&st, pid, &id).await?).unwrap_or_default(),
        ))
    })
    .await
}

#[utoipa::path(post, path = "/v1/partner/payouts/{id}/complete", tag = "partner", security(("http_signature" = [])),
    description = "The recipient was paid. Cash pickups are completed with the recipient's pickup code (checked \
        against the on-chain claim hash); bank and mobile-money payouts with your reference. Queues the on-chain \
        release of the escrowed funds to your settlement address (batched per partner). Honours `Idempotency-Key`.",
    request_body(content = PayoutProof, examples(
        ("cash" = (value = json!({"kind": "pickup_code", "code": "K7QM-2XWD-9HPA"}))),
        ("bank" = (value = json!({"kind": "reference", "reference": "BANK-7731"}))))),
    params(("id" = String, Path, description = "Remittance id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Same key + same request → the same response")),
    responses((status = 200, description = "The paid payout (status `paid`, release queued)", body = PartnerPayout),
              (status = 404, description = "Not this partner's payout"),
              (status = 409, description = "Already withdrawn (refund pending) or not yet assigned; or the same Idempotency-Key is still running (reason `idempotency_key_in_use`: retry unchanged)"),
              (status = 422, description = "Wrong pickup code, or a reference for a cash pickup")))]
async fn complete_payout(
    State(st): State<PartnerState>,
    Extension(p): Extension<AuthenticatedPartner>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fp = fingerprint("complete", &id, &body);
    idempotent(&st, &p, &headers, "complete", &fp, || async {
        let (pid, uid) = partner_id(&p)?;
        let proof: PayoutProof = parse_json(&body)?;
        load_payout(&st, pid, &id).await?;
        let reference = match &proof {
            PayoutProof::Reference { reference } => Some(reference.clone()),
            PayoutProof::PickupCode { .. } => None,
        };
        st.engine.payout_paid(&payout_id(&id)?, uid, proof).await?;
        st.db
            .record_action(&p.partner_id, &id, "complete", reference.as_deref(), None)
            .await?;
        Ok((
            StatusCode::OK,
            serde_json::to_value(load_payout(&st, pid, &id).await?).unwrap_or_default(),
        ))
    })
    .await
}

/// Why the partner could not pay, and optionally its signed "not paid, will not pay".
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"reason": "recipient did not come to the counter"}))]
pub struct FailPayout {
    /// Up to 500 characters; shown to the sender.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub reason: String,
    /// The partner signer's EIP-712 signature of `Decline(bytes32 id)` (id = this payout's id) in the escrow's
    /// domain (name "Remesa Escrow", version "3", `chain_id` and `escrow_address` from `GET /v1/partner/me`):
    /// 0x + 130 hex digits: r, s and v (0, 1, 27, 28, or 35 and above). With it the sender is refunded now (the
    /// escrow's `cancel`); without it, at expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(0x)?[0-9a-fA-F]{128}(0[01]|1[bBcC]|2[3-9a-fA-F]|[3-9a-fA-F][0-9a-fA-F])$")]
    pub decline_signature: Option<String>,
}

#[utoipa::path(post, path = "/v1/partner/payouts/{id}/fail", tag = "partner", security(("http_signature" = [])),
    description = "The payout cannot be made: it is withdrawn from you and refunded to the sender at expiry, or at once when `decline_signature` is given (checked against your signer; 422 when it is not yours). Honours `Idempotency-Key`.",
    request_body = FailPayout,
    params(("id" = String, Path, description = "Remittance id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Same key + same request → the same response")),
    responses((status = 200, description = "The payout, now `refund_pending`", body = PartnerPayout),
              (status = 404, description = "Not this partner's payout"),
              (status = 409, description = "Already paid; or the same Idempotency-Key is still running (reason `idempotency_key_in_use`: retry unchanged)")))]
async fn fail_payout(
    State(st): State<PartnerState>,
    Extension(p): Extension<AuthenticatedPartner>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fp = fingerprint("fail", &id, &body);
    idempotent(&st, &p, &headers, "fail", &fp, || async {
        let (pid, uid) = partner_id(&p)?;
        let req: FailPayout = parse_json(&body)?;
        let decline = req
            .decline_signature
            .as_deref()
            .map(Signature65::parse)
            .transpose()
            .map_err(|_| {
                ApiError::Unprocessable(
                    "decline_signature must be 0x + 130 hex digits (r, s, v; v 0, 1, 27, 28 or 35 and above)"
                        .into(),
                )
            })?;
        load_payout(&st, pid, &id).await?;
        st.engine
            .payout_failed(&payout_id(&id)?, uid, &req.reason, decline.as_ref())
            .await?;
        st.db
            .record_action(&p.partner_id, &id, "fail", None, Some(&req.reason))
            .await?;
        Ok((
            StatusCode::OK,
            serde_json::to_value(load_payout(&st, pid, &id).await?).unwrap_or_default(),
        ))
    })
    .await
}

/// Page of settlements.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SettlementQuery {
    /// `next_cursor` of the previous page.
    #[param(nullable = false, max_length = 200)]
    pub cursor: Option<String>,
    /// 1 to 500 (default 50); outside that range, 422.
    #[param(nullable = false, minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// Settlements, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettlementPage {
    pub items: Vec<PartnerSettlement>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/partner/settlements", tag = "partner", security(("http_signature" = [])), params(SettlementQuery),
    description = "What was settled to you on chain: one token transfer per batch of releases, when and in which transaction.",
    responses((status = 200, description = "Settlements", body = SettlementPage)))]
async fn list_settlements(
    State(st): State<PartnerState>,
    Extension(p): Extension<AuthenticatedPartner>,
    ApiQuery(q): ApiQuery<SettlementQuery>,
) -> ApiResult<Json<SettlementPage>> {
    let (pid, _) = partner_id(&p)?;
    let (items, next_cursor) = st
        .db
        .partner_settlements(
            pid,
            st.engine.token_decimals(),
            page_cursor(q.cursor.as_deref())?,
            page_limit(q.limit)?,
        )
        .await?;
    Ok(Json(SettlementPage { items, next_cursor }))
}

/// Where to continue the feed.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// The last `seq` you processed (0 or absent: from the beginning).
    #[param(nullable = false, minimum = 0)]
    pub after: Option<i64>,
    /// 1 to 500 (default 50); outside that range, 422.
    #[param(nullable = false, minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// Events in order.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"seq": 7, "id": "0193f0c2-…", "type": "payout.created", "payout_id": "0x5f0c…",
    "created_at_unix_ms": 1_790_000_000_000_i64, "data": {"payout": {"id": "0x5f0c…", "status": "payout_assigned"}}}],
    "next_after": 7}))]
pub struct EventPage {
    pub items: Vec<PartnerEvent>,
    /// Pass as `after` next time (the last `seq` of this page, or the `after` you sent when empty).
    pub next_after: i64,
}

#[utoipa::path(get, path = "/v1/partner/events", tag = "partner", security(("http_signature" = [])), params(EventQuery),
    description = "Replays everything the partner was told by webhook (`payout.created`, `payout.accepted`, `payout.paid`, \
        `payout.settled`, `payout.cancelled`, `payout.refunded`), in order.",
    responses((status = 200, description = "Events after the cursor", body = EventPage)))]
async fn list_events(
    State(st): State<PartnerState>,
    Extension(p): Extension<AuthenticatedPartner>,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> ApiResult<Json<EventPage>> {
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::Unprocessable("after must be 0 or more".into()));
    }
    let limit = page_limit(q.limit)?;
    let items = st.db.list_events(&p.partner_id, after, limit).await?;
    let next_after = items.last().map_or(after, |e| e.seq);
    Ok(Json(EventPage { items, next_after }))
}

/// The key the node signs webhooks with.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"keyid": "remesa-node-3f1c9a0b7d2e4c5a", "alg": "ed25519",
    "public_key": "JrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs="}))]
pub struct WebhookKey {
    pub keyid: String,
    pub alg: String,
    /// Raw 32-byte Ed25519 public key, base64.
    pub public_key: String,
}

#[utoipa::path(get, path = "/v1/partner/webhook-key", tag = "partner", security(("http_signature" = [])),
    responses((status = 200, description = "The node's webhook signing key", body = WebhookKey)))]
async fn webhook_key(State(st): State<PartnerState>) -> Json<WebhookKey> {
    Json(WebhookKey {
        keyid: st.node_signer.keyid().to_owned(),
        alg: "ed25519".to_owned(),
        public_key: base64::engine::general_purpose::STANDARD
            .encode(st.node_signer.verifying_key().as_bytes()),
    })
}

// ------------------------------------------------------------------------------------------------- admin

fn check_operator(st: &PartnerState, headers: &HeaderMap) -> ApiResult<()> {
    use subtle::ConstantTimeEq as _;
    let Some(token) = &st.operator_token else {
        return Err(ApiError::Unavailable(
            "no operator token is configured (REMESA_OPERATOR_TOKEN)".into(),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(token.expose_secret().as_bytes());
    if bool::from(a.ct_eq(&b)) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized("operator token required".into()))
    }
}

/// Filter of the delivery list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// `pending`, `delivering`, `delivered` or `failed` (parked).
    #[param(nullable = false, pattern = "^(pending|delivering|delivered|failed)$")]
    pub status: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(nullable = false)]
    pub cursor: Option<String>,
    /// Page size (default 50; larger values are served as pages of at most 500).
    #[param(nullable = false)]
    pub limit: Option<i64>,
}

/// Webhook deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<WebhookDelivery>,
    pub next_cursor: Option<String>,
    /// How many deliveries are parked as failed in all.
    pub failed_total: i64,
}

#[utoipa::path(get, path = "/v1/admin/partner/webhooks", tag = "admin", security(("operator_token" = [])), params(DeliveryQuery),
    description = "Webhook deliveries; `status=failed` lists those parked after their last attempt (never dropped).",
    responses((status = 200, description = "Deliveries", body = DeliveryPage),
              (status = 400, description = "Unknown status", body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "Operator token required", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "A query parameter that does not parse", body = Problem, content_type = "application/problem+json")))]
async fn admin_list_webhooks(
    State(st): State<PartnerState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> ApiResult<Json<DeliveryPage>> {
    check_operator(&st, &headers)?;
    if let Some(s) = &q.status
        && !["pending", "delivering", "delivered", "failed"].contains(&s.as_str())
    {
        return Err(ApiError::BadRequest(
            "status must be pending, delivering, delivered or failed".into(),
        ));
    }
    let limit = q
        .limit
        .unwrap_or(PAGE_DEFAULT)
        .clamp(1, super::store::PAGE_LIMIT_MAX);
    let mut items = st
        .db
        .list_deliveries(q.status.as_deref(), q.cursor.as_deref(), limit + 1)
        .await?;
    let next_cursor = if items.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
        items.truncate(usize::try_from(limit).unwrap_or(0));
        items.last().map(|d| d.id.clone())
    } else {
        None
    };
    let failed_total = st.db.count_deliveries("failed").await?;
    Ok(Json(DeliveryPage {
        items,
        next_cursor,
        failed_total,
    }))
}

#[utoipa::path(post, path = "/v1/admin/partner/webhooks/{id}/requeue", tag = "admin", security(("operator_token" = [])),
    params(("id" = String, Path, description = "Delivery id")),
    responses((status = 200, description = "Re-queued with a fresh attempt budget"),
              (status = 404, description = "No parked delivery with that id")))]
async fn admin_requeue_webhook(
    State(st): State<PartnerState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    check_operator(&st, &headers)?;
    if !st.db.requeue_delivery(&id).await? {
        return Err(ApiError::NotFound("failed delivery"));
    }
    tracing::info!(target: "partner::webhooks", delivery = %id, "parked webhook delivery re-queued by the operator");
    Ok(Json(serde_json::json!({"id": id, "status": "pending"})))
}

// ----------------------------------------------------------------------------------------------- OpenAPI

#[derive(Debug)]
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "http_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Signature",
                "RFC 9421 HTTP Message Signature, alg ed25519, keyid = partner id, covering @method, @target-uri \
                 and content-digest (RFC 9530, for bodies) with created (≤ 300 s old) and a nonce; sent with \
                 Signature-Input and Content-Digest. Replays are refused. See the README's worked example.",
            ))),
        );
        components.add_security_scheme(
            "operator_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The partner API's OpenAPI fragment; the node merges it into `/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    paths(me, put_rates, get_rates, list_payouts, get_payout, lookup_payout, payout_by_pickup_code, accept_payout, complete_payout,
          fail_payout, list_settlements, list_events, webhook_key, admin_list_webhooks, admin_requeue_webhook,
          super::agents::create_agent, super::agents::list_agents, super::agents::disable_agent, super::agents::enable_agent),
    components(schemas(PartnerMe, AcceptPayout, PutRates, RatesOut, RateInput, Rate, PayoutPage, PartnerPayout, PayoutLookup, PayoutProof, FailPayout,
                       SettlementPage, PartnerSettlement, EventPage, PartnerEvent, WebhookKey, DeliveryPage, WebhookDelivery,
                       super::agents::NewAgent, super::agents::Agent, super::agents::AgentList)),
    modifiers(&SecuritySchemes),
    tags((name = "partner", description = "Cash-out partners: rates, payouts, settlements, events. Every request is \
        signed (RFC 9421, ed25519)."), (name = "admin", description = "Operator endpoints (bearer token)."))
)]
#[derive(Debug)]
pub struct PartnerApiDoc;
