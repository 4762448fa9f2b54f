//! Storage: one `sqlx::AnyPool` over SQLite (embedded default) or PostgreSQL, the same SQL on both with a small
//! [`Dialect`] for the differences, and the migrations of every module (`node/migrations/{sqlite,postgres}`).
//!
//! Architecture invariant: every write of the engine happens in one transaction that starts by taking the next
//! value of the transition sequence ([`next_counter`]), which serialises writers and makes the event feed's `seq`
//! grow in commit order (a reader never sees seq N+1 before N is committed).

/// Runs one store write in a transaction of its own (on SQLite every write must go through [`Db::begin`]):
/// `write_tx!(db, |tx| module::f(&mut *tx, …))` returns `Result<_, StoreError>` once committed.
macro_rules! write_tx {
    ($db:expr, |$tx:ident| $body:expr) => {
        async {
            let mut $tx = $db.begin().await?;
            let out = $body.await?;
            $tx.commit().await?;
            Ok::<_, $crate::store::StoreError>(out)
        }
        .await
    };
}
pub(crate) use write_tx;

pub mod cases;
pub mod chain_index;
pub mod chain_txs;
pub mod chat;
pub mod compliance;
pub mod console;
pub mod customers;
pub mod events;
pub mod group_commit;
pub mod idempotency;
pub mod instances;
pub mod lease;
pub mod ledger;
pub mod outbox;
pub mod partner_actions;
pub mod partner_cursors;
pub mod partners;
pub mod quotes;
pub mod remittances;
pub mod replay;
pub mod sanctions;
pub mod settlements;
pub mod text;
pub mod transitions;
pub mod users;
pub mod webhooks;
mod write_group;
pub use write_group::TurnSite;

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

static MIGRATOR_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static MIGRATOR_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A database transaction. On PostgreSQL, a transaction of the pool. On SQLite, a savepoint in the group of
/// transactions on the process's one write connection (see [`Db::begin`]), holding the write turn until it ends.
/// Dereferences to the connection, so `&mut *tx` is an executor.
pub struct Tx {
    inner: TxInner,
}

enum TxInner {
    Pool(sqlx::Transaction<'static, sqlx::Any>),
    Group(write_group::Member),
}

impl Tx {
    /// Commits; returns once durable (on SQLite, once the group it joined is committed).
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self.inner {
            TxInner::Pool(t) => t.commit().await,
            TxInner::Group(m) => m.commit().await,
        }
    }

    /// Rolls back this transaction's work. Dropping a `Tx` rolls back too.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self.inner {
            TxInner::Pool(t) => t.rollback().await,
            TxInner::Group(m) => m.rollback().await,
        }
    }
}

impl std::ops::Deref for Tx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        match &self.inner {
            TxInner::Pool(t) => t,
            TxInner::Group(m) => m.conn(),
        }
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match &mut self.inner {
            TxInner::Pool(t) => t,
            TxInner::Group(m) => m.conn_mut(),
        }
    }
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx").finish_non_exhaustive()
    }
}

/// Which SQL server is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Row-lock suffix for claiming work: ` FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one writer at a time.
    pub fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        }
    }

    /// Names the index a queue claim must walk (SQLite, whose planner has no statistics here, would otherwise sort
    /// every queued row on each claim); PostgreSQL's planner picks it from its statistics.
    pub fn indexed_by(self, index: &'static str) -> String {
        match self {
            Dialect::Postgres => String::new(),
            Dialect::Sqlite => format!(" INDEXED BY {index}"),
        }
    }

    /// Row-lock suffix for reading a row that will be updated in the same transaction.
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Postgres => " FOR UPDATE",
            Dialect::Sqlite => "",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database url (use sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
    /// Not stored, nothing is wrong with the request: a bounded queue is full or its shared transaction failed.
    /// Try again.
    #[error("busy: {0}")]
    Busy(String),
}

impl StoreError {
    /// Whether trying again later can succeed with the same request: the database is out of reach or out of
    /// space, busy, restarting or failing over — not a bug, a constraint or a corrupt row. The HTTP layers answer
    /// these with 503 and `Retry-After` (nothing was stored) instead of a 500.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Busy(_) => true,
            StoreError::Sqlx(e) => sqlx_is_transient(e),
            StoreError::Migrate(_) | StoreError::UnsupportedUrl | StoreError::Corrupt(_) => false,
        }
    }
}

/// See [`StoreError::is_transient`]. SQLite result codes (the primary code is the low byte of an extended one):
/// BUSY 5, LOCKED 6, NOMEM 7, IOERR 10, FULL 13, CANTOPEN 14, PROTOCOL 15. PostgreSQL SQLSTATE: class 08 (connection),
/// 53 (insufficient resources: disk full, out of memory, too many connections), 57P01–57P03 (shutting down, cannot
/// connect now), 40001 and 40P01 (serialization failure, deadlock), 25006 (read-only transaction: a fail-over in
/// progress).
pub(crate) fn sqlx_is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else { return false };
            // A SQLSTATE has five characters; SQLite's extended codes have at most four digits.
            if code.len() != 5 {
                return code
                    .parse::<u32>()
                    .is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 7 | 10 | 13 | 14 | 15));
            }
            code.starts_with("08")
                || code.starts_with("53")
                || matches!(&*code, "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "25006")
        }
        _ => false,
    }
}

/// The node's database.
#[derive(Clone, Debug)]
pub struct Db {
    /// For reads (and, on PostgreSQL, writes). On SQLite its connections are `query_only`: every write goes through
    /// [`Db::begin`].
    pub pool: AnyPool,
    pub dialect: Dialect,
    /// SQLite only: the process's one write connection, whose transactions take turns in arrival order and commit
    /// in groups ([`write_group`]). SQLite has one writer; transactions that met at its lock waited in its busy
    /// handler, which sleeps 1, 2, 5, 10… 100 ms between tries however soon the lock frees, and each paid its own
    /// fsync. (PostgreSQL has row locks and real concurrency, and its own group commit.)
    writer: Option<write_group::Writer>,
}

impl Db {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://…`) with at most `connections_max` connections.
    pub async fn connect(url: &str, connections_max: u32) -> Result<Db, StoreError> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        if dialect == Dialect::Sqlite
            && let Some(path) = sqlite_path(url)
            && let Some(parent) = std::path::Path::new(&path).parent()
            && !parent.as_os_str().is_empty()
        {
            let _ = std::fs::create_dir_all(parent);
        }
        let opts = AnyConnectOptions::from_str(url)?.log_statements(tracing::log::LevelFilter::Trace);
        // SQLite: the one write connection first (it creates the file and sets WAL, which the file keeps).
        let writer = if dialect == Dialect::Sqlite {
            let mut conn = opts.connect().await?;
            sqlite_pragmas(&mut conn).await?;
            conn.execute("PRAGMA journal_mode = WAL").await?;
            Some(write_group::Writer::new(conn))
        } else {
            None
        };
        let pool = AnyPoolOptions::new()
            .max_connections(connections_max)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        sqlite_pragmas(conn).await?;
                        // Writes go through the write connection (`Db::begin`); one here is a bug, and fails.
                        conn.execute("PRAGMA query_only = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        if let Some(w) = &writer {
            write_group::spawn_checkpointer(w, pool.clone()).await?;
        }
        Ok(Db {
            pool,
            dialect,
            writer,
        })
    }

    /// Applies every pending migration of the node (all modules' numbered files for this dialect).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match (&self.writer, self.dialect) {
            (Some(w), _) => {
                let mut state = w.exclusive().await;
                MIGRATOR_SQLITE.run(state.conn()).await?;
            }
            (None, Dialect::Sqlite) => MIGRATOR_SQLITE.run(&self.pool).await?,
            (None, Dialect::Postgres) => MIGRATOR_POSTGRES.run(&self.pool).await?,
        }
        Ok(())
    }

    /// Starts a transaction. On SQLite it waits for the write turn (held until the transaction ends) and joins the
    /// open group commit ([`write_group`]); its commit returns once the group is durable. A task must not start a
    /// second transaction while it holds one. Its call site is counted in the write turn's profile
    /// ([`Db::write_turn_sites`]).
    #[track_caller]
    pub fn begin(&self) -> impl std::future::Future<Output = Result<Tx, StoreError>> + Send + '_ {
        let site = std::panic::Location::caller();
        async move {
            let inner = match &self.writer {
                Some(w) => TxInner::Group(w.begin(site).await?),
                None => TxInner::Pool(self.pool.begin().await?),
            };
            Ok(Tx { inner })
        }
    }

    /// SQLite: (group commits, transactions committed in them) since start — how many transactions shared each
    /// fsync. `None` on PostgreSQL.
    pub fn group_commits(&self) -> Option<(u64, u64)> {
        self.writer.as_ref().map(write_group::Writer::committed)
    }

    /// SQLite: how long each call site of [`Db::begin`] held the write turn since start, longest first (also
    /// logged at debug level under `store::write` every 1,000 group commits). `None` on PostgreSQL.
    pub fn write_turn_sites(&self) -> Option<Vec<TurnSite>> {
        self.writer.as_ref().map(write_group::Writer::turn_sites)
    }

    /// Wraps a pool, asking a connection which backend it is (on SQLite, opening a write connection with the
    /// pool's options; the pool's own connections stay as they are).
    pub async fn detect(pool: AnyPool) -> Result<Db, StoreError> {
        let conn = pool.acquire().await?;
        let dialect = if conn.backend_name().eq_ignore_ascii_case("postgresql") {
            Dialect::Postgres
        } else {
            Dialect::Sqlite
        };
        drop(conn);
        let writer = if dialect == Dialect::Sqlite {
            let mut conn = pool.connect_options().connect().await?;
            sqlite_pragmas(&mut conn).await?;
            Some(write_group::Writer::new(conn))
        } else {
            None
        };
        Ok(Db {
            pool,
            dialect,
            writer,
        })
    }

    /// Whether the pool talks to PostgreSQL (row locks, several node processes) rather than SQLite.
    pub fn is_postgres(&self) -> bool {
        self.dialect == Dialect::Postgres
    }

    /// Can the database take a durable write now? Commits one small write (the `readiness_probes` counter), on
    /// SQLite through the group writer like every other transaction, so a full disk, a read-only fail-over or a
    /// lost write connection shows here and not only as failed requests.
    pub async fn probe_write(&self) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO counters (name, value) VALUES ('readiness_probes', 1) \
             ON CONFLICT (name) DO UPDATE SET value = counters.value + 1",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Every SQLite connection of the node, reading or writing.
async fn sqlite_pragmas(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    conn.execute("PRAGMA busy_timeout = 30000").await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    // Deleted and overwritten content is zeroed in the database file, not left in free pages where a copy of the
    // file would still show it (secrets that are scrubbed after use, such as delivered chat messages, must really
    // go).
    conn.execute("PRAGMA secure_delete = ON").await?;
    Ok(())
}

fn sqlite_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| path.to_owned())
}

/// Increments the counter `name` and returns its new value. The row stays locked until the transaction ends.
pub async fn next_counter(tx: &mut sqlx::AnyConnection, name: &str) -> Result<i64, StoreError> {
    let value: Option<i64> =
        sqlx::query_scalar("UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
    value.ok_or_else(|| StoreError::Corrupt(format!("counter {name} is missing")))
}

/// A stored BIGINT that must not be negative (an id, a count, a block number); a negative one is a corrupt row,
/// never a plausible default.
pub fn stored_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} = {value}")))
}

/// The `VALUES` list of a multi-row insert: `rows` tuples of `cols` numbered placeholders (`($1, $2), ($3, $4)`),
/// which both SQLite and PostgreSQL read.
pub(crate) fn values_placeholders(rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 6);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(r * cols + c + 1).to_string());
        }
        out.push(')');
    }
    out
}

/// Rows per multi-row insert: well under both databases' bound on parameters in one statement.
pub(crate) const MULTI_ROW_MAX: usize = 128;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
