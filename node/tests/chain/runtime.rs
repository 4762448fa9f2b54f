//! The node's start-up checks of its token and escrow (`ChainRuntime::connect`): it refuses, naming the token and
//! what is wrong, rather than sign authorizations the token would refuse.

use anyhow::{Context, Result};
use remesa::app::{ChainRuntime, ExpectedToken};
use remesa_wallet::devnet::LocalDevnet;

#[tokio::test(flavor = "multi_thread")]
async fn the_node_starts_only_on_the_token_it_can_sign_for() -> Result<()> {
    let devnet = LocalDevnet::start(&[]).await.context("start the devnet")?;
    let rpc = devnet.endpoint();
    let d = devnet.deployment.clone();
    let token = format!("{:#x}", d.token).to_lowercase();
    let refusal = |e: remesa::chain::RuntimeError| e.to_string().to_lowercase();

    // Real USDC: the domain comes from name() and version() and matches DOMAIN_SEPARATOR().
    let pinned = ExpectedToken {
        name: Some("USD Coin".into()),
        version: Some("2".into()),
    };
    let st = ChainRuntime::connect(&rpc, d.clone(), None, &pinned).await?;
    assert_eq!(
        (st.info.domain.name.as_str(), st.info.domain.version.as_str()),
        ("USD Coin", "2")
    );
    // The devnet escrow locks between a minute and 30 days; the node's remittance lifetime must fit, with room
    // for the deposit to be mined.
    assert_eq!(st.lock_bounds_s, (60, 30 * 24 * 3600));
    st.check_lock_time(3_600, 300)?;
    for (expiry_s, slack_s) in [(100, 60), (31 * 24 * 3600, 60)] {
        let e = st
            .check_lock_time(expiry_s, slack_s)
            .err()
            .context("a remittance lifetime outside the escrow's lock bounds was accepted")?;
        assert!(e.to_string().contains("locks between 60 and 2592000 s"), "{e}");
    }

    // An operator who expects the L2 testnet name (or another version) is told what the token says.
    for expected in [
        ExpectedToken {
            name: Some("USDC".into()),
            version: None,
        },
        ExpectedToken {
            name: None,
            version: Some("1".into()),
        },
    ] {
        let e = refusal(
            ChainRuntime::connect(&rpc, d.clone(), None, &expected)
                .await
                .err()
                .context("a token with another EIP-712 name or version was accepted")?,
        );
        assert!(e.contains(&token) && e.contains("expects"), "{e}");
    }

    // An escrow that holds another token than the deployment names.
    let mut other = d.clone();
    other.token = d.escrow;
    let e = refusal(
        ChainRuntime::connect(&rpc, other, None, &ExpectedToken::default())
            .await
            .err()
            .context("an escrow holding another token was accepted")?,
    );
    assert!(e.contains("holds token") && e.contains(&token), "{e}");

    // A contract without EIP-3009 (here the escrow itself) is refused by the same check the node runs.
    let e = devnet
        .chain
        .require_eip3009(d.escrow, d.escrow)
        .await
        .err()
        .context("a contract without receiveWithAuthorization passed the EIP-3009 check")?
        .to_string();
    assert!(e.contains("authorizationState"), "{e}");
    devnet.chain.require_eip3009(d.token, d.escrow).await?;
    Ok(())
}
