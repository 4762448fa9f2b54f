//! The operator token (`Authorization: Bearer <REMESA_OPERATOR_TOKEN>`), compared in constant time.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::AppState;
use super::problem::Problem;

/// Extractor: the request carries the operator token.
#[derive(Debug, Clone, Copy)]
pub struct Operator;

pub fn is_operator(st: &AppState, headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| st.config.operator_token_matches(t.trim()))
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Problem> {
        if st.config.operator_token.is_none() {
            return Err(Problem::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "operator-token-unset",
                "Admin endpoints are disabled",
                Some("set REMESA_OPERATOR_TOKEN".to_owned()),
            ));
        }
        if is_operator(st, &parts.headers) {
            Ok(Operator)
        } else {
            Err(Problem::unauthorized("a valid operator bearer token is required"))
        }
    }
}
