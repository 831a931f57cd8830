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
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Error {
        Error::Invalid(msg.into())
    }
}
