//! The two migration sets (`node/migrations/sqlite`, `node/migrations/postgres`) must say the same thing: applied to
//! fresh databases, they produce the same tables, columns (type class and nullability), primary keys and indexes
//! (columns, uniqueness, partial or not). Index names and SQL spelling may differ; the schema may not.

use std::collections::{BTreeMap, BTreeSet};

use remesa_testkit::TestDb;
use sqlx::{AnyPool, Row};

/// One column: its type class (`integer`, `text`, …) and whether it may be NULL.
type Column = (String, bool);
/// One index: its columns in order, unique, partial.
type Index = (Vec<String>, bool, bool);

#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    columns: BTreeMap<String, Column>,
    primary_key: Vec<String>,
    indexes: BTreeSet<Index>,
}

type Schema = BTreeMap<String, Table>;

/// The type class of a declared (SQLite) or reported (PostgreSQL) column type.
fn type_class(declared: &str) -> String {
    let t = declared.to_ascii_lowercase();
    if t.contains("int") || t.contains("serial") {
        "integer".into()
    } else if t.contains("char") || t.contains("text") || t.contains("clob") {
        "text".into()
    } else if t.contains("bool") {
        "boolean".into()
    } else if t.contains("blob") || t.contains("bytea") {
        "bytes".into()
    } else {
        t
    }
}

async fn sqlite_schema(pool: &AnyPool) -> anyhow::Result<Schema> {
    let mut schema = Schema::new();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'",
    )
    .fetch_all(pool)
    .await?;
    for name in tables {
        let mut t = Table::default();
        let mut pk: Vec<(i64, String)> = Vec::new();
        for r in sqlx::query("SELECT name, type, \"notnull\", pk FROM pragma_table_info($1)")
            .bind(&name)
            .fetch_all(pool)
            .await?
        {
            let col: String = r.try_get(0)?;
            let declared: String = r.try_get(1)?;
            let not_null: i64 = r.try_get(2)?;
            let pk_pos: i64 = r.try_get(3)?;
            if pk_pos > 0 {
                pk.push((pk_pos, col.clone()));
            }
            // A primary-key column is NOT NULL in PostgreSQL whether or not the SQL says so.
            t.columns
                .insert(col, (type_class(&declared), not_null == 0 && pk_pos == 0));
        }
        pk.sort();
        t.primary_key = pk.into_iter().map(|(_, c)| c).collect();
        for r in sqlx::query("SELECT name, \"unique\", origin, partial FROM pragma_index_list($1)")
            .bind(&name)
            .fetch_all(pool)
            .await?
        {
            let index: String = r.try_get(0)?;
            let unique: i64 = r.try_get(1)?;
            let origin: String = r.try_get(2)?;
            let partial: i64 = r.try_get(3)?;
            if origin == "pk" {
                continue;
            }
            let cols: Vec<String> =
                sqlx::query_scalar("SELECT name FROM pragma_index_info($1) ORDER BY seqno")
                    .bind(&index)
                    .fetch_all(pool)
                    .await?;
            t.indexes.insert((cols, unique == 1, partial == 1));
        }
        schema.insert(name, t);
    }
    Ok(schema)
}

async fn postgres_schema(pool: &AnyPool) -> anyhow::Result<Schema> {
    let mut schema = Schema::new();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name NOT LIKE '\\_sqlx%'",
    )
    .fetch_all(pool)
    .await?;
    for name in tables {
        let mut t = Table::default();
        for r in sqlx::query(
            "SELECT CAST(column_name AS TEXT), CAST(data_type AS TEXT), CAST(is_nullable AS TEXT) \
             FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1",
        )
        .bind(&name)
        .fetch_all(pool)
        .await?
        {
            let col: String = r.try_get(0)?;
            let data_type: String = r.try_get(1)?;
            let nullable: String = r.try_get(2)?;
            t.columns.insert(col, (type_class(&data_type), nullable == "YES"));
        }
        for r in sqlx::query(
            "SELECT ix.indisunique, ix.indisprimary, ix.indpred IS NOT NULL, \
               array_to_string(ARRAY(SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord) \
                 JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum ORDER BY k.ord), ',') \
             FROM pg_index ix JOIN pg_class tc ON tc.oid = ix.indrelid \
             JOIN pg_namespace n ON n.oid = tc.relnamespace \
             WHERE n.nspname = current_schema() AND tc.relname = $1",
        )
        .bind(&name)
        .fetch_all(pool)
        .await?
        {
            let unique: bool = r.try_get(0)?;
            let primary: bool = r.try_get(1)?;
            let partial: bool = r.try_get(2)?;
            let cols: String = r.try_get(3)?;
            let cols: Vec<String> = cols.split(',').map(str::to_owned).collect();
            if primary {
                t.primary_key = cols;
            } else {
                t.indexes.insert((cols, unique, partial));
            }
        }
        schema.insert(name, t);
    }
    Ok(schema)
}

/// Lines of `a` that are not in `b`, for a readable failure.
fn only_in(a: &Schema, b: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    for (name, t) in a {
        let Some(other) = b.get(name) else {
            out.push(format!("table {name}"));
            continue;
        };
        for (c, v) in &t.columns {
            if other.columns.get(c) != Some(v) {
                out.push(format!("{name}.{c}: {v:?}"));
            }
        }
        if t.primary_key != other.primary_key {
            out.push(format!("{name} primary key {:?}", t.primary_key));
        }
        for i in t.indexes.difference(&other.indexes) {
            out.push(format!("{name} index {i:?}"));
        }
    }
    out
}

#[tokio::test]
async fn both_migration_sets_make_the_same_schema() -> anyhow::Result<()> {
    let sqlite = TestDb::sqlite().await?;
    let Some(postgres) = TestDb::postgres().await else {
        return Ok(()); // skipped with a printed reason (REMESA_REQUIRE_POSTGRES=1 fails instead)
    };
    let a = sqlite_schema(&sqlite.db.pool).await?;
    let b = postgres_schema(&postgres.db.pool).await?;
    assert!(a.len() >= 20, "SQLite tables: {:?}", a.keys().collect::<Vec<_>>());
    assert!(
        a.values().any(|t| !t.indexes.is_empty()),
        "no index read from SQLite"
    );
    let (sqlite_only, postgres_only) = (only_in(&a, &b), only_in(&b, &a));
    assert!(
        sqlite_only.is_empty() && postgres_only.is_empty(),
        "the migration sets differ\nonly in SQLite:\n  {}\nonly in PostgreSQL:\n  {}",
        sqlite_only.join("\n  "),
        postgres_only.join("\n  ")
    );
    // The comparison sees a difference: one more index, one more column on one side.
    let mut tx = sqlite.db.begin().await?;
    sqlx::query("CREATE INDEX extra_idx ON chat_outbox (address, status)")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    sqlx::query("ALTER TABLE quotes ADD COLUMN extra_col BIGINT")
        .execute(&postgres.db.pool)
        .await?;
    let (a, b) = (
        sqlite_schema(&sqlite.db.pool).await?,
        postgres_schema(&postgres.db.pool).await?,
    );
    assert_eq!(
        only_in(&a, &b),
        ["chat_outbox index ([\"address\", \"status\"], false, false)"]
    );
    assert_eq!(only_in(&b, &a), ["quotes.extra_col: (\"integer\", true)"]);
    Ok(())
}

/// Every SQLite connection zeroes what it deletes or overwrites (`PRAGMA secure_delete`), so scrubbed secrets do
/// not survive in the file's free pages.
#[tokio::test]
async fn sqlite_connections_zero_deleted_content() -> anyhow::Result<()> {
    let sqlite = TestDb::sqlite().await?;
    for _ in 0..3 {
        let mut conn = sqlite.db.pool.acquire().await?;
        let on: i64 = sqlx::query_scalar("PRAGMA secure_delete")
            .fetch_one(&mut *conn)
            .await?;
        assert_eq!(on, 1);
    }
    Ok(())
}

#[test]
fn type_classes() {
    assert_eq!(type_class("BIGINT"), "integer");
    assert_eq!(type_class("INTEGER"), "integer");
    assert_eq!(type_class("bigint"), "integer");
    assert_eq!(type_class("TEXT"), "text");
    assert_eq!(type_class("character varying"), "text");
    assert_eq!(type_class("boolean"), "boolean");
}
