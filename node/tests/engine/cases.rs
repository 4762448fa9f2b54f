//! Error resolution on both databases: a sender opens one case per transfer within 180 days, the operator sees it
//! with its due date and resolves it once; both are compliance events.

use remesa::engine::EngineError;
use remesa::engine::cases::CaseResolution;
use remesa_testkit::{both_dbs, rid};

use crate::helpers::TestEnv;

async fn cases_flow(t: TestEnv) {
    t.partner(1, "7.65", "1", 0).await;
    let u = t.user("sender").await;
    t.fund(&u.address, 100_000_000).await;
    let r = t
        .send_cash(&u.id, "10", "Maria Lopez", "k-1")
        .await
        .expect("create");

    let stranger = t.engine.open_case("someone-else", &rid(&r.id), "not mine").await;
    assert!(matches!(stranger, Err(EngineError::NotFound(_))), "{stranger:?}");
    let (case, created) = t
        .engine
        .open_case(&u.id, &rid(&r.id), "Maria says she got 700 GTQ, not 765")
        .await
        .expect("opened");
    assert!(created);
    assert_eq!(case.status, "open");
    let days = (case.answer_due_unix_ms - case.opened_at_unix_ms) / 86_400_000;
    assert_eq!(days, 90);
    let (again, created) = t
        .engine
        .open_case(&u.id, &rid(&r.id), "again")
        .await
        .expect("again");
    assert_eq!(
        (again.id.as_str(), created),
        (case.id.as_str(), false),
        "one open case per transfer"
    );

    let queue = t.engine.open_cases(10).await.expect("queue");
    assert_eq!(queue.len(), 1);
    let answer = CaseResolution {
        reviewer: "ops@remesa".into(),
        resolution: "The partner paid 765 GTQ; its receipt was sent to you.".into(),
    };
    let resolved = t.engine.resolve_case(&case.id, &answer).await.expect("resolved");
    assert_eq!(
        (resolved.status.as_str(), resolved.resolved_by.as_deref()),
        ("resolved", Some("ops@remesa"))
    );
    let twice = t.engine.resolve_case(&case.id, &answer).await;
    assert!(matches!(twice, Err(EngineError::Conflict(_))), "{twice:?}");
    assert!(t.engine.open_cases(10).await.expect("queue").is_empty());
    let kinds: Vec<String> = remesa::store::compliance::page(&t.db.db.pool, None, 100)
        .await
        .expect("events")
        .into_iter()
        .filter(|e| e.subject == r.id)
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, vec!["error_case_opened", "error_case_resolved"]);

    // 181 days later the period to report an error is over (the row aged in place).
    let mut tx = t.db.db.begin().await.expect("begin");
    sqlx::query("UPDATE remittances SET created_at_unix_ms = created_at_unix_ms - $1 WHERE id = $2")
        .bind(181_i64 * 86_400_000)
        .bind(&r.id)
        .execute(&mut *tx)
        .await
        .expect("age");
    tx.commit().await.expect("commit");
    let late = t.engine.open_case(&u.id, &rid(&r.id), "too late").await;
    assert!(matches!(late, Err(EngineError::Conflict(_))), "{late:?}");
}
both_dbs!(
    a_sender_opens_one_case_per_transfer_and_the_operator_resolves_it,
    cases_flow
);
