//! Shared helpers: a throw-away devnet and a runner for the built `remesa-wallet` binary.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use remesa_wallet::devnet::LocalDevnet;

pub const PASSPHRASE: &str = "correct horse battery staple";

pub async fn devnet() -> LocalDevnet {
    LocalDevnet::start(&[])
        .await
        .expect("anvil with the contracts deployed")
}

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success, got {self:#?}");
        self
    }

    pub fn fails(self, code: i32, needle: &str) -> Self {
        assert_eq!(self.code, code, "expected exit {code}, got {self:#?}");
        assert!(
            self.stderr.contains(needle),
            "stderr should mention {needle:?}: {self:#?}"
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {self:#?}"))
    }

    /// Output never shows any of these.
    pub fn hides(&self, secrets: &[&str]) -> &Self {
        for s in secrets.iter().filter(|s| !s.is_empty()) {
            assert!(!self.stdout.contains(s), "stdout leaks a secret: {self:#?}");
            assert!(!self.stderr.contains(s), "stderr leaks a secret: {self:#?}");
        }
        self
    }
}

/// The binary with a temp keystore dir and deployment file, pointed at one devnet.
pub struct Cli {
    pub dir: tempfile::TempDir,
    pub rpc_url: String,
    pub deployment: PathBuf,
}

impl Cli {
    pub fn new(devnet: &LocalDevnet) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let deployment = dir.path().join("deployment.json");
        devnet.deployment.save(&deployment).expect("deployment file");
        Self {
            dir,
            rpc_url: devnet.endpoint(),
            deployment,
        }
    }

    pub fn keystore_dir(&self) -> PathBuf {
        self.dir.path().join("wallets")
    }

    /// Runs with the passphrase in the environment.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[("REMESA_WALLET_PASSPHRASE", PASSPHRASE)], None)
    }

    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_remesa-wallet"));
        cmd.args(args)
            .env("REMESA_RPC_URL", &self.rpc_url)
            .env("REMESA_DEPLOYMENT", &self.deployment)
            .env("REMESA_WALLET_DIR", self.keystore_dir())
            .env_remove("REMESA_WALLET_PASSPHRASE")
            .env_remove("REMESA_RELAYER_KEY")
            .env_remove("REMESA_MINTER_KEY")
            .env_remove("REMESA_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn remesa-wallet");
        {
            let mut input = child.stdin.take().expect("stdin");
            if let Some(s) = stdin {
                input.write_all(s.as_bytes()).expect("write stdin");
            }
        }
        let out = child.wait_with_output().expect("wait");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}
