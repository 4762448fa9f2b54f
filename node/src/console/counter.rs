//! The partner counter (`/partner/`): a counter agent finds a payout by the recipient's pickup code, checks the ID,
//! and marks it paid through the same engine path as the partner API's `complete` (the code is the on-chain release
//! condition), or reports a problem. Wrong codes are counted per agent and per partner; past either limit every
//! look-up is refused for the rest of the window, right code or not, so the counter is no guessing oracle.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::pages::{
    CounterPage, PaidLine, PayoutLine, PayoutPage, SettlementLine, SettlementsPage, short, utc_ms,
};
use super::{PageError, PageResult, Session, auth_routes, page, respond};
use crate::domain::account::Role;
use crate::domain::{PartnerId, PayoutMethod, PickupCode, RemittanceId};
use crate::engine::PayoutProof;
use crate::engine::accounts::Throttle;
use crate::http::AppState;
use crate::partner::store::PartnerDb;
use crate::partner::views::PartnerPayout;
use crate::store::now_ms;

/// Most payouts the waiting list shows.
const WAITING_MAX: i64 = 100;
/// Most settlements the settlements page shows.
const SETTLEMENTS_MAX: i64 = 100;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .merge(auth_routes("/partner", Role::Agent))
        .route("/partner", get(|| async { Redirect::permanent("/partner/") }))
        .route("/partner/", get(home))
        .route("/partner/lookup", post(lookup))
        .route("/partner/payouts/{id}/paid", post(paid))
        .route("/partner/payouts/{id}/problem", post(problem))
        .route("/partner/settlements", get(settlements))
        .route("/partner/webhooks", get(webhooks))
        .route("/partner/webhooks/{id}/resend", post(resend))
}

fn agent_partner(s: &Session) -> Result<PartnerId, PageError> {
    s.account.partner.ok_or(PageError::Forbidden)
}

fn line(p: &PartnerPayout, lang: super::i18n::Lang) -> PayoutLine {
    PayoutLine {
        id: p.id.clone(),
        short_id: short(&p.id),
        amount: super::i18n::grouped(&p.payout_amount),
        currency: p.currency.clone(),
        recipient: p.recipient_name.clone(),
        pay_before: utc_ms(p.pay_before_unix_s.saturating_mul(1000)),
        status: super::i18n::state_label(lang, &p.status),
        problem: None,
    }
}

async fn session(
    st: &AppState,
    h: &HeaderMap,
) -> Result<(Session, PartnerId), (super::i18n::Lang, PageError)> {
    let lang = super::i18n::Lang::from_headers(h);
    let s = Session::require(st, h, Role::Agent)
        .await
        .map_err(|e| (lang, e))?;
    let pid = agent_partner(&s).map_err(|e| (lang, e))?;
    Ok((s, pid))
}

#[derive(Debug, Deserialize)]
struct HomeQuery {
    done: Option<String>,
}

async fn home(
    State(st): State<AppState>,
    h: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<HomeQuery>,
) -> Response {
    respond(home_page(&st, &h, q.done.as_deref()).await)
}

async fn home_page(st: &AppState, h: &HeaderMap, done: Option<&str>) -> PageResult {
    let (s, pid) = session(st, h).await?;
    let lang = s.lang;
    let t = lang.t();
    let e = |e: PageError| (lang, e);
    let db = PartnerDb::from(&st.db);
    let mut waiting = Vec::new();
    for status in ["payout_assigned", "payout_accepted"] {
        let (items, _) = db
            .partner_payouts(pid.as_i64(), Some(status), None, WAITING_MAX)
            .await
            .map_err(|x| e(x.into()))?;
        waiting.extend(
            items
                .iter()
                .filter(|p| p.payout_method == PayoutMethod::CashPickup.as_str())
                .map(|p| line(p, lang)),
        );
    }
    waiting.sort_by(|a, b| a.pay_before.cmp(&b.pay_before));
    // problems agents reported (newest first): shown on the payouts still waiting
    let problems = st
        .engine
        .partner_audit(pid, "problem", 0)
        .await
        .map_err(|x| e(x.into()))?;
    for w in &mut waiting {
        w.problem = problems
            .iter()
            .find(|a| a.subject.as_deref() == Some(w.id.as_str()))
            .and_then(|a| a.detail.clone());
    }
    let midnight_ms = now_ms() - now_ms().rem_euclid(86_400_000);
    let paid_today = st
        .engine
        .partner_audit(pid, "paid", midnight_ms)
        .await
        .map_err(|x| e(x.into()))?
        .into_iter()
        .map(|a| PaidLine {
            at: utc_ms(a.created_at_unix_ms),
            short_id: a.subject.as_deref().map(short).unwrap_or_default(),
            detail: a.detail.unwrap_or_default(),
        })
        .collect();
    let partner_name = st
        .engine
        .partner(pid)
        .await
        .map_err(|x| e(x.into()))?
        .map_or_else(|| t.counter_title.to_owned(), |p| p.name);
    let flash = match done {
        Some("paid") => Some(t.paid_done.to_owned()),
        Some("problem") => Some(t.problem_recorded.to_owned()),
        _ => None,
    };
    Ok(page(
        StatusCode::OK,
        &CounterPage {
            l: s.layout(Role::Agent, t.counter_title, "/partner/"),
            csrf: s.csrf.clone(),
            flash,
            partner_name,
            waiting,
            paid_today,
        },
    ))
}

/// The look-up and "Paid" forms' fields. The code is a secret until the release: no `Debug` shows it.
#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

impl std::fmt::Debug for CodeForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeForm { .. }")
    }
}

fn throttles(st: &AppState, s: &Session, pid: PartnerId) -> [(String, Throttle); 2] {
    let c = &st.config.console;
    let window_ms = i64::try_from(c.throttle_window_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    [
        (
            format!("code:agent:{}", s.account.id),
            Throttle {
                failures_max: i64::from(c.code_failures_per_agent_max),
                window_ms,
            },
        ),
        (
            format!("code:partner:{pid}"),
            Throttle {
                failures_max: i64::from(c.code_failures_per_partner_max),
                window_ms,
            },
        ),
    ]
}

/// Refuses while the agent or its partner is over the wrong-code limit.
async fn check_throttle(st: &AppState, s: &Session, pid: PartnerId) -> Result<(), PageError> {
    for (bucket, t) in throttles(st, s, pid) {
        if let Some(retry_after_s) = st.engine.throttled(&bucket, t).await? {
            return Err(PageError::TooMany {
                retry_after_s,
                message: s.lang.t().code_throttled.to_owned(),
            });
        }
    }
    Ok(())
}

/// Counts a wrong code against the agent and its partner, and records it (without the code).
async fn wrong_code(
    st: &AppState,
    s: &Session,
    pid: PartnerId,
    subject: Option<&str>,
) -> Result<(), PageError> {
    for (bucket, t) in throttles(st, s, pid) {
        st.engine.throttle_fail(&bucket, t).await?;
    }
    st.engine.audit(&s.account, "code_refused", subject, None).await?;
    Ok(())
}

async fn lookup(State(st): State<AppState>, h: HeaderMap, Form(f): Form<CodeForm>) -> Response {
    respond(lookup_page(&st, &h, f).await)
}

async fn lookup_page(st: &AppState, h: &HeaderMap, f: CodeForm) -> PageResult {
    let (s, pid) = session(st, h).await?;
    let lang = s.lang;
    let t = lang.t();
    let e = |e: PageError| (lang, e);
    s.check_csrf(&f.csrf).map_err(e)?;
    check_throttle(st, &s, pid).await.map_err(e)?;
    let found = match PickupCode::parse(&f.code) {
        Ok(code) => {
            let lookup = st.engine.pickup_lookup(&code).map_err(|x| e(x.into()))?;
            PartnerDb::from(&st.db)
                .partner_payout_by_pickup_lookup(pid.as_i64(), &lookup)
                .await
                .map_err(|x| e(x.into()))?
                .map(|p| (p, code))
        }
        Err(_) => None,
    };
    let Some((p, code)) = found else {
        wrong_code(st, &s, pid, None).await.map_err(e)?;
        return Err(e(PageError::Refused(
            StatusCode::NOT_FOUND,
            t.code_unknown.to_owned(),
        )));
    };
    st.engine
        .audit(&s.account, "looked_up", Some(&p.id), None)
        .await
        .map_err(|x| e(x.into()))?;
    let blocked = match p.status.as_str() {
        "payout_assigned" | "payout_accepted" => None,
        "paid" | "settled" => Some(t.already_paid.to_owned()),
        other => Some(format!(
            "{}: {}",
            t.not_payable,
            super::i18n::state_label(lang, other)
        )),
    };
    let phone_last4: String = {
        let digits: Vec<char> = p.recipient_phone.chars().filter(char::is_ascii_digit).collect();
        digits[digits.len().saturating_sub(4)..].iter().collect()
    };
    Ok(page(
        StatusCode::OK,
        &PayoutPage {
            l: s.layout(Role::Agent, t.counter_title, "/partner/"),
            csrf: s.csrf.clone(),
            travel_rule: p.travel_rule.is_some(),
            p: line(&p, lang),
            phone_last4,
            code: code.expose().to_owned(),
            blocked,
        },
    ))
}

async fn paid(
    State(st): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CodeForm>,
) -> Response {
    respond(paid_action(&st, &h, &id, f).await)
}

async fn paid_action(st: &AppState, h: &HeaderMap, id: &str, f: CodeForm) -> PageResult {
    let (s, pid) = session(st, h).await?;
    let lang = s.lang;
    let t = lang.t();
    let e = |e: PageError| (lang, e);
    s.check_csrf(&f.csrf).map_err(e)?;
    check_throttle(st, &s, pid).await.map_err(e)?;
    let rid = RemittanceId::parse(id).map_err(|_| e(PageError::NotFound))?;
    // only this partner's payouts exist here
    let db = PartnerDb::from(&st.db);
    let p = db
        .partner_payout(pid.as_i64(), &rid.to_string())
        .await
        .map_err(|x| e(x.into()))?
        .ok_or(e(PageError::NotFound))?;
    // a second press of "Paid" (or a reload) pays nothing twice and records nothing twice
    if matches!(p.status.as_str(), "paid" | "settled") {
        return Err(e(PageError::Refused(
            StatusCode::CONFLICT,
            t.already_paid.to_owned(),
        )));
    }
    match st
        .engine
        .payout_paid(&rid, pid, PayoutProof::PickupCode { code: f.code.clone() })
        .await
    {
        Ok(_) => {}
        Err(crate::engine::EngineError::Invalid(_)) => {
            wrong_code(st, &s, pid, Some(&p.id)).await.map_err(e)?;
            return Err(e(PageError::Refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                t.code_unknown.to_owned(),
            )));
        }
        Err(x) => return Err(e(x.into())),
    }
    db.record_action(&pid.to_string(), &p.id, "complete", None, None)
        .await
        .map_err(|x| e(x.into()))?;
    let detail = format!(
        "{} {} · {}",
        super::i18n::grouped(&p.payout_amount),
        p.currency,
        p.recipient_name
    );
    st.engine
        .audit(&s.account, "paid", Some(&p.id), Some(&detail))
        .await
        .map_err(|x| e(x.into()))?;
    Ok(Redirect::to("/partner/?done=paid").into_response())
}

#[derive(Debug, Deserialize)]
struct ProblemForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
}

async fn problem(
    State(st): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<ProblemForm>,
) -> Response {
    respond(problem_action(&st, &h, &id, f).await)
}

async fn problem_action(st: &AppState, h: &HeaderMap, id: &str, f: ProblemForm) -> PageResult {
    let (s, pid) = session(st, h).await?;
    let lang = s.lang;
    let e = |e: PageError| (lang, e);
    s.check_csrf(&f.csrf).map_err(e)?;
    let reason = match f.reason.as_str() {
        r @ ("id_mismatch" | "no_id" | "no_cash" | "other") => r,
        _ => {
            return Err(e(PageError::Refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                lang.t().problem_reason.to_owned(),
            )));
        }
    };
    let note: String = f.note.chars().filter(|c| !c.is_control()).take(500).collect();
    let rid = RemittanceId::parse(id).map_err(|_| e(PageError::NotFound))?;
    let p = PartnerDb::from(&st.db)
        .partner_payout(pid.as_i64(), &rid.to_string())
        .await
        .map_err(|x| e(x.into()))?
        .ok_or(e(PageError::NotFound))?;
    let detail = if note.trim().is_empty() {
        reason.to_owned()
    } else {
        format!("{reason}: {}", note.trim())
    };
    st.engine
        .audit(&s.account, "problem", Some(&p.id), Some(&detail))
        .await
        .map_err(|x| e(x.into()))?;
    Ok(Redirect::to("/partner/?done=problem").into_response())
}

async fn settlements(State(st): State<AppState>, h: HeaderMap) -> Response {
    respond(settlements_page(&st, &h).await)
}

async fn settlements_page(st: &AppState, h: &HeaderMap) -> PageResult {
    let (s, pid) = session(st, h).await?;
    let lang = s.lang;
    let (items, _) = PartnerDb::from(&st.db)
        .partner_settlements(pid.as_i64(), st.engine.token_decimals(), None, SETTLEMENTS_MAX)
        .await
        .map_err(|x| (lang, x.into()))?;
    let items = items
        .into_iter()
        .map(|x| SettlementLine {
            at: utc_ms(x.at_unix_ms),
            amount: x.amount,
            releases: x.release_count,
            tx_hash: x.tx_hash,
            block: x.block_number,
        })
        .collect();
    Ok(page(
        StatusCode::OK,
        &SettlementsPage {
            l: s.layout(Role::Agent, lang.t().counter_title, "/partner/settlements"),
            items,
        },
    ))
}

async fn webhooks(
    State(st): State<AppState>,
    h: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<HomeQuery>,
) -> Response {
    respond(webhooks_page(&st, &h, q.done.as_deref()).await)
}

/// The partner's webhook deliveries, with "resend" for delivered and parked ones.
async fn webhooks_page(st: &AppState, h: &HeaderMap, done: Option<&str>) -> PageResult {
    let (s, pid) = session(st, h).await?;
    let items = PartnerDb::from(&st.db)
        .partner_deliveries(&pid.to_string(), super::webhooks::DELIVERIES_MAX)
        .await
        .map_err(|x| (s.lang, x.into()))?;
    Ok(super::webhooks::render(
        &s,
        Role::Agent,
        "/partner/webhooks",
        &items,
        &["delivered", "failed"],
        done,
    ))
}

async fn resend(
    State(st): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<super::CsrfForm>,
) -> Response {
    respond(resend_action(&st, &h, &id, f).await)
}

async fn resend_action(st: &AppState, h: &HeaderMap, id: &str, f: super::CsrfForm) -> PageResult {
    let (s, pid) = session(st, h).await?;
    s.check_csrf(&f.csrf).map_err(|x| (s.lang, x))?;
    let id: String = id.chars().take(100).collect();
    // only this partner's deliveries: another partner's id is not found
    let sent = PartnerDb::from(&st.db)
        .resend_delivery(&id, &pid.to_string())
        .await
        .map_err(|x| (s.lang, x.into()))?;
    super::webhooks::after_resend(st, &s, &id, sent, "/partner/webhooks").await
}
