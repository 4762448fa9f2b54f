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
};

#[cfg(test)]
mod tests {
    use super::*;

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
