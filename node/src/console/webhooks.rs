//! The webhook deliveries page, shared by the counter (a partner's own deliveries: resend a delivered or parked
//! one) and the operator console (every partner's: requeue a parked one).

use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Redirect, Response};

use super::pages::{DeliveryLine, WebhooksPage, utc_ms};
use super::{PageError, PageResult, Session, page};
use crate::domain::account::Role;
use crate::http::AppState;
use crate::partner::store::WebhookDelivery;

/// Most deliveries one page lists.
pub(super) const DELIVERIES_MAX: i64 = 200;

/// A delivery as the consoles list it; `resendable` says which statuses get the button.
fn line(d: &WebhookDelivery, resendable: &[&str]) -> DeliveryLine {
    DeliveryLine {
        id: d.id.clone(),
        at: utc_ms(d.created_at_unix_ms),
        partner: d.partner_id.clone(),
        event: d.event_type.clone(),
        status: d.status.clone(),
        attempts: format!("{}/{}", d.attempts, d.max_attempts),
        last: match (d.last_status_code, &d.last_error) {
            (Some(c), _) => format!("HTTP {c}"),
            (None, Some(err)) => err.chars().take(120).collect(),
            (None, None) => String::new(),
        },
        can_resend: resendable.contains(&d.status.as_str()),
    }
}

/// The page at `base` (`/partner/webhooks` or `/ops/webhooks`) for `s`.
pub(super) fn render(
    s: &Session,
    role: Role,
    base: &'static str,
    deliveries: &[WebhookDelivery],
    resendable: &[&str],
    done: Option<&str>,
) -> Response {
    let t = s.lang.t();
    let title = match role {
        Role::Agent => t.counter_title,
        Role::Operator => t.ops_title,
    };
    page(
        StatusCode::OK,
        &WebhooksPage {
            l: s.layout(role, title, base),
            csrf: s.csrf.clone(),
            flash: (done == Some("resent")).then(|| t.resent.to_owned()),
            base,
            show_partner: role == Role::Operator,
            items: deliveries.iter().map(|d| line(d, resendable)).collect(),
        },
    )
}

/// After a resend or requeue: audited and back to the page, or 409 when the delivery was not in a state to send.
pub(super) async fn after_resend(st: &AppState, s: &Session, id: &str, sent: bool, base: &str) -> PageResult {
    let e = |x: PageError| (s.lang, x);
    if !sent {
        return Err(e(PageError::Refused(
            StatusCode::CONFLICT,
            s.lang.t().not_resendable.to_owned(),
        )));
    }
    st.engine
        .audit(&s.account, "webhook_resent", Some(id), None)
        .await
        .map_err(|x| e(x.into()))?;
    Ok(Redirect::to(&format!("{base}?done=resent")).into_response())
}
