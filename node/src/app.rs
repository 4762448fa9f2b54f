//! Wiring: configuration → database → engine → chain workers → HTTP server. `build(config)` returns an [`App`]
//! bound to its port (port 0 picks a free one, for tests); `run_until_stopped` serves until SIGTERM/SIGINT or
//! [`AppState::shutdown`] fires, then drains requests and stops the workers.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use alloy::signers::local::PrivateKeySigner;
use axum::Router;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::chain::{self, ChainContext, EscrowDeployment};
use crate::config::Config;
use crate::engine::{Custody, Engine, EngineConfig};
use crate::faults::Faults;
use crate::store::Db;
use crate::store::instances::{self, Instance};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("chain: {0}")]
    Chain(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Runtime(#[from] chain::RuntimeError),
    #[error(transparent)]
    Deployment(#[from] remesa_wallet::devnet::DevnetError),
}

pub use crate::chain::{ChainRuntime, Deployment, ExpectedToken};
pub use crate::http::AppState;

/// A built node, bound to its port, not yet serving.
#[derive(Debug)]
pub struct App {
    listener: TcpListener,
    state: AppState,
    port: u16,
    workers: Vec<JoinHandle<()>>,
}

/// The keystore file of the node's master mnemonic.
pub fn keystore_path(config: &Config) -> PathBuf {
    config.data_dir.join("node-keystore.json")
}

/// Loads the custody keystore when a passphrase is configured and the file exists.
pub fn load_custody(config: &Config) -> Result<Option<Custody>, AppError> {
    let Some(pass) = config
        .keystore_passphrase()
        .map_err(|e| AppError::Config(e.to_string()))?
    else {
        return Ok(None);
    };
    let path = keystore_path(config);
    if !path.exists() {
        return Err(AppError::Config(format!(
            "no keystore at {} (run `remesa keystore init` or `remesa dev`)",
            path.display()
        )));
    }
    Custody::open_keystore(&path, &pass)
        .map(Some)
        .map_err(|e| AppError::Config(e.to_string()))
}

/// Connects the database (migrating it), the chain (when configured) and the engine.
pub async fn state(config: Config) -> Result<AppState, AppError> {
    let db = Db::connect(&config.database_url(), config.database_connections_max).await?;
    db.migrate().await?;
    let custody = load_custody(&config)?;
    let chain = match (config.rpc_url.as_deref(), config.deployment_path()) {
        (Some(rpc), Some(path)) => {
            let deployment = Deployment::load(&path)?;
            if let Some(expected) = config.chain_id
                && expected != deployment.chain_id
            {
                return Err(AppError::Config(format!(
                    "REMESA_CHAIN_ID is {expected}, the deployment is for chain {}",
                    deployment.chain_id
                )));
            }
            let owner =
                match &config.escrow_owner_key {
                    Some(k) => Some(PrivateKeySigner::from_str(k.expose_secret().trim()).map_err(|_| {
                        AppError::Config("REMESA_ESCROW_OWNER_KEY is not a private key".into())
                    })?),
                    None => None,
                };
            let expected = ExpectedToken {
                name: config.token_name.clone(),
                version: config.token_version.clone(),
            };
            let chain = ChainRuntime::connect(rpc, deployment, owner, &expected).await?;
            // The quote's validity bounds how late a deposit can be mined after the remittance's expiry was set.
            chain.check_lock_time(config.remittance_expiry_s, config.quote_ttl_s_max.max(60))?;
            Some(chain)
        }
        (Some(_), None) => {
            return Err(AppError::Config(
                "REMESA_RPC_URL is set but no deployment file was found".into(),
            ));
        }
        _ => None,
    };
    let faults = Faults::parse(config.faults.as_deref().unwrap_or_default()).map_err(AppError::Config)?;
    if !faults.is_empty() {
        tracing::warn!(target: "app", faults = ?config.faults, "FAULT INJECTION IS ON: this node will crash or stall on purpose");
    }
    let engine = Engine::new(
        db.clone(),
        EngineConfig::from_config(&config),
        chain.as_ref().map(|c| c.info.clone()),
        custody,
        config.token_decimals_default,
    );
    load_sanctions(&engine, &config.sanctions).await?;
    Ok(AppState {
        db,
        engine,
        config: Arc::new(config),
        chain,
        shutdown: CancellationToken::new(),
        instance: Instance::new(),
        faults,
    })
}

/// The stored sanctions lists, then the configured files (a file that does not parse is refused whole: the stored
/// list stays in force and the error is logged; an unchanged file is not stored again).
async fn load_sanctions(engine: &Engine, cfg: &crate::config::SanctionsConfig) -> Result<(), AppError> {
    use crate::engine::screening::{ListFormat, ListUpload};
    let stored_error = |e: crate::engine::EngineError| AppError::Config(format!("sanctions lists: {e}"));
    engine.refresh_sanctions().await.map_err(stored_error)?;
    let files = [
        (ListFormat::OfacCsv, cfg.ofac_dir.as_deref()),
        (ListFormat::UnXml, cfg.un_xml.as_deref()),
    ];
    for (format, path) in files {
        let Some(path) = path else { continue };
        let parsed = match ListUpload::read(format, path, None).map(|u| u.parse()) {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                tracing::error!(target: "compliance", path = %path.display(), error = %e,
                    "sanctions list refused: the list in force stays");
                continue;
            }
            Err(e) => {
                tracing::error!(target: "compliance", path = %path.display(), error = %e,
                    "sanctions list not read: the list in force stays");
                continue;
            }
        };
        engine
            .load_sanctions_list(parsed, &format!("configuration ({})", path.display()))
            .await
            .map_err(stored_error)?;
    }
    let status = engine.sanctions_status();
    match status.state.as_str() {
        "loaded" => {
            for l in &status.lists {
                tracing::info!(target: "compliance", source = %l.source, list_date = ?l.list_date,
                    entries = l.entries, "screening against this sanctions list");
            }
        }
        "required_not_loaded" => tracing::warn!(target: "compliance",
            "no sanctions list is loaded and screening is required: sends are refused until one is loaded \
             (remesa sanctions load)"),
        _ => tracing::warn!(target: "compliance",
            "no sanctions list is loaded: sends are NOT screened (load one with remesa sanctions load; set \
             sanctions.required = true to refuse sends without one)"),
    }
    Ok(())
}

/// Builds the node: state, workers, listener.
pub async fn build(config: Config) -> Result<App, AppError> {
    // install the metrics recorder before anything counts
    let _ = crate::http::metrics_handle();
    let state = state(config).await?;
    build_from_state(state).await
}

/// Builds the node around an existing state (e.g. after `remesa dev` seeded it).
pub async fn build_from_state(state: AppState) -> Result<App, AppError> {
    let _ = crate::http::metrics_handle();
    let listener = TcpListener::bind(state.config.http_addr).await?;
    let port = listener.local_addr()?.port();
    // Holding the port, this is the only live process of its node name: what a previous run under the name left
    // claimed is taken over now, before any worker starts.
    let node_name = state.config.node_name_for_port(port);
    let recovered = instances::register(&state.db, &node_name, &state.instance).await?;
    tracing::info!(target: "app", node_name, start_id = %state.instance.start_id,
        previous_start_id = ?recovered.previous_start_id, idempotency_keys = recovered.idempotency_keys,
        chat_inbox = recovered.chat_inbox, chat_outbox = recovered.chat_outbox,
        webhook_deliveries = recovered.webhook_deliveries, leases = recovered.leases, "registered");
    let workers = spawn_workers(&state)?;
    Ok(App {
        listener,
        state,
        port,
        workers,
    })
}

/// Starts the chain workers (when a chain, custody and `chain_workers` are configured) and the engine sweeper.
pub fn spawn_workers(state: &AppState) -> Result<Vec<JoinHandle<()>>, AppError> {
    let mut handles = Vec::new();
    if let (Some(chain_rt), Some(custody), true) =
        (&state.chain, state.engine.custody(), state.config.chain_workers)
    {
        let relayer = custody.relayer().map_err(|e| AppError::Chain(e.to_string()))?;
        let ctx = ChainContext {
            db: state.db.clone(),
            provider: chain_rt.provider.clone(),
            deployment: EscrowDeployment {
                chain_id: chain_rt.info.chain_id,
                escrow: chain_rt.info.escrow,
                token: chain_rt.info.token,
                start_block: chain_rt.deployment.deploy_block,
            },
            config: state.config.chain.clone(),
            sink: Arc::new(state.engine.clone()),
            holder: Some(state.instance.worker_id(crate::store::instances::CHAIN_ROLE)),
        };
        tracing::info!(target: "app", relayer = %relayer.address(), "starting chain workers");
        handles.extend(
            chain::spawn_workers(ctx, vec![relayer], state.shutdown.child_token())
                .map_err(|e| AppError::Chain(e.to_string()))?,
        );
    }
    let engine = state.engine.clone();
    let cancel = state.shutdown.child_token();
    handles.push(tokio::spawn(async move { engine.run_sweeper(cancel).await }));
    match crate::partner::spawn_workers(state) {
        Ok(h) => handles.extend(h),
        Err(e) => tracing::error!(target: "app", error = %e, "partner webhook workers not started"),
    }
    Ok(handles)
}

/// The whole HTTP surface: the node's routes, plus chat and partner routes, with the common layers.
pub fn router(state: AppState) -> Router {
    let r = crate::http::routes(state.clone())
        .route(
            "/openapi.json",
            axum::routing::get(|| async { axum::Json(openapi()) }),
        )
        .merge(crate::chat::router(state.clone()))
        .merge(crate::partner::router(state.clone()))
        .merge(crate::console::router(&state));
    crate::http::finish(r, state)
}

/// The OpenAPI document of everything served, completed with what the shared layers answer
/// (`http::openapi::complete`).
pub fn openapi() -> serde_json::Value {
    let mut doc = crate::http::openapi::document();
    doc.merge(crate::partner::openapi());
    doc.merge(crate::chat::openapi());
    crate::http::openapi::complete(&doc)
}

impl App {
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM/SIGINT or `state.shutdown`, then drains in-flight requests, stops the workers (each
    /// finishes its current step) and closes the database.
    pub async fn run_until_stopped(self) -> Result<(), AppError> {
        let App {
            listener,
            state,
            port,
            workers,
        } = self;
        let shutdown = state.shutdown.clone();
        let router = router(state.clone());
        tracing::info!(target: "app", port, "listening");
        let signal_token = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!(target: "app", "shutdown requested");
            signal_token.cancel();
        });
        let graceful = shutdown.clone();
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { graceful.cancelled().await })
            .await?;
        shutdown.cancel();
        for w in workers {
            if tokio::time::timeout(Duration::from_secs(20), w).await.is_err() {
                tracing::warn!(target: "app", "a worker did not stop in time");
            }
        }
        state.db.close().await;
        tracing::info!(target: "app", "stopped");
        Ok(())
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        match (term, int) {
            (Ok(mut t), Ok(mut i)) => {
                tokio::select! {
                    _ = t.recv() => {}
                    _ = i.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
