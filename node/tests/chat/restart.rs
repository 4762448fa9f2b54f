//! A node killed while it holds a chat message (the inbox claim has a 60 s lease) and restarted under the same
//! node name takes the message over at once instead of leaving the sender's conversation blocked for the lease;
//! meanwhile `/v1/dev/chat` answers its documented 504 before the node's handler timeout (not a generic 503).
//! The whole node wiring (`app::state`, `app::build_from_state`, `run_until_stopped`) on SQLite and PostgreSQL.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use remesa::app;
use remesa::chat::model::{ChatSender, InboundContent, InboundMessage, Platform};
use remesa::config::Config;
use remesa::engine::Custody;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::harness::{OPERATOR_TOKEN, TestDb, all_dbs};

const PHONE: &str = "+15550001111";
const HTTP_TIMEOUT_MS: u64 = 2_000;
const PASSPHRASE: &str = "chat restart test";

fn config(db: &TestDb, dir: &std::path::Path) -> Config {
    Config {
        http_addr: "127.0.0.1:0".parse().expect("addr"),
        node_name: Some("chat-restart-node".into()),
        data_dir: dir.to_path_buf(),
        database_url: Some(db.url.clone()),
        operator_token: Some(SecretString::from(OPERATOR_TOKEN)),
        http_timeout_ms: HTTP_TIMEOUT_MS,
        keystore_passphrase: Some(SecretString::from(PASSPHRASE)),
        ..Config::default()
    }
}

/// Starts a node process stand-in; its base URL, its state and its serving task.
async fn start(
    config: Config,
) -> Result<(
    String,
    app::AppState,
    tokio::task::JoinHandle<Result<(), app::AppError>>,
)> {
    let built = app::build_from_state(app::state(config).await?).await?;
    let base = format!("http://127.0.0.1:{}", built.port());
    let state = built.state().clone();
    let server = tokio::spawn(built.run_until_stopped());
    Ok((base, state, server))
}

async fn dev_chat(base: &str, text: &str, message_id: &str) -> Result<(u16, Value)> {
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/dev/chat"))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&json!({"as": PHONE, "text": text, "message_id": message_id}))
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

async fn restart_takes_over(db: TestDb) -> Result<()> {
    let dir = tempfile::tempdir()?;
    Custody::create_keystore(
        &app::keystore_path(&config(&db, dir.path())),
        &SecretString::from(PASSPHRASE),
    )?;
    // The first run of the node claims a message of the sender, then dies (it never completes the claim).
    let (_, first, first_server) = start(config(&db, dir.path())).await?;
    // Stopped for good (its workers too) before the message exists, so only the claim below can hold it.
    first.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), first_server).await???;
    let store = &db.store;
    let msg = InboundMessage {
        platform: Platform::Terminal,
        message_id: format!("{PHONE}:dead-1"),
        sender: ChatSender {
            user_key: PHONE.into(),
            address: PHONE.into(),
            phone_e164: Some(PHONE.into()),
            display_name: None,
            language_code: None,
        },
        content: InboundContent::Text {
            text: "hi".into(),
            truncated: false,
        },
        callback_query_id: None,
    };
    let inbox_id = store.insert_inbox(&msg).await?.context("stored")?;
    let claimed = store
        .claim_inbox(&first.instance.worker_id("chat"), 60_000, None)
        .await?
        .context("claimed")?;
    assert_eq!(claimed.id, inbox_id);

    // Another node (another name) must wait for the lease: the sender's next message cannot go before the first,
    // and /v1/dev/chat gives up with its documented 504 before the node's handler timeout.
    let mut other_cfg = config(&db, dir.path());
    other_cfg.node_name = Some("another-node".into());
    let (other, other_state, _) = start(other_cfg).await?;
    let t0 = Instant::now();
    let (status, body) = dev_chat(&other, "balance", "m-2").await?;
    let waited = t0.elapsed();
    assert_eq!(status, 504, "{} {body}", db.label);
    assert!(
        waited < Duration::from_millis(HTTP_TIMEOUT_MS),
        "{}: answered after {waited:?}",
        db.label
    );
    other_state.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The node restarts under its name: the dead claim is taken over at once, both messages are answered in order.
    let (second, second_state, _) = start(config(&db, dir.path())).await?;
    let t0 = Instant::now();
    // The reply may take longer than one /v1/dev/chat wait (under 2 s here) on a loaded machine: asking again with
    // the same message id is the documented way to keep waiting (the message is stored once).
    let (status, body) = loop {
        let (status, body) = dev_chat(&second, "balance", "m-2").await?;
        if status != 504 || t0.elapsed() >= Duration::from_secs(10) {
            break (status, body);
        }
    };
    assert_eq!(status, 200, "{}: {body}", db.label);
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "{}: took {:?}",
        db.label,
        t0.elapsed()
    );
    let done: String = sqlx::query_scalar("SELECT status FROM chat_inbox WHERE id = $1")
        .bind(&inbox_id)
        .fetch_one(store.pool())
        .await?;
    assert_eq!(done, "done", "{}", db.label);
    let attempts: i64 = sqlx::query_scalar("SELECT attempts FROM chat_inbox WHERE id = $1")
        .bind(&inbox_id)
        .fetch_one(store.pool())
        .await?;
    assert_eq!(
        attempts, 2,
        "{}: the dead claim, then the restarted node's",
        db.label
    );
    second_state.shutdown.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_takes_its_dead_chat_claims_over_at_once() -> Result<()> {
    for db in all_dbs().await? {
        restart_takes_over(db).await?;
    }
    Ok(())
}

#[test]
fn dev_chat_wait_is_shorter_than_the_handler_timeout() {
    use remesa::chat::service::ServiceOptions;
    for timeout_ms in [100u64, 1_000, 2_000, 15_000, 60_000] {
        let wait = ServiceOptions::dev_chat_wait_for(timeout_ms);
        assert!(wait < Duration::from_millis(timeout_ms), "{timeout_ms}: {wait:?}");
        assert!(wait <= Duration::from_secs(20));
        assert!(wait >= Duration::from_millis(timeout_ms * 3 / 4).min(Duration::from_secs(20)));
    }
}
