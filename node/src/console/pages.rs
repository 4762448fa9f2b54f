//! The template structs of every console page (templates in `node/templates/console/`).

use askama::Template;

use super::i18n::{Lang, Tr};
use crate::domain::account::Role;

/// What every page's frame shows: title, navigation, who is signed in, the language switch.
#[derive(Debug)]
pub struct Layout {
    pub t: &'static Tr,
    pub lang: &'static str,
    /// The other language's code, for the switch.
    pub other_lang: &'static str,
    pub title: String,
    pub home: &'static str,
    pub nav: Vec<NavItem>,
    /// Display name and CSRF token of the signed-in person (the sign-out form).
    pub user: Option<(String, String)>,
    pub logout: &'static str,
    /// This page's path (the language switch comes back to it).
    pub here: String,
}

#[derive(Debug)]
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

impl Layout {
    pub fn new(lang: Lang, role: Role, title: &str, here: &str, user: Option<(&str, &str)>) -> Self {
        let t = lang.t();
        let item = |href: &'static str, label: &'static str| NavItem {
            href,
            label,
            current: here == href,
        };
        let (home, logout, nav) = match role {
            Role::Agent => (
                "/partner/",
                "/partner/logout",
                vec![
                    item("/partner/", t.nav_counter),
                    item("/partner/settlements", t.nav_settlements),
                    item("/partner/webhooks", t.nav_webhooks),
                ],
            ),
            Role::Operator => (
                "/ops/",
                "/ops/logout",
                vec![
                    item("/ops/", t.nav_dashboard),
                    item("/ops/remittances", t.nav_remittances),
                    item("/ops/partners", t.nav_partners),
                    item("/ops/holds", t.nav_review),
                    item("/ops/webhooks", t.nav_webhooks),
                ],
            ),
        };
        Self {
            t,
            lang: lang.code(),
            other_lang: match lang {
                Lang::En => "es",
                Lang::Es => "en",
            },
            title: title.to_owned(),
            home,
            nav: if user.is_some() { nav } else { Vec::new() },
            user: user.map(|(n, c)| (n.to_owned(), c.to_owned())),
            logout,
            here: if here.is_empty() {
                home.to_owned()
            } else {
                here.to_owned()
            },
        }
    }
}

#[derive(Template, Debug)]
#[template(path = "console/login.html")]
pub struct LoginPage {
    pub l: Layout,
    pub action: &'static str,
    pub csrf: String,
    pub message: Option<String>,
}

#[derive(Template, Debug)]
#[template(path = "console/error.html")]
pub struct ErrorPage {
    pub l: Layout,
    pub message: String,
}

/// One payout as the counter lists it.
#[derive(Debug, Clone)]
pub struct PayoutLine {
    pub id: String,
    pub short_id: String,
    pub amount: String,
    pub currency: String,
    pub recipient: String,
    pub pay_before: String,
    pub status: String,
    /// The latest problem an agent reported on it, if any.
    pub problem: Option<String>,
}

/// One line of today's paid list.
#[derive(Debug, Clone)]
pub struct PaidLine {
    pub at: String,
    pub short_id: String,
    pub detail: String,
}

#[derive(Template, Debug)]
#[template(path = "console/counter.html")]
pub struct CounterPage {
    pub l: Layout,
    pub csrf: String,
    pub flash: Option<String>,
    pub partner_name: String,
    pub waiting: Vec<PayoutLine>,
    pub paid_today: Vec<PaidLine>,
}

/// A payout found by its code, with what the agent must check and the two actions.
#[derive(Template, Debug)]
#[template(path = "console/payout.html")]
pub struct PayoutPage {
    pub l: Layout,
    pub csrf: String,
    pub p: PayoutLine,
    pub phone_last4: String,
    pub travel_rule: bool,
    /// The code the agent typed, carried to the "Paid" form (this page is `no-store`).
    pub code: String,
    /// Why it cannot be paid (already paid, withdrawn), if so.
    pub blocked: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SettlementLine {
    pub at: String,
    pub amount: String,
    pub releases: i64,
    pub tx_hash: String,
    pub block: i64,
}

#[derive(Template, Debug)]
#[template(path = "console/settlements.html")]
pub struct SettlementsPage {
    pub l: Layout,
    pub items: Vec<SettlementLine>,
}

/// A bar of a chart, its height already scaled to the plot (SVG user units).
#[derive(Debug, Clone)]
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub h: u32,
    pub label: String,
    pub value: i64,
}

#[derive(Debug, Clone)]
pub struct StateCount {
    pub state: String,
    pub n: i64,
    /// Width of its bar in percent steps of 5 (a CSS class `w-N`: no inline style under the CSP).
    pub w: u32,
}

#[derive(Template, Debug)]
#[template(path = "console/dashboard.html")]
pub struct DashboardPage {
    pub l: Layout,
    pub by_state: Vec<StateCount>,
    /// Remittances reaching each of a few states per hour, the last 24 hours.
    pub series: Vec<Series>,
    pub series_max: i64,
    pub hours: Vec<Bar>,
    pub hours_max: i64,
    pub hours_total: i64,
    pub ledger_escrow: String,
    pub chain_escrow: Option<String>,
    pub recon_block: Option<u64>,
    /// `Some(true)` match, `Some(false)` mismatch, `None` not available.
    pub recon_ok: Option<bool>,
    pub relayer_gas: Option<String>,
    pub outbox_depth: i64,
    pub inbox_depth: u64,
    pub oldest: Option<(String, String, String)>,
}

#[derive(Debug, Clone)]
pub struct RemittanceLine {
    pub id: String,
    pub short_id: String,
    pub state: String,
    pub sent: String,
    pub recipient: String,
    pub created: String,
}

#[derive(Template, Debug)]
#[template(path = "console/search.html")]
pub struct SearchPage {
    pub l: Layout,
    pub q: String,
    pub searched: bool,
    pub items: Vec<RemittanceLine>,
}

#[derive(Debug, Clone)]
pub struct TimelineLine {
    pub at: String,
    pub what: String,
    pub cause: String,
}

#[derive(Template, Debug)]
#[template(path = "console/remittance.html")]
pub struct RemittancePage {
    pub l: Layout,
    pub r: RemittanceLine,
    pub partner: String,
    pub payout: String,
    pub transitions: Vec<TimelineLine>,
    pub actions: Vec<TimelineLine>,
    pub txs: Vec<(String, String)>,
}

/// One webhook delivery as the consoles list it.
#[derive(Debug, Clone)]
pub struct DeliveryLine {
    pub id: String,
    pub at: String,
    pub partner: String,
    pub event: String,
    pub status: String,
    pub attempts: String,
    pub last: String,
    /// Whether the resend / requeue button applies.
    pub can_resend: bool,
}

#[derive(Template, Debug)]
#[template(path = "console/webhooks.html")]
pub struct WebhooksPage {
    pub l: Layout,
    pub csrf: String,
    pub flash: Option<String>,
    /// Where the resend forms post: `<base>/<id>/resend`.
    pub base: &'static str,
    pub show_partner: bool,
    pub items: Vec<DeliveryLine>,
}

#[derive(Debug, Clone)]
pub struct PartnerLine {
    pub id: u64,
    pub name: String,
    pub corridors: String,
    pub methods: String,
    pub settlement_address: String,
    pub active: bool,
}

#[derive(Template, Debug)]
#[template(path = "console/partners.html")]
pub struct PartnersPage {
    pub l: Layout,
    pub csrf: String,
    pub flash: Option<String>,
    pub items: Vec<PartnerLine>,
}

#[derive(Debug, Clone)]
pub struct RateLine {
    pub corridor: String,
    pub method: String,
    pub rate: String,
    pub fee: String,
    pub range: String,
}

#[derive(Template, Debug)]
#[template(path = "console/partner.html")]
pub struct PartnerPage {
    pub l: Layout,
    pub csrf: String,
    pub flash: Option<String>,
    pub p: PartnerLine,
    pub signer: String,
    pub webhook_url: String,
    pub rates: Vec<RateLine>,
}

#[derive(Debug, Clone)]
pub struct HitLine {
    pub name: String,
    pub matched: String,
    pub source: String,
    pub score: String,
}

#[derive(Debug, Clone)]
pub struct HoldLine {
    pub r: RemittanceLine,
    pub held_at: String,
    pub hits: Vec<HitLine>,
}

#[derive(Template, Debug)]
#[template(path = "console/holds.html")]
pub struct HoldsPage {
    pub l: Layout,
    pub csrf: String,
    pub flash: Option<String>,
    pub items: Vec<HoldLine>,
}

/// One series of a line chart: its name, colour, and the SVG `points` of its polyline.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub points: String,
    pub total: i64,
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM` UTC.
pub fn utc_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).map_or_else(
        |_| "?".into(),
        |t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        },
    )
}

/// The first 10 characters of a 0x id, for lists.
pub fn short(id: &str) -> String {
    id.chars().take(10).collect()
}
