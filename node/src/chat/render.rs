//! Every text the bridge sends, in English and Spanish. Pure functions from views to [`OutboundMessage`]s, so the
//! texts are tested without a platform. Amounts are exact decimals, shown with two decimals (rates with four).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::intent::{AmountError, Lang, UnknownReason, format_money};
use super::model::{Button, OutboundMessage};
use crate::domain::PayoutMethod;
use crate::domain::PhoneError;
use crate::engine::LimitWindow;

/// Button id prefix: confirm the quote with this id.
pub const BTN_CONFIRM: &str = "confirm:";
/// Button id prefix: cancel the quote with this id.
pub const BTN_CANCEL: &str = "cancel:";
/// Button id prefix: choose a payout method.
pub const BTN_METHOD: &str = "method:";
/// Button ids of the main menu.
pub const BTN_MENU_SEND: &str = "menu:send";
/// Button id: balance.
pub const BTN_MENU_BALANCE: &str = "menu:balance";
/// Button id: history.
pub const BTN_MENU_HISTORY: &str = "menu:history";

/// A firm quote as shown to the sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteView {
    /// Quote id (button payloads carry it).
    pub quote_id: String,
    /// Amount converted and delivered, in `send_currency`.
    pub send_amount: Decimal,
    /// Send currency (`USD`).
    pub send_currency: String,
    /// Fixed part of the fee.
    pub fee_fixed: Decimal,
    /// Proportional part of the fee, in basis points of `send_amount`.
    pub fee_bps: u32,
    /// Total fee (fixed + proportional, rounded up to the minor unit by the engine).
    pub fee_total: Decimal,
    /// What leaves the sender's wallet: `send_amount + fee_total`.
    pub total_debit: Decimal,
    /// Applied rate: 1 `send_currency` = `rate` `payout_currency`.
    pub rate: Decimal,
    /// Mid-market rate at quote time, if known.
    pub mid_market_rate: Option<Decimal>,
    /// What the recipient gets (rounded down to the payout currency's minor unit by the engine).
    pub payout_amount: Decimal,
    /// Payout currency (`GTQ`).
    pub payout_currency: String,
    /// Payout method.
    pub payout_method: PayoutMethod,
    /// Partner paying out (display name).
    pub partner_name: String,
    /// Recipient name, if given.
    pub recipient_name: Option<String>,
    /// Recipient phone (E.164).
    pub recipient_phone: String,
    /// Expiry.
    pub expires_at_unix_s: i64,
    /// Now, for "valid for N minutes".
    pub now_unix_s: i64,
}

impl QuoteView {
    /// All-in cost in `send_currency` versus converting `total_debit` at mid-market: `total_debit - payout/mid`,
    /// and as a percentage of `total_debit` (both rounded to two decimals for display).
    pub fn all_in_cost(&self) -> Option<(Decimal, Decimal)> {
        let mid = self.mid_market_rate.filter(|m| *m > Decimal::ZERO)?;
        if self.total_debit <= Decimal::ZERO {
            return None;
        }
        let value_at_mid = self.payout_amount.checked_div(mid)?;
        let cost = self.total_debit.checked_sub(value_at_mid)?;
        let pct = cost
            .checked_mul(Decimal::ONE_HUNDRED)?
            .checked_div(self.total_debit)?;
        Some((cost.round_dp(2), pct.round_dp(2)))
    }
}

/// A remittance as shown in status and history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemittanceView {
    /// Full remittance id (0x…).
    pub remittance_id: String,
    /// Short reference the user can type (`status <ref>`).
    pub reference: String,
    /// Engine state name (`funds_locked`, `paid`, …).
    pub state: String,
    /// Amount sent.
    pub send_amount: Decimal,
    /// Send currency.
    pub send_currency: String,
    /// Payout amount.
    pub payout_amount: Decimal,
    /// Payout currency.
    pub payout_currency: String,
    /// Recipient name or phone.
    pub recipient: String,
    /// Creation time.
    pub created_at_unix_s: i64,
    /// Last on-chain transaction, if any.
    pub tx_hash: Option<String>,
    /// Until when the sender may cancel for a full refund (set on the receipt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_until_unix_s: Option<i64>,
}

/// What the recipient needs to collect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingView {
    /// Sender's name or phone.
    pub sender: String,
    /// Payout amount.
    pub payout_amount: Decimal,
    /// Payout currency.
    pub payout_currency: String,
    /// Method.
    pub payout_method: PayoutMethod,
    /// Partner name.
    pub partner_name: String,
    /// Where to collect (partner's text), if known.
    pub where_to_collect: Option<String>,
    /// Pickup code (cash pickup only).
    pub pickup_code: Option<String>,
    /// Reference.
    pub reference: String,
    /// Deadline to collect before the money returns to the sender.
    pub expires_at_unix_s: Option<i64>,
}

fn t(lang: Lang, en: &str, es: &str) -> String {
    match lang {
        Lang::En => en.to_owned(),
        Lang::Es => es.to_owned(),
    }
}

fn money(amount: Decimal, currency: &str) -> String {
    format!("{} {currency}", format_money(amount))
}

/// `2026-05-01 14:05 UTC`.
pub fn format_time(unix_s: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix_s) {
        Ok(dt) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute()
        ),
        Err(_) => "?".to_owned(),
    }
}

/// Name of a payout method.
pub fn method_name(lang: Lang, m: PayoutMethod) -> String {
    match (m, lang) {
        (PayoutMethod::CashPickup, Lang::En) => "cash pickup",
        (PayoutMethod::CashPickup, Lang::Es) => "retiro en efectivo",
        (PayoutMethod::BankDeposit, Lang::En) => "bank deposit",
        (PayoutMethod::BankDeposit, Lang::Es) => "depósito bancario",
        (PayoutMethod::MobileWallet, Lang::En) => "mobile wallet",
        (PayoutMethod::MobileWallet, Lang::Es) => "billetera móvil",
        (PayoutMethod::RemesaWallet, Lang::En) => "Remesa wallet",
        (PayoutMethod::RemesaWallet, Lang::Es) => "billetera Remesa",
    }
    .to_owned()
}

/// Human name of an engine state.
pub fn state_name(lang: Lang, state: &str) -> String {
    let (en, es) = match state {
        "quoted" => ("quoted", "cotizado"),
        "on_hold" => ("under review", "en revisión"),
        "pending_funds" => ("waiting for funds", "esperando fondos"),
        "funds_locked" => ("funds locked on chain", "fondos bloqueados en cadena"),
        "payout_assigned" => ("sent to the payout partner", "enviado al pagador"),
        "payout_accepted" => ("ready to collect", "listo para cobrar"),
        "paid" => ("paid to the recipient", "pagado al destinatario"),
        "settled" => ("paid and settled", "pagado y liquidado"),
        "refund_pending" => ("refund in progress", "reembolso en curso"),
        "refunded" => ("refunded", "reembolsado"),
        "expired" => ("expired", "vencido"),
        "failed" => ("failed", "fallido"),
        "cancelled" | "canceled" => ("cancelled", "cancelado"),
        other => (other, other),
    };
    t(lang, en, es)
}

/// The main menu buttons.
fn menu(lang: Lang) -> Vec<Button> {
    vec![
        Button::new(BTN_MENU_SEND, t(lang, "Send money", "Enviar dinero")),
        Button::new(BTN_MENU_BALANCE, t(lang, "Balance", "Saldo")),
        Button::new(BTN_MENU_HISTORY, t(lang, "History", "Historial")),
    ]
}

/// First contact: the custodial wallet address and what to do next.
pub fn welcome(lang: Lang, name: Option<&str>, wallet_address: &str) -> OutboundMessage {
    let hi = match (lang, name) {
        (Lang::En, Some(n)) => format!("Hi {n}! Welcome to Remesa."),
        (Lang::Es, Some(n)) => format!("¡Hola {n}! Bienvenido a Remesa."),
        (Lang::En, None) => "Hi! Welcome to Remesa.".to_owned(),
        (Lang::Es, None) => "¡Hola! Bienvenido a Remesa.".to_owned(),
    };
    let body = match lang {
        Lang::En => format!(
            "{hi}\n\nYour Remesa wallet address (USD stablecoin):\n{wallet_address}\n\nTo send money, write for example:\n*send 100 to Maria +502 5555 0101 cash pickup*\n\nWrite *help* at any time."
        ),
        Lang::Es => format!(
            "{hi}\n\nLa dirección de tu billetera Remesa (dólar digital):\n{wallet_address}\n\nPara enviar dinero, escribe por ejemplo:\n*envía 100 a María +502 5555 0101 en efectivo*\n\nEscribe *ayuda* cuando quieras."
        ),
    };
    OutboundMessage::with_buttons(body, menu(lang))
}

/// Greeting for a known user.
pub fn greeting(lang: Lang, name: Option<&str>) -> OutboundMessage {
    let body = match (lang, name) {
        (Lang::En, Some(n)) => format!("Hi {n}! What would you like to do?"),
        (Lang::Es, Some(n)) => format!("¡Hola {n}! ¿Qué quieres hacer?"),
        (Lang::En, None) => "Hi! What would you like to do?".to_owned(),
        (Lang::Es, None) => "¡Hola! ¿Qué quieres hacer?".to_owned(),
    };
    OutboundMessage::with_buttons(body, menu(lang))
}

/// The wallet balance.
pub fn balance(lang: Lang, amount: Decimal, currency: &str, wallet_address: &str) -> OutboundMessage {
    OutboundMessage::text(match lang {
        Lang::En => format!(
            "Your balance: *{}*\nWallet: {wallet_address}",
            money(amount, currency)
        ),
        Lang::Es => format!(
            "Tu saldo: *{}*\nBilletera: {wallet_address}",
            money(amount, currency)
        ),
    })
}

/// The firm quote with Confirm / Cancel buttons.
pub fn quote(lang: Lang, q: &QuoteView) -> OutboundMessage {
    let recipient = match &q.recipient_name {
        Some(n) => format!("{n} ({})", q.recipient_phone),
        None => q.recipient_phone.clone(),
    };
    let pct = Decimal::from(q.fee_bps)
        .checked_div(Decimal::ONE_HUNDRED)
        .unwrap_or_default()
        .normalize();
    let fee_detail = match lang {
        Lang::En => format!("{} fixed + {pct}%", money(q.fee_fixed, &q.send_currency)),
        Lang::Es => format!("{} fijo + {pct}%", money(q.fee_fixed, &q.send_currency)),
    };
    let minutes = ((q.expires_at_unix_s - q.now_unix_s).max(0) + 59) / 60;
    let rate = q.rate.round_dp(4);
    if q.payout_method == PayoutMethod::RemesaWallet {
        // A P2P transfer between Remesa wallets: same currency, no partner, no rate to show.
        let fee = if q.fee_total.is_zero() {
            t(
                lang,
                " (free: no fee, no gas to pay)",
                " (gratis: sin comisión ni gas)",
            )
        } else {
            String::new()
        };
        let lines = match lang {
            Lang::En => vec![
                "*Your quote*".to_owned(),
                format!("You send: {}", money(q.send_amount, &q.send_currency)),
                format!("Fee: {}{fee}", money(q.fee_total, &q.send_currency)),
                format!("Total to pay: *{}*", money(q.total_debit, &q.send_currency)),
                format!(
                    "{recipient} gets: *{}* in their Remesa wallet, instantly",
                    money(q.payout_amount, &q.payout_currency)
                ),
                format!(
                    "Valid for {minutes} min (until {}).",
                    format_time(q.expires_at_unix_s)
                ),
                "Confirm?".to_owned(),
            ],
            Lang::Es => vec![
                "*Tu cotización*".to_owned(),
                format!("Envías: {}", money(q.send_amount, &q.send_currency)),
                format!("Comisión: {}{fee}", money(q.fee_total, &q.send_currency)),
                format!("Total a pagar: *{}*", money(q.total_debit, &q.send_currency)),
                format!(
                    "{recipient} recibe: *{}* en su billetera Remesa, al instante",
                    money(q.payout_amount, &q.payout_currency)
                ),
                format!(
                    "Válida por {minutes} min (hasta {}).",
                    format_time(q.expires_at_unix_s)
                ),
                "¿Confirmas?".to_owned(),
            ],
        };
        return OutboundMessage::with_buttons(
            lines.join("\n"),
            vec![
                Button::new(
                    format!("{BTN_CONFIRM}{}", q.quote_id),
                    t(lang, "Confirm", "Confirmar"),
                ),
                Button::new(
                    format!("{BTN_CANCEL}{}", q.quote_id),
                    t(lang, "Cancel", "Cancelar"),
                ),
            ],
        );
    }
    let mut lines = match lang {
        Lang::En => vec![
            "*Your quote*".to_owned(),
            format!("You send: {}", money(q.send_amount, &q.send_currency)),
            format!("Fee: {} ({fee_detail})", money(q.fee_total, &q.send_currency)),
            format!("Taxes: {}", money(Decimal::ZERO, &q.send_currency)),
            format!("Total to pay: *{}*", money(q.total_debit, &q.send_currency)),
            format!("Rate: 1 {} = {rate} {}", q.send_currency, q.payout_currency),
            format!(
                "{recipient} gets: *{}*",
                money(q.payout_amount, &q.payout_currency)
            ),
            format!(
                "By: {} with {}",
                method_name(lang, q.payout_method),
                q.partner_name
            ),
        ],
        Lang::Es => vec![
            "*Tu cotización*".to_owned(),
            format!("Envías: {}", money(q.send_amount, &q.send_currency)),
            format!(
                "Comisión: {} ({fee_detail})",
                money(q.fee_total, &q.send_currency)
            ),
            format!("Impuestos: {}", money(Decimal::ZERO, &q.send_currency)),
            format!("Total a pagar: *{}*", money(q.total_debit, &q.send_currency)),
            format!(
                "Tipo de cambio: 1 {} = {rate} {}",
                q.send_currency, q.payout_currency
            ),
            format!(
                "{recipient} recibe: *{}*",
                money(q.payout_amount, &q.payout_currency)
            ),
            format!(
                "Por: {} con {}",
                method_name(lang, q.payout_method),
                q.partner_name
            ),
        ],
    };
    // Where a third party stands between the partner and the recipient, it may take its own fee.
    if matches!(
        q.payout_method,
        PayoutMethod::BankDeposit | PayoutMethod::MobileWallet
    ) {
        lines.push(t(
            lang,
            "The recipient's bank or wallet provider may charge its own fees, and foreign taxes may apply: the \
             recipient may get less.",
            "El banco o la billetera del destinatario puede cobrar sus propias comisiones y pueden aplicar impuestos \
             extranjeros: el destinatario podría recibir menos.",
        ));
    }
    if let (Some((cost, pct)), Some(mid)) = (q.all_in_cost(), q.mid_market_rate) {
        lines.push(match lang {
            Lang::En => format!(
                "All-in cost: {} ({pct}%) vs the mid-market rate {}",
                money(cost, &q.send_currency),
                mid.round_dp(4)
            ),
            Lang::Es => format!(
                "Costo total: {} ({pct}%) frente al tipo de cambio medio {}",
                money(cost, &q.send_currency),
                mid.round_dp(4)
            ),
        });
    }
    lines.push(match lang {
        Lang::En => format!(
            "Valid for {minutes} min (until {}).",
            format_time(q.expires_at_unix_s)
        ),
        Lang::Es => format!(
            "Válida por {minutes} min (hasta {}).",
            format_time(q.expires_at_unix_s)
        ),
    });
    lines.push(t(lang, "Confirm?", "¿Confirmas?"));
    OutboundMessage::with_buttons(
        lines.join("\n"),
        vec![
            Button::new(
                format!("{BTN_CONFIRM}{}", q.quote_id),
                t(lang, "Confirm", "Confirmar"),
            ),
            Button::new(
                format!("{BTN_CANCEL}{}", q.quote_id),
                t(lang, "Cancel", "Cancelar"),
            ),
        ],
    )
}

/// What the conversation still needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// How much.
    Amount,
    /// To which phone.
    Phone,
    /// How the recipient gets it.
    Method,
    /// The recipient's name (cash pickup needs it).
    Name,
}

/// Asks for a missing detail (the method question has buttons).
pub fn ask(lang: Lang, missing: Missing) -> OutboundMessage {
    match missing {
        Missing::Amount => OutboundMessage::text(t(
            lang,
            "How much do you want to send (in USD)? For example: 100 or 250.50",
            "¿Cuánto quieres enviar (en USD)? Por ejemplo: 100 o 250.50",
        )),
        Missing::Phone => OutboundMessage::text(t(
            lang,
            "What is the recipient's phone number, with country code? For example: +502 5555 0101",
            "¿Cuál es el teléfono del destinatario, con código de país? Por ejemplo: +502 5555 0101",
        )),
        Missing::Name => OutboundMessage::text(t(
            lang,
            "What is the recipient's full name (as on their ID)?",
            "¿Cuál es el nombre completo del destinatario (como en su identificación)?",
        )),
        Missing::Method => OutboundMessage::with_buttons(
            t(
                lang,
                "How should the recipient get the money?",
                "¿Cómo debe recibir el dinero?",
            ),
            [
                PayoutMethod::CashPickup,
                PayoutMethod::BankDeposit,
                PayoutMethod::MobileWallet,
                PayoutMethod::RemesaWallet,
            ]
            .into_iter()
            .map(|m| {
                Button::new(
                    format!("{BTN_METHOD}{}", m.as_str()),
                    capitalise(&method_name(lang, m)),
                )
            })
            .collect(),
        ),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A refused amount.
pub fn amount_problem(lang: Lang, e: AmountError) -> OutboundMessage {
    OutboundMessage::text(match (e, lang) {
        (AmountError::Ambiguous, Lang::En) => {
            "Did you mean one thousand or one? Please write it as 1000 or 1.00".to_owned()
        }
        (AmountError::Ambiguous, Lang::Es) => {
            "¿Quisiste decir mil o uno? Escríbelo como 1000 o 1.00".to_owned()
        }
        (AmountError::TooManyDecimals, _) => t(
            lang,
            "Amounts can have at most two decimals.",
            "Los montos pueden tener como máximo dos decimales.",
        ),
        (AmountError::TooLarge, _) => t(
            lang,
            "That amount is above the limit of 1,000,000.00 USD.",
            "Ese monto supera el límite de 1,000,000.00 USD.",
        ),
        (AmountError::NotPositive, _) => t(
            lang,
            "The amount must be more than zero.",
            "El monto debe ser mayor que cero.",
        ),
        (AmountError::NotANumber, _) => t(
            lang,
            "I could not read that amount. Write it like 100 or 1,000.50",
            "No pude leer ese monto. Escríbelo como 100 o 1,000.50",
        ),
    })
}

/// A refused phone number.
pub fn phone_problem(lang: Lang, e: PhoneError) -> OutboundMessage {
    OutboundMessage::text(match e {
        PhoneError::NeedsCountryCode => t(
            lang,
            "Please write the recipient's number with its country code, for example +502 5555 0101.",
            "Escribe el número del destinatario con su código de país, por ejemplo +502 5555 0101.",
        ),
        PhoneError::Invalid | PhoneError::NotANumber => t(
            lang,
            "That phone number does not look valid. Please check it, with country code: +502 5555 0101.",
            "Ese número no parece válido. Revísalo, con código de país: +502 5555 0101.",
        ),
    })
}

/// Only USD can be sent for now.
pub fn unsupported_currency(lang: Lang, code: &str) -> OutboundMessage {
    OutboundMessage::text(match lang {
        Lang::En => format!(
            "For now you can only send US dollars (USD), not {code}. The recipient gets local currency."
        ),
        Lang::Es => format!(
            "Por ahora solo puedes enviar dólares (USD), no {code}. El destinatario recibe moneda local."
        ),
    })
}

/// The quote could not be made (no partner for that corridor, engine refusal…).
pub fn no_quote(lang: Lang, reason: &str) -> OutboundMessage {
    OutboundMessage::text(match lang {
        Lang::En => format!("Sorry, I can't quote that transfer: {reason}"),
        Lang::Es => format!("Lo siento, no puedo cotizar ese envío: {reason}"),
    })
}

/// No partner serves the corridor and payout method for this amount.
pub fn no_route(lang: Lang) -> OutboundMessage {
    OutboundMessage::text(match lang {
        Lang::En => {
            "Sorry, no payout partner serves that country and payout method for this amount. Try another \
                     amount or payout method (cash pickup, bank deposit, mobile wallet)."
                .to_owned()
        }
        Lang::Es => {
            "Lo siento, ningún socio de pago atiende ese país y método de pago para este monto. Prueba otro \
                     monto u otro método (efectivo, depósito bancario, billetera móvil)."
                .to_owned()
        }
    })
}

/// A transfer into a Remesa wallet, but the recipient has none.
pub fn recipient_not_registered(lang: Lang, phone: &str) -> OutboundMessage {
    OutboundMessage::text(match lang {
        Lang::En => format!(
            "{phone} is not a Remesa user yet, so there is no Remesa wallet to send to. Send it as cash pickup, \
             bank deposit or mobile wallet instead, or ask them to write to Remesa first."
        ),
        Lang::Es => format!(
            "{phone} todavía no tiene billetera Remesa. Envíalo en efectivo, depósito bancario o billetera móvil, \
             o pídele que le escriba primero a Remesa."
        ),
    })
}

/// The wallet lacks funds for the total.
pub fn insufficient_funds(
    lang: Lang,
    balance: Decimal,
    needed: Decimal,
    currency: &str,
    wallet_address: &str,
) -> OutboundMessage {
    OutboundMessage::text(match lang {
        Lang::En => format!(
            "Your balance is {} but this transfer needs {}. Add funds to your wallet:\n{wallet_address}",
            money(balance, currency),
            money(needed, currency)
        ),
        Lang::Es => format!(
            "Tu saldo es {} pero este envío necesita {}. Agrega fondos a tu billetera:\n{wallet_address}",
            money(balance, currency),
            money(needed, currency)
        ),
    })
}

/// The amount is over a sending limit: what is left, and how to raise it.
pub fn limit_exceeded(
    lang: Lang,
    window: LimitWindow,
    limit: Decimal,
    left: Decimal,
    tier: u8,
) -> OutboundMessage {
    let (limit, left) = (money(limit, "USD"), money(left, "USD"));
    let text = match (lang, window) {
        (Lang::En, LimitWindow::PerTransaction) => format!(
            "That is more than one transfer can send: the limit is {limit} per transfer. Send {left} or less. To raise \
             your limits, your identity must be verified: contact support."
        ),
        (Lang::Es, LimitWindow::PerTransaction) => format!(
            "Eso es más de lo que puede enviar un solo envío: el límite es {limit} por envío. Envía {left} o \
             menos. Para subir tus límites hay que verificar tu identidad: contacta a soporte."
        ),
        (Lang::En, LimitWindow::Day) => format!(
            "That is over your limit of {limit} in 24 hours: you can send {left} more today. To raise your \
             limits, your identity must be verified: contact support."
        ),
        (Lang::Es, LimitWindow::Day) => format!(
            "Eso supera tu límite de {limit} en 24 horas: hoy puedes enviar {left} más. Para subir tus \
             límites hay que verificar tu identidad: contacta a soporte."
        ),
        (Lang::En, LimitWindow::ThirtyDays) => format!(
            "That is over your limit of {limit} in 30 days: you can send {left} more this month. To raise your \
             limits, your identity must be verified: contact support."
        ),
        (Lang::Es, LimitWindow::ThirtyDays) => format!(
            "Eso supera tu límite de {limit} en 30 días: este mes puedes enviar {left} más. Para subir tus \
             límites hay que verificar tu identidad: contacta a soporte."
        ),
    };
    // An unverified sender can verify right here in the chat.
    OutboundMessage::text(if tier == 0 {
        let (from, to) = match lang {
            Lang::En => ("contact support.", "write *verify* (it takes two minutes)."),
            Lang::Es => ("contacta a soporte.", "escribe *verificar* (toma dos minutos)."),
        };
        text.replace(from, to)
    } else {
        text
    })
}

/// A send at or above the travel-rule threshold from a sender who has not verified their identity.
pub fn travel_rule_needs_kyc(lang: Lang, threshold: Decimal) -> OutboundMessage {
    let amount = money(threshold, "USD");
    OutboundMessage::text(match lang {
        Lang::En => format!(
            "Transfers of {amount} or more travel with the sender's verified identity (anti-money-laundering rules), \
             so I could not send this one. Write *verify* (it takes two minutes), then send it again."
        ),
        Lang::Es => format!(
            "Los envíos de {amount} o más viajan con la identidad verificada de quien envía (normas contra el lavado \
             de dinero), así que no pude enviar este. Escribe *verificar* (toma dos minutos) y envíalo de nuevo."
        ),
    })
}

/// The corridor pays only recipients who verified their identity.
pub fn recipient_kyc_required(lang: Lang, phone: &str) -> OutboundMessage {
    OutboundMessage::text(match lang {
        Lang::En => format!(
            "In this country the recipient must verify their identity with Remesa before receiving money. Ask \
             {phone} to write *verify* to this chat number, then send again."
        ),
        Lang::Es => format!(
            "En este país quien recibe debe verificar su identidad con Remesa antes de recibir dinero. Pídele a \
             {phone} que escriba *verificar* a este número, y envía de nuevo."
        ),
    })
}

/// An error report without a transfer we can find.
pub fn which_transfer(lang: Lang) -> OutboundMessage {
    OutboundMessage::text(t(
        lang,
        "Which transfer? Write *problem* and its reference, for example: *problem e93a37ef* (write *history* to see \
         your transfers).",
        "¿Qué envío? Escribe *problema* y su referencia, por ejemplo: *problema e93a37ef* (escribe *historial* para \
         ver tus envíos).",
    ))
}

/// An error-resolution case was opened (or was already open).
pub fn case_opened(lang: Lang, reference: &str, case_id: &str, due_unix_s: i64) -> OutboundMessage {
    let short: String = case_id
        .chars()
        .skip(case_id.chars().count().saturating_sub(8))
        .collect();
    let due = format_time(due_unix_s);
    let due = due.get(..10).unwrap_or(&due);
    OutboundMessage::text(match lang {
        Lang::En => format!(
            "I opened case {short} about transfer {reference}. Our team looks into it and answers you by {due} at the \
             latest (90 days)."
        ),
        Lang::Es => format!(
            "Abrí el caso {short} sobre el envío {reference}. Nuestro equipo lo revisa y te responde a más tardar el \
             {due} (90 días)."
        ),
    })
}

/// An error reported more than 180 days after the transfer.
pub fn case_too_late(lang: Lang, reference: &str) -> OutboundMessage {
    OutboundMessage::text(match lang {
        Lang::En => format!(
            "Transfer {reference} is more than 180 days old, past the period to report an error. Write *help* to \
             reach support anyway."
        ),
        Lang::Es => format!(
            "El envío {reference} tiene más de 180 días, fuera del plazo para reportar un error. Escribe *ayuda* \
             para contactar a soporte de todos modos."
        ),
    })
}

/// Starting identity verification: why, and how to stop.
pub fn kyc_intro(lang: Lang, count: usize) -> OutboundMessage {
    OutboundMessage::text(match lang {
        Lang::En => format!(
            "To raise your sending limits the law asks us to verify who you are. I need {count} details, one at a \
             time; write *cancel* to stop."
        ),
        Lang::Es => format!(
            "Para subir tus límites de envío la ley nos pide verificar quién eres. Necesito {count} datos, uno a la \
             vez; escribe *cancelar* para parar."
        ),
    })
}

/// Asks for one KYC field.
pub fn kyc_ask(lang: Lang, field: crate::domain::KycField) -> OutboundMessage {
    use crate::domain::KycField as F;
    OutboundMessage::text(t(
        lang,
        match field {
            F::FullName => "Your full name, as on your ID?",
            F::BirthDate => "Your date of birth? For example: 25/04/1990",
            F::Address => "Your home address (street, number, city)?",
            F::IdType => "Which ID do you have: 1 passport, 2 national ID, 3 driver's license?",
            F::IdNumber => "The number of that ID?",
            F::DocumentRef => "The reference of your ID document (as given at the branch)?",
        },
        match field {
            F::FullName => "¿Tu nombre completo, como en tu identificación?",
            F::BirthDate => "¿Tu fecha de nacimiento? Por ejemplo: 25/04/1990",
            F::Address => "¿Tu dirección (calle, número, ciudad)?",
            F::IdType => {
                "¿Qué identificación tienes: 1 pasaporte, 2 documento nacional (DPI, INE, cédula), 3 licencia de conducir?"
            }
            F::IdNumber => "¿El número de esa identificación?",
            F::DocumentRef => "¿La referencia de tu documento (la que te dieron en la sucursal)?",
        },
    ))
}

/// A KYC answer that does not parse: the question again.
pub fn kyc_invalid(lang: Lang, field: crate::domain::KycField) -> OutboundMessage {
    let mut m = kyc_ask(lang, field);
    m.text = format!(
        "{} {}",
        t(lang, "I could not read that.", "No pude leer eso."),
        m.text
    );
    m
}

/// The customer's KYC state, in words: verified (tier), under review, refused, or more needed.
pub fn kyc_outcome(lang: Lang, tier: u8, status: crate::domain::KycStatus) -> OutboundMessage {
    use crate::domain::KycStatus as S;
    OutboundMessage::text(match (status, lang) {
        (S::Accepted, Lang::En) if tier > 0 => format!(
            "Your identity is verified (level {tier}): your sending limits are now higher. For even higher limits an \
             agent checks your ID document: contact support."
        ),
        (S::Accepted, Lang::Es) if tier > 0 => format!(
            "Tu identidad está verificada (nivel {tier}): tus límites de envío ahora son más altos. Para límites aún \
             más altos un agente revisa tu documento: contacta a soporte."
        ),
        (S::Processing, _) => t(
            lang,
            "Thank you. Your details are being reviewed; I'll tell you as soon as it is done.",
            "Gracias. Estamos revisando tus datos; te aviso en cuanto esté listo.",
        ),
        (S::Rejected, _) => t(
            lang,
            "We could not verify your identity, so your limits stay as they were. Write *help* to reach support.",
            "No pudimos verificar tu identidad, así que tus límites siguen igual. Escribe *ayuda* para contactar a \
             soporte.",
        ),
        _ => t(
            lang,
            "We need some of your details again: write *verify* to give them.",
            "Necesitamos de nuevo algunos de tus datos: escribe *verificar* para darlos.",
        ),
    })
}

/// The remittance was created after confirmation: the receipt (Regulation E's, as the model): what the recipient
/// gets and when, the right to cancel, the right to have an error resolved, and who to contact.
pub fn confirmed(lang: Lang, r: &RemittanceView) -> OutboundMessage {
    let reference = &r.reference;
    let gets = money(r.payout_amount, &r.payout_currency);
    let available = format_time(r.created_at_unix_s);
    let available = available.get(..10).unwrap_or(&available);
    let mut lines = vec![match lang {
        Lang::En => format!(
            "Done! Your transfer *{reference}* is on its way. I'll tell you at each step. Write *status* to check it."
        ),
        Lang::Es => format!(
            "¡Listo! Tu envío *{reference}* está en camino. Te aviso en cada paso. Escribe *estado* para consultarlo."
        ),
    }];
    lines.push(String::new());
    lines.push(match lang {
        Lang::En => format!(
            "*Receipt* — {} sent; {} gets {gets}, available {available} once the funds are locked (minutes).",
            money(r.send_amount, &r.send_currency),
            r.recipient
        ),
        Lang::Es => format!(
            "*Recibo* — enviaste {}; {} recibe {gets}, disponible el {available} en cuanto se bloqueen los fondos \
             (minutos).",
            money(r.send_amount, &r.send_currency),
            r.recipient
        ),
    });
    if let Some(until) = r.cancel_until_unix_s {
        lines.push(match lang {
            Lang::En => format!(
                "You may cancel for a full refund until {} unless it was already collected: write *cancel*.",
                format_time(until)
            ),
            Lang::Es => format!(
                "Puedes cancelar con reembolso total hasta el {} si aún no se cobró: escribe *cancelar*.",
                format_time(until)
            ),
        });
    }
    lines.push(match lang {
        Lang::En => format!(
            "An error? You have 180 days to tell us (write *problem {reference}*); we answer within 90 days. \
             Provider: Remesa, support in this chat (*help*)."
        ),
        Lang::Es => format!(
            "¿Un error? Tienes 180 días para avisarnos (escribe *problema {reference}*); respondemos en 90 días. \
             Proveedor: Remesa, soporte en este chat (*ayuda*)."
        ),
    });
    OutboundMessage::text(lines.join("\n"))
}

/// A confirmed transfer that a compliance review holds: neutral words (never why, never a list's name).
pub fn under_review(lang: Lang, reference: &str) -> OutboundMessage {
    OutboundMessage::text(match lang {
        Lang::En => format!(
            "Your transfer *{reference}* needs a routine review before it is sent. No money has left your wallet. \
             I'll tell you as soon as the review is done."
        ),
        Lang::Es => format!(
            "Tu envío *{reference}* necesita una revisión de rutina antes de enviarse. No ha salido dinero de tu \
             billetera. Te aviso en cuanto termine la revisión."
        ),
    })
}

/// The review released the transfer: it goes on.
pub fn review_released(lang: Lang, reference: &str) -> OutboundMessage {
    OutboundMessage::text(match lang {
        Lang::En => format!("The review of transfer *{reference}* is done: it is on its way now."),
        Lang::Es => format!("Terminó la revisión del envío *{reference}*: ya va en camino."),
    })
}

/// The review ended without releasing the transfer (rejected, or no decision before it expired).
pub fn review_closed(lang: Lang, reference: &str) -> OutboundMessage {
    OutboundMessage::text(match lang {
        Lang::En => format!(
            "Transfer *{reference}* could not be completed. No money left your wallet. Write *help* to reach \
             support."
        ),
        Lang::Es => format!(
            "El envío *{reference}* no se pudo completar. No salió dinero de tu billetera. Escribe *ayuda* para \
             contactar a soporte."
        ),
    })
}

/// Screening needs the sender's full name before a send.
pub fn ask_sender_name(lang: Lang) -> OutboundMessage {
    OutboundMessage::text(t(
        lang,
        "Before I send it: what is your full name, as on your ID? The law requires us to check the name of everyone \
         who sends money.",
        "Antes de enviarlo: ¿cuál es tu nombre completo, como en tu identificación? La ley nos exige verificar el \
         nombre de cada persona que envía dinero.",
    ))
}

/// The sender's name was saved.
pub fn sender_name_saved(lang: Lang, name: &str) -> OutboundMessage {
    OutboundMessage::text(match lang {
        Lang::En => format!("Thank you, {name}."),
        Lang::Es => format!("Gracias, {name}."),
    })
}

/// The pending quote is gone (expired or used).
pub fn quote_expired(lang: Lang) -> OutboundMessage {
    OutboundMessage::text(t(
        lang,
        "That quote has expired. Send the request again for a new quote.",
        "Esa cotización venció. Envía la solicitud otra vez para una nueva cotización.",
    ))
}

/// Nothing waiting for a yes/no.
pub fn nothing_pending(lang: Lang) -> OutboundMessage {
    OutboundMessage::with_buttons(
        t(
            lang,
            "There is nothing waiting for confirmation.",
            "No hay nada pendiente de confirmar.",
        ),
        menu(lang),
    )
}

/// The pending request was dropped.
pub fn cancelled(lang: Lang) -> OutboundMessage {
    OutboundMessage::text(t(
        lang,
        "Cancelled. Nothing was sent.",
        "Cancelado. No se envió nada.",
    ))
}

/// A remittance was cancelled (before lock).
pub fn remittance_cancelled(lang: Lang, reference: &str) -> OutboundMessage {
    OutboundMessage::text(match lang {
        Lang::En => format!("Transfer {reference} was cancelled."),
        Lang::Es => format!("El envío {reference} fue cancelado."),
    })
}

/// A locked transfer cancelled within the cancellation window: refunded in full.
pub fn cancelled_for_refund(lang: Lang, reference: &str) -> OutboundMessage {
    OutboundMessage::text(match lang {
        Lang::En => format!(
            "Transfer {reference} is cancelled. The whole amount, fees included, comes back to your wallet: as soon \
             as the payout partner confirms, at the latest when the escrow's lock ends. I'll tell you when it is back."
        ),
        Lang::Es => format!(
            "El envío {reference} está cancelado. Todo el monto, comisiones incluidas, vuelve a tu billetera: en \
             cuanto el pagador lo confirme, a más tardar cuando termine el bloqueo en el escrow. Te aviso cuando \
             esté de vuelta."
        ),
    })
}

/// Cancellation refused (already locked: it will be paid or refunded).
pub fn cannot_cancel(lang: Lang, reference: &str, state: &str) -> OutboundMessage {
    OutboundMessage::text(match lang {
        Lang::En => format!(
            "Transfer {reference} can no longer be cancelled ({}). If it is not collected in time, it is refunded to you automatically.",
            state_name(lang, state)
        ),
        Lang::Es => format!(
            "El envío {reference} ya no se puede cancelar ({}). Si no se cobra a tiempo, se te reembolsa automáticamente.",
            state_name(lang, state)
        ),
    })
}

/// To a recipient who asked for a lost code: the senders were asked to confirm (`asked`), or nothing is waiting.
pub fn code_request_sent(lang: Lang, asked: usize) -> OutboundMessage {
    OutboundMessage::text(match (lang, asked) {
        (Lang::En, 0) => {
            "I found no cash pickup waiting for you. If someone sent you money, ask them for the transfer \
             reference; they can ask for the code to be sent to you again."
                .to_owned()
        }
        (Lang::Es, 0) => {
            "No encontré ningún retiro en efectivo pendiente para ti. Si alguien te envió dinero, pídele \
             la referencia del envío; puede pedir que se te reenvíe el código."
                .to_owned()
        }
        (Lang::En, _) => {
            "For your safety, a pickup code is sent again only when the sender confirms. I asked them; \
             when they do, the code comes to this chat."
                .to_owned()
        }
        (Lang::Es, _) => {
            "Por tu seguridad, el código de retiro se reenvía solo si quien te lo envió lo confirma. Ya le \
             pregunté; cuando confirme, el código llegará a este chat."
                .to_owned()
        }
    })
}

/// To the sender: the recipient asks for the code of `reference` again.
pub fn code_request_to_sender(lang: Lang, recipient: &str, reference: &str) -> OutboundMessage {
    OutboundMessage::text(match lang {
        Lang::En => format!(
            "{recipient} asks for the pickup code of your transfer {reference} again. If that is right, reply \
             *resend {reference}* and I will send it to their chat again (never to you). If you did not expect \
             this, ignore it."
        ),
        Lang::Es => format!(
            "{recipient} pide de nuevo el código de retiro de tu envío {reference}. Si está bien, responde \
             *reenviar {reference}* y se lo mandaré otra vez a su chat (nunca a ti). Si no lo esperabas, ignora \
             este mensaje."
        ),
    })
}

/// To the sender: the code of `reference` went to the recipient's chat again.
pub fn code_resent(lang: Lang, reference: &str) -> OutboundMessage {
    OutboundMessage::text(match lang {
        Lang::En => {
            format!("Done: I sent the pickup code of transfer {reference} to the recipient's chat again.")
        }
        Lang::Es => format!(
            "Listo: le reenvié al destinatario, en su chat, el código de retiro del envío {reference}."
        ),
    })
}

/// To the sender: the code of `reference` cannot be sent again (not a cash pickup, no longer collectible, or
/// re-sent too often).
pub fn cannot_resend(lang: Lang, reference: &str, why: ResendRefusal) -> OutboundMessage {
    OutboundMessage::text(match (lang, why) {
        (Lang::En, ResendRefusal::NotCollectible) => format!(
            "Transfer {reference} has no pickup code to collect now (it is not a cash pickup waiting to be collected)."
        ),
        (Lang::Es, ResendRefusal::NotCollectible) => format!(
            "El envío {reference} no tiene un código de retiro por cobrar ahora (no es un retiro en efectivo pendiente)."
        ),
        (Lang::En, ResendRefusal::TooOften) => format!(
            "The pickup code of transfer {reference} was already sent again several times. Please contact support."
        ),
        (Lang::Es, ResendRefusal::TooOften) => format!(
            "El código de retiro del envío {reference} ya se reenvió varias veces. Por favor contacta a soporte."
        ),
    })
}

/// Why a pickup code is not sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResendRefusal {
    /// Not a cash pickup, or no longer waiting to be collected.
    NotCollectible,
    /// The re-send limit per remittance was reached.
    TooOften,
}

/// One remittance's status.
pub fn status(lang: Lang, r: &RemittanceView) -> OutboundMessage {
    let mut lines = vec![
        match lang {
            Lang::En => format!("Transfer *{}*: {}", r.reference, state_name(lang, &r.state)),
            Lang::Es => format!("Envío *{}*: {}", r.reference, state_name(lang, &r.state)),
        },
        format!(
            "{} → {} ({})",
            money(r.send_amount, &r.send_currency),
            money(r.payout_amount, &r.payout_currency),
            r.recipient
        ),
        format_time(r.created_at_unix_s),
    ];
    if let Some(tx) = &r.tx_hash {
        lines.push(format!("tx: {tx}"));
    }
    OutboundMessage::text(lines.join("\n"))
}

/// No transfers yet.
pub fn no_transfers(lang: Lang) -> OutboundMessage {
    OutboundMessage::with_buttons(
        t(lang, "You have no transfers yet.", "Todavía no tienes envíos."),
        menu(lang),
    )
}

/// Recent transfers, newest first.
pub fn history(lang: Lang, items: &[RemittanceView]) -> OutboundMessage {
    if items.is_empty() {
        return no_transfers(lang);
    }
    let mut lines = vec![t(lang, "*Your recent transfers*", "*Tus envíos recientes*")];
    for r in items {
        lines.push(format!(
            "• {} {} → {} — {} ({})",
            r.reference,
            money(r.send_amount, &r.send_currency),
            r.recipient,
            state_name(lang, &r.state),
            format_time(r.created_at_unix_s)
        ));
    }
    OutboundMessage::text(lines.join("\n"))
}

/// Help.
pub fn help(lang: Lang) -> OutboundMessage {
    OutboundMessage::with_buttons(
        t(
            lang,
            "I can send money to any phone number.\n\n*send 100 to Maria +502 5555 0101 cash pickup* — get a quote\n*balance* — your wallet balance\n*status* — your last transfer\n*history* — recent transfers\n*cancel* — cancel what is pending\n*code* — you lost a pickup code sent to you\n\nMethods: cash pickup, bank, mobile wallet, Remesa wallet.",
            "Puedo enviar dinero a cualquier número de teléfono.\n\n*envía 100 a María +502 5555 0101 en efectivo* — cotizar\n*saldo* — el saldo de tu billetera\n*estado* — tu último envío\n*historial* — envíos recientes\n*cancelar* — cancelar lo pendiente\n*código* — perdiste un código de retiro que te enviaron\n\nMétodos: efectivo, banco, billetera móvil, billetera Remesa.",
        ),
        menu(lang),
    )
}

/// Not understood.
pub fn unknown(lang: Lang, reason: UnknownReason) -> OutboundMessage {
    let lead = match (reason, lang) {
        (UnknownReason::Empty | UnknownReason::NoWords, Lang::En) => {
            "I can only read text messages with words."
        }
        (UnknownReason::Empty | UnknownReason::NoWords, Lang::Es) => {
            "Solo puedo leer mensajes de texto con palabras."
        }
        (UnknownReason::TooLong, Lang::En) => "That message is too long for me.",
        (UnknownReason::TooLong, Lang::Es) => "Ese mensaje es demasiado largo para mí.",
        (UnknownReason::NotUnderstood, Lang::En) => "Sorry, I didn't understand that.",
        (UnknownReason::NotUnderstood, Lang::Es) => "Perdón, no entendí.",
    };
    let tail = t(
        lang,
        "Try: *send 100 to +502 5555 0101 cash pickup*, *balance*, *status* or *help*.",
        "Prueba: *envía 100 a +502 5555 0101 en efectivo*, *saldo*, *estado* o *ayuda*.",
    );
    OutboundMessage::text(format!("{lead}\n{tail}"))
}

/// Images, locations, stickers, reactions…
pub fn unsupported_content(lang: Lang) -> OutboundMessage {
    OutboundMessage::text(t(
        lang,
        "I can only read text and button replies. Write *help* to see what I can do.",
        "Solo puedo leer texto y botones. Escribe *ayuda* para ver lo que puedo hacer.",
    ))
}

/// Edited messages are not acted on.
pub fn edited_ignored(lang: Lang) -> OutboundMessage {
    OutboundMessage::text(t(
        lang,
        "I don't act on edited messages. Please send a new message instead.",
        "No actúo sobre mensajes editados. Envía un mensaje nuevo, por favor.",
    ))
}

/// A temporary problem on our side.
pub fn try_later(lang: Lang) -> OutboundMessage {
    OutboundMessage::text(t(
        lang,
        "Sorry, something went wrong on our side. Please try again in a minute.",
        "Lo siento, algo falló de nuestro lado. Inténtalo de nuevo en un minuto.",
    ))
}

// --- notifications --------------------------------------------------------------------------------------------

/// To the sender: funds locked in escrow.
pub fn sender_locked(lang: Lang, reference: &str, tx_hash: Option<&str>) -> OutboundMessage {
    let tx = tx_hash.map(|h| format!("\ntx: {h}")).unwrap_or_default();
    OutboundMessage::text(match lang {
        Lang::En => format!(
            "Transfer {reference}: your money is locked in escrow and on its way to the payout partner.{tx}"
        ),
        Lang::Es => {
            format!("Envío {reference}: tu dinero está asegurado en garantía y en camino al pagador.{tx}")
        }
    })
}

/// To the recipient: money on its way, with the pickup code and where to collect.
pub fn recipient_incoming(lang: Lang, v: &IncomingView) -> OutboundMessage {
    let amount = money(v.payout_amount, &v.payout_currency);
    let mut lines = match lang {
        Lang::En => vec![format!("{} sent you *{amount}* with Remesa.", v.sender)],
        Lang::Es => vec![format!("{} te envió *{amount}* con Remesa.", v.sender)],
    };
    match (v.payout_method, &v.pickup_code) {
        (PayoutMethod::CashPickup, Some(code)) => {
            lines.push(match lang {
                Lang::En => format!(
                    "Collect it in cash at {} with this pickup code and your ID:",
                    v.partner_name
                ),
                Lang::Es => format!(
                    "Cóbralo en efectivo en {} con este código de retiro y tu identificación:",
                    v.partner_name
                ),
            });
            lines.push(format!("*{code}*"));
            lines.push(t(
                lang,
                "Do not share this code with anyone else.",
                "No compartas este código con nadie más.",
            ));
        }
        (m, _) => lines.push(match lang {
            Lang::En => format!("{} will credit it by {}.", v.partner_name, method_name(lang, m)),
            Lang::Es => format!("{} lo acreditará por {}.", v.partner_name, method_name(lang, m)),
        }),
    }
    if let Some(w) = &v.where_to_collect {
        lines.push(match lang {
            Lang::En => format!("Where: {w}"),
            Lang::Es => format!("Dónde: {w}"),
        });
    }
    if let Some(exp) = v.expires_at_unix_s {
        lines.push(match lang {
            Lang::En => format!("Collect before {}.", format_time(exp)),
            Lang::Es => format!("Cóbralo antes de {}.", format_time(exp)),
        });
    }
    lines.push(format!("Ref: {}", v.reference));
    OutboundMessage::text(lines.join("\n"))
}

/// To the sender or the recipient: the recipient was paid.
pub fn paid(lang: Lang, reference: &str, to_sender: bool) -> OutboundMessage {
    OutboundMessage::text(match (lang, to_sender) {
        (Lang::En, true) => format!("Transfer {reference}: the recipient has been paid. 🎉"),
        (Lang::Es, true) => format!("Envío {reference}: el destinatario ya recibió el dinero. 🎉"),
        (Lang::En, false) => format!("Transfer {reference}: you have been paid. Thank you for using Remesa!"),
        (Lang::Es, false) => format!("Envío {reference}: ya recibiste el dinero. ¡Gracias por usar Remesa!"),
    })
}

/// Settled on chain.
pub fn settled(lang: Lang, reference: &str, tx_hash: Option<&str>) -> OutboundMessage {
    let tx = tx_hash.map(|h| format!("\ntx: {h}")).unwrap_or_default();
    OutboundMessage::text(match lang {
        Lang::En => format!("Transfer {reference} is complete and settled on chain.{tx}"),
        Lang::Es => format!("El envío {reference} está completo y liquidado en cadena.{tx}"),
    })
}

/// To the sender of a P2P transfer into a Remesa wallet: done.
pub fn p2p_sent(
    lang: Lang,
    reference: &str,
    amount: Decimal,
    currency: &str,
    tx_hash: Option<&str>,
) -> OutboundMessage {
    let tx = tx_hash.map(|h| format!("\ntx: {h}")).unwrap_or_default();
    let amount = money(amount, currency);
    OutboundMessage::text(match lang {
        Lang::En => format!("Transfer {reference}: sent. {amount} is in the recipient's Remesa wallet.{tx}"),
        Lang::Es => format!(
            "Envío {reference}: enviado. {amount} ya está en la billetera Remesa del destinatario.{tx}"
        ),
    })
}

/// To the recipient of a P2P transfer: the money is in their Remesa wallet.
pub fn p2p_received(
    lang: Lang,
    sender: &str,
    amount: Decimal,
    currency: &str,
    reference: &str,
) -> OutboundMessage {
    let amount = money(amount, currency);
    OutboundMessage::text(match lang {
        Lang::En => format!(
            "{sender} sent you {amount}, it is in your Remesa wallet. Write *balance* to see it.\nRef: {reference}"
        ),
        Lang::Es => format!(
            "{sender} te envió {amount}, ya está en tu billetera Remesa. Escribe *saldo* para verlo.\nRef: {reference}"
        ),
    })
}

/// Refunded to the sender.
pub fn refunded(lang: Lang, reference: &str, to_sender: bool) -> OutboundMessage {
    OutboundMessage::text(match (lang, to_sender) {
        (Lang::En, true) => {
            format!("Transfer {reference} was not collected in time and has been refunded to your wallet.")
        }
        (Lang::Es, true) => {
            format!("El envío {reference} no se cobró a tiempo y se reembolsó a tu billetera.")
        }
        (Lang::En, false) => {
            format!("Transfer {reference} was not collected in time and went back to the sender.")
        }
        (Lang::Es, false) => format!("El envío {reference} no se cobró a tiempo y volvió al remitente."),
    })
}

/// The sender's transfer could not be sent (its deposit was refused for good): nothing left the wallet. A party
/// blacklisted by the stablecoin's issuer needs support; anything else can be tried again.
pub fn failed(lang: Lang, reference: &str, reason: Option<&str>) -> OutboundMessage {
    let blocked = reason.is_some_and(|r| r.to_ascii_lowercase().contains("blacklist"));
    OutboundMessage::text(match (lang, blocked) {
        (Lang::En, true) => format!(
            "Transfer {reference} could not be sent: the stablecoin's issuer blocks an address involved. No money \
             left your wallet. Please contact support."
        ),
        (Lang::Es, true) => format!(
            "El envío {reference} no se pudo enviar: el emisor de la moneda estable bloquea una dirección \
             involucrada. No salió dinero de tu billetera. Por favor contacta a soporte."
        ),
        (Lang::En, false) => format!(
            "Transfer {reference} could not be sent: the network did not accept the payment authorization. No \
             money left your wallet; you can try again."
        ),
        (Lang::Es, false) => format!(
            "El envío {reference} no se pudo enviar: la red no aceptó la autorización de pago. No salió dinero de \
             tu billetera; puedes intentarlo de nuevo."
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn a_failed_transfer_says_why_and_that_no_money_moved() {
        let blocked = failed(
            Lang::Es,
            "R9",
            Some("deposit failed: Blacklistable: account is blacklisted"),
        );
        let refused = failed(
            Lang::En,
            "R9",
            Some("AuthorizationFailed: FiatTokenV2: invalid signature"),
        );
        assert!(
            blocked.text.contains("bloquea") && blocked.text.contains("No salió dinero"),
            "{}",
            blocked.text
        );
        assert!(
            refused.text.contains("try again") && refused.text.contains("No money"),
            "{}",
            refused.text
        );
        assert!(failed(Lang::En, "R9", None).text.contains("try again"));
    }

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    fn view() -> QuoteView {
        QuoteView {
            quote_id: "q1".into(),
            send_amount: d("100"),
            send_currency: "USD".into(),
            fee_fixed: d("1.99"),
            fee_bps: 50,
            fee_total: d("2.49"),
            total_debit: d("102.49"),
            rate: d("7.75"),
            mid_market_rate: Some(d("7.80")),
            payout_amount: d("775.00"),
            payout_currency: "GTQ".into(),
            payout_method: PayoutMethod::CashPickup,
            partner_name: "Demo Pagos".into(),
            recipient_name: Some("Maria".into()),
            recipient_phone: "+50255550101".into(),
            expires_at_unix_s: 1_700_000_300,
            now_unix_s: 1_700_000_000,
        }
    }

    #[test]
    fn quote_is_itemised_in_both_languages() {
        let q = view();
        // 102.49 - 775/7.80 = 102.49 - 99.358974… = 3.131025… → 3.13 USD, 3.05 %
        assert_eq!(q.all_in_cost(), Some((d("3.13"), d("3.05"))));
        let en = quote(Lang::En, &q);
        for needle in [
            "You send: 100.00 USD",
            "Fee: 2.49 USD (1.99 USD fixed + 0.5%)",
            "Total to pay: *102.49 USD*",
            "1 USD = 7.75 GTQ",
            "Maria (+50255550101) gets: *775.00 GTQ*",
            "All-in cost: 3.13 USD (3.05%) vs the mid-market rate 7.8",
            "Valid for 5 min",
            "cash pickup with Demo Pagos",
        ] {
            assert!(en.text.contains(needle), "missing {needle:?} in\n{}", en.text);
        }
        assert_eq!(
            en.buttons,
            vec![
                Button::new("confirm:q1", "Confirm"),
                Button::new("cancel:q1", "Cancel")
            ]
        );
        let es = quote(Lang::Es, &q);
        for needle in [
            "Envías: 100.00 USD",
            "Comisión: 2.49 USD",
            "Total a pagar",
            "recibe: *775.00 GTQ*",
            "Costo total",
            "retiro en efectivo",
        ] {
            assert!(es.text.contains(needle), "missing {needle:?} in\n{}", es.text);
        }
        assert_eq!(es.buttons[0].title, "Confirmar");
    }

    #[test]
    fn recipient_notice_has_code_and_place() {
        let v = IncomingView {
            sender: "Ana (+15551234567)".into(),
            payout_amount: d("775"),
            payout_currency: "GTQ".into(),
            payout_method: PayoutMethod::CashPickup,
            partner_name: "Demo Pagos".into(),
            where_to_collect: Some("any Demo Pagos agent".into()),
            pickup_code: Some("ABCD2345EFGH".into()),
            reference: "R1".into(),
            expires_at_unix_s: Some(1_700_086_400),
        };
        let m = recipient_incoming(Lang::Es, &v);
        assert!(
            m.text.contains("*ABCD2345EFGH*")
                && m.text.contains("Demo Pagos")
                && m.text.contains("775.00 GTQ"),
            "{}",
            m.text
        );
        let m = recipient_incoming(Lang::En, &v);
        assert!(
            m.text.contains("pickup code") && m.text.contains("Where: any Demo Pagos agent"),
            "{}",
            m.text
        );
    }

    #[test]
    fn method_question_has_four_choices() {
        let m = ask(Lang::En, Missing::Method);
        assert_eq!(m.buttons.len(), 4);
        assert_eq!(m.buttons[0].id, "method:cash_pickup");
        assert_eq!(
            PayoutMethod::parse("remesa_wallet"),
            Some(PayoutMethod::RemesaWallet)
        );
    }

    #[test]
    fn refusals_speak_one_language() {
        let en = recipient_not_registered(Lang::En, "+50255550101").text;
        let es = recipient_not_registered(Lang::Es, "+50255550101").text;
        assert!(
            en.contains("+50255550101") && en.contains("is not a Remesa user") && en.contains("cash pickup")
        );
        assert!(es.contains("+50255550101") && es.contains("billetera Remesa") && es.contains("efectivo"));
        assert!(!es.contains("Remesa user") && !es.contains("cash pickup"));
        assert!(no_route(Lang::En).text.contains("no payout partner"));
        let es = no_route(Lang::Es).text;
        assert!(es.contains("ningún socio") && !es.contains("partner"));
    }

    #[test]
    fn times() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(i64::MAX), "?");
    }
}
