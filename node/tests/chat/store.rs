//! The chat tables on SQLite and PostgreSQL: inbox dedupe and per-user ordering, outbox dedupe and retry
//! bookkeeping, cursors that never move back.

use anyhow::Result;
use remesa::chat::model::{ChatSender, InboundContent, InboundMessage, OutboundMessage, Platform};
use remesa::chat::store::NewOutbound;

use crate::harness::all_dbs;

fn msg(user: &str, id: &str) -> InboundMessage {
    InboundMessage {
        platform: Platform::Whatsapp,
        message_id: id.to_owned(),
        sender: ChatSender {
            user_key: user.into(),
            address: user.into(),
            phone_e164: Some(format!("+{user}")),
            display_name: None,
            language_code: None,
        },
        content: InboundContent::Text {
            text: "hola".into(),
            truncated: false,
        },
        callback_query_id: None,
    }
}

#[tokio::test]
async fn inbox_outbox_and_cursors_on_both_databases() -> Result<()> {
    for db in all_dbs().await? {
        let s = &db.store;
        let label = db.label;
        assert!(s.insert_inbox(&msg("1", "a")).await?.is_some(), "{label}");
        assert!(
            s.insert_inbox(&msg("1", "a")).await?.is_none(),
            "{label}: duplicate"
        );
        assert!(s.insert_inbox(&msg("1", "b")).await?.is_some());
        assert!(s.insert_inbox(&msg("2", "c")).await?.is_some());
        // One item per user at a time, in order: worker 1 gets a, worker 2 gets c (not b, user 1 is busy).
        let first = s.claim_inbox("w1", 60_000, None).await?.expect("a");
        assert_eq!(first.message.message_id, "a", "{label}");
        let second = s.claim_inbox("w2", 60_000, None).await?.expect("c");
        assert_eq!(second.message.message_id, "c", "{label}");
        assert!(
            s.claim_inbox("w3", 60_000, None).await?.is_none(),
            "{label}: b waits for a"
        );
        let reply = NewOutbound {
            dedupe_key: "k1".into(),
            platform: Platform::Whatsapp,
            address: "1".into(),
            message: OutboundMessage::text("hi"),
            callback_query_id: None,
        };
        s.complete_inbox(&first, Some("{}"), std::slice::from_ref(&reply))
            .await?;
        assert!(!s.enqueue(&reply).await?, "{label}: outbox dedupe");
        let b = s.claim_inbox("w3", 60_000, None).await?.expect("b");
        assert_eq!(b.message.message_id, "b");
        // Failures go back to pending until the limit.
        assert!(!s.fail_inbox(&b, "boom", 300).await?);
        assert!(
            s.claim_inbox("w3", 60_000, None).await?.is_none(),
            "{label}: not before its retry time"
        );
        tokio::time::sleep(std::time::Duration::from_millis(350)).await;
        let b2 = s.claim_inbox("w3", 60_000, None).await?.expect("b again");
        assert_eq!(b2.attempts, 2);
        // The first claim is stale now: it can neither complete nor fail the item.
        assert!(
            !s.complete_inbox(&b, Some("{}"), &[]).await?,
            "{label}: stale claim fenced"
        );
        assert!(!s.fail_inbox(&b, "late", 0).await?);
        assert!(s.complete_inbox(&b2, Some("{}"), &[]).await?, "{label}");
        // Outbox claim, failure with retry delay, then sent.
        let o = s.claim_outbox("w1", 60_000).await?.expect("outbox row");
        assert!(!s.mark_failed(&o, "rate limited", Some(130429), false, 0).await?);
        let o = s.claim_outbox("w1", 60_000).await?.expect("again");
        assert_eq!(o.attempts, 2);
        s.mark_sent(&o.id, Some("wamid.x")).await?;
        s.record_delivery_status("wamid.x", "failed", Some(131047), Some("Re-engagement message"))
            .await?;
        assert_eq!(db.count("SELECT COUNT(*) FROM chat_outbox WHERE delivery_status = 'failed' AND last_error_code = 131047").await?, 1, "{label}");
        assert!(s.claim_outbox("w1", 60_000).await?.is_none());
        // Cursors only move forward.
        assert_eq!(s.cursor("x").await?, 0);
        s.advance_cursor("x", 5).await?;
        s.advance_cursor("x", 3).await?;
        assert_eq!(s.cursor("x").await?, 5, "{label}");
        // Terminal messages are fetched, not claimed by the delivery worker.
        let t = NewOutbound {
            dedupe_key: "t1".into(),
            platform: Platform::Terminal,
            address: "+1555".into(),
            message: OutboundMessage::text("hey"),
            callback_query_id: None,
        };
        s.enqueue(&t).await?;
        assert!(s.claim_outbox("w1", 60_000).await?.is_none());
        assert_eq!(s.take_terminal("+1555", None).await?.len(), 1);
        assert!(s.take_terminal("+1555", None).await?.is_empty());
    }
    Ok(())
}

/// A message whose claim expired (a dead worker, or one freed at its node's restart) still goes before the
/// sender's later messages: a later message is not claimable, even by its own id, until the earlier one is done.
#[tokio::test]
async fn an_expired_claim_keeps_its_place_in_the_conversation() -> Result<()> {
    for db in all_dbs().await? {
        let s = &db.store;
        let label = db.label;
        s.insert_inbox(&msg("1", "first")).await?.expect("stored");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let later = s.insert_inbox(&msg("1", "later")).await?.expect("stored");
        // A worker claims "first" with a lease that runs out at once, then dies.
        let dead = s.claim_inbox("dead", 1, None).await?.expect("first");
        assert_eq!(dead.message.message_id, "first", "{label}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(
            s.claim_inbox("w", 60_000, Some(&later)).await?.is_none(),
            "{label}: the later message waits for the expired earlier claim"
        );
        let again = s.claim_inbox("w", 60_000, None).await?.expect("first again");
        assert_eq!(again.message.message_id, "first", "{label}");
        assert_eq!(again.attempts, 2, "{label}");
        assert!(s.complete_inbox(&again, Some("{}"), &[]).await?, "{label}");
        let next = s.claim_inbox("w", 60_000, Some(&later)).await?.expect("later");
        assert_eq!(next.message.message_id, "later", "{label}");
    }
    Ok(())
}

/// A delivery worker whose lease ran out cannot undo what the worker that claimed the message next did: its late
/// failure report neither parks the message nor puts it back to pending (which would send it twice).
#[tokio::test]
async fn a_stale_outbox_claim_changes_nothing() -> Result<()> {
    for db in all_dbs().await? {
        let s = &db.store;
        let label = db.label;
        let reply = NewOutbound {
            dedupe_key: "stale-1".into(),
            platform: Platform::Whatsapp,
            address: "1".into(),
            message: OutboundMessage::text("hi"),
            callback_query_id: None,
        };
        assert!(s.enqueue(&reply).await?, "{label}");
        let slow = s.claim_outbox("slow", 1).await?.expect("claimed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let fresh = s.claim_outbox("fresh", 60_000).await?.expect("claimed again");
        assert_eq!(fresh.id, slow.id, "{label}");
        assert_eq!(fresh.attempts, 2, "{label}");
        assert!(
            !s.mark_failed(&slow, "late timeout", None, true, 0).await?,
            "{label}: a lost claim parks nothing"
        );
        assert!(
            !s.mark_failed(&slow, "late timeout", None, false, 0).await?,
            "{label}: a lost claim retries nothing"
        );
        s.mark_sent(&fresh.id, Some("wamid.fresh")).await?;
        assert_eq!(
            db.count("SELECT COUNT(*) FROM chat_outbox WHERE status = 'sent' AND provider_message_id = 'wamid.fresh'")
                .await?,
            1,
            "{label}"
        );
        assert!(
            s.claim_outbox("again", 60_000).await?.is_none(),
            "{label}: nothing left to send twice"
        );
    }
    Ok(())
}

/// Group commit: concurrent webhooks' messages share transactions, every insert answers with its own outcome (a
/// message sent twice in the same burst is stored once, its second insert reports the redelivery), and every
/// acknowledged message is in the table.
#[tokio::test]
async fn concurrent_inserts_share_commits_and_each_is_stored() -> Result<()> {
    for t in all_dbs().await? {
        let messages: Vec<InboundMessage> = (0..200)
            .map(|i| {
                msg(
                    &format!("1555300{:04}", i % 50),
                    &format!("wamid.group.{}", i % 150),
                )
            })
            .collect();
        let outcomes = futures::future::join_all(messages.iter().map(|m| t.store.insert_inbox(m))).await;
        let stored = outcomes.iter().filter(|o| matches!(o, Ok(Some(_)))).count();
        let repeats = outcomes.iter().filter(|o| matches!(o, Ok(None))).count();
        assert_eq!((stored, repeats), (150, 50), "{}: {outcomes:?}", t.label);
        assert_eq!(t.count("SELECT COUNT(*) FROM chat_inbox").await?, 150);
        let commits = t.store.inbox_commits();
        assert!(
            (1..=10).contains(&commits),
            "{}: 200 concurrent inserts took {commits} transactions",
            t.label
        );
    }
    Ok(())
}

/// A batch claim takes at most one message per user (each user's first undelivered one), so a worker can send the
/// whole batch at once without breaking any user's order; `enqueue_all` keeps the order it was given and moves its
/// cursor in the same transaction.
#[tokio::test]
async fn outbox_batch_claims_one_message_per_user_in_order() -> Result<()> {
    for db in all_dbs().await? {
        let s = &db.store;
        let label = db.label;
        let out = |user: &str, n: u32| NewOutbound {
            dedupe_key: format!("batch:{user}:{n}"),
            platform: Platform::Whatsapp,
            address: user.into(),
            message: OutboundMessage::text(format!("{user} #{n}")),
            callback_query_id: None,
        };
        // Three users, three messages each, queued interleaved in one transaction.
        let msgs: Vec<NewOutbound> = (1..=3)
            .flat_map(|n| ["u1", "u2", "u3"].map(|u| out(u, n)))
            .collect();
        assert_eq!(
            s.enqueue_all(&msgs, Some(("batch-cursor", 9))).await?,
            9,
            "{label}"
        );
        assert_eq!(s.enqueue_all(&msgs, None).await?, 0, "{label}: dedupe");
        assert_eq!(s.cursor("batch-cursor").await?, 9, "{label}");
        for n in 1..=3 {
            let batch = s.claim_outbox_batch("w1", 60_000, 32).await?;
            let mut got: Vec<String> = batch
                .iter()
                .map(|o| serde_json::to_string(&o.message).unwrap_or_default())
                .collect();
            got.sort();
            let want: Vec<String> = ["u1", "u2", "u3"]
                .iter()
                .map(|u| {
                    serde_json::to_string(&OutboundMessage::text(format!("{u} #{n}"))).unwrap_or_default()
                })
                .collect();
            assert_eq!(got, want, "{label}: round {n} takes each user's next message");
            // While they are in hand, nobody gets the users' later messages.
            assert!(
                s.claim_outbox_batch("w2", 60_000, 32).await?.is_empty(),
                "{label}"
            );
            let sent: Vec<(String, Option<String>)> = batch.iter().map(|o| (o.id.clone(), None)).collect();
            s.mark_sent_all(&sent).await?;
        }
        assert!(
            s.claim_outbox_batch("w1", 60_000, 32).await?.is_empty(),
            "{label}"
        );
        // The limit holds.
        let many: Vec<NewOutbound> = (0..5).map(|i| out(&format!("v{i}"), 1)).collect();
        s.enqueue_all(&many, None).await?;
        assert_eq!(s.claim_outbox_batch("w1", 60_000, 2).await?.len(), 2, "{label}");
        assert_eq!(s.claim_outbox_batch("w1", 60_000, 32).await?.len(), 3, "{label}");
    }
    Ok(())
}
