//! Sanctions screening in the engine, on both databases: a hit holds the remittance off chain with nothing signed
//! or queued; the operator's release signs afresh and queues the deposit, a rejection cancels; every step is a
//! compliance event; lists are stored, so a second engine on the same database screens with them.

use remesa::domain::RemittanceId;
use remesa::engine::screening::{HoldDecision, ListUpload};
use remesa::engine::{Engine, EngineConfig, EngineError, Remittance, State};
use remesa_testkit::{FromTestDb, TestDb, both_dbs};

use crate::helpers::TestEnv;

/// A small list in OFAC's formats: one individual with an alias, one entity.
fn ofac() -> ListUpload {
    ListUpload::OfacCsv {
        sdn_csv: "7001,\"GUZMAN LOERA, Joaquin\",\"individual\",\"SDNTK\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,\
                  \"DOB 04 Apr 1957.\"\r\n7002,\"DEMO TRADING HOUSE LLC\",-0- ,\"SDGT\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,\
                  -0- ,-0- \r\n"
            .into(),
        alt_csv: "7001,701,\"aka\",\"EL CHAPO\",-0- \r\n".into(),
        add_csv: "7001,801,-0- ,\"Culiacan\",\"Mexico\",-0- \r\n".into(),
        list_date: Some("2026-12-01".into()),
    }
}

async fn load_list(engine: &Engine) {
    let parsed = ofac().parse().expect("the list parses");
    let meta = engine.load_sanctions_list(parsed, "test").await.expect("loaded");
    assert_eq!((meta.source.as_str(), meta.entries), ("ofac_sdn", 2));
}

async fn named_sender(t: &TestEnv, name: &str) -> remesa::engine::User {
    t.partner(1, "7.65", "1", 0).await;
    let u = t.user("sender").await;
    t.engine.set_user_name(&u.id, name).await.expect("name");
    t.fund(&u.address, 1_000_000_000).await;
    u
}

fn decision(reason: &str) -> HoldDecision {
    HoldDecision {
        reviewer: "ana@compliance".into(),
        reason: reason.into(),
    }
}

fn rid(r: &Remittance) -> RemittanceId {
    RemittanceId::parse(&r.id).expect("id")
}

async fn kinds(t: &TestEnv) -> Vec<(String, String, String)> {
    remesa::store::compliance::page(&t.db.db.pool, None, 100)
        .await
        .expect("events")
        .into_iter()
        .map(|e| (e.kind, e.subject, e.reason))
        .collect()
}

async fn held_then_released(t: TestEnv) {
    load_list(&t.engine).await;
    let u = named_sender(&t, "Maria Fernanda Lopez").await;

    // A clear send goes on at once, and its screen is recorded.
    let clear = t
        .send_cash(&u.id, "40", "Ana Gomez", "k-clear")
        .await
        .expect("clear");
    assert_eq!(clear.state, State::PendingFunds);
    assert_eq!(t.job_count("deposit", &clear.id).await, 1);

    // A listed recipient (other word order, accents): held, nothing signed or queued.
    let held = t
        .send_cash(&u.id, "40", "Joaquín Guzmán Loera", "k-held")
        .await
        .expect("held");
    assert_eq!(held.state, State::OnHold);
    assert_eq!(t.job_count("deposit", &held.id).await, 0);
    assert_eq!(t.states(&held.id).await, vec!["quoted", "on_hold"]);
    // The event feed says only that it is under review: no list, entry or name.
    let history = t.engine.history(&rid(&held)).await.expect("history");
    let detail = history.last().expect("hold").detail.to_string();
    assert!(
        !detail.to_lowercase().contains("guzman") && !detail.contains("7001"),
        "{detail}"
    );

    // The review queue shows the matched entry and score.
    let queue = t.engine.held_remittances(10).await.expect("queue");
    assert_eq!(queue.len(), 1);
    let hit = &queue[0].hits[0];
    assert_eq!((hit.entry_id.as_str(), hit.source.as_str()), ("7001", "ofac_sdn"));
    assert!(
        hit.score >= 0.91 && hit.matched_name == "GUZMAN LOERA, Joaquin",
        "{hit:?}"
    );

    // Nothing is left to the sender to sign while held, and a held remittance is not funded by a late signature.
    let again = t.engine.release_hold(&rid(&clear), &decision("not held")).await;
    assert!(matches!(again, Err(EngineError::Conflict(_))), "{again:?}");
    let bad = t.engine.release_hold(&rid(&held), &decision("  ")).await;
    assert!(matches!(bad, Err(EngineError::Invalid(_))), "{bad:?}");

    // Released: a fresh authorization, the deposit queued.
    let released = t
        .engine
        .release_hold(&rid(&held), &decision("same name, other person: DOB 1990"))
        .await
        .expect("released");
    assert_eq!(released.state, State::PendingFunds);
    assert_eq!(t.job_count("deposit", &held.id).await, 1);
    assert_eq!(
        t.states(&held.id).await,
        vec!["quoted", "on_hold", "quoted", "pending_funds"]
    );
    assert!(t.engine.held_remittances(10).await.expect("queue").is_empty());

    let events = kinds(&t).await;
    let of_held: Vec<(&str, &str)> = events
        .iter()
        .filter(|(_, s, _)| *s == held.id)
        .map(|(k, _, r)| (k.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        of_held,
        vec![
            ("screened", "hit"),
            ("held", "sanctions screening hit"),
            ("hold_released", "same name, other person: DOB 1990"),
        ]
    );
    assert!(
        events
            .iter()
            .any(|(k, s, r)| k == "screened" && *s == clear.id && r == "clear")
    );
    assert!(
        events
            .iter()
            .any(|(k, s, r)| k == "customer_screened" && *s == u.id && r == "clear")
    );
    assert_eq!(t.ledger_ok().await, 0);
}
both_dbs!(a_hit_holds_until_the_operator_releases_it, held_then_released);

async fn held_then_rejected(t: TestEnv) {
    load_list(&t.engine).await;
    // The sender is the listed one, by an alias.
    let u = named_sender(&t, "El Chapo").await;
    let customer = kinds(&t).await;
    assert!(
        customer
            .iter()
            .any(|(k, s, r)| k == "customer_screened" && *s == u.id && r == "hit")
    );

    let held = t.send_cash(&u.id, "40", "Ana Gomez", "k-1").await.expect("held");
    assert_eq!(held.state, State::OnHold);
    let rejected = t
        .engine
        .reject_hold(&rid(&held), &decision("true match"))
        .await
        .expect("rejected");
    assert_eq!(rejected.state, State::Cancelled);
    assert_eq!(t.job_count("deposit", &held.id).await, 0);
    let history = t.engine.history(&rid(&held)).await.expect("history");
    assert_eq!(history.last().map(|e| e.cause.as_str()), Some("hold_rejected"));
    let twice = t.engine.reject_hold(&rid(&held), &decision("again")).await;
    assert!(matches!(twice, Err(EngineError::Conflict(_))), "{twice:?}");
    assert!(
        kinds(&t)
            .await
            .iter()
            .any(|(k, s, r)| k == "hold_rejected" && *s == held.id && r == "true match")
    );

    // A held remittance the operator never decides on expires with the remittance, and the sender can cancel one.
    let second = t.send_cash(&u.id, "40", "Ana Gomez", "k-2").await.expect("held");
    let third = t.send_cash(&u.id, "40", "Ana Gomez", "k-3").await.expect("held");
    let cancelled = t.engine.cancel(&rid(&third), Some(&u.id)).await.expect("cancel");
    assert_eq!(cancelled.state, State::Cancelled);
    let far = u64::try_from(remesa::store::now_ms() / 1000).expect("now") + 10 * 24 * 3600;
    assert_eq!(t.engine.expire_stale(far, 100).await.expect("sweep"), 1);
    let history = t.engine.history(&rid(&second)).await.expect("history");
    assert_eq!(
        history.last().map(|e| (e.to, e.cause.as_str())),
        Some((State::Expired, "hold_expired"))
    );
}
both_dbs!(
    a_rejected_hold_is_cancelled_and_an_undecided_one_expires,
    held_then_rejected
);

/// Screening required: no list, no sends; no sender name, no sends.
struct Required(TestEnv);

impl FromTestDb for Required {
    async fn from_test_db(db: TestDb) -> Self {
        Required(TestEnv::with_config(
            db,
            EngineConfig {
                sanctions_required: true,
                ..EngineConfig::default()
            },
        ))
    }
}

async fn required(Required(t): Required) {
    t.partner(1, "7.65", "1", 0).await;
    let u = t.user("sender").await;
    t.fund(&u.address, 1_000_000_000).await;
    let status = t.engine.sanctions_status();
    assert_eq!(
        (status.state.as_str(), status.lists.len()),
        ("required_not_loaded", 0)
    );
    let no_list = t.send_cash(&u.id, "40", "Ana Gomez", "k-1").await;
    assert!(matches!(no_list, Err(EngineError::Unavailable(_))), "{no_list:?}");

    // Another engine on the same database loads the list; this one picks it up when it refreshes.
    let other = Engine::new(
        t.db.db.clone(),
        EngineConfig::default(),
        Some(crate::helpers::chain_info()),
        None,
        6,
    );
    load_list(&other).await;
    assert!(t.engine.refresh_sanctions().await.expect("refresh"));
    assert!(!t.engine.refresh_sanctions().await.expect("unchanged"));
    assert_eq!(t.engine.sanctions_status().state, "loaded");

    let no_name = t.send_cash(&u.id, "40", "Ana Gomez", "k-2").await;
    assert!(
        matches!(no_name, Err(EngineError::SenderNameRequired)),
        "{no_name:?}"
    );
    t.engine.set_user_name(&u.id, "Maria Lopez").await.expect("name");
    let r = t
        .send_cash(&u.id, "40", "Ana Gomez", "k-3")
        .await
        .expect("screened and sent");
    assert_eq!(r.state, State::PendingFunds);

    // Loading the same list again changes nothing; a list that does not parse never reaches the engine.
    let before = kinds(&t).await.len();
    load_list(&t.engine).await;
    assert_eq!(kinds(&t).await.len(), before);
    let truncated = ListUpload::OfacCsv {
        sdn_csv: "7001,\"GUZMAN LOERA, Joaquin\",\"individual\"\r\n".into(),
        alt_csv: String::new(),
        add_csv: String::new(),
        list_date: None,
    };
    let e = truncated.parse().expect_err("truncated");
    assert!(e.to_string().contains("SDN.CSV line 1"), "{e}");
}
both_dbs!(
    screening_required_refuses_sends_without_a_list_or_a_name,
    required
);

#[tokio::test]
async fn a_release_needs_enough_lifetime_left_to_lock() {
    let db = TestDb::sqlite().await.expect("sqlite");
    // 3,600 s is the test escrow's shortest lock: a remittance living 3,900 s cannot wait 600 s more and lock.
    let t = TestEnv::with_config(
        db,
        EngineConfig {
            remittance_expiry_s: 3_900,
            ..EngineConfig::default()
        },
    );
    load_list(&t.engine).await;
    let u = named_sender(&t, "Maria Lopez").await;
    let held = t
        .send_cash(&u.id, "40", "Joaquin Guzman", "k-1")
        .await
        .expect("held");
    assert_eq!(held.state, State::OnHold);
    let late = t.engine.release_hold(&rid(&held), &decision("ok")).await;
    assert!(matches!(late, Err(EngineError::Conflict(_))), "{late:?}");
    let r = t
        .engine
        .reject_hold(&rid(&held), &decision("too late to lock"))
        .await;
    assert_eq!(r.expect("rejected").state, State::Cancelled);
}

/// A customer's year of birth (from KYC) tells a namesake from the listed person: the same name born in another
/// decade screens clear, born in the listed year is held.
async fn birth_years(t: TestEnv) {
    load_list(&t.engine).await;
    t.partner(1, "7.65", "1", 0).await;
    let kyc = |year: &str| remesa::engine::customers::KycSubmission {
        tier: 1,
        fields: [
            (
                remesa::domain::KycField::FullName,
                "Joaquin Guzman Loera".to_owned(),
            ),
            (remesa::domain::KycField::BirthDate, format!("{year}-04-04")),
            (remesa::domain::KycField::Address, "Calle 1, Culiacan".to_owned()),
            (remesa::domain::KycField::IdType, "INE".to_owned()),
            (remesa::domain::KycField::IdNumber, "GULJ000404".to_owned()),
        ]
        .into(),
    };
    let namesake = t.user("namesake").await;
    t.fund(&namesake.address, 100_000_000).await;
    let c = t
        .engine
        .submit_kyc(&namesake.id, kyc("1991"), "test")
        .await
        .expect("kyc");
    assert_eq!(c.tier, 1, "born 1991: not the listed person");
    let r = t
        .send_cash(&namesake.id, "40", "Ana Gomez", "k-namesake")
        .await
        .expect("send");
    assert_eq!(r.state, State::PendingFunds);

    let listed = t.user("listed").await;
    t.fund(&listed.address, 100_000_000).await;
    let c = t
        .engine
        .submit_kyc(&listed.id, kyc("1957"), "test")
        .await
        .expect("kyc");
    assert_eq!(c.status, remesa::domain::KycStatus::Processing);
    let r = t
        .send_cash(&listed.id, "40", "Ana Gomez", "k-listed")
        .await
        .expect("send");
    assert_eq!(r.state, State::OnHold);
}
both_dbs!(
    a_sender_s_birth_year_tells_a_namesake_from_the_listed_person,
    birth_years
);
