//! PostgREST (`/rest/v1`) error body and media types.

use serde::{Deserialize, Serialize};

/// `Accept` value asking for a single object instead of an array.
pub const SINGLE_OBJECT: &str = "application/vnd.pgrst.object+json";

/// PostgREST's error body: the Postgres SQLSTATE (or a `PGRST…` code) with its texts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestError {
    pub code: String,
    pub message: String,
    pub details: Option<String>,
    pub hint: Option<String>,
}
