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
