//! HTTP to the backend: GoTrue (`/auth/v1`) and PostgREST (`/rest/v1`).
//!
//! A thin, typed layer over reqwest that knows the two error shapes and classifies every
//! failure once ([`ApiError::is_transient`], [`ApiError::is_unauthorized`]), so the outbox and
//! the sync decide by kind, never by message text. It holds no session: each call is given
//! the bearer token (see [`crate::session`] for refresh-and-retry on a 401).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use werkfunk_protocol::auth::{self, AuthError};
use werkfunk_protocol::rest::RestError;

/// Where the backend is: its base URL (`http://127.0.0.1:54321`) and the anon API key.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub url: String,
    pub anon_key: String,
}

/// The default server: the local demo stack.
pub const DEFAULT_URL: &str = "http://127.0.0.1:54321";

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The server could not be reached, or did not answer in time.
    #[error("cannot reach the server: {0}")]
    Network(String),
    /// PostgREST (or the server in front of it) refused: `code` is the SQLSTATE or `PGRST…`.
    #[error("the server answered {status}: {message} ({code})")]
    Rest { status: u16, code: String, message: String, details: Option<String> },
    /// GoTrue refused (`invalid_credentials`, `user_already_exists`, …).
    #[error("{message} ({code})")]
    Auth { status: u16, code: String, message: String },
    /// A success whose body was not what the API promises.
    #[error("unexpected answer from the server: {0}")]
    Decode(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Network(_) => "network",
            ApiError::Auth { code, .. } if code == "invalid_credentials" => "invalid_credentials",
            ApiError::Rest { status: 401, .. } | ApiError::Auth { status: 401, .. } => "unauthorized",
            e if e.is_transient() => "server_unavailable",
            ApiError::Rest { .. } => "server_refused",
            ApiError::Auth { .. } => "auth_refused",
            ApiError::Decode(_) => "bad_response",
        }
    }

    /// Worth retrying later as it is: no answer, 5xx, 429 or 408.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Network(_) => true,
            ApiError::Rest { status, .. } | ApiError::Auth { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            ApiError::Decode(_) => false,
        }
    }

    /// The token was refused (expired or revoked): refresh, then try again.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, ApiError::Rest { status: 401, .. })
    }

    /// The SQLSTATE (or `PGRST…` / GoTrue code) the server gave, if any.
    pub fn server_code(&self) -> Option<&str> {
        match self {
            ApiError::Rest { code, .. } | ApiError::Auth { code, .. } => Some(code),
            _ => None,
        }
    }
}

fn network(e: reqwest::Error) -> ApiError {
    // reqwest's Display hides the cause ("error sending request"); keep the chain.
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    ApiError::Network(text)
}

/// A client for one server. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    anon_key: String,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("base", &self.base).finish_non_exhaustive()
    }
}

impl Api {
    pub fn new(config: &ServerConfig) -> Api {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(20))
            .build()
            .expect("a TLS backend is compiled in");
        Api { http, base: config.url.trim_end_matches('/').to_owned(), anon_key: config.anon_key.clone() }
    }

    /// The base URL, e.g. `http://127.0.0.1:54321`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn anon_key(&self) -> &str {
        &self.anon_key
    }

    fn request(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("apikey", &self.anon_key)
            .header("x-client-info", concat!("werkfunk-core/", env!("CARGO_PKG_VERSION")))
            .bearer_auth(token.unwrap_or(&self.anon_key))
    }

    async fn auth_call<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, ApiError> {
        let resp = req.header("x-supabase-api-version", auth::API_VERSION).send().await.map_err(network)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(network)?;
        if status.is_success() {
            let body = if bytes.is_empty() { b"null".as_slice() } else { &bytes };
            return serde_json::from_slice(body).map_err(|e| ApiError::Decode(e.to_string()));
        }
        Err(match serde_json::from_slice::<AuthError>(&bytes) {
            Ok(e) => ApiError::Auth { status: status.as_u16(), code: e.code, message: e.message },
            Err(_) => ApiError::Auth {
                status: status.as_u16(),
                code: status.as_str().to_owned(),
                message: String::from_utf8_lossy(&bytes).into_owned(),
            },
        })
    }

    /// `POST /auth/v1/signup` (accounts are confirmed at once; the answer is a session).
    pub async fn signup(&self, body: &auth::SignUp) -> Result<auth::Session, ApiError> {
        self.auth_call(self.request(Method::POST, "/auth/v1/signup", None).json(body)).await
    }

    /// `POST /auth/v1/token?grant_type=password`.
    pub async fn password_grant(&self, body: &auth::PasswordGrant) -> Result<auth::Session, ApiError> {
        self.auth_call(self.request(Method::POST, "/auth/v1/token?grant_type=password", None).json(body)).await
    }

    /// `POST /auth/v1/token?grant_type=refresh_token` (the refresh token rotates).
    pub async fn refresh(&self, refresh_token: &str) -> Result<auth::Session, ApiError> {
        let body = auth::RefreshGrant { refresh_token: refresh_token.to_owned() };
        self.auth_call(self.request(Method::POST, "/auth/v1/token?grant_type=refresh_token", None).json(&body)).await
    }

    /// `POST /auth/v1/logout` (revokes the refresh tokens of this session).
    pub async fn logout(&self, access_token: &str) -> Result<(), ApiError> {
        self.auth_call::<Value>(self.request(Method::POST, "/auth/v1/logout?scope=local", Some(access_token))).await.map(|_| ())
    }

    /// `PUT /auth/v1/user` (new password, metadata) as the user of `access_token`.
    pub async fn update_user(&self, access_token: &str, body: &auth::UserUpdate) -> Result<auth::User, ApiError> {
        self.auth_call(self.request(Method::PUT, "/auth/v1/user", Some(access_token)).json(body)).await
    }

    /// A `/rest/v1` call; the answer's JSON (`Null` for an empty body).
    pub async fn rest(
        &self,
        method: Method,
        path: &str,
        token: &str,
        query: &[(&str, String)],
        prefer: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let mut req = self.request(method, &format!("/rest/v1{path}"), Some(token)).query(query);
        if let Some(p) = prefer {
            req = req.header("prefer", p);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(network)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(network)?;
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode(e.to_string()));
        }
        Err(rest_error(status, &bytes))
    }

    /// A `/rest/v1` GET decoded into `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, token: &str, query: &[(&str, String)]) -> Result<T, ApiError> {
        let v = self.rest(Method::GET, path, token, query, None, None).await?;
        serde_json::from_value(v).map_err(|e| ApiError::Decode(e.to_string()))
    }

    /// `POST /rest/v1/rpc/<function>` decoded into `T`.
    pub async fn rpc<T: DeserializeOwned>(&self, function: &str, token: &str, args: &Value) -> Result<T, ApiError> {
        let v = self.rest(Method::POST, &format!("/rpc/{function}"), token, &[], None, Some(args)).await?;
        serde_json::from_value(v).map_err(|e| ApiError::Decode(e.to_string()))
    }
}

fn rest_error(status: StatusCode, bytes: &[u8]) -> ApiError {
    match serde_json::from_slice::<RestError>(bytes) {
        Ok(e) => ApiError::Rest { status: status.as_u16(), code: e.code, message: e.message, details: e.details },
        Err(_) => ApiError::Rest {
            status: status.as_u16(),
            code: status.as_str().to_owned(),
            message: String::from_utf8_lossy(bytes).chars().take(500).collect(),
            details: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let rest = |status, code: &str| ApiError::Rest { status, code: code.into(), message: String::new(), details: None };
        assert!(ApiError::Network("x".into()).is_transient());
        assert!(rest(503, "08000").is_transient());
        assert!(rest(429, "429").is_transient());
        assert!(!rest(403, "42501").is_transient());
        assert!(!rest(400, "23514").is_transient());
        assert!(rest(401, "PGRST303").is_unauthorized());
        assert_eq!(rest(403, "42501").code(), "server_refused");
        assert_eq!(rest(500, "XX000").code(), "server_unavailable");
        assert_eq!(ApiError::Network("x".into()).code(), "network");
    }
}
