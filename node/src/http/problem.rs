//! RFC 9457 problem details (`application/problem+json`) for every error the API returns, including extractor
//! rejections, timeouts and unknown routes. Internals (SQL, RPC) are logged, never returned.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::engine::EngineError;

/// A problem details object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "https://remesa.dev/problems/quote-expired", "title": "Quote expired", "status": 410,
    "detail": "the quote has expired"
}))]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// A machine-readable reason (partner API: why a signature or request was refused, e.g. `not_found`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The prefix of every problem `type` the node answers.
pub(crate) const TYPE_PREFIX: &str = "https://remesa.dev/problems/";

/// The `Retry-After` (seconds) of every 503 problem: the conditions behind one (a full queue, the database out of
/// space or restarting) last seconds, and clients back off further on their own.
pub const RETRY_AFTER_S: u64 = 1;

impl Problem {
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<Option<String>>) -> Problem {
        Problem {
            type_uri: format!("{TYPE_PREFIX}{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            reason: None,
        }
    }

    /// A problem that says no more than its HTTP status (type slug and title from the status's reason phrase).
    pub fn of_status(status: StatusCode, detail: impl Into<String>) -> Problem {
        let title = status.canonical_reason().unwrap_or("Error");
        let slug = title.to_ascii_lowercase().replace(' ', "-");
        Problem::new(status, &slug, title, Some(detail.into()))
    }

    /// Adds the machine-readable `reason` member.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Problem {
        self.reason = Some(reason.into());
        self
    }

    /// The last part of the type URI (`quote-expired`).
    pub fn slug(&self) -> &str {
        self.type_uri.strip_prefix(TYPE_PREFIX).unwrap_or(&self.type_uri)
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            Some(detail.into()),
        )
    }

    pub fn validation(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Invalid request",
            Some(detail.into()),
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            Some(detail.into()),
        )
    }

    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            Some(detail.into()),
        )
    }

    pub fn internal() -> Problem {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            None,
        )
    }

    /// 503: the database is out of reach, out of space or restarting; nothing of the request was stored.
    pub fn storage_unavailable() -> Problem {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage-unavailable",
            "Storage unavailable",
            Some("nothing was stored; try again shortly".to_owned()),
        )
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut resp = (status, [(CONTENT_TYPE, "application/problem+json")], body).into_response();
        // Every 503 is "not done, nothing stored, try again": say when.
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
        }
        resp
    }
}

impl From<EngineError> for Problem {
    fn from(e: EngineError) -> Problem {
        use StatusCode as S;
        match &e {
            EngineError::NotFound(_) => Problem::not_found(e.to_string()),
            EngineError::Invalid(_) => Problem::validation(e.to_string()),
            EngineError::Conflict(_) => {
                Problem::new(S::CONFLICT, "conflict", "Conflict", Some(e.to_string()))
            }
            EngineError::QuoteExpired => {
                Problem::new(S::GONE, "quote-expired", "Quote expired", Some(e.to_string()))
            }
            EngineError::QuoteUsed => Problem::new(
                S::CONFLICT,
                "quote-used",
                "Quote already used",
                Some(e.to_string()),
            ),
            EngineError::NoRoute => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "no-route",
                "No partner available",
                Some(e.to_string()),
            ),
            EngineError::RecipientNotRegistered { .. } => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "recipient-not-registered",
                "The recipient has no Remesa wallet",
                Some(e.to_string()),
            ),
            EngineError::InsufficientFunds { .. } => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "insufficient-funds",
                "Insufficient funds",
                Some(e.to_string()),
            ),
            EngineError::LimitExceeded { window, .. } => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "limit-exceeded",
                "Sending limit exceeded",
                Some(e.to_string()),
            )
            .with_reason(window.as_str()),
            EngineError::TravelRuleDataRequired { .. } => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "travel-rule-data-required",
                "The sender's verified identity is required",
                Some(e.to_string()),
            ),
            EngineError::RecipientKycRequired { .. } => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "recipient-kyc-required",
                "The recipient must verify their identity first",
                Some(e.to_string()),
            ),
            EngineError::SenderNameRequired => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "sender-name-required",
                "The sender's name is required",
                Some(e.to_string()),
            ),
            EngineError::IdempotencyMismatch => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency key reused with another request",
                Some(e.to_string()),
            ),
            EngineError::Unavailable(_) => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                Some(e.to_string()),
            ),
            EngineError::Store(_) | EngineError::Chain(_) if e.is_transient() => {
                tracing::warn!(target: "http", error = ?e, "storage unavailable");
                Problem::storage_unavailable()
            }
            EngineError::Store(_) | EngineError::Chain(_) | EngineError::Internal(_) => {
                tracing::error!(target: "http", error = ?e, "internal error");
                Problem::internal()
            }
        }
    }
}

/// The chain outbox's errors as the operator API answers them: 503 when the database can come back, 500 otherwise.
impl From<crate::chain::ChainError> for Problem {
    fn from(e: crate::chain::ChainError) -> Problem {
        if e.is_transient() {
            tracing::warn!(target: "http", error = %e, "storage unavailable");
            Problem::storage_unavailable()
        } else {
            tracing::error!(target: "http", error = %e, "internal error");
            Problem::internal()
        }
    }
}

/// `Json<T>` whose rejections are problem+json.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(json_rejection(JsonRejection::MissingJsonContentType(
                Default::default(),
            )));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| json_rejection(e.into()))?;
        match Json::<T>::from_bytes(&bytes) {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection @ JsonRejection::JsonDataError(_)) => match integral_floats_as_integers(&bytes) {
                Some(again) => Json::<T>::from_bytes(&again)
                    .map(|Json(v)| ApiJson(v))
                    .map_err(json_rejection),
                None => Err(json_rejection(rejection)),
            },
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// `application/json` or any `application/*+json`, as axum's `Json` requires.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// For a second reading of a body that did not fit its type: JSON has one number type, and JSON Schema counts `485.0`
/// as the integer 485, so a number with a zero fraction becomes that integer. The body again, or `None` when it has no
/// such number (a second reading would fail the same way). Only for bodies that failed the strict reading (the
/// common path parses once); when the second reading fails too, its error is the one to report, since it names what
/// is still wrong with the body.
fn integral_floats_as_integers(bytes: &[u8]) -> Option<Vec<u8>> {
    fn normalise(v: &mut serde_json::Value, changed: &mut bool) {
        match v {
            serde_json::Value::Number(n) if n.is_f64() => {
                if let Some(f) = n.as_f64()
                    && f.fract() == 0.0
                    && f.abs() < 9.0e15
                {
                    // Below 2^53 every integral f64 is exact, so the conversion loses nothing.
                    #[allow(clippy::cast_possible_truncation)]
                    let i = f as i64;
                    *v = serde_json::Value::from(i);
                    *changed = true;
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|i| normalise(i, changed)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|i| normalise(i, changed)),
            _ => {}
        }
    }
    let mut v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let mut changed = false;
    normalise(&mut v, &mut changed);
    if changed {
        serde_json::to_vec(&v).ok()
    } else {
        None
    }
}

/// A JSON body read as `T` the way [`ApiJson`] reads it (for bodies read before their type is known, such as a
/// partner's signed body): strictly, and then with integral numbers such as `485.0` as integers.
pub(crate) fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(bytes).or_else(|e| match integral_floats_as_integers(bytes) {
        Some(again) if e.is_data() => serde_json::from_slice(&again),
        _ => Err(e),
    })
}

fn json_rejection(r: JsonRejection) -> Problem {
    match r {
        JsonRejection::JsonDataError(e) => Problem::validation(e.body_text()),
        JsonRejection::JsonSyntaxError(e) => Problem::bad_request(e.body_text()),
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Expected application/json",
            Some("set Content-Type: application/json".to_owned()),
        ),
        JsonRejection::BytesRejection(e) => {
            let status = e.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    status,
                    "payload-too-large",
                    "Request body too large",
                    Some(e.body_text()),
                )
            } else {
                Problem::new(status, "bad-body", "Unreadable request body", Some(e.body_text()))
            }
        }
        other => Problem::bad_request(other.body_text()),
    }
}

impl<T> IntoResponse for ApiJson<T>
where
    T: Serialize,
{
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// `Query<T>` whose rejections are problem+json.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(query_rejection(e)),
        }
    }
}

fn query_rejection(e: QueryRejection) -> Problem {
    Problem::validation(e.body_text())
}

/// `Path<T>` whose rejections are problem+json.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(e) => Err(path_rejection(e)),
        }
    }
}

fn path_rejection(e: PathRejection) -> Problem {
    Problem::bad_request(e.body_text())
}

#[cfg(test)]
mod tests {
    use super::json_body;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Rate {
        fee_bps: u32,
        #[serde(default)]
        currency: Option<[char; 3]>,
    }

    /// A body read before its type is known (a partner's signed body) reads `485.0` as JSON Schema does, and
    /// still refuses a fraction or bad JSON.
    #[test]
    fn json_body_reads_integral_numbers_as_integers() {
        let rate = Rate {
            fee_bps: 485,
            currency: None,
        };
        assert_eq!(
            json_body::<Rate>(br#"{"fee_bps": 485.0}"#).ok().as_ref(),
            Some(&rate)
        );
        assert_eq!(
            json_body::<Rate>(br#"{"fee_bps": 485}"#).ok().as_ref(),
            Some(&rate)
        );
        // When the body is still wrong once `485.0` is read as 485, the error names what is wrong, not the number.
        let e = json_body::<Rate>(br#"{"fee_bps": 485.0, "currency": "US"}"#).expect_err("short currency");
        assert!(e.is_data() && !e.to_string().contains("floating point"), "{e}");
        assert!(json_body::<Rate>(br#"{"fee_bps": 485.5}"#).is_err_and(|e| e.is_data()));
        assert!(json_body::<Rate>(br#"{"fee_bps": -1.0}"#).is_err_and(|e| e.is_data()));
        assert!(json_body::<Rate>(br#"{"fee_bps": "#).is_err_and(|e| !e.is_data()));
    }
}
