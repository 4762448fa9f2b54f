//! The operator console (`/ops/`): the dashboard (remittances by state, settled per hour, the reconciliation figure
//! with a red mark when the ledger and the escrow differ, the relayer's gas, queue depths, the oldest unfinished
//! remittance) and the remittance search with each remittance's whole timeline. Operators only.

use std::time::Duration;

use alloy::providers::Provider as _;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use super::pages::{
    Bar, DashboardPage, RemittanceLine, RemittancePage, SearchPage, StateCount, TimelineLine, short, utc_ms,
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
}

async fn operator(st: &AppState, h: &HeaderMap) -> Result<Session, (super::i18n::Lang, PageError)> {
    let lang = super::i18n::Lang::from_headers(h);
    Session::require(st, h, Role::Operator)
        .await
        .map_err(|e| (lang, e))
}

/// Whole tokens from base units, exact (the token's decimals).
fn tokens(base_units: &str, decimals: u8) -> String {
    match base_units.parse::<i128>() {
        Ok(v) => rust_decimal::Decimal::try_from_i128_with_scale(v, u32::from(decimals).min(28))
            .map_or_else(|_| base_units.to_owned(), |d| d.normalize().to_string()),
        Err(_) => base_units.to_owned(),
    }
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

    // settled per hour, the last 24 hours (the current one included)
    let this_hour = now_ms() / 3_600_000;
    let rows = transitions::count_per_hour(pool, "settled", (this_hour - 23) * 3_600_000)
        .await
        .map_err(e)?;
    let per_hour: Vec<i64> = (this_hour - 23..=this_hour)
        .map(|hr| rows.iter().find(|(h, _)| *h == hr).map_or(0, |(_, n)| *n))
        .collect();
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

    let ledger = crate::engine::ledger::balance(pool, crate::engine::ledger::ESCROW)
        .await
        .map_err(|x| (lang, PageError::from(x)))?;
    let recon = tokio::time::timeout(
        CHAIN_READ_TIMEOUT,
        crate::engine::reconcile::reconcile(&st.db, st.chain.as_ref()),
    )
    .await
    .ok()
    .and_then(Result::ok);
    let relayer_gas = match (&st.chain, st.engine.custody().and_then(|c| c.relayer().ok())) {
        (Some(chain), Some(relayer)) => {
            tokio::time::timeout(CHAIN_READ_TIMEOUT, chain.provider.get_balance(relayer.address()))
                .await
                .ok()
                .and_then(Result::ok)
                // shown to 6 decimals, rounded down (a display; nothing is computed from it)
                .map(|wei| {
                    let eth = tokens(&wei.to_string(), 18);
                    eth.parse::<rust_decimal::Decimal>().map_or(eth, |d| {
                        d.round_dp_with_strategy(6, rust_decimal::RoundingStrategy::ToZero)
                            .to_string()
                    })
                })
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
            payout: format!("{} {}", r.payout_amount, r.currency),
            r: rem_line(&r),
            partner,
            transitions,
            actions,
            txs,
        },
    ))
}
