//! A recipient reading their chat on the devnet terminal (`GET /v1/dev/chat/messages`, operator token): how the
//! suites, the benchmarks and the fault scripts learn a pickup code — as a recipient does, never from an endpoint
//! that returns codes (there is none).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};
use remesa_wallet::terms::PickupCode;

/// Recipients' terminal chats on one node. Reading takes the messages (as a chat client does), so codes seen for
/// other remittances are kept for later questions.
#[derive(Debug)]
pub struct RecipientChats {
    base_url: String,
    operator_token: String,
    http: reqwest::Client,
    /// Short reference (the id's first 8 hex digits) → code.
    seen: Mutex<HashMap<String, String>>,
}

/// A remittance's short reference as the chat shows it (`Ref: 5f0c1a2b`).
pub fn short_reference(remittance_id: &str) -> String {
    remittance_id.trim_start_matches("0x").chars().take(8).collect()
}

/// The pickup codes in chat messages, by the reference each message names.
pub fn codes_in<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<(String, String)> {
    texts
        .into_iter()
        .filter_map(|t| {
            let code = PickupCode::find_in(t)?;
            let reference = t.split("Ref: ").nth(1)?.split_whitespace().next()?.to_owned();
            Some((reference, code.expose().to_owned()))
        })
        .collect()
}

impl RecipientChats {
    pub fn new(base_url: &str, operator_token: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            operator_token: operator_token.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Reads `phone`'s new messages once and remembers the codes in them.
    pub async fn read(&self, phone: &str) -> Result<()> {
        let v: serde_json::Value = self
            .http
            .get(format!("{}/v1/dev/chat/messages", self.base_url))
            .query(&[("as", phone)])
            .bearer_auth(&self.operator_token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let texts: Vec<&str> = v["notifications"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["text"].as_str())
            .collect();
        let found = codes_in(texts);
        let mut seen = self.seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        seen.extend(found);
        Ok(())
    }

    /// The code of `remittance_id` if `phone` has received it by now.
    pub async fn try_code(&self, phone: &str, remittance_id: &str) -> Result<Option<String>> {
        let reference = short_reference(remittance_id);
        if let Some(c) = self.known(&reference)? {
            return Ok(Some(c));
        }
        self.read(phone).await?;
        self.known(&reference)
    }

    /// Waits until `phone`'s chat shows the code of `remittance_id` (ungrouped, upper case).
    pub async fn code(&self, phone: &str, remittance_id: &str, timeout: Duration) -> Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(c) = self.try_code(phone, remittance_id).await? {
                return Ok(c);
            }
            if tokio::time::Instant::now() >= deadline {
                return None.context(format!(
                    "no pickup code for {remittance_id} in {phone}'s chat within {timeout:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn known(&self, reference: &str) -> Result<Option<String>> {
        let seen = self.seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        Ok(seen.get(reference).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_by_reference() {
        let texts = [
            "Alice sent you 765.43 GTQ.\nCollect it with this code:\nB4HC-SW05-GWD4\nRef: e93a37ef",
            "Envío e93a37ef: ya recibiste el dinero.",
            "Ana te envió 10 USD.\nRef: 11112222",
        ];
        assert_eq!(
            codes_in(texts),
            vec![("e93a37ef".to_owned(), "B4HCSW05GWD4".to_owned())]
        );
        assert_eq!(short_reference("0xe93a37ef00"), "e93a37ef");
    }
}
