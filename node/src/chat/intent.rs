//! Intent parser for English and Spanish chat messages.
//!
//! Total: every input, however garbled, huge or emoji-only, yields an [`Intent`] (unknown texts give
//! [`Intent::Unknown`]); the parser never panics and never uses floating point. Amounts are exact [`Decimal`]s.
//!
//! Amount conventions: `100`, `100.50`, `1,000.50`, `$100`, `US$100`, `100 usd`, `100usd`; with both separators the
//! last one is the decimal mark (`1.000,50` = 1000.50); a lone comma followed by one or two digits is a decimal mark
//! (`100,5`); at most two decimals; a lone dot followed by three digits (`1.000`) is ambiguous between locales and is
//! refused with a question rather than guessed.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::{PayoutMethod, PhoneError, PhoneNumber, Region};

/// Longest text parsed, in bytes; longer is [`UnknownReason::TooLong`].
pub const TEXT_MAX_BYTES: usize = 4096;
/// Most tokens looked at.
const TOKENS_MAX: usize = 64;
/// Largest amount accepted in one remittance (in the send currency's major unit).
pub const AMOUNT_MAX: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);
/// Longest recipient name kept, in characters.
pub const NAME_MAX_CHARS: usize = 60;

/// Conversation language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Spanish.
    Es,
}

impl Lang {
    /// `en` / `es`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Es => "es",
        }
    }

    /// From a tag such as `es`, `es-MX`, `en_US`.
    pub fn from_tag(tag: &str) -> Option<Self> {
        let t = tag.to_ascii_lowercase();
        if t.starts_with("es") {
            Some(Self::Es)
        } else if t.starts_with("en") {
            Some(Self::En)
        } else {
            None
        }
    }
}

/// A positive amount with at most two decimals, at most [`AMOUNT_MAX`]. Built only by [`Amount::parse`] or
/// [`Amount::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Amount(Decimal);

/// Why an amount was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmountError {
    /// Not a number.
    #[error("not an amount")]
    NotANumber,
    /// Zero or negative.
    #[error("the amount must be more than zero")]
    NotPositive,
    /// More than two decimals.
    #[error("at most two decimals")]
    TooManyDecimals,
    /// More than [`AMOUNT_MAX`].
    #[error("the amount is above the limit")]
    TooLarge,
    /// `1.000`: one thousand or one?
    #[error("ambiguous amount")]
    Ambiguous,
}

impl Amount {
    /// Checks a decimal against the rules.
    pub fn new(value: Decimal) -> Result<Self, AmountError> {
        if value <= Decimal::ZERO {
            return Err(AmountError::NotPositive);
        }
        if value > AMOUNT_MAX {
            return Err(AmountError::TooLarge);
        }
        if value.normalize().scale() > 2 {
            return Err(AmountError::TooManyDecimals);
        }
        Ok(Self(value))
    }

    /// Parses a bare number (`1,000.50`; no currency).
    pub fn parse(s: &str) -> Result<Self, AmountError> {
        Self::new(parse_number(s)?)
    }

    /// The exact value.
    pub fn value(&self) -> Decimal {
        self.0
    }
}

impl fmt::Display for Amount {
    /// Two decimals with thousands separators: `1,000.50`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_money(self.0))
    }
}

impl TryFrom<String> for Amount {
    type Error = AmountError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Amount> for String {
    fn from(a: Amount) -> Self {
        a.0.to_string()
    }
}

/// Formats a decimal with two decimals (rounded half-up for display only; exact values stay exact elsewhere) and
/// thousands separators: `1234.5` → `1,234.50`.
pub fn format_money(value: Decimal) -> String {
    let v = value.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    let s = format!("{:.2}", v.abs());
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let mut grouped = String::with_capacity(int.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!(
        "{}{grouped}.{frac}",
        if v.is_sign_negative() && !v.is_zero() {
            "-"
        } else {
            ""
        }
    )
}

/// Parses digits with `,`/`.` separators into an exact decimal.
fn parse_number(s: &str) -> Result<Decimal, AmountError> {
    if s.is_empty() || s.len() > 24 || !s.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(AmountError::NotANumber);
    }
    if !s.chars().all(|c| c.is_ascii_digit() || c == ',' || c == '.') || s.ends_with([',', '.']) {
        return Err(AmountError::NotANumber);
    }
    let last_comma = s.rfind(',');
    let last_dot = s.rfind('.');
    let (int_part, frac_part, group_sep) = match (last_comma, last_dot) {
        (None, None) => (s, "", None),
        (Some(c), Some(d)) => {
            let (dec, group) = if c > d { (c, '.') } else { (d, ',') };
            let frac = &s[dec + 1..];
            if frac.contains([',', '.']) {
                return Err(AmountError::NotANumber);
            }
            (&s[..dec], frac, Some(group))
        }
        (Some(_), None) | (None, Some(_)) => {
            let sep = if last_comma.is_some() { ',' } else { '.' };
            let count = s.matches(sep).count();
            let pos = last_comma.or(last_dot).unwrap_or_default();
            let after = s.len() - pos - 1;
            if count == 1 && after <= 2 {
                (&s[..pos], &s[pos + 1..], None)
            } else if count == 1 && after == 3 && sep == '.' {
                return Err(AmountError::Ambiguous);
            } else if count == 1 && after > 3 {
                return Err(AmountError::TooManyDecimals);
            } else {
                (s, "", Some(sep))
            }
        }
    };
    let int_digits: String = match group_sep {
        Some(sep) => {
            let groups: Vec<&str> = int_part.split(sep).collect();
            let ok = groups.iter().enumerate().all(|(i, g)| {
                g.chars().all(|c| c.is_ascii_digit())
                    && if i == 0 {
                        (1..=3).contains(&g.len())
                    } else {
                        g.len() == 3
                    }
            });
            if !ok {
                return Err(AmountError::NotANumber);
            }
            groups.concat()
        }
        None => {
            if !int_part.chars().all(|c| c.is_ascii_digit()) || int_part.is_empty() {
                return Err(AmountError::NotANumber);
            }
            int_part.to_owned()
        }
    };
    if frac_part.len() > 2 {
        return Err(AmountError::TooManyDecimals);
    }
    let int_digits = int_digits.trim_start_matches('0');
    if int_digits.len() > 12 {
        return Err(AmountError::TooLarge);
    }
    let text = format!(
        "{}.{}",
        if int_digits.is_empty() { "0" } else { int_digits },
        if frac_part.is_empty() { "0" } else { frac_part }
    );
    Decimal::from_str(&text).map_err(|_| AmountError::NotANumber)
}

/// An ISO 4217 currency code the parser recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(&'static str);

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_word(&s).ok_or_else(|| serde::de::Error::custom("unknown currency"))
    }
}

impl TryFrom<String> for Currency {
    type Error = AmountError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::from_word(&s).ok_or(AmountError::NotANumber)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> Self {
        c.0.to_owned()
    }
}

/// Currencies recognised in messages, with the words people use for them.
const CURRENCIES: &[(&str, &[&str])] = &[
    (
        "USD",
        &[
            "usd", "$", "us$", "usd$", "dollar", "dollars", "dolar", "dolares", "dls", "bucks",
        ],
    ),
    ("GTQ", &["gtq", "quetzal", "quetzales", "q"]),
    ("MXN", &["mxn", "peso", "pesos"]),
    ("PHP", &["php"]),
    ("COP", &["cop"]),
    ("HNL", &["hnl", "lempira", "lempiras"]),
    ("DOP", &["dop"]),
    ("EUR", &["eur", "euro", "euros", "€"]),
];

impl Currency {
    /// US dollar: what the stablecoin is denominated in.
    pub const USD: Currency = Currency("USD");

    /// From a code or a word (`usd`, `dólares`, `$`).
    pub fn from_word(word: &str) -> Option<Self> {
        let w = fold(word);
        CURRENCIES
            .iter()
            .find(|(code, words)| words.contains(&w.as_str()) || code.eq_ignore_ascii_case(&w))
            .map(|(c, _)| Currency(c))
    }

    /// The ISO code.
    pub fn code(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// What the parser found of a send request; missing parts are asked for by the conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendDraft {
    /// Amount in `currency`.
    pub amount: Option<Amount>,
    /// Currency, when stated.
    pub currency: Option<Currency>,
    /// Recipient phone (E.164).
    pub recipient_phone: Option<PhoneNumber>,
    /// Payout method.
    pub payout_method: Option<PayoutMethod>,
    /// Recipient name.
    pub recipient_name: Option<String>,
    /// An amount was written but refused.
    pub amount_error: Option<AmountError>,
    /// A phone number was written but refused.
    #[serde(skip)]
    pub phone_error: Option<PhoneError>,
}

impl SendDraft {
    /// True when nothing at all was found (not even an error).
    pub fn is_empty(&self) -> bool {
        self.amount.is_none()
            && self.currency.is_none()
            && self.recipient_phone.is_none()
            && self.payout_method.is_none()
            && self.recipient_name.is_none()
            && self.amount_error.is_none()
            && self.phone_error.is_none()
    }
}

/// Why a message was not understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownReason {
    /// Empty or only whitespace.
    Empty,
    /// Longer than [`TEXT_MAX_BYTES`].
    TooLong,
    /// No letters or digits (emoji, punctuation).
    NoWords,
    /// Words, but no command.
    NotUnderstood,
}

/// What the user wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "intent", rename_all = "snake_case")]
pub enum Intent {
    /// `hola`, `hi`, `/start`.
    Greeting,
    /// `help`, `ayuda`.
    Help,
    /// `balance`, `saldo`.
    Balance,
    /// `status [ref]`, `estado`.
    Status {
        /// Optional remittance reference.
        reference: Option<String>,
    },
    /// `history`, `historial`.
    History,
    /// `cancel`, `cancelar`.
    Cancel,
    /// A recipient lost the pickup code: `code`, `lost code`, `código`, `perdí mi código`.
    LostCode,
    /// The sender confirms a lost code may be sent again to the recipient's chat: `resend [ref]`, `reenviar [ref]`.
    Resend {
        /// Optional remittance reference.
        reference: Option<String>,
    },
    /// Verify my identity to raise my limits: `verify`, `verificar`.
    Verify,
    /// A problem with a transfer (error resolution): "I have a problem with transfer e93a37ef", `problema e93a37ef`.
    Problem {
        /// The transfer's reference, when given.
        reference: Option<String>,
    },
    /// `yes`, `sí`, `confirm`.
    Confirm,
    /// `no`.
    Decline,
    /// `send …`, `envía …`.
    Send(SendDraft),
    /// No verb, but details of a send (an answer to a question: `+502 5555 0101`, `cash`, `100`).
    Details(SendDraft),
    /// Anything else.
    Unknown {
        /// Why.
        reason: UnknownReason,
    },
}

/// A parse result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The intent.
    pub intent: Intent,
    /// Language detected from the words used (`None` when the words don't tell, e.g. only numbers or `no`).
    pub lang: Option<Lang>,
}

/// Context of the sender.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseContext {
    /// Region for local phone numbers: the sender's country.
    pub default_region: Option<Region>,
}

/// Lower-cases and removes Spanish accents (`Envía` → `envia`); `ñ` is kept.
pub fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'á' | 'à' | 'ä' | 'â' => 'a',
            'é' | 'è' | 'ë' | 'ê' => 'e',
            'í' | 'ì' | 'ï' | 'î' => 'i',
            'ó' | 'ò' | 'ö' | 'ô' => 'o',
            'ú' | 'ù' | 'ü' | 'û' => 'u',
            other => other,
        })
        .collect()
}

const SEND_EN: &[&str] = &["send", "transfer", "remit"];
const SEND_ES: &[&str] = &[
    "envia",
    "enviar",
    "envie",
    "enviale",
    "enviarle",
    "envio",
    "mandar",
    "manda",
    "mande",
    "mandale",
    "mandarle",
    "transferir",
    "transfiere",
];
const TO_WORDS: &[&str] = &["to", "a", "para", "al"];
const STOP_WORDS: &[&str] = &[
    "to",
    "a",
    "al",
    "para",
    "en",
    "by",
    "via",
    "por",
    "con",
    "with",
    "in",
    "at",
    "the",
    "el",
    "la",
    "and",
    "y",
    "de",
    "of",
    "from",
    "cash",
    "pickup",
    "bank",
    "banco",
    "mobile",
    "wallet",
    "billetera",
    "efectivo",
    "retiro",
    "remesa",
    "deposit",
    "deposito",
    "movil",
    "please",
    "favor",
    "usd",
    "dollars",
    "dolares",
    "now",
    "ahora",
    "money",
    "dinero",
    "account",
    "cuenta",
    "pick",
    "up",
];
const ES_HINTS: &[&str] = &[
    "hola",
    "saldo",
    "estado",
    "historial",
    "cancelar",
    "ayuda",
    "si",
    "a",
    "para",
    "al",
    "por",
    "favor",
    "quiero",
    "dolares",
    "efectivo",
    "retiro",
    "banco",
    "billetera",
    "buenas",
    "buenos",
    "gracias",
    "de",
    "en",
    "movil",
    "cuenta",
    "confirmar",
    "confirmo",
    "dale",
    "claro",
];
const EN_HINTS: &[&str] = &[
    "hi", "hello", "hey", "balance", "status", "history", "cancel", "help", "yes", "to", "please", "dollars",
    "cash", "pickup", "bank", "wallet", "want", "thanks", "confirm", "mobile", "account", "the", "my",
    "good",
];

fn word(token: &str) -> String {
    fold(token.trim_matches(|c: char| !c.is_alphanumeric() && c != '$' && c != '€'))
}

fn command_of(w: &str) -> Option<(Intent, Option<Lang>)> {
    let w = w.trim_start_matches('/');
    Some(match w {
        "hola" | "buenas" | "buenos" | "saludos" | "ola" => (Intent::Greeting, Some(Lang::Es)),
        "hi" | "hello" | "hey" => (Intent::Greeting, Some(Lang::En)),
        // Words both languages use (Telegram's /start, "ok", "menu") do not switch the conversation's language.
        "start" => (Intent::Greeting, None),
        "help" | "commands" => (Intent::Help, Some(Lang::En)),
        "menu" => (Intent::Help, None),
        "ayuda" | "comandos" => (Intent::Help, Some(Lang::Es)),
        "balance" => (Intent::Balance, Some(Lang::En)),
        "saldo" => (Intent::Balance, Some(Lang::Es)),
        "status" | "track" => (Intent::Status { reference: None }, Some(Lang::En)),
        "estado" | "estatus" => (Intent::Status { reference: None }, Some(Lang::Es)),
        "history" => (Intent::History, Some(Lang::En)),
        "historial" | "historia" => (Intent::History, Some(Lang::Es)),
        "cancel" | "stop" => (Intent::Cancel, Some(Lang::En)),
        "cancelar" | "cancela" | "cancelo" => (Intent::Cancel, Some(Lang::Es)),
        "yes" | "yep" | "yeah" | "confirm" | "sure" => (Intent::Confirm, Some(Lang::En)),
        "ok" | "okay" | "y" => (Intent::Confirm, None),
        "si" | "sí" | "confirmar" | "confirmo" | "dale" | "claro" | "va" => {
            (Intent::Confirm, Some(Lang::Es))
        }
        "no" | "nope" | "nah" => (Intent::Decline, None),
        "code" | "lost" => (Intent::LostCode, Some(Lang::En)),
        "codigo" | "código" | "perdi" | "perdí" => (Intent::LostCode, Some(Lang::Es)),
        "resend" => (Intent::Resend { reference: None }, Some(Lang::En)),
        "reenviar" | "reenvia" | "reenvía" => (Intent::Resend { reference: None }, Some(Lang::Es)),
        "verify" | "verification" | "kyc" => (Intent::Verify, Some(Lang::En)),
        "verificar" | "verificarme" | "verificacion" | "verificación" => (Intent::Verify, Some(Lang::Es)),
        _ => return None,
    })
}

fn is_phoneish(token: &str) -> bool {
    !token.is_empty()
        && token.chars().all(|c| c.is_ascii_digit() || "+-.()".contains(c))
        && token.chars().any(|c| c.is_ascii_digit())
        && !token[1..].contains('+')
}

fn digit_count(tokens: &[&str]) -> usize {
    tokens
        .iter()
        .map(|t| t.chars().filter(char::is_ascii_digit).count())
        .sum()
}

/// Splits a token like `$100`, `100usd`, `US$1,000.50` into (number, currency marker).
fn split_amount_token(token: &str) -> Option<(&str, Option<Currency>)> {
    let t = token
        .trim_end_matches([',', ';', ':', '!', '?'])
        .trim_end_matches('.');
    let t = t.trim_start_matches(['(', '¿', '¡']);
    let lower = t.to_ascii_lowercase();
    for prefix in ["us$", "usd$", "usd", "$", "€", "q"] {
        if lower.starts_with(prefix) && lower.len() > prefix.len() {
            let rest = &t[prefix.len()..];
            if rest.starts_with(|c: char| c.is_ascii_digit()) {
                return Some((rest, Currency::from_word(prefix)));
            }
        }
    }
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == ',' || c == '.'))
        .unwrap_or(t.len());
    if num_end == 0 {
        return None;
    }
    let (num, suffix) = t.split_at(num_end);
    if suffix.is_empty() {
        return Some((num, None));
    }
    Currency::from_word(suffix).map(|c| (num, Some(c)))
}

/// Parses one message.
pub fn parse(text: &str, ctx: &ParseContext) -> Parsed {
    if text.len() > TEXT_MAX_BYTES {
        return Parsed {
            intent: Intent::Unknown {
                reason: UnknownReason::TooLong,
            },
            lang: None,
        };
    }
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Parsed {
            intent: Intent::Unknown {
                reason: UnknownReason::Empty,
            },
            lang: None,
        };
    }
    if !trimmed.chars().any(char::is_alphanumeric) {
        let intent = match trimmed {
            "?" | "¿?" => Intent::Help,
            _ => Intent::Unknown {
                reason: UnknownReason::NoWords,
            },
        };
        return Parsed { intent, lang: None };
    }
    let raw: Vec<&str> = trimmed.split_whitespace().take(TOKENS_MAX).collect();
    let words: Vec<String> = raw.iter().map(|t| word(t)).collect();
    let lang = detect_lang(&words);

    // An error report names a problem and (usually) the transfer: "I have a problem with transfer e93a37ef".
    // "no problem" / "sin problema" is thanks, not a report.
    if let Some(at) = words.iter().take(8).position(|w| {
        matches!(
            w.as_str(),
            "problem" | "complaint" | "dispute" | "problema" | "reclamo" | "queja"
        )
    }) && !(at > 0 && matches!(words[at - 1].as_str(), "no" | "sin" | "ningun" | "ningún"))
    {
        let reference = raw
            .iter()
            .map(|t| t.trim_matches(|c: char| !c.is_ascii_alphanumeric()))
            .find(|t| {
                (6..=66).contains(&t.len())
                    && t.chars().any(|c| c.is_ascii_digit())
                    && t.chars().all(|c| c.is_ascii_hexdigit() || c == 'x')
            })
            .map(str::to_ascii_lowercase);
        let es = matches!(words[at].as_str(), "problema" | "reclamo" | "queja");
        return Parsed {
            intent: Intent::Problem { reference },
            lang: lang.or(Some(if es { Lang::Es } else { Lang::En })),
        };
    }
    // A send verb anywhere in the first words wins ("hola, envía 50 a …", "quiero enviar 50", "please send 50").
    if let Some(verb_at) = words
        .iter()
        .take(6)
        .position(|w| SEND_EN.contains(&w.as_str()) || SEND_ES.contains(&w.as_str()))
    {
        let verb_lang = if SEND_ES.contains(&words[verb_at].as_str()) {
            Lang::Es
        } else {
            Lang::En
        };
        let draft = extract_draft(&raw, &words, Some(verb_at), ctx);
        return Parsed {
            intent: Intent::Send(draft),
            lang: lang.or(Some(verb_lang)),
        };
    }

    let first = words
        .iter()
        .find(|w| !w.is_empty())
        .map(String::as_str)
        .unwrap_or_default();
    let two = words
        .iter()
        .take(2)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    if matches!(two.as_str(), "good morning" | "good afternoon" | "good evening") {
        return Parsed {
            intent: Intent::Greeting,
            lang: Some(Lang::En),
        };
    }
    if let Some((mut intent, cmd_lang)) = command_of(first) {
        // Commands are short; a long sentence that merely starts with "no" or "ok" is not a command.
        let short = raw.len() <= 4;
        if let Intent::Status { reference } | Intent::Resend { reference } = &mut intent {
            *reference = raw
                .get(1)
                .map(|r| r.trim_matches(|c: char| !c.is_ascii_alphanumeric()))
                .filter(|r| {
                    !r.is_empty()
                        && r.len() <= 80
                        && r.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                })
                .map(str::to_owned);
        }
        // "lost" alone is no request: "lost code", "lost my code", "perdí mi código" are.
        if intent == Intent::LostCode
            && matches!(first, "lost" | "perdi" | "perdí")
            && !words
                .iter()
                .take(6)
                .any(|w| matches!(w.as_str(), "code" | "codigo" | "código"))
        {
            intent = Intent::Unknown {
                reason: UnknownReason::NotUnderstood,
            };
        }
        if short || matches!(intent, Intent::Greeting | Intent::Help | Intent::LostCode) {
            return Parsed {
                intent,
                lang: cmd_lang.or(lang),
            };
        }
    }
    let draft = extract_draft(&raw, &words, None, ctx);
    // Without a verb, a name alone is not a detail ("I want to know…" is not a recipient called "know").
    let substantive = draft.amount.is_some()
        || draft.amount_error.is_some()
        || draft.recipient_phone.is_some()
        || draft.phone_error.is_some()
        || draft.payout_method.is_some();
    if substantive {
        return Parsed {
            intent: Intent::Details(draft),
            lang,
        };
    }
    Parsed {
        intent: Intent::Unknown {
            reason: UnknownReason::NotUnderstood,
        },
        lang,
    }
}

fn detect_lang(words: &[String]) -> Option<Lang> {
    let es = words
        .iter()
        .filter(|w| ES_HINTS.contains(&w.as_str()) || SEND_ES.contains(&w.as_str()))
        .count();
    let en = words
        .iter()
        .filter(|w| EN_HINTS.contains(&w.as_str()) || SEND_EN.contains(&w.as_str()))
        .count();
    match es.cmp(&en) {
        std::cmp::Ordering::Greater => Some(Lang::Es),
        std::cmp::Ordering::Less => Some(Lang::En),
        std::cmp::Ordering::Equal => None,
    }
}

/// Finds the longest valid phone number starting at `start` among phone-ish tokens; returns (end, result).
fn phone_at(raw: &[&str], start: usize, region: Option<Region>) -> (usize, Result<PhoneNumber, PhoneError>) {
    let mut end = start;
    while end < raw.len()
        && is_phoneish(raw[end].trim_end_matches([',', ';', ':', '!', '?']))
        && digit_count(&raw[start..=end]) <= 15
    {
        end += 1;
    }
    let mut first_err = PhoneError::NotANumber;
    for e in (start + 1..=end).rev() {
        let candidate = raw[start..e]
            .iter()
            .map(|t| t.trim_end_matches([',', ';', ':', '!', '?', '.']))
            .collect::<Vec<_>>()
            .join(" ");
        match PhoneNumber::parse(&candidate, region) {
            Ok(p) => return (e, Ok(p)),
            Err(err) if e == end => first_err = err,
            Err(_) => {}
        }
    }
    (end, Err(first_err))
}

fn extract_draft(raw: &[&str], words: &[String], verb_at: Option<usize>, ctx: &ParseContext) -> SendDraft {
    let mut draft = SendDraft::default();
    let mut used = vec![false; raw.len()];
    if let Some(v) = verb_at {
        used[v] = true;
    }

    // 1. Numbers written with a leading `+`: unambiguous phone numbers.
    let mut i = 0;
    while i < raw.len() {
        if raw[i].starts_with('+')
            && raw[i][1..].starts_with(|c: char| c.is_ascii_digit())
            && draft.recipient_phone.is_none()
        {
            let (end, result) = phone_at(raw, i, ctx.default_region);
            used[i..end].iter_mut().for_each(|u| *u = true);
            match result {
                Ok(p) => draft.recipient_phone = Some(p),
                Err(e) => draft.phone_error = Some(e),
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }

    // 2. The amount: prefer one with a currency marker, else the first plain number not after "to"/"a".
    let mut best: Option<(usize, Option<usize>, &str, Option<Currency>)> = None; // (index, currency word idx, number, currency)
    for (idx, token) in raw.iter().enumerate() {
        if used[idx] || token.starts_with('+') {
            continue;
        }
        let Some((num, marker)) = split_amount_token(token) else {
            continue;
        };
        let prev = idx.checked_sub(1).map(|p| words[p].as_str());
        let next_currency = raw
            .get(idx + 1)
            .and_then(|n| Currency::from_word(&word(n)).map(|c| (idx + 1, c)));
        let prev_currency = prev.and_then(Currency::from_word).map(|c| (idx - 1, c));
        let currency = marker
            .map(|c| (None, c))
            .or(next_currency.map(|(i, c)| (Some(i), c)))
            .or(prev_currency.map(|(i, c)| (Some(i), c)));
        let after_to = prev.is_some_and(|p| TO_WORDS.contains(&p));
        let long_digits = num.chars().filter(char::is_ascii_digit).count() >= 8 && !num.contains([',', '.']);
        let right_after_verb = verb_at.is_some_and(|v| v + 1 == idx);
        let eligible = currency.is_some() || right_after_verb || (!after_to && !long_digits);
        if !eligible {
            continue;
        }
        let entry = (idx, currency.and_then(|(i, _)| i), num, currency.map(|(_, c)| c));
        match &best {
            None => best = Some(entry),
            Some(b) if b.3.is_none() && entry.3.is_some() => best = Some(entry),
            _ => {}
        }
        if best.as_ref().is_some_and(|b| b.3.is_some()) {
            break;
        }
    }
    if let Some((idx, cur_idx, num, currency)) = best {
        used[idx] = true;
        if let Some(ci) = cur_idx {
            used[ci] = true;
        }
        match Amount::parse(num) {
            Ok(a) => draft.amount = Some(a),
            Err(e) => draft.amount_error = Some(e),
        }
        draft.currency = currency;
    }

    // 3. Local phone numbers (no `+`): after "to"/"a", or long digit runs.
    if draft.recipient_phone.is_none() && draft.phone_error.is_none() {
        let mut i = 0;
        while i < raw.len() {
            let t = raw[i].trim_end_matches([',', ';', ':', '!', '?']);
            if used[i] || !is_phoneish(t) {
                i += 1;
                continue;
            }
            let (end, result) = phone_at(raw, i, ctx.default_region);
            let after_to = i
                .checked_sub(1)
                .is_some_and(|p| TO_WORDS.contains(&words[p].as_str()) || draft.recipient_name.is_some());
            let digits = digit_count(&raw[i..end]);
            if after_to || digits >= 7 || result.is_ok() {
                used[i..end].iter_mut().for_each(|u| *u = true);
                match result {
                    Ok(p) => draft.recipient_phone = Some(p),
                    Err(e) => draft.phone_error = Some(e),
                }
                break;
            }
            i = end.max(i + 1);
        }
    }

    // 4. Payout method.
    let has = |w: &str| words.iter().any(|x| x == w);
    draft.payout_method = if has("remesa") && (has("wallet") || has("billetera") || has("cuenta")) {
        Some(PayoutMethod::RemesaWallet)
    } else if has("cash")
        || has("pickup")
        || has("efectivo")
        || has("retiro")
        || has("recoger")
        || (has("pick") && has("up"))
    {
        Some(PayoutMethod::CashPickup)
    } else if has("bank") || has("banco") || has("deposit") || has("deposito") || has("bancaria") {
        Some(PayoutMethod::BankDeposit)
    } else if has("mobile")
        || has("movil")
        || has("wallet")
        || has("billetera")
        || has("m-pesa")
        || has("mpesa")
    {
        Some(PayoutMethod::MobileWallet)
    } else {
        None
    };

    // 5. Recipient name: letters right after "to"/"a"/"para" (original spelling), up to four words.
    if let Some(to_at) = words
        .iter()
        .enumerate()
        .position(|(i, w)| !used[i] && ["to", "a", "para"].contains(&w.as_str()))
    {
        let mut name = Vec::new();
        for (j, token) in raw.iter().enumerate().skip(to_at + 1).take(4) {
            let clean = token.trim_matches(|c: char| !c.is_alphabetic());
            let is_name_word = !used[j]
                && !clean.is_empty()
                && clean.chars().all(|c| c.is_alphabetic() || c == '\'' || c == '-')
                && token.chars().all(|c| c.is_alphabetic() || "'-.,".contains(c))
                && !STOP_WORDS.contains(&words[j].as_str())
                && Currency::from_word(&words[j]).is_none();
            if !is_name_word {
                break;
            }
            name.push(clean);
            if token.ends_with(',') {
                break;
            }
        }
        if !name.is_empty() {
            let n: String = name.join(" ").chars().take(NAME_MAX_CHARS).collect();
            draft.recipient_name = Some(n);
        }
    }
    draft
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn us() -> ParseContext {
        ParseContext {
            default_region: Region::from_alpha2("US"),
        }
    }

    fn send(text: &str) -> SendDraft {
        match parse(text, &us()).intent {
            Intent::Send(d) => d,
            other => panic!("{text:?} parsed as {other:?}"),
        }
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    #[test]
    fn amounts() {
        for (input, want) in [
            ("100", "100"),
            ("100.50", "100.50"),
            ("1,000.50", "1000.50"),
            ("1.000,50", "1000.50"),
            ("1,000", "1000"),
            ("100,5", "100.5"),
            ("1,000,000", "1000000"),
            ("0.01", "0.01"),
            ("007", "7"),
        ] {
            assert_eq!(Amount::parse(input).map(|a| a.value()), Ok(dec(want)), "{input}");
        }
        assert_eq!(Amount::parse("1.000"), Err(AmountError::Ambiguous));
        assert_eq!(Amount::parse("1.005"), Err(AmountError::Ambiguous));
        assert_eq!(Amount::parse("1.0055"), Err(AmountError::TooManyDecimals));
        assert_eq!(Amount::parse("0"), Err(AmountError::NotPositive));
        assert_eq!(Amount::parse("0.00"), Err(AmountError::NotPositive));
        assert_eq!(Amount::parse("1000000.01"), Err(AmountError::TooLarge));
        assert_eq!(Amount::parse("99999999999999999999"), Err(AmountError::TooLarge));
        assert_eq!(Amount::parse("1,00,000"), Err(AmountError::NotANumber));
        assert_eq!(Amount::parse("1..2"), Err(AmountError::NotANumber));
        assert_eq!(Amount::parse(".5"), Err(AmountError::NotANumber));
        assert_eq!(Amount::parse("5."), Err(AmountError::NotANumber));
        assert_eq!(Amount::parse("-5"), Err(AmountError::NotANumber));
        assert_eq!(format_money(dec("1234567.5")), "1,234,567.50");
        assert_eq!(format_money(dec("0.005")), "0.01");
        assert_eq!(format_money(dec("100")), "100.00");
    }

    #[test]
    fn english_send() {
        let d = send("send 100 to Maria +502 5555 0101, cash pickup");
        assert_eq!(d.amount.map(|a| a.value()), Some(dec("100")));
        assert_eq!(
            d.recipient_phone.as_ref().map(PhoneNumber::as_str),
            Some("+50255550101")
        );
        assert_eq!(d.payout_method, Some(PayoutMethod::CashPickup));
        assert_eq!(d.recipient_name.as_deref(), Some("Maria"));
        let d = send("Send $1,000.50 to +52 55 1234 5678 bank");
        assert_eq!(d.amount.map(|a| a.value()), Some(dec("1000.50")));
        assert_eq!(d.currency, Some(Currency::USD));
        assert_eq!(d.payout_method, Some(PayoutMethod::BankDeposit));
        assert_eq!(
            d.recipient_phone.as_ref().map(PhoneNumber::as_str),
            Some("+525512345678")
        );
        let d = send("please send 100 usd to +502 5555 0101 100");
        assert_eq!(d.amount.map(|a| a.value()), Some(dec("100")));
        assert_eq!(
            d.recipient_phone.as_ref().map(PhoneNumber::as_str),
            Some("+50255550101")
        );
        let d = send("send to +502 5555 0101 250 dollars mobile wallet");
        assert_eq!(d.amount.map(|a| a.value()), Some(dec("250")));
        assert_eq!(d.payout_method, Some(PayoutMethod::MobileWallet));
        let d = send("send 20 to +1 415 555 2671 remesa wallet");
        assert_eq!(d.payout_method, Some(PayoutMethod::RemesaWallet));
        let d = send("send 100.5usd");
        assert_eq!(d.amount.map(|a| a.value()), Some(dec("100.5")));
        assert!(d.recipient_phone.is_none());
        let d = send("send");
        assert!(d.amount.is_none() && d.recipient_phone.is_none());
        // US sender, local US number.
        let d = send("send 40 to (415) 555-2671");
        assert_eq!(
            d.recipient_phone.as_ref().map(PhoneNumber::as_str),
            Some("+14155552671")
        );
        // A local number that is not from the sender's country: asks for the country code.
        let d = send("send 40 to 5555 0101");
        assert_eq!(d.phone_error, Some(PhoneError::NeedsCountryCode));
    }

    #[test]
    fn spanish_send() {
        let p = parse("Envía 50 a María López al +502 5555 0101 en efectivo", &us());
        assert_eq!(p.lang, Some(Lang::Es));
        let Intent::Send(d) = p.intent else {
            panic!("{:?}", p.intent)
        };
        assert_eq!(d.amount.map(|a| a.value()), Some(dec("50")));
        assert_eq!(d.recipient_name.as_deref(), Some("María López"));
        assert_eq!(d.payout_method, Some(PayoutMethod::CashPickup));
        assert_eq!(
            d.recipient_phone.as_ref().map(PhoneNumber::as_str),
            Some("+50255550101")
        );
        let gt = ParseContext {
            default_region: Region::from_alpha2("GT"),
        };
        let Intent::Send(d) = parse("quiero enviar 1.500,25 dólares a 5555 0101 banco", &gt).intent else {
            panic!()
        };
        assert_eq!(d.amount.map(|a| a.value()), Some(dec("1500.25")));
        assert_eq!(d.currency, Some(Currency::USD));
        assert_eq!(
            d.recipient_phone.as_ref().map(PhoneNumber::as_str),
            Some("+50255550101")
        );
        assert_eq!(d.payout_method, Some(PayoutMethod::BankDeposit));
        let Intent::Send(d) = parse("mandar 75 a Juan billetera", &gt).intent else {
            panic!()
        };
        assert_eq!(d.payout_method, Some(PayoutMethod::MobileWallet));
        assert_eq!(d.recipient_name.as_deref(), Some("Juan"));
        let Intent::Send(d) = parse("envia 10 a +502 5555 0101 billetera remesa", &gt).intent else {
            panic!()
        };
        assert_eq!(d.payout_method, Some(PayoutMethod::RemesaWallet));
        let Intent::Send(d) = parse("enviar 1.000 a +502 5555 0101", &gt).intent else {
            panic!()
        };
        assert_eq!(d.amount_error, Some(AmountError::Ambiguous));
    }

    #[test]
    fn commands() {
        let c = us();
        let cases: &[(&str, Intent, Option<Lang>)] = &[
            ("hola", Intent::Greeting, Some(Lang::Es)),
            ("Hi!", Intent::Greeting, Some(Lang::En)),
            ("/start", Intent::Greeting, None),
            ("OK", Intent::Confirm, None),
            ("menu", Intent::Help, None),
            ("good morning", Intent::Greeting, Some(Lang::En)),
            ("help", Intent::Help, Some(Lang::En)),
            ("AYUDA", Intent::Help, Some(Lang::Es)),
            ("balance", Intent::Balance, Some(Lang::En)),
            ("saldo?", Intent::Balance, Some(Lang::Es)),
            ("status", Intent::Status { reference: None }, Some(Lang::En)),
            (
                "estado R-12ab",
                Intent::Status {
                    reference: Some("R-12ab".into()),
                },
                Some(Lang::Es),
            ),
            ("history", Intent::History, Some(Lang::En)),
            ("historial", Intent::History, Some(Lang::Es)),
            ("cancel", Intent::Cancel, Some(Lang::En)),
            ("Cancelar", Intent::Cancel, Some(Lang::Es)),
            ("yes", Intent::Confirm, Some(Lang::En)),
            ("Sí", Intent::Confirm, Some(Lang::Es)),
            ("si", Intent::Confirm, Some(Lang::Es)),
            ("confirm", Intent::Confirm, Some(Lang::En)),
            ("no", Intent::Decline, None),
            ("No.", Intent::Decline, None),
            ("code", Intent::LostCode, Some(Lang::En)),
            ("lost my code", Intent::LostCode, Some(Lang::En)),
            ("Código?", Intent::LostCode, Some(Lang::Es)),
            ("perdí mi código de retiro ayer", Intent::LostCode, Some(Lang::Es)),
            (
                "lost and found",
                Intent::Unknown {
                    reason: UnknownReason::NotUnderstood,
                },
                Some(Lang::En),
            ),
            (
                "resend 5f0c1a2b",
                Intent::Resend {
                    reference: Some("5f0c1a2b".into()),
                },
                Some(Lang::En),
            ),
            ("reenviar", Intent::Resend { reference: None }, Some(Lang::Es)),
            ("verify", Intent::Verify, Some(Lang::En)),
            ("Verificar", Intent::Verify, Some(Lang::Es)),
            (
                "I have a problem with transfer e93a37ef",
                Intent::Problem {
                    reference: Some("e93a37ef".into()),
                },
                Some(Lang::En),
            ),
            (
                "tengo un problema con el envío E93A37EF, no llegó",
                Intent::Problem {
                    reference: Some("e93a37ef".into()),
                },
                Some(Lang::Es),
            ),
            ("problema", Intent::Problem { reference: None }, Some(Lang::Es)),
            ("no problem", Intent::Decline, None),
        ];
        for (text, intent, lang) in cases {
            let p = parse(text, &c);
            assert_eq!(&p.intent, intent, "{text}");
            assert_eq!(&p.lang, lang, "{text}");
        }
    }

    #[test]
    fn details_and_unknown() {
        let c = us();
        let Intent::Details(d) = parse("+502 5555 0101", &c).intent else {
            panic!()
        };
        assert!(d.recipient_phone.is_some());
        let Intent::Details(d) = parse("cash", &c).intent else {
            panic!()
        };
        assert_eq!(d.payout_method, Some(PayoutMethod::CashPickup));
        let Intent::Details(d) = parse("250.75", &c).intent else {
            panic!()
        };
        assert_eq!(d.amount.map(|a| a.value()), Some(dec("250.75")));
        assert_eq!(
            parse("", &c).intent,
            Intent::Unknown {
                reason: UnknownReason::Empty
            }
        );
        assert_eq!(
            parse("   \n\t", &c).intent,
            Intent::Unknown {
                reason: UnknownReason::Empty
            }
        );
        assert_eq!(
            parse("🎉🎉🎉", &c).intent,
            Intent::Unknown {
                reason: UnknownReason::NoWords
            }
        );
        assert_eq!(
            parse(&"a".repeat(5000), &c).intent,
            Intent::Unknown {
                reason: UnknownReason::TooLong
            }
        );
        assert_eq!(
            parse("what is the meaning of life", &c).intent,
            Intent::Unknown {
                reason: UnknownReason::NotUnderstood
            }
        );
        assert_eq!(
            parse("asdf qwer zxcv", &c).intent,
            Intent::Unknown {
                reason: UnknownReason::NotUnderstood
            }
        );
        // A long sentence that starts with "no" is not a bare "no".
        assert_eq!(
            parse("no I want to know what happened to my money", &c).intent,
            Intent::Unknown {
                reason: UnknownReason::NotUnderstood
            }
        );
    }

    fn render_amount(minor: u64, style: u8) -> String {
        let d = Decimal::new(minor as i64, 2);
        match style % 5 {
            0 => d.to_string(),
            1 => format_money(d),
            2 => format!("${}", format_money(d)),
            3 => format!("{d} usd"),
            _ => format_money(d)
                .replace(',', "_")
                .replace('.', ",")
                .replace('_', "."),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn never_panics_on_any_string(s in "\\PC{0,300}") {
            let _ = parse(&s, &us());
        }

        #[test]
        fn never_panics_on_any_unicode(s in any::<String>()) {
            let _ = parse(&s, &ParseContext::default());
        }

        #[test]
        fn never_panics_on_bytes_as_utf8(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let s = String::from_utf8_lossy(&bytes);
            let _ = parse(&s, &us());
        }

        #[test]
        fn never_panics_on_command_soup(words in proptest::collection::vec(
            prop_oneof![
                Just("send".to_owned()), Just("envía".to_owned()), Just("to".to_owned()), Just("a".to_owned()),
                Just("+".to_owned()), Just("$".to_owned()), Just("cash".to_owned()), Just("remesa".to_owned()),
                "[0-9.,+()\\-]{1,12}", "\\PC{1,6}", "[a-zA-Záéíóúñ]{1,8}",
            ], 0..20)) {
            let _ = parse(&words.join(" "), &us());
        }

        #[test]
        fn amounts_round_trip(minor in 1u64..=100_000_000, style in any::<u8>()) {
            let d = Decimal::new(minor as i64, 2);
            let text = render_amount(minor, style);
            let (num, _) = split_amount_token(text.split_whitespace().next().unwrap_or_default()).expect("amount token");
            prop_assert_eq!(Amount::parse(num).map(|a| a.value()), Ok(d));
            let a = Amount::new(d).expect("valid");
            prop_assert_eq!(Amount::parse(&a.to_string()), Ok(a));
            prop_assert_eq!(Amount::parse(&String::from(a)), Ok(a));
        }

        #[test]
        fn constructed_commands_parse(
            minor in 1u64..=100_000_000,
            style in any::<u8>(),
            verb in prop::sample::select(vec!["send", "Send", "envía", "envia", "enviar", "mandar", "please send", "quiero enviar"]),
            phone in prop::sample::select(vec![("+502 5555 0101", "+50255550101"), ("+52 55 1234 5678", "+525512345678"), ("+63 917 123 4567", "+639171234567"), ("+1 415 555 2671", "+14155552671")]),
            method in prop::sample::select(vec![("cash pickup", PayoutMethod::CashPickup), ("efectivo", PayoutMethod::CashPickup), ("bank", PayoutMethod::BankDeposit), ("banco", PayoutMethod::BankDeposit), ("mobile wallet", PayoutMethod::MobileWallet), ("billetera", PayoutMethod::MobileWallet), ("remesa wallet", PayoutMethod::RemesaWallet)]),
            to in prop::sample::select(vec!["to", "a", "para"]),
            name in prop::option::of(prop::sample::select(vec!["Maria", "José Luis", "Ana", "Pedro Pérez"])),
        ) {
            let amount = render_amount(minor, style);
            let name_part = name.map(|n| format!("{n} ")).unwrap_or_default();
            let text = format!("{verb} {amount} {to} {name_part}{} {}", phone.0, method.0);
            let p = parse(&text, &us());
            let Intent::Send(d) = p.intent else { return Err(TestCaseError::fail(format!("{text:?} → {:?}", p.intent))) };
            prop_assert_eq!(d.amount.map(|a| a.value()), Some(Decimal::new(minor as i64, 2)), "{}", text);
            prop_assert_eq!(d.recipient_phone.as_ref().map(PhoneNumber::as_str), Some(phone.1), "{}", text);
            prop_assert_eq!(d.payout_method, Some(method.1), "{}", text);
            prop_assert_eq!(d.recipient_name.as_deref(), name, "{}", text);
        }
    }
}
