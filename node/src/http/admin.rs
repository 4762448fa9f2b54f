//! Operator endpoints (`/v1/admin/...`, bearer operator token): partners, rates, mid-market rates, users, the
//! payout path until a partner integrates, and the ledger.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::schema::Type;

use super::AppState;
use super::api::{parse_id, partner_id};
use super::auth::Operator;
use super::problem::{ApiJson, ApiPath, Problem};
use crate::engine::{NewPartner, NewUser, Partner, PayoutProof, Rate, RateInput, Remittance, User, ledger};

type ApiResult<T> = Result<T, Problem>;

/// Register a partner (also run `setPartner` on the escrow: `remesa partner add` does both).
#[utoipa::path(post, path = "/v1/admin/partners", tag = "admin", request_body = NewPartner,
    responses((status = 201, body = Partner), (status = 409, body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn add_partner(
    State(st): State<AppState>,
    _op: Operator,
    ApiJson(p): ApiJson<NewPartner>,
) -> ApiResult<impl IntoResponse> {
    let partner = st.engine.add_partner(p).await?;
    if let Some(chain) = &st.chain
        && let Err(e) = chain
            .register_partner_on_chain(partner.id, &partner.settlement_address, &partner.signer_address)
            .await
    {
        tracing::warn!(target: "http::admin", partner_id = partner.id, error = %e, "partner not registered on chain");
    }
    Ok((StatusCode::CREATED, ApiJson(partner)))
}

#[utoipa::path(get, path = "/v1/admin/partners", tag = "admin",
    responses((status = 200, body = Vec<Partner>)), security(("operator" = [])))]
pub async fn list_partners(State(st): State<AppState>, _op: Operator) -> ApiResult<ApiJson<Vec<Partner>>> {
    Ok(ApiJson(st.engine.list_partners().await?))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct StatusBody {
    /// `active` or `suspended`.
    #[schema(pattern = "^(active|suspended)$")]
    pub status: String,
}

#[utoipa::path(post, path = "/v1/admin/partners/{id}/status", tag = "admin", request_body = StatusBody,
    params(("id" = String, Path, pattern = "^[0-9]{1,19}$", description = "The partner's id, in digits")), responses((status = 200, body = Partner)), security(("operator" = [])))]
pub async fn partner_status(
    State(st): State<AppState>,
    _op: Operator,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<StatusBody>,
) -> ApiResult<ApiJson<Partner>> {
    Ok(ApiJson(
        st.engine
            .set_partner_status(path_partner_id(&id)?, &b.status)
            .await?,
    ))
}

/// Post a partner's rates (operator path; partners use `PUT /v1/partner/rates`).
#[utoipa::path(put, path = "/v1/admin/partners/{id}/rates", tag = "admin", request_body = Vec<RateInput>,
    params(("id" = String, Path, pattern = "^[0-9]{1,19}$", description = "The partner's id, in digits")), responses((status = 200, body = Vec<Rate>)), security(("operator" = [])))]
pub async fn set_rates(
    State(st): State<AppState>,
    _op: Operator,
    ApiPath(id): ApiPath<String>,
    ApiJson(rates): ApiJson<Vec<RateInput>>,
) -> ApiResult<ApiJson<Vec<Rate>>> {
    Ok(ApiJson(st.engine.set_rates(path_partner_id(&id)?, rates).await?))
}

/// A partner id from a path, as the document states it: 1 to 19 digits (400 otherwise, where `u64` would also take
/// `+5`; 19 digits always fit a `u64`), and 404 for a number that cannot be a partner.
fn path_partner_id(id: &str) -> Result<crate::domain::PartnerId, Problem> {
    if id.is_empty() || id.len() > 19 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::bad_request("the partner id must be 1 to 19 digits"));
    }
    partner_id(id.parse().map_err(|_| Problem::not_found("partner not found"))?)
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"rate": "7.70"}))]
pub struct MidRateBody {
    /// Payout currency per USD, a positive decimal string.
    #[schema(pattern = "^([1-9][0-9]{0,17}(\\.[0-9]{1,12})?|0?\\.[0-9]{0,11}[1-9])$")]
    pub rate: String,
}

/// Set the mid-market reference rate of a currency (for the all-in cost in quotes).
#[utoipa::path(put, path = "/v1/admin/fx/{currency}", tag = "admin", request_body = MidRateBody,
    params(("currency" = String, Path, description = "ISO 4217 code (any case)", pattern = "^[A-Za-z]{3}$")),
    responses((status = 204)), security(("operator" = [])))]
pub async fn set_mid_rate(
    State(st): State<AppState>,
    _op: Operator,
    ApiPath(currency): ApiPath<String>,
    ApiJson(b): ApiJson<MidRateBody>,
) -> ApiResult<StatusCode> {
    // A path that names no currency names no resource: 404, as an unknown id does.
    crate::domain::parse_currency(&currency).map_err(|e| Problem::not_found(e.to_string()))?;
    st.engine.set_mid_market_rate(&currency, &b.rate).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Register a user (custodial account derived by the node unless `self_custody_address` is given).
#[utoipa::path(post, path = "/v1/admin/users", tag = "admin", request_body = NewUser,
    responses((status = 201, body = User), (status = 200, description = "Already registered", body = User)),
    security(("operator" = [])))]
pub async fn register_user(
    State(st): State<AppState>,
    _op: Operator,
    ApiJson(u): ApiJson<NewUser>,
) -> ApiResult<impl IntoResponse> {
    let (user, created) = st.engine.register_user(u).await?;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        ApiJson(user),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserLookup {
    /// The chat platform (`whatsapp`, `telegram`, `terminal`, …).
    pub channel: String,
    /// The user's id on that platform.
    pub external_id: String,
}

/// Find a user by chat identity.
#[utoipa::path(get, path = "/v1/admin/users", tag = "admin", params(UserLookup),
    responses((status = 200, body = User), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn find_user(
    State(st): State<AppState>,
    _op: Operator,
    super::problem::ApiQuery(q): super::problem::ApiQuery<UserLookup>,
) -> ApiResult<ApiJson<User>> {
    st.engine
        .find_user_by_chat(&q.channel, &q.external_id)
        .await?
        .map(ApiJson)
        .ok_or_else(|| Problem::not_found("user not found"))
}

#[utoipa::path(get, path = "/v1/admin/users/{id}", tag = "admin", params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn get_user(
    State(st): State<AppState>,
    _op: Operator,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<User>> {
    st.engine
        .user(&id)
        .await?
        .map(ApiJson)
        .ok_or_else(|| Problem::not_found("user not found"))
}

/// Mark a payout accepted for its partner (operator path until the partner integrates).
#[utoipa::path(post, path = "/v1/admin/payouts/{id}/accept", tag = "admin", params(("id" = String, Path)),
    responses((status = 200, body = Remittance)), security(("operator" = [])))]
pub async fn payout_accept(
    State(st): State<AppState>,
    _op: Operator,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<Remittance>> {
    let id = parse_id(&id)?;
    let r = st
        .engine
        .remittance(&id)
        .await?
        .ok_or_else(|| Problem::not_found("remittance not found"))?;
    let partner = partner_id(r.partner_id)?;
    Ok(ApiJson(st.engine.payout_accepted(&id, partner).await?))
}

/// Mark a payout paid (pickup code for cash, else a reference): queues the release to the partner.
#[utoipa::path(post, path = "/v1/admin/payouts/{id}/complete", tag = "admin", request_body = PayoutProof,
    params(("id" = String, Path)), responses((status = 200, body = Remittance)), security(("operator" = [])))]
pub async fn payout_complete(
    State(st): State<AppState>,
    _op: Operator,
    ApiPath(id): ApiPath<String>,
    ApiJson(proof): ApiJson<PayoutProof>,
) -> ApiResult<ApiJson<Remittance>> {
    let id = parse_id(&id)?;
    let r = st
        .engine
        .remittance(&id)
        .await?
        .ok_or_else(|| Problem::not_found("remittance not found"))?;
    let partner = partner_id(r.partner_id)?;
    Ok(ApiJson(st.engine.payout_paid(&id, partner, proof).await?))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct FailBody {
    pub reason: String,
}

/// Mark a payout failed: the remittance is refunded to the sender at its expiry.
#[utoipa::path(post, path = "/v1/admin/payouts/{id}/fail", tag = "admin", request_body = FailBody,
    params(("id" = String, Path)), responses((status = 200, body = Remittance)), security(("operator" = [])))]
pub async fn payout_fail(
    State(st): State<AppState>,
    _op: Operator,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<FailBody>,
) -> ApiResult<ApiJson<Remittance>> {
    let id = parse_id(&id)?;
    let r = st
        .engine
        .remittance(&id)
        .await?
        .ok_or_else(|| Problem::not_found("remittance not found"))?;
    let partner = partner_id(r.partner_id)?;
    Ok(ApiJson(
        st.engine.payout_failed(&id, partner, &b.reason, None).await?,
    ))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct LedgerReport {
    pub entries: u64,
    /// Account → balance in base units: `[account, balance]` pairs.
    #[schema(schema_with = balance_pairs)]
    pub balances: Vec<(String, i64)>,
}

/// `[[account, balance], …]`: pairs of a string and an integer. Stated as arrays of exactly two items, each a
/// string or an integer (not `prefixItems`, which the tools that read this document do not all handle).
fn balance_pairs() -> utoipa::openapi::Array {
    tuples(2, &[Type::String, Type::Integer])
}

/// `[[kind, status, count], …]`: triples of two strings and an integer (see [`balance_pairs`]).
fn job_count_triples() -> utoipa::openapi::Array {
    tuples(3, &[Type::String, Type::Integer])
}

fn tuples(n: usize, kinds: &[Type]) -> utoipa::openapi::Array {
    use utoipa::openapi::{ArrayBuilder, ObjectBuilder, OneOfBuilder};
    let mut item = OneOfBuilder::new();
    for kind in kinds {
        item = item.item(ObjectBuilder::new().schema_type(kind.clone()));
    }
    let tuple = ArrayBuilder::new()
        .items(utoipa::openapi::schema::ArrayItems::RefOrSchema(Box::new(
            utoipa::openapi::schema::Schema::OneOf(item.build()).into(),
        )))
        .min_items(Some(n))
        .max_items(Some(n));
    ArrayBuilder::new().items(tuple).build()
}

/// Ledger balances (every entry is checked to balance).
#[utoipa::path(get, path = "/v1/admin/ledger", tag = "admin", responses((status = 200, body = LedgerReport)), security(("operator" = [])))]
pub async fn ledger_report(State(st): State<AppState>, _op: Operator) -> ApiResult<ApiJson<LedgerReport>> {
    let entries = ledger::check_balanced(&st.db.pool).await?;
    let balances = ledger::balances(&st.db.pool).await?;
    Ok(ApiJson(LedgerReport { entries, balances }))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct ReconcileReport {
    /// The indexer's cursor (the block the ledger describes).
    pub block: Option<u64>,
    pub ledger_escrow_base_units: String,
    pub chain_escrow_base_units: String,
    pub ledger_entries: u64,
    pub matches: bool,
    /// Outbox jobs per kind and status: `[kind, status, count]` triples.
    #[schema(schema_with = job_count_triples)]
    pub chain_jobs: Vec<(String, String, u64)>,
}

/// The ledger's escrow account against the escrow contract's balance at the indexed block, with the outbox's
/// job counts (what `remesa reconcile` prints).
#[utoipa::path(get, path = "/v1/admin/reconcile", tag = "admin",
    responses((status = 200, body = ReconcileReport), (status = 503, body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn reconcile(State(st): State<AppState>, _op: Operator) -> ApiResult<ApiJson<ReconcileReport>> {
    let r = crate::engine::reconcile::reconcile(&st.db, st.chain.as_ref())
        .await
        .map_err(|e| {
            tracing::warn!(target: "http::admin", error = %e, "reconciliation failed");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "reconcile-unavailable",
                "Reconciliation unavailable",
                Some(e.to_string()),
            )
        })?;
    let jobs = crate::chain::outbox::job_counts(&st.db)
        .await
        .map_err(Problem::from)?;
    Ok(ApiJson(ReconcileReport {
        block: r.block,
        ledger_escrow_base_units: r.ledger_escrow_base_units.to_string(),
        chain_escrow_base_units: r.chain_escrow_base_units,
        ledger_entries: r.ledger_entries,
        matches: r.matches,
        chain_jobs: jobs
            .into_iter()
            .map(|(k, s, n)| (k.as_str().to_owned(), s, n))
            .collect(),
    }))
}

/// A page of failed chain jobs.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FailedJobsQuery {
    /// The last `job_id` of the previous page.
    #[param(nullable = false, max_length = 64)]
    pub before: Option<String>,
    /// 1 to 500 (default 100).
    #[param(nullable = false, minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// Chain jobs that failed for good, newest first, with the reason: a blacklisted payee, a refused authorization,
/// attempts used up. Releases, refunds and cancels among them leave the coins in the escrow and can be sent again.
#[utoipa::path(get, path = "/v1/admin/chain/jobs/failed", tag = "admin", params(FailedJobsQuery),
    responses((status = 200, body = Vec<crate::chain::outbox::FailedJobView>)), security(("operator" = [])))]
pub async fn failed_chain_jobs(
    State(st): State<AppState>,
    _op: Operator,
    super::problem::ApiQuery(q): super::problem::ApiQuery<FailedJobsQuery>,
) -> ApiResult<ApiJson<Vec<crate::chain::outbox::FailedJobView>>> {
    let limit = super::api::page_limit(q.limit, 100)?;
    if q.before.as_ref().is_some_and(|b| b.chars().count() > 64) {
        return Err(Problem::validation(
            "before must be a job id (at most 64 characters)",
        ));
    }
    let jobs = crate::chain::outbox::failed_jobs(&st.db, q.before.as_deref(), limit)
        .await
        .map_err(Problem::from)?;
    Ok(ApiJson(jobs))
}

/// Sends a failed release, refund or cancel again, its attempts reset — once what made it fail is resolved (e.g.
/// the token's issuer lifted a blacklist). Logged with the job id.
#[utoipa::path(post, path = "/v1/admin/chain/jobs/{id}/retry", tag = "admin", params(("id" = String, Path)),
    responses((status = 204, description = "Back in the queue"),
              (status = 404, body = Problem, content_type = "application/problem+json",
               description = "No failed release, refund or cancel job with this id")),
    security(("operator" = [])))]
pub async fn retry_chain_job(
    State(st): State<AppState>,
    _op: Operator,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    if id.len() > 64 {
        return Err(Problem::not_found("no such job"));
    }
    let retried = crate::chain::outbox::retry_failed_job(&st.db, &id)
        .await
        .map_err(Problem::from)?;
    if !retried {
        return Err(Problem::not_found(
            "no failed release, refund or cancel job with this id",
        ));
    }
    tracing::info!(target: "http::admin", job_id = id, "operator sent a failed chain job again");
    Ok(StatusCode::NO_CONTENT)
}
