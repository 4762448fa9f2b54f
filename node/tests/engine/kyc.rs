//! Customers and KYC tiers on both databases: fields parsed and collected until a tier is complete; tier 1 granted
//! at once when the name screens clear (and the higher limits apply in the next send), held for an operator when it
//! does not; tier 2 always decided by an operator (approve, reject, ask again); every step a compliance event.

use std::collections::BTreeMap;

use remesa::config::compliance::{LimitRule, parse_limits};
use remesa::domain::{KycField, KycStatus};
use remesa::engine::customers::{KycAction, KycDecision, KycSubmission};
use remesa::engine::screening::ListUpload;
use remesa::engine::{EngineConfig, EngineError};
use remesa_testkit::{FromTestDb, TestDb, both_dbs};

use crate::helpers::TestEnv;

/// Tier 0: 50 USD per transfer; tier 1: 500; tier 2: 5,000.
struct Tiered(TestEnv);

impl FromTestDb for Tiered {
    async fn from_test_db(db: TestDb) -> Self {
        let rule = |tier: u8, tx: &str| LimitRule {
            tier,
            country: "*".into(),
            per_tx_usd: Some(tx.into()),
            per_day_usd: None,
            per_30d_usd: None,
        };
        let limits = parse_limits(&[rule(0, "50"), rule(1, "500"), rule(2, "5000")]).expect("rules");
        Tiered(TestEnv::with_config(
            db,
            EngineConfig {
                limits,
                ..EngineConfig::default()
            },
        ))
    }
}

fn fields(pairs: &[(KycField, &str)]) -> KycSubmission {
    KycSubmission {
        tier: 1,
        fields: pairs
            .iter()
            .map(|(f, v)| (*f, (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn decision(action: KycAction, reason: &str, fields: &[KycField]) -> KycDecision {
    KycDecision {
        action,
        reviewer: "luis@compliance".into(),
        reason: reason.into(),
        fields: fields.to_vec(),
    }
}

async fn kinds_of(t: &TestEnv, subject: &str) -> Vec<(String, String)> {
    remesa::store::compliance::page(&t.db.db.pool, None, 100)
        .await
        .expect("events")
        .into_iter()
        .filter(|e| e.subject == subject)
        .map(|e| (e.kind, e.actor))
        .collect()
}

async fn tier_one_at_once(Tiered(t): Tiered) {
    t.partner(1, "7.65", "1", 0).await;
    let u = t.user("sender").await;
    t.fund(&u.address, 1_000_000_000).await;

    let c = t.engine.customer(&u.id).await.expect("customer");
    assert_eq!(
        (c.tier, c.status, c.requested_tier),
        (0, KycStatus::Accepted, None)
    );
    assert_eq!(
        c.missing,
        vec![
            KycField::FullName,
            KycField::BirthDate,
            KycField::Address,
            KycField::IdType,
            KycField::IdNumber
        ]
    );
    assert!(matches!(
        t.send_cash(&u.id, "100", "Ana Gomez", "k-1").await,
        Err(EngineError::LimitExceeded { .. })
    ));

    // Step by step: what is given is kept, what is missing is named; a bad value names its field.
    let bad = t
        .engine
        .submit_kyc(&u.id, fields(&[(KycField::BirthDate, "31/02/1990")]), "chat")
        .await;
    assert!(
        matches!(&bad, Err(EngineError::Invalid(m)) if m.starts_with("birth_date")),
        "{bad:?}"
    );
    let c = t
        .engine
        .submit_kyc(
            &u.id,
            fields(&[
                (KycField::FullName, "María  López"),
                (KycField::BirthDate, "25/04/1990"),
            ]),
            "chat",
        )
        .await
        .expect("partial");
    assert_eq!((c.tier, c.status), (0, KycStatus::NeedsInfo));
    assert_eq!(
        c.missing,
        vec![KycField::Address, KycField::IdType, KycField::IdNumber]
    );
    assert_eq!(
        c.fields.get(&KycField::BirthDate).map(String::as_str),
        Some("1990-04-25")
    );

    let c = t
        .engine
        .submit_kyc(
            &u.id,
            fields(&[
                (KycField::Address, "4a Calle 5-20, Zona 1, Guatemala"),
                (KycField::IdType, "DPI"),
                (KycField::IdNumber, "2456 78901 0101"),
            ]),
            "chat",
        )
        .await
        .expect("complete");
    assert_eq!((c.tier, c.status), (1, KycStatus::Accepted));
    assert_eq!(c.missing, vec![KycField::DocumentRef], "tier 2 needs a document");
    // The tier's limits apply to the next send.
    t.send_cash(&u.id, "100", "Ana Gomez", "k-2")
        .await
        .expect("tier 1 sends 100");
    let again = t.engine.submit_kyc(&u.id, fields(&[]), "chat").await;
    assert!(matches!(again, Err(EngineError::Conflict(_))), "{again:?}");
    assert_eq!(
        kinds_of(&t, &u.id).await,
        vec![
            ("kyc_submitted".to_owned(), "chat".to_owned()),
            ("kyc_accepted".to_owned(), "chat".to_owned()),
            ("tier_changed".to_owned(), "engine".to_owned()),
        ]
    );
}
both_dbs!(
    complete_tier_one_fields_that_screen_clear_raise_the_limits_at_once,
    tier_one_at_once
);

async fn operator_decides(Tiered(t): Tiered) {
    let u = t.user("sender").await;
    let listed = t.user("listed").await;
    let list = ListUpload::OfacCsv {
        sdn_csv:
            "7001,\"GUZMAN LOERA, Joaquin\",\"individual\",\"SDNTK\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,\
                  \"DOB 04 Apr 1957.\"\r\n"
                .into(),
        alt_csv: String::new(),
        add_csv: String::new(),
        list_date: None,
    };
    t.engine
        .load_sanctions_list(list.parse().expect("list"), "test")
        .await
        .expect("load");
    let tier1 = |name: &str| {
        fields(&[
            (KycField::FullName, name),
            (KycField::BirthDate, "1957-04-04"),
            (KycField::Address, "Culiacan, Sinaloa"),
            (KycField::IdType, "INE"),
            (KycField::IdNumber, "GULJ570404"),
        ])
    };

    // A listed name with its year of birth: held for an operator, who rejects it; the tier stays 0.
    let c = t
        .engine
        .submit_kyc(&listed.id, tier1("Joaquín Guzmán Loera"), "chat")
        .await
        .expect("submitted");
    assert_eq!((c.tier, c.status), (0, KycStatus::Processing));
    let queue = t.engine.kyc_review_queue(10).await.expect("queue");
    assert_eq!(
        queue.iter().map(|c| c.user_id.as_str()).collect::<Vec<_>>(),
        vec![listed.id.as_str()]
    );
    let busy = t
        .engine
        .submit_kyc(&listed.id, tier1("Joaquin Guzman"), "chat")
        .await;
    assert!(
        matches!(busy, Err(EngineError::Conflict(_))),
        "under review: {busy:?}"
    );
    let c = t
        .engine
        .decide_kyc(&listed.id, &decision(KycAction::Reject, "true match", &[]))
        .await
        .expect("rejected");
    assert_eq!(
        (c.tier, c.status, c.note.as_deref()),
        (0, KycStatus::Rejected, Some("true match"))
    );
    let twice = t
        .engine
        .decide_kyc(&listed.id, &decision(KycAction::Approve, "oops", &[]))
        .await;
    assert!(matches!(twice, Err(EngineError::Conflict(_))), "{twice:?}");

    // Tier 2 in one go (the operator enters a document reference checked at a branch): always an operator's call.
    let mut sub = tier1("Maria Lopez");
    sub.tier = 2;
    sub.fields
        .insert(KycField::DocumentRef, "branch-7/scan-0042".into());
    let c = t.engine.submit_kyc(&u.id, sub, "operator").await.expect("tier 2");
    assert_eq!(
        (c.tier, c.status, c.requested_tier),
        (0, KycStatus::Processing, Some(2))
    );
    let c = t
        .engine
        .decide_kyc(
            &u.id,
            &decision(
                KycAction::RequestInfo,
                "the scan is unreadable",
                &[KycField::DocumentRef],
            ),
        )
        .await
        .expect("needs info");
    assert_eq!(
        (c.status, c.missing.clone()),
        (KycStatus::NeedsInfo, vec![KycField::DocumentRef])
    );
    let approve_early = t
        .engine
        .decide_kyc(&u.id, &decision(KycAction::Approve, "ok", &[]))
        .await;
    assert!(
        matches!(approve_early, Err(EngineError::Conflict(_))),
        "{approve_early:?}"
    );
    let c = t
        .engine
        .submit_kyc(
            &u.id,
            KycSubmission {
                tier: 2,
                fields: [(KycField::DocumentRef, "branch-7/scan-0043".to_owned())].into(),
            },
            "operator",
        )
        .await
        .expect("again");
    assert_eq!(c.status, KycStatus::Processing);
    let c = t
        .engine
        .decide_kyc(
            &u.id,
            &decision(KycAction::Approve, "passport checked at branch 7", &[]),
        )
        .await
        .expect("approved");
    assert_eq!((c.tier, c.status), (2, KycStatus::Accepted));
    let kinds: Vec<String> = kinds_of(&t, &u.id).await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        kinds,
        vec![
            "kyc_submitted",
            "kyc_needs_info",
            "kyc_submitted",
            "kyc_accepted",
            "tier_changed"
        ]
    );
    let nobody = t.engine.customer("no-such-user").await;
    assert!(matches!(nobody, Err(EngineError::NotFound(_))), "{nobody:?}");
}
both_dbs!(operators_decide_held_and_tier_two_requests, operator_decides);

/// A corridor where the recipient, too, must be a verified customer.
struct RecipientKyc(TestEnv);

impl FromTestDb for RecipientKyc {
    async fn from_test_db(db: TestDb) -> Self {
        RecipientKyc(TestEnv::with_config(
            db,
            EngineConfig {
                kyc_recipient_countries: vec!["GT".into()],
                ..EngineConfig::default()
            },
        ))
    }
}

async fn recipient_kyc(RecipientKyc(t): RecipientKyc) {
    t.partner(1, "7.65", "1", 0).await;
    let u = t.user("sender").await;
    t.fund(&u.address, 100_000_000).await;
    // `send` pays +50255550101: unknown to Remesa, so refused, naming the phone and the corridor.
    match t.send_cash(&u.id, "20", "Ana Gomez", "r-1").await {
        Err(EngineError::RecipientKycRequired { phone, country }) => {
            assert_eq!((phone.as_str(), country.as_str()), ("+50255550101", "GT"))
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let recipient = t
        .engine
        .register_user(remesa::engine::NewUser {
            channel: "whatsapp".into(),
            external_id: "50255550101".into(),
            phone: Some(remesa_testkit::phone("+50255550101")),
            ..remesa::engine::NewUser::default()
        })
        .await
        .expect("recipient")
        .0;
    assert!(matches!(
        t.send_cash(&u.id, "20", "Ana Gomez", "r-2").await,
        Err(EngineError::RecipientKycRequired { .. })
    ));
    t.engine
        .submit_kyc(
            &recipient.id,
            fields(&[
                (KycField::FullName, "Ana Gomez"),
                (KycField::BirthDate, "1995-01-01"),
                (KycField::Address, "Zona 10, Guatemala"),
                (KycField::IdType, "DPI"),
                (KycField::IdNumber, "1234567890101"),
            ]),
            "chat",
        )
        .await
        .expect("verified");
    t.send_cash(&u.id, "20", "Ana Gomez", "r-3")
        .await
        .expect("a verified recipient");
}
both_dbs!(
    a_recipient_kyc_corridor_pays_only_verified_recipients,
    recipient_kyc
);
