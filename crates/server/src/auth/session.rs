//! Sessions: access tokens, rotating refresh tokens, and the user JSON GoTrue returns.

use axum::http::StatusCode;
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::jwt;
use crate::AppState;

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn new_refresh_token() -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(40).map(char::from).collect()
}

/// The user as GoTrue's `User` JSON, read from `auth.users`.
pub async fn user_json(conn: &mut PgConnection, user_id: Uuid) -> Result<Option<Value>> {
    let user: Option<Value> = sqlx::query_scalar(
        r#"select jsonb_build_object(
             'id', u.id, 'aud', u.aud, 'role', u.role, 'email', u.email,
             'email_confirmed_at', u.email_confirmed_at, 'phone', '', 'confirmed_at', u.email_confirmed_at,
             'last_sign_in_at', u.last_sign_in_at,
             'app_metadata', u.raw_app_meta_data, 'user_metadata', u.raw_user_meta_data,
             'identities', jsonb_build_array(jsonb_build_object(
                 'identity_id', u.id, 'id', u.id::text, 'user_id', u.id,
                 'identity_data', jsonb_build_object('sub', u.id::text, 'email', u.email, 'email_verified', true),
                 'provider', 'email', 'email', u.email,
                 'created_at', u.created_at, 'updated_at', u.updated_at, 'last_sign_in_at', u.last_sign_in_at)),
             'created_at', u.created_at, 'updated_at', u.updated_at, 'is_anonymous', false)
           from auth.users u where u.id = $1"#,
    )
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(user)
}

/// Signs an access token for `user` in `session_id`; returns it with its `exp`.
fn access_token(state: &AppState, user: &Value, session_id: Uuid) -> (String, i64) {
    let now = jwt::now();
    let exp = now + state.config.jwt_exp.as_secs() as i64;
    let claims = json!({
        "iss": "werkfunk/auth/v1",
        "sub": user["id"],
        "aud": jwt::AUDIENCE,
        "exp": exp,
        "iat": now,
        "email": user["email"],
        "phone": "",
        "app_metadata": user["app_metadata"],
        "user_metadata": user["user_metadata"],
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": now}],
        "session_id": session_id,
        "is_anonymous": false,
    });
    (state.keys.sign(&claims), exp)
}

async fn store_refresh_token(conn: &mut PgConnection, user_id: Uuid, session_id: Uuid, parent: Option<&str>) -> Result<String> {
    let token = new_refresh_token();
    sqlx::query("insert into auth.refresh_tokens (token_hash, user_id, session_id, parent) values ($1, $2, $3, $4)")
        .bind(token_hash(&token))
        .bind(user_id)
        .bind(session_id)
        .bind(parent.map(token_hash))
        .execute(&mut *conn)
        .await?;
    Ok(token)
}

fn session_json(state: &AppState, user: Value, session_id: Uuid, refresh_token: String) -> Value {
    let (access_token, expires_at) = access_token(state, &user, session_id);
    json!({
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": state.config.jwt_exp.as_secs(),
        "expires_at": expires_at,
        "refresh_token": refresh_token,
        "user": user,
        "weak_password": null,
    })
}

/// Opens a new session for `user_id`.
pub async fn issue(state: &AppState, conn: &mut PgConnection, user_id: Uuid) -> Result<Value> {
    let session_id: Uuid = sqlx::query_scalar("insert into auth.sessions (user_id) values ($1) returning id")
        .bind(user_id)
        .fetch_one(&mut *conn)
        .await?;
    let refresh_token = store_refresh_token(conn, user_id, session_id, None).await?;
    let user = user_json(conn, user_id).await?.ok_or_else(|| Error::Internal("user vanished".into()))?;
    Ok(session_json(state, user, session_id, refresh_token))
}

/// Exchanges a refresh token for a new session token pair. A revoked token presented
/// again means it leaked or was replayed: its session ends — unless it is the parent of the
/// session's current token and was rotated within the reuse interval (two clients of one
/// session refreshing together, or a response lost on the way): then, as GoTrue does, the
/// session goes on, with a fresh token of its own (only hashes are stored, so the current
/// token itself cannot be handed out again).
pub async fn rotate(state: &AppState, conn: &mut PgConnection, refresh_token: &str) -> Result<Value> {
    let row: Option<(i64, Uuid, Uuid, bool, bool)> = sqlx::query_as(
        "select t.id, t.user_id, t.session_id, t.revoked,
                t.revoked and t.updated_at > now() - make_interval(secs => $2)
                  and exists (select 1 from auth.refresh_tokens c
                               where c.session_id = t.session_id and c.parent = t.token_hash and not c.revoked)
           from auth.refresh_tokens t where t.token_hash = $1 for update",
    )
    .bind(token_hash(refresh_token))
    .bind(state.config.auth.refresh_reuse_interval.as_secs_f64())
    .fetch_optional(&mut *conn)
    .await?;
    let Some((id, user_id, session_id, revoked, within_reuse_interval)) = row else {
        return Err(Error::auth(
            StatusCode::BAD_REQUEST,
            "refresh_token_not_found",
            "Invalid Refresh Token: Refresh Token Not Found",
        ));
    };
    if within_reuse_interval {
        sqlx::query("update auth.sessions set updated_at = now() where id = $1").bind(session_id).execute(&mut *conn).await?;
        let sibling = store_refresh_token(conn, user_id, session_id, Some(refresh_token)).await?;
        let user = user_json(conn, user_id).await?.ok_or_else(|| Error::Internal("user vanished".into()))?;
        return Ok(session_json(state, user, session_id, sibling));
    }
    if revoked {
        sqlx::query("delete from auth.sessions where id = $1").bind(session_id).execute(&mut *conn).await?;
        return Err(Error::auth(StatusCode::BAD_REQUEST, "refresh_token_already_used", "Invalid Refresh Token: Already Used"));
    }
    sqlx::query("update auth.refresh_tokens set revoked = true, updated_at = now() where id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("update auth.sessions set updated_at = now() where id = $1").bind(session_id).execute(&mut *conn).await?;
    let new_token = store_refresh_token(conn, user_id, session_id, Some(refresh_token)).await?;
    let user = user_json(conn, user_id).await?.ok_or_else(|| Error::Internal("user vanished".into()))?;
    Ok(session_json(state, user, session_id, new_token))
}
