//! Who is asking: the API key and the user's access token of a request, verified.
//!
//! Supabase's rule: the `apikey` header (or `?apikey=` on the websocket) must carry a key
//! signed with the server's secret; `Authorization: Bearer` carries the user's access token,
//! or the key again. The bearer token, when present, decides the role and claims.

use axum::http::HeaderMap;
use uuid::Uuid;

use crate::jwt::{DbRole, JwtError, Keys, Verified};

/// A verified requester.
#[derive(Debug, Clone)]
pub struct Caller {
    pub role: DbRole,
    /// The verified claims, as `request.jwt.claims` receives them.
    pub claims_json: String,
    pub user_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub exp: i64,
}

impl Caller {
    fn from_verified(v: Verified) -> Caller {
        Caller {
            role: v.role,
            user_id: v.claims.sub,
            session_id: v.claims.session_id,
            exp: v.claims.exp,
            claims_json: v.claims_json,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallerError {
    #[error("No API key found in request")]
    MissingKey,
    #[error("Invalid API key")]
    InvalidKey(JwtError),
    #[error("Invalid token: {0}")]
    InvalidToken(JwtError),
}

/// The `apikey` header, else the `apikey` query parameter.
pub fn api_key<'a>(headers: &'a HeaderMap, query_key: Option<&'a str>) -> Option<&'a str> {
    headers.get("apikey").and_then(|v| v.to_str().ok()).or(query_key).filter(|k| !k.is_empty())
}

/// The bearer token of `Authorization`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// Verifies the API key and, if present, the bearer token; the latter decides the caller.
pub fn authenticate(keys: &Keys, headers: &HeaderMap, query_key: Option<&str>, now: i64) -> Result<Caller, CallerError> {
    let key = api_key(headers, query_key).ok_or(CallerError::MissingKey)?;
    let key = keys.verify(key, now).map_err(CallerError::InvalidKey)?;
    match bearer(headers) {
        Some(token) => keys.verify(token, now).map(Caller::from_verified).map_err(CallerError::InvalidToken),
        None => Ok(Caller::from_verified(key)),
    }
}

/// Verifies a single token (the websocket's `access_token`).
pub fn verify_token(keys: &Keys, token: &str, now: i64) -> Result<Caller, JwtError> {
    keys.verify(token, now).map(Caller::from_verified)
}

/// The client's IP address as the socket saw it (no forwarding header is trusted), as text;
/// empty when the server runs without connection info (a router driven in-process).
pub struct ClientAddr(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<ClientAddr, Self::Rejection> {
        let addr = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string());
        Ok(ClientAddr(addr.unwrap_or_default()))
    }
}
