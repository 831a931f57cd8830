//! The outbox: everything the user does while the server may be away — send, edit, delete,
//! mark as read — goes out from here, in order, exactly once.
//!
//! Modelled on matrix-rust-sdk's send queue (`crates/matrix-sdk/src/send_queue`).
//!
//! # Entries and states
//!
//! An [`Entry`] is one request: [`Op::Send`] (a new message), [`Op::Edit`], [`Op::Delete`]
//! (soft delete), [`Op::Read`] (move `last_read_at`) or [`Op::NotificationRead`] (one
//! notification, or all up to a time; these queue under the nil conversation id, so a
//! failed message never holds back the bell). Its id is a UUIDv7 generated here;
//! for a send it is also the message's id, which makes the server insert idempotent.
//! Persisted states ([`EntryState`]):
//!
//! - `queued` — waiting for its turn or for the network. While a worker has the request in
//!   flight it shows as [`SendState::Sending`]; that is not persisted, so after a crash the
//!   entry is simply `queued` again.
//! - `failed` — the server refused it for good (row-level security `42501`, a check `23514`,
//!   an id taken by a message we cannot see…). The reason is stored with it. It stays until
//!   the user retries ([`Outbox::retry`]) or drops it ([`Outbox::discard`]).
//!
//! An entry leaves the outbox only when the server has confirmed it; for a send, the
//! confirmed row is written to the cache in the same transaction that removes the entry.
//!
//! # Invariants
//!
//! - **Persisted before shown.** [`Outbox::send`] commits the entry (and clears the draft)
//!   before it returns the id; the timeline shows unsent messages from the outbox itself, so
//!   a local echo can never exist without its entry.
//! - **Ordered per conversation.** Entries of one conversation go out strictly in enqueue
//!   order (`seq`), one at a time, by one worker. A `failed` entry stops its conversation:
//!   later ones wait (shown as queued) until it is retried or discarded, so nothing
//!   overtakes it. Other conversations are not affected.
//! - **Exactly once.** A send is `POST /rest/v1/messages?on_conflict=id` with `Prefer:
//!   return=representation,resolution=ignore-duplicates`. A resend of an id the server
//!   already has answers `[]`; a refusal may also hide a message that did arrive (the
//!   INSERT policy is checked before the conflict: BRIEF "Known traps"). Both are settled by
//!   reading the message by id: found in the same conversation = sent. Edits, deletes and
//!   read marks are idempotent by nature (same values again), and settled the same way when
//!   the server answers with no row.
//! - **Retry kinds.** No answer, 5xx, 429 and 408 are transient: the entry stays queued
//!   and the worker retries with exponential backoff and jitter from 0.5 s up to 60 s
//!   ([`crate::backoff::OUTBOX`]), and at once when the connection comes back ([`Outbox::wake_all`]). A 401
//!   refreshes the token and retries at once. Anything else is permanent.
//!
//! # Crash behaviour
//!
//! Kill the process at any instant: an entry committed before the kill is still there
//! afterwards; one whose request reached the server but whose removal did not commit is sent
//! again, answered `[]`, settled by id, and removed — never duplicated. The outbox lives in
//! its own file (`outbox.sqlite3`; new entries are synced to disk before they are shown), so
//! a damaged cache cannot take it along.
//!
//! # Delivery modes
//!
//! [`Outbox::drain_once`] makes one bounded pass (the CLI's `send` and `sync`): it stops at
//! the first transient failure or at a deadline, leaving the rest queued. [`Outbox::start`]
//! runs the patient workers (the app, `watch`): one supervised task per conversation with
//! entries, woken by a `Notify` when something is enqueued, retried or reconnected.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::events::{Event, Events};
use crate::session::Session;
use crate::store::{self, parse_ts, parse_uuid, ts, Store, StoreResult};
use crate::supervisor::{self, TaskHandle};

mod delivery;
mod worker;

use worker::worker;

/// The longest message the server accepts (characters).
pub const MAX_MESSAGE_CHARS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Send,
    Edit,
    Delete,
    Read,
    NotificationRead,
}

/// The queue of entries that belong to no conversation (notification reads).
pub const ACCOUNT_QUEUE: Uuid = Uuid::nil();

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Send => "send",
            Op::Edit => "edit",
            Op::Delete => "delete",
            Op::Read => "read",
            Op::NotificationRead => "notification_read",
        }
    }

    fn parse(s: &str) -> StoreResult<Op> {
        Ok(match s {
            "send" => Op::Send,
            "edit" => Op::Edit,
            "delete" => Op::Delete,
            "read" => Op::Read,
            "notification_read" => Op::NotificationRead,
            other => return Err(store::StoreError::Malformed(format!("outbox op {other:?}"))),
        })
    }
}

/// The persisted state of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    Queued,
    Failed,
}

/// The send state shown on a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SendState {
    Queued,
    Sending,
    Sent,
    Read,
    Failed,
}

impl SendState {
    pub fn as_str(self) -> &'static str {
        match self {
            SendState::Queued => "queued",
            SendState::Sending => "sending",
            SendState::Sent => "sent",
            SendState::Read => "read",
            SendState::Failed => "failed",
        }
    }
}

/// Why the server refused an entry for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The server's SQLSTATE / PostgREST code (`42501`, `23514`, …) or ours (`id_conflict`).
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

/// One outbox entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub seq: i64,
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub op: Op,
    pub message_id: Option<Uuid>,
    pub body: Value,
    pub state: EntryState,
    pub attempts: u32,
    pub error: Option<Failure>,
    pub created_at: DateTime<Utc>,
}

impl Entry {
    /// The text of a send or an edit.
    pub fn content(&self) -> Option<&str> {
        self.body.get("content").and_then(Value::as_str)
    }
}

/// What one attempt at a conversation's head entry came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// The head entry was confirmed and removed.
    Done { entry: Uuid },
    /// Nothing is queued in the conversation.
    Empty,
    /// The head entry has failed; later ones wait.
    Blocked { entry: Uuid },
    /// The server could not be reached (or is overloaded); try again later.
    Transient { entry: Uuid, error: String },
    /// The head entry was refused for good and is now failed.
    Failed { entry: Uuid, failure: Failure },
}

/// How a bounded pass over one conversation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum DrainOutcome {
    /// Everything was delivered.
    Empty,
    /// A failed entry stops the conversation.
    Blocked,
    /// The server is unreachable or busy; the rest stays queued.
    Unreachable(String),
    /// The deadline passed.
    TimedOut,
}

/// Backoff before retry number `attempt` (0-based) after a transient failure: 0.5 s doubling
/// up to 60 s, with ±25 % jitter (`jitter` in [0, 1)), never below 0.5 s nor above 60 s
/// ([`crate::backoff::OUTBOX`]).
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    crate::backoff::OUTBOX.delay(attempt, jitter)
}

/// Is `content` a message the server will take? (Same rule as its `valid_content` check.)
pub fn validate_content(content: &str) -> Result<()> {
    if content.trim_matches([' ', '\t', '\r', '\n', '\u{c}', '\u{b}']).is_empty() {
        return Err(Error::invalid("a message needs some text"));
    }
    let n = content.chars().count();
    if n > MAX_MESSAGE_CHARS {
        return Err(Error::invalid(format!("a message may have at most {MAX_MESSAGE_CHARS} characters (this one has {n})")));
    }
    Ok(())
}

struct Live {
    workers: HashMap<Uuid, (Arc<Notify>, TaskHandle)>,
}

/// The outbox of one account.
pub struct Outbox {
    me: Weak<Outbox>,
    store: Arc<Store>,
    session: Arc<Session>,
    events: Events,
    in_flight: Mutex<HashSet<Uuid>>,
    live: Mutex<Option<Live>>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

/// Marks an entry in flight for as long as it lives (also when the attempt is cancelled).
struct InFlight<'a>(&'a Mutex<HashSet<Uuid>>, Uuid);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.1);
    }
}

const ENTRY_COLUMNS: &str =
    "seq, id, conversation_id, op, message_id, body, state, attempts, error_code, error_message, created_at";

type RawEntry = (i64, String, String, String, Option<String>, String, String, u32, Option<String>, Option<String>, String);

fn raw_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawEntry> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?))
}

fn parse_entry(raw: RawEntry) -> StoreResult<Entry> {
    let (seq, id, conv, op, message, body, state, attempts, code, message_text, created) = raw;
    Ok(Entry {
        seq,
        id: parse_uuid(&id)?,
        conversation_id: parse_uuid(&conv)?,
        op: Op::parse(&op)?,
        message_id: message.as_deref().map(parse_uuid).transpose()?,
        body: serde_json::from_str(&body).map_err(|e| store::StoreError::Malformed(format!("outbox body: {e}")))?,
        state: if state == "failed" { EntryState::Failed } else { EntryState::Queued },
        attempts,
        error: code.map(|code| Failure { code, message: message_text.unwrap_or_default() }),
        created_at: parse_ts(&created)?,
    })
}

impl Outbox {
    pub fn new(store: Arc<Store>, session: Arc<Session>, events: Events) -> Arc<Outbox> {
        Arc::new_cyclic(|me| Outbox {
            me: me.clone(),
            store,
            session,
            events,
            in_flight: Mutex::new(HashSet::new()),
            live: Mutex::new(None),
        })
    }

    // --- reading ----------------------------------------------------------------------------

    /// Every entry, in delivery order (per conversation by `seq`).
    pub fn entries(&self) -> Result<Vec<Entry>> {
        self.query(&format!("select {ENTRY_COLUMNS} from local.outbox order by seq"), params![])
    }

    /// The entries of one conversation, in order.
    pub fn entries_for(&self, conversation: Uuid) -> Result<Vec<Entry>> {
        self.query(
            &format!("select {ENTRY_COLUMNS} from local.outbox where conversation_id = ?1 order by seq"),
            params![conversation.to_string()],
        )
    }

    pub fn entry(&self, id: Uuid) -> Result<Option<Entry>> {
        Ok(self.query(&format!("select {ENTRY_COLUMNS} from local.outbox where id = ?1"), params![id.to_string()])?.pop())
    }

    /// The entry for a message's send, if it has not been confirmed yet.
    pub fn send_entry(&self, message: Uuid) -> Result<Option<Entry>> {
        Ok(self
            .query(
                &format!("select {ENTRY_COLUMNS} from local.outbox where op = 'send' and message_id = ?1"),
                params![message.to_string()],
            )?
            .pop())
    }

    /// The entries (send, edit, delete) that concern one message, in order.
    pub fn entries_for_message(&self, message: Uuid) -> Result<Vec<Entry>> {
        self.query(
            &format!("select {ENTRY_COLUMNS} from local.outbox where message_id = ?1 order by seq"),
            params![message.to_string()],
        )
    }

    fn query(&self, sql: &str, p: &[&dyn rusqlite::ToSql]) -> Result<Vec<Entry>> {
        let raw = self.store.read(|c| {
            let mut s = c.prepare_cached(sql)?;
            let r = s.query_map(p, raw_entry)?.collect::<rusqlite::Result<Vec<_>>>();
            r
        })?;
        Ok(raw.into_iter().map(parse_entry).collect::<StoreResult<_>>()?)
    }

    /// Conversations that have entries.
    pub fn conversations(&self) -> Result<Vec<Uuid>> {
        let ids: Vec<String> = self.store.read(|c| {
            let mut s = c.prepare("select conversation_id from local.outbox group by conversation_id order by min(seq)")?;
            let r = s.query_map([], |r| r.get(0))?.collect();
            r
        })?;
        Ok(ids.iter().map(|s| parse_uuid(s)).collect::<StoreResult<_>>()?)
    }

    /// How a queued or failed entry shows on its message.
    pub fn state_of(&self, entry: &Entry) -> SendState {
        match entry.state {
            EntryState::Failed => SendState::Failed,
            EntryState::Queued if self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).contains(&entry.id) => {
                SendState::Sending
            }
            EntryState::Queued => SendState::Queued,
        }
    }

    // --- enqueueing -------------------------------------------------------------------------

    fn insert(&self, conversation: Uuid, op: Op, message: Option<Uuid>, body: &Value, id: Uuid, clear_draft: bool) -> Result<()> {
        self.store.write_durable(|tx| {
            tx.execute(
                "insert into local.outbox (id, conversation_id, op, message_id, body, created_at)
                 values (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id.to_string(),
                    conversation.to_string(),
                    op.as_str(),
                    message.map(|m| m.to_string()),
                    body.to_string(),
                    ts(Utc::now())
                ],
            )?;
            if clear_draft {
                tx.execute("delete from local.drafts where conversation_id = ?1", [conversation.to_string()])?;
            }
            Ok(())
        })?;
        Ok(())
    }

    fn emit(&self, entry: Uuid, conversation: Uuid, message: Option<Uuid>, state: SendState, error: Option<String>) {
        self.events.emit(Event::OutboxChanged {
            entry_id: entry,
            conversation_id: conversation,
            message_id: message,
            state,
            error,
        });
    }

    /// Queues a new message; returns its id (a UUIDv7) once it is persisted. Clears the draft.
    pub fn send(&self, conversation: Uuid, content: &str) -> Result<Uuid> {
        validate_content(content)?;
        let id = Uuid::now_v7();
        self.insert(conversation, Op::Send, Some(id), &json!({"content": content}), id, true)?;
        self.emit(id, conversation, Some(id), SendState::Queued, None);
        self.events.emit(Event::MessageUpserted { conversation_id: conversation, message_id: id });
        self.wake(conversation);
        Ok(id)
    }

    /// The conversation of one of our own messages (cached or still queued).
    fn own_message(&self, message: Uuid) -> Result<(Uuid, Option<Entry>)> {
        if let Some(entry) = self.send_entry(message)? {
            return Ok((entry.conversation_id, Some(entry)));
        }
        match self.store.message(message)? {
            Some(m) if m.sender_id == self.session.user_id() => Ok((m.conversation_id, None)),
            Some(_) => Err(Error::invalid("only your own messages can be changed")),
            None => Err(Error::NotFound(format!("message {message}"))),
        }
    }

    fn is_in_flight(&self, entry: Uuid) -> bool {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).contains(&entry)
    }

    /// Edits one of our messages. A send still waiting in the outbox is rewritten in place;
    /// otherwise an edit is queued behind everything before it.
    pub fn edit(&self, message: Uuid, content: &str) -> Result<Uuid> {
        validate_content(content)?;
        let (conversation, pending) = self.own_message(message)?;
        if let Some(entry) = pending.filter(|e| self.never_tried(e)) {
            let body = json!({"content": content}).to_string();
            let changed = self.store.write_durable(|tx| {
                tx.execute("update local.outbox set body = ?2 where id = ?1", params![entry.id.to_string(), body])
            })?;
            if changed == 1 {
                self.events.emit(Event::MessageUpserted { conversation_id: conversation, message_id: message });
                return Ok(entry.id);
            }
        }
        let id = Uuid::now_v7();
        self.insert(conversation, Op::Edit, Some(message), &json!({"content": content}), id, false)?;
        self.emit(id, conversation, Some(message), SendState::Queued, None);
        self.events.emit(Event::MessageUpserted { conversation_id: conversation, message_id: message });
        self.wake(conversation);
        Ok(id)
    }

    /// A send that no attempt has started (none in flight, none recorded): it can still be
    /// rewritten or cancelled in place. Once an attempt began, its request may have reached the
    /// server even if no answer came back, so an edit or delete must follow it as its own entry.
    fn never_tried(&self, entry: &Entry) -> bool {
        entry.attempts == 0 && !self.is_in_flight(entry.id)
    }

    /// Deletes one of our messages (a soft delete on the server). A send that no attempt has
    /// started yet is simply cancelled, with its queued edits.
    pub fn delete(&self, message: Uuid) -> Result<Option<Uuid>> {
        let (conversation, pending) = self.own_message(message)?;
        if let Some(entry) = pending.filter(|e| self.never_tried(e)) {
            self.remove_with_dependents(&entry)?;
            self.events.emit(Event::MessageUpserted { conversation_id: conversation, message_id: message });
            self.wake(conversation);
            return Ok(None);
        }
        let id = Uuid::now_v7();
        self.insert(conversation, Op::Delete, Some(message), &json!({}), id, false)?;
        self.emit(id, conversation, Some(message), SendState::Queued, None);
        self.events.emit(Event::MessageUpserted { conversation_id: conversation, message_id: message });
        self.wake(conversation);
        Ok(Some(id))
    }

    /// Marks a conversation read up to `at` (usually now). A queued mark for the same
    /// conversation is moved forward instead of adding another.
    pub fn mark_read(&self, conversation: Uuid, at: DateTime<Utc>) -> Result<Uuid> {
        let me = self.session.user_id();
        let at_text = ts(at);
        let existing: Option<(String, String)> = self.store.read(|c| {
            c.query_row(
                "select id, body from local.outbox where conversation_id = ?1 and op = 'read' and state = 'queued'
                 order by seq desc limit 1",
                [conversation.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })?;
        let id = match existing {
            Some((id, body)) if !self.is_in_flight(parse_uuid(&id).map_err(Error::from)?) => {
                let old: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let newer = old.get("last_read_at").and_then(Value::as_str).is_none_or(|o| o < at_text.as_str());
                if newer {
                    self.store.write(|tx| {
                        tx.execute(
                            "update local.outbox set body = ?2 where id = ?1",
                            params![id, json!({"last_read_at": at_text}).to_string()],
                        )
                    })?;
                }
                parse_uuid(&id)?
            }
            _ => {
                let id = Uuid::now_v7();
                self.insert(conversation, Op::Read, None, &json!({"last_read_at": at_text}), id, false)?;
                id
            }
        };
        // Optimistic local state: nothing unread, our own read mark moved, the conversation's
        // notifications read.
        self.store.set_unread(conversation, 0)?;
        self.store.mark_conversation_notifications_read(conversation)?;
        self.events.notification_count(&self.store);
        self.store.write(|tx| {
            tx.execute(
                "update members set last_read_at = max(last_read_at, ?3) where conversation_id = ?1 and user_id = ?2",
                params![conversation.to_string(), me.to_string(), at_text],
            )
        })?;
        self.events.emit(Event::ConversationChanged { conversation_id: conversation });
        self.wake(conversation);
        Ok(id)
    }

    /// Marks one notification read (`Some(id)`), or all created up to `until` (`None`):
    /// at once in the cache, on the server through the account queue (works offline).
    pub fn mark_notifications_read(&self, notification: Option<Uuid>, until: DateTime<Utc>) -> Result<Uuid> {
        let body = match notification {
            Some(id) => json!({"id": id}),
            None => json!({"until": ts(until)}),
        };
        let id = Uuid::now_v7();
        self.insert(ACCOUNT_QUEUE, Op::NotificationRead, None, &body, id, false)?;
        match notification {
            Some(n) => {
                self.store.mark_notification_read(n)?;
            }
            None => self.store.mark_notifications_read_until(until)?,
        }
        self.events.notification_count(&self.store);
        self.wake(ACCOUNT_QUEUE);
        Ok(id)
    }

    /// Puts a failed entry back in the queue.
    pub fn retry(&self, entry: Uuid) -> Result<()> {
        let Some(e) = self.entry(entry)? else { return Err(Error::NotFound(format!("outbox entry {entry}"))) };
        self.store.write(|tx| {
            tx.execute(
                "update local.outbox set state = 'queued', attempts = 0, error_code = null, error_message = null where id = ?1",
                [entry.to_string()],
            )
        })?;
        self.emit(entry, e.conversation_id, e.message_id, SendState::Queued, None);
        self.wake(e.conversation_id);
        Ok(())
    }

    /// Drops an entry (a failed one, usually). Dropping a send drops the message's queued
    /// edits and deletes too; the later entries of the conversation go on.
    pub fn discard(&self, entry: Uuid) -> Result<()> {
        let Some(e) = self.entry(entry)? else { return Err(Error::NotFound(format!("outbox entry {entry}"))) };
        if self.is_in_flight(e.id) {
            return Err(Error::invalid("the entry is being sent right now"));
        }
        self.remove_with_dependents(&e)?;
        if let Some(m) = e.message_id {
            self.events.emit(Event::MessageUpserted { conversation_id: e.conversation_id, message_id: m });
        }
        self.wake(e.conversation_id);
        Ok(())
    }

    fn remove_with_dependents(&self, e: &Entry) -> Result<()> {
        self.store.write_durable(|tx| {
            tx.execute("delete from local.outbox where id = ?1", [e.id.to_string()])?;
            if e.op == Op::Send {
                if let Some(m) = e.message_id {
                    tx.execute("delete from local.outbox where message_id = ?1 and op in ('edit', 'delete')", [m.to_string()])?;
                }
            }
            Ok(())
        })?;
        Ok(())
    }

    // --- patient workers ----------------------------------------------------------------------

    /// Starts the workers: one per conversation with entries now, and one for each
    /// conversation that gets an entry later.
    pub fn start(&self) -> Result<()> {
        {
            let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            if live.is_none() {
                *live = Some(Live { workers: HashMap::new() });
            }
        }
        for conversation in self.conversations()? {
            self.wake(conversation);
        }
        Ok(())
    }

    /// Stops the workers (entries stay as they are).
    pub fn stop(&self) {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Wakes the worker of `conversation` (starting it if workers run and it has none).
    pub fn wake(&self, conversation: Uuid) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let Some(live) = live.as_mut() else { return };
        live.workers.retain(|_, (_, handle)| !handle.is_finished());
        if let Some((notify, _)) = live.workers.get(&conversation) {
            notify.notify_one();
            return;
        }
        let Some(me) = self.me.upgrade() else { return };
        let notify = Arc::new(Notify::new());
        let handle = supervisor::spawn(format!("outbox:{conversation}"), true, worker(me, conversation, notify.clone()));
        live.workers.insert(conversation, (notify, handle));
    }

    /// Wakes every worker: the connection is back, retry now instead of after the backoff.
    pub fn wake_all(&self) {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(live) = live.as_ref() {
            for (notify, _) in live.workers.values() {
                notify.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_minute_with_jitter() {
        assert_eq!(backoff(0, 0.5), Duration::from_millis(500));
        assert!(backoff(0, 0.0) >= Duration::from_millis(500));
        assert_eq!(backoff(1, 0.5), Duration::from_secs(1));
        assert_eq!(backoff(3, 0.5), Duration::from_secs(4));
        assert_eq!(backoff(20, 0.99), Duration::from_secs(60));
        assert!(backoff(6, 0.0) >= Duration::from_secs(24));
        assert!(backoff(6, 0.99) <= Duration::from_secs(40));
    }

    #[test]
    fn content_rules_match_the_server() {
        assert!(validate_content("Hallo").is_ok());
        assert_eq!(validate_content(" \t\n").unwrap_err().code(), "invalid_input");
        assert!(validate_content(&"x".repeat(10_000)).is_ok());
        assert!(validate_content(&"ü".repeat(10_001)).is_err());
    }
}
