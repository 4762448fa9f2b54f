//! SQLite's one write connection, and group commit for every transaction of the process.
//!
//! SQLite has one writer at a time, and each durable commit pays an fsync of the WAL. So on SQLite the node writes
//! through one connection only (the pool's connections are `query_only`), and its transactions take turns on it in
//! arrival order (a FIFO tokio mutex: no busy-handler sleeps). Transactions that follow each other closely share one
//! SQLite transaction: each runs inside its own `SAVEPOINT`, so its own rollback undoes only its own work, and the
//! group's single `COMMIT` makes all of them durable together — as PostgreSQL's and TigerBeetle's group commits do.
//!
//! A member's [`commit`](Member::commit) returns only once its group is durable, so a returned commit still means
//! stored. The group commits when the member finishing sees no other transaction waiting for its turn, when it has
//! [`GROUP_MEMBERS_MAX`] members, or (checked when the next member starts) when it has been open for
//! [`GROUP_AGE_MAX`]. If SQLite loses the group (its `COMMIT` fails, or an I/O error or full disk rolls the whole
//! transaction back), every member still waiting gets the error: none of their work is stored.

use std::collections::HashMap;
use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::Executor;
use tokio::sync::{Mutex, OwnedMutexGuard, watch};

/// Most transactions one group commit makes durable.
pub const GROUP_MEMBERS_MAX: u32 = 128;
/// A group older than this commits before the next member starts, so a member waits for durability at most about
/// this long plus the next member's own time.
pub const GROUP_AGE_MAX: Duration = Duration::from_millis(5);

/// How a group ended: `None` while open, then `Ok` (durable) or the error's text (nothing of it stored).
type Outcome = Option<Result<(), Arc<str>>>;

struct Group {
    started: Instant,
    members: u32,
    done: watch::Sender<Outcome>,
}

/// The write connection and the group open on it.
pub(crate) struct State {
    conn: sqlx::AnyConnection,
    group: Option<Group>,
    /// A member's savepoint is open. Seen by the next holder, it means the member was dropped without commit or
    /// rollback: its work is rolled back first.
    member_open: bool,
    /// The last member committed but its savepoint is not released yet: the release goes in the same round trip
    /// as the next statement the writer sends (the next member's `SAVEPOINT`, or the group's `COMMIT`).
    release_pending: bool,
    counts: Arc<Counts>,
}

/// The write turn: the state, held until dropped (when its hold time is counted).
pub(crate) struct Held {
    guard: OwnedMutexGuard<State>,
    since: Instant,
    /// Where the transaction holding the turn was started (profiling: turn time by call site).
    site: Option<&'static Location<'static>>,
}

impl std::ops::Deref for Held {
    type Target = State;
    fn deref(&self) -> &State {
        &self.guard
    }
}

impl std::ops::DerefMut for Held {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.guard
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let held = u64::try_from(self.since.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.guard.counts.hold_us.fetch_add(held, Ordering::Relaxed);
        if let Some(site) = self.site
            && let Ok(mut by_site) = self.guard.counts.by_site.lock()
        {
            let entry = by_site.entry(site).or_default();
            entry.0 += 1;
            entry.1 += held;
        }
    }
}

/// The process's SQLite writer: cheap to clone.
#[derive(Clone)]
pub(crate) struct Writer {
    state: Arc<Mutex<State>>,
    /// Tasks waiting for their turn (a finishing member commits the group when there are none).
    waiting: Arc<AtomicUsize>,
    counts: Arc<Counts>,
}

/// What the writer has committed since start.
#[derive(Debug, Default)]
struct Counts {
    groups: AtomicU64,
    members: AtomicU64,
    /// Time tasks waited for the turn, and held it, in µs (profiling: logged at debug every 1,000 groups).
    wait_us: AtomicU64,
    hold_us: AtomicU64,
    turns: AtomicU64,
    /// Time spent in the groups' `COMMIT`, in µs.
    commit_us: AtomicU64,
    /// Per call site of [`Db::begin`](super::Db::begin): (turns, µs held).
    by_site: std::sync::Mutex<HashMap<&'static Location<'static>, (u64, u64)>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Counts a task in [`Writer::waiting`] while it waits for the turn (also when its wait is cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn count(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        Waiting(n)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One call site of [`Db::begin`](super::Db::begin) in the writer's turn profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TurnSite {
    /// `file:line` of the call.
    pub site: String,
    /// Transactions it started.
    pub turns: u64,
    /// Time they held the write turn, in µs (for the one that committed its group, the `COMMIT` included).
    pub held_us: u64,
}

impl Counts {
    /// The turn profile, the call site holding the turn longest first.
    fn sites(&self) -> Vec<TurnSite> {
        let mut sites: Vec<TurnSite> = self
            .by_site
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(l, (turns, held_us))| TurnSite {
                        site: format!("{}:{}", l.file(), l.line()),
                        turns: *turns,
                        held_us: *held_us,
                    })
                    .collect()
            })
            .unwrap_or_default();
        sites.sort_by_key(|s| std::cmp::Reverse(s.held_us));
        sites
    }

    /// Logs the counts at debug level: totals, then the turn profile.
    fn log(&self) {
        let sites: Vec<String> = self
            .sites()
            .iter()
            .map(|s| {
                format!(
                    "{} turns={} held_ms={} per_turn_us={}",
                    s.site,
                    s.turns,
                    s.held_us / 1000,
                    s.held_us / s.turns.max(1)
                )
            })
            .collect();
        tracing::debug!(
            target: "store::write",
            groups = self.groups.load(Ordering::Relaxed),
            members = self.members.load(Ordering::Relaxed),
            turns = self.turns.load(Ordering::Relaxed),
            wait_ms = self.wait_us.load(Ordering::Relaxed) / 1000,
            hold_ms = self.hold_us.load(Ordering::Relaxed) / 1000,
            commit_ms = self.commit_us.load(Ordering::Relaxed) / 1000,
            sites = %sites.join("; "),
            "group commits so far"
        );
    }
}

fn group_lost(message: &str) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other(format!(
        "the transaction's group commit failed, nothing of it was stored: {message}"
    )))
}

impl Writer {
    pub(crate) fn new(conn: sqlx::AnyConnection) -> Writer {
        let counts = Arc::<Counts>::default();
        Writer {
            state: Arc::new(Mutex::new(State {
                conn,
                group: None,
                member_open: false,
                release_pending: false,
                counts: counts.clone(),
            })),
            waiting: Arc::new(AtomicUsize::new(0)),
            counts,
        }
    }

    /// (groups committed, transactions committed in them) since start.
    pub(crate) fn committed(&self) -> (u64, u64) {
        (
            self.counts.groups.load(Ordering::Relaxed),
            self.counts.members.load(Ordering::Relaxed),
        )
    }

    /// How long each call site of [`Db::begin`](super::Db::begin) held the write turn since start.
    pub(crate) fn turn_sites(&self) -> Vec<TurnSite> {
        self.counts.sites()
    }

    /// Waits for the turn; the previous holder's unfinished member (dropped) is rolled back first.
    async fn turn(&self) -> Held {
        let asked = Instant::now();
        let guard = {
            let _waiting = Waiting::count(&self.waiting);
            self.state.clone().lock_owned().await
        };
        let mut state = Held {
            guard,
            since: Instant::now(),
            site: None,
        };
        let waited = u64::try_from((state.since - asked).as_micros()).unwrap_or(u64::MAX);
        self.counts.wait_us.fetch_add(waited, Ordering::Relaxed);
        self.counts.turns.fetch_add(1, Ordering::Relaxed);
        state.recover().await;
        state
    }

    /// The write connection alone, outside any group (for migrations): the open group commits first.
    pub(crate) async fn exclusive(&self) -> Held {
        let mut state = self.turn().await;
        state.commit_group().await;
        state
    }

    /// Starts a member transaction (a savepoint in the open group, or a new group). The turn's statements (a
    /// due group commit, `BEGIN`, `SAVEPOINT`) run in their own task: a caller that stops waiting (a request
    /// timed out) cannot leave the connection in a state the writer does not know; the member it would have
    /// had is dropped, which rolls it back.
    pub(crate) async fn begin(&self, site: &'static Location<'static>) -> Result<Member, sqlx::Error> {
        let writer = self.clone();
        tokio::spawn(async move { writer.begin_here(site).await })
            .await
            .map_err(|e| group_lost(&e.to_string()))?
    }

    async fn begin_here(self, site: &'static Location<'static>) -> Result<Member, sqlx::Error> {
        let mut state = self.turn().await;
        state.site = Some(site);
        if let Some(g) = &state.group
            && (g.members >= GROUP_MEMBERS_MAX || g.started.elapsed() >= GROUP_AGE_MAX)
        {
            state.commit_group().await;
        }
        if state.group.is_none() {
            // One round trip to the connection's thread for both statements.
            if let Err(e) = state.conn.execute("BEGIN IMMEDIATE; SAVEPOINT member").await {
                // Either failed: nothing of this group exists yet (a ROLLBACK without a transaction just fails).
                let _ = state.conn.execute("ROLLBACK").await;
                return Err(e);
            }
            state.group = Some(Group {
                started: Instant::now(),
                members: 0,
                done: watch::channel(None).0,
            });
        } else {
            // The previous member's release, if it is still due, in the same round trip.
            let sql = if state.release_pending {
                "RELEASE SAVEPOINT member; SAVEPOINT member"
            } else {
                "SAVEPOINT member"
            };
            state.release_pending = false;
            if let Err(e) = state.conn.execute(sql).await {
                // A failed release means SQLite rolled the whole transaction back (an I/O error, a full disk).
                state.fail_group(&e.to_string()).await;
                return Err(e);
            }
        }
        state.member_open = true;
        let done = match state.group.as_mut() {
            Some(g) => {
                g.members += 1;
                g.done.subscribe()
            }
            None => return Err(group_lost("no group is open")),
        };
        Ok(Member {
            state: Some(state),
            writer: self.clone(),
            done,
        })
    }

    /// After a member was dropped unfinished: takes the turn, rolls it back, and commits the group if nobody else
    /// will (its other members are waiting for that).
    async fn tidy(self) {
        let mut state = self.turn().await;
        if self.waiting.load(Ordering::SeqCst) == 0 {
            state.commit_group().await;
        }
    }
}

/// How often the checkpointer looks at the write-ahead log.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);
/// The writer's own automatic checkpoint, in WAL pages (~40 MB): a fallback that bounds the log if the checkpointer
/// falls behind. SQLite's default (1,000 pages) would run one every few hundred commits, inside a commit.
pub const WAL_AUTOCHECKPOINT_FALLBACK_PAGES: u32 = 10_000;

/// Moves the write-ahead log into the database file from a pool connection (a checkpoint is not a write:
/// `query_only` allows it), so no commit pays for it.
///
/// SQLite otherwise checkpoints inside the commit that crosses `wal_autocheckpoint` pages: that commit copies
/// about 4 MB into the database file and fsyncs it while every other writer waits for the turn, which made the
/// partner API's latency tail. A `PASSIVE` checkpoint runs beside the writer (it never takes the write lock) and
/// copies what no reader still needs; the writer keeps a high `wal_autocheckpoint` as a fallback bound. The task
/// ends when the writer is dropped.
pub(crate) async fn spawn_checkpointer(writer: &Writer, pool: sqlx::AnyPool) -> Result<(), sqlx::Error> {
    {
        let mut state = writer.exclusive().await;
        state
            .conn
            .execute(format!("PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_FALLBACK_PAGES}").as_str())
            .await?;
    }
    let state = Arc::downgrade(&writer.state);
    let counts = writer.counts.clone();
    tokio::spawn(async move {
        let mut checkpointed_at = counts.groups.load(Ordering::Relaxed);
        let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if state.strong_count() == 0 || pool.is_closed() {
                break;
            }
            let groups = counts.groups.load(Ordering::Relaxed);
            if groups == checkpointed_at {
                continue;
            }
            checkpointed_at = groups;
            if let Err(e) = pool.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
                tracing::warn!(target: "store::write", error = %e, "background WAL checkpoint failed; the writer's own checkpoint bounds the log");
            }
        }
    });
    Ok(())
}

impl State {
    pub(crate) fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.conn
    }

    async fn recover(&mut self) {
        if !self.member_open {
            return;
        }
        self.member_open = false;
        if let Err(e) = self.undo_member().await {
            self.fail_group(&e.to_string()).await;
        }
    }

    async fn undo_member(&mut self) -> Result<(), sqlx::Error> {
        self.conn.execute("ROLLBACK TO SAVEPOINT member").await?;
        self.conn.execute("RELEASE SAVEPOINT member").await?;
        Ok(())
    }

    /// Commits the open group (if any) and tells its members how it went; a due release of the last member's
    /// savepoint goes first, in the same round trip.
    async fn commit_group(&mut self) {
        let release = std::mem::take(&mut self.release_pending);
        let Some(group) = self.group.take() else {
            return;
        };
        metrics::histogram!("remesa_sqlite_group_members").record(f64::from(group.members));
        let sql = if release {
            "RELEASE SAVEPOINT member; COMMIT"
        } else {
            "COMMIT"
        };
        let committing = Instant::now();
        let committed = self.conn.execute(sql).await;
        let commit_us = u64::try_from(committing.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.counts.commit_us.fetch_add(commit_us, Ordering::Relaxed);
        match committed {
            Ok(_) => {
                let groups = self.counts.groups.fetch_add(1, Ordering::Relaxed) + 1;
                if groups.is_multiple_of(1000) {
                    self.counts.log();
                }
                self.counts
                    .members
                    .fetch_add(u64::from(group.members), Ordering::Relaxed);
                let _ = group.done.send(Some(Ok(())));
            }
            Err(e) => {
                tracing::error!(target: "store", error = %e, members = group.members, "group commit failed: nothing of it stored");
                let _ = self.conn.execute("ROLLBACK").await;
                let _ = group.done.send(Some(Err(e.to_string().into())));
            }
        }
    }

    /// The group is lost (SQLite rolled it back, or a savepoint failed): roll back what is left and tell the members.
    async fn fail_group(&mut self, message: &str) {
        self.member_open = false;
        self.release_pending = false;
        let Some(group) = self.group.take() else {
            return;
        };
        tracing::error!(target: "store", error = %message, members = group.members, "group transaction lost: nothing of it stored");
        let _ = self.conn.execute("ROLLBACK").await;
        let _ = group.done.send(Some(Err(message.into())));
    }
}

/// One transaction on SQLite: a savepoint in the open group, holding the write turn until it ends.
pub(crate) struct Member {
    state: Option<Held>,
    writer: Writer,
    done: watch::Receiver<Outcome>,
}

impl Member {
    pub(crate) fn conn(&self) -> &sqlx::AnyConnection {
        match &self.state {
            Some(s) => &s.conn,
            None => unreachable!("a member holds the state until it ends"),
        }
    }

    pub(crate) fn conn_mut(&mut self) -> &mut sqlx::AnyConnection {
        match &mut self.state {
            Some(s) => &mut s.conn,
            None => unreachable!("a member holds the state until it ends"),
        }
    }

    /// Ends the member and returns once the group is durable. Its savepoint's release is left for the writer's
    /// next statement (the next member's `SAVEPOINT` or the group's `COMMIT`, one round trip either way). When this
    /// member is the last for now, the group commits in its own task, so a caller that stops waiting cannot leave
    /// the group half done.
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        let Some(mut state) = self.state.take() else {
            return Ok(());
        };
        state.member_open = false;
        state.release_pending = true;
        let full = state
            .group
            .as_ref()
            .is_none_or(|g| g.members >= GROUP_MEMBERS_MAX);
        if full || self.writer.waiting.load(Ordering::SeqCst) == 0 {
            // Release and commit in one round trip. A failure of either loses the group, which every member (this
            // one too) learns from its outcome below.
            tokio::spawn(async move { state.commit_group().await })
                .await
                .map_err(|e| group_lost(&e.to_string()))?;
        } else {
            // The turn goes to the next member waiting for it; its SAVEPOINT releases this one's.
            drop(state);
        }
        loop {
            let waited = tokio::time::timeout(GROUP_AGE_MAX * 2, self.done.wait_for(Option::is_some))
                .await
                .map(|r| r.map(|outcome| outcome.clone()));
            match waited {
                Ok(Ok(outcome)) => {
                    return match outcome {
                        Some(Ok(())) => Ok(()),
                        Some(Err(m)) => Err(group_lost(&m)),
                        None => Err(group_lost("no outcome")),
                    };
                }
                Ok(Err(_)) => return Err(group_lost("the group was dropped")),
                // The task that was waiting for the turn went away (cancelled) and nobody else came: commit the
                // group from here (in its own task, like every commit).
                Err(_) => {
                    let writer = self.writer.clone();
                    let done = self.done.clone();
                    let _ = tokio::spawn(async move {
                        let mut state = writer.turn().await;
                        if done.borrow().is_none() {
                            state.commit_group().await;
                        }
                    })
                    .await;
                }
            }
        }
    }

    /// Undoes this member's work only; the group goes on (and commits now if nobody else is waiting).
    pub(crate) async fn rollback(mut self) -> Result<(), sqlx::Error> {
        let Some(state) = self.state.take() else {
            return Ok(());
        };
        let writer = self.writer.clone();
        tokio::spawn(async move {
            let mut state = state;
            state.member_open = false;
            let undone = state.undo_member().await;
            if let Err(e) = &undone {
                state.fail_group(&e.to_string()).await;
            } else if writer.waiting.load(Ordering::SeqCst) == 0 {
                state.commit_group().await;
            }
            undone
        })
        .await
        .map_err(|e| group_lost(&e.to_string()))?
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        // Dropped before commit or rollback (an error returned early, a cancelled task): the next holder rolls the
        // savepoint back; if nobody else is waiting, a task does it now so the group's other members are not left
        // waiting for a commit.
        if self.state.take().is_some()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(self.writer.clone().tidy());
        }
    }
}
