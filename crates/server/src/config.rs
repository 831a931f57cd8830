//! Server configuration, read from the environment (`DATABASE_URL`, `WERKFUNK_JWT_SECRET`,
//! `WERKFUNK_LISTEN`, `WERKFUNK_JWT_EXP`).

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
}

impl std::fmt::Debug for Config {
    // The secret and the database password never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("jwt_exp", &self.jwt_exp)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("pool_size", &self.pool_size)
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
        Ok(config)
    }
}
