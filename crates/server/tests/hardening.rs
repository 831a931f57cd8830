//! The server's limits through the real server (issue "Server hardening"): every refusal is
//! asserted on its status and its code in the client's shape (PostgREST, GoTrue or Phoenix),
//! and every test then shows that the server still serves others (health, a normal query, a
//! member's delivery).

use std::net::IpAddr;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;
use werkfunk_protocol::realtime::Vsn;
use werkfunk_testkit::phoenix::{is_event, Received, TestSocket};
use werkfunk_testkit::{TestServer, TestUser};

const WAIT: Duration = Duration::from_secs(10);

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
    let resp = server
        .request(Method::GET, "/rest/v1/profiles", None)
        .query(&[("or", deep_or.as_str())])
        .send()
        .await
        .expect("the server answers");
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
    let resp =
        server.request(Method::GET, "/rest/v1/profiles", Some(&alice)).query(&[("or", deep_and.as_str())]).send().await.unwrap();
    expect_rest_error(resp, StatusCode::BAD_REQUEST, "PGRST100").await;
    let wide = format!("({})", vec!["id.eq.1"; 1001].join(","));
    let resp =
        server.request(Method::GET, "/rest/v1/profiles", Some(&alice)).query(&[("or", wide.as_str())]).send().await.unwrap();
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

// ---------------------------------------------------------------------------------------------
// 2–3. Realtime: binding caps, presence size, clients that do not read
// ---------------------------------------------------------------------------------------------

fn bindings(filters: &[String]) -> Value {
    let list: Vec<Value> =
        filters.iter().map(|f| json!({"event": "*", "schema": "public", "table": "messages", "filter": f})).collect();
    json!({"broadcast": {"ack": false, "self": false}, "presence": {"key": "", "enabled": false}, "postgres_changes": list, "private": false})
}

fn reason(reply: &werkfunk_protocol::realtime::Frame) -> String {
    assert_eq!(reply.payload["status"], "error", "{reply:?}");
    reply.payload["response"]["reason"].as_str().unwrap_or_default().to_owned()
}

async fn send_message(server: &TestServer, user: &TestUser, conversation: Uuid, content: &str) -> Value {
    let resp = server
        .request(Method::POST, "/rest/v1/messages", Some(user))
        .header("prefer", "return=representation")
        .header("accept", "application/vnd.pgrst.object+json")
        .json(&json!({"conversation_id": conversation, "content": content}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json().await.unwrap()
}

/// Bob, on his conversation's topic, still receives Alice's next message.
async fn member_still_receives(server: &TestServer, alice: &TestUser, bob: &TestUser, conv: Uuid) {
    let mut ws = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    let topic = format!("realtime:messages:{conv}");
    let reply = ws.join(&topic, bindings(&[format!("conversation_id=eq.{conv}")]), Some(&bob.access_token)).await;
    assert_eq!(reply.payload["status"], "ok", "{reply:?}");
    ws.expect(WAIT, is_event(&topic, "system")).await.expect("subscribed");
    send_message(server, alice, conv, "noch da?").await;
    let got = ws.expect(WAIT, |r| matches!(r, Received::Frame(f) if f.event == "postgres_changes")).await;
    let Some(Received::Frame(f)) = got else { panic!("the member's delivery arrives") };
    assert_eq!(f.payload["data"]["record"]["content"], "noch da?");
    ws.close().await;
}

#[tokio::test]
async fn postgres_changes_bindings_are_capped_per_join_per_socket_and_per_server() {
    let server = TestServer::start_with(|c| c.realtime.scanned_filters = 3).await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let mut flood = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    let ids = |n: usize, op: &str| (0..n).map(|_| format!("id={op}.{}", Uuid::new_v4())).collect::<Vec<_>>();

    // 11 bindings in one join: refused, in Phoenix's shape.
    let reply = flood.join("realtime:flood-0", bindings(&ids(11, "eq")), None).await;
    assert!(reason(&reply).starts_with("PostgresChangesLimitReached"), "{reply:?}");
    // 10 joins of 10 reach the socket's 100; one more binding does not fit.
    for i in 0..10 {
        let reply = flood.join(&format!("realtime:flood-{i}"), bindings(&ids(10, "eq")), None).await;
        assert_eq!(reply.payload["status"], "ok", "{reply:?}");
    }
    let reply = flood.join("realtime:flood-10", bindings(&ids(1, "eq")), None).await;
    assert!(reason(&reply).starts_with("PostgresChangesLimitReached"), "{reply:?}");
    // Rejoining a topic replaces its bindings rather than adding to them.
    let reply = flood.join("realtime:flood-9", bindings(&ids(10, "eq")), None).await;
    assert_eq!(reply.payload["status"], "ok", "{reply:?}");

    // Filters that must be tested against every change are capped per server (3 here).
    let mut scanner = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    let reply = scanner.join("realtime:scan-0", bindings(&ids(3, "neq")), None).await;
    assert_eq!(reply.payload["status"], "ok", "{reply:?}");
    let reply = scanner.join("realtime:scan-1", bindings(&ids(1, "gt")), None).await;
    assert!(reason(&reply).starts_with("PostgresChangesLimitReached"), "{reply:?}");
    scanner.close().await;

    healthy(&server).await;
    member_still_receives(&server, &alice, &bob, conv).await;
    flood.close().await;
    server.stop().await;
}

#[tokio::test]
async fn an_oversized_presence_track_closes_the_channel() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let mut ws = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    let config = json!({"presence": {"key": "gross", "enabled": true}});
    assert_eq!(ws.join("realtime:lobby", config, None).await.payload["status"], "ok");
    let big = "x".repeat(9 * 1024);
    let r = ws
        .push("realtime:lobby", Some("1"), "presence", json!({"type": "presence", "event": "track", "payload": {"blob": big}}))
        .await;
    let got = ws
        .expect(WAIT, |m| matches!(m, Received::Frame(f) if f.event == "phx_reply" && f.reference.as_deref() == Some(&r)))
        .await;
    let Some(Received::Frame(reply)) = got else { panic!("the track is answered") };
    assert_eq!(reason(&reply), "Track message size exceeded");
    let got = ws.expect(WAIT, is_event("realtime:lobby", "system")).await;
    let Some(Received::Frame(system)) = got else { panic!("system message") };
    assert_eq!(system.payload["message"], "Track message size exceeded");
    assert!(ws.expect(WAIT, is_event("realtime:lobby", "phx_close")).await.is_some());
    // A normal track on the same socket is fine.
    assert_eq!(
        ws.join("realtime:lobby", json!({"presence": {"key": "klein", "enabled": true}}), None).await.payload["status"],
        "ok"
    );
    let r = ws
        .push(
            "realtime:lobby",
            Some("2"),
            "presence",
            json!({"type": "presence", "event": "track", "payload": {"status": "online"}}),
        )
        .await;
    let got = ws
        .expect(WAIT, |m| matches!(m, Received::Frame(f) if f.event == "phx_reply" && f.reference.as_deref() == Some(&r)))
        .await;
    let Some(Received::Frame(reply)) = got else { panic!("the track is answered") };
    assert_eq!(reply.payload["status"], "ok");
    healthy(&server).await;
    member_still_receives(&server, &alice, &bob, conv).await;
    server.stop().await;
}

/// A socket that tracks presence on `lobby` as `key`, listens on `flood`, and then never
/// reads again; returns it (held, so its connection stays open).
async fn stuck_reader(server: &TestServer, key: &str) -> TestSocket {
    let mut ws = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    assert_eq!(ws.join("realtime:lobby", json!({"presence": {"key": key, "enabled": true}}), None).await.payload["status"], "ok");
    let r = ws
        .push(
            "realtime:lobby",
            Some("1"),
            "presence",
            json!({"type": "presence", "event": "track", "payload": {"status": "online"}}),
        )
        .await;
    ws.expect(WAIT, |m| matches!(m, Received::Frame(f) if f.event == "phx_reply" && f.reference.as_deref() == Some(&r)))
        .await
        .expect("tracked");
    assert_eq!(ws.join("realtime:flood", json!({}), None).await.payload["status"], "ok");
    ws
}

/// Floods `flood` with large broadcasts until `observer` (on `lobby` only) sees `key` leave:
/// the server closed that socket. The observer heartbeats so that it stays open itself.
async fn flood_until_left(server: &TestServer, observer: &mut TestSocket, key: &str) {
    let mut speaker = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    assert_eq!(speaker.join("realtime:flood", json!({}), None).await.payload["status"], "ok");
    let blob = "y".repeat(200 * 1024);
    let left =
        |r: &Received| matches!(r, Received::Frame(f) if f.event == "presence_diff" && f.payload["leaves"].get(key).is_some());
    for round in 0..300 {
        for _ in 0..4 {
            speaker
                .push(
                    "realtime:flood",
                    Some("1"),
                    "broadcast",
                    json!({"type": "broadcast", "event": "last", "payload": {"blob": blob}}),
                )
                .await;
        }
        observer.push("phoenix", None, "heartbeat", json!({})).await;
        speaker.push("phoenix", None, "heartbeat", json!({})).await;
        if observer.expect(Duration::from_millis(200), left).await.is_some() {
            return;
        }
        assert!(round < 299, "the non-reading socket was never closed");
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_by_the_send_timeout() {
    // The idle timeout is far away: only the stalled write (or the full queue) can close it.
    let server = TestServer::start_with(|c| {
        c.realtime.send_timeout = Duration::from_secs(1);
        c.realtime.idle_timeout = Duration::from_secs(3600);
    })
    .await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let _stuck = stuck_reader(&server, "stuck").await;
    let mut observer = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    assert_eq!(
        observer.join("realtime:lobby", json!({"presence": {"key": "observer", "enabled": true}}), None).await.payload["status"],
        "ok"
    );
    flood_until_left(&server, &mut observer, "stuck").await;
    healthy(&server).await;
    member_still_receives(&server, &alice, &bob, conv).await;
    server.stop().await;
}

#[tokio::test]
async fn the_idle_timeout_fires_while_a_write_is_stuck() {
    // Writes may wait an hour and the queue is huge: only the idle timeout can close it.
    let server = TestServer::start_with(|c| {
        c.realtime.send_timeout = Duration::from_secs(3600);
        c.realtime.socket_queue = 1_000_000;
        c.realtime.idle_timeout = Duration::from_secs(3);
    })
    .await;
    let _stuck = stuck_reader(&server, "stuck").await;
    let mut observer = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    assert_eq!(
        observer.join("realtime:lobby", json!({"presence": {"key": "observer", "enabled": true}}), None).await.payload["status"],
        "ok"
    );
    flood_until_left(&server, &mut observer, "stuck").await;
    healthy(&server).await;
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 9. Smaller realtime findings
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn access_token_moves_the_channel_to_the_new_user() {
    let server = TestServer::start().await;
    let alice = server.signup("Alice", "tradesperson").await;
    let bob = server.signup("Bob", "customer").await;
    let carol = server.signup("Carol", "customer").await;
    let conv = server.conversation("group", Some("Baustelle"), &alice, &[&bob, &carol]).await;
    let topic = format!("realtime:typing:{conv}");
    let mut ws = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    assert_eq!(ws.join(&topic, json!({}), Some(&bob.access_token)).await.payload["status"], "ok");
    // The channel now acts for Carol; removing Carol (not Bob) must close it.
    ws.push(&topic, Some("1"), "access_token", json!({"access_token": carol.access_token})).await;
    ws.push("phoenix", None, "heartbeat", json!({})).await;
    ws.expect(WAIT, is_event("phoenix", "phx_reply")).await.expect("the access_token was processed");
    let resp = server
        .request(Method::POST, "/rest/v1/rpc/remove_conversation_member", Some(&alice))
        .json(&json!({"p_conversation_id": conv, "p_user_id": carol.id}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let got = ws.expect(WAIT, is_event(&topic, "system")).await;
    let Some(Received::Frame(f)) = got else { panic!("the channel is closed for the removed user") };
    assert!(f.payload["message"].as_str().unwrap().starts_with("Unauthorized"), "{f:?}");
    assert!(ws.expect(WAIT, is_event(&topic, "phx_close")).await.is_some());
    healthy(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_join_without_its_own_token_rechecks_the_socket_key() {
    let server = TestServer::start().await;
    let now = werkfunk_server::jwt::now();
    let short = server.keys().sign(&json!({"role": "anon", "iss": "supabase", "iat": now, "exp": now + 2}));
    let mut ws = TestSocket::connect(&server.url, &short, Vsn::V2).await;
    assert_eq!(ws.join("realtime:lobby", json!({}), None).await.payload["status"], "ok");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let reply = ws.join("realtime:lobby-2", json!({}), None).await;
    assert!(reason(&reply).starts_with("InvalidJWTExpiration"), "{reply:?}");
    healthy(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn the_rest_broadcast_endpoint_limits_and_checks_all_messages_at_once() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let eve = server.signup("Eve", "customer").await;
    let other = server.conversation("direct", None, &eve, &[&bob]).await;
    let post =
        |user: &TestUser, body: Value| server.request(Method::POST, "/realtime/v1/api/broadcast", Some(user)).json(&body).send();
    let one = |topic: String| json!({"topic": topic, "event": "typing", "payload": {}, "private": false});

    let many: Vec<Value> = (0..101).map(|i| one(format!("lobby-{i}"))).collect();
    let resp = post(&alice, json!({"messages": many})).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // One message to a conversation Alice is not in: nothing is sent, not even the allowed one.
    let mut bob_ws = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    let topic = format!("realtime:typing:{conv}");
    assert_eq!(bob_ws.join(&topic, json!({}), Some(&bob.access_token)).await.payload["status"], "ok");
    let resp = post(&alice, json!({"messages": [one(format!("typing:{conv}")), one(format!("typing:{other}"))]})).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(bob_ws.expect(Duration::from_millis(1500), |r| matches!(r, Received::Binary { .. })).await.is_none());
    // The allowed one alone goes through.
    let resp = post(&alice, json!({"messages": [one(format!("typing:{conv}"))]})).await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert!(bob_ws.expect(WAIT, |r| matches!(r, Received::Binary { event, .. } if event == "typing")).await.is_some());
    healthy(&server).await;
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 8. Soft-deleted messages
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_soft_deleted_message_keeps_no_readable_text() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let mut bob_ws = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    let topic = format!("realtime:messages:{conv}");
    let reply = bob_ws.join(&topic, bindings(&[format!("conversation_id=eq.{conv}")]), Some(&bob.access_token)).await;
    assert_eq!(reply.payload["status"], "ok");
    let message = send_message(&server, &alice, conv, "Die Geheimzahl ist 4711").await;
    let id = message["id"].as_str().unwrap().to_owned();

    let resp = server
        .request(Method::PATCH, &format!("/rest/v1/messages?id=eq.{id}"), Some(&alice))
        .json(&json!({"deleted_at": "2000-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    // Bob reads the tombstone, not the text: over REST, in the realtime UPDATE, in his
    // notification.
    let rows: Value = server
        .request(Method::GET, &format!("/rest/v1/messages?deleted_at=not.is.null&conversation_id=eq.{conv}"), Some(&bob))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["content"], "");
    assert_eq!(rows[0]["attachments"], json!([]));
    assert!(rows[0]["deleted_at"].is_string());
    let update = bob_ws
        .expect(
            WAIT,
            |r| matches!(r, Received::Frame(f) if f.event == "postgres_changes" && f.payload["data"]["type"] == "UPDATE"),
        )
        .await;
    let Some(Received::Frame(update)) = update else { panic!("the delete reaches Bob as an UPDATE") };
    assert_eq!(update.payload["data"]["record"]["content"], "");
    assert!(!update.payload.to_string().contains("4711"), "no trace of the text in the change");
    let notes: Value = server
        .request(Method::GET, "/rest/v1/notifications?select=body,link", Some(&bob))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(notes.as_array().unwrap().len(), 1);
    assert_eq!(notes[0]["body"], Value::Null, "the notification preview is cleared");
    // The seed's filter hides it as before.
    let live: Value = server
        .request(Method::GET, &format!("/rest/v1/messages?conversation_id=eq.{conv}&deleted_at=is.null"), Some(&bob))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(live, json!([]));
    // Deleting again is still a no-op; editing a deleted message is still refused.
    let resp = server
        .request(Method::PATCH, &format!("/rest/v1/messages?id=eq.{id}"), Some(&alice))
        .json(&json!({"deleted_at": "2000-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = server
        .request(Method::PATCH, &format!("/rest/v1/messages?id=eq.{id}"), Some(&alice))
        .json(&json!({"content": "neu"}))
        .send()
        .await
        .unwrap();
    expect_rest_error(resp, StatusCode::BAD_REQUEST, "23514").await;
    // The text is kept only where service_role (and no API user) reads it.
    let archived: String = sqlx::query_scalar("select content from private.deleted_message_texts where message_id = $1::uuid")
        .bind(&id)
        .fetch_one(server.db.pool())
        .await
        .unwrap();
    assert_eq!(archived, "Die Geheimzahl ist 4711");
    let mut tx = server.db.as_user(bob.id).await;
    let denied = sqlx::query("select 1 from private.deleted_message_texts").execute(&mut *tx).await;
    assert_eq!(werkfunk_server::error::db_error(&denied.unwrap_err()).map(|e| e.code().to_owned()).as_deref(), Some("42501"));
    drop(tx);
    healthy(&server).await;
    serves_a_normal_query(&server, &bob).await;
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 9. Smaller schema and REST findings
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn members_cannot_post_system_messages_or_oversized_json() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let post = |body: Value| server.request(Method::POST, "/rest/v1/messages", Some(&alice)).json(&body).send();
    let resp = post(json!({"conversation_id": conv, "content": "Wartung heute Nacht", "type": "system"})).await.unwrap();
    expect_rest_error(resp, StatusCode::FORBIDDEN, "42501").await;
    let resp = post(json!({"conversation_id": conv, "content": "x", "meta": {"blob": "m".repeat(9000)}})).await.unwrap();
    expect_rest_error(resp, StatusCode::BAD_REQUEST, "23514").await;
    let resp =
        post(json!({"conversation_id": conv, "content": "x", "attachments": [{"blob": "a".repeat(17000)}]})).await.unwrap();
    expect_rest_error(resp, StatusCode::BAD_REQUEST, "23514").await;
    // user_metadata rides in every token: 4 KiB at most.
    let resp = server
        .http
        .put(format!("{}/auth/v1/user", server.url))
        .header("apikey", &server.anon_key)
        .bearer_auth(&alice.access_token)
        .json(&json!({"data": {"bio": "b".repeat(5000)}}))
        .send()
        .await
        .unwrap();
    expect_auth_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    // Nothing was written; a normal message goes through.
    let count: i64 = sqlx::query_scalar("select count(*) from public.messages").fetch_one(server.db.pool()).await.unwrap();
    assert_eq!(count, 0);
    send_message(&server, &alice, conv, "Normal").await;
    serves_a_normal_query(&server, &bob).await;
    server.stop().await;
}

#[tokio::test]
async fn get_rpc_is_read_only_and_counts_call_the_function_once() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let carol = server.signup("Carol", "customer").await;
    let before: i64 = sqlx::query_scalar("select count(*) from public.conversations").fetch_one(server.db.pool()).await.unwrap();
    let resp = server
        .request(
            Method::GET,
            &format!("/rest/v1/rpc/create_conversation?p_type=group&p_title=Heimlich&p_member_ids=%7B{}%7D", carol.id),
            Some(&alice),
        )
        .send()
        .await
        .unwrap();
    expect_rest_error(resp, StatusCode::METHOD_NOT_ALLOWED, "25006").await;
    let after: i64 = sqlx::query_scalar("select count(*) from public.conversations").fetch_one(server.db.pool()).await.unwrap();
    assert_eq!(before, after, "a GET call wrote nothing");
    // A read-only function is fine over GET, with an exact count.
    send_message(&server, &alice, conv, "eins").await;
    let resp = server
        .request(Method::GET, "/rest/v1/rpc/get_unread_counts", Some(&bob))
        .header("prefer", "count=exact")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers().get("content-range").and_then(|v| v.to_str().ok()), Some("0-0/1"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body[0]["unread_count"], 1);
    healthy(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn each_request_role_runs_with_its_statement_timeout() {
    let server = TestServer::start().await;
    let alice = server.signup("Alice", "tradesperson").await;
    let keys = server.keys();
    for (token, expected) in [(server.anon_key.clone(), "3s"), (alice.access_token.clone(), "8s")] {
        let caller = werkfunk_server::caller::verify_token(&keys, &token, werkfunk_server::jwt::now()).unwrap();
        let mut tx = werkfunk_server::db::begin_as(server.db.pool(), &caller).await.unwrap();
        let timeout: String =
            sqlx::query_scalar("select current_setting('statement_timeout')").fetch_one(&mut *tx).await.unwrap();
        assert_eq!(timeout, expected);
    }
    healthy(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn deletes_are_authorized_without_superuser_and_survive_key_reuse() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let mut bob_ws = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    let topic = format!("realtime:messages:{conv}");
    assert_eq!(
        bob_ws.join(&topic, bindings(&[format!("conversation_id=eq.{conv}")]), Some(&bob.access_token)).await.payload["status"],
        "ok"
    );
    let message = send_message(&server, &alice, conv, "alt").await;
    let id = message["id"].as_str().unwrap().to_owned();
    bob_ws.expect(WAIT, |r| matches!(r, Received::Frame(f) if f.event == "postgres_changes")).await.expect("insert");

    // The row is deleted and its key taken by a new row in the same transaction.
    let mut tx = server.db.pool().begin().await.unwrap();
    sqlx::query("delete from public.messages where id = $1::uuid").bind(&id).execute(&mut *tx).await.unwrap();
    sqlx::query("insert into public.messages (id, conversation_id, sender_id, content) values ($1::uuid, $2, $3, 'neu')")
        .bind(&id)
        .bind(conv)
        .bind(alice.id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let is_change = |kind: &'static str| move |r: &Received| matches!(r, Received::Frame(f) if f.event == "postgres_changes" && f.payload["data"]["type"] == kind);
    assert!(bob_ws.expect(WAIT, is_change("DELETE")).await.is_some(), "the DELETE is not lost to the reused key");

    // werkfunk_realtime.authorize as a role that is not a superuser (as on a managed Postgres).
    let plain = format!("wf_plain_{}", Uuid::new_v4().simple());
    let pool = server.db.pool();
    for statement in [
        format!("create role {plain} nologin nosuperuser"),
        format!("grant anon, authenticated, service_role to {plain}"),
        format!("grant usage on schema werkfunk_realtime to {plain}"),
        format!("grant execute on function werkfunk_realtime.authorize(regclass, uuid[], jsonb, jsonb[]) to {plain}"),
    ] {
        sqlx::query(&statement).execute(pool).await.unwrap();
    }
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(&format!("set local role {plain}")).execute(&mut *tx).await.unwrap();
    let gone = Uuid::new_v4();
    let deleted = json!([{"id": gone, "conversation_id": conv, "sender_id": alice.id, "content": ""}]);
    let claims = json!({"sub": bob.id, "role": "authenticated"});
    let rows: Vec<(i32, Uuid)> = sqlx::query_as(
        "select claims_index, id from werkfunk_realtime.authorize('public.messages'::regclass, $1, $2, array[$3::jsonb])",
    )
    .bind(vec![gone])
    .bind(&deleted)
    .bind(&claims)
    .fetch_all(&mut *tx)
    .await
    .expect("a plain role can authorize a DELETE");
    assert_eq!(rows, vec![(1, gone)]);
    tx.rollback().await.unwrap();
    for statement in [
        format!("revoke execute on function werkfunk_realtime.authorize(regclass, uuid[], jsonb, jsonb[]) from {plain}"),
        format!("revoke usage on schema werkfunk_realtime from {plain}"),
        format!("drop role {plain}"),
    ] {
        sqlx::query(&statement).execute(pool).await.unwrap();
    }
    healthy(&server).await;
    member_still_receives(&server, &alice, &bob, conv).await;
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 9 (issue item 9). Without a superuser
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_server_migrates_and_serves_as_a_role_that_is_not_superuser() {
    // A database owned by a plain role (neither SUPERUSER nor CREATEROLE) after the one-time
    // superuser step of the README (deploy/roles.sql); the server migrates it from scratch
    // and serves as that role.
    let probe = std::sync::Arc::new(werkfunk_testkit::TestDb::new().await);
    let tag = Uuid::new_v4().simple().to_string();
    let (owner, database) = (format!("wf_owner_{tag}"), format!("wf_plain_{tag}"));
    let admin = probe.pool();
    sqlx::query(&format!("create role {owner} login nocreaterole nosuperuser")).execute(admin).await.unwrap();
    sqlx::query(&format!("create database {database} owner {owner}")).execute(admin).await.unwrap();
    let superuser_base = probe.url.rsplit_once('/').unwrap().0.to_owned();
    let (roles_url, roles_owner) = (format!("{superuser_base}/postgres"), owner.clone());
    tokio::task::spawn_blocking(move || werkfunk_testkit::cluster::apply_roles_sql(&roles_url, &roles_owner))
        .await
        .unwrap()
        .expect("deploy/roles.sql");
    let base = superuser_base.replacen("postgres@", &format!("{owner}@"), 1);
    let url = format!("{base}/{database}");
    let server = TestServer::start_on(probe.clone(), |c| c.database_url = url.clone()).await;

    let (alice, bob, conv) = server.alice_and_bob().await;
    member_still_receives(&server, &alice, &bob, conv).await;
    // A DELETE (by the service role over REST) reaches Bob: werkfunk_realtime.authorize judged it
    // without any superuser privilege.
    let mut ws = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    let topic = format!("realtime:messages:{conv}");
    assert_eq!(
        ws.join(&topic, bindings(&[format!("conversation_id=eq.{conv}")]), Some(&bob.access_token)).await.payload["status"],
        "ok"
    );
    ws.expect(WAIT, is_event(&topic, "system")).await.expect("subscribed");
    let message = send_message(&server, &alice, conv, "gleich weg").await;
    let resp = server
        .http
        .delete(format!("{}/rest/v1/messages?id=eq.{}", server.url, message["id"].as_str().unwrap()))
        .header("apikey", &server.service_key)
        .bearer_auth(&server.service_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let deleted = ws
        .expect(
            WAIT,
            |r| matches!(r, Received::Frame(f) if f.event == "postgres_changes" && f.payload["data"]["type"] == "DELETE"),
        )
        .await;
    assert!(deleted.is_some(), "the DELETE reaches the member");
    // The sign-in limits and the auth tables work as that role too.
    let client = client_from("127.0.0.1");
    session_of(sign_in_from(&server, &client, &alice.email, PASSWORD).await).await;
    healthy(&server).await;
    ws.close().await;
    server.stop().await;

    sqlx::query(&format!("drop database {database} with (force)")).execute(admin).await.unwrap();
    sqlx::query(&format!("drop role {owner}")).execute(admin).await.unwrap();
}

#[tokio::test]
async fn a_removed_member_learns_of_the_removal_with_who_left() {
    let server = TestServer::start().await;
    let alice = server.signup("Alice", "tradesperson").await;
    let bob = server.signup("Bob", "customer").await;
    let carol = server.signup("Carol", "customer").await;
    let conv = server.conversation("group", Some("Baustelle"), &alice, &[&bob, &carol]).await;
    let mut ws = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    let config = json!({"postgres_changes": [{"event": "*", "schema": "public", "table": "conversation_members"}]});
    let topic = format!("realtime:user:{}", bob.id);
    assert_eq!(ws.join(&topic, config, Some(&bob.access_token)).await.payload["status"], "ok");
    ws.expect(WAIT, is_event(&topic, "system")).await.expect("subscribed");
    let resp = server
        .request(Method::POST, "/rest/v1/rpc/remove_conversation_member", Some(&alice))
        .json(&json!({"p_conversation_id": conv, "p_user_id": bob.id}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let got = ws
        .expect(
            WAIT,
            |r| matches!(r, Received::Frame(f) if f.event == "postgres_changes" && f.payload["data"]["type"] == "DELETE"),
        )
        .await;
    let Some(Received::Frame(f)) = got else {
        panic!("Bob hears of his own removal, though he can no longer see the conversation")
    };
    let old = &f.payload["data"]["old_record"];
    assert_eq!(old["conversation_id"], json!(conv));
    assert_eq!(old["user_id"], json!(bob.id));
    healthy(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_lost_change_feed_also_errors_typing_and_presence_channels() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    // Channels without bindings on members-only topics: a removal in the gap would be missed.
    let mut ws = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    let (typing, presence) = (format!("realtime:typing:{conv}"), format!("realtime:presence:{conv}"));
    assert_eq!(ws.join(&typing, json!({}), Some(&bob.access_token)).await.payload["status"], "ok");
    assert_eq!(
        ws.join(&presence, json!({"presence": {"key": bob.id, "enabled": true}}), Some(&bob.access_token)).await.payload
            ["status"],
        "ok"
    );
    let cut: i64 = sqlx::query_scalar(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity
         where datname = current_database() and pid <> pg_backend_pid() and query ilike 'listen%'",
    )
    .fetch_one(server.db.pool())
    .await
    .unwrap();
    assert!(cut >= 1, "the listener connection was found");
    // Both are told to rejoin, in either order.
    let mut errored = std::collections::HashSet::new();
    while errored.len() < 2 {
        match ws.expect(WAIT, |r| matches!(r, Received::Frame(f) if f.event == "phx_error")).await {
            Some(Received::Frame(f)) => errored.insert(f.topic),
            other => panic!("typing and presence are told to rejoin; got {other:?} after {errored:?}"),
        };
    }
    assert!(errored.contains(&typing) && errored.contains(&presence), "{errored:?}");
    healthy(&server).await;
    member_still_receives(&server, &alice, &bob, conv).await;
    server.stop().await;
}

#[tokio::test]
async fn an_exact_count_calls_a_set_returning_function_once() {
    // A function that counts its calls, in place before the server reads the schema.
    let db = werkfunk_testkit::TestDb::new().await;
    for statement in [
        "create table public.probe_calls (n bigserial primary key)",
        "grant insert on public.probe_calls to authenticated",
        "grant usage on sequence public.probe_calls_n_seq to authenticated",
        "create function public.probe_profiles() returns setof public.profiles language plpgsql volatile as $$
         begin
           insert into public.probe_calls default values;
           return query select * from public.profiles;
         end $$",
        "grant execute on function public.probe_profiles() to authenticated",
    ] {
        sqlx::query(statement).execute(db.pool()).await.unwrap();
    }
    let server = TestServer::start_on(std::sync::Arc::new(db), |_| {}).await;
    let (alice, _bob, _conv) = server.alice_and_bob().await;
    let resp = server
        .request(Method::POST, "/rest/v1/rpc/probe_profiles?select=id&limit=1", Some(&alice))
        .header("prefer", "count=exact")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.headers().get("content-range").and_then(|v| v.to_str().ok()), Some("0-0/2"));
    let calls: i64 = sqlx::query_scalar("select count(*) from public.probe_calls").fetch_one(server.db.pool()).await.unwrap();
    assert_eq!(calls, 1, "the page and the total come from one call");
    healthy(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn websockets_past_the_process_limit_are_refused_with_429() {
    let server = TestServer::start_with(|c| c.realtime.max_sockets = 2).await;
    let url = format!("{}/realtime/v1/websocket?apikey={}&vsn=2.0.0", server.url.replacen("http", "ws", 1), server.anon_key);
    let first = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    let _second = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body, json!({"error": "Too many connected users"}));
        }
        other => panic!("a third websocket is refused: {:?}", other.map(|_| ())),
    }
    // A closed socket gives its place back (once the server has seen it go).
    first.close().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(url.as_str()).await {
            drop(ws);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the place was never given back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    healthy(&server).await;
    server.stop().await;
}

/// Item 7's race, made deterministic: the removal commits while the join's membership check
/// is running. A transaction deletes Bob's membership under an exclusive lock on
/// `conversation_members`; Bob's join on `typing:` reaches its check, which takes its snapshot
/// (Bob still a member) and then waits for that lock inside the membership function — seen
/// waiting in `pg_locks` — and only then the removal commits. The check passes on the old
/// snapshot, so only a channel registered before the check can be reached by the removal: Bob
/// is told `phx_close` and hears nothing more on the topic.
#[tokio::test]
async fn a_removal_committed_during_the_join_check_still_closes_the_channel() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let topic = format!("realtime:typing:{conv}");
    let pool = server.db.pool();

    let mut removal = pool.begin().await.unwrap();
    sqlx::query("lock table public.conversation_members in access exclusive mode").execute(&mut *removal).await.unwrap();
    sqlx::query("delete from public.conversation_members where conversation_id = $1 and user_id = $2")
        .bind(conv)
        .bind(bob.id)
        .execute(&mut *removal)
        .await
        .unwrap();

    let mut bob_ws = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    let join_ref = bob_ws.next_ref();
    bob_ws
        .send(&werkfunk_protocol::realtime::Frame {
            join_ref: Some(join_ref.clone()),
            reference: Some(join_ref.clone()),
            topic: topic.clone(),
            event: "phx_join".into(),
            payload: json!({"config": {}, "access_token": bob.access_token}),
        })
        .await;
    // The join's check is waiting for the lock (a condition, not a time: polled until seen).
    let mut waiting = 0i64;
    for _ in 0..200 {
        waiting = sqlx::query_scalar(
            "select count(*) from pg_locks
              where database = (select oid from pg_database where datname = current_database())
                and relation = 'public.conversation_members'::regclass and not granted",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(waiting > 0, "the join's membership check waits for the removal's lock");
    removal.commit().await.unwrap();

    let reply = bob_ws
        .expect(WAIT, |r| matches!(r, Received::Frame(f) if f.event == "phx_reply" && f.reference.as_deref() == Some(&join_ref)))
        .await;
    let Some(Received::Frame(reply)) = reply else { panic!("no join reply") };
    if reply.payload["status"] == "ok" {
        // Admitted on the snapshot from before the removal: the removal must close it.
        assert!(bob_ws.expect(WAIT, is_event(&topic, "phx_close")).await.is_some(), "the removal reaches the registered channel");
    }
    // Either way Bob is on no channel of the conversation: Alice's typing does not reach him.
    let mut alice_ws = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    assert_eq!(
        alice_ws.join(&topic, json!({"broadcast": {"ack": true}}), Some(&alice.access_token)).await.payload["status"],
        "ok"
    );
    alice_ws
        .push(&topic, Some("1"), "broadcast", json!({"type": "broadcast", "event": "typing", "payload": {"userId": alice.id}}))
        .await;
    assert!(alice_ws.expect(WAIT, is_event(&topic, "phx_reply")).await.is_some(), "the broadcast was handled");
    assert!(
        bob_ws
            .expect(Duration::from_secs(1), |r| matches!(r, Received::Binary { .. })
                || matches!(r, Received::Frame(f) if f.event == "broadcast"))
            .await
            .is_none(),
        "a removed member hears no typing"
    );
    healthy(&server).await;
    bob_ws.close().await;
    alice_ws.close().await;
    server.stop().await;
}
