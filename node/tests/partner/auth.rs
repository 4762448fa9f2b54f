//! The signature middleware over real HTTP: every refusal is a 401 problem+json that says why.

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Extension, Router};
use remesa::partner::auth::{AuthenticatedPartner, PartnerAuth, PartnerKey, verify_partner_signature};
use remesa::partner::client::PartnerClient;
use remesa::partner::config::PartnerConfig;
use remesa::partner::httpsig::{Ed25519Signer, now_unix_s, random_nonce};
use reqwest::Method;

use crate::support::TestDb;
use remesa_testkit::both_dbs;

pub fn partner_signer(id: &str, seed_byte: u8) -> Ed25519Signer {
    Ed25519Signer::from_seed_hex(id, &hex::encode([seed_byte; 32])).unwrap()
}

async fn whoami(Extension(p): Extension<AuthenticatedPartner>, body: String) -> String {
    format!("{}:{}", p.partner_id, body.len())
}

/// A server with the middleware in front of two routes; partners `partner-a` (seed 0xA1) and `partner-b` (0xB2).
async fn serve(t: &TestDb) -> String {
    let keys: std::collections::HashMap<String, PartnerKey> = [("partner-a", 0xA1), ("partner-b", 0xB2)]
        .into_iter()
        .map(|(id, seed)| {
            (
                id.to_owned(),
                PartnerKey {
                    partner_id: id.to_owned(),
                    key: partner_signer(id, seed).verifying_key(),
                },
            )
        })
        .collect();
    let keys = Arc::new(keys);
    let auth = PartnerAuth {
        db: t.db.clone(),
        cfg: PartnerConfig::default(),
        keys: Arc::new(move |kid: String| {
            let keys = keys.clone();
            Box::pin(async move { Ok(keys.get(&kid).cloned()) })
        }),
        body_limit_bytes: 1024,
    };
    let app = Router::new()
        .route("/v1/partner/whoami", get(whoami))
        .route("/v1/partner/echo", post(whoami))
        .layer(axum::middleware::from_fn_with_state(
            auth,
            verify_partner_signature,
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn reason(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(ct.as_deref(), Some("application/problem+json"));
    assert_eq!(body["status"], status);
    assert!(!body["detail"].as_str().unwrap().is_empty());
    (status, body["reason"].as_str().unwrap().to_owned())
}

/// Signs a request built by hand with explicit `created` (and body), returning it ready to send.
fn signed_request(
    http: &reqwest::Client,
    signer: &Ed25519Signer,
    method: Method,
    url: &str,
    body: Option<&str>,
    created: u64,
) -> reqwest::Request {
    let mut rb = http.request(method.clone(), url);
    if let Some(b) = body {
        rb = rb.header("content-type", "application/json").body(b.to_owned());
    }
    let mut req = rb.build().unwrap();
    let h = signer
        .sign_request(
            &method,
            url,
            req.headers(),
            body.map(str::as_bytes),
            created,
            Some(random_nonce()),
        )
        .unwrap();
    h.apply(req.headers_mut()).unwrap();
    req
}

async fn signature_checks(t: TestDb) {
    let base = serve(&t).await;
    let http = reqwest::Client::new();
    let a = partner_signer("partner-a", 0xA1);

    // Valid: GET without body, POST with body; the handler sees the partner.
    let client = PartnerClient::new(&base, a.clone()).unwrap();
    let r = client
        .send_raw(Method::GET, "/v1/partner/whoami", None, None)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "partner-a:0");
    let body = serde_json::json!({"reference": "BANK-123"});
    let r = client
        .send_raw(Method::POST, "/v1/partner/echo", Some(&body), None)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        format!("partner-a:{}", body.to_string().len())
    );
    // Two identical GETs in the same second are both fine: each carries its own nonce.
    for _ in 0..2 {
        let r = client
            .send_raw(Method::GET, "/v1/partner/whoami", None, None)
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    // Wrong key: signed by someone else's key under partner-a's keyid.
    let impostor = partner_signer("partner-a", 0x66);
    let r = PartnerClient::new(&base, impostor)
        .unwrap()
        .send_raw(Method::GET, "/v1/partner/whoami", None, None)
        .await;
    assert_eq!(reason(r.unwrap()).await, (401, "bad_signature".to_owned()));

    // Unknown keyid.
    let stranger = partner_signer("partner-zz", 0x01);
    let r = PartnerClient::new(&base, stranger)
        .unwrap()
        .send_raw(Method::GET, "/v1/partner/whoami", None, None)
        .await;
    assert_eq!(reason(r.unwrap()).await, (401, "unknown_key".to_owned()));

    // Changed body: signed for one body, sent with another.
    let url = format!("{base}/v1/partner/echo");
    let mut req = signed_request(
        &http,
        &a,
        Method::POST,
        &url,
        Some(r#"{"amount":"10"}"#),
        now_unix_s(),
    );
    *req.body_mut() = Some(r#"{"amount":"99"}"#.into());
    assert_eq!(
        reason(http.execute(req).await.unwrap()).await,
        (401, "content_digest_mismatch".to_owned())
    );

    // Old timestamp (301 s > 300 s) and a future one (beyond the 30 s skew).
    let req = signed_request(
        &http,
        &a,
        Method::GET,
        &format!("{base}/v1/partner/whoami"),
        None,
        now_unix_s() - 301,
    );
    assert_eq!(
        reason(http.execute(req).await.unwrap()).await,
        (401, "signature_too_old".to_owned())
    );
    let req = signed_request(
        &http,
        &a,
        Method::GET,
        &format!("{base}/v1/partner/whoami"),
        None,
        now_unix_s() + 120,
    );
    assert_eq!(
        reason(http.execute(req).await.unwrap()).await,
        (401, "signature_from_future".to_owned())
    );

    // Replay: the very same signed request twice.
    let req = signed_request(&http, &a, Method::POST, &url, Some(r#"{"x":1}"#), now_unix_s());
    let again = req.try_clone().unwrap();
    assert_eq!(http.execute(req).await.unwrap().status(), 200);
    assert_eq!(
        reason(http.execute(again).await.unwrap()).await,
        (401, "replay".to_owned())
    );

    // Another target: a signature for /whoami does not open /echo.
    let mut req = signed_request(
        &http,
        &a,
        Method::POST,
        &format!("{base}/v1/partner/whoami"),
        Some("{}"),
        now_unix_s(),
    );
    *req.url_mut() = url.parse().unwrap();
    assert_eq!(
        reason(http.execute(req).await.unwrap()).await,
        (401, "bad_signature".to_owned())
    );

    // Missing headers: 401 with Accept-Signature telling what to sign.
    let r = http
        .get(format!("{base}/v1/partner/whoami"))
        .send()
        .await
        .unwrap();
    let accept = r
        .headers()
        .get("accept-signature")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(accept.contains("\"@target-uri\"") && accept.contains("ed25519"));
    assert_eq!(reason(r).await, (401, "missing_header".to_owned()));
    let mut req = signed_request(
        &http,
        &a,
        Method::GET,
        &format!("{base}/v1/partner/whoami"),
        None,
        now_unix_s(),
    );
    req.headers_mut().remove("signature");
    assert_eq!(
        reason(http.execute(req).await.unwrap()).await,
        (401, "missing_header".to_owned())
    );

    // A body the signature does not cover through content-digest.
    let mut req = signed_request(&http, &a, Method::POST, &url, None, now_unix_s());
    *req.body_mut() = Some("{}".into());
    assert_eq!(
        reason(http.execute(req).await.unwrap()).await,
        (401, "content_digest_missing".to_owned())
    );

    // Bodies have a limit.
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(2048));
    let req = signed_request(&http, &a, Method::POST, &url, Some(&big), now_unix_s());
    assert_eq!(
        reason(http.execute(req).await.unwrap()).await,
        (413, "body_too_large".to_owned())
    );
}

#[tokio::test]
async fn signatures_over_http() {
    both_dbs!(signature_checks);
}
