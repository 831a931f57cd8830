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
//! One writer connection and a small pool of reader connections ([`READERS`]) over WAL: a
//! reader sees the last committed state and never waits for the writer, so the list and the
//! open conversation stay readable while a catch-up writes a page of 1,000 rows. Every
//! method here blocks (rusqlite is synchronous); async code calls the store through
//! [`Store::call`], which runs the closure on tokio's blocking pool — never on an async
//! worker. A busy file waits 3 s, then becomes [`StoreError::Locked`]; a damaged one
//! becomes [`StoreError::Corrupt`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior};
use uuid::Uuid;
use werkfunk_protocol::rows;

mod views;

pub use views::{ConversationRowData, LastMessageData, NotificationData};

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
];

/// The outbox file's migrations, oldest first.
const LOCAL_MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "outbox", sql: include_str!("migrations/local/0001_outbox.sql") },
    Migration { version: 2, name: "notification_reads", sql: include_str!("migrations/local/0002_notification_reads.sql") },
];

/// The cache schema this build writes.
pub const CACHE_VERSION: u32 = 3;
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

/// Reader connections per store.
pub const READERS: usize = 3;
/// How many of the newest matches a search ranks at most.
pub const RANK_WINDOW: usize = 500;

/// The open database of one account.
pub struct Store {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    dir: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating and migrating as needed) the account database in `dir`.
    pub fn open(dir: &Path) -> StoreResult<Store> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: dir.to_owned(), source })?;
        let cache = dir.join(CACHE_FILE);
        let local = dir.join(OUTBOX_FILE);
        // The outbox file first: whatever is wrong with the cache, the outbox is checked on its own.
        check_file(&local)?;
        check_file(&cache)?;
        let mut conn = connect(&cache, &local)?;
        // NORMAL in WAL mode survives a process crash (not a power cut); what must survive a
        // power cut too — a newly queued entry — is written with `write_durable`.
        for (schema, path, sync) in [("local", &local, "NORMAL"), ("main", &cache, "NORMAL")] {
            let pragmas = format!("pragma {schema}.journal_mode = wal; pragma {schema}.synchronous = {sync};");
            conn.execute_batch(&pragmas).map_err(|e| StoreError::from_sqlite(e, path))?;
        }
        migrate(&mut conn, "local", &local, LOCAL_MIGRATIONS)?;
        migrate(&mut conn, "main", &cache, CACHE_MIGRATIONS)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = connect(&cache, &local)?;
            // A reader that tried to write would take the write lock beside the writer.
            reader.execute_batch("pragma query_only = 1").map_err(|e| StoreError::from_sqlite(e, &cache))?;
            readers.push(Mutex::new(reader));
        }
        Ok(Store { writer: Mutex::new(conn), readers, next_reader: AtomicUsize::new(0), dir: dir.to_owned() })
    }

    /// Runs `f` on the blocking pool (the store's methods block; async code never calls them
    /// on an async worker).
    pub async fn call<T, F>(self: &Arc<Self>, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> StoreResult<T> + Send + 'static,
    {
        let store = self.clone();
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(r) => r,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => Err(StoreError::Sqlite("the store task was cancelled (shutting down)".into())),
            },
        }
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

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (statements are atomic).
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A free reader connection, else the next one in turn.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.readers.len() {
            match self.readers[(start + i) % self.readers.len()].try_lock() {
                Ok(guard) => return guard,
                Err(std::sync::TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
        }
        self.readers[start % self.readers.len()].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        StoreError::from_sqlite(e, &self.dir)
    }

    /// Runs `f` on a reader connection (reads only: readers are `query_only`). Crate-internal:
    /// SQL lives in the store (and, for now, the outbox's own queue statements).
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        let conn = self.reader();
        f(&conn).map_err(|e| self.err(e))
    }

    /// Runs `f` in one IMMEDIATE transaction, committed if `f` succeeds.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>) -> StoreResult<T> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        let out = f(&tx).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// Like [`Store::write`], but the outbox file is synced to disk at commit
    /// (`synchronous=FULL`): for what must survive a power cut — a newly queued entry, a
    /// discarded one. Removing a confirmed entry needs no such care: lost, it is sent again,
    /// answered as a duplicate and removed then.
    pub(crate) fn write_durable<T>(&self, f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>) -> StoreResult<T> {
        let mut conn = self.lock();
        conn.execute_batch("pragma local.synchronous = FULL").map_err(|e| self.err(e))?;
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
            let out = f(&tx).map_err(|e| self.err(e))?;
            tx.commit().map_err(|e| self.err(e))?;
            Ok(out)
        })();
        conn.execute_batch("pragma local.synchronous = NORMAL").map_err(|e| self.err(e))?;
        result
    }

    /// The schema versions of (cache, outbox).
    pub fn versions(&self) -> StoreResult<(u32, u32)> {
        self.read(|c| {
            Ok((
                c.query_row("pragma main.user_version", [], |r| r.get(0))?,
                c.query_row("pragma local.user_version", [], |r| r.get(0))?,
            ))
        })
    }

    // --- messages -------------------------------------------------------------------------

    /// Stores server rows, never an older version over a newer one (by `updated_at`).
    /// Returns the ids whose cached row changed.
    pub fn upsert_messages(&self, messages: &[rows::Message]) -> StoreResult<Vec<Uuid>> {
        self.write(|tx| upsert_messages_tx(tx, messages))
    }

    /// The newest `limit` messages of a conversation before `before` (exclusive), oldest first.
    pub fn messages_before(
        &self,
        conversation: Uuid,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> StoreResult<Vec<CachedMessage>> {
        let mut out = self.read(|c| {
            let (sql, at, id) = match before {
                Some((at, id)) => (
                    "select m.id, m.conversation_id, m.sender_id, m.content, m.kind, m.created_at, m.updated_at, m.deleted_at,
                            p.full_name
                     from messages m left join profiles p on p.id = m.sender_id
                     where m.conversation_id = ?1 and (m.created_at, m.id) < (?2, ?3)
                     order by m.created_at desc, m.id desc limit ?4",
                    ts(at),
                    id.to_string(),
                ),
                None => (
                    "select m.id, m.conversation_id, m.sender_id, m.content, m.kind, m.created_at, m.updated_at, m.deleted_at,
                            p.full_name
                     from messages m left join profiles p on p.id = m.sender_id
                     where m.conversation_id = ?1 and ?2 = ?2 and ?3 = ?3
                     order by m.created_at desc, m.id desc limit ?4",
                    String::new(),
                    String::new(),
                ),
            };
            let mut stmt = c.prepare_cached(sql)?;
            let rows = stmt.query_map(params![conversation.to_string(), at, id, limit as i64], raw_message)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        out.reverse();
        out.into_iter().map(RawMessage::parse).collect()
    }

    pub fn message(&self, id: Uuid) -> StoreResult<Option<CachedMessage>> {
        self.read(|c| {
            c.query_row(
                "select m.id, m.conversation_id, m.sender_id, m.content, m.kind, m.created_at, m.updated_at, m.deleted_at,
                        p.full_name
                 from messages m left join profiles p on p.id = m.sender_id where m.id = ?1",
                [id.to_string()],
                raw_message,
            )
            .optional()
        })?
        .map(RawMessage::parse)
        .transpose()
    }

    /// Full-text search over the cache (offline too): the `limit` best matches by BM25
    /// rank, best first, among the newest [`RANK_WINDOW`] matches of the whole cache (all of
    /// them when there are fewer) — so a common word in a million messages costs a bounded
    /// ranking, and a rare one is ranked over everything. Deleted messages have no text and
    /// never match.
    pub fn search(&self, query: &str, limit: usize) -> StoreResult<Vec<CachedMessage>> {
        let Some(fts) = fts_query(query) else { return Ok(Vec::new()) };
        let raw = self.read(|c| {
            // The rowid of the RANK_WINDOW-th newest match (FTS5 walks its doclist backwards
            // and stops there); none when there are fewer matches.
            let floor: i64 = c
                .prepare_cached(
                    "select rowid from messages_fts where messages_fts match ?1 order by rowid desc limit 1 offset ?2",
                )?
                .query_row(params![fts, (RANK_WINDOW - 1) as i64], |r| r.get(0))
                .optional()?
                .unwrap_or(0);
            let mut stmt = c.prepare_cached(
                "select m.id, m.conversation_id, m.sender_id, m.content, m.kind, m.created_at, m.updated_at, m.deleted_at,
                        p.full_name
                 from (select rowid, rank from messages_fts where messages_fts match ?1 and rowid >= ?3
                       order by rank limit ?2) f
                 join messages m on m.rowid = f.rowid
                 left join profiles p on p.id = m.sender_id
                 where m.deleted_at is null
                 order by f.rank, m.created_at desc",
            )?;
            let rows = stmt.query_map(params![fts, limit as i64, floor], raw_message)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        raw.into_iter().map(RawMessage::parse).collect()
    }

    // --- conversations, members, profiles --------------------------------------------------

    /// Replaces what the cache knows of the caller's conversations with the server's list:
    /// upserts these, marks the others as left (their history stays readable).
    pub fn replace_conversations(&self, list: &[rows::Conversation], now: DateTime<Utc>) -> StoreResult<()> {
        self.write(|tx| {
            let mut up = tx.prepare_cached(
                "insert into conversations (id, kind, title, meta, created_at, updated_at, left_at)
                 values (?1, ?2, ?3, ?4, ?5, ?6, null)
                 on conflict (id) do update set kind = excluded.kind, title = excluded.title, meta = excluded.meta,
                   updated_at = max(conversations.updated_at, excluded.updated_at), left_at = null",
            )?;
            for c in list {
                up.execute(params![c.id.to_string(), c.kind, c.title, c.meta.to_string(), ts(c.created_at), ts(c.updated_at)])?;
            }
            let ids: Vec<String> = list.iter().map(|c| c.id.to_string()).collect();
            let mut all = tx.prepare_cached("select id from conversations where left_at is null")?;
            let known: Vec<String> = all.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
            for id in known.iter().filter(|id| !ids.contains(id)) {
                tx.execute("update conversations set left_at = ?2, unread_count = 0 where id = ?1", params![id, ts(now)])?;
            }
            Ok(())
        })
    }

    pub fn upsert_conversation(&self, c: &rows::Conversation) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "insert into conversations (id, kind, title, meta, created_at, updated_at)
                 values (?1, ?2, ?3, ?4, ?5, ?6)
                 on conflict (id) do update set kind = excluded.kind, title = excluded.title, meta = excluded.meta,
                   updated_at = max(conversations.updated_at, excluded.updated_at), left_at = null",
                params![c.id.to_string(), c.kind, c.title, c.meta.to_string(), ts(c.created_at), ts(c.updated_at)],
            )?;
            Ok(())
        })
    }

    /// Replaces the members of the conversations in `conversations` with `members`.
    pub fn replace_members(&self, conversations: &[Uuid], members: &[rows::ConversationMember]) -> StoreResult<()> {
        self.write(|tx| {
            for c in conversations {
                tx.execute("delete from members where conversation_id = ?1", [c.to_string()])?;
            }
            let mut ins = tx.prepare_cached(
                "insert or replace into members (conversation_id, user_id, id, role, joined_at, last_read_at)
                 values (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for m in members {
                ins.execute(params![
                    m.conversation_id.to_string(),
                    m.user_id.to_string(),
                    m.id.to_string(),
                    m.role,
                    ts(m.joined_at),
                    ts(m.last_read_at)
                ])?;
            }
            Ok(())
        })
    }

    /// One member row changed (realtime); a later `last_read_at` never goes backwards.
    pub fn upsert_member(&self, m: &rows::ConversationMember) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "insert into members (conversation_id, user_id, id, role, joined_at, last_read_at)
                 values (?1, ?2, ?3, ?4, ?5, ?6)
                 on conflict (conversation_id, user_id) do update set role = excluded.role,
                   last_read_at = max(members.last_read_at, excluded.last_read_at)",
                params![
                    m.conversation_id.to_string(),
                    m.user_id.to_string(),
                    m.id.to_string(),
                    m.role,
                    ts(m.joined_at),
                    ts(m.last_read_at)
                ],
            )?;
            Ok(())
        })
    }

    pub fn remove_member(&self, conversation: Uuid, user: Uuid) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "delete from members where conversation_id = ?1 and user_id = ?2",
                params![conversation.to_string(), user.to_string()],
            )?;
            Ok(())
        })
    }

    pub fn upsert_profiles(&self, profiles: &[rows::Profile]) -> StoreResult<()> {
        self.write(|tx| {
            let mut up =
                tx.prepare_cached("insert or replace into profiles (id, full_name, avatar_url, role) values (?1, ?2, ?3, ?4)")?;
            for p in profiles {
                up.execute(params![p.id.to_string(), p.full_name, p.avatar_url, p.role])?;
            }
            Ok(())
        })
    }

    /// User ids in `members` without a cached profile.
    pub fn members_without_profile(&self) -> StoreResult<Vec<Uuid>> {
        let ids: Vec<String> = self.read(|c| {
            let mut s = c.prepare("select distinct user_id from members where user_id not in (select id from profiles)")?;
            let r = s.query_map([], |r| r.get(0))?.collect();
            r
        })?;
        ids.iter().map(|s| parse_uuid(s)).collect()
    }

    pub fn profile_name(&self, id: Uuid) -> StoreResult<Option<String>> {
        self.read(|c| c.query_row("select full_name from profiles where id = ?1", [id.to_string()], |r| r.get(0)).optional())
    }

    pub fn members(&self, conversation: Uuid) -> StoreResult<Vec<CachedMember>> {
        let raw: Vec<(String, String, String)> = self.read(|c| {
            let mut s = c.prepare_cached(
                "select user_id, role, last_read_at from members where conversation_id = ?1 order by joined_at, user_id",
            )?;
            let r = s.query_map([conversation.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect();
            r
        })?;
        raw.into_iter()
            .map(|(u, role, at)| Ok(CachedMember { user_id: parse_uuid(&u)?, role, last_read_at: parse_ts(&at)? }))
            .collect()
    }

    /// The conversations list, most recent activity first.
    pub fn conversations(&self) -> StoreResult<Vec<CachedConversation>> {
        type Raw = (String, String, Option<String>, String, i64, Option<String>, Option<String>, Option<String>);
        let raw: Vec<Raw> = self.read(|c| {
            let mut s = c.prepare_cached(
                "select c.id, c.kind, c.title, c.updated_at, c.unread_count, c.left_at,
                        (select m.content from messages m where m.conversation_id = c.id and m.deleted_at is null
                          order by m.created_at desc, m.id desc limit 1),
                        (select m.created_at from messages m where m.conversation_id = c.id
                          order by m.created_at desc, m.id desc limit 1)
                 from conversations c
                 order by max(c.updated_at, coalesce((select max(m.created_at) from messages m where m.conversation_id = c.id), '')) desc, c.id",
            )?;
            let r = s
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
                })?
                .collect();
            r
        })?;
        raw.into_iter()
            .map(|(id, kind, title, updated, unread, left, last, last_at)| {
                Ok(CachedConversation {
                    id: parse_uuid(&id)?,
                    kind,
                    title,
                    updated_at: parse_ts(&updated)?,
                    unread_count: unread.max(0) as u32,
                    left: left.is_some(),
                    last_message: last,
                    last_message_at: last_at.as_deref().map(parse_ts).transpose()?,
                })
            })
            .collect()
    }

    pub fn conversation_ids(&self) -> StoreResult<Vec<Uuid>> {
        let ids: Vec<String> = self.read(|c| {
            let mut s = c.prepare("select id from conversations where left_at is null")?;
            let r = s.query_map([], |r| r.get(0))?.collect();
            r
        })?;
        ids.iter().map(|s| parse_uuid(s)).collect()
    }

    pub fn has_conversation(&self, id: Uuid) -> StoreResult<bool> {
        self.read(|c| c.query_row("select exists(select 1 from conversations where id = ?1)", [id.to_string()], |r| r.get(0)))
    }

    pub fn set_unread_counts(&self, counts: &[rows::UnreadCount]) -> StoreResult<()> {
        self.write(|tx| {
            let mut up = tx.prepare_cached("update conversations set unread_count = ?2 where id = ?1")?;
            for c in counts {
                up.execute(params![c.conversation_id.to_string(), c.unread_count])?;
            }
            Ok(())
        })
    }

    pub fn add_unread(&self, conversation: Uuid, delta: i64) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "update conversations set unread_count = max(0, unread_count + ?2) where id = ?1",
                params![conversation.to_string(), delta],
            )?;
            Ok(())
        })
    }

    pub fn set_unread(&self, conversation: Uuid, count: u32) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute("update conversations set unread_count = ?2 where id = ?1", params![conversation.to_string(), count])?;
            Ok(())
        })
    }

    // --- notifications ---------------------------------------------------------------------

    pub fn upsert_notifications(&self, list: &[rows::Notification]) -> StoreResult<()> {
        self.write(|tx| {
            let mut up = tx.prepare_cached(
                "insert or replace into notifications (id, kind, title, body, link, read, created_at)
                 values (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for n in list {
                up.execute(params![n.id.to_string(), n.kind, n.title, n.body, n.link, n.read, ts(n.created_at)])?;
            }
            Ok(())
        })
    }

    /// Marks read the notifications that point at `conversation` (the seed's link
    /// `/conversations/<id>`): reading a conversation clears its part of the bell.
    pub fn mark_conversation_notifications_read(&self, conversation: Uuid) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "update notifications set read = 1 where link = ?1 and read = 0",
                params![format!("/conversations/{conversation}")],
            )?;
            Ok(())
        })
    }

    pub fn unread_notifications(&self) -> StoreResult<u32> {
        self.read(|c| c.query_row("select count(*) from notifications where read = 0", [], |r| r.get(0)))
    }

    // --- sync cursors ------------------------------------------------------------------------

    pub fn cursor(&self, conversation: Uuid) -> StoreResult<Option<Cursor>> {
        type Raw = (Option<String>, Option<String>, Option<String>, bool);
        let raw: Option<Raw> = self.read(|c| {
            c.query_row(
                "select seen_updated_at, floor_created_at, floor_id, complete from sync_cursors where conversation_id = ?1",
                [conversation.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
        })?;
        raw.map(|(seen, floor_at, floor_id, complete)| {
            Ok(Cursor {
                seen_updated_at: seen.as_deref().map(parse_ts).transpose()?,
                floor: match (floor_at, floor_id) {
                    (Some(a), Some(i)) => Some((parse_ts(&a)?, parse_uuid(&i)?)),
                    _ => None,
                },
                complete,
            })
        })
        .transpose()
    }

    pub fn set_cursor(&self, conversation: Uuid, cursor: &Cursor) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "insert or replace into sync_cursors (conversation_id, seen_updated_at, floor_created_at, floor_id, complete)
                 values (?1, ?2, ?3, ?4, ?5)",
                params![
                    conversation.to_string(),
                    cursor.seen_updated_at.map(ts),
                    cursor.floor.map(|f| ts(f.0)),
                    cursor.floor.map(|f| f.1.to_string()),
                    cursor.complete
                ],
            )?;
            Ok(())
        })
    }
}

/// Upserts inside an open transaction (also used by the outbox when it confirms a send).
pub(crate) fn upsert_messages_tx(tx: &Transaction<'_>, messages: &[rows::Message]) -> rusqlite::Result<Vec<Uuid>> {
    let mut up = tx.prepare_cached(
        // A deleted message keeps no text here (nor in the search index): the server keeps it
        // for its audit trail, the cache only needs the tombstone.
        "insert into messages (id, conversation_id, sender_id, content, kind, attachments, meta, created_at, updated_at, deleted_at)
         values (?1, ?2, ?3, case when ?10 is null then ?4 else '' end, ?5, ?6, ?7, ?8, ?9, ?10)
         on conflict (id) do update set content = excluded.content, kind = excluded.kind,
           attachments = excluded.attachments, meta = excluded.meta, updated_at = excluded.updated_at,
           deleted_at = excluded.deleted_at
         where excluded.updated_at > messages.updated_at
            or (excluded.updated_at = messages.updated_at and
                (excluded.content is not messages.content or excluded.deleted_at is not messages.deleted_at))",
    )?;
    let mut changed = Vec::new();
    for m in messages {
        let n = up.execute(params![
            m.id.to_string(),
            m.conversation_id.to_string(),
            m.sender_id.to_string(),
            m.content,
            m.kind,
            m.attachments.to_string(),
            m.meta.to_string(),
            ts(m.created_at),
            ts(m.updated_at),
            m.deleted_at.map(ts)
        ])?;
        if n > 0 {
            changed.push(m.id);
        }
    }
    Ok(changed)
}

/// A message as the cache holds it (server-confirmed).
#[derive(Debug, Clone, PartialEq)]
pub struct CachedMessage {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub sender_id: Uuid,
    pub content: String,
    pub kind: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// The sender's name, when the cache has their profile.
    pub sender_name: Option<String>,
}

struct RawMessage([String; 7], Option<String>, Option<String>);

fn raw_message(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawMessage> {
    Ok(RawMessage([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?], r.get(7)?, r.get(8)?))
}

impl RawMessage {
    fn parse(self) -> StoreResult<CachedMessage> {
        let [id, conv, sender, content, kind, created, updated] = self.0;
        Ok(CachedMessage {
            id: parse_uuid(&id)?,
            conversation_id: parse_uuid(&conv)?,
            sender_id: parse_uuid(&sender)?,
            content,
            kind,
            created_at: parse_ts(&created)?,
            updated_at: parse_ts(&updated)?,
            deleted_at: self.1.as_deref().map(parse_ts).transpose()?,
            sender_name: self.2,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CachedConversation {
    pub id: Uuid,
    pub kind: String,
    pub title: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub unread_count: u32,
    /// The server no longer lists it for us.
    pub left: bool,
    pub last_message: Option<String>,
    pub last_message_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CachedMember {
    pub user_id: Uuid,
    pub role: String,
    pub last_read_at: DateTime<Utc>,
}

/// How far a conversation's cache reaches (see the `sync_cursors` table).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cursor {
    /// The newest server `updated_at` a catch-up has seen.
    pub seen_updated_at: Option<DateTime<Utc>>,
    /// The oldest message of the unbroken cached history.
    pub floor: Option<(DateTime<Utc>, Uuid)>,
    /// The cached history reaches the conversation's first message.
    pub complete: bool,
}

/// Folds text for the index and for queries the same way (ß → ss; the tokenizer does the rest).
pub fn fold(text: &str) -> String {
    text.replace('ß', "ss").replace('ẞ', "SS")
}

/// A user's words as an FTS5 query: every word must occur, each as a prefix; FTS5 syntax in
/// the input is taken literally. `None` when there is no word to search for.
pub fn fts_query(input: &str) -> Option<String> {
    let terms: Vec<String> =
        fold(input).split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(|w| format!("\"{w}\"*")).collect();
    (!terms.is_empty()).then(|| terms.join(" "))
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
    fn fts_query_quotes_and_folds() {
        assert_eq!(fts_query("Fließen  leger").as_deref(), Some("\"Fliessen\"* \"leger\"*"));
        assert_eq!(fts_query("a\"b OR c*"), Some("\"a\"* \"b\"* \"OR\"* \"c\"*".to_owned()));
        assert_eq!(fts_query("  ,.; "), None);
    }

    #[test]
    fn timestamps_sort_as_text() {
        let a = parse_ts("2026-01-01T10:00:00+00:00").unwrap();
        let b = parse_ts("2026-01-01T10:00:00.5+01:00").unwrap();
        assert!(ts(b) < ts(a));
        assert_eq!(ts(a), "2026-01-01T10:00:00.000000Z");
    }
}
