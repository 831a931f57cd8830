//! The server's one error type and its responses.
//!
//! An error is answered in the shape of the API it happened in: PostgREST's
//! `{code, message, details, hint}` under `/rest/v1` ([`Error::Rest`]), GoTrue's
//! `{code, message}` plus `X-Supabase-Api-Version` under `/auth/v1` ([`Error::Auth`]).
//! Internal failures are logged with the request id and answered without their text.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sqlx::postgres::PgDatabaseError;
use werkfunk_protocol::auth::{AuthError, API_VERSION};
use werkfunk_protocol::rest::RestError;

use crate::jwt::DbRole;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{status}: {} {}", body.code, body.message)]
    Rest { status: StatusCode, body: RestError },
    #[error("{status}: {} {}", body.code, body.message)]
    Auth { status: StatusCode, body: AuthError },
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A PostgREST-shaped error.
    pub fn rest(status: StatusCode, code: &str, message: impl Into<String>) -> Error {
        Error::Rest { status, body: RestError { code: code.to_owned(), message: message.into(), details: None, hint: None } }
    }

    /// PostgREST's `PGRST100`: the query string could not be parsed.
    pub fn bad_query(message: impl Into<String>, details: impl Into<String>) -> Error {
        Error::rest(StatusCode::BAD_REQUEST, "PGRST100", message).with_details(details)
    }

    pub fn with_details(mut self, details: impl Into<String>) -> Error {
        if let Error::Rest { body, .. } = &mut self {
            body.details = Some(details.into());
        }
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Error {
        if let Error::Rest { body, .. } = &mut self {
            body.hint = Some(hint.into());
        }
        self
    }

    /// A GoTrue-shaped error.
    pub fn auth(status: StatusCode, code: &str, message: impl Into<String>) -> Error {
        Error::Auth { status, body: AuthError { code: code.to_owned(), message: message.into(), weak_password: None } }
    }

    /// A database error as PostgREST reports it, for a request made as `role`.
    pub fn from_db(err: sqlx::Error, role: DbRole) -> Error {
        match db_error(&err) {
            Some(pg) => {
                let code = pg.code().to_owned();
                Error::Rest {
                    status: sqlstate_status(&code, role),
                    body: RestError {
                        code,
                        message: pg.message().to_owned(),
                        details: pg.detail().map(str::to_owned),
                        hint: pg.hint().map(str::to_owned),
                    },
                }
            }
            None => Error::from(err),
        }
    }
}

/// The Postgres error inside `err`, if it is one.
pub fn db_error(err: &sqlx::Error) -> Option<&PgDatabaseError> {
    err.as_database_error()?.try_downcast_ref::<PgDatabaseError>()
}

/// PostgREST's SQLSTATE → HTTP status table.
pub fn sqlstate_status(code: &str, role: DbRole) -> StatusCode {
    let class = &code[..code.len().min(2)];
    match code {
        "23503" | "23505" => StatusCode::CONFLICT,
        "25006" => StatusCode::METHOD_NOT_ALLOWED,
        "42883" | "42P01" => StatusCode::NOT_FOUND,
        "42P17" | "53400" => StatusCode::INTERNAL_SERVER_ERROR,
        "42501" if role == DbRole::Anon => StatusCode::UNAUTHORIZED,
        "42501" => StatusCode::FORBIDDEN,
        "P0001" => StatusCode::BAD_REQUEST,
        _ => match class {
            "08" | "53" => StatusCode::SERVICE_UNAVAILABLE,
            "0L" | "0P" | "28" => StatusCode::FORBIDDEN,
            "09" | "25" | "2D" | "38" | "39" | "3B" | "40" | "54" | "55" | "57" | "58" | "F0" | "HV" | "P0" | "XX" => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => StatusCode::BAD_REQUEST,
        },
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Error {
        match &err {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => Error::Rest {
                status: StatusCode::SERVICE_UNAVAILABLE,
                body: RestError {
                    code: "PGRST000".into(),
                    message: "Could not connect with the database".into(),
                    details: None,
                    hint: None,
                },
            },
            _ => Error::Internal(err.to_string()),
        }
    }
}

/// Answers a request body refused for its size (413) in the shape of the API it was sent to.
///
/// The size limit (`Config::max_body_bytes`) is enforced by `tower_http`'s limit layer before
/// any handler runs (and by axum's body extractors for chunked bodies); both answer in plain
/// text, which supabase-js cannot read as an error. PostgREST defines no code for this, so
/// REST answers `PGRST413`; GoTrue answers `request_too_large`.
pub async fn body_limit_in_api_shape(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let path = req.uri().path();
    let (auth, rest) = (path.starts_with("/auth/"), path.starts_with("/rest/"));
    let response = next.run(req).await;
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE || is_json {
        return response;
    }
    const MESSAGE: &str = "The request body is too large";
    if auth {
        Error::auth(StatusCode::PAYLOAD_TOO_LARGE, "request_too_large", MESSAGE).into_response()
    } else if rest {
        Error::rest(StatusCode::PAYLOAD_TOO_LARGE, "PGRST413", MESSAGE).into_response()
    } else {
        response
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Error::Rest { status, body } => {
                if status.is_server_error() {
                    tracing::warn!(code = %body.code, message = %body.message, "request failed");
                }
                (status, Json(body)).into_response()
            }
            Error::Auth { status, body } => {
                let code = HeaderValue::from_str(&body.code).ok();
                let mut response = (status, Json(body)).into_response();
                let headers = response.headers_mut();
                headers.insert("x-supabase-api-version", HeaderValue::from_static(API_VERSION));
                if let Some(code) = code {
                    headers.insert("x-sb-error-code", code);
                }
                response
            }
            Error::Internal(message) => {
                tracing::error!(%message, "internal error");
                let body = RestError { code: "XX000".into(), message: "Internal server error".into(), details: None, hint: None };
                (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
            }
        }
    }
}
