//! Drafts: the composer's text per conversation, kept across restarts.
//!
//! Drafts live in the outbox file (device-local, never sent anywhere). The front end calls
//! [`Drafts::save`] as the user types; writes are debounced by the caller's clock
//! ([`Debounce`]) so typing does not become a disk write per key. Sending a message clears
//! its conversation's draft in the same transaction that queues the message
//! ([`crate::outbox::Outbox::send`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;
use uuid::Uuid;

use crate::error::Result;
use crate::store::Store;

/// How long typing must pause before a draft is written.
pub const DEBOUNCE: Duration = Duration::from_millis(400);

#[derive(Debug, Clone)]
pub struct Drafts {
    store: Arc<Store>,
}

impl Drafts {
    pub fn new(store: Arc<Store>) -> Drafts {
        Drafts { store }
    }

    /// Stores `text` as the draft of `conversation`; empty (or blank) text removes it.
    pub async fn save(&self, conversation: Uuid, text: &str) -> Result<()> {
        Ok(self.store.save_draft(conversation, text, Utc::now()).await?)
    }

    pub async fn get(&self, conversation: Uuid) -> Result<Option<String>> {
        Ok(self.store.draft(conversation).await?)
    }

    pub async fn clear(&self, conversation: Uuid) -> Result<()> {
        self.save(conversation, "").await
    }
}

/// Decides when a burst of keystrokes should be written: call [`Debounce::touch`] on each
/// change and write when [`Debounce::due`] says so.
#[derive(Debug, Clone, Default)]
pub struct Debounce {
    last_change: Option<Instant>,
}

impl Debounce {
    pub fn touch(&mut self, now: Instant) {
        self.last_change = Some(now);
    }

    /// True once, when typing has paused for [`DEBOUNCE`].
    pub fn due(&mut self, now: Instant) -> bool {
        match self.last_change {
            Some(t) if now.duration_since(t) >= DEBOUNCE => {
                self.last_change = None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debounce_fires_once_after_a_pause() {
        let t0 = Instant::now();
        let mut d = Debounce::default();
        assert!(!d.due(t0));
        d.touch(t0);
        assert!(!d.due(t0 + Duration::from_millis(100)));
        d.touch(t0 + Duration::from_millis(200));
        assert!(!d.due(t0 + Duration::from_millis(500)));
        assert!(d.due(t0 + Duration::from_millis(600)));
        assert!(!d.due(t0 + Duration::from_millis(900)));
    }
}
