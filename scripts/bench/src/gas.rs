//! Figure 1: gas per remittance on real USDC, all-in, from the forge gas snapshot (`contracts/snapshots/RemittanceGas.json`,
//! written by `contracts/test/Gas.t.sol` through `scripts/gas-report.sh`; method in `contracts/GAS.md`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;

#[derive(Debug, Clone)]
pub struct Gas {
    /// Deposit batch of 32 plus release batch of 32, all-in transaction gas, divided by 32.
    pub per_remittance_allin: f64,
    pub deposit_per_remittance: f64,
    pub release_per_remittance: f64,
    pub unbatched: f64,
    pub usdc_transfer_fresh: f64,
}

fn get(snap: &BTreeMap<String, serde_json::Value>, key: &str) -> anyhow::Result<f64> {
    let v = snap
        .get(key)
        .with_context(|| format!("the snapshot has no {key:?}"))?;
    let n: u64 = match v {
        serde_json::Value::String(s) => s
            .parse()
            .with_context(|| format!("{key:?} is not a number: {s:?}"))?,
        serde_json::Value::Number(n) => n.as_u64().with_context(|| format!("{key:?} is not an integer"))?,
        other => anyhow::bail!("{key:?} is not a number: {other}"),
    };
    Ok(n as f64)
}

/// All-in transaction gas of `op` (`<op>.tx`; older snapshots called it `<op>.allin`).
fn tx_gas(snap: &BTreeMap<String, serde_json::Value>, op: &str) -> anyhow::Result<f64> {
    if snap.contains_key(&format!("{op}.tx")) {
        get(snap, &format!("{op}.tx"))
    } else {
        get(snap, &format!("{op}.allin"))
    }
}

pub fn read(snapshot: &Path) -> anyhow::Result<Gas> {
    let text =
        std::fs::read_to_string(snapshot).with_context(|| format!("reading {}", snapshot.display()))?;
    let snap: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", snapshot.display()))?;
    let deposit = tx_gas(&snap, "usdc_deposit_batch_32")? / get(&snap, "usdc_deposit_batch_32.count")?;
    let release = tx_gas(&snap, "usdc_release_batch_32")? / get(&snap, "usdc_release_batch_32.count")?;
    Ok(Gas {
        per_remittance_allin: deposit + release,
        deposit_per_remittance: deposit,
        release_per_remittance: release,
        unbatched: tx_gas(&snap, "usdc_deposit_1")? + tx_gas(&snap, "usdc_release_1")?,
        usdc_transfer_fresh: tx_gas(&snap, "usdc_transfer_fresh")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_committed_snapshot() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts/snapshots/RemittanceGas.json");
        let g = read(&path).expect("the committed gas snapshot is readable");
        assert!(g.deposit_per_remittance > g.release_per_remittance && g.release_per_remittance > 0.0);
        assert!((g.per_remittance_allin - g.deposit_per_remittance - g.release_per_remittance).abs() < 1e-9);
        assert!(g.usdc_transfer_fresh > 21_000.0);
        assert!(g.unbatched > g.per_remittance_allin);
    }
}
