//! GoTrue (`/auth/v1`) request and response bodies.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The API version GoTrue's error bodies are shaped for; echoed in `X-Supabase-Api-Version`.
pub const API_VERSION: &str = "2024-01-01";

/// `POST /signup` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignUp {
    pub email: String,
    pub password: String,
    /// Becomes the user's metadata (`full_name`, `role`).
    #[serde(default)]
    pub data: Option<Value>,
}

/// `POST /token?grant_type=password` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasswordGrant {
    pub email: String,
    pub password: String,
}

/// `POST /token?grant_type=refresh_token` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshGrant {
    pub refresh_token: String,
}

/// `PUT /user` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UserUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// A user as GoTrue returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub aud: String,
    pub role: String,
    pub email: String,
    #[serde(default)]
    pub email_confirmed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub confirmed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_sign_in_at: Option<DateTime<Utc>>,
    pub app_metadata: Value,
    pub user_metadata: Value,
    #[serde(default)]
    pub identities: Vec<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub is_anonymous: bool,
}

/// The session body of `/signup` and `/token`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub expires_at: i64,
    pub refresh_token: String,
    pub user: User,
    #[serde(default)]
    pub weak_password: Option<Value>,
}

/// GoTrue's error body for API version 2024-01-01: `{"code":"…","message":"…"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthError {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weak_password: Option<Value>,
}

/// The claims of an access token or API key (HS256 JWT), as GoTrue issues them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    pub exp: i64,
    #[serde(default)]
    pub iat: i64,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_anonymous: Option<bool>,
}
