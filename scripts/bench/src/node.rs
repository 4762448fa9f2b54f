//! The real node under test: `remesa serve` on a fresh data directory (with its keystore), and `remesa dev`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::Ctx;
use crate::procs::{self, Proc};

pub const OPERATOR_TOKEN: &str = "bench-operator-token-0123456789abcdef";
pub const KEYSTORE_PASSPHRASE: &str = "bench-keystore-passphrase";

/// A fresh, empty directory under the work directory (same disk as every other figure).
pub fn fresh_dir(ctx: &Ctx, label: &str) -> anyhow::Result<PathBuf> {
    let dir = ctx.work_dir.join(label);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// A node's data directory and environment, before it serves: `remesa` subcommands run against it.
#[derive(Debug)]
pub struct NodeSetup {
    pub label: String,
    pub data_dir: PathBuf,
    pub port: u16,
    pub env: Vec<(String, String)>,
    bin: PathBuf,
}

impl NodeSetup {
    /// A fresh data directory named `label` with an initialised keystore; `extra_env` adds to (and overrides) the
    /// base environment: data directory, HTTP address, operator token, keystore passphrase, warn-level logs.
    pub fn new(ctx: &Ctx, label: &str, extra_env: &[(String, String)]) -> anyhow::Result<Self> {
        if !ctx.remesa_bin.is_file() {
            bail!(
                "{} does not exist (build it first: scripts/bench.sh does)",
                ctx.remesa_bin.display()
            );
        }
        let data_dir = fresh_dir(ctx, label)?;
        let port = procs::free_port()?;
        let mut env: Vec<(String, String)> = vec![
            ("REMESA_DATA_DIR".into(), data_dir.display().to_string()),
            ("REMESA_HTTP_ADDR".into(), format!("127.0.0.1:{port}")),
            ("REMESA_OPERATOR_TOKEN".into(), OPERATOR_TOKEN.into()),
            ("REMESA_KEYSTORE_PASSPHRASE".into(), KEYSTORE_PASSPHRASE.into()),
            // REMESA_BENCH_NODE_LOG (a tracing filter) lets a profiling run see more of the node.
            (
                "REMESA_LOG".into(),
                std::env::var("REMESA_BENCH_NODE_LOG").unwrap_or_else(|_| "warn".into()),
            ),
            ("NO_COLOR".into(), "1".into()),
        ];
        env.extend(extra_env.iter().cloned());
        let setup = Self {
            label: label.to_owned(),
            data_dir,
            port,
            env,
            bin: ctx.remesa_bin.clone(),
        };
        setup.cli(&["keystore", "init"])?;
        Ok(setup)
    }

    /// Another `remesa serve` of the same node: the same data directory (its keystore) and settings, its own port
    /// and log (`label`). Only meaningful on a database the processes share (PostgreSQL).
    pub fn twin(&self, label: &str) -> anyhow::Result<Self> {
        let port = procs::free_port()?;
        let mut env = self.env.clone();
        for (k, v) in &mut env {
            if k == "REMESA_HTTP_ADDR" {
                *v = format!("127.0.0.1:{port}");
            }
        }
        Ok(Self {
            label: label.to_owned(),
            data_dir: self.data_dir.clone(),
            port,
            env,
            bin: self.bin.clone(),
        })
    }

    /// Runs `remesa <args>` with this node's environment; returns its standard output.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.bin)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .with_context(|| format!("running remesa {}", args.join(" ")))?;
        if !out.status.success() {
            bail!(
                "remesa {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts `remesa serve` and waits for `/readyz`.
    pub async fn serve(self, ctx: &Ctx) -> anyhow::Result<Node> {
        let log = ctx.work_dir.join(format!("{}.log", self.label));
        let mut proc = Proc::spawn(
            &format!("remesa serve ({})", self.label),
            &self.bin,
            &["serve"],
            &self.env,
            &log,
        )?;
        let base_url = self.base_url();
        procs::wait_http_200(&format!("{base_url}/readyz"), Duration::from_secs(60), || {
            proc.check_alive()
        })
        .await
        .context("waiting for remesa serve to be ready")?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Node {
            proc,
            base_url,
            http,
            setup: self,
        })
    }
}

/// A 503's `Retry-After` in seconds (1 when absent or unreadable), between 1 and `max_s`.
pub fn retry_after(headers: &reqwest::header::HeaderMap, max_s: u64) -> Duration {
    let s = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1);
    Duration::from_secs(s.clamp(1, max_s))
}

/// How often an operator request answered 503 is sent (the first time included).
const ADMIN_503_TRIES: u32 = 30;

/// A running `remesa serve`.
#[derive(Debug)]
pub struct Node {
    pub proc: Proc,
    pub base_url: String,
    pub setup: NodeSetup,
    http: reqwest::Client,
}

impl Node {
    /// Starts `remesa serve` with a fresh data directory named `label` and `extra_env`, and waits for `/readyz`.
    pub async fn serve(ctx: &Ctx, label: &str, extra_env: &[(String, String)]) -> anyhow::Result<Self> {
        NodeSetup::new(ctx, label, extra_env)?.serve(ctx).await
    }

    /// An operator request; returns the JSON answer (or an error with the problem text). A 503 (the node at
    /// capacity under the benchmark's own load, nothing done) is sent again after its `Retry-After`, as any client
    /// of the node does, up to [`ADMIN_503_TRIES`] times.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let mut tries = 0;
        let (status, text) = loop {
            let mut rb = self
                .http
                .request(method.clone(), format!("{}{path}", self.base_url))
                .bearer_auth(OPERATOR_TOKEN);
            if let Some(b) = body {
                rb = rb.json(b);
            }
            let resp = rb.send().await.with_context(|| format!("{method} {path}"))?;
            let status = resp.status();
            let wait = retry_after(resp.headers(), 5);
            let text = resp.text().await.unwrap_or_default();
            tries += 1;
            if status != reqwest::StatusCode::SERVICE_UNAVAILABLE || tries >= ADMIN_503_TRIES {
                break (status, text);
            }
            tokio::time::sleep(wait).await;
        };
        if !status.is_success() {
            bail!("{method} {path}: HTTP {status}: {text}");
        }
        if text.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: not JSON: {text}"))
    }
}
