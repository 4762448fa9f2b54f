//! Public API handlers (`/v1/...`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::auth::{Operator, is_operator};
use super::idempotency::RequiredKey;
use super::problem::{ApiJson, ApiPath, ApiQuery, Problem};
use crate::domain::{PartnerId, RemittanceId};
use crate::engine::{
    AuthorizationInput, Balance, CreateRemittance, Page, Quote, QuoteRequest, Remittance, RemittanceFilter,
    SenderRef, State as RState, TransitionEvent,
};

type ApiResult<T> = Result<T, Problem>;

/// Get a firm, single-use quote from the partner with the best net payout. With `payout_method` `remesa_wallet`
/// and the `recipient_phone` of a registered user, the quote is for an instant, gasless P2P transfer of USD
/// stablecoin into the recipient's Remesa wallet: no partner (`partner_id` 0), no FX (rate 1), no fee.
#[utoipa::path(post, path = "/v1/quotes", tag = "quotes", request_body = QuoteRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    responses(
        (status = 201, description = "Firm quote", body = Quote),
        (status = 422, description = "Invalid request, no partner for the corridor, or (remesa_wallet) the recipient phone has no Remesa wallet (`recipient-not-registered`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_quote(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<QuoteRequest>,
) -> ApiResult<impl IntoResponse> {
    let q = st.engine.quote(req).await?;
    Ok((StatusCode::CREATED, ApiJson(q)))
}

/// Create a remittance from a quote. A custodial sender (by user id; operator token required) is signed for by
/// the node; a self-custody sender (by address) gets an `authorization_request` to sign with `remesa-wallet`.
#[utoipa::path(post, path = "/v1/remittances", tag = "remittances", request_body = CreateRemittance,
    params(("Idempotency-Key" = String, Header, description = "Required: the same key and body return the same remittance")),
    responses(
        (status = 201, description = "Created", body = Remittance),
        (status = 200, description = "Already created with this key", body = Remittance),
        (status = 404, description = "No quote with this `quote_id`, or (`kind` `user`) no such user", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Quote expired", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Quote already used", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid, insufficient funds, key reused, or over a sending limit (type `limit-exceeded`, `reason` `per_transaction`, `day` or `30_days`; see COMPLIANCE.md)", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("operator" = [])))]
pub async fn create_remittance(
    State(st): State<AppState>,
    headers: HeaderMap,
    RequiredKey(key): RequiredKey,
    ApiJson(req): ApiJson<CreateRemittance>,
) -> ApiResult<impl IntoResponse> {
    if matches!(req.sender, SenderRef::User { .. }) && !is_operator(&st, &headers) {
        return Err(Problem::unauthorized(
            "sending for a custodial user needs the operator token",
        ));
    }
    let (r, created) = st.engine.create_remittance(req, &key).await?;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        ApiJson(r),
    ))
}

/// Submit a self-custody sender's EIP-3009 signature (from `remesa-wallet remit`).
#[utoipa::path(post, path = "/v1/remittances/{id}/authorization", tag = "remittances", request_body = AuthorizationInput,
    params(("id" = String, Path, description = "Remittance id (0x…)")),
    responses(
        (status = 200, description = "Authorized; the deposit is queued", body = Remittance),
        (status = 409, description = "Not awaiting a signature", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad signature", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn authorize(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<AuthorizationInput>,
) -> ApiResult<ApiJson<Remittance>> {
    let id = parse_id(&id)?;
    let mut r = st.engine.authorize(&id, input).await?;
    redact(&mut r);
    Ok(ApiJson(r))
}

/// One remittance. Remittance ids are public on chain, so without the operator token the recipient's phone and
/// name are masked and the sender's user id is left out.
#[utoipa::path(get, path = "/v1/remittances/{id}", tag = "remittances",
    params(("id" = String, Path, description = "Remittance id (0x…)")),
    responses((status = 200, body = Remittance), (status = 404, body = Problem, content_type = "application/problem+json")),
    security((), ("operator" = [])))]
pub async fn get_remittance(
    State(st): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<Remittance>> {
    let id = parse_id(&id)?;
    let mut r = st
        .engine
        .remittance(&id)
        .await?
        .ok_or_else(|| Problem::not_found("remittance not found"))?;
    if !is_operator(&st, &headers) {
        redact(&mut r);
    }
    Ok(ApiJson(r))
}

/// Masks personal data for callers without the operator token: `+50255550101` → `+502******01`,
/// `Maria Lopez` → `M. L.`; the sender's user id and the payout reference are removed.
pub fn redact(r: &mut Remittance) {
    let phone: Vec<char> = r.recipient_phone.chars().collect();
    r.recipient_phone = phone
        .iter()
        .enumerate()
        .map(|(i, c)| if i < 4 || i + 2 >= phone.len() { *c } else { '*' })
        .collect();
    r.recipient_name = r
        .recipient_name
        .split_whitespace()
        .filter_map(|w| w.chars().next())
        .map(|c| format!("{c}."))
        .collect::<Vec<_>>()
        .join(" ");
    r.sender_user_id = None;
    r.payout_reference = None;
}

/// Every transition of one remittance (operator).
#[utoipa::path(get, path = "/v1/remittances/{id}/events", tag = "remittances",
    params(("id" = String, Path, description = "Remittance id (0x…)")),
    responses((status = 200, body = Vec<TransitionEvent>)), security(("operator" = [])))]
pub async fn remittance_events(
    State(st): State<AppState>,
    _op: Operator,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<Vec<TransitionEvent>>> {
    let id = parse_id(&id)?;
    Ok(ApiJson(st.engine.history(&id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `next_cursor` of the previous page (`<milliseconds>_<id>`).
    #[param(nullable = false, max_length = 200, pattern = "^[0-9]{1,18}_[!-~]{1,180}$")]
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50); a page holds at most the node's `page_limit_max` (default 200).
    #[param(nullable = false, minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Only these states: one, or several separated by commas.
    #[param(
        nullable = false,
        max_length = 400,
        pattern = "^(quoted|on_hold|pending_funds|funds_locked|payout_assigned|payout_accepted|paid|settled|refund_pending|refunded|expired|failed|cancelled)(,(quoted|on_hold|pending_funds|funds_locked|payout_assigned|payout_accepted|paid|settled|refund_pending|refunded|expired|failed|cancelled))*$"
    )]
    pub state: Option<String>,
    #[param(nullable = false, max_length = 200)]
    pub sender_user_id: Option<String>,
    #[param(nullable = false, max_length = 200)]
    pub sender_address: Option<String>,
    /// A partner id: 1 to 2^63 − 1.
    #[param(nullable = false, minimum = 1, maximum = 9_223_372_036_854_775_807_i64)]
    pub partner_id: Option<u64>,
}

/// The largest page size a caller may ask for (pages hold at most the node's `page_limit_max`).
pub(crate) const PAGE_LIMIT_MAX: u32 = 500;

/// A page size from a query: absent → `default`; outside 1 to [`PAGE_LIMIT_MAX`] → 422.
pub(crate) fn page_limit(limit: Option<u32>, default: u32) -> Result<u32, Problem> {
    match limit {
        None => Ok(default),
        Some(l) if (1..=PAGE_LIMIT_MAX).contains(&l) => Ok(l),
        Some(_) => Err(Problem::validation(format!(
            "limit must be 1 to {PAGE_LIMIT_MAX}"
        ))),
    }
}

/// Remittances, newest first (operator).
#[utoipa::path(get, path = "/v1/remittances", tag = "remittances", params(ListParams),
    responses((status = 200, body = Page<Remittance>), (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn list_remittances(
    State(st): State<AppState>,
    _op: Operator,
    ApiQuery(p): ApiQuery<ListParams>,
) -> ApiResult<ApiJson<Page<Remittance>>> {
    let mut states = Vec::new();
    if let Some(s) = &p.state {
        for part in s.split(',') {
            states.push(
                RState::parse(part).ok_or_else(|| Problem::validation(format!("unknown state {part:?}")))?,
            );
        }
    }
    let limit = page_limit(p.limit, 50)?;
    for (name, value) in [
        ("sender_user_id", &p.sender_user_id),
        ("sender_address", &p.sender_address),
        ("cursor", &p.cursor),
    ] {
        if value.as_ref().is_some_and(|v| v.chars().count() > 200) {
            return Err(Problem::validation(format!(
                "{name} must be at most 200 characters"
            )));
        }
    }
    if let Some(id) = p.partner_id
        && PartnerId::new(id).is_err()
    {
        return Err(Problem::validation("partner_id must be 1 to 2^63 - 1"));
    }
    let filter = RemittanceFilter {
        sender_user_id: p.sender_user_id,
        recipient_phone: None,
        sender_address: p.sender_address,
        partner_id: p.partner_id,
        states,
    };
    Ok(ApiJson(
        st.engine
            .list_remittances(&filter, p.cursor.as_deref(), limit)
            .await?,
    ))
}

/// Cancel before the funds are locked. Custodial remittances need the operator token.
#[utoipa::path(post, path = "/v1/remittances/{id}/cancel", tag = "remittances",
    params(("id" = String, Path, description = "Remittance id (0x…)"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    responses((status = 200, body = Remittance), (status = 409, description = "Too late to cancel", body = Problem, content_type = "application/problem+json")))]
pub async fn cancel(
    State(st): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<Remittance>> {
    let id = parse_id(&id)?;
    let r = st
        .engine
        .remittance(&id)
        .await?
        .ok_or_else(|| Problem::not_found("remittance not found"))?;
    if r.custodial && !is_operator(&st, &headers) {
        return Err(Problem::unauthorized(
            "cancelling a custodial remittance needs the operator token",
        ));
    }
    Ok(ApiJson(st.engine.cancel(&id, None).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Last `seq` seen (exclusive); 0 for the beginning.
    #[param(nullable = false, minimum = 0)]
    pub after: Option<i64>,
    /// Page size, 1 to 500 (default 100); a page holds at most the node's `page_limit_max` (default 200).
    #[param(nullable = false, minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// The feed of every transition, oldest first (operator).
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventParams),
    responses((status = 200, body = Vec<TransitionEvent>)), security(("operator" = [])))]
pub async fn events(
    State(st): State<AppState>,
    _op: Operator,
    ApiQuery(p): ApiQuery<EventParams>,
) -> ApiResult<ApiJson<Vec<TransitionEvent>>> {
    let after = p.after.unwrap_or(0);
    if after < 0 {
        return Err(Problem::validation("after must not be negative"));
    }
    let limit = page_limit(p.limit, 100)?;
    Ok(ApiJson(st.engine.events_after(after, limit, None).await?))
}

/// The ledger balance of an address (as indexed from the chain).
#[utoipa::path(get, path = "/v1/balances/{address}", tag = "wallets",
    params(("address" = String, Path, description = "0x address (40 hex digits)", pattern = "^0x[0-9a-fA-F]{40}$")),
    responses((status = 200, body = Balance),
              (status = 422, description = "Not an address", body = Problem, content_type = "application/problem+json")))]
pub async fn balance(
    State(st): State<AppState>,
    ApiPath(address): ApiPath<String>,
) -> ApiResult<ApiJson<Balance>> {
    Ok(ApiJson(st.engine.balance(&address).await?))
}

/// A remittance id from a path: one that cannot be an id names no remittance (404).
pub(crate) fn parse_id(id: &str) -> Result<RemittanceId, Problem> {
    RemittanceId::parse(id).map_err(|e| Problem::not_found(e.to_string()))
}

/// A partner id from a path: one that cannot be an id names no partner (404).
pub(crate) fn partner_id(id: u64) -> Result<PartnerId, Problem> {
    PartnerId::new(id).map_err(|_| Problem::not_found("partner not found"))
}
