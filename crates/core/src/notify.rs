//! Which incoming messages deserve an OS notification, and its text — pure logic, no I/O.
//!
//! # Inputs
//! Three separate facts about the app ([`Window`]): which conversation is open, whether the
//! window is focused, whether it is visible. A conversation is *in front* when it is open in
//! a focused, visible window: a message there does not notify, and the engine marks the
//! conversation read ([`Decision::ReadInFront`]). Open in an unfocused or hidden window, it
//! notifies like any other.
//!
//! # Rules
//! A message notifies when it is from someone else, not deleted, not in front, its
//! conversation is not muted, do-not-disturb is not active and notifications are on.
//! Notifications are grouped per conversation ([`Grouper`]): a burst updates one notification
//! ("3 neue Nachrichten") instead of raising three; reading the conversation clears its group.
//! Messages that arrive by a catch-up notify as one summary per conversation, and never for
//! messages older than the last time this device was online ([`catch_up_arrivals`]).
//!
//! # Text and sound
//! German by default, English when the language setting says so ([`Language`]). Every
//! notification carries a sound decision: the `sound` setting.
//!
//! # Memory
//! Bounded: the grouper remembers at most [`SEEN_LIMIT`] message ids (oldest forgotten first)
//! and [`GROUP_LIMIT`] groups.

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::view::Language;

/// Message ids the grouper remembers to drop duplicates (a live event and a catch-up may
/// deliver the same message).
pub const SEEN_LIMIT: usize = 2048;
/// Conversations with an open notification group.
pub const GROUP_LIMIT: usize = 256;

/// The app window, as the shell reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The conversation open in the window (`set_in_front`).
    pub open: Option<Uuid>,
    pub focused: bool,
    pub visible: bool,
}

impl Default for Window {
    /// A front end that never reports its window is taken as focused and visible (the CLI's
    /// `watch`): only the open conversation matters then.
    fn default() -> Window {
        Window { open: None, focused: true, visible: true }
    }
}

impl Window {
    /// The conversation the user is looking at right now, if any.
    pub fn in_front(&self) -> Option<Uuid> {
        self.open.filter(|_| self.focused && self.visible)
    }
}

/// What the decision needs to know besides the message.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub me: Uuid,
    pub window: Window,
    pub muted: HashSet<Uuid>,
    /// Do not disturb until then.
    pub dnd_until: Option<DateTime<Utc>>,
    /// OS notifications switched off in the settings.
    pub disabled: bool,
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
    /// The conversation is open in a focused, visible window: no notification, and the
    /// conversation is read.
    ReadInFront,
    Muted,
    DoNotDisturb,
    Disabled,
}

pub fn decide(message: &Incoming, ctx: &Context) -> Decision {
    if message.sender_id == ctx.me {
        Decision::Own
    } else if message.deleted {
        Decision::Deleted
    } else if ctx.window.in_front() == Some(message.conversation_id) {
        Decision::ReadInFront
    } else if ctx.muted.contains(&message.conversation_id) {
        Decision::Muted
    } else if ctx.dnd_until.is_some_and(|until| ctx.now < until) {
        Decision::DoNotDisturb
    } else if ctx.disabled {
        Decision::Disabled
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

/// Groups notifications per conversation until the user reads it. Bounded (module docs).
#[derive(Debug, Default)]
pub struct Grouper {
    groups: HashMap<Uuid, Group>,
    /// Conversations in the order their group was last touched (oldest first).
    order: VecDeque<Uuid>,
    seen: HashSet<Uuid>,
    seen_order: VecDeque<Uuid>,
}

impl Grouper {
    /// Adds a message that [`decide`]d to notify; returns the updated group (None for a
    /// message already counted).
    pub fn add(&mut self, m: &Incoming) -> Option<Group> {
        self.add_many(m.conversation_id, std::slice::from_ref(&(m.message_id, m.sender_id)))
    }

    /// Adds several messages of one conversation at once (a catch-up): one updated group.
    /// `messages` are (id, sender), oldest first. None when all were already counted.
    pub fn add_many(&mut self, conversation: Uuid, messages: &[(Uuid, Uuid)]) -> Option<Group> {
        let fresh: Vec<(Uuid, Uuid)> = messages.iter().copied().filter(|(id, _)| self.remember(*id)).collect();
        let (last_id, last_sender) = *fresh.last()?;
        let g = self.groups.entry(conversation).or_insert(Group {
            conversation_id: conversation,
            count: 0,
            last_message_id: last_id,
            last_sender_id: last_sender,
        });
        g.count += fresh.len() as u32;
        g.last_message_id = last_id;
        g.last_sender_id = last_sender;
        let group = g.clone();
        self.order.retain(|c| *c != conversation);
        self.order.push_back(conversation);
        while self.order.len() > GROUP_LIMIT {
            if let Some(old) = self.order.pop_front() {
                self.groups.remove(&old);
            }
        }
        Some(group)
    }

    fn remember(&mut self, id: Uuid) -> bool {
        if !self.seen.insert(id) {
            return false;
        }
        self.seen_order.push_back(id);
        while self.seen_order.len() > SEEN_LIMIT {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }

    /// The user read the conversation: its notification is gone.
    pub fn clear(&mut self, conversation: Uuid) {
        self.groups.remove(&conversation);
        self.order.retain(|c| *c != conversation);
    }

    /// How many groups and remembered ids it holds (for tests of the bound).
    pub fn size(&self) -> (usize, usize) {
        (self.groups.len(), self.seen.len())
    }
}

/// Which of a catch-up's new messages may notify: from someone else, not deleted, and
/// created after `online_until` — the last time this device was online (older ones the user
/// could have seen already, or they are history the device never had).
pub fn catch_up_arrivals<'a>(
    me: Uuid,
    online_until: DateTime<Utc>,
    messages: impl IntoIterator<Item = &'a werkfunk_protocol::rows::Message>,
) -> Vec<&'a werkfunk_protocol::rows::Message> {
    messages.into_iter().filter(|m| m.sender_id != me && m.deleted_at.is_none() && m.created_at > online_until).collect()
}

/// The text of a notification: title and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub title: String,
    pub body: String,
}

/// The notification for a group: the sender as title (the conversation's title for groups
/// of several senders is the caller's choice), the message or the count as body.
pub fn text(group: &Group, language: Language, sender_name: &str, last_text: &str) -> Text {
    let preview: String = last_text.chars().take(100).collect();
    let body =
        if group.count <= 1 { preview } else { format!("{} — {sender_name}: {preview}", count_text(group.count, language)) };
    Text { title: sender_name.to_owned(), body }
}

/// "3 neue Nachrichten" / "3 new messages".
pub fn count_text(count: u32, language: Language) -> String {
    match (language.resolved(), count) {
        (Language::En, 1) => "1 new message".to_owned(),
        (Language::En, n) => format!("{n} new messages"),
        (_, 1) => "1 neue Nachricht".to_owned(),
        (_, n) => format!("{n} neue Nachrichten"),
    }
}

/// The name shown for someone the cache has no profile of.
pub fn someone(language: Language) -> &'static str {
    match language.resolved() {
        Language::En => "Someone",
        _ => "Jemand",
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
        ctx.muted.insert(conv);
        assert_eq!(decide(&m, &ctx), Decision::Muted);
        ctx.muted.clear();
        ctx.dnd_until = Some(now - chrono::Duration::seconds(1));
        assert_eq!(decide(&m, &ctx), Decision::Notify);
        ctx.dnd_until = Some(now + chrono::Duration::minutes(30));
        assert_eq!(decide(&m, &ctx), Decision::DoNotDisturb);
        ctx.dnd_until = None;
        ctx.disabled = true;
        assert_eq!(decide(&m, &ctx), Decision::Disabled);
    }

    #[test]
    fn open_and_focused_reads_open_and_unfocused_notifies() {
        let (me, other, conv) = ids();
        let m = Incoming { message_id: Uuid::from_u128(9), conversation_id: conv, sender_id: other, deleted: false };
        let mut ctx = Context { me, now: Utc::now(), ..Context::default() };
        ctx.window = Window { open: Some(conv), focused: true, visible: true };
        assert_eq!(decide(&m, &ctx), Decision::ReadInFront);
        ctx.window.focused = false;
        assert_eq!(decide(&m, &ctx), Decision::Notify);
        ctx.window = Window { open: Some(conv), focused: true, visible: false };
        assert_eq!(decide(&m, &ctx), Decision::Notify, "a hidden window is not in front");
        ctx.window = Window { open: Some(other), focused: true, visible: true };
        assert_eq!(decide(&m, &ctx), Decision::Notify, "another conversation is open");
    }

    #[test]
    fn grouped_per_conversation_deduplicated_and_cleared_by_reading() {
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
        assert_eq!(text(&group, Language::De, "Alice", "Hallo").body, "2 neue Nachrichten — Alice: Hallo");
        assert_eq!(text(&group, Language::En, "Alice", "Hallo").body, "2 new messages — Alice: Hallo");
        assert_eq!(
            text(&Group { count: 1, ..group }, Language::De, "Alice", "Hallo"),
            Text { title: "Alice".into(), body: "Hallo".into() }
        );
    }

    #[test]
    fn a_catch_up_is_one_summary_and_only_for_what_came_after_the_device_was_online() {
        let (me, other, conv) = ids();
        let online_until = Utc::now();
        let msg = |n: u128, secs: i64, sender| werkfunk_protocol::rows::Message {
            id: Uuid::from_u128(n),
            conversation_id: conv,
            sender_id: sender,
            content: format!("m{n}"),
            kind: "text".into(),
            attachments: serde_json::json!([]),
            meta: serde_json::json!({}),
            created_at: online_until + chrono::Duration::seconds(secs),
            updated_at: online_until + chrono::Duration::seconds(secs),
            deleted_at: None,
        };
        let page = [msg(1, -10, other), msg(2, 1, other), msg(3, 2, me), msg(4, 3, other), msg(5, 4, other)];
        let fresh = catch_up_arrivals(me, online_until, &page);
        assert_eq!(fresh.iter().map(|m| m.id.as_u128()).collect::<Vec<_>>(), [2, 4, 5]);
        let mut g = Grouper::default();
        let group = g.add_many(conv, &fresh.iter().map(|m| (m.id, m.sender_id)).collect::<Vec<_>>()).unwrap();
        assert_eq!(group.count, 3);
        assert_eq!(count_text(group.count, Language::De), "3 neue Nachrichten");
        assert_eq!(count_text(group.count, Language::En), "3 new messages");
        assert!(g.add_many(conv, &[(Uuid::from_u128(5), other)]).is_none(), "already counted");
    }

    #[test]
    fn memory_is_bounded() {
        let other = Uuid::from_u128(2);
        let mut g = Grouper::default();
        for n in 0..(SEEN_LIMIT as u128 + 500) {
            let m = Incoming {
                message_id: Uuid::from_u128(1000 + n),
                conversation_id: Uuid::from_u128(n % 400),
                sender_id: other,
                deleted: false,
            };
            g.add(&m);
        }
        let (groups, seen) = g.size();
        assert!(groups <= GROUP_LIMIT && seen <= SEEN_LIMIT, "{groups} groups, {seen} ids");
    }
}
