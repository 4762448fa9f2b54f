//! `remesa sanctions load|status`: load a sanctions list from files on disk and show the lists in force — through
//! a running node's operator API (`--node` / `REMESA_NODE_URL` with `REMESA_OPERATOR_TOKEN`, e.g. `remesa dev`), or
//! straight into the configured database (every node serving it picks the list up within a sweeper round, 10 s).
//!
//! The files are parsed here first: a malformed or truncated file is refused whole with its line and reason, and
//! nothing is sent.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use secrecy::{ExposeSecret, SecretString};

use crate::config::Config;
use crate::engine::screening::{ListFormat, ListMeta, ListUpload, SanctionsStatus};
use crate::engine::{Engine, EngineConfig};

#[derive(Debug, Subcommand)]
pub enum SanctionsCmd {
    /// Load a list: OFAC's SDN list (a directory with SDN.CSV, ALT.CSV, ADD.CSV) or the UN consolidated list (XML).
    Load(LoadArgs),
    /// The lists in force and the screening settings.
    Status(NodeArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A directory holding OFAC's SDN.CSV, ALT.CSV and ADD.CSV.
    OfacCsv,
    /// The UN Security Council consolidated list, one XML file.
    UnXml,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    #[arg(long, value_enum)]
    pub format: Format,
    /// The directory (ofac-csv) or file (un-xml).
    pub path: PathBuf,
    /// The list's date (YYYY-MM-DD) for OFAC's files, which carry none; default: SDN.CSV's modification date.
    #[arg(long)]
    pub date: Option<String>,
    #[command(flatten)]
    pub node: NodeArgs,
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// A running node's base URL: go through its operator API instead of the configured database.
    #[arg(long, env = "REMESA_NODE_URL")]
    pub node: Option<String>,
    /// The node's operator token (with --node).
    #[arg(long, env = "REMESA_OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<SecretString>,
}

impl NodeArgs {
    fn client(&self) -> anyhow::Result<Option<(String, SecretString)>> {
        let Some(url) = &self.node else { return Ok(None) };
        let token = self
            .operator_token
            .clone()
            .context("--node needs the node's operator token (REMESA_OPERATOR_TOKEN)")?;
        Ok(Some((url.trim_end_matches('/').to_owned(), token)))
    }
}

/// An engine over the configured database only (no chain, no keystore): lists are stored there.
async fn db_engine(config: &Config) -> anyhow::Result<Engine> {
    let db = crate::store::Db::connect(&config.database_url(), 2).await?;
    db.migrate().await?;
    Ok(Engine::new(
        db,
        EngineConfig::from_config(config),
        None,
        None,
        config.token_decimals_default,
    ))
}

async fn node_answer<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> anyhow::Result<T> {
    let status = resp.status();
    let body = resp.text().await.context("reading the node's answer")?;
    if !status.is_success() {
        let detail = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["detail"].as_str().map(str::to_owned))
            .unwrap_or(body);
        bail!("the node answered {status}: {detail}");
    }
    serde_json::from_str(&body).context("the node's answer is not what was expected")
}

/// Reads, parses and loads a list; returns what is in force for its source.
pub async fn load(config: Config, args: &LoadArgs) -> anyhow::Result<ListMeta> {
    let format = match args.format {
        Format::OfacCsv => ListFormat::OfacCsv,
        Format::UnXml => ListFormat::UnXml,
    };
    let upload = ListUpload::read(format, &args.path, args.date.clone())?;
    let parsed = upload
        .parse()
        .with_context(|| format!("{} refused; nothing was loaded", show(&args.path)))?;
    eprintln!(
        "{}: {} entries, list date {}",
        show(&args.path),
        parsed.entries.len(),
        parsed.list_date.as_deref().unwrap_or("unknown")
    );
    match args.node.client()? {
        Some((url, token)) => {
            let resp = reqwest::Client::new()
                .put(format!("{url}/v1/admin/sanctions/lists"))
                .bearer_auth(token.expose_secret())
                .json(&upload)
                .send()
                .await
                .with_context(|| format!("node {url} unreachable"))?;
            node_answer(resp).await
        }
        None => {
            let engine = db_engine(&config).await?;
            Ok(engine
                .load_sanctions_list(parsed, "remesa sanctions load")
                .await?)
        }
    }
}

/// The lists in force.
pub async fn status(config: Config, args: &NodeArgs) -> anyhow::Result<SanctionsStatus> {
    match args.client()? {
        Some((url, token)) => {
            let resp = reqwest::Client::new()
                .get(format!("{url}/v1/admin/sanctions"))
                .bearer_auth(token.expose_secret())
                .send()
                .await
                .with_context(|| format!("node {url} unreachable"))?;
            node_answer(resp).await
        }
        None => {
            let engine = db_engine(&config).await?;
            engine.refresh_sanctions().await?;
            Ok(engine.sanctions_status())
        }
    }
}

fn show(p: &Path) -> String {
    p.display().to_string()
}
