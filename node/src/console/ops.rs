//! The operator console (`/ops/`): the dashboard (remittances by state, settled per hour, the reconciliation figure
//! with a red mark when the ledger and the escrow differ, the relayer's gas, queue depths, the oldest unfinished
//! remittance) and the remittance search with each remittance's whole timeline. Operators only.

use std::time::Duration;

use alloy::primitives::U256;
use alloy::providers::Provider as _;
use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Redirect, Response};
use axum::routing::{get, post};
use remesa_wallet::money::TokenAmount;
use serde::Deserialize;

use super::pages::{
    Bar, DashboardPage, HitLine, HoldLine, HoldsPage, PartnerLine, PartnerPage, PartnersPage, RateLine,
    RemittanceLine, RemittancePage, SearchPage, Series, StateCount, TimelineLine, short, utc_ms,
};
use super::{PageError, PageResult, Session, auth_routes, page, respond};
use crate::domain::account::Role;
use crate::domain::{PhoneNumber, RemittanceId};
use crate::engine::{Remittance, RemittanceFilter, State as RemState};
use crate::http::AppState;
use crate::store::{now_ms, remittances, transitions};

/// How long the dashboard waits for the chain (reconciliation, gas balance) before showing "not available".
const CHAIN_READ_TIMEOUT: Duration = Duration::from_secs(3);
/// Most results of one search.
const SEARCH_RESULTS_MAX: u32 = 50;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .merge(auth_routes("/ops", Role::Operator))
        .route("/ops", get(|| async { Redirect::permanent("/ops/") }))
        .route("/ops/", get(dashboard))
        .route("/ops/remittances", get(search))
        .route("/ops/remittances/{id}", get(remittance))
        .route("/ops/partners", get(partners).post(add_partner))
        .route("/ops/partners/{id}", get(partner))
        .route("/ops/partners/{id}/status", post(partner_status))
        .route("/ops/partners/{id}/rates", post(post_rate))
        .route("/ops/holds", get(holds))
        .route("/ops/holds/{id}", post(decide_hold))
        .route("/ops/webhooks", get(webhooks))
        .route("/ops/webhooks/{id}/resend", post(requeue_webhook))
}

/// Most partners, held transfers and deliveries one page lists.
const LIST_MAX: u32 = 200;

async fn operator(st: &AppState, h: &HeaderMap) -> Result<Session, (super::i18n::Lang, PageError)> {
    let lang = super::i18n::Lang::from_headers(h);
    Session::require(st, h, Role::Operator)
        .await
        .map_err(|e| (lang, e))
}

/// Whole tokens from base units (decimal text), exact, by the wallet's `TokenAmount`; unreadable text as it is.
fn tokens(base_units: &str, decimals: u8) -> String {
    base_units.parse::<U256>().map_or_else(
        |_| base_units.to_owned(),
        |v| TokenAmount::from_base_units(v, decimals).to_string(),
    )
}

async fn dashboard(State(st): State<AppState>, h: HeaderMap) -> Response {
    respond(dashboard_page(&st, &h).await)
}

async fn dashboard_page(st: &AppState, h: &HeaderMap) -> PageResult {
    let s = operator(st, h).await?;
    let lang = s.lang;
    let e = |x: crate::store::StoreError| (lang, PageError::from(x));
    let pool = &st.db.pool;
    let decimals = st.engine.token_decimals();

    let mut counts = remittances::count_by_state(pool).await.map_err(e)?;
    counts.sort_by_key(|(state, _)| {
        RemState::ALL
            .iter()
            .position(|x| x.as_str() == state)
            .unwrap_or(usize::MAX)
    });
    let most = counts.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let by_state = counts
        .into_iter()
        .map(|(state, n)| StateCount {
            w: u32::try_from((n * 20 / most) * 5).unwrap_or(100).min(100),
            state,
            n,
        })
        .collect();

    // remittances reaching a few states in each of the last 24 hours (the current one included): one
    // polyline each; the settled ones also as the bar chart
    let this_hour = now_ms() / 3_600_000;
    let mut series = Vec::new();
    let mut per_state = Vec::new();
    for (state, color) in [
        ("funds_locked", "#0b5cad"),
        ("paid", "#b7791f"),
        ("settled", "#1f6f5c"),
        ("refunded", "#b42318"),
    ] {
        let rows = transitions::count_per_hour(pool, state, (this_hour - 23) * 3_600_000)
            .await
            .map_err(e)?;
        let counts: Vec<i64> = (this_hour - 23..=this_hour)
            .map(|hr| rows.iter().find(|(h, _)| *h == hr).map_or(0, |(_, n)| *n))
            .collect();
        per_state.push((state, color, counts));
    }
    let per_hour: Vec<i64> = per_state
        .iter()
        .find(|(state, _, _)| *state == "settled")
        .map(|(_, _, c)| c.clone())
        .unwrap_or_default();
    let hours_max = per_hour.iter().copied().max().unwrap_or(0);
    let hours_total = per_hour.iter().sum();
    let hours = per_hour
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let hgt = if hours_max == 0 {
                0
            } else {
                u32::try_from(n * 85 / hours_max).unwrap_or(85)
            };
            let at = (this_hour - 23 + i64::try_from(i).unwrap_or(0)) * 3_600_000;
            Bar {
                x: u32::try_from(i).unwrap_or(0) * 20,
                y: 100 - hgt,
                h: hgt,
                label: utc_ms(at),
                value: n,
            }
        })
        .collect();
    let series_max = per_state
        .iter()
        .flat_map(|(_, _, c)| c.iter().copied())
        .max()
        .unwrap_or(0);
    for (state, color, counts) in per_state {
        let points = counts
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let y = if series_max == 0 {
                    100
                } else {
                    100 - n * 85 / series_max
                };
                format!("{},{y}", i * 20 + 8)
            })
            .collect::<Vec<_>>()
            .join(" ");
        series.push(Series {
            name: state.to_owned(),
            color,
            total: counts.iter().sum(),
            points,
        });
    }

    let recon = tokio::time::timeout(
        CHAIN_READ_TIMEOUT,
        crate::engine::reconcile::reconcile(&st.db, st.chain.as_ref()),
    )
    .await
    .ok()
    .and_then(Result::ok);
    // the reconciliation's own ledger figure (read at its indexed block); without a chain, the ledger alone
    let ledger = match &recon {
        Some(r) => r.ledger_escrow_base_units,
        None => crate::engine::ledger::balance(pool, crate::engine::ledger::ESCROW)
            .await
            .map_err(|x| (lang, PageError::from(x)))?,
    };
    let relayer_gas = match (&st.chain, st.engine.custody().and_then(|c| c.relayer().ok())) {
        (Some(chain), Some(relayer)) => {
            tokio::time::timeout(CHAIN_READ_TIMEOUT, chain.provider.get_balance(relayer.address()))
                .await
                .ok()
                .and_then(Result::ok)
                // shown to 6 decimals, rounded down (a display; nothing is computed from it)
                .map(|wei| TokenAmount::from_base_units(wei / U256::from(10u64.pow(12)), 6).to_string())
        }
        _ => None,
    };
    let jobs = crate::chain::outbox::job_counts(&st.db)
        .await
        .map_err(|x| (lang, PageError::from(crate::engine::EngineError::from(x))))?;
    let outbox_depth = jobs
        .iter()
        .filter(|(_, status, _)| status != "done" && status != "failed")
        .map(|(_, _, n)| i64::try_from(*n).unwrap_or(i64::MAX))
        .sum();
    let inbox_depth = crate::store::chat::count_inbox_pending(pool)
        .await
        .map_err(e)
        .map(|n| u64::try_from(n).unwrap_or(0))?;
    let unfinished: Vec<&str> = RemState::ALL
        .iter()
        .filter(|x| !x.is_terminal() && **x != RemState::Quoted && **x != RemState::OnHold)
        .map(|x| x.as_str())
        .collect();
    let oldest = remittances::oldest_in_states(pool, &unfinished)
        .await
        .map_err(e)?
        .map(|(id, state, at)| (id, state, utc_ms(at)));

    Ok(page(
        StatusCode::OK,
        &DashboardPage {
            l: s.layout(Role::Operator, lang.t().ops_title, "/ops/"),
            by_state,
            series,
            series_max,
            hours,
            hours_max,
            hours_total,
            ledger_escrow: tokens(&ledger.to_string(), decimals),
            chain_escrow: recon
                .as_ref()
                .map(|r| tokens(&r.chain_escrow_base_units, decimals)),
            recon_block: recon.as_ref().and_then(|r| r.block),
            recon_ok: recon.as_ref().map(|r| r.matches),
            relayer_gas,
            outbox_depth,
            inbox_depth,
            oldest,
        },
    ))
}

fn rem_line(r: &Remittance) -> RemittanceLine {
    RemittanceLine {
        id: r.id.clone(),
        short_id: short(&r.id),
        state: r.state.to_string(),
        sent: format!("{} USD", r.send_amount),
        recipient: format!("{} ({})", r.recipient_name, r.recipient_phone),
        created: utc_ms(r.created_at_unix_ms),
    }
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    q: Option<String>,
}

async fn search(State(st): State<AppState>, h: HeaderMap, Query(q): Query<SearchQuery>) -> Response {
    respond(search_page(&st, &h, q.q.unwrap_or_default()).await)
}

/// A remittance id or a transaction hash (both 0x + 64 hex), or a phone number (sender or recipient).
async fn find(st: &AppState, q: &str) -> Result<Vec<Remittance>, PageError> {
    let q = q.trim();
    if q.is_empty() {
        return Ok(Vec::new());
    }
    if let Ok(id) = RemittanceId::parse(q) {
        if let Some(r) = st.engine.remittance(&id).await? {
            return Ok(vec![r]);
        }
        let hash = q.to_ascii_lowercase();
        let rows = remittances::by_tx_hash(&st.db.pool, &hash, i64::from(SEARCH_RESULTS_MAX)).await?;
        let mut out = Vec::new();
        for row in rows {
            if let Ok(rid) = RemittanceId::parse(&row.id)
                && let Some(r) = st.engine.remittance(&rid).await?
            {
                out.push(r);
            }
        }
        return Ok(out);
    }
    let Ok(phone) = PhoneNumber::parse(q, None) else {
        return Ok(Vec::new());
    };
    let mut out = st
        .engine
        .list_remittances(
            &RemittanceFilter {
                recipient_phone: Some(phone.as_str().to_owned()),
                ..RemittanceFilter::default()
            },
            None,
            SEARCH_RESULTS_MAX,
        )
        .await?
        .items;
    if let Some(u) = st.engine.find_user_by_phone(&phone).await? {
        let sent = st
            .engine
            .list_remittances(
                &RemittanceFilter {
                    sender_user_id: Some(u.id),
                    ..RemittanceFilter::default()
                },
                None,
                SEARCH_RESULTS_MAX,
            )
            .await?
            .items;
        out.extend(sent);
    }
    out.sort_by(|a, b| {
        b.created_at_unix_ms
            .cmp(&a.created_at_unix_ms)
            .then(a.id.cmp(&b.id))
    });
    out.dedup_by(|a, b| a.id == b.id);
    Ok(out)
}

async fn search_page(st: &AppState, h: &HeaderMap, q: String) -> PageResult {
    let s = operator(st, h).await?;
    let lang = s.lang;
    let q: String = q.chars().take(200).collect();
    let items = find(st, &q).await.map_err(|x| (lang, x))?;
    Ok(page(
        StatusCode::OK,
        &SearchPage {
            l: s.layout(Role::Operator, lang.t().ops_title, "/ops/remittances"),
            searched: !q.trim().is_empty(),
            q,
            items: items.iter().map(rem_line).collect(),
        },
    ))
}

async fn remittance(State(st): State<AppState>, h: HeaderMap, Path(id): Path<String>) -> Response {
    respond(remittance_page(&st, &h, &id).await)
}

async fn remittance_page(st: &AppState, h: &HeaderMap, id: &str) -> PageResult {
    let s = operator(st, h).await?;
    let lang = s.lang;
    let e = |x: PageError| (lang, x);
    let rid = RemittanceId::parse(id).map_err(|_| e(PageError::NotFound))?;
    let r = st
        .engine
        .remittance(&rid)
        .await
        .map_err(|x| e(x.into()))?
        .ok_or(e(PageError::NotFound))?;
    let transitions = st
        .engine
        .history(&rid)
        .await
        .map_err(|x| e(x.into()))?
        .into_iter()
        .map(|t| TimelineLine {
            at: utc_ms(t.at_unix_ms),
            what: match t.from {
                Some(f) => format!("{f} → {}", t.to),
                None => t.to.to_string(),
            },
            cause: t.cause,
        })
        .collect();
    let actions = st
        .engine
        .audit_of(&r.id)
        .await
        .map_err(|x| e(x.into()))?
        .into_iter()
        .map(|a| TimelineLine {
            at: utc_ms(a.created_at_unix_ms),
            what: a.action,
            cause: match (a.username, a.detail) {
                (Some(u), Some(d)) => format!("{u}: {d}"),
                (Some(u), None) => u,
                (None, d) => d.unwrap_or_default(),
            },
        })
        .collect();
    let partner = match crate::domain::PartnerId::new(r.partner_id) {
        Ok(p) => st
            .engine
            .partner(p)
            .await
            .map_err(|x| e(x.into()))?
            .map_or_else(|| r.partner_id.to_string(), |p| format!("{} ({})", p.name, p.id)),
        Err(_) => "—".into(),
    };
    let txs = [
        ("lock", &r.lock_tx_hash),
        ("release", &r.release_tx_hash),
        ("refund", &r.refund_tx_hash),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|h| (k.to_owned(), h.clone())))
    .collect();
    Ok(page(
        StatusCode::OK,
        &RemittancePage {
            l: s.layout(Role::Operator, lang.t().ops_title, "/ops/remittances"),
            payout: format!("{} {}", super::i18n::grouped(&r.payout_amount), r.currency),
            r: rem_line(&r),
            partner,
            transitions,
            actions,
            txs,
        },
    ))
}

// ------------------------------------------------------------------------------------------------ partners

fn partner_line(p: &crate::engine::Partner) -> PartnerLine {
    PartnerLine {
        id: p.id,
        name: p.name.clone(),
        corridors: format!("{} ({})", p.countries.join(", "), p.currencies.join(", ")),
        methods: p
            .payout_methods
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        settlement_address: p.settlement_address.clone(),
        active: p.status == "active",
    }
}

#[derive(Debug, Deserialize)]
struct FlashQuery {
    done: Option<String>,
}

async fn partners(State(st): State<AppState>, h: HeaderMap, Query(q): Query<FlashQuery>) -> Response {
    respond(partners_page(&st, &h, q.done.as_deref(), StatusCode::OK, None).await)
}

async fn partners_page(
    st: &AppState,
    h: &HeaderMap,
    done: Option<&str>,
    status: StatusCode,
    message: Option<String>,
) -> PageResult {
    let s = operator(st, h).await?;
    let lang = s.lang;
    let items = st
        .engine
        .list_partners()
        .await
        .map_err(|x| (lang, x.into()))?
        .iter()
        .map(partner_line)
        .collect();
    let flash = message.or_else(|| (done == Some("added")).then(|| lang.t().partner_added.to_owned()));
    Ok(page(
        status,
        &PartnersPage {
            l: s.layout(Role::Operator, lang.t().ops_title, "/ops/partners"),
            csrf: s.csrf.clone(),
            flash,
            items,
        },
    ))
}

/// The add-partner form's fields.
#[derive(Debug, Deserialize)]
struct PartnerForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    countries: String,
    #[serde(default)]
    currencies: String,
    #[serde(default)]
    cash_pickup: Option<String>,
    #[serde(default)]
    bank_deposit: Option<String>,
    #[serde(default)]
    mobile_wallet: Option<String>,
    #[serde(default)]
    public_key: String,
    #[serde(default)]
    webhook_url: String,
    #[serde(default)]
    settlement_address: String,
}

fn list_field(s: &str) -> Vec<String> {
    s.split(',')
        .map(|x| x.trim().to_ascii_uppercase())
        .filter(|x| !x.is_empty())
        .collect()
}

async fn add_partner(State(st): State<AppState>, h: HeaderMap, Form(f): Form<PartnerForm>) -> Response {
    respond(add_partner_action(&st, &h, f).await)
}

/// Adds a partner as `remesa partner add` does (also registered in the escrow when this node holds the owner key);
/// a refusal shows on the partners page with what was wrong.
async fn add_partner_action(st: &AppState, h: &HeaderMap, f: PartnerForm) -> PageResult {
    let s = operator(st, h).await?;
    let lang = s.lang;
    s.check_csrf(&f.csrf).map_err(|x| (lang, x))?;
    let Ok(id) = f.id.trim().parse::<u64>() else {
        let msg = format!("{}: 1 to {}", lang.t().partner_id, i64::MAX);
        return partners_page(st, h, None, StatusCode::UNPROCESSABLE_ENTITY, Some(msg)).await;
    };
    let methods = [
        ("cash_pickup", &f.cash_pickup),
        ("bank_deposit", &f.bank_deposit),
        ("mobile_wallet", &f.mobile_wallet),
    ]
    .into_iter()
    .filter(|(_, v)| v.is_some())
    .map(|(m, _)| m.to_owned())
    .collect();
    let args = crate::partner::wiring::PartnerAddArgs {
        id,
        name: f.name.trim().to_owned(),
        countries: list_field(&f.countries),
        currencies: list_field(&f.currencies),
        methods,
        public_key: f.public_key.trim().to_owned(),
        webhook_url: Some(f.webhook_url.trim().to_owned()).filter(|u| !u.is_empty()),
        settlement_address: f.settlement_address.trim().to_owned(),
        signer_address: None,
    };
    match crate::partner::add_partner(st, args).await {
        Ok(_) => {
            let detail = format!("partner {id}");
            st.engine
                .audit(&s.account, "partner_added", Some(&detail), None)
                .await
                .map_err(|x| (lang, x.into()))?;
            Ok(Redirect::to("/ops/partners?done=added").into_response())
        }
        Err(msg) => partners_page(st, h, None, StatusCode::UNPROCESSABLE_ENTITY, Some(msg)).await,
    }
}

#[derive(Debug, Deserialize)]
struct StatusForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    status: String,
}

async fn partner_status(
    State(st): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<StatusForm>,
) -> Response {
    respond(partner_status_action(&st, &h, &id, f).await)
}

async fn partner_status_action(st: &AppState, h: &HeaderMap, id: &str, f: StatusForm) -> PageResult {
    let s = operator(st, h).await?;
    let lang = s.lang;
    let e = |x: PageError| (lang, x);
    s.check_csrf(&f.csrf).map_err(e)?;
    let pid = crate::domain::PartnerId::parse(id).map_err(|_| e(PageError::NotFound))?;
    st.engine
        .set_partner_status(pid, &f.status)
        .await
        .map_err(|x| e(x.into()))?;
    let detail = format!("partner {pid}: {}", f.status);
    st.engine
        .audit(&s.account, "partner_status", Some(&detail), None)
        .await
        .map_err(|x| e(x.into()))?;
    Ok(Redirect::to("/ops/partners").into_response())
}

async fn partner(
    State(st): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<FlashQuery>,
) -> Response {
    let flash =
        (q.done.as_deref() == Some("rate")).then_some(super::i18n::Lang::from_headers(&h).t().rate_posted);
    respond(partner_page(&st, &h, &id, StatusCode::OK, flash.map(str::to_owned)).await)
}

async fn partner_page(
    st: &AppState,
    h: &HeaderMap,
    id: &str,
    status: StatusCode,
    flash: Option<String>,
) -> PageResult {
    let s = operator(st, h).await?;
    let lang = s.lang;
    let e = |x: PageError| (lang, x);
    let pid = crate::domain::PartnerId::parse(id).map_err(|_| e(PageError::NotFound))?;
    let p = st
        .engine
        .partner(pid)
        .await
        .map_err(|x| e(x.into()))?
        .ok_or(e(PageError::NotFound))?;
    let rates = st
        .engine
        .rates(pid)
        .await
        .map_err(|x| e(x.into()))?
        .into_iter()
        .map(|r| RateLine {
            corridor: format!("{} {}", r.country, r.currency),
            method: r.payout_method.as_str().to_owned(),
            rate: r.rate,
            fee: format!("{} USD + {} bps", r.fee_fixed, r.fee_bps),
            range: format!("{}–{}", r.send_min, r.send_max),
        })
        .collect();
    Ok(page(
        status,
        &PartnerPage {
            l: s.layout(Role::Operator, lang.t().ops_title, "/ops/partners"),
            csrf: s.csrf.clone(),
            flash,
            signer: p.signer_address.clone(),
            webhook_url: p.webhook_url.clone().unwrap_or_else(|| "—".into()),
            p: partner_line(&p),
            rates,
        },
    ))
}

/// The post-a-rate form's fields (one rate, as `PUT /v1/admin/partners/{id}/rates` takes them).
#[derive(Debug, Deserialize)]
struct RateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    payout_method: String,
    #[serde(default)]
    rate: String,
    #[serde(default)]
    fee_fixed: String,
    #[serde(default)]
    fee_bps: String,
    #[serde(default)]
    send_min: String,
    #[serde(default)]
    send_max: String,
    #[serde(default)]
    valid_for_s: String,
}

async fn post_rate(
    State(st): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<RateForm>,
) -> Response {
    respond(post_rate_action(&st, &h, &id, f).await)
}

/// Posts one rate for a partner through the engine (its checks: registered corridor, positive rate, fee limits); a
/// refusal shows on the partner's page.
async fn post_rate_action(st: &AppState, h: &HeaderMap, id: &str, f: RateForm) -> PageResult {
    let s = operator(st, h).await?;
    let lang = s.lang;
    let e = |x: PageError| (lang, x);
    s.check_csrf(&f.csrf).map_err(e)?;
    let pid = crate::domain::PartnerId::parse(id).map_err(|_| e(PageError::NotFound))?;
    let refuse =
        |m: String| async move { partner_page(st, h, id, StatusCode::UNPROCESSABLE_ENTITY, Some(m)).await };
    let Some(method) = crate::domain::PayoutMethod::parse(&f.payout_method) else {
        return refuse(format!(
            "{}: cash_pickup, bank_deposit, mobile_wallet",
            lang.t().methods
        ))
        .await;
    };
    let (Ok(fee_bps), Ok(valid_for_s)) = (
        f.fee_bps.trim().parse::<u32>(),
        f.valid_for_s.trim().parse::<u64>(),
    ) else {
        return refuse(format!(
            "{}, {}: whole numbers",
            lang.t().fee_bps,
            lang.t().valid_for_s
        ))
        .await;
    };
    let input = crate::engine::RateInput {
        country: f.country.trim().to_ascii_uppercase(),
        currency: f.currency.trim().to_ascii_uppercase(),
        payout_method: method,
        rate: f.rate.trim().to_owned(),
        fee_fixed: f.fee_fixed.trim().to_owned(),
        fee_bps,
        send_min: f.send_min.trim().to_owned(),
        send_max: f.send_max.trim().to_owned(),
        valid_for_s,
    };
    let detail = format!(
        "partner {pid}: {} {} {} at {}",
        input.country,
        input.currency,
        method.as_str(),
        input.rate
    );
    match st.engine.set_rates(pid, vec![input]).await {
        Ok(_) => {}
        Err(crate::engine::EngineError::Invalid(m)) => return refuse(m).await,
        Err(x) => return Err(e(x.into())),
    }
    st.engine
        .audit(&s.account, "rate_posted", Some(&detail), None)
        .await
        .map_err(|x| e(x.into()))?;
    Ok(Redirect::to(&format!("/ops/partners/{pid}?done=rate")).into_response())
}

// --------------------------------------------------------------------------------------------- the review queue

async fn holds(State(st): State<AppState>, h: HeaderMap, Query(q): Query<FlashQuery>) -> Response {
    respond(holds_page(&st, &h, q.done.as_deref()).await)
}

async fn holds_page(st: &AppState, h: &HeaderMap, done: Option<&str>) -> PageResult {
    let s = operator(st, h).await?;
    let lang = s.lang;
    let items = st
        .engine
        .held_remittances(LIST_MAX)
        .await
        .map_err(|x| (lang, x.into()))?
        .into_iter()
        .map(|hr| HoldLine {
            r: rem_line(&hr.remittance),
            held_at: utc_ms(hr.held_at_unix_ms),
            hits: hr
                .hits
                .into_iter()
                .map(|x| HitLine {
                    name: x.name,
                    matched: x.matched_name,
                    source: format!("{} {}", x.source, x.entry_id),
                    score: format!("{:.2}", x.score),
                })
                .collect(),
        })
        .collect();
    Ok(page(
        StatusCode::OK,
        &HoldsPage {
            l: s.layout(Role::Operator, lang.t().ops_title, "/ops/holds"),
            csrf: s.csrf.clone(),
            flash: (done == Some("decided")).then(|| lang.t().decided.to_owned()),
            items,
        },
    ))
}

#[derive(Debug, Deserialize)]
struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
}

async fn decide_hold(
    State(st): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<DecisionForm>,
) -> Response {
    respond(decide_hold_action(&st, &h, &id, f).await)
}

/// Releases or rejects a held transfer, recorded with the operator's username as the reviewer.
async fn decide_hold_action(st: &AppState, h: &HeaderMap, id: &str, f: DecisionForm) -> PageResult {
    let s = operator(st, h).await?;
    let lang = s.lang;
    let e = |x: PageError| (lang, x);
    s.check_csrf(&f.csrf).map_err(e)?;
    let rid = RemittanceId::parse(id).map_err(|_| e(PageError::NotFound))?;
    let d = crate::engine::screening::HoldDecision {
        reviewer: s.account.username.clone(),
        reason: f.reason.trim().to_owned(),
    };
    match f.decision.as_str() {
        "release" => st.engine.release_hold(&rid, &d).await,
        "reject" => st.engine.reject_hold(&rid, &d).await,
        _ => {
            return Err(e(PageError::Refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "release or reject".into(),
            )));
        }
    }
    .map_err(|x| e(x.into()))?;
    st.engine
        .audit(
            &s.account,
            &format!("hold_{}", f.decision),
            Some(&rid.to_string()),
            Some(&d.reason),
        )
        .await
        .map_err(|x| e(x.into()))?;
    Ok(Redirect::to("/ops/holds?done=decided").into_response())
}

// ------------------------------------------------------------------------------------------------ webhooks

async fn webhooks(State(st): State<AppState>, h: HeaderMap, Query(q): Query<FlashQuery>) -> Response {
    respond(webhooks_page(&st, &h, q.done.as_deref()).await)
}

async fn webhooks_page(st: &AppState, h: &HeaderMap, done: Option<&str>) -> PageResult {
    let s = operator(st, h).await?;
    let items = crate::partner::store::PartnerDb::from(&st.db)
        .list_deliveries(None, None, super::webhooks::DELIVERIES_MAX)
        .await
        .map_err(|x| (s.lang, x.into()))?;
    Ok(super::webhooks::render(
        &s,
        Role::Operator,
        "/ops/webhooks",
        &items,
        &["failed"],
        done,
    ))
}

async fn requeue_webhook(
    State(st): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<super::CsrfForm>,
) -> Response {
    respond(requeue_action(&st, &h, &id, f).await)
}

/// Puts a parked delivery back in the queue (as `POST /v1/admin/partner/webhooks/{id}/requeue`).
async fn requeue_action(st: &AppState, h: &HeaderMap, id: &str, f: super::CsrfForm) -> PageResult {
    let s = operator(st, h).await?;
    s.check_csrf(&f.csrf).map_err(|x| (s.lang, x))?;
    let id: String = id.chars().take(100).collect();
    let sent = crate::partner::store::PartnerDb::from(&st.db)
        .requeue_delivery(&id)
        .await
        .map_err(|x| (s.lang, x.into()))?;
    super::webhooks::after_resend(st, &s, &id, sent, "/ops/webhooks").await
}
