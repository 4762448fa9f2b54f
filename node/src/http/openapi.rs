//! The OpenAPI document (`GET /openapi.json`), generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin, api, compliance};
use crate::engine;

#[derive(OpenApi)]
#[openapi(
    info(title = "Remesa node API", description = "Remittances through chat, settled on chain, paid out by partners. \
        Errors are RFC 9457 problem+json. Every POST accepts Idempotency-Key."),
    paths(
        api::create_quote, api::create_remittance, api::authorize, api::get_remittance, api::remittance_events,
        api::list_remittances, api::cancel, api::events, api::balance,
        admin::add_partner, admin::list_partners, admin::partner_status, admin::set_rates, admin::set_mid_rate,
        admin::register_user, admin::find_user, admin::get_user, admin::payout_accept, admin::payout_complete, admin::payout_fail,
        admin::ledger_report, admin::reconcile, admin::failed_chain_jobs, admin::retry_chain_job,
        compliance::sanctions_status, compliance::load_list, compliance::screen, compliance::holds,
        compliance::release_hold, compliance::reject_hold, compliance::kyc_queue, compliance::customer,
        compliance::submit_kyc, compliance::decide_kyc, compliance::cases, compliance::resolve_case,
        super::healthz, super::readyz, super::metrics,
    ),
    components(schemas(
        engine::Quote, engine::QuoteRequest, engine::CreateRemittance, engine::SenderRef, engine::Recipient,
        engine::Remittance, engine::AuthorizationInput, engine::AuthorizationRequest, engine::TransitionEvent,
        engine::State, engine::Partner, engine::NewPartner, engine::RateInput, engine::Rate, engine::User,
        engine::NewUser, engine::Balance, engine::PayoutProof, engine::Settlement, crate::domain::PayoutMethod,
        super::problem::Problem, admin::StatusBody, admin::MidRateBody, admin::FailBody,
        admin::LedgerReport, admin::ReconcileReport,
        engine::screening::ListUpload, engine::screening::ListMeta, engine::screening::SanctionsStatus,
        engine::screening::HeldRemittance, engine::screening::HoldDecision, engine::screening::PartyHit,
        engine::screening::Party, compliance::ScreenBody, compliance::ScreenHit,
        engine::customers::Customer, engine::customers::KycSubmission, engine::customers::KycDecision,
        engine::customers::KycAction, crate::domain::KycField, crate::domain::KycStatus,
        engine::cases::ErrorCase, engine::cases::CaseResolution,
    )),
    modifiers(&Security),
    tags((name = "quotes"), (name = "remittances"), (name = "events"), (name = "wallets"), (name = "admin"), (name = "compliance"), (name = "ops"))
)]
#[derive(Debug)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "operator",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("REMESA_OPERATOR_TOKEN"))
                    .build(),
            ),
        );
    }
}

/// The node's document; chat and partner documents are merged in by `app::openapi` (served at `/openapi.json`).
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The problems the shared layers answer on routes that accept what they check (`http::finish`, the extractors
/// of `problem.rs`, the operator token, the idempotency middleware), with the operations they apply to.
const LAYER_PROBLEMS: [(&str, Applies, &str); 7] = [
    (
        "400",
        Applies::Input,
        "Malformed request: unreadable JSON, a path segment or header (e.g. `Idempotency-Key`: 1 to 255 visible \
         ASCII characters) that does not parse",
    ),
    (
        "401",
        Applies::Secured,
        "Credentials missing or refused (operator: `Authorization: Bearer <REMESA_OPERATOR_TOKEN>`; partner: the \
         RFC 9421 signature, with `reason`)",
    ),
    ("404", Applies::PathParams, "Nothing with this id"),
    (
        "413",
        Applies::Body,
        "Request body over the node's limit (`http_body_bytes_max`)",
    ),
    ("415", Applies::Body, "The body is not `application/json`"),
    (
        "422",
        Applies::Input,
        "Invalid request: a field or query parameter of the wrong type or outside its rules",
    ),
    (
        "503",
        Applies::All,
        "Unavailable, nothing done or stored: the node is at capacity (`overloaded`: `http_in_flight_max` \
         requests in flight), the handler timed out (`http_timeout_ms`), the database is out of reach, out of space or restarting (`storage-unavailable`), the node is shutting down, or (admin) no \
         operator token is configured; retry after `Retry-After` seconds",
    ),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Applies {
    All,
    /// Operations with a request body.
    Body,
    /// Operations with a body or parameters.
    Input,
    /// Operations with a path parameter.
    PathParams,
    /// Operations that name a security scheme.
    Secured,
}

const PROBLEM_JSON: &str = "application/problem+json";

/// Completes the served document: every error response gets its `application/problem+json` body (the `Problem`
/// schema), and every operation documents the problems the shared layers can answer (see [`LAYER_PROBLEMS`]).
/// Handlers document their own statuses; this adds only what every route of a kind shares.
pub fn complete(doc: &utoipa::openapi::OpenApi) -> serde_json::Value {
    let mut v = serde_json::to_value(doc).unwrap_or_default();
    if let Some(paths) = v.get_mut("paths").and_then(serde_json::Value::as_object_mut) {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                    continue;
                }
                complete_operation(op);
            }
        }
    }
    v
}

fn complete_operation(op: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let params = op
        .get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has_body = op.get("requestBody").is_some();
    let has_path = params.iter().any(|p| p["in"] == "path");
    let secured = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|reqs| reqs.iter().any(|r| r.as_object().is_some_and(|o| !o.is_empty())));
    // `Idempotency-Key`: the middleware refuses anything but 1 to 255 visible ASCII characters (400).
    if let Some(Value::Array(ps)) = op.get_mut("parameters") {
        for p in ps.iter_mut() {
            if p["in"] == "header"
                && p["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case("idempotency-key"))
            {
                p["schema"] =
                    json!({"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"});
            }
        }
    }
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    for (status, applies, description) in LAYER_PROBLEMS {
        let applies = match applies {
            Applies::All => true,
            Applies::Body => has_body,
            Applies::Input => has_body || !params.is_empty(),
            Applies::PathParams => has_path,
            Applies::Secured => secured,
        };
        if applies && !responses.contains_key(status) {
            responses.insert(status.to_owned(), json!({"description": description}));
        }
    }
    let problem = json!({"schema": {"$ref": "#/components/schemas/Problem"}});
    for (status, response) in responses.iter_mut() {
        if !(status.starts_with('4') || status.starts_with('5')) || response.get("$ref").is_some() {
            continue;
        }
        if status == "503"
            && let Some(r) = response.as_object_mut()
        {
            r.entry("headers").or_insert_with(|| {
                json!({"Retry-After": {
                "description": "Seconds to wait before sending the request again",
                "schema": {"type": "integer", "minimum": 0}}})
            });
        }
        let content = response
            .as_object_mut()
            .map(|r| r.entry("content").or_insert_with(|| json!({})));
        if let Some(Value::Object(content)) = content {
            if content.is_empty() {
                content.insert(PROBLEM_JSON.to_owned(), problem.clone());
            } else if let Some(Value::Object(media)) = content.get_mut(PROBLEM_JSON)
                && !media.contains_key("schema")
            {
                media.insert("schema".to_owned(), problem["schema"].clone());
            }
        }
    }
}
