//! The OpenAPI document (`GET /openapi.json`), generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::problem::TYPE_PREFIX;
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

/// A rule a schema-valid request can still break: it depends on the node's state (a balance, the corridors a partner
/// serves) or on content no JSON Schema states (a point of the curve, a phone number that exists, a list that
/// parses). Each is stated on its operations' 422 response, as text and as `x-remesa-rules` (the problem's `type`,
/// and the `reason` or a pattern of the `detail` that tells it apart), so a client, or a fuzzer, can tell such a
/// refusal from a request the document wrongly allows.
struct Rule {
    /// `(method, path)` of every operation that applies it.
    operations: &'static [(&'static str, &'static str)],
    /// The problem type's slug (`https://remesa.dev/problems/<slug>`).
    slug: &'static str,
    reason: Option<&'static str>,
    /// A regular expression the `detail` contains a match of (ECMA-262 and Python `re` alike).
    detail_pattern: Option<&'static str>,
    rule: &'static str,
}

const SENDS: &[(&str, &str)] = &[("post", "/v1/quotes"), ("post", "/v1/remittances")];
const RATES: &[(&str, &str)] = &[
    ("put", "/v1/admin/partners/{id}/rates"),
    ("put", "/v1/partner/rates"),
];

const RULES: &[Rule] = &[
    Rule {
        operations: SENDS,
        slug: "no-route",
        reason: None,
        detail_pattern: None,
        rule: "a partner must serve the corridor, the payout method and the amount (`no-route`)",
    },
    Rule {
        operations: &[("post", "/v1/quotes")],
        slug: "validation",
        reason: None,
        detail_pattern: Some("is outside this corridor's limits"),
        rule: "the amount must be within the partner's `send_min` to `send_max` for the corridor",
    },
    Rule {
        operations: SENDS,
        slug: "recipient-not-registered",
        reason: None,
        detail_pattern: None,
        rule: "(`remesa_wallet`) the recipient's phone must have a Remesa wallet (`recipient-not-registered`)",
    },
    Rule {
        operations: &[
            ("post", "/v1/quotes"),
            ("post", "/v1/remittances"),
            ("post", "/v1/admin/users"),
        ],
        slug: "validation",
        reason: None,
        detail_pattern: Some("phone: not a phone number"),
        rule: "a phone number must exist in its country's numbering plan, not only look like E.164",
    },
    Rule {
        operations: &[("post", "/v1/remittances")],
        slug: "insufficient-funds",
        reason: None,
        detail_pattern: None,
        rule: "the sender's balance must cover the total (`insufficient-funds`)",
    },
    Rule {
        operations: &[("post", "/v1/remittances")],
        slug: "limit-exceeded",
        reason: None,
        detail_pattern: None,
        rule: "the send must fit the sender's tier limits (`limit-exceeded`)",
    },
    Rule {
        operations: &[("post", "/v1/remittances")],
        slug: "sender-name-required",
        reason: None,
        detail_pattern: None,
        rule: "under sanctions screening, the sender's name must be known (`sender-name-required`)",
    },
    Rule {
        operations: &[("post", "/v1/remittances")],
        slug: "travel-rule-data-required",
        reason: None,
        detail_pattern: None,
        rule: "above the travel-rule threshold, the sender's verified identity is needed (`travel-rule-data-required`)",
    },
    Rule {
        operations: &[("post", "/v1/remittances")],
        slug: "recipient-kyc-required",
        reason: None,
        detail_pattern: None,
        rule: "(`remesa_wallet`) above its threshold, the recipient must have verified their identity \
               (`recipient-kyc-required`)",
    },
    Rule {
        operations: &[("post", "/v1/quotes")],
        slug: "validation",
        reason: None,
        detail_pattern: Some("recipient_phone is required for payout method "),
        rule: "(`remesa_wallet`) `recipient_phone` is required",
    },
    Rule {
        operations: &[("post", "/v1/quotes")],
        slug: "validation",
        reason: None,
        detail_pattern: Some("a Remesa wallet holds "),
        rule: "(`remesa_wallet`) the currency, when given, must be the stablecoin's (`USD`)",
    },
    Rule {
        operations: &[
            ("post", "/v1/admin/users"),
            ("post", "/v1/admin/partners"),
            ("post", "/v1/remittances"),
        ],
        slug: "validation",
        reason: None,
        detail_pattern: Some("is the zero address"),
        rule: "an address must not be the zero address (money sent there is lost)",
    },
    Rule {
        operations: &[("post", "/v1/admin/partners")],
        slug: "validation",
        reason: None,
        detail_pattern: Some("webhook_url must be an http\\(s\\) URL"),
        rule: "`webhook_url` must parse as a URL (WHATWG) with a host",
    },
    Rule {
        operations: &[("post", "/v1/remittances/{id}/authorization")],
        slug: "validation",
        reason: None,
        detail_pattern: Some("^(authorization: |the authorization window )"),
        rule: "the signature must be the sender's EIP-3009 `ReceiveWithAuthorization` of this remittance's terms, \
               and its window open for at least another minute",
    },
    Rule {
        operations: &[("post", "/v1/admin/partners")],
        slug: "validation",
        reason: None,
        detail_pattern: Some("public_key is not a valid Ed25519 key"),
        rule: "`public_key` must be a point of the Ed25519 curve",
    },
    Rule {
        operations: RATES,
        slug: "validation",
        reason: None,
        detail_pattern: Some("is not among the partner's registered countries, currencies and methods"),
        rule: "each rate's corridor must be one the partner registered",
    },
    Rule {
        operations: RATES,
        slug: "validation",
        reason: None,
        detail_pattern: Some("send_max ≥ send_min"),
        rule: "`send_max` must not be below `send_min`",
    },
    Rule {
        operations: &[("put", "/v1/admin/sanctions/lists")],
        slug: "validation",
        reason: Some("list-invalid"),
        detail_pattern: None,
        rule: "the list must parse as the format it names (`reason`: `list-invalid`)",
    },
    Rule {
        operations: &[("post", "/v1/admin/customers/{user_id}/kyc")],
        slug: "validation",
        reason: None,
        detail_pattern: Some("^(full_name|birth_date|address|id_type|id_number|document_ref): "),
        rule: "each field is read as a person types it and must parse: a name, a date of birth in the past of \
               someone 18 or older, an address of 5 to 200 characters, a known ID type, an ID number of 3 to 40 \
               letters and digits; no control characters",
    },
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
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                    continue;
                }
                complete_operation(op);
                state_rules(method, path, op);
                if (method.as_str(), path.as_str()) == ("put", "/v1/admin/partners/{id}/rates") {
                    // A bare array body: utoipa has no attribute for its length.
                    if let Some(schema) = op.pointer_mut("/requestBody/content/application~1json/schema") {
                        schema["minItems"] = 1.into();
                        schema["maxItems"] = engine::RATES_PER_CALL_MAX.into();
                    }
                }
            }
        }
    }
    v
}

/// States the operation's [`RULES`] on its 422 response.
fn state_rules(method: &str, path: &str, op: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let rules: Vec<&Rule> = RULES
        .iter()
        .filter(|r| r.operations.contains(&(method, path)))
        .collect();
    let Some(Value::Object(response)) = op.pointer_mut("/responses/422") else {
        return;
    };
    if rules.is_empty() {
        return;
    }
    let text: Vec<&str> = rules.iter().map(|r| r.rule).collect();
    let description = response
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("Invalid request");
    let description = format!(
        "{description}. Also refused, for rules no JSON schema states: {}",
        text.join("; ")
    );
    response.insert("description".to_owned(), Value::String(description));
    let machine: Vec<Value> = rules
        .iter()
        .map(|r| {
            let mut m = json!({"type": format!("{TYPE_PREFIX}{}", r.slug), "rule": r.rule});
            if let Some(reason) = r.reason {
                m["reason"] = json!(reason);
            }
            if let Some(p) = r.detail_pattern {
                m["detail-pattern"] = json!(p);
            }
            m
        })
        .collect();
    response.insert("x-remesa-rules".to_owned(), Value::Array(machine));
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

/// Every `(method, path, problem type, rule)` that [`RULES`] states, for the test that each lands on its operation.
pub fn stated_rules() -> Vec<(&'static str, &'static str, String, &'static str)> {
    RULES
        .iter()
        .flat_map(|r| {
            r.operations
                .iter()
                .map(move |(m, p)| (*m, *p, format!("{TYPE_PREFIX}{}", r.slug), r.rule))
        })
        .collect()
}
