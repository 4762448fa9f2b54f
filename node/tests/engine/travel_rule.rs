//! The travel rule on both databases: at or above the corridor's threshold a send needs the sender's verified
//! identity and carries the originator's and beneficiary's data as IVMS101 to the payout partner's view (which
//! webhooks carry too); below it, nothing travels.

use remesa::config::TravelRuleConfig;
use remesa::domain::KycField;
use remesa::engine::customers::KycSubmission;
use remesa::engine::{EngineConfig, EngineError};
use remesa::partner::store::PartnerDb;
use remesa_testkit::{FromTestDb, TestDb, both_dbs};
use rust_decimal::Decimal;

use crate::helpers::TestEnv;

/// The default rule (1,000 USD), with Guatemala as a zero-threshold corridor in the second test.
struct Rule(TestEnv);

impl FromTestDb for Rule {
    async fn from_test_db(db: TestDb) -> Self {
        let rule = TravelRuleConfig {
            vasp_name: "Remesa Test Node".into(),
            ..TravelRuleConfig::default()
        };
        Rule(TestEnv::with_config(
            db,
            EngineConfig {
                travel_rule: rule.parse().expect("rule"),
                ..EngineConfig::default()
            },
        ))
    }
}

async fn verify(t: &TestEnv, user_id: &str) {
    t.engine
        .submit_kyc(
            user_id,
            KycSubmission {
                tier: 1,
                fields: [
                    (KycField::FullName, "Ana Gomez Ruiz"),
                    (KycField::BirthDate, "1985-02-11"),
                    (KycField::Address, "100 Mission St, San Francisco"),
                    (KycField::IdType, "passport"),
                    (KycField::IdNumber, "P 1234-567"),
                ]
                .into_iter()
                .map(|(f, v)| (f, v.to_owned()))
                .collect(),
            },
            "test",
        )
        .await
        .expect("tier 1");
}

async fn carried_at_the_threshold(Rule(t): Rule) {
    t.partner(1, "7.65", "1", 0).await;
    let u = t.user("sender").await;
    t.fund(&u.address, 10_000_000_000).await;

    let refused = t.send_cash(&u.id, "1000", "María José Pérez", "k-1").await;
    assert!(
        matches!(&refused, Err(EngineError::TravelRuleDataRequired { threshold_usd }) if *threshold_usd == Decimal::from(1000)),
        "{refused:?}"
    );
    let below = t
        .send_cash(&u.id, "999.99", "María José Pérez", "k-2")
        .await
        .expect("below the threshold");

    verify(&t, &u.id).await;
    let at = t
        .send_cash(&u.id, "1000", "María José Pérez", "k-3")
        .await
        .expect("verified");
    let partner = PartnerDb::new(t.db.db.clone());
    for r in [&below, &at] {
        t.deposit(
            &r.id,
            &u.address,
            u64::try_from(r.total_base_units.parse::<u128>().expect("total")).expect("u64"),
        )
        .await;
    }
    let below_view = partner
        .partner_payout(1, &below.id)
        .await
        .expect("view")
        .expect("assigned");
    assert!(below_view.travel_rule.is_none());
    let view = partner
        .partner_payout(1, &at.id)
        .await
        .expect("view")
        .expect("assigned");
    let v = serde_json::to_value(&view).expect("json");
    let tr = &v["travel_rule"];
    let person = &tr["originator"]["originatorPersons"][0]["naturalPerson"];
    assert_eq!(
        person["name"]["nameIdentifier"][0]["primaryIdentifier"], "Ruiz",
        "{tr}"
    );
    assert_eq!(
        person["name"]["nameIdentifier"][0]["secondaryIdentifier"],
        "Ana Gomez"
    );
    assert_eq!(person["nationalIdentification"]["nationalIdentifier"], "P1234567");
    assert_eq!(person["nationalIdentification"]["nationalIdentifierType"], "CCPT");
    assert_eq!(person["dateAndPlaceOfBirth"]["dateOfBirth"], "1985-02-11");
    assert_eq!(
        person["geographicAddress"][0]["country"], "US",
        "the sender's phone's country"
    );
    assert_eq!(tr["originator"]["accountNumber"][0], u.address.as_str());
    let beneficiary =
        &tr["beneficiary"]["beneficiaryPersons"][0]["naturalPerson"]["name"]["nameIdentifier"][0];
    assert_eq!(
        (
            beneficiary["primaryIdentifier"].as_str(),
            beneficiary["secondaryIdentifier"].as_str()
        ),
        (Some("Pérez"), Some("María José"))
    );
    assert_eq!(tr["beneficiary"]["accountNumber"][0], "+50255550101");
    assert_eq!(tr["originatingVASP"]["name"], "Remesa Test Node");
}
both_dbs!(
    at_the_threshold_the_originator_and_beneficiary_travel_to_the_partner,
    carried_at_the_threshold
);

/// A zero-threshold corridor (as the EU's are by default): every send carries the data.
struct ZeroInGuatemala(TestEnv);

impl FromTestDb for ZeroInGuatemala {
    async fn from_test_db(db: TestDb) -> Self {
        let rule = TravelRuleConfig {
            zero_threshold_countries: vec!["gt".into()],
            ..TravelRuleConfig::default()
        };
        ZeroInGuatemala(TestEnv::with_config(
            db,
            EngineConfig {
                travel_rule: rule.parse().expect("rule"),
                ..EngineConfig::default()
            },
        ))
    }
}

async fn zero_threshold(ZeroInGuatemala(t): ZeroInGuatemala) {
    t.partner(1, "7.65", "1", 0).await;
    let u = t.user("sender").await;
    t.fund(&u.address, 1_000_000_000).await;
    let refused = t.send_cash(&u.id, "5", "María José Pérez", "k-1").await;
    assert!(
        matches!(&refused, Err(EngineError::TravelRuleDataRequired { threshold_usd }) if threshold_usd.is_zero()),
        "{refused:?}"
    );
    verify(&t, &u.id).await;
    t.send_cash(&u.id, "5", "María José Pérez", "k-2")
        .await
        .expect("verified");
}
both_dbs!(a_zero_threshold_corridor_carries_every_send, zero_threshold);

#[test]
fn bad_configuration_is_refused_naming_the_key() {
    let bad = TravelRuleConfig {
        threshold_usd: "lots".into(),
        ..TravelRuleConfig::default()
    };
    assert!(
        bad.parse()
            .expect_err("bad")
            .contains("travel_rule.threshold_usd")
    );
    let bad = TravelRuleConfig {
        zero_threshold_countries: vec!["Europe".into()],
        ..TravelRuleConfig::default()
    };
    assert!(bad.parse().expect_err("bad").contains("Europe"));
    assert_eq!(
        TravelRuleConfig::default()
            .parse()
            .expect("default")
            .zero_threshold_countries
            .len(),
        27
    );
}
