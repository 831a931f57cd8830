//! The relay between server processes: broadcasts and presence diffs published on one
//! process reach the others. The [`Relay`] trait is all the rest of the gateway knows;
//! [`PgRelay`] carries messages over Postgres `NOTIFY werkfunk_relay` (batched, with the
//! overflow table for payloads over NOTIFY's limit), so a fleet needs nothing but its
//! database. A NATS or Redis implementation can take its place for larger fleets.
//!
//! Database changes need no relay: every process LISTENs to the change feed itself.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::mpsc;
use uuid::Uuid;

/// The NOTIFY channel the relay uses.
pub const CHANNEL: &str = "werkfunk_relay";

/// Payloads above this many bytes go through `werkfunk_realtime.overflow`.
pub const NOTIFY_LIMIT: usize = 7900;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RelayMessage {
    /// A process started: the others answer with their presence entries.
    Hello,
    /// A process is alive (sent periodically; silence means it is gone).
    Alive,
    Broadcast {
        topic: String,
        event: String,
        payload: String,
    },
    Presence {
        topic: String,
        diff: Value,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub node: Uuid,
    #[serde(flatten)]
    pub message: RelayMessage,
}

pub trait Relay: Send + Sync {
    /// Sends `message` to every other process, in order, without waiting.
    fn publish(&self, message: RelayMessage);
}

/// The relay over Postgres NOTIFY.
pub struct PgRelay {
    tx: mpsc::UnboundedSender<RelayMessage>,
}

impl PgRelay {
    /// The relay and its [`Publisher`] (the caller runs it in a task).
    pub fn new(node: Uuid) -> (PgRelay, Publisher) {
        let (tx, rx) = mpsc::unbounded_channel();
        (PgRelay { tx }, Publisher { node, queue: tokio::sync::Mutex::new(rx) })
    }
}

/// Sends what [`PgRelay::publish`] queued. Its queue outlives a run of the publisher's
/// task, so a restarted task carries on with what is queued.
pub struct Publisher {
    node: Uuid,
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<RelayMessage>>,
}

impl Publisher {
    /// The queue, for one run at a time.
    pub async fn queue(&self) -> tokio::sync::MutexGuard<'_, mpsc::UnboundedReceiver<RelayMessage>> {
        self.queue.lock().await
    }

    /// Publishes from `queue` over `pool` until the relay is dropped.
    pub async fn run(&self, queue: &mut mpsc::UnboundedReceiver<RelayMessage>, pool: &PgPool) {
        publish_loop(self.node, pool, queue).await
    }
}

impl Relay for PgRelay {
    fn publish(&self, message: RelayMessage) {
        let _ = self.tx.send(message);
    }
}

async fn publish_loop(node: Uuid, pool: &PgPool, rx: &mut mpsc::UnboundedReceiver<RelayMessage>) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < 500 {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut payloads = Vec::with_capacity(batch.len());
        for message in batch.drain(..) {
            let text = serde_json::to_string(&Envelope { node, message }).expect("relay message serialises");
            if text.len() <= NOTIFY_LIMIT {
                payloads.push(text);
                continue;
            }
            match sqlx::query_scalar::<_, i64>("insert into werkfunk_realtime.overflow (payload) values ($1::jsonb) returning id")
                .bind(&text)
                .fetch_one(pool)
                .await
            {
                Ok(id) => payloads.push(serde_json::json!({"overflow": id}).to_string()),
                Err(e) => tracing::warn!(error = %e, "relay: cannot store a large message"),
            }
        }
        if let Err(e) =
            sqlx::query("select pg_notify($1, m) from unnest($2::text[]) as m").bind(CHANNEL).bind(&payloads).execute(pool).await
        {
            tracing::warn!(error = %e, dropped = payloads.len(), "relay: publish failed");
        }
    }
}
