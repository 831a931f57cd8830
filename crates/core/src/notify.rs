//! Which incoming messages deserve an OS notification — pure logic, no I/O.
//!
//! A message notifies when it is from someone else, not deleted, its conversation is not
//! the one in front, the conversation is not muted, and do-not-disturb is off. Notifications
//! are grouped per conversation ([`Grouper`]): a burst of messages in one conversation
//! updates one notification ("3 neue Nachrichten") instead of raising three.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Do-not-disturb, a setting of this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum DoNotDisturb {
    #[default]
    Off,
    On,
    Until { until: DateTime<Utc> },
}

impl DoNotDisturb {
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        match self {
            DoNotDisturb::Off => false,
            DoNotDisturb::On => true,
            DoNotDisturb::Until { until } => now < *until,
        }
    }
}

/// What the decision needs to know about the app's state.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub me: Uuid,
    /// The conversation open in a focused window, if any.
    pub in_front: Option<Uuid>,
    pub muted: HashSet<Uuid>,
    pub dnd: DoNotDisturb,
    pub now: DateTime<Utc>,
}

/// The message in question.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    pub sender_id: Uuid,
    pub deleted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Notify,
    Own,
    Deleted,
    InFront,
    Muted,
    DoNotDisturb,
}

pub fn decide(message: &Incoming, ctx: &Context) -> Decision {
    if message.sender_id == ctx.me {
        Decision::Own
    } else if message.deleted {
        Decision::Deleted
    } else if ctx.in_front == Some(message.conversation_id) {
        Decision::InFront
    } else if ctx.muted.contains(&message.conversation_id) {
        Decision::Muted
    } else if ctx.dnd.active(ctx.now) {
        Decision::DoNotDisturb
    } else {
        Decision::Notify
    }
}

/// One notification per conversation, counting what it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub conversation_id: Uuid,
    pub count: u32,
    pub last_message_id: Uuid,
    pub last_sender_id: Uuid,
}

/// Groups notifications per conversation until the user looks at it.
#[derive(Debug, Default)]
pub struct Grouper {
    groups: HashMap<Uuid, Group>,
    seen: HashSet<Uuid>,
}

impl Grouper {
    /// Adds a message that [`decide`]d to notify; returns the updated group (None for a
    /// message already counted — a live event and a catch-up may deliver the same one).
    pub fn add(&mut self, m: &Incoming) -> Option<Group> {
        if !self.seen.insert(m.message_id) {
            return None;
        }
        let g = self.groups.entry(m.conversation_id).or_insert(Group {
            conversation_id: m.conversation_id,
            count: 0,
            last_message_id: m.message_id,
            last_sender_id: m.sender_id,
        });
        g.count += 1;
        g.last_message_id = m.message_id;
        g.last_sender_id = m.sender_id;
        Some(g.clone())
    }

    /// The user opened the conversation: its notification is gone.
    pub fn clear(&mut self, conversation: Uuid) {
        self.groups.remove(&conversation);
    }
}

/// The notification text for a group (German, as the app's default).
pub fn body(group: &Group, sender_name: &str, last_text: &str) -> String {
    let preview: String = last_text.chars().take(100).collect();
    if group.count <= 1 {
        format!("{sender_name}: {preview}")
    } else {
        format!("{} neue Nachrichten — {sender_name}: {preview}", group.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (Uuid, Uuid, Uuid) {
        (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3))
    }

    #[test]
    fn decisions() {
        let (me, other, conv) = ids();
        let now = Utc::now();
        let mut ctx = Context { me, now, ..Context::default() };
        let m = Incoming { message_id: Uuid::from_u128(9), conversation_id: conv, sender_id: other, deleted: false };
        assert_eq!(decide(&m, &ctx), Decision::Notify);
        assert_eq!(decide(&Incoming { sender_id: me, ..m.clone() }, &ctx), Decision::Own);
        assert_eq!(decide(&Incoming { deleted: true, ..m.clone() }, &ctx), Decision::Deleted);
        ctx.in_front = Some(conv);
        assert_eq!(decide(&m, &ctx), Decision::InFront);
        ctx.in_front = Some(other);
        ctx.muted.insert(conv);
        assert_eq!(decide(&m, &ctx), Decision::Muted);
        ctx.muted.clear();
        ctx.dnd = DoNotDisturb::On;
        assert_eq!(decide(&m, &ctx), Decision::DoNotDisturb);
        ctx.dnd = DoNotDisturb::Until { until: now - chrono::Duration::seconds(1) };
        assert_eq!(decide(&m, &ctx), Decision::Notify);
        ctx.dnd = DoNotDisturb::Until { until: now + chrono::Duration::minutes(30) };
        assert_eq!(decide(&m, &ctx), Decision::DoNotDisturb);
    }

    #[test]
    fn grouped_per_conversation_and_deduplicated() {
        let (_, other, conv) = ids();
        let mut g = Grouper::default();
        let m = |n| Incoming { message_id: Uuid::from_u128(n), conversation_id: conv, sender_id: other, deleted: false };
        assert_eq!(g.add(&m(10)).unwrap().count, 1);
        assert_eq!(g.add(&m(11)).unwrap().count, 2);
        assert!(g.add(&m(11)).is_none());
        let c2 = Incoming { conversation_id: Uuid::from_u128(4), ..m(12) };
        assert_eq!(g.add(&c2).unwrap().count, 1);
        g.clear(conv);
        assert_eq!(g.add(&m(13)).unwrap().count, 1);
        let group = g.add(&m(14)).unwrap();
        assert_eq!(body(&group, "Alice", "Hallo"), "2 neue Nachrichten — Alice: Hallo");
    }
}
