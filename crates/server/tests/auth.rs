//! GoTrue (`/auth/v1`) through the real server, as supabase-js calls it: sign-up with a
//! session and a profile, the password and refresh-token grants (rotation, reuse, unknown
//! tokens), the per-account sign-in rate limit, `GET`/`PUT /user`, the logout scopes, and the
//! API key every call needs.
//!
//! Every refusal is asserted on its status, its GoTrue `code` and the
//! `X-Supabase-Api-Version: 2024-01-01` header (without it supabase-js ignores `code`), and
//! where a refusal could have written something, that nothing was written.

use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;
use werkfunk_server::jwt::{self, DbRole, Keys};
use werkfunk_testkit::{TestServer, JWT_SECRET};

const PASSWORD: &str = "Sicheres-Passwort-1";

/// A fresh address on a test domain (GoTrue checks syntax only).
fn email(tag: &str) -> String {
    format!("{tag}-{}@werkstatt.test", Uuid::new_v4().simple())
}

/// A request to `/auth/v1{path}` with the anon key and, if given, a bearer token.
fn auth(server: &TestServer, method: Method, path: &str, bearer: Option<&str>) -> reqwest::RequestBuilder {
    let rb = server.http.request(method, format!("{}/auth/v1{path}", server.url)).header("apikey", &server.anon_key);
    match bearer {
        Some(token) => rb.bearer_auth(token),
        None => rb,
    }
}

async fn signup_raw(server: &TestServer, email: &str, password: &str, data: Value) -> Response {
    auth(server, Method::POST, "/signup", None)
        .json(&json!({"email": email, "password": password, "data": data}))
        .send()
        .await
        .expect("signup request")
}

/// Signs up and returns the session body.
async fn signup(server: &TestServer, email: &str, data: Value) -> Value {
    let resp = signup_raw(server, email, PASSWORD, data).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.expect("session JSON")
}

async fn sign_in_raw(server: &TestServer, email: &str, password: &str) -> Response {
    auth(server, Method::POST, "/token?grant_type=password", None)
        .json(&json!({"email": email, "password": password, "gotrue_meta_security": {}}))
        .send()
        .await
        .expect("sign-in request")
}

async fn sign_in(server: &TestServer, email: &str, password: &str) -> Value {
    let resp = sign_in_raw(server, email, password).await;
    assert_eq!(resp.status(), StatusCode::OK, "sign-in of {email}");
    resp.json().await.expect("session JSON")
}

async fn refresh_raw(server: &TestServer, refresh_token: &str) -> Response {
    auth(server, Method::POST, "/token?grant_type=refresh_token", None)
        .json(&json!({"refresh_token": refresh_token}))
        .send()
        .await
        .expect("refresh request")
}

async fn get_user(server: &TestServer, access_token: &str) -> Response {
    auth(server, Method::GET, "/user", Some(access_token)).send().await.expect("GET /user")
}

/// Asserts a GoTrue error: status, `code`, a message, and the API-version header.
async fn expect_error(resp: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(resp.status(), status, "status for expected {code}");
    assert_eq!(
        resp.headers().get("x-supabase-api-version").and_then(|v| v.to_str().ok()),
        Some("2024-01-01"),
        "every GoTrue error carries X-Supabase-Api-Version ({code})"
    );
    assert_eq!(resp.headers().get("x-sb-error-code").and_then(|v| v.to_str().ok()), Some(code));
    let body: Value = resp.json().await.expect("error JSON");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body
}

async fn users_with_email(server: &TestServer, email: &str) -> i64 {
    sqlx::query_scalar("select count(*) from auth.users where lower(email) = lower($1)")
        .bind(email)
        .fetch_one(server.db.pool())
        .await
        .expect("count users")
}

fn str_of<'v>(v: &'v Value, key: &str) -> &'v str {
    v[key].as_str().unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[tokio::test]
async fn signup_returns_a_session_and_creates_the_profile() {
    let server = TestServer::start().await;
    let address = email("meister");
    let session = signup(&server, &address, json!({"full_name": "Meister Müller", "role": "tradesperson"})).await;

    assert_eq!(session["token_type"], "bearer");
    assert_eq!(session["expires_in"], 3600);
    assert!(!str_of(&session, "refresh_token").is_empty());
    let user = &session["user"];
    let id: Uuid = str_of(user, "id").parse().expect("user id is a uuid");
    assert_eq!(user["email"], address.as_str());
    assert_eq!(user["aud"], "authenticated");
    assert_eq!(user["role"], "authenticated");
    assert!(user["email_confirmed_at"].is_string(), "accounts are confirmed at once");
    assert_eq!(user["user_metadata"]["full_name"], "Meister Müller");
    assert_eq!(user["user_metadata"]["role"], "tradesperson");
    assert_eq!(user["app_metadata"]["provider"], "email");
    assert_eq!(user["app_metadata"]["providers"], json!(["email"]));

    // The access token is a JWT for this user and session, expiring when the body says.
    let claims = server.keys().verify(str_of(&session, "access_token"), jwt::now()).expect("valid access token").claims;
    assert_eq!(claims.sub, Some(id));
    assert_eq!(claims.role, "authenticated");
    assert!(claims.session_id.is_some());
    assert_eq!(session["expires_at"], claims.exp);
    assert_eq!(claims.exp - claims.iat, 3600);

    let profile: (String, String) = sqlx::query_as("select full_name, role from public.profiles where id = $1")
        .bind(id)
        .fetch_one(server.db.pool())
        .await
        .expect("profile row");
    assert_eq!(profile, ("Meister Müller".to_owned(), "tradesperson".to_owned()));

    // The session works at once.
    let resp = get_user(&server, str_of(&session, "access_token")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let me: Value = resp.json().await.unwrap();
    assert_eq!(me["id"], id.to_string());
    server.stop().await;
}

#[tokio::test]
async fn role_defaults_to_customer() {
    let server = TestServer::start().await;
    let session = signup(&server, &email("kundin"), json!({"full_name": "Kundin Schmidt"})).await;
    let role: String = sqlx::query_scalar("select role from public.profiles where id = $1::uuid")
        .bind(str_of(&session["user"], "id"))
        .fetch_one(server.db.pool())
        .await
        .unwrap();
    assert_eq!(role, "customer");

    // Without any metadata at all, too.
    let session = signup(&server, &email("leer"), Value::Null).await;
    let (name, role): (String, String) = sqlx::query_as("select full_name, role from public.profiles where id = $1::uuid")
        .bind(str_of(&session["user"], "id"))
        .fetch_one(server.db.pool())
        .await
        .unwrap();
    assert_eq!((name.as_str(), role.as_str()), ("", "customer"));
    server.stop().await;
}

#[tokio::test]
async fn signup_with_an_invalid_role_is_refused_and_leaves_no_user() {
    let server = TestServer::start().await;
    let address = email("admin");
    let resp = signup_raw(&server, &address, PASSWORD, json!({"full_name": "Mallory", "role": "admin"})).await;
    expect_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(users_with_email(&server, &address).await, 0);
    let profiles: i64 = sqlx::query_scalar("select count(*) from public.profiles").fetch_one(server.db.pool()).await.unwrap();
    assert_eq!(profiles, 0);
    server.stop().await;
}

#[tokio::test]
async fn short_password_is_a_weak_password() {
    let server = TestServer::start().await;
    let address = email("kurz");
    let resp = signup_raw(&server, &address, "1234567", json!({"full_name": "Kurz"})).await;
    let body = expect_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "weak_password").await;
    let reasons = body["weak_password"]["reasons"].as_array().expect("weak_password.reasons");
    assert!(reasons.contains(&json!("length")), "{body}");
    assert_eq!(users_with_email(&server, &address).await, 0);

    // Eight characters are enough; length counts characters, not bytes.
    let resp = signup_raw(&server, &address, "äöüßäöüß", json!({})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn duplicate_email_differing_in_case_is_refused() {
    let server = TestServer::start().await;
    let address = email("doppelt");
    signup(&server, &address, json!({"full_name": "Erste"})).await;
    let resp = signup_raw(&server, &address.to_uppercase(), PASSWORD, json!({"full_name": "Zweite"})).await;
    expect_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "user_already_exists").await;
    assert_eq!(users_with_email(&server, &address).await, 1);
    let names: Vec<String> =
        sqlx::query_scalar("select full_name from public.profiles").fetch_all(server.db.pool()).await.unwrap();
    assert_eq!(names, ["Erste"]);

    // Sign-in is case-insensitive too.
    sign_in(&server, &address.to_uppercase(), PASSWORD).await;
    server.stop().await;
}

#[tokio::test]
async fn malformed_email_is_refused() {
    let server = TestServer::start().await;
    for bad in ["kein-at-zeichen.test", "a@b", "leer zeichen@werkstatt.test", "@werkstatt.test"] {
        let resp = signup_raw(&server, bad, PASSWORD, json!({})).await;
        expect_error(resp, StatusCode::BAD_REQUEST, "validation_failed").await;
    }
    let users: i64 = sqlx::query_scalar("select count(*) from auth.users").fetch_one(server.db.pool()).await.unwrap();
    assert_eq!(users, 0);

    // A body that is not JSON is a 400 in the same shape.
    let resp = auth(&server, Method::POST, "/signup", None)
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "bad_json").await;
    server.stop().await;
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let server = TestServer::start().await;
    // The default limit is 1 MiB; a sign-up with a huge metadata blob is refused before it
    // is read, in GoTrue's shape, and creates nobody.
    let address = email("riesig");
    let resp = signup_raw(&server, &address, PASSWORD, json!({"full_name": "x".repeat(1024 * 1024)})).await;
    expect_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "request_too_large").await;
    assert_eq!(users_with_email(&server, &address).await, 0);
    server.stop().await;
}

#[tokio::test]
async fn sign_in_with_password() {
    let server = TestServer::start().await;
    let address = email("login");
    let created = signup(&server, &address, json!({"full_name": "Login"})).await;

    let session = sign_in(&server, &address, PASSWORD).await;
    assert_eq!(session["user"]["id"], created["user"]["id"]);
    assert_ne!(session["refresh_token"], created["refresh_token"], "a new session has its own refresh token");
    assert!(session["user"]["last_sign_in_at"].is_string());

    let resp = sign_in_raw(&server, &address, "Falsches-Passwort").await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_credentials").await;
    // An unknown account answers exactly the same.
    let resp = sign_in_raw(&server, &email("niemand"), PASSWORD).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_credentials").await;

    let resp = auth(&server, Method::POST, "/token?grant_type=magic", None).json(&json!({})).send().await.unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "unsupported_grant_type").await;
    server.stop().await;
}

#[tokio::test]
async fn failed_sign_ins_are_rate_limited_per_account() {
    let server = TestServer::start().await;
    let victim = email("ziel");
    let bystander = email("nachbar");
    signup(&server, &victim, json!({})).await;
    signup(&server, &bystander, json!({})).await;

    for attempt in 1..=10 {
        let resp = sign_in_raw(&server, &victim, &format!("Falsch-{attempt}-xyz")).await;
        expect_error(resp, StatusCode::BAD_REQUEST, "invalid_credentials").await;
    }
    // The 11th is refused even with the right password, whatever the address's case.
    let resp = sign_in_raw(&server, &victim, PASSWORD).await;
    expect_error(resp, StatusCode::TOO_MANY_REQUESTS, "over_request_rate_limit").await;
    let resp = sign_in_raw(&server, &victim.to_uppercase(), PASSWORD).await;
    expect_error(resp, StatusCode::TOO_MANY_REQUESTS, "over_request_rate_limit").await;

    // Every test comes from 127.0.0.1: another account is not affected.
    sign_in(&server, &bystander, PASSWORD).await;
    server.stop().await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_ends_the_session() {
    let server = TestServer::start().await;
    let first = signup(&server, &email("rotation"), json!({})).await;
    let t1 = str_of(&first, "refresh_token").to_owned();

    let resp = refresh_raw(&server, &t1).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let second: Value = resp.json().await.unwrap();
    let t2 = str_of(&second, "refresh_token").to_owned();
    assert_ne!(t1, t2, "the refresh token rotates");
    assert_eq!(second["user"]["id"], first["user"]["id"]);
    let a2 = str_of(&second, "access_token").to_owned();
    let c1 = server.keys().verify(str_of(&first, "access_token"), jwt::now()).unwrap().claims;
    let c2 = server.keys().verify(&a2, jwt::now()).unwrap().claims;
    assert_eq!(c1.session_id, c2.session_id, "rotation stays in the session");
    assert_eq!(get_user(&server, &a2).await.status(), StatusCode::OK);

    let resp = refresh_raw(&server, &t2).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let third: Value = resp.json().await.unwrap();
    let t3 = str_of(&third, "refresh_token").to_owned();

    // Reusing a rotated token is refused and ends the session: the newest token is refused
    // too, and so are the session's access tokens.
    let resp = refresh_raw(&server, &t1).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "refresh_token_already_used").await;
    let resp = refresh_raw(&server, &t3).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "refresh_token_not_found").await;
    let resp = get_user(&server, str_of(&third, "access_token")).await;
    expect_error(resp, StatusCode::FORBIDDEN, "session_not_found").await;

    let resp = refresh_raw(&server, "keinTokenDasEsGibt0123456789").await;
    expect_error(resp, StatusCode::BAD_REQUEST, "refresh_token_not_found").await;
    server.stop().await;
}

#[tokio::test]
async fn get_user_needs_a_valid_bearer_token() {
    let server = TestServer::start().await;
    let session = signup(&server, &email("user"), json!({"full_name": "Ute"})).await;
    let user_id = str_of(&session["user"], "id").to_owned();

    let resp = get_user(&server, str_of(&session, "access_token")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let me: Value = resp.json().await.unwrap();
    assert_eq!(me["id"], user_id.as_str());
    assert_eq!(me["user_metadata"]["full_name"], "Ute");

    let resp = auth(&server, Method::GET, "/user", None).send().await.unwrap();
    expect_error(resp, StatusCode::UNAUTHORIZED, "no_authorization").await;

    // The anon key is a valid JWT, but not a user's.
    let resp = get_user(&server, &server.anon_key).await;
    expect_error(resp, StatusCode::FORBIDDEN, "bad_jwt").await;

    let now = jwt::now();
    let claims =
        |exp: i64| json!({"sub": user_id, "role": "authenticated", "aud": "authenticated", "iat": now - 100, "exp": exp});
    let forged = Keys::new("ein-anderes-geheimnis-0123456789-abcdef").sign(&claims(now + 3600));
    let resp = get_user(&server, &forged).await;
    expect_error(resp, StatusCode::FORBIDDEN, "bad_jwt").await;

    let expired = server.keys().sign(&claims(now - 10));
    let resp = get_user(&server, &expired).await;
    expect_error(resp, StatusCode::FORBIDDEN, "bad_jwt").await;

    let resp = get_user(&server, "kein.jwt").await;
    expect_error(resp, StatusCode::FORBIDDEN, "bad_jwt").await;
    server.stop().await;
}

#[tokio::test]
async fn update_user_changes_password_and_merges_metadata() {
    let server = TestServer::start().await;
    let address = email("update");
    let session = signup(&server, &address, json!({"full_name": "Ulf", "role": "tradesperson"})).await;
    let token = str_of(&session, "access_token").to_owned();

    let resp = auth(&server, Method::PUT, "/user", Some(&token))
        .json(&json!({"data": {"avatar_url": "https://example.test/ulf.png"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let user: Value = resp.json().await.unwrap();
    assert_eq!(
        user["user_metadata"],
        json!({"full_name": "Ulf", "role": "tradesperson", "avatar_url": "https://example.test/ulf.png"})
    );

    // A weak new password is refused and the old one keeps working.
    let resp = auth(&server, Method::PUT, "/user", Some(&token)).json(&json!({"password": "kurz"})).send().await.unwrap();
    expect_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "weak_password").await;
    sign_in(&server, &address, PASSWORD).await;

    let resp = auth(&server, Method::PUT, "/user", Some(&token))
        .json(&json!({"password": "Ganz-Neues-Passwort-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = sign_in_raw(&server, &address, PASSWORD).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_credentials").await;
    sign_in(&server, &address, "Ganz-Neues-Passwort-2").await;

    // The metadata survived the password change.
    let me: Value = get_user(&server, &token).await.json().await.unwrap();
    assert_eq!(me["user_metadata"]["avatar_url"], "https://example.test/ulf.png");

    // Without a token nothing changes.
    let resp = auth(&server, Method::PUT, "/user", None).json(&json!({"password": "Boeses-Passwort-3"})).send().await.unwrap();
    expect_error(resp, StatusCode::UNAUTHORIZED, "no_authorization").await;
    sign_in(&server, &address, "Ganz-Neues-Passwort-2").await;
    server.stop().await;
}

/// Asserts that the session behind `session` (a session body) is over.
async fn assert_signed_out(server: &TestServer, session: &Value) {
    let resp = refresh_raw(server, str_of(session, "refresh_token")).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "refresh_token_not_found").await;
    let resp = get_user(server, str_of(session, "access_token")).await;
    expect_error(resp, StatusCode::FORBIDDEN, "session_not_found").await;
}

/// Asserts that the session behind `session` still works; returns the refreshed session.
async fn assert_signed_in(server: &TestServer, session: &Value) -> Value {
    assert_eq!(get_user(server, str_of(session, "access_token")).await.status(), StatusCode::OK);
    let resp = refresh_raw(server, str_of(session, "refresh_token")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

async fn logout(server: &TestServer, session: &Value, scope: Option<&str>) -> Response {
    let path = scope.map(|s| format!("/logout?scope={s}")).unwrap_or_else(|| "/logout".into());
    auth(server, Method::POST, &path, Some(str_of(session, "access_token"))).send().await.unwrap()
}

#[tokio::test]
async fn logout_scopes() {
    let server = TestServer::start().await;
    let address = email("geraete");
    let laptop = signup(&server, &address, json!({})).await;
    let phone = sign_in(&server, &address, PASSWORD).await;
    let tablet = sign_in(&server, &address, PASSWORD).await;
    let other_user = signup(&server, &email("fremd"), json!({})).await;

    // local: only this session ends.
    let resp = logout(&server, &phone, Some("local")).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_signed_out(&server, &phone).await;
    let laptop = assert_signed_in(&server, &laptop).await;
    let tablet = assert_signed_in(&server, &tablet).await;

    // others: every session but this one ends.
    let resp = logout(&server, &tablet, Some("others")).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_signed_out(&server, &laptop).await;
    let tablet = assert_signed_in(&server, &tablet).await;

    // global (the default): all of them.
    let again = sign_in(&server, &address, PASSWORD).await;
    let resp = logout(&server, &tablet, None).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_signed_out(&server, &tablet).await;
    assert_signed_out(&server, &again).await;

    // Another user is not touched by any of it.
    assert_signed_in(&server, &other_user).await;

    let fresh = sign_in(&server, &address, PASSWORD).await;
    let resp = logout(&server, &fresh, Some("everything")).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_signed_in(&server, &fresh).await;

    let resp = auth(&server, Method::POST, "/logout", None).send().await.unwrap();
    expect_error(resp, StatusCode::UNAUTHORIZED, "no_authorization").await;
    server.stop().await;
}

#[tokio::test]
async fn every_auth_call_needs_a_valid_api_key() {
    let server = TestServer::start().await;
    let address = email("schluessel");
    let session = signup(&server, &address, json!({})).await;
    let body = json!({"email": email("ohne"), "password": PASSWORD});

    let resp = server.http.post(format!("{}/auth/v1/signup", server.url)).json(&body).send().await.unwrap();
    expect_error(resp, StatusCode::UNAUTHORIZED, "no_api_key").await;

    let forged = Keys::new("ein-anderes-geheimnis-0123456789-abcdef").api_key(DbRole::Anon, jwt::now());
    let expired = Keys::new(JWT_SECRET).sign(&json!({"role": "anon", "iat": jwt::now() - 100, "exp": jwt::now() - 10}));
    for bad in [forged.as_str(), expired.as_str(), "kein-jwt"] {
        let resp =
            server.http.post(format!("{}/auth/v1/signup", server.url)).header("apikey", bad).json(&body).send().await.unwrap();
        expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_api_key").await;
        let resp = server
            .http
            .post(format!("{}/auth/v1/token?grant_type=password", server.url))
            .header("apikey", bad)
            .json(&json!({"email": address, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_api_key").await;
        let resp = server
            .http
            .get(format!("{}/auth/v1/user", server.url))
            .header("apikey", bad)
            .bearer_auth(str_of(&session, "access_token"))
            .send()
            .await
            .unwrap();
        expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_api_key").await;
    }
    let users: i64 = sqlx::query_scalar("select count(*) from auth.users").fetch_one(server.db.pool()).await.unwrap();
    assert_eq!(users, 1, "no refused sign-up created a user");

    // The service key is a valid key too.
    let resp = server
        .http
        .get(format!("{}/auth/v1/user", server.url))
        .header("apikey", &server.service_key)
        .bearer_auth(str_of(&session, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn access_token_lifetime_follows_the_configuration() {
    let server = TestServer::start_with(|c| c.jwt_exp = Duration::from_secs(2)).await;
    let session = signup(&server, &email("kurzlebig"), json!({})).await;
    assert_eq!(session["expires_in"], 2);
    let token = str_of(&session, "access_token").to_owned();
    let claims = server.keys().verify(&token, jwt::now()).expect("fresh token").claims;
    assert_eq!(claims.exp - claims.iat, 2);
    assert_eq!(session["expires_at"], claims.exp);

    // Once past `exp`, the token is refused by auth and by REST; a refresh gives a new one.
    let wait = (claims.exp + 1 - jwt::now()).max(0) as u64;
    tokio::time::sleep(Duration::from_secs(wait)).await;
    while jwt::now() <= claims.exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resp = get_user(&server, &token).await;
    expect_error(resp, StatusCode::FORBIDDEN, "bad_jwt").await;
    let resp = server
        .http
        .get(format!("{}/rest/v1/profiles", server.url))
        .header("apikey", &server.anon_key)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "PGRST303");

    let resp = refresh_raw(&server, str_of(&session, "refresh_token")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let renewed: Value = resp.json().await.unwrap();
    assert_eq!(renewed["expires_in"], 2);
    // The renewed token may itself be near its end on a slow machine: check it against the
    // moment it was issued rather than racing the clock.
    let renewed_claims = server.keys().verify(str_of(&renewed, "access_token"), claims.exp).expect("renewed token").claims;
    assert!(renewed_claims.exp > claims.exp);
    server.stop().await;
}
