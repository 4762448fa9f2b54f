//! Two chat services ("processes") on one database, each with its own pool and workers: every inbound message is
//! processed once and every reply sent once.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use remesa::chat::http::routes;
use remesa::chat::service::ChatService;
use remesa::chat::store::ChatStore;
use secrecy::SecretString;
use sqlx::any::AnyPoolOptions;
use tokio_util::sync::CancellationToken;

use crate::fake_engine::FakeEngine;
use crate::harness::*;

const USERS: usize = 8;
const MESSAGES_PER_USER: usize = 4;

async fn two_processes_share_the_work(db: TestDb, url: &str) -> Result<()> {
    let api = PlatformApi::start().await?;
    let engine = Arc::new(FakeEngine::default());
    let shutdown = CancellationToken::new();
    let mut bases = Vec::new();
    for _ in 0..2 {
        let pool = AnyPoolOptions::new().max_connections(4).connect(url).await?;
        let store = ChatStore::new(remesa::store::Db::detect(pool).await?);
        let svc = ChatService::new(
            &chat_config(&api),
            store,
            engine.clone(),
            Some(SecretString::from(OPERATOR_TOKEN)),
        );
        svc.spawn_workers(shutdown.clone());
        bases.push(serve(routes(svc)).await?);
    }
    let http = reqwest::Client::new();
    for m in 0..MESSAGES_PER_USER {
        for u in 0..USERS {
            let from = format!("1555000{u:04}");
            let body = wa_text(
                &from,
                &format!("wamid.{u}.{m}"),
                if m == 0 { "hi" } else { "help" },
            );
            // Each delivery goes to both processes (a retried webhook landing elsewhere).
            for base in &bases {
                assert_eq!(post_whatsapp(&http, base, &body, Some(APP_SECRET)).await?, 200);
            }
        }
    }
    let expected = USERS * MESSAGES_PER_USER;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while db
        .count("SELECT COUNT(*) FROM chat_outbox WHERE status = 'sent'")
        .await?
        < i64::try_from(expected)?
    {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{} label: not all sent",
            db.label
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.cancel();
    assert_eq!(
        db.count("SELECT COUNT(*) FROM chat_inbox").await?,
        i64::try_from(expected)?,
        "{}",
        db.label
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM chat_inbox WHERE status = 'done' AND attempts = 1")
            .await?,
        i64::try_from(expected)?,
        "{}",
        db.label
    );
    let sends = api
        .sent()
        .into_iter()
        .filter(|s| s.path.ends_with("/messages"))
        .count();
    assert_eq!(sends, expected, "{}: one reply per message, sent once", db.label);
    // Per user, replies went out in message order: welcome first, then the help texts.
    for u in 0..USERS {
        let to = format!("1555000{u:04}");
        let texts = api.whatsapp_to(&to);
        assert_eq!(texts.len(), MESSAGES_PER_USER);
        assert!(texts[0].0.contains("Welcome"), "{}: {texts:?}", db.label);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_sqlite_and_postgres() -> Result<()> {
    let db = sqlite().await?;
    let url = db.url.clone();
    two_processes_share_the_work(db, &url).await?;
    if let Some(db) = postgres().await? {
        let url = db.url.clone();
        two_processes_share_the_work(db, &url).await?;
    }
    Ok(())
}
