//! The notification center's rows (the bell).

use chrono::{DateTime, Utc};
use rusqlite::params;
use uuid::Uuid;
use werkfunk_protocol::rows;

use super::{parse_ts, parse_uuid, ts, Store, StoreResult};

/// A notification as the cache has it.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationData {
    pub id: Uuid,
    pub title: String,
    pub body: Option<String>,
    pub link: Option<String>,
    pub read: bool,
    pub created_at: DateTime<Utc>,
}

impl Store {
    pub async fn upsert_notifications(&self, list: &[rows::Notification]) -> StoreResult<()> {
        let list = list.to_vec();
        self.write(move |tx| {
            let mut up = tx.prepare_cached(
                "insert or replace into notifications (id, kind, title, body, link, read, created_at)
                 values (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for n in &list {
                up.execute(params![n.id.to_string(), n.kind, n.title, n.body, n.link, n.read, ts(n.created_at)])?;
            }
            Ok(())
        })
        .await
    }

    /// Marks read the notifications that point at `conversation` (the seed's link
    /// `/conversations/<id>`): reading a conversation clears its part of the bell.
    pub async fn mark_conversation_notifications_read(&self, conversation: Uuid) -> StoreResult<()> {
        self.write(move |tx| {
            tx.execute(
                "update notifications set read = 1 where link = ?1 and read = 0",
                params![format!("/conversations/{conversation}")],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn unread_notifications(&self) -> StoreResult<u32> {
        self.read(move |c| c.query_row("select count(*) from notifications where read = 0", [], |r| r.get(0))).await
    }

    /// The newest `limit` notifications, newest first.
    pub async fn notifications(&self, limit: usize) -> StoreResult<Vec<NotificationData>> {
        type Raw = (String, String, Option<String>, Option<String>, bool, String);
        let raw: Vec<Raw> = self
            .read(move |c| {
                let mut s = c.prepare_cached(
                "select id, title, body, link, read, created_at from notifications order by created_at desc, id desc limit ?1",
            )?;
                let r = s
                    .query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?
                    .collect();
                r
            })
            .await?;
        raw.into_iter()
            .map(|(id, title, body, link, read, at)| {
                Ok(NotificationData { id: parse_uuid(&id)?, title, body, link, read, created_at: parse_ts(&at)? })
            })
            .collect()
    }

    pub async fn has_notification(&self, id: Uuid) -> StoreResult<bool> {
        self.read(move |c| {
            c.query_row("select exists(select 1 from notifications where id = ?1)", [id.to_string()], |r| r.get(0))
        })
        .await
    }

    /// Marks one notification read; false when the cache does not have it.
    pub async fn mark_notification_read(&self, id: Uuid) -> StoreResult<bool> {
        self.write(move |tx| tx.execute("update notifications set read = 1 where id = ?1", [id.to_string()]).map(|n| n > 0)).await
    }

    /// Marks every notification created up to `until` read.
    pub async fn mark_notifications_read_until(&self, until: DateTime<Utc>) -> StoreResult<()> {
        self.write(move |tx| tx.execute("update notifications set read = 1 where read = 0 and created_at <= ?1", [ts(until)]))
            .await?;
        Ok(())
    }
}
