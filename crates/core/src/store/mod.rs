//! The local SQLite database: the cache that makes Werkfunk readable offline, and the
//! device-local state (outbox, drafts, settings) that must never be lost.
//!
//! Two files per account, opened as one connection:
//! - `cache.sqlite3` (schema `main`): profiles, conversations, members, messages with an FTS5
//!   index, notifications, sync cursors. Everything in it can be fetched again from the server.
//! - `outbox.sqlite3` (schema `local`, `ATTACH`ed): the outbox, drafts and settings. Small,
//!   new entries synced to disk at commit ([`Store::write_durable`]), never moved,
//!   truncated or recreated by the engine.
//!   A damaged cache can be set aside ([`Store::set_aside_cache`]) and rebuilt by a sync
//!   while queued messages stay where they are.
//!
//! Both files run in WAL mode. Each has its own schema version (`PRAGMA user_version`) and
//! its own list of migrations embedded with `include_str!`; each migration runs in one
//! `IMMEDIATE` transaction together with the version bump, so a crash leaves the old or the
//! new schema, never half of one. A file from a newer build is refused, not downgraded.
//!
//! # Threads
//!
//! The store runs on threads of its own ([`threads`]): one writer thread and a small pool of
//! reader threads ([`READERS`]), each owning its connection. Every method is `async`: it
//! sends its SQL as a job to the writer (one `IMMEDIATE` transaction per job) or to a free
//! reader and awaits the answer, so no SQLite call runs on an async worker or on tokio's
//! blocking pool. Readers see the last committed state over WAL and never wait for the
//! writer: the list and the open conversation stay readable while a catch-up writes a page
//! of 1,000 rows. The threads end when the store is dropped. A busy file waits 3 s, then
//! becomes [`StoreError::Locked`]; a damaged one becomes [`StoreError::Corrupt`].
//!
//! # Modules
//!
//! All of the engine's SQL is here, one module per table family: [`messages`] (messages and
//! their search index), [`conversations`] (conversations, members, profiles, sync cursors),
//! [`notifications`], [`local`] (drafts, device settings, mutes), [`outbox`] (the queue) and
//! [`views`] (the joins the app's list shows).

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};
use uuid::Uuid;

pub mod conversations;
pub mod local;
pub mod messages;
pub mod notifications;
pub mod outbox;
mod threads;
pub mod views;

pub use conversations::{CachedConversation, CachedMember, Cursor};
pub use messages::{fold, fts_query, CachedMessage};
pub use notifications::NotificationData;
pub use views::{ConversationRowData, LastMessageData};

use threads::{Role, Threads};

pub const CACHE_FILE: &str = "cache.sqlite3";
pub const OUTBOX_FILE: &str = "outbox.sqlite3";

struct Migration {
    version: u32,
    name: &'static str,
    sql: &'static str,
}

/// The cache's migrations, oldest first. Never edit one that has shipped: add the next.
const CACHE_MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "initial", sql: include_str!("migrations/cache/0001_initial.sql") },
    Migration { version: 2, name: "search", sql: include_str!("migrations/cache/0002_search.sql") },
    Migration { version: 3, name: "deleted_blank", sql: include_str!("migrations/cache/0003_deleted_blank.sql") },
    Migration { version: 4, name: "search_rank_all", sql: include_str!("migrations/cache/0004_search_rank_all.sql") },
];

/// The outbox file's migrations, oldest first.
const LOCAL_MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "outbox", sql: include_str!("migrations/local/0001_outbox.sql") },
    Migration { version: 2, name: "notification_reads", sql: include_str!("migrations/local/0002_notification_reads.sql") },
];

/// The cache schema this build writes.
pub const CACHE_VERSION: u32 = 4;
/// The outbox file's schema this build writes.
pub const LOCAL_VERSION: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the local database {} is damaged or not a Werkfunk database ({detail})", path.display())]
    Corrupt { path: PathBuf, detail: String },
    #[error("the local database in {} is locked by another process (is Werkfunk already running with this profile?)", path.display())]
    Locked { path: PathBuf },
    #[error("{} was written by a newer Werkfunk (schema {found}; this build knows up to {supported})", path.display())]
    TooNew { path: PathBuf, found: u32, supported: u32 },
    #[error("cannot use {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("local database error: {0}")]
    Sqlite(String),
    #[error("malformed data in the local database: {0}")]
    Malformed(String),
    #[error("the local database is closed (the engine is shutting down)")]
    Closed,
}

impl StoreError {
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Corrupt { .. } => "store_corrupt",
            StoreError::Locked { .. } => "store_locked",
            StoreError::TooNew { .. } => "store_too_new",
            StoreError::Io { .. } => "store_io",
            StoreError::Sqlite(_) => "store",
            StoreError::Malformed(_) => "store_malformed",
            StoreError::Closed => "store_closed",
        }
    }

    fn from_sqlite(e: rusqlite::Error, path: &Path) -> StoreError {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked { path: path.to_owned() },
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                StoreError::Corrupt { path: path.to_owned(), detail: e.to_string() }
            }
            _ => StoreError::Sqlite(e.to_string()),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A timestamp as the store keeps it: UTC, microseconds, `Z`.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn parse_ts(s: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Malformed(format!("timestamp {s:?}: {e}")))
}

pub fn parse_uuid(s: &str) -> StoreResult<Uuid> {
    s.parse().map_err(|e| StoreError::Malformed(format!("uuid {s:?}: {e}")))
}

/// Reader connections (and threads) per store.
pub const READERS: usize = 3;

/// The open database of one account: a handle on its threads.
pub struct Store {
    threads: Threads,
    dir: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating and migrating as needed) the account database in `dir` and starts its
    /// threads. The files are opened and migrated on a thread of their own.
    pub async fn open(dir: &Path) -> StoreResult<Store> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let owned = dir.to_owned();
        std::thread::Builder::new()
            .name("store-open".into())
            .spawn(move || {
                let _ = tx.send(open_connections(&owned));
            })
            .map_err(|source| StoreError::Io { path: dir.to_owned(), source })?;
        let (writer, readers) = rx.await.map_err(|_| StoreError::Closed)??;
        Ok(Store { threads: Threads::start("store", writer, readers)?, dir: dir.to_owned() })
    }

    /// Moves a damaged `cache.sqlite3` (and its WAL files) aside as `cache.sqlite3.damaged-<time>`,
    /// so the next [`Store::open`] starts an empty cache. The outbox file is not touched.
    /// Returns the new name, or `None` when there was no cache file.
    pub fn set_aside_cache(dir: &Path, now: DateTime<Utc>) -> StoreResult<Option<PathBuf>> {
        let cache = dir.join(CACHE_FILE);
        if !cache.exists() {
            return Ok(None);
        }
        let aside = dir.join(format!("{CACHE_FILE}.damaged-{}", now.format("%Y%m%dT%H%M%S")));
        for suffix in ["", "-wal", "-shm"] {
            let from = PathBuf::from(format!("{}{suffix}", cache.display()));
            if from.exists() {
                let to = PathBuf::from(format!("{}{suffix}", aside.display()));
                std::fs::rename(&from, &to).map_err(|source| StoreError::Io { path: from.clone(), source })?;
            }
        }
        Ok(Some(aside))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        StoreError::from_sqlite(e, &self.dir)
    }

    /// Runs `f` on a reader thread (reads only: readers are `query_only`).
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.threads.run(Role::Reader, move |c| f(c)).await?.map_err(|e| self.err(e))
    }

    /// Runs `f` on the writer thread in one IMMEDIATE transaction, committed if `f` succeeds.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        self.threads.run(Role::Writer, move |c| transaction(c, f)).await?.map_err(|e| self.err(e))
    }

    /// Like [`Store::write`], but the outbox file is synced to disk at commit
    /// (`synchronous=FULL`): for what must survive a power cut — a newly queued entry, a
    /// discarded one. Recording an attempt or removing a confirmed entry needs no such care
    /// (WAL with `synchronous=NORMAL` survives a process crash): lost in a power cut, the
    /// entry is sent again, answered as a duplicate and removed then.
    async fn write_durable<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        self.threads
            .run(Role::Writer, move |c| {
                c.execute_batch("pragma local.synchronous = FULL")?;
                let out = transaction(c, f);
                c.execute_batch("pragma local.synchronous = NORMAL")?;
                out
            })
            .await?
            .map_err(|e| self.err(e))
    }

    /// The schema versions of (cache, outbox).
    pub async fn versions(&self) -> StoreResult<(u32, u32)> {
        self.read(|c| {
            Ok((
                c.query_row("pragma main.user_version", [], |r| r.get(0))?,
                c.query_row("pragma local.user_version", [], |r| r.get(0))?,
            ))
        })
        .await
    }
}

fn transaction<T>(c: &mut Connection, f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

/// Opens and migrates the writer's connection, then the readers'.
fn open_connections(dir: &Path) -> StoreResult<(Connection, Vec<Connection>)> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: dir.to_owned(), source })?;
    let cache = dir.join(CACHE_FILE);
    let local = dir.join(OUTBOX_FILE);
    // The outbox file first: whatever is wrong with the cache, the outbox is checked on its own.
    check_file(&local)?;
    check_file(&cache)?;
    let mut conn = connect(&cache, &local)?;
    // NORMAL in WAL mode survives a process crash (not a power cut); what must survive a
    // power cut too — a newly queued entry — is written with `write_durable`.
    for (schema, path) in [("local", &local), ("main", &cache)] {
        let pragmas = format!("pragma {schema}.journal_mode = wal; pragma {schema}.synchronous = NORMAL;");
        conn.execute_batch(&pragmas).map_err(|e| StoreError::from_sqlite(e, path))?;
    }
    migrate(&mut conn, "local", &local, LOCAL_MIGRATIONS)?;
    migrate(&mut conn, "main", &cache, CACHE_MIGRATIONS)?;
    let mut readers = Vec::with_capacity(READERS);
    for _ in 0..READERS {
        let reader = connect(&cache, &local)?;
        // A reader that tried to write would take the write lock beside the writer.
        reader.execute_batch("pragma query_only = 1").map_err(|e| StoreError::from_sqlite(e, &cache))?;
        readers.push(reader);
    }
    Ok((conn, readers))
}

/// One connection to the cache with the outbox file attached as `local`.
fn connect(cache: &Path, local: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(cache).map_err(|e| StoreError::from_sqlite(e, cache))?;
    conn.busy_timeout(Duration::from_secs(3)).map_err(|e| StoreError::from_sqlite(e, cache))?;
    let local_str = local.to_str().ok_or_else(|| StoreError::Malformed("profile path is not UTF-8".into()))?;
    conn.execute("attach database ?1 as local", [local_str]).map_err(|e| StoreError::from_sqlite(e, local))?;
    Ok(conn)
}

/// Fails fast on a file that is not SQLite at all (before SQLite would try to use it).
fn check_file(path: &Path) -> StoreResult<()> {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open(path) else { return Ok(()) };
    let mut header = [0u8; 16];
    match f.read(&mut header) {
        Ok(0) => Ok(()),
        Ok(n) if n == 16 && &header == b"SQLite format 3\0" => Ok(()),
        Ok(_) => Err(StoreError::Corrupt { path: path.to_owned(), detail: "not an SQLite database file".into() }),
        Err(source) => Err(StoreError::Io { path: path.to_owned(), source }),
    }
}

fn migrate(conn: &mut Connection, schema: &str, path: &Path, list: &[Migration]) -> StoreResult<()> {
    let err = |e: rusqlite::Error| StoreError::from_sqlite(e, path);
    let supported = list.last().map(|m| m.version).unwrap_or(0);
    let current: u32 = conn.query_row(&format!("pragma {schema}.user_version"), [], |r| r.get(0)).map_err(err)?;
    if current > supported {
        return Err(StoreError::TooNew { path: path.to_owned(), found: current, supported });
    }
    for m in list.iter().filter(|m| m.version > current) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        // Another process may have migrated while we waited for the lock.
        let now: u32 = tx.query_row(&format!("pragma {schema}.user_version"), [], |r| r.get(0)).map_err(err)?;
        if now >= m.version {
            continue;
        }
        tx.execute_batch(m.sql).map_err(err)?;
        tx.execute_batch(&format!("pragma {schema}.user_version = {}", m.version)).map_err(err)?;
        tx.commit().map_err(err)?;
        tracing::info!(schema, version = m.version, name = m.name, "migrated the local database");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_sort_as_text() {
        let a = parse_ts("2026-01-01T10:00:00+00:00").unwrap();
        let b = parse_ts("2026-01-01T10:00:00.5+01:00").unwrap();
        assert!(ts(b) < ts(a));
        assert_eq!(ts(a), "2026-01-01T10:00:00.000000Z");
    }
}
