//! Messages and their full-text index: newer-wins upserts, history pages, search.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};
use uuid::Uuid;
use werkfunk_protocol::rows;

use super::{parse_ts, parse_uuid, ts, Store, StoreResult};

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

const MESSAGE_COLUMNS: &str =
    "m.id, m.conversation_id, m.sender_id, m.content, m.kind, m.created_at, m.updated_at, m.deleted_at, p.full_name";

impl Store {
    /// Stores server rows, never an older version over a newer one (by `updated_at`).
    /// Returns the ids whose cached row changed.
    pub async fn upsert_messages(&self, messages: &[rows::Message]) -> StoreResult<Vec<Uuid>> {
        let messages = messages.to_vec();
        self.write(move |tx| upsert_messages_tx(tx, &messages)).await
    }

    /// The newest `limit` messages of a conversation before `before` (exclusive), oldest first.
    pub async fn messages_before(
        &self,
        conversation: Uuid,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> StoreResult<Vec<CachedMessage>> {
        let mut out = self
            .read(move |c| {
                let (sql, at, id) = match before {
                    Some((at, id)) => (
                        format!(
                            "select {MESSAGE_COLUMNS} from messages m left join profiles p on p.id = m.sender_id
                             where m.conversation_id = ?1 and (m.created_at, m.id) < (?2, ?3)
                             order by m.created_at desc, m.id desc limit ?4"
                        ),
                        ts(at),
                        id.to_string(),
                    ),
                    None => (
                        format!(
                            "select {MESSAGE_COLUMNS} from messages m left join profiles p on p.id = m.sender_id
                             where m.conversation_id = ?1 and ?2 = ?2 and ?3 = ?3
                             order by m.created_at desc, m.id desc limit ?4"
                        ),
                        String::new(),
                        String::new(),
                    ),
                };
                let mut stmt = c.prepare_cached(&sql)?;
                let rows = stmt.query_map(params![conversation.to_string(), at, id, limit as i64], raw_message)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        out.reverse();
        out.into_iter().map(RawMessage::parse).collect()
    }

    /// When the newest cached message of a conversation was created (the server's clock).
    pub async fn newest_created_at(&self, conversation: Uuid) -> StoreResult<Option<DateTime<Utc>>> {
        let newest: Option<String> = self
            .read(move |c| {
                c.query_row("select max(created_at) from messages where conversation_id = ?1", [conversation.to_string()], |r| {
                    r.get(0)
                })
            })
            .await?;
        newest.map(|t| parse_ts(&t)).transpose()
    }

    pub async fn message(&self, id: Uuid) -> StoreResult<Option<CachedMessage>> {
        self.read(move |c| {
            c.query_row(
                &format!("select {MESSAGE_COLUMNS} from messages m left join profiles p on p.id = m.sender_id where m.id = ?1"),
                [id.to_string()],
                raw_message,
            )
            .optional()
        })
        .await?
        .map(RawMessage::parse)
        .transpose()
    }

    /// Full-text search over the whole cache (offline too): the `limit` best matches by BM25
    /// rank over every match, best first; among equal ranks the newest first. The index keeps
    /// no size per message (migration 4), so ranking a match costs no extra read: BM25 weighs
    /// how often and how rare the words are, not the length of a message. Deleted messages
    /// have no text and never match.
    pub async fn search(&self, query: &str, limit: usize) -> StoreResult<Vec<CachedMessage>> {
        let Some(fts) = fts_query(query) else { return Ok(Vec::new()) };
        let raw = self
            .read(move |c| {
                // `order by rank, rowid desc` lets SQLite keep the best `limit` while FTS5 walks
                // the matches once (FTS5's own `order by rank` path sorts them all first).
                let mut stmt = c.prepare_cached(&format!(
                    "select {MESSAGE_COLUMNS}
                     from (select rowid, rank from messages_fts where messages_fts match ?1
                           order by rank, rowid desc limit ?2) f
                     join messages m on m.rowid = f.rowid
                     left join profiles p on p.id = m.sender_id
                     where m.deleted_at is null
                     order by f.rank, m.rowid desc"
                ))?;
                let rows = stmt.query_map(params![fts, limit as i64], raw_message)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        raw.into_iter().map(RawMessage::parse).collect()
    }
}

/// Upserts inside an open transaction (also when the outbox confirms a send).
pub(super) fn upsert_messages_tx(tx: &Transaction<'_>, messages: &[rows::Message]) -> rusqlite::Result<Vec<Uuid>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_query_quotes_and_folds() {
        assert_eq!(fts_query("Fließen  leger").as_deref(), Some("\"Fliessen\"* \"leger\"*"));
        assert_eq!(fts_query("a\"b OR c*"), Some("\"a\"* \"b\"* \"OR\"* \"c\"*".to_owned()));
        assert_eq!(fts_query("  ,.; "), None);
    }
}
