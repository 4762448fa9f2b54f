//! What the node core calls: the partner routes for [`crate::app::router`], the background workers for
//! `spawn_workers`, the OpenAPI fragment for `/openapi.json`, `remesa partner add` / `partner keygen`, and the
//! devnet partner simulator that `remesa dev` starts.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use base64::Engine as _;
use tokio::task::JoinHandle;
use utoipa::OpenApi as _;

use super::api::{PartnerApiDoc, PartnerState, partner_router};
use super::auth::problem;
use super::feed::FeedFollower;
use super::httpsig::Ed25519Signer;
use super::sim::{PickupOracle, SimArgs};
use super::store::PartnerDb;
use super::webhook::{NodeKeyError, WebhookWorker, load_or_create_node_key};
use crate::domain::PayoutMethod;
use crate::engine::NewPartner;
use crate::http::AppState;

/// The node's webhook signing key (`<data_dir>/partner_webhook_ed25519.seed`, created on first use).
pub fn node_signer(state: &AppState) -> Result<Ed25519Signer, NodeKeyError> {
    load_or_create_node_key(&state.config.data_dir)
}

fn partner_state(state: &AppState) -> Result<PartnerState, NodeKeyError> {
    Ok(PartnerState {
        engine: state.engine.clone(),
        db: PartnerDb::from(&state.db),
        cfg: state.config.partner.clone(),
        node_signer: node_signer(state)?,
        operator_token: state.config.operator_token.clone(),
        instance: state.instance.clone(),
        faults: state.faults.clone(),
        idempotency_stale_ms: crate::http::idempotency::stale_ms(state.config.http_timeout_ms),
    })
}

/// `/v1/partner/*` (RFC 9421-signed) and `/v1/admin/partner/*` (operator token), to merge into the node's router:
/// `r.merge(crate::partner::router(state.clone()))`. If the node's webhook key cannot be loaded, every partner
/// route answers 503 (and the error is logged) rather than the node refusing to start.
pub fn router(state: AppState) -> Router<AppState> {
    match partner_state(&state) {
        Ok(ps) => partner_router(ps),
        Err(e) => {
            tracing::error!(target: "partner", error = %e, "partner API disabled: the node's webhook key is unavailable");
            let unavailable = || async {
                problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Partner API unavailable",
                    "the node's webhook signing key could not be loaded; see the node's log",
                    "unavailable",
                )
                .into_response()
            };
            Router::new()
                .route("/v1/partner/{*rest}", axum::routing::any(unavailable))
                .route("/v1/admin/partner/{*rest}", axum::routing::any(unavailable))
        }
    }
}

/// The partner workers: the engine-feed follower (events + webhooks) and the webhook delivery worker. Both stop
/// on `state.shutdown`. Call from the node's `spawn_workers`.
pub fn spawn_workers(state: &AppState) -> Result<Vec<JoinHandle<()>>, NodeKeyError> {
    let db = PartnerDb::from(&state.db);
    let cfg = state.config.partner.clone();
    let signer = node_signer(state)?;
    let worker = WebhookWorker::new(db.clone(), signer, cfg.clone())
        .map_err(|e| NodeKeyError::Io {
            path: "webhook http client".into(),
            source: std::io::Error::other(e.to_string()),
        })?
        .with_worker_id(state.instance.worker_id("webhooks"));
    let feed = FeedFollower::new(db, cfg).with_owner(
        state
            .instance
            .worker_id(crate::store::instances::PARTNER_FEED_ROLE),
    );
    Ok(vec![
        tokio::spawn(feed.run(state.shutdown.child_token())),
        tokio::spawn(worker.run(state.shutdown.child_token())),
    ])
}

/// The partner API's OpenAPI document, to merge: `doc.merge(crate::partner::openapi())`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    PartnerApiDoc::openapi()
}

// ------------------------------------------------------------------------------------------- operator CLI

/// `remesa partner add …` (a `clap::Args` for the node's CLI).
#[derive(Debug, Clone, clap::Args)]
pub struct PartnerAddArgs {
    /// Partner id (the on-chain partnerId and the signature keyid).
    #[arg(long)]
    pub id: u64,
    #[arg(long)]
    pub name: String,
    /// ISO 3166-1 alpha-2 codes, comma-separated (e.g. `GT,SV`).
    #[arg(long, value_delimiter = ',')]
    pub countries: Vec<String>,
    /// ISO 4217 codes, comma-separated (e.g. `GTQ`).
    #[arg(long, value_delimiter = ',')]
    pub currencies: Vec<String>,
    /// `cash_pickup`, `bank_deposit`, `mobile_wallet`, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub methods: Vec<String>,
    /// The partner's Ed25519 public key: 32 bytes, base64 or hex.
    #[arg(long)]
    pub public_key: String,
    /// Where the node POSTs signed webhooks.
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// Address receiving the partner's settlements (also registered in the escrow when this node holds the
    /// escrow owner key).
    #[arg(long)]
    pub settlement_address: String,
    /// The partner's EVM signer for cooperative cancels (its EIP-712 `Decline` signature refunds a sender before
    /// expiry); default: the settlement address.
    #[arg(long)]
    pub signer_address: Option<String>,
}

/// What `remesa partner add` prints.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartnerAdded {
    pub partner: crate::engine::Partner,
    /// Whether `setPartner` was sent to (or already set in) the escrow.
    pub registered_on_chain: bool,
    /// Why not, when not.
    pub chain_note: Option<String>,
    /// The key the partner must use to verify webhooks.
    pub node_webhook_keyid: String,
    pub node_webhook_public_key: String,
}

/// Registers a partner in the node and, when possible, in the escrow's partner registry.
pub async fn add_partner(state: &AppState, args: PartnerAddArgs) -> Result<PartnerAdded, String> {
    let methods = args
        .methods
        .iter()
        .map(|m| PayoutMethod::parse(m.trim()).ok_or_else(|| format!("unknown payout method {m:?}")))
        .collect::<Result<Vec<_>, _>>()?;
    let partner = state
        .engine
        .add_partner(NewPartner {
            id: args.id,
            name: args.name,
            countries: args.countries,
            currencies: args.currencies,
            payout_methods: methods,
            public_key: args.public_key,
            webhook_url: args.webhook_url,
            settlement_address: args.settlement_address,
            signer_address: args.signer_address,
        })
        .await
        .map_err(|e| e.to_string())?;
    let (registered_on_chain, chain_note) = match &state.chain {
        Some(c) => match c
            .register_partner_on_chain(partner.id, &partner.settlement_address, &partner.signer_address)
            .await
        {
            Ok(()) => (true, None),
            Err(e) => (false, Some(e)),
        },
        None => (
            false,
            Some("no chain configured: register the settlement address in the escrow (setPartner)".into()),
        ),
    };
    let signer = node_signer(state).map_err(|e| e.to_string())?;
    Ok(PartnerAdded {
        partner,
        registered_on_chain,
        chain_note,
        node_webhook_keyid: signer.keyid().to_owned(),
        node_webhook_public_key: base64::engine::general_purpose::STANDARD
            .encode(signer.verifying_key().as_bytes()),
    })
}

/// `remesa partner keygen <file>`: writes a new Ed25519 seed (hex, mode 0600, refuses to overwrite) and returns
/// the public key (base64) to register with `partner add --public-key`.
pub fn keygen(path: &Path) -> Result<String, String> {
    use std::io::Write as _;
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let seed = zeroize::Zeroizing::new(hex::encode(key.to_bytes()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(seed.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(key.verifying_key().as_bytes()))
}

// ----------------------------------------------------------------------------------------------- devnet

/// The demo partner's key file in the data directory, created on first use; returns (path, public key base64).
pub fn demo_partner_key(data_dir: &Path, partner_id: u64) -> Result<(PathBuf, String), String> {
    let path = data_dir.join(format!("demo-partner-{partner_id}.seed"));
    if !path.exists() {
        std::fs::create_dir_all(data_dir).map_err(|e| e.to_string())?;
        keygen(&path)?;
    }
    let signer = super::sim::load_signer(partner_id, &path).map_err(|e| e.to_string())?;
    Ok((
        path,
        base64::engine::general_purpose::STANDARD.encode(signer.verifying_key().as_bytes()),
    ))
}

/// Starts the partner simulator for `remesa dev` inside the node process: it talks to `node_url` through the
/// signed API like any partner; for cash pickups it stands in for the recipient at the counter with the code
/// `recipient` tells (in `remesa dev`, from the recipient's chat message). Stops on `state.shutdown`.
pub fn spawn_dev_sim(
    state: &AppState,
    partner_id: u64,
    node_url: &str,
    recipient: PickupOracle,
    webhook_addr: Option<std::net::SocketAddr>,
) -> Result<JoinHandle<()>, String> {
    let (key_file, _) = demo_partner_key(&state.config.data_dir, partner_id)?;
    let args = SimArgs {
        node_url: node_url.to_owned(),
        partner_id,
        key_file,
        accept_delay_ms: 1_000,
        complete_delay_ms: 2_000,
        poll_interval_ms: 1_000,
        webhook_addr,
        webhook_url: None,
        fail_every: 0,
        pickup_codes_file: None,
        stop_after: None,
    };
    let cancel = state.shutdown.child_token();
    Ok(tokio::spawn(async move {
        if let Err(e) = super::sim::run_with(args, cancel, Some(recipient)).await {
            tracing::error!(target: "partner::sim", error = %e, "partner simulator stopped");
        }
    }))
}
