//! The web consoles over real HTTP on a real database: sign-in, sessions, CSRF and origin checks, role checks, the
//! failure throttles and the headers every page carries. (The payout flow at the counter, with a real chain, is in
//! `tests/e2e/console.rs` and in the browser tests, `tests/browser/`.)

use std::collections::BTreeMap;

use figment::Figment;
use figment::providers::Serialized;
use remesa::domain::PayoutMethod;
use remesa::domain::account::{DisplayName, Password, Role, Username};
use remesa::engine::NewPartner;
use remesa::engine::accounts::NewAccount;

use super::helpers::PARTNER_KEY_B64;
use super::http::{Server, spawn_with};

const AGENT: (&str, &str) = ("ana.agent", "ana's long password");
const OPERATOR: (&str, &str) = ("olga.ops", "olga's long password");

/// A browser's view: cookies kept per name, redirects not followed.
struct Browser {
    base: String,
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

struct Page {
    status: u16,
    location: String,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Browser {
    fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: BTreeMap::new(),
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = if cookie.is_empty() {
            req
        } else {
            req.header("cookie", cookie)
        };
        let resp = req.send().await.expect("request");
        let headers = resp.headers().clone();
        for c in headers.get_all("set-cookie") {
            let c = c.to_str().expect("ascii cookie");
            let (kv, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').expect("name=value");
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        Page {
            status: resp.status().as_u16(),
            location: headers
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned(),
            headers,
            body: resp.text().await.expect("body"),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let req = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    async fn post_from(&mut self, path: &str, origin: &str, form: &[(&str, &str)]) -> Page {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", origin)
            .form(form);
        self.send(req).await
    }

    /// Signs in at `console` (`/partner` or `/ops`) through its form.
    async fn sign_in(&mut self, console: &str, user: &str, password: &str) -> Page {
        let login = self.get(&format!("{console}/login")).await;
        assert_eq!(login.status, 200);
        let csrf = csrf_of(&login.body);
        self.post(
            &format!("{console}/login"),
            &[("csrf", &csrf), ("username", user), ("password", password)],
        )
        .await
    }
}

/// The first CSRF token in a page's forms.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    html[at..].split('"').next().expect("token").to_owned()
}

async fn accounts(s: &Server) {
    s.engine
        .add_partner(NewPartner {
            id: 7,
            name: "Tienda Siete".into(),
            countries: vec!["GT".into()],
            currencies: vec!["GTQ".into()],
            payout_methods: vec![PayoutMethod::CashPickup],
            public_key: PARTNER_KEY_B64.into(),
            webhook_url: None,
            settlement_address: "0x0707070707070707070707070707070707070707".into(),
            signer_address: None,
        })
        .await
        .expect("partner");
    for ((user, password), role, partner) in [(AGENT, Role::Agent, Some(7)), (OPERATOR, Role::Operator, None)]
    {
        s.engine
            .create_account(NewAccount {
                username: Username::parse(user).expect("username"),
                password: Password::parse(password).expect("password"),
                display_name: DisplayName::parse(&format!("{user} display")).expect("name"),
                role,
                partner: partner.map(remesa_testkit::pid),
            })
            .await
            .expect("account");
    }
}

/// Small limits, and a node keystore (pickup codes are looked up by its claim key) in `dir`.
fn settings(dir: &std::path::Path) -> Figment {
    let pass = secrecy::SecretString::from("console test passphrase");
    remesa::engine::Custody::create_keystore(&dir.join("node-keystore.json"), &pass).expect("keystore");
    Figment::new()
        .merge(Serialized::default("data_dir", dir))
        .merge(Serialized::default(
            "keystore_passphrase",
            "console test passphrase",
        ))
        .merge(Serialized::default("console.login_failures_max", 3))
        .merge(Serialized::default("console.code_failures_per_agent_max", 2))
}

async fn sign_in_sessions_and_roles(database_url: Option<String>) {
    let dir = tempfile::tempdir().expect("tmp");
    let s = spawn_with(database_url, settings(dir.path())).await;
    accounts(&s).await;
    let mut b = Browser::new(&s.base);

    // no session: to the sign-in page of that console
    let p = b.get("/partner/").await;
    assert_eq!((p.status, p.location.as_str()), (303, "/partner/login"));
    assert_eq!(b.get("/ops/").await.location, "/ops/login");

    // every page carries the security headers; no inline script or style anywhere
    let login = b.get("/partner/login").await;
    let csp = login.headers["content-security-policy"].to_str().expect("csp");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(login.headers["x-frame-options"], "DENY");
    assert_eq!(login.headers["cache-control"], "no-store");
    assert!(!login.body.contains("style=") && !login.body.contains("<script>"));

    // the sign-in form's own CSRF token is required
    let p = b
        .post(
            "/partner/login",
            &[("csrf", "0"), ("username", AGENT.0), ("password", AGENT.1)],
        )
        .await;
    assert_eq!(p.status, 403);

    // a wrong password and an unknown user get the same answer; an operator's password does not open the counter
    assert_eq!(
        b.sign_in("/partner", AGENT.0, "not her password").await.status,
        401
    );
    assert_eq!(
        b.sign_in("/partner", "nobody.here", "whatever password")
            .await
            .status,
        401
    );
    assert_eq!(b.sign_in("/partner", OPERATOR.0, OPERATOR.1).await.status, 401);
    assert!(!b.cookies.contains_key("remesa_session"));

    // the agent signs in: an HttpOnly, SameSite=Strict, Secure session cookie
    let p = b.sign_in("/partner", AGENT.0, AGENT.1).await;
    assert_eq!((p.status, p.location.as_str()), (303, "/partner/"));
    let set = p.headers["set-cookie"].to_str().expect("cookie").to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(set.contains(attr), "{attr} in {set}");
    }
    let home = b.get("/partner/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("ana.agent display") && home.body.contains("Tienda Siete"));
    let csrf = csrf_of(&home.body);
    // the session token is in no page
    assert!(!home.body.contains(&b.cookies["remesa_session"]));

    // roles: an agent may not open the operator console
    assert_eq!(b.get("/ops/").await.status, 403);

    // forged forms: a wrong CSRF token, or a right one from another origin
    let forged = b
        .post(
            "/partner/lookup",
            &[("csrf", "forged"), ("code", "K7QM-2XWD-9HPA")],
        )
        .await;
    assert_eq!(forged.status, 403);
    let cross = b
        .post_from(
            "/partner/lookup",
            "http://evil.example",
            &[("csrf", &csrf), ("code", "K7QM-2XWD-9HPA")],
        )
        .await;
    assert_eq!(cross.status, 403);

    // wrong pickup codes: refused, then the agent's look-ups stop for the window (2 here), right code or not
    for code in ["K7QM-2XWD-9HPA", "not a code"] {
        let p = b
            .post("/partner/lookup", &[("csrf", &csrf), ("code", code)])
            .await;
        assert_eq!(p.status, 404, "{}", p.body);
    }
    let p = b
        .post("/partner/lookup", &[("csrf", &csrf), ("code", "K7QM-2XWD-9HPB")])
        .await;
    assert_eq!(p.status, 429);
    assert!(p.headers.contains_key("retry-after"));

    // webhook deliveries: the agent sees and resends its own partner's only
    for (id, partner, kind) in [("d-7", "7", "payout.paid"), ("d-8", "8", "payout.settled")] {
        let row = remesa::store::webhooks::NewDeliveryRow {
            id,
            partner_id: partner,
            event_id: id,
            event_type: kind,
            url: "http://127.0.0.1:9/hook",
            payload: "{}",
            max_attempts: 1,
            created_at_unix_ms: 1,
        };
        let mut tx = s.db.begin().await.expect("tx");
        remesa::store::webhooks::insert(&mut *tx, &row)
            .await
            .expect("delivery");
        sqlx::query("UPDATE partner_webhook_deliveries SET status = 'failed' WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .expect("parked");
        tx.commit().await.expect("commit");
    }
    let hooks = b.get("/partner/webhooks").await;
    assert!(hooks.body.contains("payout.paid") && !hooks.body.contains("payout.settled"));
    let status_of = |id: &'static str| {
        let pool = s.db.pool.clone();
        async move {
            let (st,): (String,) =
                sqlx::query_as("SELECT status FROM partner_webhook_deliveries WHERE id = $1")
                    .bind(id)
                    .fetch_one(&pool)
                    .await
                    .expect("status");
            st
        }
    };
    assert_eq!(
        b.post("/partner/webhooks/d-8/resend", &[("csrf", &csrf)])
            .await
            .status,
        409
    );
    assert_eq!(status_of("d-8").await, "failed");
    let p = b.post("/partner/webhooks/d-7/resend", &[("csrf", &csrf)]).await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/partner/webhooks?done=resent")
    );
    assert_ne!(status_of("d-7").await, "failed");

    // Spanish on request, and the language is remembered
    let p = b.get("/console/lang/es?next=/partner/").await;
    assert_eq!(p.location, "/partner/");
    assert!(b.get("/partner/").await.body.contains("Código de retiro"));
    // no open redirect through the language switch
    assert_eq!(
        b.get("/console/lang/en?next=//evil.example/").await.location,
        "/partner/"
    );

    // sign out ends the session on the server too
    let token = b.cookies["remesa_session"].clone();
    let p = b.post("/partner/logout", &[("csrf", &csrf)]).await;
    assert_eq!(p.location, "/partner/login");
    b.cookies.insert("remesa_session".into(), token);
    assert_eq!(b.get("/partner/").await.location, "/partner/login");

    // the operator: the console opens; the counter's forms are not for operators
    let mut op = Browser::new(&s.base);
    assert_eq!(op.sign_in("/ops", OPERATOR.0, OPERATOR.1).await.location, "/ops/");
    let dash = op.get("/ops/").await;
    assert_eq!(dash.status, 200);
    assert!(dash.body.contains("Reconciliation"));
    let op_csrf = csrf_of(&dash.body);
    assert_eq!(
        op.post("/partner/lookup", &[("csrf", &op_csrf), ("code", "x")])
            .await
            .status,
        403
    );
    let found = op.get("/ops/remittances?q=%2B502+5555+0101").await;
    assert_eq!(found.status, 200);
    assert!(found.body.contains("Nothing found"));
    assert_eq!(op.get("/ops/remittances/0x1234").await.status, 404);

    // disabling an account ends its sessions at once
    s.engine
        .set_account_active(&Username::parse(OPERATOR.0).expect("name"), None, false)
        .await
        .expect("disable");
    assert_eq!(op.get("/ops/").await.location, "/ops/login");
    assert_eq!(op.sign_in("/ops", OPERATOR.0, OPERATOR.1).await.status, 401);

    // wrong passwords: past the limit (3 here) the username is refused for the window, right password or not
    let mut guess = Browser::new(&s.base);
    for _ in 0..3 {
        assert_eq!(
            guess
                .sign_in("/partner", AGENT.0, "a wrong password")
                .await
                .status,
            401
        );
    }
    let p = guess.sign_in("/partner", AGENT.0, AGENT.1).await;
    assert_eq!(p.status, 429);
    assert!(p.headers.contains_key("retry-after"));
    s.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sign_in_sessions_and_roles_sqlite() {
    sign_in_sessions_and_roles(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sign_in_sessions_and_roles_postgres() {
    let Some(url) = remesa_testkit::postgres_url_or_skip().await else {
        return;
    };
    sign_in_sessions_and_roles(Some(url)).await;
}
