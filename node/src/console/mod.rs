//! The web consoles, served by the node: the partner counter (`/partner/`, for counter agents) and the operator
//! console (`/ops/`). Server-rendered HTML (askama templates in `node/templates/console/`, escaped by default), one
//! stylesheet and one small script served from the binary, English and Spanish (`i18n.rs`).
//!
//! Security: a session is an HttpOnly, SameSite=Strict cookie (`Secure` unless `console.secure_cookies` is off, as on
//! the devnet) holding a random token whose hash the database keeps (`engine::accounts`); every form carries a CSRF
//! token derived from the session (an HMAC of its token), and a POST from another origin is refused; the
//! Content-Security-Policy allows no inline script or style; every page checks the role (an agent sees only its own
//! partner's payouts; `/ops/` needs an operator).

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use hmac::{Hmac, Mac as _};
use serde::Deserialize;
use sha2::Sha256;

use crate::domain::account::Role;
use crate::engine::EngineError;
use crate::engine::accounts::{Account, SessionToken, SignIn, Throttle};
use crate::http::AppState;
use crate::store::StoreError;

mod counter;
pub mod i18n;
mod ops;
mod pages;
mod webhooks;

use i18n::{LANG_COOKIE, Lang};
use pages::{ErrorPage, Layout, LoginPage};

pub const SESSION_COOKIE: &str = "remesa_session";
const LOGIN_CSRF_COOKIE: &str = "remesa_login_csrf";

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// `/partner/*`, `/ops/*` and the consoles' assets, to merge into the node's router. Empty when
/// `console.enabled` is off.
pub fn router(state: &AppState) -> Router<AppState> {
    if !state.config.console.enabled {
        return Router::new();
    }
    Router::new()
        .merge(counter::routes())
        .merge(ops::routes())
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
        .route("/console/lang/{code}", get(set_lang))
        .layer(axum::middleware::from_fn(guard))
}

/// Headers on every console response, and the cross-origin check on every POST.
async fn guard(req: Request, next: Next) -> Response {
    if req.method() == Method::POST && !same_origin(req.headers()) {
        let lang = Lang::from_headers(req.headers());
        return PageError::Forbidden.render(lang);
    }
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut HeaderMap, k: HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "same-origin");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    res
}

/// A POST is accepted from this node's own pages only: `Sec-Fetch-Site` (sent by every current browser) must not
/// be `cross-site` / `same-site`, and an `Origin` must name the host the request was sent to.
fn same_origin(h: &HeaderMap) -> bool {
    let site = h.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if matches!(site, Some("cross-site" | "same-site")) {
        return false;
    }
    let Some(origin) = h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(secure: bool, name: &str, value: &str, max_age_s: u64, http_only: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; Max-Age={max_age_s}; SameSite=Strict");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("remesa_invalid=; Max-Age=0"))
}

/// The CSRF token of a session: HMAC-SHA256 keyed by the session's token, so only a page of that session knows it
/// and the database holds nothing to steal.
pub fn csrf_token(session: &SessionToken) -> String {
    let mut mac = <Hmac<Sha256>>::new_from_slice(session.expose().as_bytes()).unwrap_or_else(|_| {
        // HMAC takes keys of any length; this branch cannot be taken
        <Hmac<Sha256>>::new_from_slice(b"remesa").unwrap_or_else(|_| unreachable!())
    });
    mac.update(b"remesa console csrf v1");
    hex::encode(mac.finalize().into_bytes())
}

fn csrf_ok(expected: &str, given: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// The signed-in person of a request, with the role a page needs.
#[derive(Debug)]
pub struct Session {
    pub account: Account,
    pub csrf: String,
    pub lang: Lang,
    token: SessionToken,
}

impl Session {
    /// The session of this request: `Err(SignInFirst)` without one, `Err(Forbidden)` when its role is not `role`.
    async fn require(st: &AppState, h: &HeaderMap, role: Role) -> Result<Self, PageError> {
        let lang = Lang::from_headers(h);
        let token = cookie(h, SESSION_COOKIE)
            .and_then(SessionToken::parse)
            .ok_or(PageError::SignInFirst(role))?;
        let account = st
            .engine
            .session_account(&token)
            .await?
            .ok_or(PageError::SignInFirst(role))?;
        if account.role != role {
            return Err(PageError::Forbidden);
        }
        // an agent of a suspended (or removed) partner cannot act for it
        if let Some(p) = account.partner {
            let active = st.engine.partner(p).await?.is_some_and(|p| p.status == "active");
            if !active {
                return Err(PageError::Forbidden);
            }
        }
        Ok(Self {
            csrf: csrf_token(&token),
            account,
            lang,
            token,
        })
    }

    /// Refuses a form whose CSRF token is not this session's.
    fn check_csrf(&self, given: &str) -> Result<(), PageError> {
        if csrf_ok(&self.csrf, given) {
            Ok(())
        } else {
            Err(PageError::FormExpired)
        }
    }

    fn layout(&self, role: Role, title: &str, path: &str) -> Layout {
        Layout::new(
            self.lang,
            role,
            title,
            path,
            Some((&self.account.display_name, &self.csrf)),
        )
    }
}

/// What a page answers instead of its content.
#[derive(Debug)]
pub enum PageError {
    /// No session: to the sign-in page of the console that role uses.
    SignInFirst(Role),
    Forbidden,
    NotFound,
    /// The form's CSRF token is not this session's (or the session ended).
    FormExpired,
    /// A message for the person (the engine's refusal), with its status.
    Refused(StatusCode, String),
    TooMany {
        retry_after_s: u64,
        message: String,
    },
    /// Storage trouble that passes: 503 with `Retry-After`.
    Unavailable,
    Internal,
}

impl From<EngineError> for PageError {
    fn from(e: EngineError) -> Self {
        match e {
            e if e.is_transient() => Self::Unavailable,
            EngineError::NotFound(_) => Self::NotFound,
            EngineError::Invalid(m) => Self::Refused(StatusCode::UNPROCESSABLE_ENTITY, m),
            EngineError::Conflict(m) => Self::Refused(StatusCode::CONFLICT, m),
            // e.g. no keystore loaded: nothing the person can fix by trying again now
            EngineError::Unavailable(m) => Self::Refused(StatusCode::SERVICE_UNAVAILABLE, m),
            e => {
                tracing::error!(target: "console", error = %e, "console request failed");
                Self::Internal
            }
        }
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        EngineError::Store(e).into()
    }
}

impl PageError {
    fn render(self, lang: Lang) -> Response {
        let t = lang.t();
        let (status, message) = match self {
            Self::SignInFirst(Role::Agent) => return Redirect::to("/partner/login").into_response(),
            Self::SignInFirst(Role::Operator) => return Redirect::to("/ops/login").into_response(),
            Self::Forbidden => (StatusCode::FORBIDDEN, t.forbidden.to_owned()),
            Self::NotFound => (StatusCode::NOT_FOUND, t.not_found.to_owned()),
            Self::FormExpired => (StatusCode::FORBIDDEN, t.form_expired.to_owned()),
            Self::Refused(s, m) => (s, m),
            Self::TooMany {
                retry_after_s,
                message,
            } => {
                let mut r = page(StatusCode::TOO_MANY_REQUESTS, &error_page(lang, &message));
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
                return r;
            }
            Self::Unavailable => {
                let mut r = page(StatusCode::SERVICE_UNAVAILABLE, &error_page(lang, t.try_again));
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return r;
            }
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, t.error_title.to_owned()),
        };
        page(status, &error_page(lang, &message))
    }
}

fn error_page(lang: Lang, message: &str) -> ErrorPage {
    ErrorPage {
        l: Layout::new(lang, Role::Agent, lang.t().error_title, "", None),
        message: message.to_owned(),
    }
}

/// A rendered template as an HTML response.
fn page<T: askama::Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(target: "console", error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

/// A page handler's result: the page, or what it answers instead.
pub type PageResult = Result<Response, (Lang, PageError)>;

fn respond(r: PageResult) -> Response {
    match r {
        Ok(r) => r,
        Err((lang, e)) => e.render(lang),
    }
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("../../templates/console/console.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("../../templates/console/console.js"),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct LangQuery {
    next: Option<String>,
}

/// `GET /console/lang/{en|es}?next=/partner/`: remembers the language in a cookie and goes back.
async fn set_lang(
    State(st): State<AppState>,
    axum::extract::Path(code): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<LangQuery>,
) -> Response {
    let code = if code == "es" { "es" } else { "en" };
    // only back to a console page of this node (no open redirect)
    let next = q
        .next
        .filter(|n| {
            (n.starts_with("/partner/") || n.starts_with("/ops/")) && !n.contains("//") && !n.contains('\\')
        })
        .unwrap_or_else(|| "/partner/".into());
    let mut r = Redirect::to(&next).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            st.config.console.secure_cookies,
            LANG_COOKIE,
            code,
            365 * 86_400,
            false,
        ),
    );
    r
}

// ------------------------------------------------------------------------------------------- sign-in

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

fn login_page(
    st: &AppState,
    h: &HeaderMap,
    role: Role,
    status: StatusCode,
    message: Option<&str>,
) -> Response {
    let lang = Lang::from_headers(h);
    // the sign-in form's CSRF token: a random value in a cookie and in the form (double submit)
    let token = cookie(h, LOGIN_CSRF_COOKIE)
        .filter(|c| c.len() == 32 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .map_or_else(
            || {
                use rand::RngCore as _;
                let mut b = [0u8; 16];
                rand::rngs::OsRng.fill_bytes(&mut b);
                hex::encode(b)
            },
            str::to_owned,
        );
    let t = lang.t();
    let (title, action) = match role {
        Role::Agent => (t.counter_title, "/partner/login"),
        Role::Operator => (t.ops_title, "/ops/login"),
    };
    let mut r = page(
        status,
        &LoginPage {
            l: Layout::new(lang, role, title, action, None),
            action,
            csrf: token.clone(),
            message: message.map(str::to_owned),
        },
    );
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            st.config.console.secure_cookies,
            LOGIN_CSRF_COOKIE,
            &token,
            3600,
            true,
        ),
    );
    r
}

async fn sign_in(st: &AppState, h: &HeaderMap, role: Role, form: LoginForm) -> Response {
    let lang = Lang::from_headers(h);
    let t = lang.t();
    let expected = cookie(h, LOGIN_CSRF_COOKIE).unwrap_or("");
    if !csrf_ok(expected, &form.csrf) {
        return login_page(st, h, role, StatusCode::FORBIDDEN, Some(t.form_expired));
    }
    let cfg = &st.config.console;
    let throttle = Throttle {
        failures_max: i64::from(cfg.login_failures_max),
        window_ms: i64::try_from(cfg.throttle_window_s.saturating_mul(1000)).unwrap_or(i64::MAX),
    };
    let ttl_ms = i64::try_from(cfg.session_ttl_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    match st
        .engine
        .sign_in(&form.username, &form.password, ttl_ms, throttle)
        .await
    {
        Ok(SignIn::Session { token, account }) if account.role == role => {
            let _ = st.engine.audit(&account, "sign_in", None, None).await;
            let home = match role {
                Role::Agent => "/partner/",
                Role::Operator => "/ops/",
            };
            let mut r = Redirect::to(home).into_response();
            r.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(
                    cfg.secure_cookies,
                    SESSION_COOKIE,
                    token.expose(),
                    cfg.session_ttl_s,
                    true,
                ),
            );
            r
        }
        // the right password for the other console: no session here, and the same answer as a wrong password
        Ok(SignIn::Session { token, .. }) => {
            let _ = st.engine.sign_out(&token).await;
            login_page(st, h, role, StatusCode::UNAUTHORIZED, Some(t.sign_in_refused))
        }
        Ok(SignIn::Refused) => login_page(st, h, role, StatusCode::UNAUTHORIZED, Some(t.sign_in_refused)),
        Ok(SignIn::Throttled { retry_after_s }) => {
            let mut r = login_page(
                st,
                h,
                role,
                StatusCode::TOO_MANY_REQUESTS,
                Some(t.sign_in_throttled),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
            r
        }
        Err(e) => PageError::from(e).render(lang),
    }
}

/// The sign-out form's fields.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub(super) csrf: String,
}

async fn sign_out(st: &AppState, h: &HeaderMap, role: Role, form: CsrfForm) -> Response {
    let lang = Lang::from_headers(h);
    let s = match Session::require(st, h, role).await {
        Ok(s) => s,
        Err(e) => return e.render(lang),
    };
    if let Err(e) = s.check_csrf(&form.csrf) {
        return e.render(lang);
    }
    if let Err(e) = st.engine.sign_out(&s.token).await {
        return PageError::from(e).render(lang);
    }
    let _ = st.engine.audit(&s.account, "sign_out", None, None).await;
    let to = match role {
        Role::Agent => "/partner/login",
        Role::Operator => "/ops/login",
    };
    let mut r = Redirect::to(to).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(st.config.console.secure_cookies, SESSION_COOKIE, "", 0, true),
    );
    r
}

/// The sign-in routes of one console (`/partner/login`, `/ops/login`, `…/logout`).
fn auth_routes(base: &'static str, role: Role) -> Router<AppState> {
    Router::new()
        .route(
            &format!("{base}/login"),
            get(move |State(st): State<AppState>, h: HeaderMap| async move {
                login_page(&st, &h, role, StatusCode::OK, None)
            })
            .post(
                move |State(st): State<AppState>, h: HeaderMap, Form(f): Form<LoginForm>| async move {
                    sign_in(&st, &h, role, f).await
                },
            ),
        )
        .route(
            &format!("{base}/logout"),
            axum::routing::post(
                move |State(st): State<AppState>, h: HeaderMap, Form(f): Form<CsrfForm>| async move {
                    sign_out(&st, &h, role, f).await
                },
            ),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            "remesa_session_x=1; remesa_session=abc".parse().expect("header"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn a_post_from_another_site_is_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:8080".parse().expect("header"));
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().expect("header"));
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, "http://evil.example".parse().expect("header"));
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().expect("header"));
        h.insert("sec-fetch-site", "cross-site".parse().expect("header"));
        assert!(!same_origin(&h));
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let a = SessionToken::parse(&"a".repeat(43)).expect("token");
        let b = SessionToken::parse(&"b".repeat(43)).expect("token");
        assert_ne!(csrf_token(&a), csrf_token(&b));
        assert!(csrf_ok(&csrf_token(&a), &csrf_token(&a)));
        assert!(!csrf_ok(&csrf_token(&a), &csrf_token(&b)));
        assert!(!csrf_ok("", ""));
    }
}
