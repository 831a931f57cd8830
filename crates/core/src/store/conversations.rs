//! Conversations, their members, people's profiles, unread counts and the sync cursors that
//! say how far each conversation's cached history reaches.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use uuid::Uuid;
use werkfunk_protocol::rows;

use super::{parse_ts, parse_uuid, ts, Store, StoreResult};

impl Store {
    /// Replaces what the cache knows of the caller's conversations with the server's list:
    /// upserts these, marks the others as left (their history stays readable).
    pub async fn replace_conversations(&self, list: &[rows::Conversation], now: DateTime<Utc>) -> StoreResult<()> {
        let list = list.to_vec();
        self.write(move |tx| {
            for c in &list {
                upsert_conversation_tx(tx, c)?;
            }
            let ids: Vec<String> = list.iter().map(|c| c.id.to_string()).collect();
            let mut all = tx.prepare_cached("select id from conversations where left_at is null")?;
            let known: Vec<String> = all.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
            for id in known.iter().filter(|id| !ids.contains(id)) {
                tx.execute("update conversations set left_at = ?2, unread_count = 0 where id = ?1", params![id, ts(now)])?;
            }
            Ok(())
        })
        .await
    }

    pub async fn upsert_conversation(&self, c: &rows::Conversation) -> StoreResult<()> {
        let c = c.clone();
        self.write(move |tx| upsert_conversation_tx(tx, &c)).await
    }

    /// Replaces the members of the conversations in `conversations` with `members`.
    pub async fn replace_members(&self, conversations: &[Uuid], members: &[rows::ConversationMember]) -> StoreResult<()> {
        let (conversations, members) = (conversations.to_vec(), members.to_vec());
        self.write(move |tx| {
            for c in &conversations {
                tx.execute("delete from members where conversation_id = ?1", [c.to_string()])?;
            }
            let mut ins = tx.prepare_cached(
                "insert or replace into members (conversation_id, user_id, id, role, joined_at, last_read_at)
                 values (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for m in &members {
                ins.execute(member_params(m))?;
            }
            Ok(())
        })
        .await
    }

    /// One member row changed (realtime); a later `last_read_at` never goes backwards.
    pub async fn upsert_member(&self, m: &rows::ConversationMember) -> StoreResult<()> {
        let m = m.clone();
        self.write(move |tx| {
            tx.execute(
                "insert into members (conversation_id, user_id, id, role, joined_at, last_read_at)
                 values (?1, ?2, ?3, ?4, ?5, ?6)
                 on conflict (conversation_id, user_id) do update set role = excluded.role,
                   last_read_at = max(members.last_read_at, excluded.last_read_at)",
                member_params(&m),
            )?;
            Ok(())
        })
        .await
    }

    pub async fn remove_member(&self, conversation: Uuid, user: Uuid) -> StoreResult<()> {
        self.write(move |tx| {
            tx.execute(
                "delete from members where conversation_id = ?1 and user_id = ?2",
                params![conversation.to_string(), user.to_string()],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn upsert_profiles(&self, profiles: &[rows::Profile]) -> StoreResult<()> {
        let profiles = profiles.to_vec();
        self.write(move |tx| {
            let mut up =
                tx.prepare_cached("insert or replace into profiles (id, full_name, avatar_url, role) values (?1, ?2, ?3, ?4)")?;
            for p in &profiles {
                up.execute(params![p.id.to_string(), p.full_name, p.avatar_url, p.role])?;
            }
            Ok(())
        })
        .await
    }

    /// User ids in `members` without a cached profile.
    pub async fn members_without_profile(&self) -> StoreResult<Vec<Uuid>> {
        let ids: Vec<String> = self
            .read(move |c| {
                let mut s = c.prepare("select distinct user_id from members where user_id not in (select id from profiles)")?;
                let r = s.query_map([], |r| r.get(0))?.collect();
                r
            })
            .await?;
        ids.iter().map(|s| parse_uuid(s)).collect()
    }

    pub async fn profile_name(&self, id: Uuid) -> StoreResult<Option<String>> {
        self.read(move |c| c.query_row("select full_name from profiles where id = ?1", [id.to_string()], |r| r.get(0)).optional())
            .await
    }

    pub async fn members(&self, conversation: Uuid) -> StoreResult<Vec<CachedMember>> {
        let raw: Vec<(String, String, String)> = self
            .read(move |c| {
                let mut s = c.prepare_cached(
                    "select user_id, role, last_read_at from members where conversation_id = ?1 order by joined_at, user_id",
                )?;
                let r = s.query_map([conversation.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect();
                r
            })
            .await?;
        raw.into_iter()
            .map(|(u, role, at)| Ok(CachedMember { user_id: parse_uuid(&u)?, role, last_read_at: parse_ts(&at)? }))
            .collect()
    }

    /// The conversations list, most recent activity first.
    pub async fn conversations(&self) -> StoreResult<Vec<CachedConversation>> {
        type Raw = (String, String, Option<String>, String, i64, Option<String>, Option<String>, Option<String>);
        let raw: Vec<Raw> = self.read(move |c| {
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
        }).await?;
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

    pub async fn conversation_ids(&self) -> StoreResult<Vec<Uuid>> {
        let ids: Vec<String> = self
            .read(move |c| {
                let mut s = c.prepare("select id from conversations where left_at is null")?;
                let r = s.query_map([], |r| r.get(0))?.collect();
                r
            })
            .await?;
        ids.iter().map(|s| parse_uuid(s)).collect()
    }

    pub async fn has_conversation(&self, id: Uuid) -> StoreResult<bool> {
        self.read(move |c| {
            c.query_row("select exists(select 1 from conversations where id = ?1)", [id.to_string()], |r| r.get(0))
        })
        .await
    }

    pub async fn set_unread_counts(&self, counts: &[rows::UnreadCount]) -> StoreResult<()> {
        let counts = counts.to_vec();
        self.write(move |tx| {
            let mut up = tx.prepare_cached("update conversations set unread_count = ?2 where id = ?1")?;
            for c in &counts {
                up.execute(params![c.conversation_id.to_string(), c.unread_count])?;
            }
            Ok(())
        })
        .await
    }

    pub async fn add_unread(&self, conversation: Uuid, delta: i64) -> StoreResult<()> {
        self.write(move |tx| {
            tx.execute(
                "update conversations set unread_count = max(0, unread_count + ?2) where id = ?1",
                params![conversation.to_string(), delta],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn set_unread(&self, conversation: Uuid, count: u32) -> StoreResult<()> {
        self.write(move |tx| {
            tx.execute("update conversations set unread_count = ?2 where id = ?1", params![conversation.to_string(), count])?;
            Ok(())
        })
        .await
    }

    /// Moves our own read position forward (never back).
    pub async fn advance_read(&self, conversation: Uuid, user: Uuid, at: DateTime<Utc>) -> StoreResult<()> {
        self.write(move |tx| {
            tx.execute(
                "update members set last_read_at = max(last_read_at, ?3) where conversation_id = ?1 and user_id = ?2",
                params![conversation.to_string(), user.to_string(), ts(at)],
            )
        })
        .await?;
        Ok(())
    }

    // --- sync cursors ------------------------------------------------------------------------

    pub async fn cursor(&self, conversation: Uuid) -> StoreResult<Option<Cursor>> {
        type Raw = (Option<String>, Option<String>, Option<String>, bool);
        let raw: Option<Raw> = self
            .read(move |c| {
                c.query_row(
                    "select seen_updated_at, floor_created_at, floor_id, complete from sync_cursors where conversation_id = ?1",
                    [conversation.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
            })
            .await?;
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

    pub async fn set_cursor(&self, conversation: Uuid, cursor: &Cursor) -> StoreResult<()> {
        let cursor = cursor.clone();
        self.write(move |tx| {
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
        .await
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

/// The server's conversation into the cache (back from "left", if it was).
fn upsert_conversation_tx(tx: &rusqlite::Transaction<'_>, c: &rows::Conversation) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "insert into conversations (id, kind, title, meta, created_at, updated_at, left_at)
         values (?1, ?2, ?3, ?4, ?5, ?6, null)
         on conflict (id) do update set kind = excluded.kind, title = excluded.title, meta = excluded.meta,
           updated_at = max(conversations.updated_at, excluded.updated_at), left_at = null",
    )?
    .execute(params![c.id.to_string(), c.kind, c.title, c.meta.to_string(), ts(c.created_at), ts(c.updated_at)])?;
    Ok(())
}

/// A member row's columns in the order `(conversation_id, user_id, id, role, joined_at, last_read_at)`.
fn member_params(m: &rows::ConversationMember) -> [Box<dyn rusqlite::ToSql>; 6] {
    [
        Box::new(m.conversation_id.to_string()),
        Box::new(m.user_id.to_string()),
        Box::new(m.id.to_string()),
        Box::new(m.role.clone()),
        Box::new(ts(m.joined_at)),
        Box::new(ts(m.last_read_at)),
    ]
}
