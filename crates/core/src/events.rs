//! Typed domain events for any front end (the Tauri shell, the CLI's `watch`, tests).
//!
//! The engine publishes every change a UI shows through one [`Events`] bus (a tokio
//! broadcast channel). A subscriber that falls behind loses the oldest events and is told so
//! (`RecvError::Lagged`); it should then re-read what it shows from the cache, which is
//! always the truth. Events carry ids and small values, never secrets.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::outbox::SendState;
use crate::realtime::Connectivity;
use crate::view::Settings;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A conversation's row, members or unread count changed (or it appeared / was left).
    ConversationChanged { conversation_id: Uuid },
    /// The list as a whole changed (a conversation appeared, was left, or the order moved):
    /// re-read `conversations()`.
    ConversationsChanged {},
    /// A message was inserted, edited or deleted in the cache (or its local echo appeared).
    MessageUpserted { conversation_id: Uuid, message_id: Uuid },
    /// An outbox entry changed state; `state` is the send state of the message it concerns.
    OutboxChanged {
        entry_id: Uuid,
        conversation_id: Uuid,
        message_id: Option<Uuid>,
        state: SendState,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// Who is online now: every user the engine watches (partners of direct conversations,
    /// members of the open one), sorted.
    Presence { online: Vec<Uuid> },
    /// Who is typing in a conversation.
    Typing { conversation_id: Uuid, typing: Vec<Uuid> },
    /// A realtime channel became subscribed (changes flow) or was lost (it is being rejoined).
    Channel { topic: String, subscribed: bool },
    /// The connection to the server changed.
    Connectivity { state: Connectivity },
    /// A message (or a catch-up's messages, `count` of them) deserves an OS notification
    /// (see [`crate::notify`]); `sound` says whether to play the sound with it.
    Notification {
        conversation_id: Uuid,
        message_id: Uuid,
        sender_id: Uuid,
        title: String,
        body: String,
        count: u32,
        sound: bool,
    },
    /// The bell's count: unread notifications.
    NotificationCount { unread: u32 },
    /// Who is in a conversation, or their roles, changed.
    MembersChanged { conversation_id: Uuid },
    /// A profile changed (the user's own after `update_profile`).
    ProfileChanged { user_id: Uuid },
    /// The device settings changed.
    SettingsChanged { settings: Settings },
    /// A catch-up pass finished.
    Synced { at: DateTime<Utc>, messages: usize },
    /// The session ended (refresh refused, or signed out): the front end should ask to sign
    /// in again.
    SignedOut {},
}

/// The engine's event bus. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Events {
    tx: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

impl Events {
    pub fn new() -> Events {
        Events { tx: broadcast::channel(1024).0 }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Publishes; nobody listening is fine.
    pub fn emit(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    /// Publishes the bell's count as the cache has it now.
    pub(crate) async fn notification_count(&self, store: &crate::store::Store) {
        match store.unread_notifications().await {
            Ok(unread) => self.emit(Event::NotificationCount { unread }),
            Err(e) => tracing::warn!(error = %e, "cannot count unread notifications"),
        }
    }
}
