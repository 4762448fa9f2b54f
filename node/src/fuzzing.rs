//! Fuzz-target bodies: one function per parser of untrusted input, each calling the node's real parsing function
//! and then checking properties of what it returned.
//!
//! The cargo-fuzz targets in `node/fuzz/` (`scripts/faults/fuzz.sh` runs them) and the corpus replay test
//! (`node/tests/fuzz_corpus.rs`) call exactly these functions, so a corpus file means the same thing in both. A
//! function panics only when a parser panics or a property fails: that is a bug in the node, never in the input.
//! Not part of the node's API.

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use rust_decimal::Decimal;

use crate::chat::intent::{self, AMOUNT_MAX, Amount, Intent, NAME_MAX_CHARS, ParseContext, SendDraft};
use crate::chat::model::{INBOUND_TEXT_MAX_BYTES, InboundContent, InboundMessage, Platform};
use crate::chat::{telegram, whatsapp};
use crate::domain::{PayoutMethod, PhoneNumber, Region, TokenAmount, currency_exponent, parse_currency};
use crate::partner::httpsig::{
    self, DEFAULT_LABEL, ParsedSignature, SIGNATURE, SIGNATURE_INPUT, VerifyPolicy,
};

/// A fuzz target: its name (the cargo-fuzz target and its corpus folder `node/fuzz/corpus/<name>/`) and body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, in the order the fuzz script runs them.
pub const TARGETS: &[Target] = &[
    ("intent", intent),
    ("whatsapp_body", whatsapp_body),
    ("telegram_body", telegram_body),
    ("httpsig", httpsig),
    ("money", money),
    ("phone", phone),
];

/// A chat text (any bytes, read as lossy UTF-8) through the intent parser, without a default region and with the
/// US and Guatemala as the sender's country. Whatever it finds must obey the parser's own rules.
pub fn intent(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for region in [None, Region::from_alpha2("US"), Region::from_alpha2("GT")] {
        let ctx = ParseContext {
            default_region: region,
        };
        let parsed = intent::parse(&text, &ctx);
        match &parsed.intent {
            Intent::Send(draft) | Intent::Details(draft) => check_draft(draft),
            Intent::Status { reference } | Intent::Resend { reference } => {
                if let Some(r) = reference {
                    assert!(!r.is_empty() && r.len() <= 80, "reference {r:?}");
                    assert!(
                        r.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                        "reference {r:?}"
                    );
                }
            }
            Intent::Problem { reference: Some(r) } => {
                assert!((6..=66).contains(&r.len()), "problem reference {r:?}");
                assert!(
                    r.bytes().all(|b| b.is_ascii_hexdigit() || b == b'x') && r == &r.to_ascii_lowercase(),
                    "problem reference {r:?}"
                );
            }
            _ => {}
        }
    }
}

fn check_draft(draft: &SendDraft) {
    if let Some(a) = draft.amount {
        check_chat_amount(a);
    }
    if let Some(p) = &draft.recipient_phone {
        check_phone(p);
    }
    if let Some(name) = &draft.recipient_name {
        assert!(
            !name.is_empty() && name.chars().count() <= NAME_MAX_CHARS,
            "name {name:?}"
        );
    }
}

/// A parsed chat amount is positive, at most [`AMOUNT_MAX`], has at most two decimals, and both of its renderings
/// (the text shown to people and the stored string) parse back to it.
fn check_chat_amount(a: Amount) {
    let v = a.value();
    assert!(v > Decimal::ZERO && v <= AMOUNT_MAX, "amount {v}");
    assert!(v.normalize().scale() <= 2, "amount {v}");
    let shown = a.to_string();
    assert_eq!(Amount::parse(&shown), Ok(a), "shown as {shown:?}");
    let stored = String::from(a);
    assert_eq!(Amount::parse(&stored), Ok(a), "stored as {stored:?}");
}

/// A parsed phone number is `+` and digits, re-parses to itself without a region, and survives the JSON round trip
/// of the conversation state (which reads it back with [`PhoneNumber::from_platform`]).
fn check_phone(p: &PhoneNumber) {
    let s = p.as_str();
    let digits = s.strip_prefix('+').unwrap_or_else(|| panic!("{s:?} has no +"));
    assert!(
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
        "{s:?}"
    );
    assert_eq!(PhoneNumber::parse(s, None).as_ref(), Ok(p), "{s:?} re-parsed");
    let json = serde_json::to_string(p).unwrap_or_else(|e| panic!("{s:?} to JSON: {e}"));
    let back: Result<PhoneNumber, _> = serde_json::from_str(&json);
    assert_eq!(back.as_ref().ok(), Some(p), "{s:?} from JSON: {back:?}");
    let _ = p.region();
}

/// A WhatsApp webhook body (what Meta POSTs) through [`whatsapp::parse_webhook`].
pub fn whatsapp_body(data: &[u8]) {
    let Ok(events) = whatsapp::parse_webhook(data) else {
        return;
    };
    assert!(
        events.messages.len() + events.statuses.len() <= whatsapp::EVENTS_PER_PAYLOAD_MAX,
        "{} messages, {} statuses",
        events.messages.len(),
        events.statuses.len()
    );
    for m in &events.messages {
        assert_eq!(m.platform, Platform::Whatsapp);
        assert!(
            !m.message_id.is_empty() && m.message_id.len() <= 512,
            "message id {:?}",
            m.message_id
        );
        if let Some(phone) = &m.sender.phone_e164 {
            let digits = phone.strip_prefix('+').unwrap_or_default();
            assert!(
                (1..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()),
                "sender phone {phone:?}"
            );
            assert_eq!(&m.sender.user_key, digits, "user key of {phone:?}");
        }
        assert!(m.callback_query_id.is_none());
        check_inbound(m);
    }
}

/// A Telegram webhook body (one `Update`) through [`telegram::parse_update`].
pub fn telegram_body(data: &[u8]) {
    let Ok(event) = telegram::parse_update(data) else {
        return;
    };
    match &event {
        telegram::TelegramEvent::Inbound(m) => {
            assert_eq!(m.platform, Platform::Telegram);
            assert!(
                m.message_id.starts_with("msg:") || m.message_id.starts_with("cbq:"),
                "message id {:?}",
                m.message_id
            );
            assert_eq!(
                m.callback_query_id.is_some(),
                m.message_id.starts_with("cbq:"),
                "{m:?}"
            );
            assert!(m.sender.phone_e164.is_none());
            check_inbound(m);
        }
        telegram::TelegramEvent::Edited { message_id, .. } => {
            assert!(message_id.starts_with("edit:"), "{message_id:?}");
        }
        telegram::TelegramEvent::Ignore { .. } => {}
    }
}

/// What every normalised inbound message keeps: texts within [`INBOUND_TEXT_MAX_BYTES`], and the JSON the inbox
/// stores reads back as the same message.
fn check_inbound(m: &InboundMessage) {
    assert!(!m.sender.user_key.is_empty(), "{m:?}");
    if let InboundContent::Text { text, .. } = &m.content {
        assert!(text.len() <= INBOUND_TEXT_MAX_BYTES, "{} bytes", text.len());
    }
    let json = serde_json::to_vec(m).unwrap_or_else(|e| panic!("{m:?} to JSON: {e}"));
    let back: InboundMessage =
        serde_json::from_slice(&json).unwrap_or_else(|e| panic!("{m:?} from JSON: {e}"));
    assert_eq!(&back, m);
}

/// When the fuzz messages are checked (for the age checks of [`ParsedSignature::check_params`]).
const NOW_UNIX_S: u64 = 1_767_225_600;

/// RFC 9421 headers: the input's lines are the `Signature-Input`, `Signature` and `Content-Digest` values (a line
/// that is not a valid header value leaves its header out). Read with [`ParsedSignature::from_headers`], both for
/// any label and for `sig1`; what parses must serialize, and its serialization must parse to the same parameters.
/// The key-free checks and a verification (with a key that signed nothing) run on it too; they must not panic.
pub fn httpsig(data: &[u8]) {
    let mut lines = data.splitn(3, |b| *b == b'\n');
    let mut headers = HeaderMap::new();
    for name in [SIGNATURE_INPUT, SIGNATURE, httpsig::CONTENT_DIGEST] {
        if let Some(line) = lines.next()
            && let Ok(v) = HeaderValue::from_bytes(line)
        {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    if let Some(digest) = headers.get(httpsig::CONTENT_DIGEST).and_then(|v| v.to_str().ok()) {
        let _ = httpsig::verify_content_digest(digest, b"{}");
    }
    for label in [None, Some(DEFAULT_LABEL)] {
        let Ok(parsed) = ParsedSignature::from_headers(&headers, label) else {
            continue;
        };
        if let Some(l) = label {
            assert_eq!(parsed.label, l);
        }
        let serialized = parsed
            .params
            .serialize()
            .unwrap_or_else(|e| panic!("{:?} does not serialize: {e}", parsed.params));
        let mut again = HeaderMap::new();
        let input = format!("{}={serialized}", parsed.label);
        again.insert(
            SIGNATURE_INPUT,
            HeaderValue::from_str(&input).unwrap_or_else(|e| panic!("{input:?}: {e}")),
        );
        if let Some(sig) = headers.get(SIGNATURE) {
            again.insert(SIGNATURE, sig.clone());
        }
        let reparsed = ParsedSignature::from_headers(&again, Some(&parsed.label))
            .unwrap_or_else(|e| panic!("{input:?} does not parse again: {e}"));
        assert_eq!(reparsed.params, parsed.params, "{input:?}");
        assert_eq!(reparsed.signature, parsed.signature, "{input:?}");

        let policy = VerifyPolicy::partner_api(300);
        let _ = parsed.check_params(&policy, NOW_UNIX_S);
        let _ = parsed.replay_window_end_unix_s(&policy);
        let _ = parsed.keyid();
        let msg = httpsig::MessageParts {
            method: &Method::POST,
            target_uri: "https://node.example/v1/partner/payouts/rm_1/complete?x=1",
            headers: &headers,
        };
        let _ = httpsig::signature_base(&msg, &parsed.params);
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
        let _ = parsed.verify(&msg, b"", &key);
    }
}

/// Money: the first byte is the token's decimals, the rest (lossy UTF-8) the text. The text goes through
/// [`TokenAmount::parse_decimal`] (the API's amounts), the chat's [`Amount::parse`], [`parse_currency`] and
/// [`PayoutMethod::parse`]. A parsed token amount renders (all of its decimals) and re-parses to itself and converts
/// to a [`Decimal`] and back exactly.
pub fn money(data: &[u8]) {
    let Some((&decimals, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    if let Ok(a) = TokenAmount::parse_decimal(&text, decimals) {
        assert_eq!(a.decimals(), decimals);
        assert!(!a.base_units().is_zero(), "{text:?} parsed as zero");
        let shown = a.to_string();
        assert_eq!(
            TokenAmount::parse_decimal(&shown, decimals),
            Ok(a),
            "{text:?} shown as {shown:?}"
        );
        if let Some(d) = a.to_decimal() {
            assert_eq!(TokenAmount::from_decimal(d, decimals), Ok(a), "{text:?} as {d}");
        }
    }
    if let Ok(a) = Amount::parse(&text) {
        check_chat_amount(a);
    }
    if let Ok(code) = parse_currency(&text) {
        assert!(
            code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()),
            "{code:?}"
        );
        assert_eq!(parse_currency(&code).as_ref(), Ok(&code));
        assert!(currency_exponent(&code) <= 3);
    }
    if let Some(m) = PayoutMethod::parse(&text) {
        assert_eq!(m.as_str(), text);
    }
}

/// Phone numbers: with a newline, the first line is the sender's country (ISO alpha-2, read by
/// [`Region::from_alpha2`]) and the rest the number; without, the whole input is the number, with no region. The
/// number goes through [`PhoneNumber::parse`], [`PhoneNumber::from_platform`] and [`Region::of_e164`]; a parsed
/// number's E.164 form re-parses to itself and survives the JSON round trip.
pub fn phone(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (region, number) = match text.split_once('\n') {
        Some((r, n)) => (Region::from_alpha2(r), n),
        None => (None, text.as_ref()),
    };
    if let Ok(p) = PhoneNumber::parse(number, region) {
        check_phone(&p);
    }
    if let Ok(p) = PhoneNumber::from_platform(number) {
        assert_eq!(p.as_str(), number);
        let json = serde_json::to_string(&p).unwrap_or_else(|e| panic!("{number:?} to JSON: {e}"));
        let back: Result<PhoneNumber, _> = serde_json::from_str(&json);
        assert_eq!(back.as_ref().ok(), Some(&p), "{number:?} from JSON: {back:?}");
        let _ = p.region();
    }
    if let Some(r) = Region::of_e164(number) {
        assert_eq!(Region::from_alpha2(r.alpha2()), Some(r));
    }
}
