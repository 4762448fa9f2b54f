//! `remesa dev` — the README's run command — brings up a complete system: a remittance from a funded demo user
//! is quoted, locked, paid out by the simulated partner through the signed partner API, and settled on chain.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use remesa_e2e::{eventually, free_port, remesa_bin};
use serde_json::{Value, json};

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remesa_dev_runs_a_remittance_end_to_end() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let port = free_port();
    let anvil_port = free_port();
    let log = std::fs::File::create(dir.path().join("dev.log"))?;
    let _child = Child(
        Command::new(remesa_bin())
            .args(["dev", "--anvil-port", &anvil_port.to_string()])
            .env("REMESA_DATA_DIR", dir.path())
            .env("REMESA_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("REMESA_OPERATOR_TOKEN", "dev-e2e-token")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?,
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let result: Result<()> = async {
        eventually("remesa dev is ready", Duration::from_secs(60), || async {
            Ok(client
                .get(format!("{base}/readyz"))
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false))
        })
        .await?;
        let call = |method: reqwest::Method, path: String, body: Option<Value>, key: Option<&'static str>| {
            let mut req = client
                .request(method, format!("{base}{path}"))
                .bearer_auth("dev-e2e-token");
            if let Some(b) = body {
                req = req.json(&b);
            }
            if let Some(k) = key {
                req = req.header("Idempotency-Key", k);
            }
            async move {
                let r = req.send().await?;
                let status = r.status();
                let v: Value = r.json().await?;
                anyhow::ensure!(status.is_success(), "{status}: {v}");
                Ok::<Value, anyhow::Error>(v)
            }
        };
        let user = call(
            reqwest::Method::GET,
            "/v1/admin/users?channel=terminal&external_id=%2B14155550100".into(),
            None,
            None,
        )
        .await?;
        let address = user["address"].as_str().context("address")?.to_owned();
        eventually("the demo funds are indexed", Duration::from_secs(60), || async {
            Ok(call(
                reqwest::Method::GET,
                format!("/v1/balances/{address}"),
                None,
                None,
            )
            .await?["balance_base_units"]
                == "1000000000")
        })
        .await?;
        let q = call(
            reqwest::Method::POST,
            "/v1/quotes".into(),
            Some(json!({"send_amount": "100", "country": "GT", "payout_method": "cash_pickup"})),
            None,
        )
        .await?;
        anyhow::ensure!(
            q["partner_id"] == 1,
            "Banco Demo pays more than Tienda Express: {q}"
        );
        let r = call(
            reqwest::Method::POST,
            "/v1/remittances".into(),
            Some(
                json!({"quote_id": q["id"], "sender": {"kind": "user", "user_id": user["id"]},
                "recipient": {"phone": "+50255550101", "name": "Maria Lopez"}}),
            ),
            Some("dev-e2e-1"),
        )
        .await?;
        let id = r["id"].as_str().context("id")?.to_owned();
        eventually(
            "the simulated partner pays and the escrow settles",
            Duration::from_secs(90),
            || async {
                Ok(
                    call(reqwest::Method::GET, format!("/v1/remittances/{id}"), None, None).await?["state"]
                        == "settled",
                )
            },
        )
        .await?;

        // Sanctions screening (issue 13): `remesa dev` screens against its demo list in OFAC's formats. A send to a
        // listed name is held off chain; the operator's CLI reaches the running node; a release goes on chain.
        let q = call(
            reqwest::Method::POST,
            "/v1/quotes".into(),
            Some(json!({"send_amount": "20", "country": "GT", "payout_method": "cash_pickup"})),
            None,
        )
        .await?;
        let held = call(
            reqwest::Method::POST,
            "/v1/remittances".into(),
            Some(
                json!({"quote_id": q["id"], "sender": {"kind": "user", "user_id": user["id"]},
                "recipient": {"phone": "+50255550101", "name": "Joaquin Guzman Loera"}}),
            ),
            Some("dev-e2e-held"),
        )
        .await?;
        anyhow::ensure!(held["state"] == "on_hold", "a listed recipient is held: {held}");
        let held_id = held["id"].as_str().context("id")?.to_owned();
        let queue = call(
            reqwest::Method::GET,
            "/v1/admin/compliance/holds".into(),
            None,
            None,
        )
        .await?;
        anyhow::ensure!(
            queue[0]["remittance"]["id"] == held_id.as_str() && queue[0]["hits"][0]["entry_id"] == "7001",
            "the review queue shows the matched entry: {queue}"
        );
        let cli = |args: &[&str]| {
            Command::new(remesa_bin())
                .args(args)
                .env("REMESA_NODE_URL", &base)
                .env("REMESA_OPERATOR_TOKEN", "dev-e2e-token")
                .output()
        };
        let un = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../node/demo/sanctions/consolidated.xml"
        );
        let out = cli(&["sanctions", "load", "--format", "un-xml", un])?;
        anyhow::ensure!(
            out.status.success(),
            "sanctions load: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = cli(&["sanctions", "status"])?;
        let status: Value = serde_json::from_slice(&out.stdout)?;
        let sources: Vec<&str> = status["lists"]
            .as_array()
            .context("lists")?
            .iter()
            .filter_map(|l| l["source"].as_str())
            .collect();
        anyhow::ensure!(sources == ["ofac_sdn", "un_consolidated"], "{status}");
        let ready: Value = client.get(format!("{base}/readyz")).send().await?.json().await?;
        anyhow::ensure!(
            ready["sanctions"]["state"] == "loaded"
                && ready["sanctions"]["lists"][1]["entries"] == 2
                && ready["chain"]["state"] == "ok"
                && ready["chain"]["lag_blocks"].is_u64(),
            "{ready}"
        );
        call(
            reqwest::Method::POST,
            format!("/v1/admin/remittances/{held_id}/hold/release"),
            Some(json!({"reviewer": "e2e", "reason": "another person of that name"})),
            None,
        )
        .await?;
        eventually(
            "the released remittance is locked, paid and settled",
            Duration::from_secs(90),
            || async {
                Ok(call(
                    reqwest::Method::GET,
                    format!("/v1/remittances/{held_id}"),
                    None,
                    None,
                )
                .await?["state"]
                    == "settled")
            },
        )
        .await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let text = std::fs::read_to_string(dir.path().join("dev.log")).unwrap_or_default();
        for l in text.lines().rev().take(40).collect::<Vec<_>>().iter().rev() {
            eprintln!("{l}");
        }
    }
    result
}
