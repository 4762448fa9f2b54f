//! `remesa-bench sanctions`: screening latency on a synthetic list in OFAC's CSV formats (the real lists cannot be
//! downloaded here), with the recall and false-positive rate of the same run. Prints the figures; asserts nothing.

use std::time::Instant;

use hdrhistogram::Histogram;
use remesa::domain::sanctions::{DEFAULT_THRESHOLD, SanctionsList, Subject, parse_ofac};
use remesa_testkit::sanctions::{synthetic_ofac, unlisted_names, variants};

/// Screens `variants_n` spelling variants of listed names and `unlisted_n` unlisted names against `entries` list
/// entries; prints load time, latency percentiles, recall and false positives.
pub fn run(entries: usize, variants_n: usize, unlisted_n: usize) -> anyhow::Result<()> {
    let list = synthetic_ofac(7, entries);
    let started = Instant::now();
    let parsed = parse_ofac(&list.sdn_csv, &list.alt_csv, &list.add_csv)?;
    let screener = SanctionsList::new(parsed);
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let vs = variants(&list, 11, variants_n);
    let unlisted = unlisted_names(&list, 13, unlisted_n);
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut screen = |name: &str| {
        let t = Instant::now();
        let hits = screener.screen(
            Subject {
                name,
                birth_year: None,
                country: None,
            },
            DEFAULT_THRESHOLD,
        );
        let _ = h.record(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1));
        hits
    };
    let mut found = 0usize;
    for (name, ent_num, _) in &vs {
        if screen(name).iter().any(|hit| hit.entry_id == ent_num.to_string()) {
            found += 1;
        }
    }
    let flagged = unlisted.iter().filter(|n| !screen(n).is_empty()).count();
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
    println!(
        "sanctions screening: {} entries ({} names) loaded in {load_ms:.0} ms; {} screens: p50 {:.1} µs, p99 {:.1} µs, \
         max {:.1} µs; recall {:.3} on {} variants; false positives {:.4} on {} unlisted names (threshold {DEFAULT_THRESHOLD})",
        screener.len(),
        screener.entries().iter().map(|e| e.names.len()).sum::<usize>(),
        h.len(),
        us(0.5),
        us(0.99),
        h.max() as f64 / 1e3,
        found as f64 / vs.len().max(1) as f64,
        vs.len(),
        flagged as f64 / unlisted.len().max(1) as f64,
        unlisted.len()
    );
    Ok(())
}
