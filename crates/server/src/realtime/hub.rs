//! The registry of this process's sockets: who has joined which topic, which
//! `postgres_changes` bindings they hold, and the fan-out to them.
//!
//! Sockets receive [`Outbound`] messages through a bounded queue; a socket whose queue is
//! full is too slow to keep up and is told to close (its `kick`), rather than letting its
//! backlog grow without bound. What many sockets receive alike (a change, a broadcast, a
//! presence diff) is serialised once and shared (`Arc<str>`), never copied per member.
//!
//! Filters that cannot be looked up by value (`neq`, `lt`, …) are tested against every
//! change of their table; the hub counts the distinct ones and refuses a join that would
//! pass `Limits::scanned_filters`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde_json::Value;
use tokio::sync::{mpsc, Notify};
use uuid::Uuid;
use werkfunk_protocol::realtime::Frame;

use super::filter::{Binding, Filter};

pub type SocketId = u64;

/// What a socket's writer sends.
#[derive(Debug)]
pub enum Outbound {
    Frame(Frame),
    /// A user broadcast: binary kind 4 for vsn 2.0.0, a text frame for 1.0.0.
    Broadcast {
        topic: Arc<str>,
        event: Arc<str>,
        payload: Arc<str>,
    },
    /// A database change, its `data` already serialised once for every recipient.
    Change {
        topic: Arc<str>,
        ids: Vec<u32>,
        data: Arc<str>,
    },
    /// A server push with no refs (`presence_diff`), its payload serialised once for all.
    Push {
        topic: Arc<str>,
        event: &'static str,
        payload: Arc<str>,
    },
    /// Membership of the channel's conversation ended: close the channel.
    Revoke {
        topic: Arc<str>,
    },
    /// The change feed missed changes: error the channel so that the client rejoins.
    Interrupt {
        topic: Arc<str>,
    },
    /// A session ended: close the channels joined with its tokens.
    SessionEnded {
        session: Uuid,
    },
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
    subscriptions: HashMap<String, Vec<Arc<Subscription>>>,
    /// Distinct scanned (not indexable) filters per table, with how many bindings use each.
    scanned: HashMap<(String, Filter), usize>,
}

impl Inner {
    fn count_scanned(&mut self, s: &Subscription, delta: isize) {
        let Some(filter) = s.binding.filter.as_ref().filter(|f| !f.is_indexed()) else { return };
        let key = (s.binding.table.clone(), filter.clone());
        let n = self.scanned.entry(key.clone()).or_insert(0);
        *n = n.saturating_add_signed(delta);
        if *n == 0 {
            self.scanned.remove(&key);
        }
    }
}

/// A join the hub refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinRefused {
    /// The process already tests `limit` distinct scanned filters against every change.
    TooManyScannedFilters { limit: usize },
}

#[derive(Default)]
pub struct Hub {
    inner: RwLock<Inner>,
    pub presence: Mutex<super::presence::Presence>,
}

impl Hub {
    /// Registers a joined channel and its bindings (replacing an earlier join of the topic),
    /// unless its scanned filters would pass `scanned_limit` distinct ones on this process.
    pub fn join(
        &self,
        topic: &Arc<str>,
        member: Member,
        subscriptions: Vec<Subscription>,
        scanned_limit: usize,
    ) -> Result<(), JoinRefused> {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let id = member.socket.id;
        Self::remove(&mut inner, topic, id);
        let mut new = std::collections::HashSet::new();
        for s in &subscriptions {
            if let Some(f) = s.binding.filter.as_ref().filter(|f| !f.is_indexed()) {
                let key = (s.binding.table.clone(), f.clone());
                if !inner.scanned.contains_key(&key) {
                    new.insert(key);
                }
            }
        }
        if !new.is_empty() && inner.scanned.len() + new.len() > scanned_limit {
            return Err(JoinRefused::TooManyScannedFilters { limit: scanned_limit });
        }
        inner.topics.entry(topic.clone()).or_default().push(member);
        for s in subscriptions {
            inner.count_scanned(&s, 1);
            inner.subscriptions.entry(s.binding.table.clone()).or_default().push(Arc::new(s));
        }
        Ok(())
    }

    fn remove(inner: &mut Inner, topic: &Arc<str>, socket: SocketId) {
        if let Some(members) = inner.topics.get_mut(topic) {
            members.retain(|m| m.socket.id != socket);
            if members.is_empty() {
                inner.topics.remove(topic);
            }
        }
        Self::remove_subscriptions(inner, |s| s.socket.id == socket && s.topic == *topic);
    }

    fn remove_subscriptions(inner: &mut Inner, gone: impl Fn(&Subscription) -> bool) {
        let mut removed = Vec::new();
        for subs in inner.subscriptions.values_mut() {
            subs.retain(|s| {
                if gone(s) {
                    removed.push(s.clone());
                    false
                } else {
                    true
                }
            });
        }
        inner.subscriptions.retain(|_, subs| !subs.is_empty());
        for s in removed {
            inner.count_scanned(&s, -1);
        }
    }

    pub fn leave(&self, topic: &Arc<str>, socket: SocketId) {
        Self::remove(&mut self.inner.write().unwrap_or_else(PoisonError::into_inner), topic, socket);
    }

    pub fn leave_all(&self, socket: SocketId) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        for members in inner.topics.values_mut() {
            members.retain(|m| m.socket.id != socket);
        }
        inner.topics.retain(|_, m| !m.is_empty());
        Self::remove_subscriptions(&mut inner, |s| s.socket.id == socket);
    }

    /// New claims and user for a channel (after `access_token`): its bindings are authorized
    /// with them, and a membership removal of that user closes it.
    pub fn update_claims(&self, topic: &Arc<str>, socket: SocketId, claims: Arc<str>, user_id: Option<Uuid>) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        for m in inner.topics.get_mut(topic).into_iter().flatten().filter(|m| m.socket.id == socket) {
            m.user_id = user_id;
        }
        for subs in inner.subscriptions.values_mut() {
            for s in subs.iter_mut().filter(|s| s.socket.id == socket && s.topic == *topic) {
                *s = Arc::new(Subscription { claims: claims.clone(), ..Subscription::clone(s) });
            }
        }
    }

    /// Sends a user broadcast to the topic's local members, except `from` unless it asked
    /// for its own messages.
    pub fn broadcast(&self, topic: &Arc<str>, event: &Arc<str>, payload: &Arc<str>, from: Option<SocketId>) -> usize {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
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

    /// Sends a push (`presence_diff`) to every local member of `topic`, its payload
    /// serialised once and shared.
    pub fn push_all(&self, topic: &Arc<str>, event: &'static str, payload: &Value) {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let Some(members) = inner.topics.get(topic) else { return };
        let payload: Arc<str> = payload.to_string().into();
        for m in members {
            m.socket.send(Outbound::Push { topic: topic.clone(), event, payload: payload.clone() });
        }
    }

    /// Whether any socket of this process has a binding on `table`.
    pub fn has_subscriptions(&self, table: &str) -> bool {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).subscriptions.get(table).is_some_and(|s| !s.is_empty())
    }

    /// The bindings on `table`, as a snapshot.
    pub fn subscriptions(&self, table: &str) -> Vec<Arc<Subscription>> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).subscriptions.get(table).cloned().unwrap_or_default()
    }

    /// Distinct scanned filters registered on this process.
    pub fn scanned_filters(&self) -> usize {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).scanned.len()
    }

    /// Errors every channel that has `postgres_changes` bindings, and every channel on a
    /// members-only topic (a membership removal may have been missed too); returns how many.
    pub fn interrupt_changes(&self) -> usize {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let mut seen = std::collections::HashSet::new();
        for s in inner.subscriptions.values().flatten() {
            if seen.insert((s.socket.id, s.topic.clone())) {
                s.socket.send(Outbound::Interrupt { topic: s.topic.clone() });
            }
        }
        for (topic, members) in &inner.topics {
            for m in members.iter().filter(|m| m.conversation.is_some()) {
                if seen.insert((m.socket.id, topic.clone())) {
                    m.socket.send(Outbound::Interrupt { topic: topic.clone() });
                }
            }
        }
        seen.len()
    }

    /// Closes `user`'s channels on the members-only topics of `conversation`.
    pub fn revoke(&self, conversation: Uuid, user: Uuid) {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        for (topic, members) in &inner.topics {
            for m in members.iter().filter(|m| m.conversation == Some(conversation) && m.user_id == Some(user)) {
                m.socket.send(Outbound::Revoke { topic: topic.clone() });
            }
        }
    }

    /// Tells every socket with a channel joined as `user` that `session` (one of `user`'s)
    /// has ended; each socket knows which of its channels joined with that session's tokens.
    pub fn end_session(&self, session: Uuid, user: Uuid) {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let mut told = std::collections::HashSet::new();
        for m in inner.topics.values().flatten().filter(|m| m.user_id == Some(user)) {
            if told.insert(m.socket.id) {
                m.socket.send(Outbound::SessionEnded { session });
            }
        }
    }

    /// Number of joined channels (for tests and metrics).
    pub fn channel_count(&self) -> usize {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).topics.values().map(Vec::len).sum()
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
