//! What the app's views read: the conversation list (cache tables joined with the outbox
//! file), members with their names, direct partners, a profile.

use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;
use uuid::Uuid;
use werkfunk_protocol::rows;

use super::{parse_ts, parse_uuid, CachedMember, Store, StoreResult};

/// One row of the conversation list as the cache has it; [`crate::view::ConversationRow`]
/// is made from it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationRowData {
    pub id: Uuid,
    pub kind: String,
    pub title: Option<String>,
    /// Direct conversations: the other member.
    pub partner_id: Option<Uuid>,
    pub partner_name: Option<String>,
    /// Names of the other members (up to three), for an untitled group.
    pub others: Option<String>,
    pub unread_count: u32,
    pub left: bool,
    /// The newest cached message.
    pub last_message: Option<LastMessageData>,
    pub last_activity_at: DateTime<Utc>,
    pub unsent_count: u32,
    pub muted: bool,
}

/// The newest message of a conversation, for the list.
#[derive(Debug, Clone, PartialEq)]
pub struct LastMessageData {
    pub id: Uuid,
    pub sender_id: Uuid,
    pub sender_name: Option<String>,
    pub content: String,
    pub deleted: bool,
    pub created_at: DateTime<Utc>,
}

/// Outbox operations that carry something the user wrote (what signing out would lose).
pub(super) const USER_OPS: &str = "('send', 'edit', 'delete')";

impl Store {
    /// The conversation list for `me`, most recent activity first.
    pub async fn conversation_rows(&self, me: Uuid) -> StoreResult<Vec<ConversationRowData>> {
        type Raw = (
            String,
            String,
            Option<String>,
            String,
            i64,
            Option<String>,
            (Option<String>, Option<String>, Option<String>, Option<String>, Option<String>, Option<String>),
            (Option<String>, Option<String>, Option<String>),
            i64,
            bool,
        );
        let sql = format!(
            "select c.id, c.kind, c.title, c.updated_at, c.unread_count, c.left_at,
                    lm.id, lm.sender_id, sp.full_name, lm.content, lm.deleted_at, lm.created_at,
                    case when c.kind = 'direct' then
                      (select m2.user_id from members m2 where m2.conversation_id = c.id and m2.user_id <> ?1 limit 1) end,
                    case when c.kind = 'direct' then
                      (select p2.full_name from members m2 join profiles p2 on p2.id = m2.user_id
                       where m2.conversation_id = c.id and m2.user_id <> ?1 limit 1) end,
                    (select group_concat(name, ', ') from (
                       select p2.full_name as name from members m2 join profiles p2 on p2.id = m2.user_id
                       where m2.conversation_id = c.id and m2.user_id <> ?1 order by m2.joined_at limit 3)),
                    (select count(*) from local.outbox o where o.conversation_id = c.id and o.op in {USER_OPS}),
                    coalesce((select s.muted from local.conversation_settings s where s.conversation_id = c.id), 0)
             from conversations c
             left join messages lm on lm.rowid = (
               select m.rowid from messages m where m.conversation_id = c.id order by m.created_at desc, m.id desc limit 1)
             left join profiles sp on sp.id = lm.sender_id
             order by max(c.updated_at, coalesce(lm.created_at, '')) desc, c.id"
        );
        let raw: Vec<Raw> = self
            .read(move |c| {
                let mut s = c.prepare_cached(&sql)?;
                let r = s
                    .query_map([me.to_string()], |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            (r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?),
                            (r.get(12)?, r.get(13)?, r.get(14)?),
                            r.get(15)?,
                            r.get(16)?,
                        ))
                    })?
                    .collect();
                r
            })
            .await?;
        raw.into_iter()
            .map(|(id, kind, title, updated, unread, left, last, (partner, partner_name, others), unsent, muted)| {
                let updated_at = parse_ts(&updated)?;
                let last_message = match last {
                    (Some(id), Some(sender), sender_name, Some(content), deleted, Some(at)) => Some(LastMessageData {
                        id: parse_uuid(&id)?,
                        sender_id: parse_uuid(&sender)?,
                        sender_name,
                        content,
                        deleted: deleted.is_some(),
                        created_at: parse_ts(&at)?,
                    }),
                    _ => None,
                };
                let last_activity_at = last_message.as_ref().map_or(updated_at, |m| m.created_at.max(updated_at));
                Ok(ConversationRowData {
                    id: parse_uuid(&id)?,
                    kind,
                    title,
                    partner_id: partner.as_deref().map(parse_uuid).transpose()?,
                    partner_name,
                    others,
                    unread_count: unread.max(0) as u32,
                    left: left.is_some(),
                    last_message,
                    last_activity_at,
                    unsent_count: unsent.max(0) as u32,
                    muted,
                })
            })
            .collect()
    }

    /// Members of a conversation with their names (empty when the profile is not cached).
    pub async fn members_named(&self, conversation: Uuid) -> StoreResult<Vec<(CachedMember, String)>> {
        let raw: Vec<(String, String, String, Option<String>)> = self
            .read(move |c| {
                let mut s = c.prepare_cached(
                    "select m.user_id, m.role, m.last_read_at, p.full_name from members m
                 left join profiles p on p.id = m.user_id
                 where m.conversation_id = ?1
                 order by case m.role when 'owner' then 0 when 'admin' then 1 else 2 end, m.joined_at, p.full_name, m.user_id",
                )?;
                let r = s.query_map([conversation.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?.collect();
                r
            })
            .await?;
        raw.into_iter()
            .map(|(u, role, at, name)| {
                Ok((CachedMember { user_id: parse_uuid(&u)?, role, last_read_at: parse_ts(&at)? }, name.unwrap_or_default()))
            })
            .collect()
    }

    /// The user ids of the other members of the user's direct conversations, most recent first.
    pub async fn direct_partners(&self, me: Uuid) -> StoreResult<Vec<(Uuid, Uuid)>> {
        let raw: Vec<(String, String)> = self
            .read(move |c| {
                let mut s = c.prepare_cached(
                    "select c.id, m.user_id from conversations c join members m on m.conversation_id = c.id
                 where c.kind = 'direct' and c.left_at is null and m.user_id <> ?1
                 order by c.updated_at desc",
                )?;
                let r = s.query_map([me.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?.collect();
                r
            })
            .await?;
        raw.iter().map(|(c, u)| Ok((parse_uuid(c)?, parse_uuid(u)?))).collect()
    }

    pub async fn profile(&self, id: Uuid) -> StoreResult<Option<rows::Profile>> {
        let raw: Option<(String, Option<String>, String)> = self
            .read(move |c| {
                c.query_row("select full_name, avatar_url, role from profiles where id = ?1", [id.to_string()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()
            })
            .await?;
        Ok(raw.map(|(full_name, avatar_url, role)| rows::Profile { id, full_name, avatar_url, role }))
    }
}
