//! `remesa chat --as +15551234567`: a terminal chat with a running node, for devnet demos. Talks to the node's
//! `/v1/dev/chat` endpoint with the operator token; shows buttons as numbered choices (type the number to press).

use std::io::{BufRead, Write};
use std::time::Duration;

use owo_colors::OwoColorize;
use secrecy::{ExposeSecret, SecretString};

use super::http::{DevChatRequest, DevChatResponse};
use super::model::{Button, OutboundMessage};

/// Arguments of `remesa chat`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChatArgs {
    /// Chat as this phone number (E.164).
    #[arg(long = "as", value_name = "PHONE")]
    pub as_phone: String,
    /// Node base URL.
    #[arg(long, env = "REMESA_NODE_URL", default_value = "http://127.0.0.1:8080")]
    pub node: String,
    /// Operator token of the node.
    #[arg(long, env = "REMESA_OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: SecretString,
    /// Send this one message, print the replies and exit (scripts, demos).
    #[arg(long)]
    pub message: Option<String>,
    /// Disable colours.
    #[arg(long)]
    pub no_color: bool,
}

/// Terminal chat errors.
#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    /// HTTP.
    #[error("node unreachable: {0}")]
    Http(String),
    /// The node refused.
    #[error("node answered {status}: {body}")]
    Refused {
        /// Status.
        status: u16,
        /// Problem body.
        body: String,
    },
    /// Terminal I/O.
    #[error("terminal: {0}")]
    Io(#[from] std::io::Error),
}

struct Session {
    http: reqwest::Client,
    node: String,
    token: SecretString,
    as_phone: String,
    color: bool,
    buttons: Vec<Button>,
}

impl Session {
    async fn send(
        &self,
        text: Option<String>,
        button: Option<String>,
    ) -> Result<DevChatResponse, TerminalError> {
        let req = DevChatRequest {
            as_phone: self.as_phone.clone(),
            text,
            button,
            message_id: Some(uuid::Uuid::now_v7().to_string()),
        };
        let resp = self
            .http
            .post(format!("{}/v1/dev/chat", self.node))
            .bearer_auth(self.token.expose_secret())
            .json(&req)
            .send()
            .await
            .map_err(|e| TerminalError::Http(e.without_url().to_string()))?;
        Self::decode(resp).await
    }

    async fn poll(&self) -> Result<DevChatResponse, TerminalError> {
        let resp = self
            .http
            .get(format!("{}/v1/dev/chat/messages", self.node))
            .query(&[("as", self.as_phone.as_str())])
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            .map_err(|e| TerminalError::Http(e.without_url().to_string()))?;
        Self::decode(resp).await
    }

    async fn decode(resp: reqwest::Response) -> Result<DevChatResponse, TerminalError> {
        let status = resp.status().as_u16();
        let body = resp
            .text()
            .await
            .map_err(|e| TerminalError::Http(e.without_url().to_string()))?;
        if !(200..300).contains(&status) {
            return Err(TerminalError::Refused {
                status,
                body: body.chars().take(500).collect(),
            });
        }
        serde_json::from_str(&body).map_err(|e| TerminalError::Http(e.to_string()))
    }

    fn show(&mut self, msg: &OutboundMessage, notification: bool) {
        let label = if notification { "remesa 🔔" } else { "remesa" };
        if self.color {
            println!("{} {}", label.bold().green(), render_markup(&msg.text, true));
        } else {
            println!("{label} {}", render_markup(&msg.text, false));
        }
        if !msg.buttons.is_empty() {
            for (i, b) in msg.buttons.iter().enumerate() {
                if self.color {
                    println!("   {} {}", format!("[{}]", i + 1).cyan().bold(), b.title);
                } else {
                    println!("   [{}] {}", i + 1, b.title);
                }
            }
        }
        // Numbers press the buttons of the latest reply only (a bare "2" after "How much?" is an amount).
        if !notification {
            self.buttons = msg.buttons.clone();
        }
    }

    fn show_all(&mut self, r: &DevChatResponse) {
        for m in &r.replies {
            self.show(m, false);
        }
        for m in &r.notifications {
            self.show(m, true);
        }
    }
}

/// WhatsApp-style `*bold*` to terminal bold (or plain).
fn render_markup(text: &str, color: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, part) in text.split('*').enumerate() {
        if i % 2 == 1 && color && !part.contains('\n') {
            out.push_str(&part.bold().to_string());
        } else {
            out.push_str(part);
        }
    }
    out
}

/// Runs the terminal chat until end of input (Ctrl-D) or `/quit`.
pub async fn run(args: ChatArgs) -> Result<(), TerminalError> {
    let mut s = Session {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| TerminalError::Http(e.to_string()))?,
        node: args.node.trim_end_matches('/').to_owned(),
        token: args.operator_token,
        as_phone: args.as_phone,
        color: !args.no_color && std::env::var_os("NO_COLOR").is_none(),
        buttons: Vec::new(),
    };
    if let Some(text) = args.message {
        let r = s.send(Some(text), None).await?;
        s.show_all(&r);
        return Ok(());
    }
    println!(
        "Chatting with {} as {} — type a message, a number to press a button, /quit to leave.",
        s.node, s.as_phone
    );
    let pending = s.poll().await?;
    s.show_all(&pending);
    // Read stdin on a blocking thread; poll for notifications while waiting.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(16);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    loop {
        print!(
            "{} ",
            if s.color {
                "you ›".bold().blue().to_string()
            } else {
                "you ›".to_owned()
            }
        );
        std::io::stdout().flush()?;
        let line = loop {
            tokio::select! {
                l = rx.recv() => break l,
                () = tokio::time::sleep(Duration::from_secs(2)) => {
                    if let Ok(r) = s.poll().await
                        && !r.notifications.is_empty()
                    {
                        println!();
                        s.show_all(&r);
                        print!("{} ", if s.color { "you ›".bold().blue().to_string() } else { "you ›".to_owned() });
                        std::io::stdout().flush()?;
                    }
                }
            }
        };
        let Some(line) = line else { break };
        let line = line.trim().to_owned();
        if line.is_empty() {
            continue;
        }
        if line == "/quit" || line == "/exit" {
            break;
        }
        let choice = line
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1 && *n <= s.buttons.len());
        let result = match choice {
            Some(n) => {
                let b = s.buttons[n - 1].clone();
                s.send(None, Some(b.id)).await
            }
            None => s.send(Some(line), None).await,
        };
        match result {
            Ok(r) => s.show_all(&r),
            Err(e) => eprintln!(
                "{} {e}",
                if s.color {
                    "error:".red().bold().to_string()
                } else {
                    "error:".to_owned()
                }
            ),
        }
    }
    Ok(())
}
