//! Helpers shared by the end-to-end tests: locating the toolchain and the `remesa` binary, starting anvil and node
//! processes, calling the API and the chain.
//!
//! The tests run the real `remesa` binary, built by `remesa_bin` (or point `REMESA_BIN` at one).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

pub const OPERATOR_TOKEN: &str = "e2e-operator-token";
/// Anvil account 0: deployer and escrow owner on the devnet.
pub const DEV_DEPLOYER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `REMESA_BIN`, else `target/debug/remesa` of this workspace, brought up to date once per test binary with
/// `cargo build --workspace --all-targets` (so the tests never run a stale node). Panics with instructions when
/// missing.
pub fn remesa_bin() -> PathBuf {
    if let Ok(p) = std::env::var("REMESA_BIN") {
        return PathBuf::from(p);
    }
    static BUILT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let built = *BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut cmd = Command::new(cargo);
        // The test runner sets the crate's own variables (CARGO_MANIFEST_DIR, CARGO_PKG_*, …) in this process;
        // ring's build script watches CARGO_MANIFEST_DIR, so a build that inherits them recompiles ring, alloy,
        // reqwest and the node — and the next ordinary build compiles them once more.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name == "CARGO_MANIFEST_DIR"
                || name == "CARGO_MANIFEST_PATH"
                || name == "CARGO_CRATE_NAME"
                || name == "CARGO_BIN_NAME"
                || name == "CARGO_PRIMARY_PACKAGE"
                || name == "CARGO_TARGET_TMPDIR"
                || name.starts_with("CARGO_PKG_")
            {
                cmd.env_remove(name.as_ref());
            }
        }
        cmd
            // The same command as scripts/test.sh (and the bench smoke run): the same features, so nothing is
            // rebuilt. Another selection (`-p remesa`, `--bins`) unifies other features and recompiles alloy,
            // reqwest and the node — and the next build with the first selection compiles them once more.
            .args(["build", "--workspace", "--all-targets"])
            .current_dir(repo_root())
            .status()
            .is_ok_and(|s| s.success())
    });
    assert!(built, "`cargo build --workspace --all-targets` failed");
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(|_| repo_root().join("target"), PathBuf::from);
    let p = target.join("debug/remesa");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace --all-targets` before the e2e tests",
        p.display()
    );
    p
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// A JSON-RPC call.
pub async fn rpc(url: &str, method: &str, params: Value) -> Result<Value> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let v: Value = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    if let Some(e) = v.get("error") {
        bail!("{method}: {e}");
    }
    Ok(v["result"].clone())
}

/// ERC-20 `balanceOf(who)` in base units.
pub async fn token_balance(url: &str, token: &str, who: &str) -> Result<u128> {
    let data = format!("0x70a08231{:0>64}", who.trim_start_matches("0x"));
    let r = rpc(url, "eth_call", json!([{"to": token, "data": data}, "latest"])).await?;
    let hex = r.as_str().context("eth_call result")?.trim_start_matches("0x");
    let low = &hex[hex.len().saturating_sub(32)..];
    Ok(if low.is_empty() {
        0
    } else {
        u128::from_str_radix(low, 16)?
    })
}

/// Anvil from the installed toolchain (`contracts/node_modules/.bin/anvil`), killed on drop.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    pub url: String,
}

impl Anvil {
    pub async fn start(block_time_s: u64) -> Result<Anvil> {
        let bin = repo_root().join("contracts/node_modules/.bin/anvil");
        let port = free_port();
        let mut cmd = Command::new(&bin);
        #[cfg(unix)]
        {
            // its own process group, so the whole group can be killed on drop
            use std::os::unix::process::CommandExt as _;
            cmd.process_group(0);
        }
        let child = cmd
            .args([
                "--port",
                &port.to_string(),
                "--block-time",
                &block_time_s.to_string(),
                "--accounts",
                "4",
                "--silent",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let url = format!("http://127.0.0.1:{port}");
        let a = Anvil { child, url };
        eventually("anvil answers", Duration::from_secs(20), || async {
            Ok(rpc(&a.url, "eth_chainId", json!([])).await.is_ok())
        })
        .await?;
        Ok(a)
    }

    pub async fn time_travel(&self, seconds: u64) -> Result<()> {
        rpc(&self.url, "evm_increaseTime", json!([seconds])).await?;
        rpc(&self.url, "evm_mine", json!([])).await?;
        Ok(())
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let start = Instant::now();
    let mut last_err = None;
    while start.elapsed() < timeout {
        match f().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_err = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bail!("timed out after {timeout:?} waiting for {what} (last error: {last_err:?})")
}

/// A `remesa` node process (and its configuration, to run other commands with the same environment).
#[derive(Debug)]
pub struct Node {
    pub name: String,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub base: String,
    child: Option<Child>,
    client: reqwest::Client,
    starts: u32,
}

impl Node {
    /// A node over `data_dir` (shared keystore and deployment) on a free port; `database_url` = PostgreSQL or
    /// `None` for the SQLite file in the data directory.
    pub fn new(name: &str, data_dir: &Path, rpc_url: &str, database_url: Option<&str>) -> Node {
        let port = free_port();
        let mut env = vec![
            ("REMESA_DATA_DIR", data_dir.display().to_string()),
            ("REMESA_RPC_URL", rpc_url.to_owned()),
            ("REMESA_HTTP_ADDR", format!("127.0.0.1:{port}")),
            ("REMESA_OPERATOR_TOKEN", OPERATOR_TOKEN.to_owned()),
            ("REMESA_KEYSTORE_PASSPHRASE", "e2e passphrase".to_owned()),
            ("REMESA_ESCROW_OWNER_KEY", DEV_DEPLOYER_KEY.to_owned()),
            ("REMESA_REMITTANCE_EXPIRY_S", "3600".to_owned()),
            ("REMESA_CONFIRMATIONS", "1".to_owned()),
            ("REMESA_BATCH_DELAY_MS_MAX", "300".to_owned()),
            ("REMESA_CHAIN__LEASE_MS", "3000".to_owned()),
            ("REMESA_CHAIN__REFUND_KEEPER_INTERVAL_MS", "1000".to_owned()),
            ("REMESA_CHAIN__BUMP_AFTER_MS", "5000".to_owned()),
            ("REMESA_LOG", "info,sqlx=warn".to_owned()),
        ];
        if let Some(url) = database_url {
            env.push(("REMESA_DATABASE_URL", url.to_owned()));
        }
        Node {
            name: name.to_owned(),
            dir: data_dir.to_owned(),
            env: env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            base: format!("http://127.0.0.1:{port}"),
            child: None,
            client: reqwest::Client::new(),
            starts: 0,
        }
    }

    fn command(&self) -> Command {
        let mut c = Command::new(remesa_bin());
        c.env_clear();
        if let Ok(path) = std::env::var("PATH") {
            c.env("PATH", path);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs `remesa <args>` to completion; fails on a non-zero exit.
    pub fn run(&self, args: &[&str]) -> Result<Output> {
        let out = self.command().args(args).output().context("running remesa")?;
        if !out.status.success() {
            bail!(
                "remesa {} failed: {}\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(out)
    }

    /// Starts `remesa serve` (log in `<data_dir>/<name>-<n>.log`) and waits for `/readyz`.
    pub async fn start(&mut self) -> Result<()> {
        self.launch()?;
        self.wait_ready().await
    }

    /// Starts `remesa serve` without waiting for it to be ready (it may crash on purpose before a poll sees it).
    pub fn launch(&mut self) -> Result<()> {
        self.starts += 1;
        let log = std::fs::File::create(self.dir.join(format!("{}-{}.log", self.name, self.starts)))?;
        let child = self
            .command()
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawn remesa serve")?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) -> Result<()> {
        let url = format!("{}/readyz", self.base);
        let client = self.client.clone();
        eventually("the node is ready", Duration::from_secs(30), || {
            let (client, url) = (client.clone(), url.clone());
            async move {
                Ok(client
                    .get(&url)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false))
            }
        })
        .await
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits up to `timeout` for the node process to exit by itself (an injected crash); its exit status.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut().context("the node is not running")?;
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("node {} did not exit within {timeout:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sets (`Some`) or removes (`None`) a variable of the node's environment for its next start or command.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.env.retain(|(k, _)| k != key);
        if let Some(v) = value {
            self.env.push((key.to_owned(), v.to_owned()));
        }
    }

    /// `remesa <args>` as a background process with the node's environment (stderr into `<data_dir>/<log>`),
    /// killed when the returned guard is dropped (also when a test fails half-way).
    pub fn spawn(&self, args: &[&str], log: &str) -> Result<Background> {
        let log = std::fs::File::create(self.dir.join(log))?;
        let child = self
            .command()
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawn remesa")?;
        Ok(Background(child))
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()?;
            let status = c.wait()?;
            anyhow::ensure!(status.success(), "node exited with {status}");
        }
        Ok(())
    }

    /// An API call with the operator token; returns (status, body).
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> Result<(u16, Value)> {
        let m = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = self
            .client
            .request(m, format!("{}{path}", self.base))
            .bearer_auth(OPERATOR_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    /// A call that must answer 2xx.
    pub async fn ok(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> Result<Value> {
        let (status, v) = self.api(method, path, body, key).await?;
        anyhow::ensure!((200..300).contains(&status), "{method} {path}: {status} {v}");
        Ok(v)
    }

    pub async fn state_of(&self, id: &str) -> Result<String> {
        let v = self
            .ok("GET", &format!("/v1/remittances/{id}"), None, None)
            .await?;
        Ok(v["state"].as_str().unwrap_or_default().to_owned())
    }

    /// The node's database URL (its PostgreSQL database, or the SQLite file in the data directory).
    pub fn database_url(&self) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == "REMESA_DATABASE_URL")
            .map_or_else(
                || format!("sqlite://{}?mode=rw", self.dir.join("remesa.sqlite").display()),
                |(_, v)| v.clone(),
            )
    }

    /// A remittance's state read from the database (while the node is down).
    pub async fn state_of_offline(&self, id: &str) -> Result<String> {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.database_url()).await?;
        let state = sqlx::query_scalar::<_, String>("SELECT state FROM remittances WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await;
        pool.close().await;
        Ok(state?)
    }

    pub async fn wait_state(&self, id: &str, want: &str, timeout: Duration) -> Result<()> {
        eventually(&format!("{id} to be {want}"), timeout, || async {
            Ok(self.state_of(id).await? == want)
        })
        .await
    }
}

/// A background process that is killed (and reaped) when dropped.
#[derive(Debug)]
pub struct Background(pub Child);

impl Background {
    /// Its exit status if it has exited.
    pub fn try_wait(&mut self) -> Result<Option<std::process::ExitStatus>> {
        Ok(self.0.try_wait()?)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A fresh PostgreSQL database on the test server, or `None` (reason printed) when it cannot be reached.
pub async fn fresh_postgres() -> Option<String> {
    use sqlx::Connection;
    let admin = std::env::var("REMESA_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("REMESA_TEST_POSTGRES_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let require = std::env::var("REMESA_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    let conn = tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(&admin)).await;
    let mut conn = match conn {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            assert!(
                !require,
                "PostgreSQL required (REMESA_REQUIRE_POSTGRES=1) but not reachable at {admin}: {e}"
            );
            eprintln!("SKIPPED (PostgreSQL not reachable at {admin}): {e}");
            return None;
        }
        Err(_) => {
            assert!(
                !require,
                "PostgreSQL required (REMESA_REQUIRE_POSTGRES=1) but {admin} timed out"
            );
            eprintln!("SKIPPED (PostgreSQL not reachable at {admin}): timed out");
            return None;
        }
    };
    let name = format!("remesa_e2e_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .ok()?;
    let base = admin
        .rsplit_once('/')
        .map_or(admin.clone(), |(b, _)| b.to_owned());
    Some(format!("{base}/{name}"))
}
