//! What front ends show: the serialisable view types of `docs/app-commands.md`.
//!
//! Every type here is `Serialize` with `snake_case` keys; timestamps serialise as RFC 3339
//! in UTC and ids as UUID strings, so the Tauri shell passes them to the webview as they
//! are. Closed sets are enums ([`Role`], [`ConversationKind`], [`MemberRole`], [`Language`]),
//! never strings; [`SendState`] and [`Connectivity`] are re-exported from where they live.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
pub use crate::outbox::SendState;
pub use crate::realtime::Connectivity;

macro_rules! closed_set {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The value from its wire text; anything else is invalid input.
            pub fn parse(s: &str) -> Result<$name> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(Error::invalid(format!(
                        concat!("unknown ", stringify!($name), " {:?} (expected one of: ", $($text, " "),+, ")"),
                        other
                    ))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<$name> {
                $name::parse(s)
            }
        }
    };
}

closed_set!(
    /// A profile's role in the marketplace.
    Role { Tradesperson = "tradesperson", Customer = "customer" }
);
closed_set!(
    /// The seed's conversation types.
    ConversationKind { Direct = "direct", Group = "group", Project = "project" }
);
closed_set!(
    /// A member's role in a conversation.
    MemberRole { Owner = "owner", Admin = "admin", Member = "member" }
);
closed_set!(
    /// The language of what the engine writes (notification text). `System` follows the OS
    /// locale (`LC_ALL`, `LC_MESSAGES`, `LANG`): English when it says so, German otherwise.
    Language { De = "de", En = "en", System = "system" }
);

impl Language {
    /// `De` or `En`: `System` resolved against the OS locale.
    pub fn resolved(self) -> Language {
        match self {
            Language::System => {
                let locale = ["LC_ALL", "LC_MESSAGES", "LANG"]
                    .iter()
                    .filter_map(|k| std::env::var(k).ok())
                    .find(|v| !v.is_empty())
                    .unwrap_or_default();
                if locale.starts_with("en") {
                    Language::En
                } else {
                    Language::De
                }
            }
            other => other,
        }
    }
}

/// A person's public profile (`email` only on the user's own).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub id: Uuid,
    pub full_name: String,
    pub avatar_url: Option<String>,
    pub role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl Profile {
    pub(crate) fn from_row(p: werkfunk_protocol::rows::Profile, email: Option<String>) -> Profile {
        Profile {
            id: p.id,
            full_name: p.full_name,
            avatar_url: p.avatar_url,
            // The schema allows only the two; an unknown one is shown as a customer.
            role: Role::parse(&p.role).unwrap_or(Role::Customer),
            email,
        }
    }
}

/// The newest message of a conversation, for the list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastMessage {
    pub sender_id: Uuid,
    pub sender_name: String,
    /// `""` when deleted.
    pub content: String,
    pub deleted: bool,
    pub created_at: DateTime<Utc>,
}

/// One row of the conversation list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationRow {
    pub id: Uuid,
    pub kind: ConversationKind,
    /// The title, or for a direct chat the other person's name.
    pub title: String,
    /// Direct chats: the other person (for the presence dot).
    pub partner_id: Option<Uuid>,
    pub unread_count: u32,
    pub last_message: Option<LastMessage>,
    /// The sort key (newest first).
    pub last_activity_at: DateTime<Utc>,
    /// Messages, edits and deletes of this conversation still in the outbox (queued or failed).
    pub unsent_count: u32,
    pub muted: bool,
    /// The user left or was removed; the history stays readable.
    pub left: bool,
}

/// Why the server refused an own message for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageError {
    /// The server's code (`42501`, `23514`, …) or the engine's (`id_conflict`).
    pub code: String,
    pub message: String,
}

/// A message as a front end shows it: cached or still in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub sender_id: Uuid,
    pub sender_name: String,
    /// `""` when deleted.
    pub content: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub edited: bool,
    pub deleted: bool,
    /// Own messages; others' are `sent`.
    pub state: SendState,
    /// When `state` is `failed`.
    pub error: Option<MessageError>,
}

/// A search result: the message and the title of its conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    #[serde(flatten)]
    pub message: Message,
    pub conversation_title: String,
}

/// A member of a conversation with their read position.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    pub user_id: Uuid,
    pub full_name: String,
    pub role: MemberRole,
    pub last_read_at: DateTime<Utc>,
    pub online: bool,
}

/// An entry of the notification center (the bell).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    pub id: Uuid,
    /// The conversation it points at (the seed's link `/conversations/<id>`).
    pub conversation_id: Option<Uuid>,
    pub title: String,
    pub body: String,
    pub read: bool,
    pub created_at: DateTime<Utc>,
}

/// The settings of this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// OS notifications at all.
    pub notifications: bool,
    pub sound: bool,
    pub language: Language,
    /// Do not disturb until then (`None`: off).
    pub dnd_until: Option<DateTime<Utc>>,
    /// A shell setting (start with the desktop session), kept by the engine.
    pub autostart: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings { notifications: true, sound: true, language: Language::System, dnd_until: None, autostart: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_sets_parse_and_serialise_as_their_wire_text() {
        assert_eq!(ConversationKind::parse("project").unwrap(), ConversationKind::Project);
        assert_eq!(ConversationKind::parse("channel").unwrap_err().code(), "invalid_input");
        assert_eq!(serde_json::to_value(MemberRole::Admin).unwrap(), "admin");
        assert_eq!(serde_json::to_value(Language::System).unwrap(), "system");
        let s: Settings = serde_json::from_str(r#"{"sound": false}"#).unwrap();
        assert_eq!(s, Settings { sound: false, ..Settings::default() });
    }
}
