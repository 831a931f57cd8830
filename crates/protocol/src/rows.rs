//! Rows of the messaging schema as `/rest/v1` returns them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// `public.profiles`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub id: Uuid,
    pub full_name: String,
    pub avatar_url: Option<String>,
    pub role: String,
}

/// `public.conversations`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub title: Option<String>,
    #[serde(default)]
    pub meta: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `public.conversation_members`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationMember {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    pub role: String,
    pub joined_at: DateTime<Utc>,
    pub last_read_at: DateTime<Utc>,
}

/// `public.messages`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub sender_id: Uuid,
    pub content: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub attachments: Value,
    #[serde(default)]
    pub meta: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// `public.notifications`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: Uuid,
    pub user_id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub body: Option<String>,
    pub link: Option<String>,
    pub read: bool,
    pub created_at: DateTime<Utc>,
}

/// One row of `rpc/get_unread_counts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnreadCount {
    pub conversation_id: Uuid,
    pub unread_count: i32,
}
