//! The outbox queue's SQL (`local.outbox`, in the outbox file): entries in order per
//! conversation, the record of each attempt, confirmation, failure, retry and discard.
//!
//! The delivery rules live in [`crate::outbox`]; here is only what is written, and in which
//! transaction. Two writes are made to share one transaction on the drain's hot path:
//! [`Store::begin_attempt`] writes the previous entry's confirmation, reads the next head
//! and records its attempt, all before that request leaves.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;
use werkfunk_protocol::rows;

use super::messages::upsert_messages_tx;
use super::views::USER_OPS;
use super::{parse_ts, parse_uuid, ts, Store, StoreError, StoreResult};

/// What an entry asks of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Send,
    Edit,
    Delete,
    Read,
    NotificationRead,
}

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
            other => return Err(StoreError::Malformed(format!("outbox op {other:?}"))),
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
    /// Attempts begun (recorded before each request leaves).
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

/// What the server confirmed for a delivered entry; written in the transaction that removes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirmation {
    pub entry: Uuid,
    /// The message row the server answered (send, edit, delete).
    pub message: Option<rows::Message>,
    /// Our membership row with its new read position (read marks).
    pub member: Option<rows::ConversationMember>,
}

/// The head of a conversation's queue, as [`Store::begin_attempt`] found it.
#[derive(Debug, Clone, PartialEq)]
pub enum Head {
    /// Nothing is queued.
    Empty,
    /// The head has failed; later entries wait.
    Failed(Entry),
    /// The head is queued and its attempt is now recorded (`attempts` counts it).
    Begun(Entry),
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
        body: serde_json::from_str(&body).map_err(|e| StoreError::Malformed(format!("outbox body: {e}")))?,
        state: if state == "failed" { EntryState::Failed } else { EntryState::Queued },
        attempts,
        error: code.map(|code| Failure { code, message: message_text.unwrap_or_default() }),
        created_at: parse_ts(&created)?,
    })
}

/// Which entries a listing returns.
enum Selection {
    All,
    Conversation(Uuid),
    Id(Uuid),
    SendOf(Uuid),
    Message(Uuid),
}

impl Store {
    async fn entries_where(&self, selection: Selection) -> StoreResult<Vec<Entry>> {
        let (filter, key) = match selection {
            Selection::All => ("?1 is null", None),
            Selection::Conversation(c) => ("conversation_id = ?1", Some(c)),
            Selection::Id(id) => ("id = ?1", Some(id)),
            Selection::SendOf(m) => ("op = 'send' and message_id = ?1", Some(m)),
            Selection::Message(m) => ("message_id = ?1", Some(m)),
        };
        let sql = format!("select {ENTRY_COLUMNS} from local.outbox where {filter} order by seq");
        let raw = self
            .read(move |c| {
                let mut s = c.prepare_cached(&sql)?;
                let r = s.query_map([key.map(|k| k.to_string())], raw_entry)?.collect::<rusqlite::Result<Vec<_>>>();
                r
            })
            .await?;
        raw.into_iter().map(parse_entry).collect()
    }

    /// Every entry, in delivery order (per conversation by `seq`).
    pub async fn outbox_entries(&self) -> StoreResult<Vec<Entry>> {
        self.entries_where(Selection::All).await
    }

    /// The entries of one conversation, in order.
    pub async fn outbox_entries_of(&self, conversation: Uuid) -> StoreResult<Vec<Entry>> {
        self.entries_where(Selection::Conversation(conversation)).await
    }

    pub async fn outbox_entry(&self, id: Uuid) -> StoreResult<Option<Entry>> {
        Ok(self.entries_where(Selection::Id(id)).await?.pop())
    }

    /// The entry for a message's send, if it has not been confirmed yet.
    pub async fn outbox_send_entry(&self, message: Uuid) -> StoreResult<Option<Entry>> {
        Ok(self.entries_where(Selection::SendOf(message)).await?.pop())
    }

    /// The entries (send, edit, delete) that concern one message, in order.
    pub async fn outbox_entries_for_message(&self, message: Uuid) -> StoreResult<Vec<Entry>> {
        self.entries_where(Selection::Message(message)).await
    }

    /// Conversations that have entries, the one with the oldest entry first.
    pub async fn outbox_conversations(&self) -> StoreResult<Vec<Uuid>> {
        let ids: Vec<String> = self
            .read(|c| {
                let mut s =
                    c.prepare_cached("select conversation_id from local.outbox group by conversation_id order by min(seq)")?;
                let r = s.query_map([], |r| r.get(0))?.collect();
                r
            })
            .await?;
        ids.iter().map(|s| parse_uuid(s)).collect()
    }

    /// Messages, edits and deletes not yet confirmed by the server (queued or failed).
    pub async fn unsent_count(&self) -> StoreResult<u32> {
        self.read(|c| c.query_row(&format!("select count(*) from local.outbox where op in {USER_OPS}"), [], |r| r.get(0))).await
    }

    /// The newest queued read mark of a conversation: (entry id, body).
    pub async fn queued_read_mark(&self, conversation: Uuid) -> StoreResult<Option<(Uuid, Value)>> {
        let raw: Option<(String, String)> = self
            .read(move |c| {
                c.query_row(
                    "select id, body from local.outbox where conversation_id = ?1 and op = 'read' and state = 'queued'
                     order by seq desc limit 1",
                    [conversation.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
            })
            .await?;
        raw.map(|(id, body)| Ok((parse_uuid(&id)?, serde_json::from_str(&body).unwrap_or(Value::Null)))).transpose()
    }

    // --- writing ---------------------------------------------------------------------------

    /// Queues an entry, synced to disk before this returns; with `clear_draft`, the
    /// conversation's draft goes in the same transaction (sending a message clears it).
    pub async fn enqueue(
        &self,
        id: Uuid,
        conversation: Uuid,
        op: Op,
        message: Option<Uuid>,
        body: &Value,
        clear_draft: bool,
    ) -> StoreResult<()> {
        let body = body.to_string();
        self.write_durable(move |tx| {
            tx.execute(
                "insert into local.outbox (id, conversation_id, op, message_id, body, created_at)
                 values (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id.to_string(),
                    conversation.to_string(),
                    op.as_str(),
                    message.map(|m| m.to_string()),
                    body,
                    ts(Utc::now())
                ],
            )?;
            if clear_draft {
                tx.execute("delete from local.drafts where conversation_id = ?1", [conversation.to_string()])?;
            }
            Ok(())
        })
        .await
    }

    /// Rewrites the body of an entry no attempt has begun; false when one has (or it is gone).
    pub async fn rewrite_untried(&self, entry: Uuid, body: &Value) -> StoreResult<bool> {
        let body = body.to_string();
        self.write_durable(move |tx| {
            tx.execute("update local.outbox set body = ?2 where id = ?1 and attempts = 0", params![entry.to_string(), body])
                .map(|n| n == 1)
        })
        .await
    }

    /// Replaces a queued entry's body (a read mark moved forward).
    pub async fn set_entry_body(&self, entry: Uuid, body: &Value) -> StoreResult<()> {
        let body = body.to_string();
        self.write(move |tx| tx.execute("update local.outbox set body = ?2 where id = ?1", params![entry.to_string(), body]))
            .await?;
        Ok(())
    }

    /// Removes a send no attempt has begun, with its queued edits and deletes; false when an
    /// attempt has begun meanwhile (its request may be out: it cannot be taken back).
    pub async fn cancel_untried(&self, entry: Uuid, message: Uuid) -> StoreResult<bool> {
        self.write_durable(move |tx| {
            if tx.execute("delete from local.outbox where id = ?1 and attempts = 0", [entry.to_string()])? == 0 {
                return Ok(false);
            }
            tx.execute("delete from local.outbox where message_id = ?1 and op in ('edit', 'delete')", [message.to_string()])?;
            Ok(true)
        })
        .await
    }

    /// Drops an entry; dropping a send drops the message's queued edits and deletes too.
    pub async fn discard_entry(&self, entry: &Entry) -> StoreResult<()> {
        let (id, op, message) = (entry.id, entry.op, entry.message_id);
        self.write_durable(move |tx| {
            tx.execute("delete from local.outbox where id = ?1", [id.to_string()])?;
            if let (Op::Send, Some(m)) = (op, message) {
                tx.execute("delete from local.outbox where message_id = ?1 and op in ('edit', 'delete')", [m.to_string()])?;
            }
            Ok(())
        })
        .await
    }

    /// Puts a failed entry back in the queue, as never tried.
    pub async fn retry_entry(&self, entry: Uuid) -> StoreResult<()> {
        self.write(move |tx| {
            tx.execute(
                "update local.outbox set state = 'queued', attempts = 0, error_code = null, error_message = null where id = ?1",
                [entry.to_string()],
            )
        })
        .await?;
        Ok(())
    }

    /// Marks an entry refused for good.
    pub async fn fail_entry(&self, entry: Uuid, failure: &Failure) -> StoreResult<()> {
        let f = failure.clone();
        self.write(move |tx| {
            tx.execute(
                "update local.outbox set state = 'failed', error_code = ?2, error_message = ?3 where id = ?1",
                params![entry.to_string(), f.code, f.message],
            )
        })
        .await?;
        Ok(())
    }

    /// Writes a confirmation on its own (the last of a pass); returns the message ids whose
    /// cached row changed.
    pub async fn confirm(&self, confirmation: Confirmation) -> StoreResult<Vec<Uuid>> {
        self.write(move |tx| confirm_tx(tx, &confirmation)).await
    }

    /// One writer transaction on the drain's hot path: writes `confirmed` (the previous entry
    /// of this conversation, if any), reads the conversation's head and, when it is queued,
    /// records its attempt. Returns the message ids the confirmation changed and the head.
    pub async fn begin_attempt(&self, conversation: Uuid, confirmed: Option<Confirmation>) -> StoreResult<(Vec<Uuid>, Head)> {
        let (changed, raw) = self
            .write(move |tx| {
                let changed = match &confirmed {
                    Some(c) => confirm_tx(tx, c)?,
                    None => Vec::new(),
                };
                let head = tx
                    .prepare_cached(&format!(
                        "select {ENTRY_COLUMNS} from local.outbox where conversation_id = ?1 order by seq limit 1"
                    ))?
                    .query_row([conversation.to_string()], raw_entry)
                    .optional()?;
                if let Some(h) = &head {
                    if h.6 == "queued" {
                        tx.execute("update local.outbox set attempts = attempts + 1 where seq = ?1", [h.0])?;
                    }
                }
                Ok((changed, head))
            })
            .await?;
        let head = match raw.map(parse_entry).transpose()? {
            None => Head::Empty,
            Some(e) if e.state == EntryState::Failed => Head::Failed(e),
            Some(mut e) => {
                e.attempts += 1;
                Head::Begun(e)
            }
        };
        Ok((changed, head))
    }
}

/// The confirmed row into the cache and the entry out of the queue, in one transaction.
fn confirm_tx(tx: &Transaction<'_>, c: &Confirmation) -> rusqlite::Result<Vec<Uuid>> {
    let changed = match &c.message {
        Some(m) => upsert_messages_tx(tx, std::slice::from_ref(m))?,
        None => Vec::new(),
    };
    if let Some(m) = &c.member {
        tx.execute(
            "update members set last_read_at = max(last_read_at, ?3) where conversation_id = ?1 and user_id = ?2",
            params![m.conversation_id.to_string(), m.user_id.to_string(), ts(m.last_read_at)],
        )?;
    }
    tx.execute("delete from local.outbox where id = ?1", [c.entry.to_string()])?;
    Ok(changed)
}
