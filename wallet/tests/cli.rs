//! Every `remesa-wallet` subcommand, run as the built binary against a real anvil with the real contracts.
//! Also the refusals (garbage amount, wrong passphrase, insufficient balance, unreachable RPC, chain id mismatch)
//! and that no secret reaches stdout/stderr except `new`'s deliberate one-time mnemonic display.
#![allow(clippy::unwrap_used)]

mod common;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use common::{Cli, PASSPHRASE};
use remesa_wallet::devnet::{self, anvil_dev_signer};
use remesa_wallet::eip3009::{self, AuthorizationKind, AuthorizationTerms, Signature65};

/// Creates wallet `name`; returns (address, mnemonic).
fn new_wallet(cli: &Cli, name: &str) -> (Address, String) {
    let run = cli
        .run(&["--json", "new", "--name", name, "--show-mnemonic"])
        .ok();
    let v = run.json();
    (
        v["address"].as_str().unwrap().parse().unwrap(),
        v["mnemonic"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_new_import_list_balance_faucet() {
    let d = common::devnet().await;
    let cli = Cli::new(&d);

    // new (human): shows the mnemonic once, with a warning; the passphrase never.
    let run = cli.run(&["new"]).ok();
    assert!(run.stderr.contains("shown only this once"), "{run:#?}");
    let words: Vec<&str> = run
        .stdout
        .lines()
        .map(str::trim)
        .find(|l| l.split(' ').count() == 24)
        .expect("24 words")
        .split(' ')
        .collect();
    let mnemonic = words.join(" ");
    run.hides(&[PASSPHRASE]);
    // new --json without --show-mnemonic: no mnemonic at all.
    let run = cli.run(&["--json", "new", "--name", "quiet"]).ok();
    assert_eq!(run.json()["mnemonic_shown"], false);
    assert!(run.json().get("mnemonic").is_none());
    // The same name twice, a weak passphrase, no passphrase at all.
    cli.run(&["new"]).fails(2, "already exists");
    cli.run_with(
        &["new", "--name", "weak"],
        &[("REMESA_WALLET_PASSPHRASE", "short")],
        None,
    )
    .fails(2, "at least 8 characters")
    .hides(&["short"]);
    cli.run_with(&["new", "--name", "nopass"], &[], None)
        .fails(2, "REMESA_WALLET_PASSPHRASE");

    // import the mnemonic back (stdin) under another name: same address.
    let list = cli.run(&["--json", "list"]).ok().json();
    let default_addr = list["wallets"][0]["address"].as_str().unwrap().to_owned();
    let run = cli
        .run_with(
            &["--json", "import", "--name", "restored"],
            &[("REMESA_WALLET_PASSPHRASE", PASSPHRASE)],
            Some(&format!("{}\n", mnemonic.to_uppercase())),
        )
        .ok();
    run.hides(&[&mnemonic, PASSPHRASE]);
    assert_eq!(run.json()["address"].as_str().unwrap(), default_addr);
    // import a private key; a passphrase from a file.
    let key = PrivateKeySigner::random();
    let key_hex = hex::encode(key.to_bytes());
    let pass_file = cli.dir.path().join("pass.txt");
    std::fs::write(&pass_file, format!("{PASSPHRASE}\n")).unwrap();
    let run = cli
        .run_with(
            &[
                "--passphrase-file",
                pass_file.to_str().unwrap(),
                "import",
                "--name",
                "hot",
            ],
            &[],
            Some(&format!("0x{key_hex}")),
        )
        .ok();
    run.hides(&[&key_hex, PASSPHRASE]);
    assert!(run.stdout.contains(&key.address().to_string()), "{run:#?}");
    // garbage imports are refused without being echoed
    cli.run_with(
        &["import", "--name", "bad"],
        &[("REMESA_WALLET_PASSPHRASE", PASSPHRASE)],
        Some("apple banana secretword"),
    )
    .fails(2, "not a valid BIP-39")
    .hides(&["secretword"]);
    cli.run_with(
        &["import", "--name", "bad"],
        &[("REMESA_WALLET_PASSPHRASE", PASSPHRASE)],
        Some(""),
    )
    .fails(2, "nothing to import");

    // address: derived accounts (the restored mnemonic derives the same ones)
    let run = cli
        .run(&["--json", "address", "--index", "1", "--count", "3"])
        .ok();
    let accounts = run.json()["accounts"].as_array().unwrap().clone();
    assert_eq!(accounts.len(), 3);
    assert_eq!(accounts[0]["index"], 1);
    let restored = cli
        .run(&["--json", "address", "restored", "--index", "1", "--count", "3"])
        .ok();
    assert_eq!(restored.json()["accounts"].as_array().unwrap(), &accounts);
    let run = cli.run_with(&["address"], &[], None).ok();
    assert!(
        run.stdout.to_lowercase().contains(&default_addr.to_lowercase()),
        "index 0 needs no passphrase: {run:#?}"
    );
    cli.run(&["address", "hot", "--index", "1"])
        .fails(2, "account 1 could not be derived");
    cli.run(&["address", "--count", "1000"])
        .fails(2, "between 1 and 100");
    cli.run_with(
        &["address", "--index", "2"],
        &[("REMESA_WALLET_PASSPHRASE", "nope nope nope")],
        None,
    )
    .fails(2, "wrong passphrase");

    // list
    let run = cli.run(&["list"]).ok();
    for name in ["default", "quiet", "restored", "hot"] {
        assert!(run.stdout.contains(name), "{run:#?}");
    }
    run.hides(&[&mnemonic, &key_hex, PASSPHRASE]);

    // balance of a fresh wallet, faucet, balance again (by name and by address)
    let run = cli.run(&["--json", "balance"]).ok();
    assert_eq!(run.json()["balance"], "0");
    assert_eq!(run.json()["symbol"], "USDC");
    let run = cli.run(&["--json", "faucet", "25.5"]).ok();
    assert_eq!(run.json()["balance"], "25.5");
    assert!(run.json()["receipt"]["gas_used"].as_u64().unwrap() > 0);
    let run = cli.run(&["balance", &default_addr]).ok();
    assert!(run.stdout.contains("25.5 USDC"), "{run:#?}");
    cli.run(&["faucet", "1", "--to", &key.address().to_string()]).ok();
    assert_eq!(
        d.balance_of(key.address()).await.unwrap(),
        U256::from(1_000_000u64)
    );
    cli.run(&["faucet", "lots"]).fails(2, "invalid amount");
    cli.run(&["balance", "nobody"])
        .fails(2, "no wallet named \"nobody\"");
    cli.run(&["balance", "0x1234"]).fails(2, "not an address");
}

#[tokio::test(flavor = "multi_thread")]
async fn send_is_gasless_and_refuses_bad_input() {
    let d = common::devnet().await;
    let cli = Cli::new(&d);
    let (me, mnemonic) = new_wallet(&cli, "default");
    cli.run(&["faucet", "10"]).ok();
    let to = PrivateKeySigner::random().address();
    let relayer_key = hex::encode(anvil_dev_signer(5).to_bytes());
    let env = [
        ("REMESA_WALLET_PASSPHRASE", PASSPHRASE),
        ("REMESA_RELAYER_KEY", relayer_key.as_str()),
    ];
    let secrets = [mnemonic.as_str(), PASSPHRASE, relayer_key.as_str()];

    // Even with every log enabled, no secret reaches the output.
    let traced = [env[0], env[1], ("REMESA_LOG", "trace")];
    let run = cli
        .run_with(&["send", "4.25", &to.to_string()], &traced, None)
        .ok();
    assert!(run.stderr.contains("wallet::relayer"), "logs are on: {run:#?}");
    run.hides(&secrets);
    assert!(run.stdout.contains("Sent 4.25 USDC"), "{run:#?}");
    assert_eq!(d.balance_of(to).await.unwrap(), U256::from(4_250_000u64));
    assert_eq!(d.balance_of(me).await.unwrap(), U256::from(5_750_000u64));
    // The sender paid no gas: it never had any.
    assert_eq!(d.chain.eth_balance(me).await.unwrap(), U256::ZERO);
    // The devnet's relayer (anvil account 0) is used when no key is given.
    let run = cli.run(&["--json", "send", "0.75", &to.to_string()]).ok();
    assert!(run.json()["receipt"]["nonce"].as_u64().is_some());

    cli.run_with(&["send", "100", &to.to_string()], &env, None)
        .fails(2, "insufficient balance")
        .fails(2, "has 5 USDC, the amount is 100 USDC")
        .hides(&secrets);
    cli.run_with(&["send", "abc", &to.to_string()], &env, None)
        .fails(2, "invalid amount: the amount is not a decimal");
    cli.run_with(&["send", "-3", &to.to_string()], &env, None)
        .fails(2, "negative");
    cli.run_with(&["send", "1.0000001", &to.to_string()], &env, None)
        .fails(2, "more decimal places");
    cli.run_with(&["send", "0", &to.to_string()], &env, None)
        .fails(2, "greater than zero");
    cli.run_with(&["send", "", &to.to_string()], &env, None)
        .fails(2, "empty");
    cli.run_with(&["send", &"9".repeat(90), &to.to_string()], &env, None)
        .fails(2, "too large");
    cli.run_with(&["send", "1", "0xnothex"], &env, None)
        .fails(2, "not an address");
    let wrong = [
        ("REMESA_WALLET_PASSPHRASE", "not the passphrase"),
        ("REMESA_RELAYER_KEY", relayer_key.as_str()),
    ];
    cli.run_with(&["send", "1", &to.to_string()], &wrong, None)
        .fails(2, "wrong passphrase")
        .hides(&["not the passphrase", PASSPHRASE]);
    let broke = hex::encode(PrivateKeySigner::random().to_bytes());
    let unfunded = [
        ("REMESA_WALLET_PASSPHRASE", PASSPHRASE),
        ("REMESA_RELAYER_KEY", broke.as_str()),
    ];
    cli.run_with(&["send", "1", &to.to_string()], &unfunded, None)
        .fails(2, "cannot pay for gas")
        .hides(&[&broke]);
    let bad_relayer = [
        ("REMESA_WALLET_PASSPHRASE", PASSPHRASE),
        ("REMESA_RELAYER_KEY", "0xdeadbeef"),
    ];
    cli.run_with(&["send", "1", &to.to_string()], &bad_relayer, None)
        .fails(2, "REMESA_RELAYER_KEY does not hold a valid private key")
        .hides(&["deadbeef"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn remit_status_refund() {
    let d = common::devnet().await;
    let cli = Cli::new(&d);
    let (me, mnemonic) = new_wallet(&cli, "default");
    cli.run(&["faucet", "50"]).ok();
    let secrets = [mnemonic.as_str(), PASSPHRASE];

    // Sign only: the node API's authorization JSON, verifiable against the terms.
    let run = cli
        .run(&[
            "--json",
            "remit",
            "20",
            "--partner",
            "1",
            "--pickup-code",
            "abcd-efgh-jkmn",
        ])
        .ok();
    run.hides(&secrets);
    let v = run.json();
    let sig = v["authorization"]["signature"].as_str().unwrap();
    assert!(sig.starts_with("0x") && sig.len() == 132, "{v}");
    assert_eq!(v["pickup_code"], "ABCD-EFGH-JKMN");
    let terms: remesa_wallet::RemittanceTerms = serde_json::from_value(v["terms"].clone()).unwrap();
    assert_eq!(format!("{:#x}", terms.id()), v["remittance_id"].as_str().unwrap());
    assert_eq!(terms.sender, me);
    let domain = d.chain.token_domain(d.deployment.token).await.unwrap();
    let t = AuthorizationTerms {
        from: me,
        to: d.deployment.escrow,
        value: terms.amount_base_units,
        valid_after_unix_s: v["authorization"]["valid_after_unix_s"].as_u64().unwrap(),
        valid_before_unix_s: v["authorization"]["valid_before_unix_s"].as_u64().unwrap(),
        nonce: terms.id(),
    };
    eip3009::verify_authorization(
        AuthorizationKind::Receive,
        &domain,
        &t,
        &Signature65::parse(sig).unwrap(),
    )
    .unwrap();
    cli.run(&["status", v["remittance_id"].as_str().unwrap()]).ok();

    // Sign and deposit, saved for later.
    let saved = cli.dir.path().join("remit.json");
    let run = cli
        .run(&[
            "--json",
            "remit",
            "20",
            "--partner",
            "1",
            "--expires-in-s",
            "300",
            "--submit",
            "--save",
            saved.to_str().unwrap(),
        ])
        .ok();
    let id = run.json()["remittance_id"].as_str().unwrap().to_owned();
    assert!(run.json()["deposit"]["gas_used"].as_u64().unwrap() > 0);
    assert_eq!(
        d.balance_of(d.deployment.escrow).await.unwrap(),
        U256::from(20_000_000u64)
    );
    let run = cli.run(&["--json", "status", &id]).ok();
    assert_eq!(run.json()["status"], "locked");
    let run = cli.run(&["--json", "status", saved.to_str().unwrap()]).ok();
    assert_eq!(
        (run.json()["status"].as_str(), run.json()["refundable"].as_bool()),
        (Some("locked"), Some(false))
    );
    // Too early.
    cli.run(&["refund", saved.to_str().unwrap()])
        .fails(2, "not expired yet");
    devnet::increase_time(&d.chain, 400).await.unwrap();
    let run = cli
        .run_with(
            &["status", "-"],
            &[],
            Some(&std::fs::read_to_string(&saved).unwrap()),
        )
        .ok();
    assert!(run.stdout.contains("refundable now"), "{run:#?}");
    let run = cli.run(&["refund", saved.to_str().unwrap()]).ok();
    assert!(run.stdout.contains("Refunded 20 USDC"), "{run:#?}");
    run.hides(&secrets);
    assert_eq!(d.balance_of(me).await.unwrap(), U256::from(50_000_000u64));
    let run = cli.run(&["--json", "status", &id]).ok();
    assert_eq!(run.json()["status"], "refunded");
    cli.run(&["refund", saved.to_str().unwrap()])
        .fails(2, "its status is refunded");

    // Refusals.
    cli.run(&["remit", "20", "--partner", "99"])
        .fails(2, "partner 99 does not accept deposits");
    cli.run(&["remit", "2000", "--partner", "1"])
        .fails(2, "insufficient balance");
    cli.run(&["remit", "20", "--partner", "1", "--pickup-code", "UUU"])
        .fails(2, "pickup code");
    cli.run(&["remit", "20", "--partner", "1", "--expires-at-unix-s", "5"])
        .fails(2, "in the past");
    cli.run(&["remit", "20", "--partner", "1", "--expires-in-s", "5"])
        .fails(2, "the escrow locks between 60 and 2592000 s");
    cli.run(&["status", "no-such-file.json"]).fails(2, "cannot read");
    cli.run(&["refund", &id]).fails(2, "needs the remittance's terms");
    cli.run(&["status", "0x1234"]).fails(2, "not a remittance id");
    let r = cli.run(&["--json", "status", "0x1234"]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert_eq!(r.json()["error"]["kind"], "user");
}

#[tokio::test(flavor = "multi_thread")]
async fn network_failures_exit_3_with_the_reason() {
    let d = common::devnet().await;
    let cli = Cli::new(&d);
    new_wallet(&cli, "default");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    cli.run(&["--rpc-url", &url, "balance"])
        .fails(3, &format!("cannot reach the RPC endpoint {url}"));
    let r = cli.run(&["--json", "--rpc-url", &url, "balance"]);
    assert_eq!(r.json()["error"]["kind"], "chain");
    cli.run(&["--chain-id", "1", "balance"])
        .fails(3, "chain id mismatch")
        .fails(3, "expected 1, the node reports 31337");
    cli.run(&["--rpc-url", "localhost:8545", "balance"])
        .fails(2, "not valid");
    // WebSocket works the same.
    let run = cli
        .run(&["--rpc-url", &d.ws_endpoint(), "--json", "balance"])
        .ok();
    assert_eq!(run.json()["balance"], "0");
    // A transaction that is never mined: the wait ends at --timeout-s with exit 3.
    devnet::set_automine(&d.chain, false).await.unwrap();
    cli.run(&["--timeout-s", "2", "faucet", "1"])
        .fails(3, "did not reach 1 confirmation(s) within 2 s");
    devnet::set_automine(&d.chain, true).await.unwrap();
    // No deployment file: a user error that says what to do.
    cli.run(&["--deployment", "/nonexistent/deployment.json", "balance"])
        .fails(2, "scripts/devnet.sh");
    // Contracts missing on this chain.
    let other = remesa_wallet::devnet::Deployment {
        token: Address::repeat_byte(0x42),
        ..d.deployment.clone()
    };
    let path = cli.dir.path().join("other.json");
    other.save(&path).unwrap();
    cli.run(&["--deployment", path.to_str().unwrap(), "balance"])
        .fails(2, "no contract at");
    // Not the scripts/devnet.sh deployment (another deployer): no built-in faucet or relayer key.
    cli.run(&["faucet", "1"]).ok();
    let foreign = remesa_wallet::devnet::Deployment {
        deployer: Address::repeat_byte(0x77),
        ..d.deployment.clone()
    };
    let path = cli.dir.path().join("foreign.json");
    foreign.save(&path).unwrap();
    let foreign = ["--deployment", path.to_str().unwrap()];
    cli.run(&[&foreign[..], &["faucet", "1"]].concat())
        .fails(2, "devnet only");
    cli.run(
        &[
            &foreign[..],
            &["send", "1", "0x0000000000000000000000000000000000000001"],
        ]
        .concat(),
    )
    .fails(2, "no relayer key: set REMESA_RELAYER_KEY");
    cli.run(
        &[
            &foreign[..],
            &["send", "100", "0x0000000000000000000000000000000000000001"],
        ]
        .concat(),
    )
    .fails(2, "insufficient balance");
}
