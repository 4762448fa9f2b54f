//! Screening quality on a synthetic 20,000-entry list in OFAC's CSV formats: recall on spelling variants of listed
//! names (accents, word order, missing names, transliterations, aliases, typos) and false positives on unlisted
//! names. Timing is a benchmark (`remesa-bench sanctions`), not a test.

use remesa::domain::sanctions::{DEFAULT_THRESHOLD, SanctionsList, Subject, parse_ofac};
use remesa_testkit::sanctions::{VARIATIONS, synthetic_ofac, unlisted_names, variants};

#[test]
fn recall_and_false_positives_on_twenty_thousand_entries() {
    let list = synthetic_ofac(7, 20_000);
    let entries = parse_ofac(&list.sdn_csv, &list.alt_csv, &list.add_csv).expect("the generated files parse");
    assert_eq!(entries.len(), 20_000);
    let screener = SanctionsList::new(entries);
    let screen = |name: &str| {
        screener.screen(
            Subject {
                name,
                birth_year: None,
                country: None,
            },
            DEFAULT_THRESHOLD,
        )
    };

    let vs = variants(&list, 11, 400);
    let mut missed = Vec::new();
    for (name, ent_num, kind) in &vs {
        if !screen(name).iter().any(|h| h.entry_id == ent_num.to_string()) {
            missed.push((name.clone(), *kind));
        }
    }
    let recall = 1.0 - missed.len() as f64 / vs.len() as f64;
    let mut by_kind = String::new();
    for k in VARIATIONS {
        let n = missed.iter().filter(|(_, m)| m == k).count();
        by_kind.push_str(&format!("{k}: {n} missed; "));
    }
    println!("recall {recall:.3} on {} variants ({by_kind})", vs.len());

    let unlisted = unlisted_names(&list, 13, 2_500);
    let flagged: Vec<&String> = unlisted.iter().filter(|n| !screen(n).is_empty()).collect();
    let fp = flagged.len() as f64 / unlisted.len() as f64;
    println!("false positives {fp:.4} on {} unlisted names", unlisted.len());
    assert!(
        recall >= 0.95,
        "recall {recall:.3}; missed {:?}",
        &missed[..missed.len().min(20)]
    );
    assert!(
        fp <= 0.01,
        "false positives {fp:.4}: {:?}",
        &flagged[..flagged.len().min(20)]
    );
}
