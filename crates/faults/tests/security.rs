//! Hostile callers against the real server, table-driven.
//!
//! Every endpoint (GoTrue, REST tables and RPCs, the realtime handshake, join and
//! `access_token`, REST broadcast) is tried with every bad credential: no key, a key signed
//! with another secret, `alg: none`, an HS/RS confusion (`RS256`/`HS512` headers over an
//! HMAC), an expired token, a `role` the server must not select, a deleted user's token, a
//! session signed out elsewhere, and another user's valid token. Then SQL-ish input through
//! filters, order, select, on_conflict, columns and RPC arguments; realtime topics aimed at
//! another conversation with case, whitespace and prefix variants; oversized and deeply
//! nested payloads; password guessing spread over two server processes; a replayed refresh
//! token outside the reuse interval. Each case asserts the refusal (or, where the right answer is "nothing
//! for you", an empty result), and a snapshot of every table (auth included) proves that
//! nothing was written; a member's socket and sentinel frames prove nothing was delivered.
//!
//! Each test prints its table: case, endpoint, status.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;
use uuid::Uuid;
use werkfunk_protocol::realtime::Vsn;
use werkfunk_server::jwt::{self, DbRole, Keys};
use werkfunk_testkit::phoenix::{Received, TestSocket};
use werkfunk_testkit::{TestServer, TestUser, JWT_SECRET};

const WAIT: Duration = Duration::from_secs(10);
const MARK: &str = "HOSTILE-7f3a";

/// A signed token with any header (for `alg` games).
fn token_with_header(header: Value, claims: Value, secret: &[u8]) -> String {
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("hmac");
    mac.update(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

fn unsigned(claims: Value) -> String {
    format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#), URL_SAFE_NO_PAD.encode(claims.to_string()))
}

fn user_claims(user: Uuid, exp: i64) -> Value {
    json!({"sub": user, "role": "authenticated", "aud": "authenticated", "exp": exp, "iat": jwt::now()})
}

/// One bad credential: the `apikey` and the bearer it sends (`None`: header left out), and
/// whether the server may legitimately accept the credential itself (a valid token of
/// someone else, whose requests must then find nothing of Alice's).
struct Cred {
    name: &'static str,
    apikey: Option<String>,
    bearer: Option<String>,
    valid: bool,
}

struct World {
    server: TestServer,
    alice: TestUser,
    bob: TestUser,
    conv: Uuid,
    /// One of Alice's messages in `conv`.
    message: Uuid,
    creds: Vec<Cred>,
}

async fn world() -> World {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let eve = server.signup("Eve", "customer").await;
    let gone = server.signup("Gone", "customer").await;
    let left = server.signup("Left", "customer").await;
    let message = Uuid::now_v7();
    let resp = server
        .request(Method::POST, "/rest/v1/messages", Some(&alice))
        .json(&json!({"id": message, "conversation_id": conv, "sender_id": alice.id, "content": "Termin am Montag", "type": "text"}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "seed message: {}", resp.status());
    // A user deleted on the server whose token is still signed correctly.
    sqlx::query("delete from auth.users where id = $1").bind(gone.id).execute(server.db.pool()).await.expect("delete user");
    // A user whose every session was signed out.
    let resp = server.request(Method::POST, "/auth/v1/logout", Some(&left)).send().await.unwrap();
    assert!(resp.status().is_success(), "logout: {}", resp.status());

    let now = jwt::now();
    let anon = server.anon_key.clone();
    let forged = Keys::new("another secret that is long enough to sign 0123456789");
    let secret = JWT_SECRET.as_bytes();
    let keys = server.keys();
    let as_alice = |claims: Value| keys.sign(&claims);
    let creds = vec![
        Cred { name: "no key", apikey: None, bearer: None, valid: false },
        Cred { name: "forged key", apikey: Some(forged.api_key(DbRole::ServiceRole, now)), bearer: None, valid: false },
        Cred {
            name: "forged user token",
            apikey: Some(anon.clone()),
            bearer: Some(forged.sign(&user_claims(alice.id, now + 600))),
            valid: false,
        },
        Cred {
            name: "alg none key",
            apikey: Some(unsigned(json!({"role": "service_role", "exp": now + 600}))),
            bearer: None,
            valid: false,
        },
        Cred {
            name: "alg none token",
            apikey: Some(anon.clone()),
            bearer: Some(unsigned(user_claims(alice.id, now + 600))),
            valid: false,
        },
        Cred {
            name: "HS/RS confusion (RS256 header, HMAC body)",
            apikey: Some(anon.clone()),
            bearer: Some(token_with_header(json!({"alg": "RS256", "typ": "JWT"}), user_claims(alice.id, now + 600), secret)),
            valid: false,
        },
        Cred {
            name: "HS512 header over HS256",
            apikey: Some(token_with_header(json!({"alg": "HS512"}), json!({"role": "service_role", "exp": now + 600}), secret)),
            bearer: None,
            valid: false,
        },
        Cred {
            name: "expired token",
            apikey: Some(anon.clone()),
            bearer: Some(as_alice(user_claims(alice.id, now - 5))),
            valid: false,
        },
        Cred {
            name: "expired key",
            apikey: Some(keys.sign(&json!({"role": "anon", "exp": now - 5}))),
            bearer: None,
            valid: false,
        },
        Cred {
            name: "role postgres",
            apikey: Some(anon.clone()),
            bearer: Some(as_alice(json!({"sub": alice.id, "role": "postgres", "exp": now + 600}))),
            valid: false,
        },
        Cred {
            name: "role supabase_admin key",
            apikey: Some(keys.sign(&json!({"role": "supabase_admin", "exp": now + 600}))),
            bearer: None,
            valid: false,
        },
        Cred {
            name: "role with trailing space",
            apikey: Some(anon.clone()),
            bearer: Some(as_alice(json!({"sub": alice.id, "role": "service_role ", "exp": now + 600}))),
            valid: false,
        },
        Cred {
            name: "authenticated without sub",
            apikey: Some(anon.clone()),
            bearer: Some(as_alice(json!({"role": "authenticated", "exp": now + 600}))),
            valid: false,
        },
        Cred {
            name: "token without exp",
            apikey: Some(anon.clone()),
            bearer: Some(as_alice(json!({"sub": alice.id, "role": "authenticated"}))),
            valid: false,
        },
        Cred { name: "garbage bearer", apikey: Some(anon.clone()), bearer: Some("a.b.c".into()), valid: false },
        // Signed correctly, so accepted as credentials: RLS must give them nothing of Alice's.
        Cred { name: "another user's token", apikey: Some(anon.clone()), bearer: Some(eve.access_token.clone()), valid: true },
        // Signed correctly, but their session has ended: refused like a bad token.
        Cred { name: "deleted user's token", apikey: Some(anon.clone()), bearer: Some(gone.access_token.clone()), valid: false },
        Cred {
            name: "signed-out session's token",
            apikey: Some(anon.clone()),
            bearer: Some(left.access_token.clone()),
            valid: false,
        },
        Cred {
            name: "wrong aud",
            apikey: Some(anon.clone()),
            bearer: Some(as_alice(json!({"sub": eve.id, "role": "authenticated", "aud": "somewhere-else", "exp": now + 600}))),
            valid: false,
        },
        Cred { name: "anon key only", apikey: Some(anon.clone()), bearer: None, valid: true },
    ];
    World { server, alice, bob, conv, message, creds }
}

/// Every application table and `auth`'s, as JSON: equal before and after = nothing written.
async fn snapshot(server: &TestServer) -> Value {
    let tables = [
        "public.profiles",
        "public.conversations",
        "public.conversation_members",
        "public.messages",
        "public.message_reads",
        "public.typing_indicators",
        "public.notifications",
        "auth.users",
        "auth.sessions",
        "auth.refresh_tokens",
    ];
    let parts: Vec<String> =
        tables.iter().map(|t| format!("'{t}', (select coalesce(json_agg(t order by t::text), '[]') from {t} t)")).collect();
    sqlx::query_scalar(&format!("select json_build_object({})", parts.join(", ")))
        .fetch_one(server.db.pool())
        .await
        .expect("snapshot")
}

fn request(server: &TestServer, method: Method, path: &str, cred: &Cred) -> reqwest::RequestBuilder {
    let mut r = server.http.request(method, format!("{}{path}", server.url));
    if let Some(k) = &cred.apikey {
        r = r.header("apikey", k);
    }
    if let Some(b) = &cred.bearer {
        r = r.bearer_auth(b);
    }
    r
}

/// One endpoint as the table tries it: a request, and what a refusal looks like.
struct Endpoint {
    name: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
    /// For valid credentials: the answer must contain nothing of Alice's (an empty array),
    /// or be a refusal.
    reads: bool,
}

fn endpoints(w: &World) -> Vec<Endpoint> {
    let conv = w.conv;
    let msg = w.message;
    let e = |name, method, path: String, body: Option<Value>, reads| Endpoint { name, method, path, body, reads };
    vec![
        e("GET /auth/v1/user", Method::GET, "/auth/v1/user".into(), None, false),
        e(
            "PUT /auth/v1/user",
            Method::PUT,
            "/auth/v1/user".into(),
            Some(json!({"password": "Neues-Passwort-99", "data": {"x": MARK}})),
            false,
        ),
        e(
            "POST /auth/v1/signup",
            Method::POST,
            "/auth/v1/signup".into(),
            Some(json!({"email": format!("{}@werkfunk.test", Uuid::new_v4()), "password": "Sicheres-Passwort-1"})),
            false,
        ),
        e(
            "POST /auth/v1/token",
            Method::POST,
            "/auth/v1/token?grant_type=password".into(),
            Some(json!({"email": w.alice.email, "password": w.alice.password})),
            false,
        ),
        e("GET messages", Method::GET, format!("/rest/v1/messages?conversation_id=eq.{conv}"), None, true),
        e("GET conversations", Method::GET, format!("/rest/v1/conversations?id=eq.{conv}"), None, true),
        e(
            "GET conversation_members",
            Method::GET,
            format!("/rest/v1/conversation_members?conversation_id=eq.{conv}"),
            None,
            true,
        ),
        e("GET notifications", Method::GET, "/rest/v1/notifications".into(), None, true),
        e(
            "POST messages",
            Method::POST,
            "/rest/v1/messages".into(),
            Some(json!({"conversation_id": conv, "sender_id": w.alice.id, "content": MARK, "type": "text"})),
            false,
        ),
        e("PATCH messages", Method::PATCH, format!("/rest/v1/messages?id=eq.{msg}"), Some(json!({"content": MARK})), false),
        e("DELETE messages", Method::DELETE, format!("/rest/v1/messages?id=eq.{msg}"), None, false),
        e(
            "POST conversation_members",
            Method::POST,
            "/rest/v1/conversation_members".into(),
            Some(json!({"conversation_id": conv, "user_id": Uuid::nil(), "role": "owner"})),
            false,
        ),
        e(
            "PATCH conversation_members",
            Method::PATCH,
            format!("/rest/v1/conversation_members?conversation_id=eq.{conv}"),
            Some(json!({"role": "member"})),
            false,
        ),
        e(
            "RPC add_conversation_members",
            Method::POST,
            "/rest/v1/rpc/add_conversation_members".into(),
            Some(json!({"p_conversation_id": conv, "p_user_ids": [Uuid::nil()]})),
            false,
        ),
        e(
            "RPC get_unread_message_count",
            Method::POST,
            "/rest/v1/rpc/get_unread_message_count".into(),
            Some(json!({"p_conversation_id": conv, "p_user_id": w.alice.id})),
            false,
        ),
        e(
            "RPC remove_conversation_member",
            Method::POST,
            "/rest/v1/rpc/remove_conversation_member".into(),
            Some(json!({"p_conversation_id": conv, "p_user_id": w.bob.id})),
            false,
        ),
        e(
            "POST /realtime/v1/api/broadcast",
            Method::POST,
            "/realtime/v1/api/broadcast".into(),
            Some(json!({"messages": [{"topic": format!("messages:{conv}"), "event": "typing", "payload": {"m": MARK}}]})),
            false,
        ),
        // Last: Eve's own valid token signs her out here, and a token whose session has
        // ended is refused everywhere after it.
        e("POST /auth/v1/logout", Method::POST, "/auth/v1/logout".into(), None, false),
    ]
}

/// The credential cases the server must accept as credentials on this endpoint (its own
/// business: signing up with the anon key is what the anon key is for).
fn legitimately_allowed(endpoint: &str, cred: &Cred, anon_key: &str) -> bool {
    match endpoint {
        // GoTrue reads only the API key on these (a stale session in the client must not
        // stop anyone from signing in).
        "POST /auth/v1/signup" | "POST /auth/v1/token" => cred.apikey.as_deref() == Some(anon_key),
        // A valid session of Eve's asking about or acting on Eve herself.
        "GET /auth/v1/user" | "PUT /auth/v1/user" | "POST /auth/v1/logout" => cred.name == "another user's token",
        _ => false,
    }
}

/// A member's socket on the conversation's topics, to show nothing hostile is delivered.
async fn member_socket(w: &World) -> TestSocket {
    let mut s = TestSocket::connect(&w.server.url, &w.server.anon_key, Vsn::V2).await;
    for topic in [format!("realtime:messages:{}", w.conv), format!("realtime:typing:{}", w.conv)] {
        let config = json!({"broadcast": {"self": false}, "postgres_changes": [
            {"event": "*", "schema": "public", "table": "messages", "filter": format!("conversation_id=eq.{}", w.conv)}
        ]});
        let reply = s.join(&topic, config, Some(&w.bob.access_token)).await;
        assert_eq!(reply.payload["status"], "ok", "member joins {topic}: {reply:?}");
    }
    s
}

/// Joins a public room of its own on `socket`; returns its topic without `realtime:`.
async fn sentinel_room(socket: &mut TestSocket) -> String {
    let sub = format!("sentinel-{}", Uuid::new_v4());
    let reply = socket.join(&format!("realtime:{sub}"), json!({"broadcast": {"self": false}}), None).await;
    assert_eq!(reply.payload["status"], "ok", "sentinel room: {reply:?}");
    sub
}

/// Sends a sentinel broadcast as Alice over REST and reads `socket` up to it; returns every
/// broadcast or change frame that came before.
async fn drain_until_sentinel(w: &World, socket: &mut TestSocket, topic_sub: &str) -> Vec<Received> {
    let sentinel = Uuid::new_v4().to_string();
    let resp = w
        .server
        .request(Method::POST, "/realtime/v1/api/broadcast", Some(&w.alice))
        .json(&json!({"messages": [{"topic": topic_sub, "event": "sentinel", "payload": {"s": sentinel}}]}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "sentinel broadcast: {}", resp.status());
    let mut before = Vec::new();
    loop {
        let got = socket.recv(WAIT).await.expect("the sentinel arrives");
        let is_sentinel = match &got {
            Received::Binary { payload, .. } => payload["s"] == json!(sentinel),
            Received::Frame(f) => f.payload.to_string().contains(&sentinel),
            Received::Closed => panic!("member socket closed"),
        };
        if is_sentinel {
            return before;
        }
        before.push(got);
    }
}

fn mentions_mark(r: &Received) -> bool {
    match r {
        Received::Binary { payload, .. } => payload.to_string().contains(MARK),
        Received::Frame(f) => f.payload.to_string().contains(MARK),
        Received::Closed => false,
    }
}

#[tokio::test]
async fn every_endpoint_refuses_every_bad_credential_and_nothing_is_written() {
    let w = world().await;
    let mut member = member_socket(&w).await;
    let mut table: Vec<(String, String, u16)> = Vec::new();
    let mut problems = Vec::new();
    for ep in endpoints(&w) {
        for cred in &w.creds {
            let before = snapshot(&w.server).await;
            let mut req = request(&w.server, ep.method.clone(), &ep.path, cred);
            if let Some(b) = &ep.body {
                req = req.json(b);
            }
            let resp = req.send().await.expect("request");
            let status = resp.status();
            let mut body = resp.text().await.unwrap_or_default();
            body.truncate(300);
            let after = snapshot(&w.server).await;
            table.push((ep.name.to_owned(), cred.name.to_owned(), status.as_u16()));
            let allowed = legitimately_allowed(ep.name, cred, &w.server.anon_key);
            if !allowed && before != after {
                problems.push(format!("{} with {}: {status} and the database changed", ep.name, cred.name));
            }
            if status.is_server_error() {
                problems.push(format!("{} with {}: {status} {body}", ep.name, cred.name));
            }
            if allowed {
                continue;
            }
            if !cred.valid {
                // GoTrue answers a bad bearer with 403 `bad_jwt` (`session_not_found` when its
                // session has ended); everything else with 401.
                let refused = status == StatusCode::UNAUTHORIZED
                    || (ep.name.starts_with("GET /auth")
                        || ep.name.starts_with("PUT /auth")
                        || ep.name.starts_with("POST /auth/v1/logout"))
                        && status == StatusCode::FORBIDDEN
                        && (body.contains("bad_jwt") || body.contains("session_not_found"));
                if !refused {
                    problems.push(format!("{} with {}: expected 401, got {status} {body}", ep.name, cred.name));
                }
            } else if ep.reads {
                // Accepted credentials of someone who is not a member: nothing to see.
                let refused = status.is_client_error();
                let empty = status.is_success() && body.trim() == "[]";
                if !(refused || empty) {
                    problems.push(format!("{} with {}: {status} leaked {body}", ep.name, cred.name));
                }
            } else if status.is_success() {
                let reply: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                // PATCH/DELETE under RLS answer success with no row; the snapshot decides.
                let wrote_nothing = before == after && (reply == json!([]) || reply.is_null() || body.is_empty());
                if !wrote_nothing {
                    problems.push(format!("{} with {}: accepted ({status} {body})", ep.name, cred.name));
                }
            }
        }
    }
    // Nothing of it reached the conversation's member.
    let heard = drain_until_sentinel(&w, &mut member, &format!("typing:{}", w.conv)).await;
    if let Some(leak) = heard.iter().find(|r| mentions_mark(r)) {
        problems.push(format!("a member received a hostile frame: {leak:?}"));
    }
    for (ep, cred, status) in &table {
        println!("{status}  {ep:<32} {cred}");
    }
    println!("{} cases", table.len());
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    w.server.stop().await;
}

#[tokio::test]
async fn the_realtime_handshake_join_and_access_token_refuse_bad_credentials() {
    let w = world().await;
    let mut member = member_socket(&w).await;
    let mut problems = Vec::new();
    let mut tried = 0;
    let topic = format!("realtime:messages:{}", w.conv);
    let config = json!({"broadcast": {"self": false}, "postgres_changes": [
        {"event": "*", "schema": "public", "table": "messages", "filter": format!("conversation_id=eq.{}", w.conv)}
    ]});
    let mut intruders = Vec::new();
    for cred in &w.creds {
        // The handshake: the API key decides (bearer tokens travel in frames).
        if let Some(key) = &cred.apikey {
            tried += 1;
            let resp = reqwest::get(format!("{}/realtime/v1/websocket?apikey={key}&vsn=2.0.0", w.server.url)).await.unwrap();
            let key_is_good = cred.name == "anon key only" || cred.bearer.is_some();
            if !key_is_good && resp.status() != StatusCode::UNAUTHORIZED {
                problems.push(format!("handshake with {}: {}", cred.name, resp.status()));
            }
        } else {
            tried += 1;
            let ws = w.server.url.replacen("http", "ws", 1);
            if tokio_tungstenite::connect_async(format!("{ws}/realtime/v1/websocket?vsn=2.0.0")).await.is_ok() {
                problems.push("handshake without a key was accepted".into());
            }
        }
        // The join, on a socket with the valid anon key, with the bad token as access_token.
        let Some(token) = &cred.bearer else { continue };
        tried += 1;
        let mut s = TestSocket::connect(&w.server.url, &w.server.anon_key, Vsn::V2).await;
        let room_s = sentinel_room(&mut s).await;
        let reply = s.join(&topic, config.clone(), Some(token)).await;
        if reply.payload["status"] != "error" {
            problems.push(format!("join of {topic} with {}: {}", cred.name, reply.payload));
        }
        // access_token on Alice's joined channel, switched to the bad one.
        tried += 1;
        let mut a = TestSocket::connect(&w.server.url, &w.server.anon_key, Vsn::V2).await;
        let room_a = sentinel_room(&mut a).await;
        let reply = a.join(&topic, config.clone(), Some(&w.alice.access_token)).await;
        assert_eq!(reply.payload["status"], "ok", "alice joins her conversation");
        a.push(&topic, None, "access_token", json!({"access_token": token})).await;
        // Valid credentials of a non-member must lose the members-only channel; invalid ones
        // must lose it too, or be ignored while Alice's own token stays in force.
        intruders.push((cred.name, s, room_s));
        intruders.push((cred.name, a, room_a));
    }
    // Alice inserts a message with the mark and broadcasts it: only the member may hear it.
    let resp = w
        .server
        .request(Method::POST, "/rest/v1/messages", Some(&w.alice))
        .json(&json!({"conversation_id": w.conv, "sender_id": w.alice.id, "content": MARK, "type": "text"}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let got = member.expect(WAIT, |r| matches!(r, Received::Frame(f) if f.event == "postgres_changes")).await;
    assert!(got.is_some(), "the member receives the change");
    for (name, mut s, room) in intruders {
        let heard = drain_until_sentinel(&w, &mut s, &room).await;
        // Alice's own socket (with her token switched) must not keep hearing as someone else.
        let leaks: Vec<&Received> = heard
            .iter()
            .filter(|r| matches!(r, Received::Frame(f) if f.event == "postgres_changes" && f.topic.contains(&w.conv.to_string())))
            .collect();
        if !leaks.is_empty() && w.creds.iter().any(|c| c.name == name && c.valid) {
            problems.push(format!("{name}: a socket with these credentials received {leaks:?}"));
        }
        let _ = s.close().await;
    }
    println!("{tried} realtime credential cases");
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    w.server.stop().await;
}

#[tokio::test]
async fn topics_aimed_at_another_conversation_deliver_nothing() {
    let w = world().await;
    let eve = w.server.signup("Eve", "customer").await;
    let mut member = member_socket(&w).await;
    let conv = w.conv.to_string();
    let upper = conv.to_uppercase();
    let variants = [
        format!("realtime:messages:{conv}"),
        format!("realtime:typing:{conv}"),
        format!("realtime:presence:{conv}"),
        format!("realtime:Messages:{conv}"),
        format!("realtime:MESSAGES:{conv}"),
        format!("realtime:messages:{upper}"),
        format!("realtime: messages:{conv}"),
        format!("realtime:messages: {conv}"),
        format!("realtime:messages:{conv} "),
        format!("realtime:messages:{conv}\n"),
        format!("realtime:messages:{{{conv}}}"),
        format!("realtime:messages:urn:uuid:{conv}"),
        format!("realtime:messages:{}", conv.replace('-', "")),
        format!("realtime:realtime:messages:{conv}"),
        format!("messages:{conv}"),
        format!("realtime:messages:{conv}:x"),
        format!("realtime:typing:{conv}/.."),
    ];
    let mut problems = Vec::new();
    let mut sockets = Vec::new();
    for topic in &variants {
        let mut s = TestSocket::connect(&w.server.url, &w.server.anon_key, Vsn::V2).await;
        let config = json!({"broadcast": {"self": false}, "presence": {"key": eve.id}, "postgres_changes": [
            {"event": "*", "schema": "public", "table": "messages", "filter": format!("conversation_id=eq.{conv}")},
            {"event": "*", "schema": "public", "table": "messages"}
        ]});
        let reply = s.join(topic, config, Some(&eve.access_token)).await;
        let members_topic = topic == &format!("realtime:messages:{conv}")
            || topic == &format!("realtime:typing:{conv}")
            || topic == &format!("realtime:presence:{conv}")
            || topic == &format!("realtime:messages:{upper}");
        if members_topic && reply.payload["status"] != "error" {
            problems.push(format!("outsider joined {topic:?}: {}", reply.payload));
        }
        println!("{:<6} {topic:?}", reply.payload["status"].as_str().unwrap_or("?"));
        // Whether refused or joined as a room of its own, nothing of the conversation may arrive.
        let room = sentinel_room(&mut s).await;
        sockets.push((topic.clone(), s, room));
    }
    // Alice writes, broadcasts typing and tracks presence in her conversation.
    let resp = w
        .server
        .request(Method::POST, "/rest/v1/messages", Some(&w.alice))
        .json(&json!({"conversation_id": w.conv, "sender_id": w.alice.id, "content": MARK, "type": "text"}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    for sub in [format!("typing:{conv}"), format!("messages:{conv}")] {
        let resp = w
            .server
            .request(Method::POST, "/realtime/v1/api/broadcast", Some(&w.alice))
            .json(&json!({"messages": [{"topic": sub, "event": "typing", "payload": {"m": MARK}}]}))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
    }
    assert!(member.expect(WAIT, |r| matches!(r, Received::Frame(f) if f.event == "postgres_changes")).await.is_some());
    for (topic, mut s, room) in sockets {
        let heard = drain_until_sentinel(&w, &mut s, &room).await;
        if let Some(leak) = heard.iter().find(|r| mentions_mark(r)) {
            problems.push(format!("{topic:?}: outsider received {leak:?}"));
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    w.server.stop().await;
}

/// One SQL-ish request as Alice (a member, so nothing but the SQL is wrong).
struct Injection {
    method: Method,
    path: String,
    body: Option<Value>,
}

#[tokio::test]
async fn sql_through_filters_order_select_on_conflict_columns_and_rpc_arguments_is_only_data() {
    let w = world().await;
    let conv = w.conv;
    let sql = [
        "x';drop table public.messages;--",
        "1); delete from public.messages; --",
        "\" or 1=1 --",
        "' or '1'='1",
        "$1",
        "$$; drop table public.messages; $$",
        "(select encrypted_password from auth.users limit 1)",
        "null::text); select pg_sleep(0",
        "\\x00",
        "%00",
        "\u{0}",
    ];
    let enc = |s: &str| {
        let mut out = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    };
    let mut cases: Vec<Injection> = Vec::new();
    let get = |path: String| Injection { method: Method::GET, path, body: None };
    for raw in sql {
        let v = enc(raw);
        let base = format!("/rest/v1/messages?conversation_id=eq.{conv}");
        for op in ["eq", "neq", "gt", "like", "ilike", "is", "in"] {
            let value = if op == "in" { format!("({v},{v})") } else { v.clone() };
            cases.push(get(format!("{base}&content={op}.{value}")));
        }
        cases.push(get(format!("{base}&or=(content.eq.{v},id.eq.{v})")));
        cases.push(get(format!("{base}&and=(content.eq.{v},not.content.is.null)")));
        cases.push(get(format!("{base}&{v}=eq.1")));
        cases.push(get(format!("{base}&order={v}")));
        cases.push(get(format!("{base}&order=content.{v}")));
        cases.push(get(format!("{base}&select={v}")));
        cases.push(get(format!("{base}&select=id,x:{v}")));
        cases.push(get(format!("{base}&select=*,sender:sender_id({v})")));
        cases.push(get(format!("{base}&limit={v}")));
        cases.push(get(format!("{base}&offset={v}")));
        let row = json!({"id": Uuid::now_v7(), "conversation_id": conv, "sender_id": w.alice.id, "content": raw, "type": "text"});
        for q in
            [format!("on_conflict={v}"), format!("columns={v}"), format!("columns=content,{v}"), format!("on_conflict=id,{v}")]
        {
            cases.push(Injection { method: Method::POST, path: format!("/rest/v1/messages?{q}"), body: Some(row.clone()) });
        }
        cases.push(Injection {
            method: Method::POST,
            path: "/rest/v1/rpc/search_profiles".into(),
            body: Some(json!({"p_query": raw})),
        });
        cases.push(Injection {
            method: Method::POST,
            path: "/rest/v1/rpc/get_unread_message_count".into(),
            body: Some(json!({"p_conversation_id": raw, "p_user_id": w.alice.id})),
        });
        cases.push(Injection {
            method: Method::POST,
            path: "/rest/v1/rpc/create_conversation".into(),
            body: Some(json!({"p_type": raw, "p_title": raw, "p_member_ids": [raw]})),
        });
        cases.push(Injection {
            method: Method::POST,
            path: "/rest/v1/rpc/search_profiles".into(),
            body: Some(json!({"p_query": "x", raw: 1})),
        });
        cases.push(get(format!("/rest/v1/rpc/search_profiles?p_query={v}")));
        cases.push(Injection {
            method: Method::PATCH,
            path: format!("/rest/v1/messages?id=eq.{v}"),
            body: Some(json!({"content": "geändert"})),
        });
        cases.push(Injection { method: Method::DELETE, path: format!("/rest/v1/messages?content=eq.{v}"), body: None });
        cases.push(get(format!("/rest/v1/{v}")));
        cases.push(get(format!("/rest/v1/rpc/{v}")));
    }
    let before = snapshot(&w.server).await;
    let alice_cred =
        Cred { name: "alice", apikey: Some(w.server.anon_key.clone()), bearer: Some(w.alice.access_token.clone()), valid: true };
    let mut problems = Vec::new();
    let mut by_status: std::collections::BTreeMap<u16, u32> = Default::default();
    for c in &cases {
        let mut req = request(&w.server, c.method.clone(), &c.path, &alice_cred);
        if let Some(b) = &c.body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let mut body = resp.text().await.unwrap_or_default();
        body.truncate(300);
        *by_status.entry(status.as_u16()).or_default() += 1;
        if status.is_server_error() {
            problems.push(format!("{} {}: {status} {body}", c.method, c.path));
        }
        // A value compared as data finds no row (no message has such content, yet).
        let exact = ["content=eq.", "content=like.", "content=ilike.", "content=in."].iter().any(|p| c.path.contains(p));
        if c.method == Method::GET && status.is_success() && exact && body.trim() != "[]" {
            problems.push(format!("{} {}: the value matched rows: {body}", c.method, c.path));
        }
        if status.is_success()
            && (c.method == Method::PATCH || c.method == Method::DELETE)
            && body.trim() != ""
            && body.trim() != "[]"
        {
            problems.push(format!("{} {}: changed rows: {body}", c.method, c.path));
        }
    }
    let after = snapshot(&w.server).await;
    // Inserts of the SQL text as *content* are legitimate data (on_conflict/columns naming
    // real columns): the only differences allowed are new messages whose content is a payload.
    let new_messages: Vec<Value> = after["public.messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !before["public.messages"].as_array().unwrap().contains(m))
        .cloned()
        .collect();
    for m in &new_messages {
        if !sql.contains(&m["content"].as_str().unwrap_or("")) {
            problems.push(format!("unexpected row: {m}"));
        }
    }
    for t in ["public.profiles", "public.conversations", "public.conversation_members", "auth.users", "auth.sessions"] {
        if before[t] != after[t] {
            problems.push(format!("{t} changed"));
        }
    }
    println!("{} SQL-ish cases; statuses {by_status:?}; {} inserted as plain content", cases.len(), new_messages.len());
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    w.server.stop().await;
}

#[tokio::test]
async fn oversized_and_deeply_nested_payloads_are_refused_and_the_server_lives_on() {
    let w = world().await;
    let conv = w.conv;
    let alice_cred =
        Cred { name: "alice", apikey: Some(w.server.anon_key.clone()), bearer: Some(w.alice.access_token.clone()), valid: true };
    let deep_array = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_object = format!("{}1{}", "{\"a\":".repeat(50_000), "}".repeat(50_000));
    let nested_paren = format!("({})", "(".repeat(5_000) + &")".repeat(5_000));
    let big = "x".repeat(3 * 1024 * 1024);
    let before = snapshot(&w.server).await;
    // (method, path, raw body)
    let cases: Vec<(Method, String, Option<String>)> = vec![
        (Method::POST, "/rest/v1/messages".into(), Some(deep_array.clone())),
        (Method::POST, "/rest/v1/messages".into(), Some(deep_object.clone())),
        (Method::POST, "/rest/v1/rpc/search_profiles".into(), Some(deep_object.clone())),
        (Method::POST, "/rest/v1/rpc/search_profiles".into(), Some(format!("{{\"p_query\": {deep_array}}}"))),
        (Method::POST, "/auth/v1/signup".into(), Some(deep_object.clone())),
        (Method::PUT, "/auth/v1/user".into(), Some(format!("{{\"data\": {deep_object}}}"))),
        (Method::POST, "/realtime/v1/api/broadcast".into(), Some(format!("{{\"messages\": {deep_array}}}"))),
        (Method::POST, "/rest/v1/messages".into(), Some(json!({"conversation_id": conv, "sender_id": w.alice.id, "content": big, "type": "text"}).to_string())),
        (Method::POST, "/auth/v1/signup".into(), Some(json!({"email": "a@b.test", "password": big}).to_string())),
        (
            Method::POST,
            "/rest/v1/messages".into(),
            Some(json!({"conversation_id": conv, "sender_id": w.alice.id, "content": "x".repeat(10_001), "type": "text"}).to_string()),
        ),
        (
            Method::POST,
            "/realtime/v1/api/broadcast".into(),
            Some(json!({"messages": [{"topic": format!("typing:{conv}"), "event": "t", "payload": {"m": "x".repeat(1024 * 1024)}}]}).to_string()),
        ),
        (Method::GET, format!("/rest/v1/messages?or={nested_paren}"), None),
        (Method::GET, format!("/rest/v1/messages?select=id,{}", "a(".repeat(3_000) + &")".repeat(3_000)), None),
        (Method::GET, format!("/rest/v1/messages?content=in.({})", vec!["a"; 200_000].join(",")), None),
        (Method::GET, format!("/rest/v1/messages?{}", vec!["content=eq.a"; 20_000].join("&")), None),
    ];
    let mut problems = Vec::new();
    for (method, path, body) in &cases {
        let mut req = request(&w.server, method.clone(), path, &alice_cred).header("content-type", "application/json");
        if let Some(b) = body {
            req = req.body(b.clone());
        }
        let shown = &path[..path.len().min(60)];
        match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                println!("{status}  {method} {shown}… ({} body bytes)", body.as_ref().map_or(0, String::len));
                if !status.is_client_error() {
                    problems.push(format!("{method} {shown}…: {status}, expected a 4xx refusal"));
                }
            }
            // The server may close the connection on an oversized request; it must live on.
            Err(e) => println!("closed  {method} {shown}…: {e}"),
        }
    }
    let after = snapshot(&w.server).await;
    if before != after {
        problems.push("the database changed".into());
    }
    // Realtime: a deeply nested frame and an oversized one end only that socket.
    {
        use tokio_tungstenite::tungstenite::Message;
        let mut s = TestSocket::connect(&w.server.url, &w.server.anon_key, Vsn::V2).await;
        let frame = format!(r#"[null,"1","realtime:x","phx_join",{deep_object}]"#);
        let _ = s.send_raw_checked(Message::Text(frame.into())).await;
        let got = s.recv(WAIT).await;
        println!("deep frame → {got:?}");
        if got.is_none() {
            problems.push("a deeply nested frame got no answer".into());
        }
    }
    let health = w.server.http.get(format!("{}/health", w.server.url)).send().await.expect("health");
    assert_eq!(health.status(), StatusCode::OK, "the server lives on");
    let resp = w
        .server
        .request(Method::GET, &format!("/rest/v1/messages?conversation_id=eq.{conv}"), Some(&w.alice))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "and serves");
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    w.server.stop().await;
}

async fn sign_in(server: &TestServer, email: &str, password: &str) -> (StatusCode, Value) {
    let resp = server
        .request(Method::POST, "/auth/v1/token?grant_type=password", None)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap_or(Value::Null))
}

async fn refresh(server: &TestServer, token: &str) -> (StatusCode, Value) {
    let resp = server
        .request(Method::POST, "/auth/v1/token?grant_type=refresh_token", None)
        .json(&json!({"refresh_token": token}))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn password_guessing_is_limited_across_processes_and_a_replayed_refresh_token_ends_its_family() {
    let no_grace = |c: &mut werkfunk_server::Config| c.auth.refresh_reuse_interval = Duration::ZERO;
    let a = TestServer::start_with(no_grace).await;
    let b = TestServer::start_on(a.db.clone(), no_grace).await;
    let victim = a.signup("Opfer", "customer").await;

    // Guesses alternate between two server processes: the limit is shared (in Postgres).
    let mut limited_after = None;
    for i in 0..60 {
        let server = if i % 2 == 0 { &a } else { &b };
        let (status, body) = sign_in(server, &victim.email, &format!("falsch-{i}-passwort")).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            limited_after = Some(i);
            break;
        }
        assert_eq!(status, StatusCode::BAD_REQUEST, "a wrong password: {body}");
    }
    let limited_after = limited_after.expect("guessing is rate-limited across both processes");
    println!("guessing limited after {limited_after} wrong passwords spread over two processes");
    // From this address, even the right password is refused now — on either process.
    let (status, _) = sign_in(&b, &victim.email, &victim.password).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _) = sign_in(&a, &victim.email, &victim.password).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    // A replayed (rotated) refresh token, outside the reuse interval, ends the whole family.
    let owner = a.signup("Besitzerin", "customer").await;
    let (status, first) = refresh(&a, &owner.refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let current = first["refresh_token"].as_str().unwrap().to_owned();
    let before = snapshot(&a).await;
    let (status, replay) = refresh(&b, &owner.refresh_token).await;
    assert!(status.is_client_error(), "a rotated refresh token is refused: {status} {replay}");
    let (status, after_replay) = refresh(&a, &current).await;
    assert!(status.is_client_error(), "the family's current token is revoked too: {status} {after_replay}");
    let user = a
        .http
        .get(format!("{}/auth/v1/user", a.url))
        .header("apikey", &a.anon_key)
        .bearer_auth(first["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(user.status().is_client_error(), "the session's access token no longer reads /user: {}", user.status());
    let after = snapshot(&a).await;
    assert_ne!(before["auth.sessions"], after["auth.sessions"], "the session is gone");
    b.stop().await;
    a.stop().await;
}

/// "Sign out everywhere else" locks a lost laptop out at once: the token of a session that
/// has ended reads and writes nothing more, even the member's own conversation, on REST and
/// on a realtime join, and the channel it had open is closed — while the device that signed
/// it out goes on. A deleted member's token likewise. (PostgREST and Supabase Realtime would
/// honour such tokens until they expire.)
#[tokio::test]
async fn a_token_whose_session_has_ended_is_refused_even_on_the_members_own_conversation() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let resp = server
        .request(Method::POST, "/auth/v1/token?grant_type=password", None)
        .json(&json!({"email": alice.email, "password": alice.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "Alice signs in on her laptop too");
    let body: Value = resp.json().await.unwrap();
    let laptop = TestUser { access_token: body["access_token"].as_str().unwrap().to_owned(), ..alice.clone() };
    let read = |user: &TestUser| {
        server.request(Method::GET, &format!("/rest/v1/messages?select=id&conversation_id=eq.{conv}"), Some(user)).send()
    };
    let send = |user: &TestUser, content: &str| {
        server
            .request(Method::POST, "/rest/v1/messages", Some(user))
            .json(&json!({"conversation_id": conv, "sender_id": user.id, "content": content}))
            .send()
    };
    assert_eq!(send(&laptop, "vom Laptop").await.unwrap().status(), StatusCode::CREATED, "the laptop writes while signed in");
    let topic = format!("realtime:messages:{conv}");
    let mut open = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    let reply = open.join(&topic, json!({}), Some(&laptop.access_token)).await;
    assert_eq!(reply.payload["status"], "ok", "the laptop has the conversation open");

    // From her phone, Alice signs out every other session.
    let resp = server.request(Method::POST, "/auth/v1/logout?scope=others", Some(&alice)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // The channel the laptop had open is closed at once, not when its token expires.
    let closed = open.expect(WAIT, |r| matches!(r, Received::Frame(f) if f.topic == topic && f.event == "phx_close")).await;
    assert!(closed.is_some(), "the laptop's open channel is closed when its session ends");
    let before = snapshot(&server).await;
    let resp = read(&laptop).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "the laptop's token no longer reads");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "PGRST301", "{body}");
    assert!(body["message"].as_str().unwrap_or("").contains("session"), "the error names the ended session: {body}");
    assert_eq!(send(&laptop, "nach dem Abmelden").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let reply = open.join(&topic, json!({}), Some(&laptop.access_token)).await;
    assert_eq!(reply.payload["status"], "error", "the laptop cannot join again: {}", reply.payload);
    assert_eq!(snapshot(&server).await, before, "nothing was written");

    // The phone goes on.
    let resp = read(&alice).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let rows: Value = resp.json().await.unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "the phone reads the conversation: {rows}");

    // A deleted member's token reads nothing more either.
    assert_eq!(read(&bob).await.unwrap().status(), StatusCode::OK);
    sqlx::query("delete from auth.users where id = $1").bind(bob.id).execute(server.db.pool()).await.unwrap();
    assert_eq!(read(&bob).await.unwrap().status(), StatusCode::UNAUTHORIZED, "a deleted member's token is refused");
    server.stop().await;
}
