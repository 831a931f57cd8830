//! The server's limits through the real server (issue "Server hardening"): every refusal is
//! asserted on its status and its code in the client's shape (PostgREST, GoTrue or Phoenix),
//! and every test then shows that the server still serves others (health, a normal query, a
//! member's delivery).

use std::net::IpAddr;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use werkfunk_testkit::{TestServer, TestUser};

/// `GET /health` answers 200.
async fn healthy(server: &TestServer) {
    let resp = server.http.get(format!("{}/health", server.url)).send().await.expect("health request");
    assert_eq!(resp.status(), StatusCode::OK, "the server still answers /health");
}

/// A member reads their own conversation's messages: 200 with an array.
async fn serves_a_normal_query(server: &TestServer, user: &TestUser) {
    let resp = server
        .request(Method::GET, "/rest/v1/conversations?select=id,type&order=updated_at.desc&limit=5", Some(user))
        .send()
        .await
        .expect("normal query");
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert!(body.is_array(), "{body}");
}

async fn expect_rest_error(resp: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(resp.status(), status);
    let body: Value = resp.json().await.expect("error body is JSON");
    assert_eq!(body["code"], code, "{body}");
    for key in ["message", "details", "hint"] {
        assert!(body.get(key).is_some(), "PostgREST's error carries {key}: {body}");
    }
    body
}

// ---------------------------------------------------------------------------------------------
// 1. Parser nesting and size limits
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn deeply_nested_queries_are_refused_and_the_server_lives_on() {
    let server = TestServer::start().await;
    let (alice, _bob, _conv) = server.alice_and_bob().await;

    // The review's crash: 1,500 nested `or` groups with the anon key (a 6 KB URL).
    let deep_or = format!("({}id.eq.1{})", "or(".repeat(1500), ")".repeat(1500));
    let resp =
        server.request(Method::GET, "/rest/v1/profiles", None).query(&[("or", deep_or.as_str())]).send().await.expect("the server answers");
    expect_rest_error(resp, StatusCode::BAD_REQUEST, "PGRST100").await;

    // And 8,000 nested embeds in `select`.
    let deep_select = format!("{}id{}", "a(".repeat(8000), ")".repeat(8000));
    let resp = server
        .request(Method::GET, "/rest/v1/profiles", Some(&alice))
        .query(&[("select", deep_select.as_str())])
        .send()
        .await
        .expect("the server answers");
    expect_rest_error(resp, StatusCode::BAD_REQUEST, "PGRST100").await;

    // Nested `and` inside a negated `or`, and a too-wide flat tree, the same.
    let deep_and = format!("({}id.eq.1{})", "not.and(".repeat(40), ")".repeat(40));
    let resp = server.request(Method::GET, "/rest/v1/profiles", Some(&alice)).query(&[("or", deep_and.as_str())]).send().await.unwrap();
    expect_rest_error(resp, StatusCode::BAD_REQUEST, "PGRST100").await;
    let wide = format!("({})", vec!["id.eq.1"; 1001].join(","));
    let resp = server.request(Method::GET, "/rest/v1/profiles", Some(&alice)).query(&[("or", wide.as_str())]).send().await.unwrap();
    expect_rest_error(resp, StatusCode::BAD_REQUEST, "PGRST100").await;

    // A nesting supabase-js users write is still fine.
    let resp = server
        .request(
            Method::GET,
            "/rest/v1/profiles?select=id&or=(full_name.eq.Alice,and(role.eq.customer,or(full_name.eq.Bob,full_name.eq.Eve)))",
            Some(&alice),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap().as_array().map(Vec::len), Some(2));

    healthy(&server).await;
    serves_a_normal_query(&server, &alice).await;
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 4–7. Auth: the hashing pool, sign-in limits, password change, refresh-token reuse interval
// ---------------------------------------------------------------------------------------------

const PASSWORD: &str = "Sicheres-Passwort-1";

/// A client whose connections come from `from` (any 127.x address reaches the server).
fn client_from(from: &str) -> reqwest::Client {
    let ip: IpAddr = from.parse().unwrap();
    reqwest::Client::builder().local_address(ip).timeout(Duration::from_secs(120)).build().unwrap()
}

async fn sign_in_from(server: &TestServer, client: &reqwest::Client, email: &str, password: &str) -> reqwest::Response {
    client
        .post(format!("{}/auth/v1/token?grant_type=password", server.url))
        .header("apikey", &server.anon_key)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("sign-in request")
}

async fn refresh(server: &TestServer, token: &str) -> reqwest::Response {
    server
        .http
        .post(format!("{}/auth/v1/token?grant_type=refresh_token", server.url))
        .header("apikey", &server.anon_key)
        .json(&json!({"refresh_token": token}))
        .send()
        .await
        .expect("refresh request")
}

async fn get_user(server: &TestServer, access_token: &str) -> reqwest::Response {
    server
        .http
        .get(format!("{}/auth/v1/user", server.url))
        .header("apikey", &server.anon_key)
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
}

/// Asserts GoTrue's error shape: status, `code`, and the API-version header.
async fn expect_auth_error(resp: reqwest::Response, status: StatusCode, code: &str) {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers().get("x-supabase-api-version").and_then(|v| v.to_str().ok()), Some("2024-01-01"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
}

async fn session_of(resp: reqwest::Response) -> Value {
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

fn claims_session(server: &TestServer, access_token: &str) -> Option<uuid::Uuid> {
    server.keys().verify(access_token, werkfunk_server::jwt::now()).unwrap().claims.session_id
}

#[tokio::test]
async fn password_hashing_beyond_its_queue_is_refused_with_429() {
    let server = TestServer::start_with(|c| {
        c.auth.hash_concurrency = 1;
        c.auth.hash_queue = 0;
    })
    .await;
    let alice = server.signup("Alice", "tradesperson").await;
    // 20 sign-ins with unknown emails at once: one hashes, the others are turned away
    // instead of each taking 19 MiB.
    let client = client_from("127.0.0.1");
    let attempts = (0..20).map(|i| {
        let (server, client) = (&server, &client);
        async move { sign_in_from(server, client, &format!("niemand-{i}@werkstatt.test"), "Falsches-Passwort").await }
    });
    let mut refused = 0;
    for resp in futures::future::join_all(attempts).await {
        match resp.status() {
            StatusCode::TOO_MANY_REQUESTS => {
                refused += 1;
                expect_auth_error(resp, StatusCode::TOO_MANY_REQUESTS, "over_request_rate_limit").await;
            }
            _ => expect_auth_error(resp, StatusCode::BAD_REQUEST, "invalid_credentials").await,
        }
    }
    assert!(refused > 0, "with one slot and no queue, parallel hashes are refused");
    // Turned-away attempts were never checked and do not count against anyone: the owner
    // signs in at once.
    let me = sign_in_from(&server, &client, &alice.email, PASSWORD).await;
    session_of(me).await;
    healthy(&server).await;
    serves_a_normal_query(&server, &alice).await;
    server.stop().await;
}

#[tokio::test]
async fn parallel_wrong_passwords_are_counted_before_they_are_checked() {
    let server = TestServer::start().await;
    let alice = server.signup("Alice", "tradesperson").await;
    let client = client_from("127.0.0.1");
    let attempts = (0..40).map(|i| {
        let (server, client, email) = (&server, &client, alice.email.clone());
        async move { sign_in_from(server, client, &email, &format!("Falsch-{i}-xyz")).await }
    });
    let mut checked = 0;
    for resp in futures::future::join_all(attempts).await {
        if resp.status() == StatusCode::BAD_REQUEST {
            checked += 1;
            expect_auth_error(resp, StatusCode::BAD_REQUEST, "invalid_credentials").await;
        } else {
            expect_auth_error(resp, StatusCode::TOO_MANY_REQUESTS, "over_request_rate_limit").await;
        }
    }
    assert!(checked <= 10, "{checked} of 40 parallel wrong passwords were checked; the limit is 10");
    healthy(&server).await;
    serves_a_normal_query(&server, &alice).await;
    server.stop().await;
}

#[tokio::test]
async fn a_stranger_cannot_lock_the_owner_out() {
    let server = TestServer::start_with(|c| {
        c.auth.failures_per_account_address = 3;
        c.auth.failures_per_account = 4;
        c.auth.failures_per_address = 5;
    })
    .await;
    let owner = server.signup("Olga", "customer").await;
    let stranger = client_from("127.0.0.2");
    for i in 0..3 {
        let resp = sign_in_from(&server, &stranger, &owner.email, &format!("Geraten-{i}-xyz")).await;
        expect_auth_error(resp, StatusCode::BAD_REQUEST, "invalid_credentials").await;
    }
    // The stranger's address is locked out of this account, even with the right password.
    let resp = sign_in_from(&server, &stranger, &owner.email, PASSWORD).await;
    expect_auth_error(resp, StatusCode::TOO_MANY_REQUESTS, "over_request_rate_limit").await;
    // A second address of the stranger pushes the account over its total: that address,
    // having failed, is refused next time...
    let second = client_from("127.0.0.3");
    let resp = sign_in_from(&server, &second, &owner.email, "Geraten-3-xyz").await;
    expect_auth_error(resp, StatusCode::BAD_REQUEST, "invalid_credentials").await;
    let resp = sign_in_from(&server, &second, &owner.email, "Geraten-4-xyz").await;
    expect_auth_error(resp, StatusCode::TOO_MANY_REQUESTS, "over_request_rate_limit").await;
    // ...while the owner, from an address that has not failed, signs in.
    let resp = sign_in_from(&server, &client_from("127.0.0.1"), &owner.email, PASSWORD).await;
    session_of(resp).await;

    // One address trying many accounts is limited too.
    let sprayer = client_from("127.0.0.4");
    for i in 0..5 {
        let resp = sign_in_from(&server, &sprayer, &format!("konto-{i}@werkstatt.test"), "Passwort-123").await;
        expect_auth_error(resp, StatusCode::BAD_REQUEST, "invalid_credentials").await;
    }
    let resp = sign_in_from(&server, &sprayer, "konto-5@werkstatt.test", "Passwort-123").await;
    expect_auth_error(resp, StatusCode::TOO_MANY_REQUESTS, "over_request_rate_limit").await;

    healthy(&server).await;
    serves_a_normal_query(&server, &owner).await;
    server.stop().await;
}

#[tokio::test]
async fn a_password_change_ends_every_other_session() {
    let server = TestServer::start().await;
    let alice = server.signup("Alice", "tradesperson").await;
    let client = client_from("127.0.0.1");
    // A second device, and (as the engine does it) a session opened to check the current
    // password, through which the password is then changed.
    let other = session_of(sign_in_from(&server, &client, &alice.email, PASSWORD).await).await;
    let changer = session_of(sign_in_from(&server, &client, &alice.email, PASSWORD).await).await;
    let changer_token = changer["access_token"].as_str().unwrap();
    let resp = server
        .http
        .put(format!("{}/auth/v1/user", server.url))
        .header("apikey", &server.anon_key)
        .bearer_auth(changer_token)
        .json(&json!({"password": "Neues-Passwort-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // The other sessions are gone: their refresh tokens and their access tokens on /user.
    for (refresh_token, access_token) in [
        (alice.refresh_token.as_str(), alice.access_token.as_str()),
        (other["refresh_token"].as_str().unwrap(), other["access_token"].as_str().unwrap()),
    ] {
        expect_auth_error(refresh(&server, refresh_token).await, StatusCode::BAD_REQUEST, "refresh_token_not_found").await;
        expect_auth_error(get_user(&server, access_token).await, StatusCode::FORBIDDEN, "session_not_found").await;
    }
    // The session that changed it stays signed in and refreshes.
    assert_eq!(get_user(&server, changer_token).await.status(), StatusCode::OK);
    let next = session_of(refresh(&server, changer["refresh_token"].as_str().unwrap()).await).await;
    assert_eq!(claims_session(&server, next["access_token"].as_str().unwrap()), claims_session(&server, changer_token));
    // Old password out, new one in.
    let resp = sign_in_from(&server, &client, &alice.email, PASSWORD).await;
    expect_auth_error(resp, StatusCode::BAD_REQUEST, "invalid_credentials").await;
    session_of(sign_in_from(&server, &client, &alice.email, "Neues-Passwort-2").await).await;
    healthy(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_just_rotated_refresh_token_within_the_reuse_interval_keeps_the_session() {
    let server = TestServer::start().await;
    let alice = server.signup("Alice", "tradesperson").await;
    let session = claims_session(&server, &alice.access_token);
    let second = session_of(refresh(&server, &alice.refresh_token).await).await;
    let child = second["refresh_token"].as_str().unwrap().to_owned();
    // A second client of the same session refreshes with the same (now rotated) token.
    let again = session_of(refresh(&server, &alice.refresh_token).await).await;
    assert_eq!(claims_session(&server, again["access_token"].as_str().unwrap()), session, "the same session goes on");
    assert_eq!(again["user"]["id"], json!(alice.id));
    // Both clients go on refreshing.
    session_of(refresh(&server, &child).await).await;
    session_of(refresh(&server, again["refresh_token"].as_str().unwrap()).await).await;
    assert_eq!(get_user(&server, again["access_token"].as_str().unwrap()).await.status(), StatusCode::OK);
    server.stop().await;

    // Past the interval (0 here), the same reuse ends the session, as before.
    let server = TestServer::start_with(|c| c.auth.refresh_reuse_interval = Duration::ZERO).await;
    let bob = server.signup("Bob", "customer").await;
    let second = session_of(refresh(&server, &bob.refresh_token).await).await;
    expect_auth_error(refresh(&server, &bob.refresh_token).await, StatusCode::BAD_REQUEST, "refresh_token_already_used").await;
    let resp = refresh(&server, second["refresh_token"].as_str().unwrap()).await;
    expect_auth_error(resp, StatusCode::BAD_REQUEST, "refresh_token_not_found").await;
    healthy(&server).await;
    server.stop().await;
}
