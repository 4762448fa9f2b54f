//! `/v1/partner/agents`: a partner creates, lists, disables and enables its counter agents through the signed API;
//! another partner neither sees nor touches them; the password is never echoed and is stored only as a hash.

use remesa::domain::account::Username;
use reqwest::Method;
use serde_json::json;

use crate::api::{call, client, start_node};
use remesa_testkit::TestDb;

async fn agents_flow(t: TestDb) {
    let node = start_node(&t, None).await;
    let a = client(&node, 1, 0xA1);
    let b = client(&node, 2, 0xB2);
    let new =
        json!({"username": "Ana.Lopez", "display_name": "Ana López", "password": "her own long passphrase"});

    let (s, agent) = call(
        &a,
        Method::POST,
        "/v1/partner/agents",
        Some(new.clone()),
        Some("agent-1"),
    )
    .await;
    assert_eq!(s, 201, "{agent}");
    assert_eq!(agent["username"], "ana.lopez");
    assert_eq!(agent["active"], true);
    assert!(!agent.to_string().contains("passphrase"));
    // the same Idempotency-Key and body: the same answer, no second account
    let (s, again) = call(
        &a,
        Method::POST,
        "/v1/partner/agents",
        Some(new.clone()),
        Some("agent-1"),
    )
    .await;
    assert_eq!((s, &again), (201, &agent));
    // the username is the node's, across partners
    let (s, _) = call(&b, Method::POST, "/v1/partner/agents", Some(new), None).await;
    assert_eq!(s, 409);

    // refused input: a short password, a username with a space, an empty name
    for bad in [
        json!({"username": "luis", "display_name": "Luis", "password": "short"}),
        json!({"username": "luis perez", "display_name": "Luis", "password": "a long enough password"}),
        json!({"username": "luis", "display_name": " ", "password": "a long enough password"}),
    ] {
        let (s, p) = call(&a, Method::POST, "/v1/partner/agents", Some(bad), None).await;
        assert_eq!(s, 422, "{p}");
    }

    let (s, list) = call(&a, Method::GET, "/v1/partner/agents", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    let (_, other) = call(&b, Method::GET, "/v1/partner/agents", None, None).await;
    assert_eq!(other["items"], json!([]));

    // another partner cannot disable it; its own partner can, and enable it again
    let (s, _) = call(
        &b,
        Method::POST,
        "/v1/partner/agents/ana.lopez/disable",
        None,
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, off) = call(
        &a,
        Method::POST,
        "/v1/partner/agents/ana.lopez/disable",
        None,
        None,
    )
    .await;
    assert_eq!((s, &off["active"]), (200, &json!(false)));
    let ana = Username::parse("ana.lopez").unwrap();
    assert_eq!(
        node.engine.account(&ana).await.unwrap().map(|a| a.active),
        Some(false)
    );
    let (s, on) = call(
        &a,
        Method::POST,
        "/v1/partner/agents/ana.lopez/enable",
        None,
        None,
    )
    .await;
    assert_eq!((s, &on["active"]), (200, &json!(true)));
    let (s, _) = call(
        &a,
        Method::POST,
        "/v1/partner/agents/nobody.here/disable",
        None,
        None,
    )
    .await;
    assert_eq!(s, 404);

    // stored as an argon2id hash only
    let (hash,): (String,) =
        sqlx::query_as("SELECT password_hash FROM console_accounts WHERE username = 'ana.lopez'")
            .fetch_one(&t.db.pool)
            .await
            .unwrap();
    assert!(
        hash.starts_with("$argon2id$") && !hash.contains("passphrase"),
        "{hash}"
    );
    node.cancel.cancel();
}

#[tokio::test]
async fn partner_agents_on_sqlite() {
    agents_flow(TestDb::sqlite().await.unwrap()).await;
}

#[tokio::test]
async fn partner_agents_on_postgres() {
    if let Some(t) = TestDb::postgres().await {
        agents_flow(t).await;
    }
}
