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
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::events::{Event, Events};
use crate::session::Session;
use crate::store::{ts, Store};
use crate::supervisor::{self, TaskHandle};

pub use crate::store::outbox::{Entry, EntryState, Failure, Op};

mod delivery;
mod worker;

use worker::worker;

/// The longest message the server accepts (characters).
pub const MAX_MESSAGE_CHARS: usize = 10_000;

/// The queue of entries that belong to no conversation (notification reads).
pub const ACCOUNT_QUEUE: Uuid = Uuid::nil();

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
    /// Wakes the conversations that had entries at start.
    _finder: TaskHandle,
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
    pub async fn entries(&self) -> Result<Vec<Entry>> {
        Ok(self.store.outbox_entries().await?)
    }

    /// The entries of one conversation, in order.
    pub async fn entries_for(&self, conversation: Uuid) -> Result<Vec<Entry>> {
        Ok(self.store.outbox_entries_of(conversation).await?)
    }

    pub async fn entry(&self, id: Uuid) -> Result<Option<Entry>> {
        Ok(self.store.outbox_entry(id).await?)
    }

    /// The entry for a message's send, if it has not been confirmed yet.
    pub async fn send_entry(&self, message: Uuid) -> Result<Option<Entry>> {
        Ok(self.store.outbox_send_entry(message).await?)
    }

    /// The entries (send, edit, delete) that concern one message, in order.
    pub async fn entries_for_message(&self, message: Uuid) -> Result<Vec<Entry>> {
        Ok(self.store.outbox_entries_for_message(message).await?)
    }

    /// Conversations that have entries.
    pub async fn conversations(&self) -> Result<Vec<Uuid>> {
        Ok(self.store.outbox_conversations().await?)
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
    pub async fn send(&self, conversation: Uuid, content: &str) -> Result<Uuid> {
        validate_content(content)?;
        let id = Uuid::now_v7();
        self.store.enqueue(id, conversation, Op::Send, Some(id), &json!({"content": content}), true).await?;
        self.emit(id, conversation, Some(id), SendState::Queued, None);
        self.events.emit(Event::MessageUpserted { conversation_id: conversation, message_id: id });
        self.wake(conversation);
        Ok(id)
    }

    /// The conversation of one of our own messages (cached or still queued).
    async fn own_message(&self, message: Uuid) -> Result<(Uuid, Option<Entry>)> {
        if let Some(entry) = self.send_entry(message).await? {
            return Ok((entry.conversation_id, Some(entry)));
        }
        match self.store.message(message).await? {
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
    pub async fn edit(&self, message: Uuid, content: &str) -> Result<Uuid> {
        validate_content(content)?;
        let (conversation, pending) = self.own_message(message).await?;
        if let Some(entry) = pending.filter(|e| self.never_tried(e)) {
            if self.store.rewrite_untried(entry.id, &json!({"content": content})).await? {
                self.events.emit(Event::MessageUpserted { conversation_id: conversation, message_id: message });
                return Ok(entry.id);
            }
        }
        let id = Uuid::now_v7();
        self.store.enqueue(id, conversation, Op::Edit, Some(message), &json!({"content": content}), false).await?;
        self.emit(id, conversation, Some(message), SendState::Queued, None);
        self.events.emit(Event::MessageUpserted { conversation_id: conversation, message_id: message });
        self.wake(conversation);
        Ok(id)
    }

    /// A send that no attempt has started (none in flight, none recorded): it can still be
    /// rewritten or cancelled in place. Once an attempt began, its request may have reached the
    /// server even if no answer came back, so an edit or delete must follow it as its own entry.
    /// (The store checks again in the transaction that rewrites or cancels it.)
    fn never_tried(&self, entry: &Entry) -> bool {
        entry.attempts == 0 && !self.is_in_flight(entry.id)
    }

    /// Deletes one of our messages (a soft delete on the server). A send that no attempt has
    /// started yet is simply cancelled, with its queued edits.
    pub async fn delete(&self, message: Uuid) -> Result<Option<Uuid>> {
        let (conversation, pending) = self.own_message(message).await?;
        if let Some(entry) = pending.filter(|e| self.never_tried(e)) {
            if self.store.cancel_untried(entry.id, message).await? {
                self.events.emit(Event::MessageUpserted { conversation_id: conversation, message_id: message });
                self.wake(conversation);
                return Ok(None);
            }
        }
        let id = Uuid::now_v7();
        self.store.enqueue(id, conversation, Op::Delete, Some(message), &json!({}), false).await?;
        self.emit(id, conversation, Some(message), SendState::Queued, None);
        self.events.emit(Event::MessageUpserted { conversation_id: conversation, message_id: message });
        self.wake(conversation);
        Ok(Some(id))
    }

    /// Marks a conversation read up to `at` (usually now). A queued mark for the same
    /// conversation is moved forward instead of adding another.
    pub async fn mark_read(&self, conversation: Uuid, at: DateTime<Utc>) -> Result<Uuid> {
        let me = self.session.user_id();
        let at_text = ts(at);
        let id = match self.store.queued_read_mark(conversation).await? {
            Some((id, old)) if !self.is_in_flight(id) => {
                let newer = old.get("last_read_at").and_then(Value::as_str).is_none_or(|o| o < at_text.as_str());
                if newer {
                    self.store.set_entry_body(id, &json!({"last_read_at": at_text})).await?;
                }
                id
            }
            _ => {
                let id = Uuid::now_v7();
                self.store.enqueue(id, conversation, Op::Read, None, &json!({"last_read_at": at_text}), false).await?;
                id
            }
        };
        // Optimistic local state: nothing unread, our own read mark moved, the conversation's
        // notifications read.
        self.store.set_unread(conversation, 0).await?;
        self.store.mark_conversation_notifications_read(conversation).await?;
        self.events.notification_count(&self.store).await;
        self.store.advance_read(conversation, me, at).await?;
        self.events.emit(Event::ConversationChanged { conversation_id: conversation });
        self.wake(conversation);
        Ok(id)
    }

    /// Marks one notification read (`Some(id)`), or all created up to `until` (`None`):
    /// at once in the cache, on the server through the account queue (works offline).
    pub async fn mark_notifications_read(&self, notification: Option<Uuid>, until: DateTime<Utc>) -> Result<Uuid> {
        let body = match notification {
            Some(id) => json!({"id": id}),
            None => json!({"until": ts(until)}),
        };
        let id = Uuid::now_v7();
        self.store.enqueue(id, ACCOUNT_QUEUE, Op::NotificationRead, None, &body, false).await?;
        match notification {
            Some(n) => {
                self.store.mark_notification_read(n).await?;
            }
            None => self.store.mark_notifications_read_until(until).await?,
        }
        self.events.notification_count(&self.store).await;
        self.wake(ACCOUNT_QUEUE);
        Ok(id)
    }

    /// Puts a failed entry back in the queue.
    pub async fn retry(&self, entry: Uuid) -> Result<()> {
        let Some(e) = self.entry(entry).await? else { return Err(Error::NotFound(format!("outbox entry {entry}"))) };
        self.store.retry_entry(entry).await?;
        self.emit(entry, e.conversation_id, e.message_id, SendState::Queued, None);
        self.wake(e.conversation_id);
        Ok(())
    }

    /// Drops an entry (a failed one, usually). Dropping a send drops the message's queued
    /// edits and deletes too; the later entries of the conversation go on.
    pub async fn discard(&self, entry: Uuid) -> Result<()> {
        let Some(e) = self.entry(entry).await? else { return Err(Error::NotFound(format!("outbox entry {entry}"))) };
        if self.is_in_flight(e.id) {
            return Err(Error::invalid("the entry is being sent right now"));
        }
        self.store.discard_entry(&e).await?;
        if let Some(m) = e.message_id {
            self.events.emit(Event::MessageUpserted { conversation_id: e.conversation_id, message_id: m });
        }
        self.wake(e.conversation_id);
        Ok(())
    }

    // --- patient workers ----------------------------------------------------------------------

    /// Starts the workers: one per conversation with entries now (found by a task, so this
    /// never waits for the store), and one for each conversation that gets an entry later.
    pub fn start(&self) -> Result<()> {
        let Some(me) = self.me.upgrade() else { return Err(Error::Stopped) };
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if live.is_none() {
            let finder = supervisor::spawn("outbox:start", true, async move {
                match me.conversations().await {
                    Ok(list) => list.into_iter().for_each(|c| me.wake(c)),
                    Err(e) => tracing::warn!(error = %e, "outbox: cannot list the queued conversations"),
                }
            });
            *live = Some(Live { workers: HashMap::new(), _finder: finder });
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
