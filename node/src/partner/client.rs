//! A partner-side HTTP client that signs every request (RFC 9421, ed25519) — used by `remesa partner-sim`, by
//! the tests, and usable as-is by anyone integrating in Rust.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::httpsig::{Ed25519Signer, SigError};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    #[error("signing: {0}")]
    Sign(#[from] SigError),
    #[error("{status}: {body}")]
    Status {
        status: reqwest::StatusCode,
        body: String,
    },
    #[error("bad url: {0}")]
    Url(String),
}

impl ClientError {
    pub fn status(&self) -> Option<reqwest::StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Signs and sends requests to a Remesa node's partner API.
#[derive(Debug, Clone)]
pub struct PartnerClient {
    base_url: String,
    signer: Ed25519Signer,
    http: reqwest::Client,
}

impl PartnerClient {
    /// `base_url` like `http://127.0.0.1:8080` (no trailing slash needed).
    pub fn new(base_url: &str, signer: Ed25519Signer) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            signer,
            http,
        })
    }

    pub fn signer(&self) -> &Ed25519Signer {
        &self.signer
    }

    /// Builds, signs and sends a request; returns the raw response (any status).
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        json_body: Option<&serde_json::Value>,
        idempotency_key: Option<&str>,
    ) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}{}", self.base_url, path_and_query);
        let mut rb = self.http.request(method, &url);
        if let Some(b) = json_body {
            rb = rb
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        if let Some(k) = idempotency_key {
            rb = rb.header("idempotency-key", k);
        }
        let mut req = rb.build()?;
        self.signer.sign_reqwest(&mut req)?;
        Ok(self.http.execute(req).await?)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
        idempotency_key: Option<&str>,
    ) -> Result<T, ClientError> {
        let resp = self.send_raw(method, path, body, idempotency_key).await?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(ClientError::Status { status, body });
        }
        Ok(resp.json().await?)
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(reqwest::Method::GET, path, None, None).await
    }

    pub async fn post<T: DeserializeOwned, B: Serialize>(
        &self,
        path: &str,
        body: &B,
        idempotency_key: Option<&str>,
    ) -> Result<T, ClientError> {
        let v = serde_json::to_value(body).map_err(|e| ClientError::Url(e.to_string()))?;
        self.call(reqwest::Method::POST, path, Some(&v), idempotency_key)
            .await
    }

    pub async fn put<T: DeserializeOwned, B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let v = serde_json::to_value(body).map_err(|e| ClientError::Url(e.to_string()))?;
        self.call(reqwest::Method::PUT, path, Some(&v), None).await
    }
}
