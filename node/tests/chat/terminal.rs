//! The real `remesa chat` binary against a node serving the chat routes: one-shot and interactive (buttons as
//! numbered choices).

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::Result;

use crate::harness::*;
use crate::webhooks::start;

fn remesa() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_remesa"));
    c.env_remove("REMESA_OPERATOR_TOKEN").env("NO_COLOR", "1");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remesa_chat_one_shot_and_interactive() -> Result<()> {
    let node = start(sqlite().await?, true).await?;
    let base = node.base.clone();
    let out = tokio::task::spawn_blocking({
        let base = base.clone();
        move || {
            remesa()
                .args([
                    "chat",
                    "--as",
                    "+15551234567",
                    "--node",
                    &base,
                    "--operator-token",
                    OPERATOR_TOKEN,
                    "--message",
                    "hi",
                ])
                .output()
        }
    })
    .await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Welcome to Remesa") && stdout.contains("[1] Send money"),
        "{stdout}"
    );

    // Interactive: "1" presses the first button (Send money), then the amount, phone, method by number…
    let out = tokio::task::spawn_blocking(move || -> Result<std::process::Output> {
        let mut child = remesa()
            .args([
                "chat",
                "--as",
                "+15551234567",
                "--node",
                &base,
                "--operator-token",
                OPERATOR_TOKEN,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().ok_or_else(|| anyhow::anyhow!("stdin"))?;
        stdin.write_all(b"help\n1\n2\n+502 5555 0101\n1\nMaria Lopez\n/quit\n")?;
        drop(stdin);
        Ok(child.wait_with_output()?)
    })
    .await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if std::env::var_os("REMESA_SHOW_TERMINAL").is_some() {
        println!("{stdout}");
    }
    for needle in [
        "How much do you want to send",
        "phone number",
        "[1] Cash pickup",
        "full name",
        "You send: 2.00 USD",
        "Maria Lopez (+50255550101) gets",
        "[1] Confirm",
        "[2] Cancel",
    ] {
        assert!(stdout.contains(needle), "{needle:?} missing in\n{stdout}");
    }
    // A wrong token is reported, not a crash.
    let out = tokio::task::spawn_blocking({
        let base = node.base.clone();
        move || {
            remesa()
                .args([
                    "chat",
                    "--as",
                    "+15551234567",
                    "--node",
                    &base,
                    "--operator-token",
                    "nope",
                    "--message",
                    "hi",
                ])
                .output()
        }
    })
    .await??;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
