//! Device-local state in the outbox file: drafts, device settings, muted conversations.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use uuid::Uuid;

use super::{ts, Store, StoreResult};

impl Store {
    /// Keeps `text` as the draft of `conversation`; blank text removes it.
    pub async fn save_draft(&self, conversation: Uuid, text: &str, now: DateTime<Utc>) -> StoreResult<()> {
        let text = text.to_owned();
        self.write(move |tx| {
            if text.trim().is_empty() {
                tx.execute("delete from local.drafts where conversation_id = ?1", [conversation.to_string()])?;
            } else {
                tx.execute(
                    "insert or replace into local.drafts (conversation_id, text, updated_at) values (?1, ?2, ?3)",
                    params![conversation.to_string(), text, ts(now)],
                )?;
            }
            Ok(())
        })
        .await
    }

    pub async fn draft(&self, conversation: Uuid) -> StoreResult<Option<String>> {
        self.read(move |c| {
            c.query_row("select text from local.drafts where conversation_id = ?1", [conversation.to_string()], |r| r.get(0))
                .optional()
        })
        .await
    }

    /// A device setting's JSON text.
    pub async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_owned();
        self.read(move |c| c.query_row("select value from local.settings where key = ?1", [key], |r| r.get(0)).optional()).await
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.write(move |tx| {
            tx.execute("insert or replace into local.settings (key, value) values (?1, ?2)", params![key, value])
        })
        .await?;
        Ok(())
    }

    pub async fn set_muted(&self, conversation: Uuid, muted: bool) -> StoreResult<()> {
        self.write(move |tx| {
            tx.execute(
                "insert or replace into local.conversation_settings (conversation_id, muted) values (?1, ?2)",
                params![conversation.to_string(), muted],
            )
        })
        .await?;
        Ok(())
    }

    pub async fn muted(&self) -> StoreResult<HashSet<Uuid>> {
        let ids: Vec<String> = self
            .read(move |c| {
                let mut s = c.prepare_cached("select conversation_id from local.conversation_settings where muted = 1")?;
                let r = s.query_map([], |r| r.get(0))?.collect();
                r
            })
            .await?;
        Ok(ids.iter().filter_map(|s| s.parse().ok()).collect())
    }
}
