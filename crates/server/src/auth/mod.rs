//! `/auth/v1`: GoTrue's email/password subset, as supabase-js calls it.
//!
//! Accounts are confirmed at once; sign-up answers with a session. Refresh tokens rotate
//! (using one revokes it; presenting a revoked one ends its session, except within GoTrue's
//! reuse interval right after the rotation, when it yields a token of the same session).
//! Password sign-ins are rate-limited in the database, so every server process shares the
//! limits ([`AuthLimits`]): each attempt is recorded under a per-account lock *before* the
//! password is checked, and removed again when it succeeds. Changing the password ends every
//! other session. Password hashing runs in a bounded pool ([`password::Hashing`]). Errors are
//! GoTrue's 2024-01-01 shape.

pub mod password;
mod session;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use werkfunk_protocol::auth::{PasswordGrant, RefreshGrant, SignUp, UserUpdate};

use crate::caller::{self, ClientAddr};
use crate::error::{db_error, Error, Result};
use crate::jwt::{self, DbRole};
use crate::AppState;

pub use session::user_json;

/// Failed sign-ins allowed per account and client address within [`FAILURE_WINDOW_SECS`]
/// (the default of [`AuthLimits::failures_per_account_address`]).
pub const MAX_FAILED_SIGN_INS: i64 = 10;
pub const FAILURE_WINDOW_SECS: i64 = 300;

/// Largest `user_metadata` accepted (it rides in every access token), as JSON text.
pub const MAX_USER_METADATA_BYTES: usize = 4096;

/// The auth limits of one server (all but the hashing pool shared by every process through
/// the database).
#[derive(Debug, Clone)]
pub struct AuthLimits {
    /// Argon2 hashes running at once (default: the number of cores).
    pub hash_concurrency: usize,
    /// Hashes waiting for a slot; past it, sign-up/sign-in/password change answer 429.
    pub hash_queue: usize,
    /// Failed sign-ins of one account from one client address within the window.
    pub failures_per_account_address: i64,
    /// Failed sign-ins from one client address (any account) within the window.
    pub failures_per_address: i64,
    /// Failed sign-ins of one account from all addresses within the window; past it, only
    /// addresses that have not failed on this account may still try (so the owner, signing
    /// in from a clean address, still gets in).
    pub failures_per_account: i64,
    /// GoTrue's `REFRESH_TOKEN_REUSE_INTERVAL`: a just-rotated refresh token presented again
    /// within this time yields a token of the same session instead of ending it.
    pub refresh_reuse_interval: std::time::Duration,
}

impl Default for AuthLimits {
    fn default() -> AuthLimits {
        AuthLimits {
            hash_concurrency: std::thread::available_parallelism().map(usize::from).unwrap_or(2),
            hash_queue: 32,
            failures_per_account_address: MAX_FAILED_SIGN_INS,
            failures_per_address: 50,
            failures_per_account: 100,
            refresh_reuse_interval: std::time::Duration::from_secs(10),
        }
    }
}

/// GoTrue's answer when the hashing pool is full.
fn busy() -> Error {
    Error::auth(
        StatusCode::TOO_MANY_REQUESTS,
        "over_request_rate_limit",
        "Too many requests are being processed. Please try again later.",
    )
}

fn hash_error(e: password::HashError) -> Error {
    match e {
        password::HashError::Busy(_) => busy(),
        password::HashError::Failed(m) => Error::Internal(m),
    }
}

/// `user_metadata` too large to ride in every token: 422, as GoTrue answers invalid input.
fn check_metadata(data: &Value) -> Result<()> {
    if data.to_string().len() > MAX_USER_METADATA_BYTES {
        return Err(Error::auth(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!("User metadata must be at most {MAX_USER_METADATA_BYTES} bytes of JSON"),
        ));
    }
    Ok(())
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/signup", post(signup))
        .route("/token", post(token))
        .route("/user", get(get_user).put(update_user))
        .route("/logout", post(logout))
        .route("/health", get(|| async { Json(json!({"name": "GoTrue", "description": "Werkfunk auth"})) }))
        .fallback(|| async { Error::auth(StatusCode::NOT_FOUND, "not_found", "Not found: this endpoint does not exist") })
        .method_not_allowed_fallback(|| async {
            Error::auth(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "This method is not allowed on this endpoint")
        })
}

/// Body parser that answers malformed JSON in GoTrue's shape.
fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| Error::auth(StatusCode::BAD_REQUEST, "bad_json", format!("Could not parse request body as JSON: {e}")))
}

/// The API key must be valid on every auth call.
fn require_key(state: &AppState, headers: &HeaderMap) -> Result<()> {
    let key = caller::api_key(headers, None)
        .ok_or_else(|| Error::auth(StatusCode::UNAUTHORIZED, "no_api_key", "No API key found in request"))?;
    state
        .keys
        .verify(key, jwt::now())
        .map(|_| ())
        .map_err(|_| Error::auth(StatusCode::UNAUTHORIZED, "invalid_api_key", "Invalid API key"))
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    !local.is_empty()
        && local.len() <= 64
        && email.len() <= 254
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
}

fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < password::MIN_LENGTH {
        return Err(Error::Auth {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: werkfunk_protocol::auth::AuthError {
                code: "weak_password".into(),
                message: format!("Password should be at least {} characters.", password::MIN_LENGTH),
                weak_password: Some(json!({"reasons": ["length"]})),
            },
        });
    }
    Ok(())
}

async fn signup(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Result<impl IntoResponse> {
    require_key(&state, &headers)?;
    let req: SignUp = parse(&body)?;
    let email = req.email.trim().to_owned();
    if !valid_email(&email) {
        return Err(Error::auth(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "Unable to validate email address: invalid format",
        ));
    }
    check_password(&req.password)?;
    let metadata = match req.data {
        None | Some(Value::Null) => json!({}),
        Some(Value::Object(m)) => Value::Object(m),
        Some(_) => return Err(Error::auth(StatusCode::BAD_REQUEST, "validation_failed", "data must be a JSON object")),
    };
    check_metadata(&metadata)?;
    let hash = state.hashing.hash(req.password).await.map_err(hash_error)?;
    let mut tx = crate::db::begin(&state.pool).await?;
    let inserted = sqlx::query_scalar::<_, uuid::Uuid>(
        "insert into auth.users (email, encrypted_password, raw_user_meta_data, email_confirmed_at, last_sign_in_at)
         values ($1, $2, $3, now(), now()) returning id",
    )
    .bind(&email)
    .bind(&hash)
    .bind(&metadata)
    .fetch_one(&mut *tx)
    .await;
    let user_id = match inserted {
        Ok(id) => id,
        Err(e) => {
            return Err(match db_error(&e).map(|d| d.code().to_owned()).as_deref() {
                Some("23505") => Error::auth(StatusCode::UNPROCESSABLE_ENTITY, "user_already_exists", "User already registered"),
                Some("22023") | Some("23514") => {
                    let message = db_error(&e).map(|d| d.message().to_owned()).unwrap_or_default();
                    Error::auth(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", message)
                }
                _ => e.into(),
            })
        }
    };
    let session = session::issue(&state, &mut tx, user_id).await?;
    tx.commit().await?;
    Ok(Json(session))
}

#[derive(Deserialize)]
struct GrantQuery {
    grant_type: Option<String>,
}

async fn token(
    State(state): State<AppState>,
    Query(q): Query<GrantQuery>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse> {
    require_key(&state, &headers)?;
    match q.grant_type.as_deref() {
        Some("password") => password_grant(&state, parse(&body)?, &address).await,
        Some("refresh_token") => refresh_grant(&state, parse(&body)?).await,
        _ => Err(Error::auth(StatusCode::BAD_REQUEST, "unsupported_grant_type", "unsupported_grant_type")),
    }
}

fn too_many_failures() -> Error {
    Error::auth(
        StatusCode::TOO_MANY_REQUESTS,
        "over_request_rate_limit",
        "Too many failed sign-in attempts for this account. Please try again later.",
    )
}

/// Records a sign-in attempt of `email` from `address` before its password is checked, or
/// refuses it (429) when a limit is reached. The counts are read and the attempt written
/// under transaction-scoped advisory locks on the account and on the address, so parallel
/// attempts are counted one after the other: of 40 at once, at most the limit are checked.
/// Returns the attempt's row, to be removed when the password turns out right.
async fn record_attempt(state: &AppState, email: &str, address: &str) -> Result<i64> {
    let limits = &state.config.auth;
    let mut tx = crate::db::begin(&state.pool).await?;
    sqlx::query("select pg_advisory_xact_lock(hashtext('werkfunk.sign_in.account:' || lower($1)))")
        .bind(email)
        .execute(&mut *tx)
        .await?;
    sqlx::query("select pg_advisory_xact_lock(hashtext('werkfunk.sign_in.address:' || $1))")
        .bind(address)
        .execute(&mut *tx)
        .await?;
    let (account_address, by_address, by_account): (i64, i64, i64) = sqlx::query_as(
        "select count(*) filter (where f.email = lower($1) and f.address = $2),
                count(*) filter (where f.address = $2),
                count(*) filter (where f.email = lower($1))
           from auth.sign_in_failures f
          where (f.email = lower($1) or f.address = $2) and f.failed_at > now() - make_interval(secs => $3)",
    )
    .bind(email)
    .bind(address)
    .bind(FAILURE_WINDOW_SECS as f64)
    .fetch_one(&mut *tx)
    .await?;
    if account_address >= limits.failures_per_account_address
        || by_address >= limits.failures_per_address
        || (by_account >= limits.failures_per_account && account_address > 0)
    {
        return Err(too_many_failures());
    }
    let id: i64 = sqlx::query_scalar("insert into auth.sign_in_failures (email, address) values (lower($1), $2) returning id")
        .bind(email)
        .bind(address)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}

async fn password_grant(state: &AppState, req: PasswordGrant, address: &str) -> Result<Json<Value>> {
    let email = req.email.trim().to_owned();
    let attempt = record_attempt(state, &email, address).await?;
    let row: Option<(uuid::Uuid, String)> =
        sqlx::query_as("select id, encrypted_password from auth.users where lower(email) = lower($1)")
            .bind(&email)
            .fetch_optional(&state.pool)
            .await?;
    let checked = state.hashing.verify_or_decoy(req.password, row.as_ref().map(|(_, stored)| stored.clone())).await;
    let ok = match checked {
        Ok(ok) => ok,
        Err(_) => {
            // Not checked at all: the attempt does not count against the account.
            sqlx::query("delete from auth.sign_in_failures where id = $1").bind(attempt).execute(&state.pool).await?;
            return Err(busy());
        }
    };
    let Some((user_id, _)) = row.filter(|_| ok) else {
        // The attempt stays recorded as a failure. Failures older than the window count
        // for nothing; keep the table small.
        sqlx::query("delete from auth.sign_in_failures where failed_at < now() - make_interval(secs => $1)")
            .bind(2.0 * FAILURE_WINDOW_SECS as f64)
            .execute(&state.pool)
            .await?;
        return Err(Error::auth(StatusCode::BAD_REQUEST, "invalid_credentials", "Invalid login credentials"));
    };
    let mut tx = crate::db::begin(&state.pool).await?;
    sqlx::query("delete from auth.sign_in_failures where id = $1").bind(attempt).execute(&mut *tx).await?;
    sqlx::query("update auth.users set last_sign_in_at = now() where id = $1").bind(user_id).execute(&mut *tx).await?;
    let session = session::issue(state, &mut tx, user_id).await?;
    tx.commit().await?;
    Ok(Json(session))
}

async fn refresh_grant(state: &AppState, req: RefreshGrant) -> Result<Json<Value>> {
    let mut tx = crate::db::begin(&state.pool).await?;
    let session = session::rotate(state, &mut tx, &req.refresh_token).await;
    // A reuse ends the session: commit that even though the request fails.
    tx.commit().await?;
    Ok(Json(session?))
}

/// The caller of `/user` and `/logout`: a valid API key and a user's access token.
struct UserCaller {
    user_id: uuid::Uuid,
    session_id: Option<uuid::Uuid>,
}

async fn user_caller(state: &AppState, headers: &HeaderMap) -> Result<UserCaller> {
    require_key(state, headers)?;
    let token = caller::bearer(headers).ok_or_else(|| {
        Error::auth(StatusCode::UNAUTHORIZED, "no_authorization", "This endpoint requires a valid Bearer token")
    })?;
    let verified = state.keys.verify(token, jwt::now()).map_err(|e| {
        Error::auth(StatusCode::FORBIDDEN, "bad_jwt", format!("invalid JWT: unable to parse or verify signature, {e}"))
    })?;
    let (DbRole::Authenticated, Some(user_id)) = (verified.role, verified.claims.sub) else {
        return Err(Error::auth(StatusCode::FORBIDDEN, "bad_jwt", "invalid claim: missing sub claim"));
    };
    if let Some(session_id) = verified.claims.session_id {
        let alive: bool = sqlx::query_scalar("select exists(select 1 from auth.sessions where id = $1)")
            .bind(session_id)
            .fetch_one(&state.pool)
            .await?;
        if !alive {
            return Err(Error::auth(
                StatusCode::FORBIDDEN,
                "session_not_found",
                "Session from session_id claim in JWT does not exist",
            ));
        }
    }
    Ok(UserCaller { user_id, session_id: verified.claims.session_id })
}

async fn get_user(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>> {
    let caller = user_caller(&state, &headers).await?;
    let mut conn = state.pool.acquire().await?;
    let user = user_json(&mut conn, caller.user_id)
        .await?
        .ok_or_else(|| Error::auth(StatusCode::FORBIDDEN, "user_not_found", "User from sub claim in JWT does not exist"))?;
    Ok(Json(user))
}

async fn update_user(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Result<Json<Value>> {
    let caller = user_caller(&state, &headers).await?;
    let req: UserUpdate = parse(&body)?;
    if req.email.is_some() {
        return Err(Error::auth(
            StatusCode::UNPROCESSABLE_ENTITY,
            "email_change_not_supported",
            "Changing the email address is not supported",
        ));
    }
    let data = match req.data {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(Value::Object(m)),
        Some(_) => return Err(Error::auth(StatusCode::BAD_REQUEST, "validation_failed", "data must be a JSON object")),
    };
    if let Some(data) = &data {
        check_metadata(data)?;
    }
    let hash = match req.password {
        Some(p) => {
            check_password(&p)?;
            Some(state.hashing.hash(p).await.map_err(hash_error)?)
        }
        None => None,
    };
    let mut tx = crate::db::begin(&state.pool).await?;
    sqlx::query(
        "update auth.users set
           encrypted_password = coalesce($2, encrypted_password),
           raw_user_meta_data = raw_user_meta_data || coalesce($3, '{}'::jsonb),
           updated_at = now()
         where id = $1",
    )
    .bind(caller.user_id)
    .bind(&hash)
    .bind(data)
    .execute(&mut *tx)
    .await
    .map_err(|e| match db_error(&e).map(|d| d.code().to_owned()).as_deref() {
        Some("23514") => Error::auth(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "User metadata is too large"),
        _ => e.into(),
    })?;
    if hash.is_some() {
        // As GoTrue: a new password ends every other session (and with it their refresh
        // tokens), so a stolen refresh token does not outlive the change. The session that
        // changed it stays signed in.
        sqlx::query("delete from auth.sessions where user_id = $1 and id is distinct from $2")
            .bind(caller.user_id)
            .bind(caller.session_id)
            .execute(&mut *tx)
            .await?;
    }
    let user = user_json(&mut tx, caller.user_id).await?.ok_or_else(|| Error::Internal("user vanished".into()))?;
    tx.commit().await?;
    Ok(Json(user))
}

#[derive(Deserialize)]
struct LogoutQuery {
    scope: Option<String>,
}

async fn logout(State(state): State<AppState>, Query(q): Query<LogoutQuery>, headers: HeaderMap) -> Result<StatusCode> {
    let caller = user_caller(&state, &headers).await?;
    let query = match (q.scope.as_deref().unwrap_or("global"), caller.session_id) {
        ("global", _) => sqlx::query("delete from auth.sessions where user_id = $1").bind(caller.user_id),
        ("local", Some(sid)) => {
            sqlx::query("delete from auth.sessions where user_id = $1 and id = $2").bind(caller.user_id).bind(sid)
        }
        ("others", Some(sid)) => {
            sqlx::query("delete from auth.sessions where user_id = $1 and id <> $2").bind(caller.user_id).bind(sid)
        }
        ("local" | "others", None) => return Ok(StatusCode::NO_CONTENT),
        (other, _) => {
            return Err(Error::auth(StatusCode::BAD_REQUEST, "validation_failed", format!("Unsupported logout scope {other:?}")))
        }
    };
    query.execute(&state.pool).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    #[test]
    fn email_syntax() {
        for ok in ["a@b.de", "meister.mueller@werkstatt.test", "x+y@sub.example.org"] {
            assert!(super::valid_email(ok), "{ok}");
        }
        for bad in ["", "a", "a@", "@b.de", "a@b", "a b@c.de", "a@.de", "a@b..de", "a@b.de.", "a@b@c.de"] {
            assert!(!super::valid_email(bad), "{bad}");
        }
    }
}
