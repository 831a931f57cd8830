//! Server configuration, read from the environment (`DATABASE_URL`, `WERKFUNK_JWT_SECRET`,
//! `WERKFUNK_LISTEN`, `WERKFUNK_JWT_EXP`, and the limits operators may want to tune: see
//! [`Config::from_env`] and the README's "Running the server alone").

use std::net::SocketAddr;
use std::time::Duration;

/// The default address, as Supabase's local development stack uses.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:54321";

#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    /// HS256 secret for access tokens and API keys; at least 32 bytes.
    pub jwt_secret: String,
    pub listen: SocketAddr,
    /// Access-token lifetime.
    pub jwt_exp: Duration,
    /// Largest request body accepted by `/rest/v1` and `/auth/v1`.
    pub max_body_bytes: usize,
    /// Connections in the Postgres pool.
    pub pool_size: u32,
    /// Sign-in, hashing and refresh-token limits.
    pub auth: crate::auth::AuthLimits,
    /// Realtime limits: channels, bindings, presence, slow consumers.
    pub realtime: crate::realtime::Limits,
}

impl std::fmt::Debug for Config {
    // The secret and the database password never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("jwt_exp", &self.jwt_exp)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("pool_size", &self.pool_size)
            .field("auth", &self.auth)
            .field("realtime", &self.realtime)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("WERKFUNK_JWT_SECRET must be at least 32 bytes long")]
    ShortSecret,
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl Config {
    /// A configuration with defaults for everything but the database and the secret.
    pub fn new(database_url: impl Into<String>, jwt_secret: impl Into<String>) -> Result<Config, ConfigError> {
        let jwt_secret = jwt_secret.into();
        if jwt_secret.len() < 32 {
            return Err(ConfigError::ShortSecret);
        }
        Ok(Config {
            database_url: database_url.into(),
            jwt_secret,
            listen: DEFAULT_LISTEN.parse().expect("default address parses"),
            jwt_exp: Duration::from_secs(3600),
            max_body_bytes: 1024 * 1024,
            pool_size: 32,
            auth: crate::auth::AuthLimits::default(),
            realtime: crate::realtime::Limits::default(),
        })
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        let var = |name: &'static str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mut config = Config::new(
            var("DATABASE_URL").ok_or(ConfigError::Missing("DATABASE_URL"))?,
            var("WERKFUNK_JWT_SECRET").ok_or(ConfigError::Missing("WERKFUNK_JWT_SECRET"))?,
        )?;
        if let Some(listen) = var("WERKFUNK_LISTEN") {
            config.listen = listen
                .parse()
                .map_err(|e: std::net::AddrParseError| ConfigError::Invalid { name: "WERKFUNK_LISTEN", reason: e.to_string() })?;
        }
        if let Some(exp) = var("WERKFUNK_JWT_EXP") {
            let secs: u64 = exp
                .parse()
                .map_err(|e: std::num::ParseIntError| ConfigError::Invalid { name: "WERKFUNK_JWT_EXP", reason: e.to_string() })?;
            if secs == 0 {
                return Err(ConfigError::Invalid { name: "WERKFUNK_JWT_EXP", reason: "must be positive".into() });
            }
            config.jwt_exp = Duration::from_secs(secs);
        }
        if let Some(size) = var("WERKFUNK_DB_POOL") {
            config.pool_size = size
                .parse()
                .map_err(|e: std::num::ParseIntError| ConfigError::Invalid { name: "WERKFUNK_DB_POOL", reason: e.to_string() })?;
        }
        let auth = &mut config.auth;
        number("WERKFUNK_HASH_CONCURRENCY", &mut auth.hash_concurrency)?;
        number("WERKFUNK_HASH_QUEUE", &mut auth.hash_queue)?;
        number("WERKFUNK_SIGN_IN_FAILURES_PER_ACCOUNT_ADDRESS", &mut auth.failures_per_account_address)?;
        number("WERKFUNK_SIGN_IN_FAILURES_PER_ADDRESS", &mut auth.failures_per_address)?;
        number("WERKFUNK_SIGN_IN_FAILURES_PER_ACCOUNT", &mut auth.failures_per_account)?;
        seconds("WERKFUNK_REFRESH_TOKEN_REUSE_INTERVAL", &mut auth.refresh_reuse_interval)?;
        let rt = &mut config.realtime;
        number("WERKFUNK_REALTIME_CHANNELS_PER_SOCKET", &mut rt.channels_per_socket)?;
        number("WERKFUNK_REALTIME_BINDINGS_PER_JOIN", &mut rt.bindings_per_join)?;
        number("WERKFUNK_REALTIME_BINDINGS_PER_SOCKET", &mut rt.bindings_per_socket)?;
        number("WERKFUNK_REALTIME_SCANNED_FILTERS", &mut rt.scanned_filters)?;
        number("WERKFUNK_REALTIME_MAX_TRACK_BYTES", &mut rt.max_track_bytes)?;
        seconds("WERKFUNK_REALTIME_SEND_TIMEOUT", &mut rt.send_timeout)?;
        number("WERKFUNK_REALTIME_MAX_SOCKETS", &mut rt.max_sockets)?;
        if config.auth.hash_concurrency == 0 {
            return Err(ConfigError::Invalid { name: "WERKFUNK_HASH_CONCURRENCY", reason: "must be positive".into() });
        }
        Ok(config)
    }
}

/// Reads a non-negative number from `name` into `into`, if set.
fn number<T: std::str::FromStr>(name: &'static str, into: &mut T) -> Result<(), ConfigError>
where
    T::Err: std::fmt::Display,
{
    if let Some(raw) = std::env::var(name).ok().filter(|v| !v.is_empty()) {
        *into = raw.trim().parse().map_err(|e: T::Err| ConfigError::Invalid { name, reason: e.to_string() })?;
    }
    Ok(())
}

/// Reads whole seconds from `name` into `into`, if set.
fn seconds(name: &'static str, into: &mut Duration) -> Result<(), ConfigError> {
    let mut secs = into.as_secs();
    number(name, &mut secs)?;
    *into = Duration::from_secs(secs);
    Ok(())
}
