//! Operator compliance endpoints (`/v1/admin/sanctions…`, `/v1/admin/compliance/holds`, bearer operator token):
//! load and inspect the sanctions lists, screen a name, decide on held remittances; the KYC review queue, a
//! customer, fields an operator enters, and decisions (the chat's notifier tells the customer).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::api::parse_id;
use super::auth::Operator;
use super::problem::{ApiJson, ApiPath, ApiQuery, Problem};
use crate::engine::Remittance;
use crate::engine::cases::{CaseResolution, ErrorCase};
use crate::engine::customers::{Customer, KycDecision, KycSubmission};
use crate::engine::screening::{HeldRemittance, HoldDecision, ListMeta, ListUpload, SanctionsStatus};

type ApiResult<T> = Result<T, Problem>;

/// Largest list upload (`PUT /v1/admin/sanctions/lists`): the three OFAC files or the UN XML, as JSON strings.
pub const LIST_UPLOAD_BYTES_MAX: usize = 64 * 1024 * 1024;

/// The sanctions lists in force and the screening settings.
#[utoipa::path(get, path = "/v1/admin/sanctions", tag = "compliance",
    responses((status = 200, body = SanctionsStatus)), security(("operator" = [])))]
pub async fn sanctions_status(State(st): State<AppState>, _op: Operator) -> ApiJson<SanctionsStatus> {
    ApiJson(st.engine.sanctions_status())
}

/// Load a list (replacing the previous list of the same source). Parsed whole first: a malformed or truncated file
/// is refused with 422 naming the file, line and reason, and the list in force stays. `remesa sanctions load`
/// sends this. Body up to 64 MiB.
#[utoipa::path(put, path = "/v1/admin/sanctions/lists", tag = "compliance", request_body = ListUpload,
    responses((status = 200, body = ListMeta),
              (status = 422, body = Problem, content_type = "application/problem+json",
               description = "The list does not parse (`reason`: `list-invalid`); the old list stays in force")),
    security(("operator" = [])))]
pub async fn load_list(
    State(st): State<AppState>,
    _op: Operator,
    ApiJson(upload): ApiJson<ListUpload>,
) -> ApiResult<ApiJson<ListMeta>> {
    // Parsing 20,000 entries is CPU work: off the async workers.
    let parsed = tokio::task::spawn_blocking(move || upload.parse())
        .await
        .map_err(|_| Problem::internal())?
        .map_err(|e| Problem::validation(e.to_string()).with_reason("list-invalid"))?;
    let meta = st.engine.load_sanctions_list(parsed, "operator api").await?;
    tracing::info!(target: "audit", source = %meta.source, entries = meta.entries, "operator loaded a sanctions list");
    Ok(ApiJson(meta))
}

/// A name to screen.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"name": "Joaquin Guzman Loera", "birth_year": 1957, "country": "MX"}))]
pub struct ScreenBody {
    #[schema(max_length = 500)]
    pub name: String,
    #[schema(maximum = 65535)]
    pub birth_year: Option<u16>,
    /// ISO 3166-1 alpha-2, or a country's name.
    pub country: Option<String>,
}

/// One entry a screened name matched.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct ScreenHit {
    pub source: String,
    pub entry_id: String,
    pub matched_name: String,
    /// Similarity, 0 to 1.
    pub score: f64,
}

/// Screen one name against the lists in force, at the configured threshold (nothing is recorded).
#[utoipa::path(post, path = "/v1/admin/sanctions/screen", tag = "compliance", request_body = ScreenBody,
    responses((status = 200, body = Vec<ScreenHit>)), security(("operator" = [])))]
pub async fn screen(
    State(st): State<AppState>,
    _op: Operator,
    ApiJson(b): ApiJson<ScreenBody>,
) -> ApiResult<ApiJson<Vec<ScreenHit>>> {
    if b.name.chars().count() > 500 {
        return Err(Problem::validation("name must be at most 500 characters"));
    }
    Ok(ApiJson(
        st.engine
            .screen_name(&b.name, b.birth_year, b.country.as_deref())
            .into_iter()
            .map(|h| ScreenHit {
                source: crate::engine::screening::source_name(h.source).to_owned(),
                entry_id: h.entry_id,
                matched_name: h.matched_name,
                score: h.score,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HoldsQuery {
    /// 1 to the page limit (default 100).
    /// 1 to 500 (default 100); a page holds at most the node's `page_limit_max` (default 200).
    #[param(nullable = false, minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// The review queue: remittances a screening hit holds, oldest first, with the matched entries and scores.
#[utoipa::path(get, path = "/v1/admin/compliance/holds", tag = "compliance", params(HoldsQuery),
    responses((status = 200, body = Vec<HeldRemittance>)), security(("operator" = [])))]
pub async fn holds(
    State(st): State<AppState>,
    _op: Operator,
    ApiQuery(q): ApiQuery<HoldsQuery>,
) -> ApiResult<ApiJson<Vec<HeldRemittance>>> {
    Ok(ApiJson(
        st.engine
            .held_remittances(super::api::page_limit(q.limit, 100)?)
            .await?,
    ))
}

/// Release a held remittance: it goes on with a fresh authorization (signed by the node for a custodial sender,
/// by the sender otherwise). Recorded with the reviewer and reason.
#[utoipa::path(post, path = "/v1/admin/remittances/{id}/hold/release", tag = "compliance",
    request_body = HoldDecision, params(("id" = String, Path)),
    responses((status = 200, body = Remittance),
              (status = 409, body = Problem, content_type = "application/problem+json",
               description = "Not on hold, or too little of its lifetime is left")),
    security(("operator" = [])))]
pub async fn release_hold(
    State(st): State<AppState>,
    _op: Operator,
    ApiPath(id): ApiPath<String>,
    ApiJson(d): ApiJson<HoldDecision>,
) -> ApiResult<ApiJson<Remittance>> {
    Ok(ApiJson(st.engine.release_hold(&parse_id(&id)?, &d).await?))
}

/// Reject a held remittance: cancelled, nothing was locked; the sender is told in neutral words. Recorded with the
/// reviewer and reason.
#[utoipa::path(post, path = "/v1/admin/remittances/{id}/hold/reject", tag = "compliance",
    request_body = HoldDecision, params(("id" = String, Path)),
    responses((status = 200, body = Remittance),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "Not on hold")),
    security(("operator" = [])))]
pub async fn reject_hold(
    State(st): State<AppState>,
    _op: Operator,
    ApiPath(id): ApiPath<String>,
    ApiJson(d): ApiJson<HoldDecision>,
) -> ApiResult<(StatusCode, ApiJson<Remittance>)> {
    Ok((
        StatusCode::OK,
        ApiJson(st.engine.reject_hold(&parse_id(&id)?, &d).await?),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomersQuery {
    /// 1 to the page limit (default 100).
    /// 1 to 500 (default 100); a page holds at most the node's `page_limit_max` (default 200).
    #[param(nullable = false, minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// The KYC review queue: customers whose request for a higher tier waits for an operator, oldest first.
#[utoipa::path(get, path = "/v1/admin/customers/review", tag = "compliance", params(CustomersQuery),
    responses((status = 200, body = Vec<Customer>)), security(("operator" = [])))]
pub async fn kyc_queue(
    State(st): State<AppState>,
    _op: Operator,
    ApiQuery(q): ApiQuery<CustomersQuery>,
) -> ApiResult<ApiJson<Vec<Customer>>> {
    Ok(ApiJson(
        st.engine
            .kyc_review_queue(super::api::page_limit(q.limit, 100)?)
            .await?,
    ))
}

/// A customer: tier in force, status, the fields given and what the next tier still needs.
#[utoipa::path(get, path = "/v1/admin/customers/{user_id}", tag = "compliance", params(("user_id" = String, Path)),
    responses((status = 200, body = Customer), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn customer(
    State(st): State<AppState>,
    _op: Operator,
    ApiPath(user_id): ApiPath<String>,
) -> ApiResult<ApiJson<Customer>> {
    Ok(ApiJson(st.engine.customer(user_id.trim()).await?))
}

/// Give a customer's fields for a higher tier (e.g. a document reference checked at a branch for tier 2). Each field
/// is parsed; complete tier-1 fields that screen clear grant tier 1 at once; tier 2 waits for a decision.
#[utoipa::path(post, path = "/v1/admin/customers/{user_id}/kyc", tag = "compliance", request_body = KycSubmission,
    params(("user_id" = String, Path)),
    responses((status = 200, body = Customer),
              (status = 409, body = Problem, content_type = "application/problem+json",
               description = "Already at that tier, or under review")),
    security(("operator" = [])))]
pub async fn submit_kyc(
    State(st): State<AppState>,
    _op: Operator,
    ApiPath(user_id): ApiPath<String>,
    ApiJson(sub): ApiJson<KycSubmission>,
) -> ApiResult<ApiJson<Customer>> {
    Ok(ApiJson(
        st.engine.submit_kyc(user_id.trim(), sub, "operator").await?,
    ))
}

/// Decide on a customer's request under review: approve (the tier is granted), reject (the tier in force stays) or
/// request info (the named fields are cleared and asked for again). Recorded with the reviewer and reason; the
/// customer is told in chat (neutral words, never the reviewer's reason for a rejection).
#[utoipa::path(post, path = "/v1/admin/customers/{user_id}/decision", tag = "compliance", request_body = KycDecision,
    params(("user_id" = String, Path)),
    responses((status = 200, body = Customer),
              (status = 409, body = Problem, content_type = "application/problem+json",
               description = "No request waiting for a decision")),
    security(("operator" = [])))]
pub async fn decide_kyc(
    State(st): State<AppState>,
    _op: Operator,
    ApiPath(user_id): ApiPath<String>,
    ApiJson(d): ApiJson<KycDecision>,
) -> ApiResult<ApiJson<Customer>> {
    Ok(ApiJson(st.engine.decide_kyc(user_id.trim(), &d).await?))
}

/// Open error-resolution cases (a sender reported a problem with a transfer), oldest first, each with the date the
/// answer is due (90 days after the report).
#[utoipa::path(get, path = "/v1/admin/cases", tag = "compliance", params(CustomersQuery),
    responses((status = 200, body = Vec<ErrorCase>)), security(("operator" = [])))]
pub async fn cases(
    State(st): State<AppState>,
    _op: Operator,
    ApiQuery(q): ApiQuery<CustomersQuery>,
) -> ApiResult<ApiJson<Vec<ErrorCase>>> {
    Ok(ApiJson(
        st.engine
            .open_cases(super::api::page_limit(q.limit, 100)?)
            .await?,
    ))
}

/// Answer and close a case (recorded with the reviewer).
#[utoipa::path(post, path = "/v1/admin/cases/{id}/resolve", tag = "compliance", request_body = CaseResolution,
    params(("id" = String, Path)),
    responses((status = 200, body = ErrorCase),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "Already resolved")),
    security(("operator" = [])))]
pub async fn resolve_case(
    State(st): State<AppState>,
    _op: Operator,
    ApiPath(id): ApiPath<String>,
    ApiJson(r): ApiJson<CaseResolution>,
) -> ApiResult<ApiJson<ErrorCase>> {
    Ok(ApiJson(st.engine.resolve_case(&id, &r).await?))
}
