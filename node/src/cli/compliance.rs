//! `remesa compliance export`: every compliance event (append-only: limit refusals today; screening results, tier
//! changes and holds as they are added) as CSV, oldest first, for the operator's records and regulators.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::config::Config;
use crate::store::compliance;

/// Events read per database query.
const PAGE: i64 = 1_000;

/// Writes the CSV to `out` (or stdout); returns the number of events.
pub async fn export(config: Config, out: Option<&Path>) -> anyhow::Result<u64> {
    let db = crate::store::Db::connect(&config.database_url(), 2).await?;
    db.migrate().await?;
    let sink: Box<dyn Write> = match out {
        Some(p) => Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    write_csv(&db, sink).await
}

async fn write_csv(db: &crate::store::Db, sink: Box<dyn Write>) -> anyhow::Result<u64> {
    let mut w = csv::Writer::from_writer(sink);
    w.write_record([
        "id",
        "at_utc",
        "at_unix_ms",
        "kind",
        "subject",
        "actor",
        "reason",
        "detail_json",
    ])?;
    let mut after: Option<(i64, String)> = None;
    let mut n = 0u64;
    loop {
        let rows = compliance::page(&db.pool, after.as_ref().map(|(t, id)| (*t, id.as_str())), PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = Some((last.at_unix_ms, last.id.clone()));
        for r in &rows {
            let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.at_unix_ms) * 1_000_000)
                .ok()
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_default();
            w.write_record([
                r.id.as_str(),
                &at,
                &r.at_unix_ms.to_string(),
                &r.kind,
                &r.subject,
                &r.actor,
                &r.reason,
                &r.detail,
            ])?;
            n += 1;
        }
    }
    w.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::compliance::NewComplianceEvent;

    #[tokio::test]
    async fn exports_every_event_as_csv_that_reads_back() {
        let dir = tempfile::tempdir().expect("tmp");
        let config = Config {
            database_url: Some(format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("c.sqlite").display()
            )),
            ..Config::default()
        };
        let db = crate::store::Db::connect(&config.database_url(), 2)
            .await
            .expect("db");
        db.migrate().await.expect("migrate");
        for (n, reason) in [
            "over the 24-hour limit",
            "a reason, with \"quotes\",\nand a new line",
        ]
        .iter()
        .enumerate()
        {
            let mut tx = db.begin().await.expect("begin");
            compliance::insert(
                &mut *tx,
                &NewComplianceEvent {
                    kind: "limit_refused",
                    subject: "0xabc",
                    actor: "engine",
                    reason,
                    detail: r#"{"window":"day"}"#,
                    at_unix_ms: 1_765_000_000_000 + i64::try_from(n).expect("n"),
                },
            )
            .await
            .expect("insert");
            tx.commit().await.expect("commit");
        }
        let out = dir.path().join("events.csv");
        assert_eq!(export(config, Some(&out)).await.expect("export"), 2);
        let mut r = csv::Reader::from_path(&out).expect("csv");
        let rows: Vec<csv::StringRecord> = r.records().collect::<Result<_, _>>().expect("rows");
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[0][3], "limit_refused");
        assert_eq!(&rows[1][6], "a reason, with \"quotes\",\nand a new line");
        assert_eq!(&rows[0][7], r#"{"window":"day"}"#);
        assert!(rows[0][1].starts_with("2025-12-06T"), "{}", &rows[0][1]);
    }
}
