//! Keeping the cache current: catch-up from cursors, older history on demand, live changes.
//!
//! - **Catch-up** ([`Catchup::run`]) asks up to [`CONCURRENCY`] conversations at once, and
//!   runs at start, after every (re)join of the realtime
//!   channel and on the CLI's `sync`: conversations, members and their profiles, unread
//!   counts (`rpc/get_unread_counts`, the server's truth), notifications, then each
//!   conversation's messages from its cursor. The cursor is the newest `updated_at` a
//!   catch-up has seen; the next one asks again from [`OVERLAP`] before it, because `now()`
//!   is a transaction's start time and a long transaction can commit a row older than one
//!   already seen. Rows are paged by the key `(updated_at, id)`, so equal timestamps (one
//!   transaction inserting many rows) neither repeat nor get skipped. Overlap means some rows
//!   arrive twice: they are deduplicated by id.
//! - **Never older over newer.** Every write of a message — catch-up, live event, outbox
//!   confirmation — goes through one upsert that keeps the row with the later `updated_at`
//!   ([`crate::store::Store::upsert_messages`]). A late realtime event cannot undo an edit.
//! - **First sight** of a conversation fetches only its newest [`FIRST_PAGE`] messages and
//!   records the oldest as the floor of the unbroken cached history; older pages come on
//!   demand ([`Catchup::older`]), cache first.
//! - **Live changes** ([`Catchup::apply_change`]) come from the realtime channel and are
//!   applied with the same upsert; they do not move the cursor (only a catch-up does, so a
//!   missed event is always found by the next one).

use std::sync::Arc;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use futures::StreamExt;
use serde_json::{json, Value};
use uuid::Uuid;
use werkfunk_protocol::rows;

use crate::error::{Error, Result};
use crate::events::{Event, Events};
use crate::session::Session;
use crate::store::{ts, Cursor, Store};

/// How far before the cursor a catch-up asks again.
pub const OVERLAP: ChronoDuration = ChronoDuration::seconds(30);
/// Rows per page of a catch-up.
pub const PAGE: usize = 1000;
/// Messages fetched when a conversation is seen for the first time.
pub const FIRST_PAGE: usize = 100;
/// Conversations a catch-up asks at once.
pub const CONCURRENCY: usize = 4;
/// New messages a catch-up keeps for notifications (the newest win).
pub const ARRIVALS_LIMIT: usize = 1000;

/// What a catch-up did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub conversations: usize,
    /// Message rows received (before deduplication).
    pub received: usize,
    /// Cached messages that changed.
    pub changed: usize,
    /// New or changed messages from others created after the `since` given to
    /// [`Catchup::run_since`] (at most [`ARRIVALS_LIMIT`]), for notifications.
    pub arrivals: Vec<rows::Message>,
}

/// A database change from the realtime channel, as the engine applies it.
#[derive(Debug, Clone)]
pub enum Change {
    Message(rows::Message),
    Member(rows::ConversationMember),
    MemberGone { conversation_id: Uuid, user_id: Uuid },
    Conversation(rows::Conversation),
    Notification(rows::Notification),
}

/// The sync of one account.
#[derive(Debug, Clone)]
pub struct Catchup {
    store: Arc<Store>,
    session: Arc<Session>,
    events: Events,
}

impl Catchup {
    pub fn new(store: Arc<Store>, session: Arc<Session>, events: Events) -> Catchup {
        Catchup { store, session, events }
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str, query: Vec<(&'static str, String)>) -> Result<T> {
        let api = self.session.api().clone();
        self.session
            .call(|t| {
                let (api, query) = (api.clone(), query.clone());
                async move { api.get::<T>(path, &t, &query).await }
            })
            .await
    }

    /// A full pass: conversations, members, profiles, every conversation's messages,
    /// unread counts, notifications.
    pub async fn run(&self) -> Result<Report> {
        self.run_since(None).await
    }

    /// A full pass that also reports the messages from others created after `since`.
    pub async fn run_since(&self, since: Option<DateTime<Utc>>) -> Result<Report> {
        let ids = self.conversations().await?;
        let mut report = Report { conversations: ids.len(), ..Report::default() };
        let me = self.session.user_id();
        let mut passes = futures::stream::iter(ids.iter().copied())
            .map(|id| async move { self.messages_collecting(id, since.map(|s| (me, s))).await })
            .buffer_unordered(CONCURRENCY);
        let mut first_error = None;
        while let Some(pass) = passes.next().await {
            match pass {
                Ok((received, changed, mut arrivals)) => {
                    report.received += received;
                    report.changed += changed;
                    report.arrivals.append(&mut arrivals);
                }
                // The others go on: their cursors move; this one is asked again next time.
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        drop(passes);
        if let Some(e) = first_error {
            return Err(e);
        }
        if report.arrivals.len() > ARRIVALS_LIMIT {
            report.arrivals.sort_by_key(|m| m.created_at);
            report.arrivals.drain(..report.arrivals.len() - ARRIVALS_LIMIT);
        }
        self.unread_counts().await?;
        self.notifications().await?;
        self.events.emit(Event::Synced { at: Utc::now(), messages: report.changed });
        Ok(report)
    }

    /// Conversations, members and missing profiles; returns the conversation ids.
    pub async fn conversations(&self) -> Result<Vec<Uuid>> {
        let list: Vec<rows::Conversation> = self.get("/conversations", vec![("select", "*".into())]).await?;
        let ids: Vec<Uuid> = list.iter().map(|c| c.id).collect();
        let members: Vec<rows::ConversationMember> = self.get("/conversation_members", vec![("select", "*".into())]).await?;
        let replace = ids.clone();
        self.store.replace_conversations(&list, Utc::now()).await?;
        self.store.replace_members(&replace, &members).await?;
        self.profiles().await?;
        for id in &ids {
            self.events.emit(Event::ConversationChanged { conversation_id: *id });
            self.events.emit(Event::MembersChanged { conversation_id: *id });
        }
        self.events.emit(Event::ConversationsChanged {});
        Ok(ids)
    }

    /// Fetches the profiles of members the cache has no name for.
    pub async fn profiles(&self) -> Result<()> {
        let missing = self.store.members_without_profile().await?;
        for chunk in missing.chunks(50) {
            let list = chunk.iter().map(Uuid::to_string).collect::<Vec<_>>().join(",");
            let profiles: Vec<rows::Profile> = self
                .get("/profiles", vec![("select", "id,full_name,avatar_url,role".into()), ("id", format!("in.({list})"))])
                .await?;
            self.store.upsert_profiles(&profiles).await?;
        }
        Ok(())
    }

    /// Unread counts from the server (`rpc/get_unread_counts`).
    pub async fn unread_counts(&self) -> Result<()> {
        let api = self.session.api().clone();
        let counts: Vec<rows::UnreadCount> = self
            .session
            .call(|t| {
                let api = api.clone();
                async move { api.rpc("get_unread_counts", &t, &json!({})).await }
            })
            .await?;
        self.store.set_unread_counts(&counts).await?;
        Ok(())
    }

    pub async fn notifications(&self) -> Result<()> {
        let list: Vec<rows::Notification> = self
            .get("/notifications", vec![("select", "*".into()), ("order", "created_at.desc".into()), ("limit", "100".into())])
            .await?;
        self.store.upsert_notifications(&list).await?;
        self.events.notification_count(&self.store).await;
        Ok(())
    }

    /// One conversation's messages from its cursor; returns (rows received, rows changed).
    pub async fn messages(&self, conversation: Uuid) -> Result<(usize, usize)> {
        let (received, changed, _) = self.messages_collecting(conversation, None).await?;
        Ok((received, changed))
    }

    /// Stores a page; returns the ids that changed and, with `arrivals` = (me, since), the
    /// changed messages from others created after `since`.
    async fn store_page(
        &self,
        conversation: Uuid,
        page: Vec<rows::Message>,
        arrivals: Option<(Uuid, DateTime<Utc>)>,
    ) -> Result<(Vec<Uuid>, Vec<rows::Message>, Vec<rows::Message>)> {
        let changed = self.store.upsert_messages(&page).await?;
        self.announce(conversation, &changed);
        let fresh = match arrivals {
            Some((me, since)) => crate::notify::catch_up_arrivals(me, since, page.iter().filter(|m| changed.contains(&m.id)))
                .into_iter()
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        Ok((changed, fresh, page))
    }

    async fn messages_collecting(
        &self,
        conversation: Uuid,
        arrivals: Option<(Uuid, DateTime<Utc>)>,
    ) -> Result<(usize, usize, Vec<rows::Message>)> {
        let mut collected = Vec::new();
        let mut cursor = self.store.cursor(conversation).await?.unwrap_or_default();
        let conv = format!("eq.{conversation}");
        let Some(seen) = cursor.seen_updated_at else {
            // First sight: the newest page only.
            let page: Vec<rows::Message> = self
                .get(
                    "/messages",
                    vec![
                        ("select", "*".into()),
                        ("conversation_id", conv),
                        ("order", "created_at.desc,id.desc".into()),
                        ("limit", FIRST_PAGE.to_string()),
                    ],
                )
                .await?;
            let (changed, fresh, page) = self.store_page(conversation, page, arrivals).await?;
            cursor = Cursor {
                seen_updated_at: Some(page.iter().map(|m| m.updated_at).max().unwrap_or(DateTime::<Utc>::UNIX_EPOCH)),
                floor: page.last().map(|m| (m.created_at, m.id)),
                complete: page.len() < FIRST_PAGE,
            };
            let c = cursor.clone();
            self.store.set_cursor(conversation, &c).await?;
            return Ok((page.len(), changed.len(), fresh));
        };
        let since = ts(seen - OVERLAP);
        let mut after: Option<(DateTime<Utc>, Uuid)> = None;
        let (mut received, mut changed_total, mut newest) = (0, 0, seen);
        loop {
            let mut query = vec![
                ("select", "*".into()),
                ("conversation_id", conv.clone()),
                ("order", "updated_at.asc,id.asc".into()),
                ("limit", PAGE.to_string()),
            ];
            match after {
                None => query.push(("updated_at", format!("gte.{since}"))),
                Some((t, id)) => {
                    let t = ts(t);
                    query.push(("or", format!("(updated_at.gt.{t},and(updated_at.eq.{t},id.gt.{id}))")));
                }
            }
            let page: Vec<rows::Message> = self.get("/messages", query).await?;
            received += page.len();
            let (changed, mut fresh, page) = self.store_page(conversation, page, arrivals).await?;
            changed_total += changed.len();
            collected.append(&mut fresh);
            if collected.len() > ARRIVALS_LIMIT {
                collected.drain(..collected.len() - ARRIVALS_LIMIT);
            }
            if let Some(max) = page.iter().map(|m| m.updated_at).max() {
                newest = newest.max(max);
            }
            if page.len() < PAGE {
                break;
            }
            after = page.last().map(|m| (m.updated_at, m.id));
        }
        cursor.seen_updated_at = Some(newest);
        self.store.set_cursor(conversation, &cursor).await?;
        Ok((received, changed_total, collected))
    }

    fn announce(&self, conversation: Uuid, changed: &[Uuid]) {
        for id in changed {
            self.events.emit(Event::MessageUpserted { conversation_id: conversation, message_id: *id });
        }
        if !changed.is_empty() {
            self.events.emit(Event::ConversationChanged { conversation_id: conversation });
        }
    }

    /// Fetches up to `limit` messages older than the cached history's floor; returns how many
    /// came (0 once the beginning is reached).
    pub async fn older(&self, conversation: Uuid, limit: usize) -> Result<usize> {
        let mut cursor = match self.store.cursor(conversation).await? {
            Some(c) => c,
            None => {
                self.messages(conversation).await?;
                self.store.cursor(conversation).await?.unwrap_or_default()
            }
        };
        if cursor.complete {
            return Ok(0);
        }
        let mut query = vec![
            ("select", "*".into()),
            ("conversation_id", format!("eq.{conversation}")),
            ("order", "created_at.desc,id.desc".into()),
            ("limit", limit.to_string()),
        ];
        if let Some((t, id)) = cursor.floor {
            let t = ts(t);
            query.push(("or", format!("(created_at.lt.{t},and(created_at.eq.{t},id.lt.{id}))")));
        }
        let page: Vec<rows::Message> = self.get("/messages", query).await?;
        let (_, _, page) = self.store_page(conversation, page, None).await?;
        if let Some(last) = page.last() {
            cursor.floor = Some((last.created_at, last.id));
        }
        cursor.complete = page.len() < limit;
        self.store.set_cursor(conversation, &cursor).await?;
        Ok(page.len())
    }

    /// Applies one live change; returns the message it concerns, if it changed the cache.
    pub async fn apply_change(&self, change: Change) -> Result<Option<rows::Message>> {
        match change {
            Change::Message(m) => {
                let changed = self.store.upsert_messages(std::slice::from_ref(&m)).await?;
                if changed.is_empty() {
                    return Ok(None);
                }
                self.announce(m.conversation_id, &changed);
                Ok(Some(m))
            }
            Change::Member(m) => {
                self.store.upsert_member(&m).await?;
                self.events.emit(Event::ConversationChanged { conversation_id: m.conversation_id });
                self.events.emit(Event::MembersChanged { conversation_id: m.conversation_id });
                Ok(None)
            }
            Change::MemberGone { conversation_id, user_id } => {
                self.store.remove_member(conversation_id, user_id).await?;
                self.events.emit(Event::ConversationChanged { conversation_id });
                self.events.emit(Event::MembersChanged { conversation_id });
                Ok(None)
            }
            Change::Conversation(c) => {
                self.store.upsert_conversation(&c).await?;
                self.events.emit(Event::ConversationChanged { conversation_id: c.id });
                self.events.emit(Event::ConversationsChanged {});
                Ok(None)
            }
            Change::Notification(n) => {
                self.store.upsert_notifications(std::slice::from_ref(&n)).await?;
                self.events.notification_count(&self.store).await;
                Ok(None)
            }
        }
    }
}

/// Decodes a realtime `postgres_changes` record of `table` into a [`Change`].
pub fn change_from(table: &str, kind: &str, record: &Value, old_record: &Value) -> Result<Option<Change>> {
    fn row<T: serde::de::DeserializeOwned>(table: &str, record: &Value) -> Result<T> {
        if record.as_object().is_none_or(|o| o.is_empty()) {
            return Err(Error::invalid(format!("realtime {table} change without a record")));
        }
        serde_json::from_value(record.clone()).map_err(|e| Error::invalid(format!("realtime {table} record: {e}")))
    }
    Ok(match (table, kind) {
        ("messages", "INSERT" | "UPDATE") => Some(Change::Message(row(table, record)?)),
        ("conversation_members", "INSERT" | "UPDATE") => Some(Change::Member(row(table, record)?)),
        ("conversation_members", "DELETE") => {
            let id = |k: &str| old_record.get(k).and_then(Value::as_str).and_then(|s| s.parse::<Uuid>().ok());
            match (id("conversation_id"), id("user_id")) {
                (Some(conversation_id), Some(user_id)) => Some(Change::MemberGone { conversation_id, user_id }),
                _ => None,
            }
        }
        ("conversations", "INSERT" | "UPDATE") => Some(Change::Conversation(row(table, record)?)),
        ("notifications", "INSERT" | "UPDATE") => Some(Change::Notification(row(table, record)?)),
        _ => None,
    })
}
