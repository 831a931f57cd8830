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

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A conversation's row, members or unread count changed (or it appeared / was left).
    ConversationChanged { conversation_id: Uuid },
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
    /// Who is online in a conversation.
    Presence { conversation_id: Uuid, online: Vec<Uuid> },
    /// Who is typing in a conversation.
    Typing { conversation_id: Uuid, typing: Vec<Uuid> },
    /// A realtime channel became subscribed (changes flow) or was lost (it is being rejoined).
    Channel { topic: String, subscribed: bool },
    /// The connection to the server changed.
    Connectivity { state: Connectivity },
    /// A message deserves an OS notification (see [`crate::notify`]).
    Notification { conversation_id: Uuid, message_id: Uuid, sender_id: Uuid, title: String, body: String, count: u32 },
    /// A catch-up pass finished.
    Synced { at: DateTime<Utc>, messages: usize },
    /// The session ended (refresh refused): the front end should ask to sign in again.
    SignedOut,
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
}
