//! `/v1/partner/agents`: a partner manages the counter agents who sign in to `/partner/` for it. Signed like the
//! rest of the partner API; an agent acts for the partner that created it and no other.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::api::{ApiError, ApiResult, PartnerState, fingerprint, idempotent, parse_json, partner_id};
use super::auth::AuthenticatedPartner;
use crate::domain::account::{DisplayName, Password, Role, Username};
use crate::engine::accounts::{Account, NewAccount};

pub(super) fn routes() -> Router<PartnerState> {
    Router::new()
        .route("/v1/partner/agents", get(list_agents).post(create_agent))
        .route("/v1/partner/agents/{username}/disable", post(disable_agent))
        .route("/v1/partner/agents/{username}/enable", post(enable_agent))
}

/// A new counter agent.
#[derive(Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"username": "ana.lopez", "display_name": "Ana López", "password": "a long passphrase of hers"}))]
pub struct NewAgent {
    /// 3 to 64 characters: lower-case letters, digits, `.`, `_`, `-`, `@`, starting with a letter or digit (upper
    /// case is folded). Unique across the node.
    #[schema(
        min_length = 3,
        max_length = 64,
        pattern = "^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$"
    )]
    pub username: String,
    /// As the counter page shows it.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub display_name: String,
    /// 10 to 128 characters, no control characters. Stored only as an argon2id hash; give it to the agent in
    /// person.
    #[schema(
        min_length = 10,
        max_length = 128,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub password: String,
}

impl std::fmt::Debug for NewAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAgent")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A counter agent of the signing partner.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Agent {
    pub username: String,
    pub display_name: String,
    /// False once disabled: the agent cannot sign in, and its sessions ended.
    pub active: bool,
    pub created_at_unix_ms: i64,
}

impl From<Account> for Agent {
    fn from(a: Account) -> Self {
        Self {
            username: a.username,
            display_name: a.display_name,
            active: a.active,
            created_at_unix_ms: a.created_at_unix_ms,
        }
    }
}

/// The signing partner's agents.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentList {
    pub items: Vec<Agent>,
}

fn username(s: &str) -> ApiResult<Username> {
    Username::parse(s).map_err(|_| ApiError::NotFound("agent"))
}

#[utoipa::path(post, path = "/v1/partner/agents", tag = "partner", security(("http_signature" = [])),
    description = "Creates a counter agent who signs in to the node's counter page (`/partner/`) and pays out this \
        partner's payouts there. Honours `Idempotency-Key`.",
    request_body = NewAgent,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key + same request → the same response")),
    responses((status = 201, description = "The agent", body = Agent),
              (status = 409, description = "The username is taken (by any partner's agent or an operator)")))]
pub(super) async fn create_agent(
    State(st): State<PartnerState>,
    Extension(p): Extension<AuthenticatedPartner>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fp = fingerprint("agent", "", &body);
    idempotent(&st, &p, &headers, "agent", &fp, || async {
        let (_, pid) = partner_id(&p)?;
        let req: NewAgent = parse_json(&body)?;
        let bad = |e: crate::domain::account::AccountError| ApiError::Unprocessable(e.to_string());
        let account = st
            .engine
            .create_account(NewAccount {
                username: Username::parse(&req.username).map_err(bad)?,
                password: Password::parse(&req.password).map_err(bad)?,
                display_name: DisplayName::parse(&req.display_name).map_err(bad)?,
                role: Role::Agent,
                partner: Some(pid),
            })
            .await?;
        Ok((
            StatusCode::CREATED,
            serde_json::to_value(Agent::from(account)).unwrap_or_default(),
        ))
    })
    .await
}

#[utoipa::path(get, path = "/v1/partner/agents", tag = "partner", security(("http_signature" = [])),
    description = "The signing partner's counter agents (at most 500), by username.",
    responses((status = 200, description = "Agents", body = AgentList)))]
pub(super) async fn list_agents(
    State(st): State<PartnerState>,
    Extension(p): Extension<AuthenticatedPartner>,
) -> ApiResult<Json<AgentList>> {
    let (_, pid) = partner_id(&p)?;
    let items = st
        .engine
        .agents_of(pid)
        .await?
        .into_iter()
        .map(Agent::from)
        .collect();
    Ok(Json(AgentList { items }))
}

async fn set_active(
    st: &PartnerState,
    p: &AuthenticatedPartner,
    name: &str,
    active: bool,
) -> ApiResult<(StatusCode, serde_json::Value)> {
    let (_, pid) = partner_id(p)?;
    let u = username(name)?;
    st.engine.set_account_active(&u, Some(pid), active).await?;
    let agent = st.engine.account(&u).await?.ok_or(ApiError::NotFound("agent"))?;
    Ok((
        StatusCode::OK,
        serde_json::to_value(Agent::from(agent)).unwrap_or_default(),
    ))
}

#[utoipa::path(post, path = "/v1/partner/agents/{username}/disable", tag = "partner", security(("http_signature" = [])),
    description = "Disables an agent of the signing partner: it cannot sign in, and its open sessions end at once. \
        Repeating it is harmless.",
    params(("username" = String, Path, description = "The agent's username")),
    responses((status = 200, description = "The agent, now inactive", body = Agent),
              (status = 404, description = "No such agent of this partner")))]
pub(super) async fn disable_agent(
    State(st): State<PartnerState>,
    Extension(p): Extension<AuthenticatedPartner>,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let (s, v) = set_active(&st, &p, &name, false).await?;
    Ok((s, Json(v)))
}

#[utoipa::path(post, path = "/v1/partner/agents/{username}/enable", tag = "partner", security(("http_signature" = [])),
    description = "Enables a disabled agent of the signing partner again. Repeating it is harmless.",
    params(("username" = String, Path, description = "The agent's username")),
    responses((status = 200, description = "The agent, now active", body = Agent),
              (status = 404, description = "No such agent of this partner")))]
pub(super) async fn enable_agent(
    State(st): State<PartnerState>,
    Extension(p): Extension<AuthenticatedPartner>,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let (s, v) = set_active(&st, &p, &name, true).await?;
    Ok((s, Json(v)))
}
