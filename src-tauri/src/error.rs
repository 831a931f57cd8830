//! What a failing command answers the UI: the engine's stable code and a message for people.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct CommandError {
    pub code: String,
    pub message: String,
}

impl CommandError {
    pub fn new(code: &str, message: impl Into<String>) -> CommandError {
        CommandError { code: code.to_owned(), message: message.into() }
    }

    pub fn signed_out() -> CommandError {
        CommandError::new("signed_out", "not signed in")
    }
}

impl From<werkfunk_core::Error> for CommandError {
    fn from(e: werkfunk_core::Error) -> CommandError {
        CommandError { code: e.code().to_owned(), message: e.to_string() }
    }
}

pub type CommandResult<T> = Result<T, CommandError>;
