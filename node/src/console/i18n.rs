//! The consoles' words in English and Spanish. One struct, so a missing translation is a compile error.

use axum::http::HeaderMap;

use super::cookie;

/// The language of a page: the `remesa_lang` cookie (set by the language links), else the browser's
/// `Accept-Language` when it prefers Spanish, else English.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    Es,
}

impl Lang {
    pub fn from_headers(h: &HeaderMap) -> Self {
        match cookie(h, LANG_COOKIE) {
            Some("es") => return Self::Es,
            Some("en") => return Self::En,
            _ => {}
        }
        let accept = h
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // the first language listed is the browser's preference
        let first = accept.split(',').next().unwrap_or("").trim().to_ascii_lowercase();
        if first.starts_with("es") {
            Self::Es
        } else {
            Self::En
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Es => "es",
        }
    }
    pub fn t(self) -> &'static Tr {
        match self {
            Self::En => &EN,
            Self::Es => &ES,
        }
    }
}

pub const LANG_COOKIE: &str = "remesa_lang";

/// A remittance state as people at a counter read it (the operator console shows the API's names).
pub fn state_label(lang: Lang, state: &str) -> String {
    let (en, es) = match state {
        "quoted" => ("Quoted", "Cotizada"),
        "on_hold" => ("On hold for review", "Retenida para revisión"),
        "pending_funds" => ("Waiting for funds", "Esperando fondos"),
        "funds_locked" => ("Funds locked", "Fondos bloqueados"),
        "payout_assigned" => ("Ready for pickup", "Lista para retiro"),
        "payout_accepted" => ("Ready for pickup (accepted)", "Lista para retiro (aceptada)"),
        "paid" => ("Paid", "Pagada"),
        "settled" => ("Paid and settled", "Pagada y liquidada"),
        "refund_pending" => ("Withdrawn: do not pay", "Retirada: no pagar"),
        "refunded" => ("Refunded to the sender", "Reembolsada al remitente"),
        "expired" => ("Expired", "Vencida"),
        "failed" => ("Failed", "Fallida"),
        "cancelled" => ("Cancelled", "Cancelada"),
        other => return other.to_owned(),
    };
    match lang {
        Lang::En => en,
        Lang::Es => es,
    }
    .to_owned()
}

/// A decimal amount as written, its whole part grouped by thousands: `2455.00` → `2,455.00` (the decimals the
/// amount has are kept: it was already rounded to its currency's minor unit).
pub fn grouped(amount: &str) -> String {
    let (sign, rest) = amount.strip_prefix('-').map_or(("", amount), |r| ("-", r));
    let (int, frac) = rest.split_once('.').map_or((rest, None), |(i, f)| (i, Some(f)));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return amount.to_owned();
    }
    let mut out = String::with_capacity(amount.len() + int.len() / 3);
    out.push_str(sign);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// Every text the consoles show.
#[derive(Debug)]
pub struct Tr {
    pub counter_title: &'static str,
    pub ops_title: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub username: &'static str,
    pub password: &'static str,
    pub sign_in_refused: &'static str,
    pub sign_in_throttled: &'static str,
    pub language: &'static str,
    pub nav_counter: &'static str,
    pub nav_settlements: &'static str,
    pub nav_dashboard: &'static str,
    pub nav_remittances: &'static str,
    pub signed_in_as: &'static str,
    pub pickup_code: &'static str,
    pub pickup_code_hint: &'static str,
    pub find_payout: &'static str,
    pub waiting: &'static str,
    pub waiting_none: &'static str,
    pub paid_today: &'static str,
    pub paid_today_none: &'static str,
    pub amount_to_pay: &'static str,
    pub recipient: &'static str,
    pub phone: &'static str,
    pub pay_before: &'static str,
    pub status: &'static str,
    pub id_check: &'static str,
    pub id_check_name: &'static str,
    pub id_check_phone: &'static str,
    pub id_check_travel_rule: &'static str,
    pub paid_button: &'static str,
    pub paid_confirm: &'static str,
    pub problem_button: &'static str,
    pub problem_reason: &'static str,
    pub problem_id_mismatch: &'static str,
    pub problem_no_id: &'static str,
    pub problem_no_cash: &'static str,
    pub problem_other: &'static str,
    pub problem_note: &'static str,
    pub problem_recorded: &'static str,
    pub paid_done: &'static str,
    pub already_paid: &'static str,
    pub not_payable: &'static str,
    pub code_unknown: &'static str,
    pub code_throttled: &'static str,
    pub back: &'static str,
    pub settlements: &'static str,
    pub settlements_none: &'static str,
    pub settled_amount: &'static str,
    pub releases: &'static str,
    pub transaction: &'static str,
    pub block: &'static str,
    pub when: &'static str,
    pub dashboard: &'static str,
    pub by_state: &'static str,
    pub settled_per_hour: &'static str,
    pub settled_per_hour_caption: &'static str,
    pub reconciliation: &'static str,
    pub ledger_escrow: &'static str,
    pub chain_escrow: &'static str,
    pub recon_ok: &'static str,
    pub recon_mismatch: &'static str,
    pub recon_unavailable: &'static str,
    pub relayer_gas: &'static str,
    pub queues: &'static str,
    pub outbox_depth: &'static str,
    pub inbox_depth: &'static str,
    pub oldest_stuck: &'static str,
    pub nothing_stuck: &'static str,
    pub search: &'static str,
    pub search_hint: &'static str,
    pub search_none: &'static str,
    pub timeline: &'static str,
    pub transitions: &'static str,
    pub cause: &'static str,
    pub counter_actions: &'static str,
    pub chain_txs: &'static str,
    pub amount_sent: &'static str,
    pub partner: &'static str,
    pub created: &'static str,
    pub error_title: &'static str,
    pub forbidden: &'static str,
    pub not_found: &'static str,
    pub try_again: &'static str,
    pub form_expired: &'static str,
    pub skip_to_content: &'static str,
    pub nav_webhooks: &'static str,
    pub nav_partners: &'static str,
    pub nav_review: &'static str,
    pub webhooks: &'static str,
    pub webhooks_none: &'static str,
    pub event: &'static str,
    pub attempts: &'static str,
    pub last_result: &'static str,
    pub resend: &'static str,
    pub resent: &'static str,
    pub not_resendable: &'static str,
    pub partners: &'static str,
    pub partner_add: &'static str,
    pub partner_added: &'static str,
    pub partner_id: &'static str,
    pub name: &'static str,
    pub countries: &'static str,
    pub currencies: &'static str,
    pub methods: &'static str,
    pub public_key: &'static str,
    pub webhook_url: &'static str,
    pub settlement_address: &'static str,
    pub suspend: &'static str,
    pub activate: &'static str,
    pub rates: &'static str,
    pub rates_none: &'static str,
    pub rate: &'static str,
    pub fee: &'static str,
    pub corridor: &'static str,
    pub review: &'static str,
    pub review_none: &'static str,
    pub matched: &'static str,
    pub score: &'static str,
    pub decision_reason: &'static str,
    pub release: &'static str,
    pub reject: &'static str,
    pub decided: &'static str,
    pub over_time: &'static str,
    pub over_time_caption: &'static str,
    pub rate_post: &'static str,
    pub rate_posted: &'static str,
    pub country: &'static str,
    pub currency: &'static str,
    pub fee_fixed: &'static str,
    pub fee_bps: &'static str,
    pub send_min: &'static str,
    pub send_max: &'static str,
    pub valid_for_s: &'static str,
}

pub static EN: Tr = Tr {
    counter_title: "Remesa counter",
    ops_title: "Remesa operations",
    sign_in: "Sign in",
    sign_out: "Sign out",
    username: "Username",
    password: "Password",
    sign_in_refused: "Wrong username or password.",
    sign_in_throttled: "Too many wrong passwords for this username. Try again later.",
    language: "Español",
    nav_counter: "Pay out",
    nav_settlements: "Settlements",
    nav_dashboard: "Dashboard",
    nav_remittances: "Find a remittance",
    signed_in_as: "Signed in as",
    pickup_code: "Pickup code",
    pickup_code_hint: "12 letters and digits the recipient brings, e.g. K7QM-2XWD-9HPA",
    find_payout: "Find payout",
    waiting: "Waiting for pickup",
    waiting_none: "No payouts are waiting.",
    paid_today: "Paid today",
    paid_today_none: "Nothing paid today yet.",
    amount_to_pay: "Amount to pay",
    recipient: "Recipient",
    phone: "Phone",
    pay_before: "Pay before",
    status: "Status",
    id_check: "ID check before paying",
    id_check_name: "Ask for a government photo ID. The name on it must match",
    id_check_phone: "The recipient's phone number ends in",
    id_check_travel_rule: "Large transfer: write down the ID type and number in your records.",
    paid_button: "Paid",
    paid_confirm: "I paid the recipient in cash and checked the ID",
    problem_button: "Report a problem",
    problem_reason: "What is wrong?",
    problem_id_mismatch: "The ID does not match the name",
    problem_no_id: "The recipient has no ID",
    problem_no_cash: "Not enough cash at the counter",
    problem_other: "Something else",
    problem_note: "Note (optional)",
    problem_recorded: "Problem recorded. The payout stays open; your partner's office will follow up.",
    paid_done: "Paid. The sender is told in chat, and the money is released to your partner.",
    already_paid: "This payout was already paid.",
    not_payable: "This payout cannot be paid now",
    code_unknown: "No payout waits with this code. Check the code with the recipient.",
    code_throttled: "Too many wrong codes. Look-ups are paused for a while; ask your office if this persists.",
    back: "Back",
    settlements: "Settlements to your partner",
    settlements_none: "No settlements yet.",
    settled_amount: "Amount (USDC)",
    releases: "Payouts",
    transaction: "Transaction",
    block: "Block",
    when: "When (UTC)",
    dashboard: "Dashboard",
    by_state: "Remittances by state",
    settled_per_hour: "Settled per hour",
    settled_per_hour_caption: "Remittances settled in each of the last 24 hours (UTC), oldest on the left",
    reconciliation: "Reconciliation",
    ledger_escrow: "Ledger: money in escrow",
    chain_escrow: "Escrow contract balance",
    recon_ok: "They match",
    recon_mismatch: "MISMATCH: the ledger and the escrow differ",
    recon_unavailable: "Not available",
    relayer_gas: "Relayer gas balance (ETH)",
    queues: "Queues",
    outbox_depth: "Chain jobs waiting",
    inbox_depth: "Chat messages waiting",
    oldest_stuck: "Oldest unfinished remittance",
    nothing_stuck: "Nothing unfinished.",
    search: "Search",
    search_hint: "Remittance id, phone number (+502 5555 0101) or transaction hash",
    search_none: "Nothing found.",
    timeline: "Timeline",
    transitions: "State changes",
    cause: "Cause",
    counter_actions: "Counter actions",
    chain_txs: "Transactions",
    amount_sent: "Sent",
    partner: "Partner",
    created: "Created",
    error_title: "Something went wrong",
    forbidden: "You may not open this page with this account.",
    not_found: "Not found.",
    try_again: "The node is busy. Try again in a moment.",
    form_expired: "This form expired. Go back, reload the page and try again.",
    skip_to_content: "Skip to content",
    nav_webhooks: "Webhooks",
    nav_partners: "Partners",
    nav_review: "Review queue",
    webhooks: "Webhook deliveries",
    webhooks_none: "No webhook deliveries.",
    event: "Event",
    attempts: "Attempts",
    last_result: "Last result",
    resend: "Resend",
    resent: "Queued to be sent again.",
    not_resendable: "Only a delivered or failed delivery can be sent again.",
    partners: "Partners",
    partner_add: "Add a partner",
    partner_added: "Partner added.",
    partner_id: "Partner id",
    name: "Name",
    countries: "Countries (ISO codes, comma-separated)",
    currencies: "Currencies (ISO codes, comma-separated)",
    methods: "Payout methods",
    public_key: "Ed25519 public key (base64)",
    webhook_url: "Webhook URL (optional)",
    settlement_address: "Settlement address",
    suspend: "Suspend",
    activate: "Activate",
    rates: "Posted rates",
    rates_none: "No rates posted.",
    rate: "Rate",
    fee: "Fee",
    corridor: "Corridor",
    review: "Held transfers (sanctions screening)",
    review_none: "Nothing is held.",
    matched: "Matched",
    score: "Score",
    decision_reason: "Reason (recorded)",
    release: "Release",
    reject: "Reject",
    decided: "Decision recorded.",
    over_time: "Remittances per hour, by what happened",
    over_time_caption: "Each line counts the remittances that reached that state in each of the last 24 hours (UTC)",
    rate_post: "Post a rate",
    rate_posted: "Rate posted.",
    country: "Country (ISO code)",
    currency: "Currency (ISO code)",
    fee_fixed: "Fixed fee (USD)",
    fee_bps: "Fee in basis points (1/100 %)",
    send_min: "Smallest send (USD)",
    send_max: "Largest send (USD)",
    valid_for_s: "Valid for (seconds)",
};

pub static ES: Tr = Tr {
    counter_title: "Ventanilla Remesa",
    ops_title: "Operaciones Remesa",
    sign_in: "Entrar",
    sign_out: "Salir",
    username: "Usuario",
    password: "Contraseña",
    sign_in_refused: "Usuario o contraseña incorrectos.",
    sign_in_throttled: "Demasiadas contraseñas incorrectas para este usuario. Inténtelo más tarde.",
    language: "English",
    nav_counter: "Pagar",
    nav_settlements: "Liquidaciones",
    nav_dashboard: "Panel",
    nav_remittances: "Buscar una remesa",
    signed_in_as: "Sesión de",
    pickup_code: "Código de retiro",
    pickup_code_hint: "12 letras y números que trae el beneficiario, p. ej. K7QM-2XWD-9HPA",
    find_payout: "Buscar pago",
    waiting: "Esperando retiro",
    waiting_none: "No hay pagos esperando.",
    paid_today: "Pagados hoy",
    paid_today_none: "Todavía no se pagó nada hoy.",
    amount_to_pay: "Monto a pagar",
    recipient: "Beneficiario",
    phone: "Teléfono",
    pay_before: "Pagar antes de",
    status: "Estado",
    id_check: "Verificación de identidad antes de pagar",
    id_check_name: "Pida un documento de identidad con foto. El nombre debe coincidir con",
    id_check_phone: "El teléfono del beneficiario termina en",
    id_check_travel_rule: "Envío grande: anote el tipo y número de documento en sus registros.",
    paid_button: "Pagado",
    paid_confirm: "Pagué al beneficiario en efectivo y verifiqué su identidad",
    problem_button: "Informar un problema",
    problem_reason: "¿Qué pasa?",
    problem_id_mismatch: "El documento no coincide con el nombre",
    problem_no_id: "El beneficiario no tiene documento",
    problem_no_cash: "No hay suficiente efectivo en la ventanilla",
    problem_other: "Otra cosa",
    problem_note: "Nota (opcional)",
    problem_recorded: "Problema registrado. El pago sigue abierto; la oficina de su socio dará seguimiento.",
    paid_done: "Pagado. Se avisa al remitente por chat y el dinero se libera a su socio.",
    already_paid: "Este pago ya se hizo.",
    not_payable: "Este pago no se puede hacer ahora",
    code_unknown: "Ningún pago espera con este código. Verifique el código con el beneficiario.",
    code_throttled: "Demasiados códigos incorrectos. Las búsquedas están en pausa; consulte a su oficina si continúa.",
    back: "Volver",
    settlements: "Liquidaciones a su socio",
    settlements_none: "Todavía no hay liquidaciones.",
    settled_amount: "Monto (USDC)",
    releases: "Pagos",
    transaction: "Transacción",
    block: "Bloque",
    when: "Cuándo (UTC)",
    dashboard: "Panel",
    by_state: "Remesas por estado",
    settled_per_hour: "Liquidadas por hora",
    settled_per_hour_caption: "Remesas liquidadas en cada una de las últimas 24 horas (UTC), la más antigua a la izquierda",
    reconciliation: "Conciliación",
    ledger_escrow: "Libro: dinero en custodia",
    chain_escrow: "Saldo del contrato de custodia",
    recon_ok: "Coinciden",
    recon_mismatch: "DIFERENCIA: el libro y la custodia no coinciden",
    recon_unavailable: "No disponible",
    relayer_gas: "Saldo de gas del relayer (ETH)",
    queues: "Colas",
    outbox_depth: "Trabajos de cadena en espera",
    inbox_depth: "Mensajes de chat en espera",
    oldest_stuck: "Remesa sin terminar más antigua",
    nothing_stuck: "Nada sin terminar.",
    search: "Buscar",
    search_hint: "Id de remesa, teléfono (+502 5555 0101) o hash de transacción",
    search_none: "No se encontró nada.",
    timeline: "Historia",
    transitions: "Cambios de estado",
    cause: "Causa",
    counter_actions: "Acciones en ventanilla",
    chain_txs: "Transacciones",
    amount_sent: "Enviado",
    partner: "Socio",
    created: "Creada",
    error_title: "Algo salió mal",
    forbidden: "No puede abrir esta página con esta cuenta.",
    not_found: "No encontrado.",
    try_again: "El nodo está ocupado. Inténtelo de nuevo en un momento.",
    form_expired: "Este formulario venció. Vuelva, recargue la página e inténtelo de nuevo.",
    skip_to_content: "Saltar al contenido",
    nav_webhooks: "Webhooks",
    nav_partners: "Socios",
    nav_review: "Revisión",
    webhooks: "Envíos de webhooks",
    webhooks_none: "No hay envíos de webhooks.",
    event: "Evento",
    attempts: "Intentos",
    last_result: "Último resultado",
    resend: "Reenviar",
    resent: "En cola para enviarse de nuevo.",
    not_resendable: "Solo se puede reenviar un envío entregado o fallido.",
    partners: "Socios",
    partner_add: "Agregar un socio",
    partner_added: "Socio agregado.",
    partner_id: "Id del socio",
    name: "Nombre",
    countries: "Países (códigos ISO, separados por comas)",
    currencies: "Monedas (códigos ISO, separados por comas)",
    methods: "Métodos de pago",
    public_key: "Clave pública Ed25519 (base64)",
    webhook_url: "URL del webhook (opcional)",
    settlement_address: "Dirección de liquidación",
    suspend: "Suspender",
    activate: "Activar",
    rates: "Tasas publicadas",
    rates_none: "No hay tasas publicadas.",
    rate: "Tasa",
    fee: "Comisión",
    corridor: "Corredor",
    review: "Envíos retenidos (control de sanciones)",
    review_none: "No hay nada retenido.",
    matched: "Coincide con",
    score: "Puntaje",
    decision_reason: "Motivo (queda registrado)",
    release: "Liberar",
    reject: "Rechazar",
    decided: "Decisión registrada.",
    over_time: "Remesas por hora, según lo que pasó",
    over_time_caption: "Cada línea cuenta las remesas que llegaron a ese estado en cada una de las últimas 24 horas (UTC)",
    rate_post: "Publicar una tasa",
    rate_posted: "Tasa publicada.",
    country: "País (código ISO)",
    currency: "Moneda (código ISO)",
    fee_fixed: "Comisión fija (USD)",
    fee_bps: "Comisión en puntos básicos (1/100 %)",
    send_min: "Envío mínimo (USD)",
    send_max: "Envío máximo (USD)",
    valid_for_s: "Válida por (segundos)",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_grouped_as_written() {
        assert_eq!(grouped("2455.00"), "2,455.00");
        assert_eq!(grouped("1234567"), "1,234,567");
        assert_eq!(grouped("999.5"), "999.5");
        assert_eq!(grouped("-1000.25"), "-1,000.25");
        assert_eq!(grouped("0.75"), "0.75");
        assert_eq!(grouped("n/a"), "n/a");
    }

    #[test]
    fn every_state_has_a_label_in_both_languages() {
        for s in crate::engine::State::ALL {
            for lang in [Lang::En, Lang::Es] {
                assert_ne!(state_label(lang, s.as_str()), s.as_str(), "{s:?} in {lang:?}");
            }
        }
    }

    #[test]
    fn the_browser_preference_picks_spanish_and_the_cookie_wins() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::from_headers(&h), Lang::En);
        h.insert(
            "accept-language",
            "es-GT,es;q=0.9,en;q=0.5".parse().expect("header"),
        );
        assert_eq!(Lang::from_headers(&h), Lang::Es);
        h.insert("cookie", "a=1; remesa_lang=en".parse().expect("header"));
        assert_eq!(Lang::from_headers(&h), Lang::En);
    }
}
