//! The patient worker of one conversation (live mode).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use uuid::Uuid;

use super::{backoff, Attempt, Outbox};
use crate::error::Error;
use crate::events::Event;
use crate::session::SessionError;

/// The worker of one conversation: delivers until empty or blocked, then sleeps until woken;
/// after a transient failure waits the backoff (or until woken). Ends when the outbox is
/// gone or the conversation has nothing left after a wake-up.
pub(super) async fn worker(outbox: Arc<Outbox>, conversation: Uuid, notify: Arc<Notify>) {
    let mut failures = 0u32;
    // A confirmed delivery is written with the next attempt (see `Outbox::step`).
    let mut pending = None;
    loop {
        match outbox.step(conversation, &mut pending).await {
            Ok(Attempt::Done { .. }) => failures = 0,
            Ok(Attempt::Empty | Attempt::Blocked { .. } | Attempt::Failed { .. }) => {
                failures = 0;
                notify.notified().await;
            }
            Ok(Attempt::Transient { error, .. }) => {
                let delay = backoff(failures, rand::random::<f64>());
                failures = failures.saturating_add(1);
                tracing::debug!(%conversation, ?delay, %error, "outbox: will retry");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = notify.notified() => {}
                }
            }
            Err(Error::Session(SessionError::Expired(_) | SessionError::SignedOut)) => {
                outbox.events.emit(Event::SignedOut {});
                notify.notified().await;
            }
            Err(e) => {
                tracing::warn!(%conversation, error = %e, "outbox worker: will retry");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = notify.notified() => {}
                }
            }
        }
    }
}
