//! Webhook authentication: WhatsApp `X-Hub-Signature-256` (HMAC-SHA256 over the raw body), the WhatsApp GET
//! verification handshake, and Telegram's `X-Telegram-Bot-Api-Secret-Token`. All comparisons are constant-time.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Why a webhook was refused. Messages never contain the secrets or the presented values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The signature / secret header is absent.
    #[error("missing signature header")]
    Missing,
    /// The header is present but not in the expected format (`sha256=<64 hex>`).
    #[error("malformed signature header")]
    Malformed,
    /// Well-formed but wrong.
    #[error("signature mismatch")]
    Mismatch,
    /// The platform is not configured on this node (no secret), so nothing can be verified.
    #[error("platform not configured")]
    NotConfigured,
}

/// Header carrying the WhatsApp (Meta) body signature.
pub const WHATSAPP_SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// Header carrying the Telegram webhook secret.
pub const TELEGRAM_SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// HMAC-SHA256 of `body` under `app_secret`, formatted like Meta's header: `sha256=<lowercase hex>`.
pub fn whatsapp_signature(app_secret: &[u8], body: &[u8]) -> String {
    match <Hmac<Sha256> as Mac>::new_from_slice(app_secret) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        // Unreachable: HMAC accepts keys of every length.
        Err(_) => String::new(),
    }
}

/// Verifies `X-Hub-Signature-256` over the RAW request body bytes (never re-serialised JSON: Meta signs the escaped
/// wire form). Accepts the hex in either case; compares the 32 MAC bytes in constant time.
pub fn verify_whatsapp_signature(
    app_secret: &[u8],
    body: &[u8],
    header: Option<&[u8]>,
) -> Result<(), AuthError> {
    let header = header.ok_or(AuthError::Missing)?;
    let header = std::str::from_utf8(header)
        .map_err(|_| AuthError::Malformed)?
        .trim();
    let hex_part = header
        .strip_prefix("sha256=")
        .or_else(|| header.strip_prefix("SHA256="))
        .ok_or(AuthError::Malformed)?;
    if hex_part.len() != 64 {
        return Err(AuthError::Malformed);
    }
    let presented = hex::decode(hex_part).map_err(|_| AuthError::Malformed)?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(app_secret).map_err(|_| AuthError::NotConfigured)?;
    mac.update(body);
    // `verify_slice` compares in constant time (subtle) inside the hmac crate.
    mac.verify_slice(&presented).map_err(|_| AuthError::Mismatch)
}

/// Checks `X-Telegram-Bot-Api-Secret-Token` against the configured secret in constant time (length differences
/// are revealed, content is not — the same as every constant-time string compare).
pub fn verify_telegram_secret(expected: &[u8], header: Option<&[u8]>) -> Result<(), AuthError> {
    let presented = header.ok_or(AuthError::Missing)?;
    if expected.is_empty() {
        return Err(AuthError::NotConfigured);
    }
    if bool::from(presented.ct_eq(expected)) {
        Ok(())
    } else {
        Err(AuthError::Mismatch)
    }
}

/// Result of the WhatsApp GET verification handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// Answer 200 with this body (the `hub.challenge` value).
    Accept(String),
    /// Answer 403.
    Refuse,
}

/// Longest accepted `hub.challenge`, in bytes (Meta sends a short integer).
pub const CHALLENGE_MAX_BYTES: usize = 256;

/// The WhatsApp verification handshake: `hub.mode=subscribe`, `hub.verify_token` equal to ours (constant-time),
/// answer `hub.challenge`. `params` are the decoded query pairs; PHP-style `hub_mode` names are accepted too.
pub fn whatsapp_handshake<'a>(
    expected_verify_token: Option<&[u8]>,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Handshake {
    let Some(expected) = expected_verify_token.filter(|t| !t.is_empty()) else {
        return Handshake::Refuse;
    };
    let (mut mode, mut token, mut challenge) = (None, None, None);
    for (k, v) in params {
        match k {
            "hub.mode" | "hub_mode" => mode = Some(v),
            "hub.verify_token" | "hub_verify_token" => token = Some(v),
            "hub.challenge" | "hub_challenge" => challenge = Some(v),
            _ => {}
        }
    }
    match (mode, token, challenge) {
        (Some("subscribe"), Some(token), Some(challenge))
            if bool::from(token.as_bytes().ct_eq(expected))
                && !challenge.is_empty()
                && challenge.len() <= CHALLENGE_MAX_BYTES
                && challenge
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            Handshake::Accept(challenge.to_owned())
        }
        _ => Handshake::Refuse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sourced_vectors() {
        assert_eq!(
            whatsapp_signature(b"secret", b"test"),
            "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"
        );
        let body = "Let's pretend this body is equal to the message object and can handle unicode characters like \\u307f\\u3069\\u308a\\u3044\\u308d and J'ai mang\\u00e9 des p\\u00e2tes";
        let sig = "sha256=0363007aabdf1ab579f35936651a460fb5fa1aaf40df98b1264446b72cc96688";
        assert_eq!(whatsapp_signature(b"YOUR_APP_SECRET", body.as_bytes()), sig);
        assert_eq!(
            verify_whatsapp_signature(b"YOUR_APP_SECRET", body.as_bytes(), Some(sig.as_bytes())),
            Ok(())
        );
        // The decoded (unescaped) form has a different signature: hashing must use the raw bytes.
        let decoded = "Let's pretend this body is equal to the message object and can handle unicode characters like みどりいろ and J'ai mangé des pâtes";
        assert_eq!(
            verify_whatsapp_signature(b"YOUR_APP_SECRET", decoded.as_bytes(), Some(sig.as_bytes())),
            Err(AuthError::Mismatch)
        );
    }

    #[test]
    fn refuses_missing_malformed_wrong() {
        let good = whatsapp_signature(b"k", b"body");
        assert_eq!(
            verify_whatsapp_signature(b"k", b"body", None),
            Err(AuthError::Missing)
        );
        assert_eq!(
            verify_whatsapp_signature(b"k", b"body", Some(b"")),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            verify_whatsapp_signature(b"k", b"body", Some(b"sha1=abcd")),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            verify_whatsapp_signature(b"k", b"body", Some(&good.as_bytes()[..70])),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            verify_whatsapp_signature(b"k", b"body", Some(&[0xff, 0xfe])),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            verify_whatsapp_signature(b"other", b"body", Some(good.as_bytes())),
            Err(AuthError::Mismatch)
        );
        assert_eq!(
            verify_whatsapp_signature(b"k", b"body ", Some(good.as_bytes())),
            Err(AuthError::Mismatch)
        );
        assert_eq!(
            verify_whatsapp_signature(
                b"k",
                b"body",
                Some(good.to_uppercase().replace("SHA256", "sha256").as_bytes())
            ),
            Ok(())
        );
    }

    #[test]
    fn telegram_secret() {
        assert_eq!(verify_telegram_secret(b"abc_DEF-1", Some(b"abc_DEF-1")), Ok(()));
        assert_eq!(
            verify_telegram_secret(b"abc_DEF-1", Some(b"abc_DEF-2")),
            Err(AuthError::Mismatch)
        );
        assert_eq!(
            verify_telegram_secret(b"abc_DEF-1", Some(b"abc")),
            Err(AuthError::Mismatch)
        );
        assert_eq!(
            verify_telegram_secret(b"abc_DEF-1", None),
            Err(AuthError::Missing)
        );
        assert_eq!(
            verify_telegram_secret(b"", Some(b"")),
            Err(AuthError::NotConfigured)
        );
    }

    #[test]
    fn handshake() {
        let ok = [
            ("hub.mode", "subscribe"),
            ("hub.challenge", "1158201444"),
            ("hub.verify_token", "meatyhamhock"),
        ];
        assert_eq!(
            whatsapp_handshake(Some(b"meatyhamhock"), ok),
            Handshake::Accept("1158201444".into())
        );
        let php = [
            ("hub_mode", "subscribe"),
            ("hub_challenge", "42"),
            ("hub_verify_token", "meatyhamhock"),
        ];
        assert_eq!(
            whatsapp_handshake(Some(b"meatyhamhock"), php),
            Handshake::Accept("42".into())
        );
        assert_eq!(whatsapp_handshake(Some(b"other"), ok), Handshake::Refuse);
        assert_eq!(whatsapp_handshake(None, ok), Handshake::Refuse);
        let bad_mode = [
            ("hub.mode", "unsubscribe"),
            ("hub.challenge", "1"),
            ("hub.verify_token", "meatyhamhock"),
        ];
        assert_eq!(
            whatsapp_handshake(Some(b"meatyhamhock"), bad_mode),
            Handshake::Refuse
        );
        let html = [
            ("hub.mode", "subscribe"),
            ("hub.challenge", "<script>"),
            ("hub.verify_token", "meatyhamhock"),
        ];
        assert_eq!(whatsapp_handshake(Some(b"meatyhamhock"), html), Handshake::Refuse);
        assert_eq!(whatsapp_handshake(Some(b"meatyhamhock"), []), Handshake::Refuse);
    }
}
