//! The registry of this process's sockets: who has joined which topic, which
//! `postgres_changes` bindings they hold, and the fan-out to them.
//!
//! Sockets receive [`Outbound`] messages through a bounded queue; a socket whose queue is
//! full is too slow to keep up and is told to close (its `kick`), rather than letting its
//! backlog grow without bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;
use tokio::sync::{mpsc, Notify};
use uuid::Uuid;
use werkfunk_protocol::realtime::Frame;

use super::filter::Binding;

pub type SocketId = u64;

/// What a socket's writer sends.
#[derive(Debug)]
pub enum Outbound {
    Frame(Frame),
    /// A user broadcast: binary kind 4 for vsn 2.0.0, a text frame for 1.0.0.
    Broadcast { topic: Arc<str>, event: Arc<str>, payload: Arc<str> },
    /// A database change, its `data` already serialised once for every recipient.
    Change { topic: Arc<str>, ids: Vec<u32>, data: Arc<str> },
    /// Membership of the channel's conversation ended: close the channel.
    Revoke { topic: Arc<str> },
    /// The change feed missed changes: error the channel so that the client rejoins.
    Interrupt { topic: Arc<str> },
}

/// A socket's handle as the hub keeps it.
#[derive(Clone)]
pub struct SocketHandle {
    pub id: SocketId,
    pub tx: mpsc::Sender<Outbound>,
    pub kick: Arc<Notify>,
}

impl SocketHandle {
    /// Queues `out`; a full queue kicks the socket.
    pub fn send(&self, out: Outbound) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(out) {
            self.kick.notify_one();
        }
    }
}

/// A joined channel, as the hub sees it.
#[derive(Clone)]
pub struct Member {
    pub socket: SocketHandle,
    pub receive_own: bool,
    pub user_id: Option<Uuid>,
    /// The conversation of a members-only topic.
    pub conversation: Option<Uuid>,
}

/// A `postgres_changes` binding of a joined channel.
#[derive(Clone)]
pub struct Subscription {
    pub socket: SocketHandle,
    pub topic: Arc<str>,
    pub binding: Binding,
    /// The claims the channel joined with (or was last given through `access_token`).
    pub claims: Arc<str>,
}

#[derive(Default)]
struct Inner {
    topics: HashMap<Arc<str>, Vec<Member>>,
    subscriptions: HashMap<String, Vec<Subscription>>,
}

#[derive(Default)]
pub struct Hub {
    inner: RwLock<Inner>,
    pub presence: Mutex<super::presence::Presence>,
}

impl Hub {
    /// Registers a joined channel and its bindings (replacing an earlier join of the topic).
    pub fn join(&self, topic: &Arc<str>, member: Member, subscriptions: Vec<Subscription>) {
        let mut inner = self.inner.write().expect("hub lock");
        let id = member.socket.id;
        Self::remove(&mut inner, topic, id);
        inner.topics.entry(topic.clone()).or_default().push(member);
        for s in subscriptions {
            inner.subscriptions.entry(s.binding.table.clone()).or_default().push(s);
        }
    }

    fn remove(inner: &mut Inner, topic: &Arc<str>, socket: SocketId) {
        if let Some(members) = inner.topics.get_mut(topic) {
            members.retain(|m| m.socket.id != socket);
            if members.is_empty() {
                inner.topics.remove(topic);
            }
        }
        for subs in inner.subscriptions.values_mut() {
            subs.retain(|s| !(s.socket.id == socket && s.topic == *topic));
        }
    }

    pub fn leave(&self, topic: &Arc<str>, socket: SocketId) {
        Self::remove(&mut self.inner.write().expect("hub lock"), topic, socket);
    }

    pub fn leave_all(&self, socket: SocketId) {
        let mut inner = self.inner.write().expect("hub lock");
        for members in inner.topics.values_mut() {
            members.retain(|m| m.socket.id != socket);
        }
        inner.topics.retain(|_, m| !m.is_empty());
        for subs in inner.subscriptions.values_mut() {
            subs.retain(|s| s.socket.id != socket);
        }
    }

    /// New claims for a channel's bindings (after `access_token`).
    pub fn update_claims(&self, topic: &Arc<str>, socket: SocketId, claims: Arc<str>) {
        let mut inner = self.inner.write().expect("hub lock");
        for subs in inner.subscriptions.values_mut() {
            for s in subs.iter_mut().filter(|s| s.socket.id == socket && s.topic == *topic) {
                s.claims = claims.clone();
            }
        }
    }

    /// Sends a user broadcast to the topic's local members, except `from` unless it asked
    /// for its own messages.
    pub fn broadcast(&self, topic: &Arc<str>, event: &Arc<str>, payload: &Arc<str>, from: Option<SocketId>) -> usize {
        let inner = self.inner.read().expect("hub lock");
        let mut sent = 0;
        for m in inner.topics.get(topic).into_iter().flatten() {
            if Some(m.socket.id) == from && !m.receive_own {
                continue;
            }
            m.socket.send(Outbound::Broadcast { topic: topic.clone(), event: event.clone(), payload: payload.clone() });
            sent += 1;
        }
        sent
    }

    /// Sends a frame to every local member of `topic`.
    pub fn send_all(&self, topic: &Arc<str>, frame: impl Fn() -> Frame) {
        let inner = self.inner.read().expect("hub lock");
        for m in inner.topics.get(topic).into_iter().flatten() {
            m.socket.send(Outbound::Frame(frame()));
        }
    }

    /// Whether any socket of this process has a binding on `table`.
    pub fn has_subscriptions(&self, table: &str) -> bool {
        self.inner.read().expect("hub lock").subscriptions.get(table).is_some_and(|s| !s.is_empty())
    }

    /// The bindings on `table`, as a snapshot.
    pub fn subscriptions(&self, table: &str) -> Vec<Subscription> {
        self.inner.read().expect("hub lock").subscriptions.get(table).cloned().unwrap_or_default()
    }

    /// Errors every channel that has `postgres_changes` bindings; returns how many.
    pub fn interrupt_changes(&self) -> usize {
        let inner = self.inner.read().expect("hub lock");
        let mut seen = std::collections::HashSet::new();
        for s in inner.subscriptions.values().flatten() {
            if seen.insert((s.socket.id, s.topic.clone())) {
                s.socket.send(Outbound::Interrupt { topic: s.topic.clone() });
            }
        }
        seen.len()
    }

    /// Closes `user`'s channels on the members-only topics of `conversation`.
    pub fn revoke(&self, conversation: Uuid, user: Uuid) {
        let inner = self.inner.read().expect("hub lock");
        for (topic, members) in &inner.topics {
            for m in members.iter().filter(|m| m.conversation == Some(conversation) && m.user_id == Some(user)) {
                m.socket.send(Outbound::Revoke { topic: topic.clone() });
            }
        }
    }

    /// Number of joined channels (for tests and metrics).
    pub fn channel_count(&self) -> usize {
        self.inner.read().expect("hub lock").topics.values().map(Vec::len).sum()
    }
}

/// The `system` frame Supabase sends for channel-level events.
pub fn system(topic: &str, join_ref: Option<String>, extension: &str, status: &str, message: &str) -> Frame {
    Frame {
        join_ref,
        reference: None,
        topic: topic.to_owned(),
        event: "system".into(),
        payload: serde_json::json!({
            "extension": extension,
            "status": status,
            "message": message,
            "channel": topic.strip_prefix("realtime:").unwrap_or(topic),
        }),
    }
}

/// A `phx_reply`.
pub fn reply(topic: &str, join_ref: Option<String>, reference: Option<String>, status: &str, response: Value) -> Frame {
    Frame {
        join_ref,
        reference,
        topic: topic.to_owned(),
        event: "phx_reply".into(),
        payload: serde_json::json!({"status": status, "response": response}),
    }
}
