//! The HTTP API on a real server (port 0) over a real database.

use std::net::SocketAddr;

use figment::Figment;
use figment::providers::Serialized;
use remesa::config::Config;
use serde_json::{Value, json};

const TOKEN: &str = "test-operator-token";

pub(crate) struct Server {
    pub(crate) base: String,
    client: reqwest::Client,
    pub(crate) db: remesa::store::Db,
    pub(crate) engine: remesa::engine::Engine,
    pub(crate) shutdown: tokio_util::sync::CancellationToken,
    _dir: tempfile::TempDir,
}

async fn spawn(database_url: Option<String>) -> Server {
    spawn_with(database_url, Figment::new()).await
}

/// `extra` settings are merged over the test defaults.
pub(crate) async fn spawn_with(database_url: Option<String>, extra: Figment) -> Server {
    let dir = tempfile::tempdir().expect("tmp");
    let mut fig = Figment::new()
        .merge(Serialized::default("http_addr", "127.0.0.1:0"))
        .merge(Serialized::default("data_dir", dir.path()))
        .merge(Serialized::default("operator_token", TOKEN))
        .merge(Serialized::default("http_body_bytes_max", 4096));
    if let Some(url) = database_url {
        fig = fig.merge(Serialized::default("database_url", url));
    }
    let config = Config::from_figment(fig.merge(extra)).expect("config");
    let app = remesa::app::build(config).await.expect("build");
    let port = app.port();
    let shutdown = app.state().shutdown.clone();
    let db = app.state().db.clone();
    let engine = app.state().engine.clone();
    tokio::spawn(app.run_until_stopped());
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    Server {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        db,
        engine,
        shutdown,
        _dir: dir,
    }
}

impl Server {
    /// Another process's view of the node's SQLite file, holding its write lock (`BEGIN EXCLUSIVE`) until
    /// `ROLLBACK`: the node's writes wait behind it.
    async fn lock_the_file(&self) -> sqlx::SqliteConnection {
        use sqlx::Connection;
        let db_file = self._dir.path().join("remesa.sqlite");
        assert!(
            db_file.exists(),
            "the node's SQLite file is {}",
            db_file.display()
        );
        let mut lock = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db_file.display()))
            .await
            .expect("second connection");
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut lock)
            .await
            .expect("lock");
        lock
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        key: Option<&str>,
        auth: bool,
    ) -> (u16, String, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        if auth {
            req = req.bearer_auth(TOKEN);
        }
        let resp = req.send().await.expect("send");
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = resp.text().await.expect("text");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, ct, json)
    }
}

async fn api_contract(database_url: Option<String>) {
    let s = spawn(database_url).await;
    use reqwest::Method as M;
    // health and docs
    assert_eq!(s.call(M::GET, "/healthz", None, None, false).await.0, 200);
    assert_eq!(s.call(M::GET, "/readyz", None, None, false).await.0, 200);
    let (st, _, doc) = s.call(M::GET, "/openapi.json", None, None, false).await;
    assert_eq!(st, 200);
    for p in [
        "/v1/quotes",
        "/v1/remittances",
        "/v1/remittances/{id}",
        "/v1/remittances/{id}/cancel",
        "/v1/events",
        "/v1/admin/partners",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} missing from openapi");
    }
    // unknown route, bad JSON, wrong types, too large: all problem+json
    let (st, ct, body) = s.call(M::GET, "/nope", None, None, false).await;
    assert_eq!((st, ct.as_str()), (404, "application/problem+json"));
    assert_eq!(body["status"], 404);
    let resp = s
        .client
        .post(format!("{}/v1/quotes", s.base))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let (st, ct, _) = s
        .call(
            M::POST,
            "/v1/quotes",
            Some(json!({"send_amount": 5})),
            None,
            false,
        )
        .await;
    assert_eq!((st, ct.as_str()), (422, "application/problem+json"));
    // `270.0` is read as the integer 270; what is still wrong is named (the phone), not the number.
    let quote = json!({"send_amount": "100", "country": "GT", "payout_method": "cash_pickup", "ttl_s": 270.0,
        "recipient_phone": "not a phone"});
    let (st, _, body) = s.call(M::POST, "/v1/quotes", Some(quote), None, false).await;
    assert_eq!(st, 422, "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("recipient_phone: not a phone number"), "{body}");
    let big = "x".repeat(10_000);
    let (st, ct, _) = s
        .call(
            M::POST,
            "/v1/quotes",
            Some(json!({"send_amount": big})),
            None,
            false,
        )
        .await;
    assert_eq!((st, ct.as_str()), (413, "application/problem+json"));
    // admin needs the token
    let partner = json!({
        "id": 1, "name": "Banco Demo", "countries": ["GT"], "currencies": ["GTQ"], "payout_methods": ["cash_pickup"],
        "public_key": crate::helpers::PARTNER_KEY_B64, "settlement_address": "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc"
    });
    assert_eq!(
        s.call(M::POST, "/v1/admin/partners", Some(partner.clone()), None, false)
            .await
            .0,
        401
    );
    assert_eq!(
        s.call(
            M::POST,
            "/v1/admin/partners",
            Some(partner.clone()),
            Some("p1"),
            true
        )
        .await
        .0,
        201
    );
    // idempotent replay of the same POST, 422 for another body with the same key
    let (st, _, replay) = s
        .call(
            M::POST,
            "/v1/admin/partners",
            Some(partner.clone()),
            Some("p1"),
            true,
        )
        .await;
    assert_eq!(st, 201, "{replay}");
    let mut other = partner.clone();
    other["id"] = json!(2);
    let (st, _, body) = s
        .call(M::POST, "/v1/admin/partners", Some(other), Some("p1"), true)
        .await;
    assert_eq!(st, 422, "{body}");
    assert_eq!(body["type"], "https://remesa.dev/problems/idempotency-key-reused");
    // without the key a duplicate is a conflict
    assert_eq!(
        s.call(M::POST, "/v1/admin/partners", Some(partner), None, true)
            .await
            .0,
        409
    );
    let rates = json!([{"country": "GT", "currency": "GTQ", "payout_method": "cash_pickup", "rate": "7.65",
        "fee_fixed": "1", "fee_bps": 0, "send_min": "1", "send_max": "1000", "valid_for_s": 600}]);
    assert_eq!(
        s.call(
            M::PUT,
            "/v1/admin/partners/1/rates",
            Some(rates.clone()),
            None,
            true
        )
        .await
        .0,
        200
    );
    // A partner id in a path is 1 to 19 digits, as the document states (not `1.0`, `+1` or 20 digits); the
    // largest id there can be is a partner not found, not a bad request.
    let (st, _, body) = s
        .call(
            M::PUT,
            "/v1/admin/partners/9223372036854775807/rates",
            Some(rates.clone()),
            None,
            true,
        )
        .await;
    assert_eq!(st, 404, "{body}");
    for bad in ["1.0", "+1", "12345678901234567890"] {
        let path = format!("/v1/admin/partners/{bad}/rates");
        let (st, _, body) = s.call(M::PUT, &path, Some(rates.clone()), None, true).await;
        assert_eq!(st, 400, "{bad}: {body}");
    }
    let (st, _, q1) = s
        .call(
            M::POST,
            "/v1/quotes",
            Some(json!({"send_amount": "100", "country": "GT", "payout_method": "cash_pickup"})),
            Some("q"),
            false,
        )
        .await;
    assert_eq!(st, 201, "{q1}");
    assert_eq!(q1["payout_amount"], "765.00");
    assert_eq!(q1["total"], "101");
    let (_, _, q2) = s
        .call(
            M::POST,
            "/v1/quotes",
            Some(json!({"send_amount": "100", "country": "GT", "payout_method": "cash_pickup"})),
            Some("q"),
            false,
        )
        .await;
    assert_eq!(q1["id"], q2["id"], "same key, same quote");
    // remittances need a chain here: a clear 503, never a 500
    let (st, ct, _) = s.call(M::POST, "/v1/remittances", Some(json!({"quote_id": q1["id"], "sender": {"kind": "address", "address": "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc"}, "recipient": {"phone": "+50255550101", "name": "Maria"}})), Some("r1"), false).await;
    assert_eq!((st, ct.as_str()), (503, "application/problem+json"));
    let (st, _, _) = s.call(M::POST, "/v1/remittances", Some(json!({"quote_id": "x", "sender": {"kind": "address", "address": "0x00"}, "recipient": {"phone": "1", "name": "M"}})), None, false).await;
    assert_eq!(st, 400, "Idempotency-Key is required");
    assert_eq!(
        s.call(M::GET, "/v1/remittances/0x1234", None, None, false)
            .await
            .0,
        404
    );
    assert_eq!(
        s.call(M::GET, "/v1/events?after=0", None, None, false).await.0,
        401
    );
    let (st, _, ev) = s.call(M::GET, "/v1/events?after=0", None, None, true).await;
    assert_eq!((st, ev.as_array().map(Vec::len)), (200, Some(0)));
    assert_eq!(
        s.call(M::GET, "/v1/events?after=abc", None, None, true).await.0,
        422
    );
    let (st, _, page) = s.call(M::GET, "/v1/remittances?limit=5", None, None, true).await;
    assert_eq!(st, 200, "{page}");
    // Query parameters outside their documented range are refused (problem+json), never clamped or accepted:
    // page sizes 1 to 500, a partner id 1 to 2^63 - 1, a job id of at most 64 characters.
    for path in [
        "/v1/remittances?limit=abc",
        "/v1/remittances?limit=0",
        "/v1/remittances?limit=501",
        "/v1/remittances?partner_id=9223372036854775808",
        "/v1/remittances?partner_id=0",
        "/v1/events?limit=4294967295",
        "/v1/admin/compliance/holds?limit=501",
        "/v1/admin/customers/review?limit=0",
        "/v1/admin/cases?limit=2147483648",
        "/v1/admin/chain/jobs/failed?limit=501",
        "/v1/admin/partner/webhooks?limit=abc",
    ] {
        let (st, ct, _) = s.call(M::GET, path, None, None, true).await;
        assert_eq!((st, ct.as_str()), (422, "application/problem+json"), "{path}");
    }
    let long = format!("/v1/admin/chain/jobs/failed?before={}", "0".repeat(65));
    assert_eq!(s.call(M::GET, &long, None, None, true).await.0, 422);
    let (st, _, page) = s
        .call(
            M::GET,
            "/v1/remittances?limit=500&partner_id=9223372036854775807",
            None,
            None,
            true,
        )
        .await;
    assert_eq!(st, 200, "{page}");
    // The served document states those rules, documents the shared layers' problems on every operation and
    // emits the ledger's pairs as valid schemas.
    let list = &doc["paths"]["/v1/remittances"]["get"];
    let limit = list["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "limit"))
        .expect("limit parameter");
    assert_eq!(
        (
            limit["schema"]["minimum"].as_u64(),
            limit["schema"]["maximum"].as_u64()
        ),
        (Some(1), Some(500))
    );
    for status in ["401", "422", "503"] {
        assert_eq!(
            list["responses"][status]["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem",
            "{status}"
        );
    }
    let pair = &doc["components"]["schemas"]["LedgerReport"]["properties"]["balances"]["items"];
    assert!(pair["items"].is_object(), "{pair}");
    assert_eq!(pair["maxItems"], 2);
    let resp = s
        .client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .expect("metrics");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await.expect("text").contains("remesa_quotes_total"));
    // Registering a user is idempotent, but a request that does not parse is refused even for a user who exists
    // (the API fuzzer found `self_custody_address: ""` answered 200 with the existing custodial user).
    let user = json!({"channel": "whatsapp", "external_id": "14155550199", "phone": "+14155550199",
        "self_custody_address": "0x90f79bf6eb2c4f870365e785982e1f101e93b906"});
    let (st, _, created) = s
        .call(M::POST, "/v1/admin/users", Some(user.clone()), None, true)
        .await;
    assert_eq!(st, 201, "{created}");
    assert_eq!(created["custody"], "self");
    for bad in [
        "",
        "0x1234",
        "not an address",
        "0x0000000000000000000000000000000000000000",
    ] {
        let mut again = user.clone();
        again["self_custody_address"] = json!(bad);
        let (st, _, body) = s.call(M::POST, "/v1/admin/users", Some(again), None, true).await;
        assert_eq!(st, 422, "{bad:?}: {body}");
    }
    let (st, _, same) = s.call(M::POST, "/v1/admin/users", Some(user), None, true).await;
    assert_eq!((st, &same["id"]), (200, &created["id"]));
    s.shutdown.cancel();
}

#[test]
fn personal_data_is_masked_for_the_public() {
    let mut r: remesa::engine::Remittance = serde_json::from_value(
        serde_json::to_value(
            remesa::http::openapi::document()
                .components
                .expect("components")
                .schemas["Remittance"]
                .clone(),
        )
        .ok()
        .and_then(|s| s.get("example").cloned())
        .expect("example"),
    )
    .expect("remittance example parses");
    remesa::http::api::redact(&mut r);
    assert_eq!(r.recipient_phone, "+502******01");
    assert_eq!(r.recipient_name, "M. L.");
    assert_eq!(r.sender_user_id, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_contract_sqlite() {
    api_contract(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_contract_postgres() {
    let Some(url) = remesa_testkit::postgres_url_or_skip().await else {
        return;
    };
    api_contract(Some(url)).await;
}

/// A handler that cannot finish within `http_timeout_ms` (here: its database write waits behind another
/// connection's exclusive lock on the SQLite file) answers a 503 problem instead of hanging, and the node serves
/// normally once the lock is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_handler_times_out_with_a_problem() {
    let s = spawn_with(
        None,
        Figment::new().merge(Serialized::default("http_timeout_ms", 300)),
    )
    .await;
    let mut lock = s.lock_the_file().await;

    let partner = json!({"id": 7, "name": "Slow Partner", "countries": ["GT"], "currencies": ["GTQ"],
        "payout_methods": ["cash_pickup"], "public_key": crate::helpers::PARTNER_KEY_B64,
        "settlement_address": "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc"});
    let started = std::time::Instant::now();
    let (status, ct, body) = s
        .call(
            reqwest::Method::POST,
            "/v1/admin/partners",
            Some(partner.clone()),
            None,
            true,
        )
        .await;
    let waited = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(ct, "application/problem+json");
    assert!(body["type"].as_str().unwrap_or("").ends_with("timeout"), "{body}");
    assert!(
        waited < std::time::Duration::from_secs(3),
        "answered after {waited:?}"
    );

    sqlx::query("ROLLBACK").execute(&mut lock).await.expect("unlock");
    drop(lock);
    let (status, _, body) = s
        .call(
            reqwest::Method::POST,
            "/v1/admin/partners",
            Some(partner),
            None,
            true,
        )
        .await;
    assert!(status == 200 || status == 201, "after the lock: {status} {body}");
    s.shutdown.cancel();
}

/// Admission: with `http_in_flight_max` requests in flight (here one, whose body never comes), the next request is
/// answered 503 `overloaded` with `Retry-After` at once instead of waiting; once the first ends, requests are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_in_flight_limit_are_shed_with_503() {
    let s = spawn_with(
        None,
        Figment::new().merge(Serialized::default("http_in_flight_max", 1)),
    )
    .await;
    let (status, _, _) = s.call(reqwest::Method::GET, "/healthz", None, None, false).await;
    assert_eq!(status, 200);

    // A request that holds the one place: its headers promise a body that is never sent.
    let addr = s.base.trim_start_matches("http://").to_owned();
    async fn hold(addr: &str) -> tokio::net::TcpStream {
        use tokio::io::AsyncWriteExt;
        let mut stuck = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stuck
            .write_all(
                format!(
                    "POST /v1/admin/partners HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
                     Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
                )
                .as_bytes(),
            )
            .await
            .expect("write");
        stuck
    }
    let mut stuck = hold(&addr).await;
    // The server reads the stuck request's headers on its own time (a loaded CI machine may take a while). If a
    // probe held the place at that moment, the stuck request is the one answered 503: it is then sent again.
    let mut shed = None;
    let mut held_requests_answered = Vec::new();
    for _ in 0..500 {
        let resp = s
            .client
            .get(format!("{}/healthz", s.base))
            .send()
            .await
            .expect("send");
        if resp.status() == 503 {
            shed = Some(resp);
            break;
        }
        let mut buf = vec![0u8; 2048];
        match stuck.try_read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            answered => {
                let n = answered.unwrap_or(0);
                held_requests_answered.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                stuck = hold(&addr).await;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let Some(resp) = shed else {
        panic!(
            "no request over the limit was answered 503; the requests meant to hold the place got: \
             {held_requests_answered:?}"
        );
    };
    assert_eq!(
        resp.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: Value = resp.json().await.expect("problem");
    assert!(
        body["type"].as_str().unwrap_or("").ends_with("overloaded"),
        "{body}"
    );
    assert_eq!(body["reason"], "overloaded", "{body}");

    // The stuck request goes away: its place is free again.
    drop(stuck);
    let mut served = false;
    for _ in 0..500 {
        let (status, _, _) = s.call(reqwest::Method::GET, "/healthz", None, None, false).await;
        if status == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(served, "requests are served again once the place is free");
    s.shutdown.cancel();
}

/// The database out of space (SQLite's write connection capped at its file's size: SQLITE_FULL, as on a full
/// disk) or locked by another process: requests answer 503 `storage-unavailable` with `Retry-After` (never a 500),
/// `/readyz` answers 503 with `Retry-After` while no write commits, and both recover by themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_or_locked_database_answers_503_with_retry_after_and_recovers() {
    let s = spawn(None).await;
    let pragma = |sql: &'static str| {
        let db = s.db.clone();
        async move {
            let mut tx = db.begin().await.expect("begin");
            sqlx::query(sql).execute(&mut *tx).await.expect(sql);
            tx.commit().await.expect("commit");
        }
    };
    let add_partner = |id: u32| {
        let s = &s;
        async move {
            let partner = json!({"id": id, "name": format!("Partner {id} {}", "x".repeat(80)), "countries": ["GT"],
                "currencies": ["GTQ"], "payout_methods": ["cash_pickup"],
                "public_key": crate::helpers::PARTNER_KEY_B64,
                "settlement_address": "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc"});
            // With an Idempotency-Key, so the key's own bookkeeping meets the full database too.
            let resp = s
                .client
                .post(format!("{}/v1/admin/partners", s.base))
                .bearer_auth(TOKEN)
                .header("Idempotency-Key", format!("partner-{id}"))
                .json(&partner)
                .send()
                .await
                .expect("send");
            let retry_after = resp.headers().get("retry-after").cloned();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            (status, retry_after, body)
        }
    };
    // Ready while writes commit.
    let readyz = || async {
        let resp = s
            .client
            .get(format!("{}/readyz", s.base))
            .send()
            .await
            .expect("readyz");
        (resp.status().as_u16(), resp.headers().get("retry-after").cloned())
    };
    assert_eq!(readyz().await.0, 200);

    // Out of space: the file may not grow by a page.
    pragma("PRAGMA max_page_count = 1").await;
    let mut full = None;
    for id in 1..=400 {
        let (status, retry_after, body) = add_partner(id).await;
        assert_ne!(status, 500, "a full database is not an internal error: {body}");
        if status == 503 {
            full = Some((retry_after, body));
            break;
        }
        assert!(status == 200 || status == 201, "partner {id}: {status} {body}");
    }
    let (retry_after, body) = full.expect("the capped database never ran out of pages");
    assert_eq!(
        body["type"], "https://remesa.dev/problems/storage-unavailable",
        "{body}"
    );
    assert_eq!(retry_after.as_ref().map(|v| v.to_str().unwrap_or("")), Some("1"));
    pragma("PRAGMA max_page_count = 1073741823").await;
    let (status, _, body) = add_partner(1000).await;
    assert!(status == 200 || status == 201, "space back: {status} {body}");

    // No write commits (another process holds the file's write lock): not ready within the probe's 5 s, and it
    // says when to ask again; ready again once the lock is gone.
    let mut lock = s.lock_the_file().await;
    let (status, retry_after) = readyz().await;
    assert_eq!(status, 503);
    assert_eq!(retry_after.as_ref().map(|v| v.to_str().unwrap_or("")), Some("1"));
    sqlx::query("ROLLBACK").execute(&mut lock).await.expect("unlock");
    drop(lock);
    assert_eq!(readyz().await.0, 200);
    s.shutdown.cancel();
}

/// The operator's sanctions endpoints on a real server: a list far above the general body limit loads (its route
/// has its own), a truncated one is refused with its line and the list in force stays, `/readyz` and `/metrics`
/// show what is loaded, a name is screened, the review queue answers.
async fn sanctions_admin(database_url: Option<String>) {
    let s = spawn(database_url).await;
    let get = reqwest::Method::GET;
    let put = reqwest::Method::PUT;
    let post = reqwest::Method::POST;
    let (status, _, ready) = s.call(get.clone(), "/readyz", None, None, false).await;
    assert_eq!(
        (status, ready["sanctions"]["state"].as_str()),
        (200, Some("not_loaded")),
        "{ready}"
    );
    assert_eq!(ready["chain"]["state"], "not_configured", "{ready}");
    assert_eq!(ready["database"], "ok");

    let list = remesa_testkit::sanctions::synthetic_ofac(7, 2_000);
    let upload = json!({"format": "ofac-csv", "sdn_csv": list.sdn_csv, "alt_csv": list.alt_csv,
        "add_csv": list.add_csv, "list_date": "2026-12-01"});
    assert!(
        upload.to_string().len() > 4 * 4096,
        "larger than this server's general body limit"
    );
    let (status, _, _) = s
        .call(
            put.clone(),
            "/v1/admin/sanctions/lists",
            Some(upload.clone()),
            None,
            false,
        )
        .await;
    assert_eq!(status, 401, "operator only");
    let (status, _, meta) = s
        .call(put.clone(), "/v1/admin/sanctions/lists", Some(upload), None, true)
        .await;
    assert_eq!((status, meta["entries"].as_u64()), (200, Some(2_000)), "{meta}");

    let truncated = json!({"format": "ofac-csv", "sdn_csv": "10000,\"SMITH, John\",\"individual\"\r\n",
        "alt_csv": "", "add_csv": ""});
    let (status, _, problem) = s
        .call(
            put.clone(),
            "/v1/admin/sanctions/lists",
            Some(truncated),
            None,
            true,
        )
        .await;
    assert_eq!(
        (status, problem["reason"].as_str()),
        (422, Some("list-invalid")),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("SDN.CSV line 1"),
        "{problem}"
    );
    let bad_xml = json!({"format": "un-xml", "xml": "<CONSOLIDATED_LIST><INDIVIDUALS><INDIVIDUAL>"});
    let (status, _, _) = s
        .call(put, "/v1/admin/sanctions/lists", Some(bad_xml), None, true)
        .await;
    assert_eq!(status, 422);

    let (_, _, ready) = s.call(get.clone(), "/readyz", None, None, false).await;
    assert_eq!(ready["sanctions"]["state"], "loaded", "{ready}");
    assert_eq!(
        ready["sanctions"]["lists"][0]["entries"], 2_000,
        "the list in force stayed: {ready}"
    );
    assert_eq!(ready["sanctions"]["lists"][0]["list_date"], "2026-12-01");

    let person = &list.people[0];
    let name = format!("{} {}", person.given, person.surnames.join(" "));
    let (status, _, hits) = s
        .call(
            post.clone(),
            "/v1/admin/sanctions/screen",
            Some(json!({"name": name})),
            None,
            true,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(hits[0]["entry_id"], person.ent_num.to_string(), "{name}: {hits}");
    let (_, _, none) = s
        .call(
            post,
            "/v1/admin/sanctions/screen",
            Some(json!({"name": "Zzyzx Qwerty"})),
            None,
            true,
        )
        .await;
    assert_eq!(none, json!([]));

    let (status, _, queue) = s
        .call(get.clone(), "/v1/admin/compliance/holds", None, None, true)
        .await;
    assert_eq!((status, queue), (200, json!([])));
    let unknown = format!("/v1/admin/remittances/0x{}/hold/release", "ab".repeat(32));
    let (status, _, _) = s
        .call(
            reqwest::Method::POST,
            &unknown,
            Some(json!({"reviewer": "ana", "reason": "ok"})),
            None,
            true,
        )
        .await;
    assert_eq!(status, 404);

    let text = s
        .client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains("remesa_sanctions_list_entries{source=\"ofac_sdn\"} 2000"),
        "{text}"
    );
    // the list's date, 2026-12-01T00:00:00Z
    assert!(
        text.contains("remesa_sanctions_list_date_seconds{source=\"ofac_sdn\"} 1796083200"),
        "{text}"
    );
    s.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sanctions_admin_sqlite() {
    sanctions_admin(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sanctions_admin_postgres() {
    let Some(url) = remesa_testkit::postgres_url_or_skip().await else {
        return;
    };
    sanctions_admin(Some(url)).await;
}

/// The served document states the rules the handlers apply, so a client (or a fuzzer) that follows it is not
/// refused: the `state` filter's pattern names every state there is, and every 503 says it carries `Retry-After`.
#[test]
fn the_document_states_the_rules_the_handlers_apply() {
    let doc = remesa::app::openapi();
    let params = doc["paths"]["/v1/remittances"]["get"]["parameters"]
        .as_array()
        .expect("parameters");
    let state = params
        .iter()
        .find(|p| p["name"] == "state")
        .expect("state parameter");
    let pattern = state["schema"]["pattern"].as_str().expect("state pattern");
    let names: Vec<&str> = pattern
        .trim_start_matches("^(")
        .split(")(")
        .next()
        .expect("alternatives")
        .split('|')
        .collect();
    for s in remesa::engine::State::ALL {
        assert!(
            names.contains(&s.as_str()),
            "{} missing from {pattern}",
            s.as_str()
        );
    }
    assert_eq!(names.len(), remesa::engine::State::ALL.len(), "{pattern}");
    // Every rule no schema states lands on each of its operations' 422 (a path that does not exist would state
    // nothing), as text and as `x-remesa-rules`.
    for (method, path, type_uri, rule) in remesa::http::openapi::stated_rules() {
        let response = &doc["paths"][path][method]["responses"]["422"];
        let stated = response["x-remesa-rules"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path}: no x-remesa-rules on its 422"));
        assert!(
            stated.iter().any(|r| r["rule"] == rule && r["type"] == type_uri),
            "{method} {path}: {rule}"
        );
        let description = response["description"].as_str().unwrap_or_default();
        assert!(description.contains(rule), "{method} {path}: {description}");
    }
    let quotes_503 = &doc["paths"]["/v1/quotes"]["post"]["responses"]["503"];
    assert!(quotes_503["headers"].get("Retry-After").is_some(), "{quotes_503}");
}
