//! The engine's error type and its stable machine-readable codes.
//!
//! Every error a front end can see is an [`Error`]; [`Error::code`] is a short, stable
//! snake_case string (`store_corrupt`, `network`, `signed_out`, …) that a UI or a script
//! matches on — never the message text, which is for people and may change.

use crate::api::ApiError;
use crate::session::SessionError;
use crate::store::StoreError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Session(#[from] SessionError),
    /// Bad input from the caller; nothing was changed.
    #[error("{0}")]
    Invalid(String),
    /// The thing asked for is not in the cache (nor, where asked, on the server).
    #[error("{0} not found")]
    NotFound(String),
    /// The command needs the server now and cannot be queued; the server is not reachable.
    #[error("this needs a connection to the server, and there is none right now ({0})")]
    Offline(String),
    /// Another process (a second app window, `werkfunk-cli`) has this profile open.
    #[error("the profile {} is in use by another Werkfunk process", profile.display())]
    ProfileInUse { profile: std::path::PathBuf },
    /// The engine is shutting down; the command did not run.
    #[error("the engine is shutting down")]
    Stopped,
}

impl Error {
    /// A stable code for programs; see the module docs.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Store(e) => e.code(),
            Error::Api(e) => e.code(),
            Error::Session(e) => e.code(),
            Error::Invalid(_) => "invalid_input",
            Error::NotFound(_) => "not_found",
            Error::Offline(_) => "offline",
            Error::ProfileInUse { .. } => "profile_in_use",
            Error::Stopped => "stopped",
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Error {
        Error::Invalid(msg.into())
    }

    /// For commands that need the server now: "cannot reach it" becomes [`Error::Offline`].
    pub(crate) fn offline_if_unreachable(self) -> Error {
        match self {
            Error::Api(e) if e.is_transient() => Error::Offline(e.to_string()),
            other => other,
        }
    }
}
