//! The signed-in account: sign up / in / out, tokens, refresh, and where the secret lives.
//!
//! A profile folder holds `account.json` (who is signed in: user id, email, server, where the
//! secret is kept — nothing secret) and one folder per account (`<user id>/`) with that
//! account's cache and outbox, so two accounts never share a cache.
//!
//! The tokens (access and refresh) are the secret. They live in the OS keyring (`keyring`
//! crate: Secret Service on Linux, Keychain, Credential Manager) where one answers, else in
//! `<user id>/session.secret`, created readable by the user alone (0600) and replaced
//! atomically. The choice is made once at sign-in and recorded: on a machine without a
//! session bus the file is chosen at once, and a keyring that does not answer within 2 s is
//! given up for the file — signing in never hangs on a missing keyring. Tokens never reach
//! a log line (no `Debug` shows them).
//!
//! [`Session::access_token`] refreshes a token that expires within a minute;
//! [`Session::call`] runs a request and, on a 401, refreshes once and runs it again.
//! Refreshes are serialised (refresh tokens rotate: two at once would revoke each other). A
//! refused refresh ends the session ([`SessionError::Expired`]); a network failure does not.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Mutex};
use uuid::Uuid;
use werkfunk_protocol::auth;

use crate::api::{Api, ApiError};
use crate::error::{Error, Result};

const ACCOUNT_FILE: &str = "account.json";
const SECRET_FILE: &str = "session.secret";
const KEYRING_SERVICE: &str = "werkfunk";
/// Refresh when the access token expires within this many seconds (less for short lifetimes).
const REFRESH_MARGIN_SECS: i64 = 60;
const KEYRING_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("not signed in (run `werkfunk-cli login` or sign in in the app)")]
    SignedOut,
    #[error("the session has ended ({0}); please sign in again")]
    Expired(String),
    #[error("cannot keep the session secret: {0}")]
    SecretStore(String),
    #[error("cannot use {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

impl SessionError {
    pub fn code(&self) -> &'static str {
        match self {
            SessionError::SignedOut => "signed_out",
            SessionError::Expired(_) => "session_expired",
            SessionError::SecretStore(_) => "secret_store",
            SessionError::Io { .. } => "profile_io",
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SessionError + '_ {
    move |source| SessionError::Io { path: path.to_owned(), source }
}

/// Where the secret is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretStoreKind {
    Keyring,
    File,
}

/// `account.json`: who is signed in with this profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub user_id: Uuid,
    pub email: String,
    pub server: String,
    pub secret_store: SecretStoreKind,
}

#[derive(Clone, Serialize, Deserialize)]
struct Tokens {
    access_token: String,
    refresh_token: String,
    expires_at: i64,
    #[serde(default = "default_lifetime")]
    expires_in: i64,
}

fn default_lifetime() -> i64 {
    3600
}

impl Tokens {
    /// Refresh this long before expiry: a minute, or a quarter of a short lifetime.
    fn margin(&self) -> i64 {
        REFRESH_MARGIN_SECS.min(self.expires_in.max(4) / 4)
    }
}

impl From<&auth::Session> for Tokens {
    fn from(s: &auth::Session) -> Tokens {
        // Expiry on this machine's clock: the server's `expires_at` is on the server's, and a
        // laptop clock ten minutes ahead would see every token as expired (and refresh before
        // every request), ten minutes behind would send expired ones.
        let expires_at = if s.expires_in > 0 { Utc::now().timestamp() + s.expires_in } else { s.expires_at };
        Tokens {
            access_token: s.access_token.clone(),
            refresh_token: s.refresh_token.clone(),
            expires_at,
            expires_in: s.expires_in,
        }
    }
}

/// A signed-in account.
pub struct Session {
    api: Api,
    profile: PathBuf,
    account: Account,
    tokens: Mutex<Tokens>,
    token_tx: watch::Sender<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("user_id", &self.account.user_id).finish_non_exhaustive()
    }
}

impl Session {
    /// Signs up (accounts are confirmed at once) and keeps the session.
    pub async fn sign_up(api: &Api, profile: &Path, email: &str, password: &str, name: &str, role: &str) -> Result<Session> {
        let body = auth::SignUp {
            email: email.to_owned(),
            password: password.to_owned(),
            data: Some(serde_json::json!({"full_name": name, "role": role})),
        };
        let session = api.signup(&body).await?;
        Self::keep(api, profile, &session).await
    }

    /// Signs in with email and password and keeps the session.
    pub async fn sign_in(api: &Api, profile: &Path, email: &str, password: &str) -> Result<Session> {
        let body = auth::PasswordGrant { email: email.to_owned(), password: password.to_owned() };
        let session = api.password_grant(&body).await?;
        Self::keep(api, profile, &session).await
    }

    /// The session kept in `profile`, if any. Reads local files (and the keyring) only.
    pub async fn resume(api: &Api, profile: &Path) -> Result<Option<Session>> {
        let Some(account) = read_account(profile)? else { return Ok(None) };
        let Some(tokens) = load_secret(profile, &account).await? else { return Ok(None) };
        Ok(Some(Self::new(api, profile, account, tokens)))
    }

    /// The account recorded in `profile`, without touching the secret.
    pub fn account_in(profile: &Path) -> Result<Option<Account>> {
        read_account(profile)
    }

    fn new(api: &Api, profile: &Path, account: Account, tokens: Tokens) -> Session {
        let (token_tx, _) = watch::channel(tokens.access_token.clone());
        Session { api: api.clone(), profile: profile.to_owned(), account, tokens: Mutex::new(tokens), token_tx }
    }

    async fn keep(api: &Api, profile: &Path, session: &auth::Session) -> Result<Session> {
        std::fs::create_dir_all(profile).map_err(io(profile))?;
        let tokens = Tokens::from(session);
        let mut account = Account {
            user_id: session.user.id,
            email: session.user.email.clone(),
            server: api.base_url().to_owned(),
            secret_store: SecretStoreKind::File,
        };
        account.secret_store = choose_and_save(profile, &account, &tokens).await?;
        write_account(profile, &account)?;
        Ok(Self::new(api, profile, account, tokens))
    }

    pub fn user_id(&self) -> Uuid {
        self.account.user_id
    }

    pub fn account(&self) -> &Account {
        &self.account
    }

    /// This account's folder (cache, outbox) inside the profile.
    pub fn account_dir(&self) -> PathBuf {
        account_dir(&self.profile, self.account.user_id)
    }

    pub fn api(&self) -> &Api {
        &self.api
    }

    /// Every new access token, for the realtime connection.
    pub fn watch_token(&self) -> watch::Receiver<String> {
        self.token_tx.subscribe()
    }

    /// A valid access token, refreshed first if it expires within a minute.
    pub async fn access_token(&self) -> Result<String> {
        let mut tokens = self.tokens.lock().await;
        if tokens.expires_at - Utc::now().timestamp() > tokens.margin() {
            return Ok(tokens.access_token.clone());
        }
        self.refresh_locked(&mut tokens).await
    }

    /// When the access token should be refreshed (Unix seconds): shortly before it expires.
    pub async fn refresh_due(&self) -> i64 {
        let tokens = self.tokens.lock().await;
        tokens.expires_at - tokens.margin()
    }

    /// Refreshes unless someone already replaced `stale` (the token a request was refused with).
    pub async fn refresh_after_401(&self, stale: &str) -> Result<String> {
        let mut tokens = self.tokens.lock().await;
        if tokens.access_token != stale {
            return Ok(tokens.access_token.clone());
        }
        self.refresh_locked(&mut tokens).await
    }

    async fn refresh_locked(&self, tokens: &mut Tokens) -> Result<String> {
        match self.api.refresh(&tokens.refresh_token).await {
            Ok(session) => {
                *tokens = Tokens::from(&session);
                save_secret(&self.profile, &self.account, tokens).await?;
                self.token_tx.send_replace(tokens.access_token.clone());
                tracing::debug!(expires_at = tokens.expires_at, "access token refreshed");
                Ok(tokens.access_token.clone())
            }
            Err(e) if e.is_transient() => Err(e.into()),
            Err(e) => {
                tracing::warn!(code = e.server_code(), "refresh refused; the session has ended");
                Err(SessionError::Expired(e.to_string()).into())
            }
        }
    }

    /// Takes over a new session of the same account (a password change signs in afresh, and
    /// the server then ends every other session, ours included): its tokens replace ours, in
    /// the secret store and for the realtime connection.
    pub async fn adopt(&self, session: &auth::Session) -> Result<()> {
        if session.user.id != self.account.user_id {
            return Err(Error::invalid("the new session belongs to another account"));
        }
        let mut tokens = self.tokens.lock().await;
        *tokens = Tokens::from(session);
        save_secret(&self.profile, &self.account, &tokens).await?;
        self.token_tx.send_replace(tokens.access_token.clone());
        Ok(())
    }

    /// The profile folder this session is kept in.
    pub fn profile(&self) -> &Path {
        &self.profile
    }

    /// Runs `call` with a valid token; on a 401 refreshes once and runs it again.
    pub async fn call<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = std::result::Result<T, ApiError>>,
    {
        let token = self.access_token().await?;
        match call(token.clone()).await {
            Err(e) if e.is_unauthorized() => {
                let fresh = self.refresh_after_401(&token).await?;
                Ok(call(fresh).await?)
            }
            other => Ok(other?),
        }
    }

    /// Signs out: revokes the session on the server (best effort, bounded), forgets the secret
    /// and the account record. The account's cache and outbox stay for its next sign-in.
    pub async fn sign_out(&self) -> Result<()> {
        let token = self.tokens.lock().await.access_token.clone();
        if let Err(e) = tokio::time::timeout(Duration::from_secs(5), self.api.logout(&token))
            .await
            .unwrap_or_else(|_| Err(ApiError::Network("timed out".into())))
        {
            tracing::warn!(error = %e, "server-side logout failed; forgetting the session locally");
        }
        forget(&self.profile, &self.account).await
    }
}

/// Forgets the session kept in `profile` without asking the server.
pub async fn forget_local(profile: &Path) -> Result<()> {
    match read_account(profile)? {
        Some(account) => forget(profile, &account).await,
        None => Ok(()),
    }
}

async fn forget(profile: &Path, account: &Account) -> Result<()> {
    match account.secret_store {
        SecretStoreKind::Keyring => {
            let entry = keyring_entry_name(profile, account.user_id);
            let _ = run_keyring(move || keyring::Entry::new(KEYRING_SERVICE, &entry)?.delete_credential()).await;
        }
        SecretStoreKind::File => {
            let path = account_dir(profile, account.user_id).join(SECRET_FILE);
            if path.exists() {
                std::fs::remove_file(&path).map_err(io(&path))?;
            }
        }
    }
    let path = profile.join(ACCOUNT_FILE);
    if path.exists() {
        std::fs::remove_file(&path).map_err(io(&path))?;
    }
    Ok(())
}

pub fn account_dir(profile: &Path, user: Uuid) -> PathBuf {
    profile.join(user.to_string())
}

fn read_account(profile: &Path) -> Result<Option<Account>> {
    let path = profile.join(ACCOUNT_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Session(SessionError::Io { path, source: std::io::Error::other(e) })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SessionError::Io { path, source: e }.into()),
    }
}

fn write_account(profile: &Path, account: &Account) -> Result<()> {
    let json = serde_json::to_vec_pretty(account).expect("account serialises");
    write_private(&profile.join(ACCOUNT_FILE), &json)
}

/// Writes `bytes` to `path` atomically, readable by the user alone.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(())
}

fn keyring_entry_name(profile: &Path, user: Uuid) -> String {
    // One entry per (profile, account): two profiles of one account hold separate sessions.
    let canonical = profile.canonicalize().unwrap_or_else(|_| profile.to_owned());
    format!("{user}@{}", canonical.display())
}

/// Whether a keyring could answer at all, decided without waiting on anything.
fn keyring_may_answer() -> bool {
    match std::env::var("WERKFUNK_SECRET_STORE").ok().as_deref() {
        Some("file") => return false,
        Some("keyring") => return true,
        _ => {}
    }
    if cfg!(all(unix, not(target_os = "macos"))) {
        // Secret Service needs a session bus; without one there is nothing to wait for.
        let bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
            || std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| Path::new(&d).join("bus").exists());
        return bus;
    }
    true
}

async fn run_keyring<T: Send + 'static>(
    f: impl FnOnce() -> keyring::Result<T> + Send + 'static,
) -> std::result::Result<T, String> {
    match tokio::time::timeout(KEYRING_TIMEOUT, tokio::task::spawn_blocking(f)).await {
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(e))) => Err(e.to_string()),
        Ok(Err(e)) => Err(format!("keyring task failed: {e}")),
        Err(_) => Err("the keyring did not answer in time".into()),
    }
}

async fn choose_and_save(profile: &Path, account: &Account, tokens: &Tokens) -> Result<SecretStoreKind> {
    let json = serde_json::to_string(tokens).expect("tokens serialise");
    if keyring_may_answer() {
        let entry = keyring_entry_name(profile, account.user_id);
        let secret = json.clone();
        match run_keyring(move || keyring::Entry::new(KEYRING_SERVICE, &entry)?.set_password(&secret)).await {
            Ok(()) => return Ok(SecretStoreKind::Keyring),
            Err(e) => tracing::info!(reason = %e, "no OS keyring; keeping the session in a user-only file"),
        }
    }
    write_private(&account_dir(profile, account.user_id).join(SECRET_FILE), json.as_bytes())?;
    Ok(SecretStoreKind::File)
}

async fn save_secret(profile: &Path, account: &Account, tokens: &Tokens) -> Result<()> {
    let json = serde_json::to_string(tokens).expect("tokens serialise");
    match account.secret_store {
        SecretStoreKind::Keyring => {
            let entry = keyring_entry_name(profile, account.user_id);
            run_keyring(move || keyring::Entry::new(KEYRING_SERVICE, &entry)?.set_password(&json))
                .await
                .map_err(|e| SessionError::SecretStore(e).into())
        }
        SecretStoreKind::File => write_private(&account_dir(profile, account.user_id).join(SECRET_FILE), json.as_bytes()),
    }
}

async fn load_secret(profile: &Path, account: &Account) -> Result<Option<Tokens>> {
    let json = match account.secret_store {
        SecretStoreKind::Keyring => {
            let entry = keyring_entry_name(profile, account.user_id);
            match run_keyring(move || keyring::Entry::new(KEYRING_SERVICE, &entry)?.get_password()).await {
                Ok(s) => s,
                Err(e) if e.contains("No matching entry") => return Ok(None),
                Err(e) => return Err(SessionError::SecretStore(e).into()),
            }
        }
        SecretStoreKind::File => {
            let path = account_dir(profile, account.user_id).join(SECRET_FILE);
            match std::fs::read_to_string(&path) {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(SessionError::Io { path, source: e }.into()),
            }
        }
    };
    serde_json::from_str(&json).map(Some).map_err(|e| SessionError::SecretStore(format!("unreadable secret: {e}")).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_file_is_user_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/session.secret");
        write_private(&path, b"{}").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
    }
}
