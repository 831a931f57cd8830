//! The realtime gateway through a real websocket: joins, postgres_changes under RLS,
//! broadcast, presence, token expiry, members-only topics, and hostile input.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;
use werkfunk_protocol::realtime::{Frame, Vsn};
use werkfunk_testkit::phoenix::{is_event, Received, TestSocket};
use werkfunk_testkit::{TestServer, TestUser};

const WAIT: Duration = Duration::from_secs(10);
/// How long to wait for something that must NOT arrive.
const QUIET: Duration = Duration::from_millis(1500);

fn changes_config(filter: &str) -> Value {
    json!({
        "broadcast": {"ack": false, "self": false},
        "presence": {"key": "", "enabled": false},
        "postgres_changes": [{"event": "*", "schema": "public", "table": "messages", "filter": filter}],
        "private": false
    })
}

async fn send_message(server: &TestServer, user: &TestUser, conversation: Uuid, content: &str) -> StatusCode {
    server
        .request(Method::POST, "/rest/v1/messages", Some(user))
        .json(&json!({"conversation_id": conversation, "sender_id": user.id, "content": content}))
        .send()
        .await
        .unwrap()
        .status()
}

fn change_of(r: &Received) -> Option<&Value> {
    match r {
        Received::Frame(f) if f.event == "postgres_changes" => Some(&f.payload),
        _ => None,
    }
}

#[tokio::test]
async fn postgres_changes_reach_members_and_never_outsiders() {
    let server = TestServer::start().await;
    let alice = server.signup("Alice", "tradesperson").await;
    let bob = server.signup("Bob", "customer").await;
    let eve = server.signup("Eve", "customer").await;
    let conv = server.conversation("direct", None, &alice, &[&bob]).await;
    let filter = format!("conversation_id=eq.{conv}");

    let mut bob_ws = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    let reply = bob_ws.join(&format!("realtime:messages:{conv}"), changes_config(&filter), Some(&bob.access_token)).await;
    assert_eq!(reply.payload["status"], "ok", "{reply:?}");
    let bindings = reply.payload["response"]["postgres_changes"].as_array().unwrap().clone();
    assert_eq!(bindings.len(), 1);
    let id = bindings[0]["id"].as_u64().unwrap();
    assert_ne!(id, 0);
    assert_eq!(bindings[0]["filter"], json!(filter));
    let system = bob_ws.expect(WAIT, is_event(&format!("realtime:messages:{conv}"), "system")).await.expect("system message");
    let Received::Frame(system) = system else { unreachable!() };
    assert_eq!(system.payload["message"], "Subscribed to PostgreSQL");
    bob_ws.expect(WAIT, is_event(&format!("realtime:messages:{conv}"), "presence_state")).await.expect("presence_state");

    // Eve subscribes to the same table and filter on a public topic: RLS must hide the rows.
    let mut eve_ws = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    let reply = eve_ws.join("realtime:snoop", changes_config(&filter), Some(&eve.access_token)).await;
    assert_eq!(reply.payload["status"], "ok");

    assert_eq!(send_message(&server, &alice, conv, "Hallo Bob").await, StatusCode::CREATED);
    let got = bob_ws.expect(WAIT, |r| change_of(r).is_some()).await.expect("bob gets the insert");
    let change = change_of(&got).unwrap();
    assert_eq!(change["ids"], json!([id]));
    assert_eq!(change["data"]["type"], "INSERT");
    assert_eq!(change["data"]["table"], "messages");
    assert_eq!(change["data"]["record"]["content"], "Hallo Bob");
    assert!(change["data"]["columns"].as_array().unwrap().iter().any(|c| c["name"] == "content"));
    assert!(eve_ws.expect(QUIET, |r| change_of(r).is_some()).await.is_none(), "an outsider never sees the row");

    // UPDATE (an edit) and a filter that excludes other conversations.
    let other = server.conversation("direct", None, &alice, &[&eve]).await;
    assert_eq!(send_message(&server, &alice, other, "nicht für Bob").await, StatusCode::CREATED);
    let message_id = change["data"]["record"]["id"].as_str().unwrap().to_owned();
    let resp = server
        .request(Method::PATCH, &format!("/rest/v1/messages?id=eq.{message_id}"), Some(&alice))
        .json(&json!({"content": "Hallo Bob!"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let got = bob_ws.expect(WAIT, |r| change_of(r).is_some()).await.expect("bob gets the update");
    let change = change_of(&got).unwrap();
    assert_eq!(change["data"]["type"], "UPDATE", "the other conversation's insert is filtered out: {change}");
    assert_eq!(change["data"]["record"]["content"], "Hallo Bob!");
    server.stop().await;
}

#[tokio::test]
async fn membership_changes_take_effect_at_once_and_deletes_carry_the_conversation() {
    let server = TestServer::start().await;
    let alice = server.signup("Alice", "tradesperson").await;
    let bob = server.signup("Bob", "customer").await;
    let carl = server.signup("Carl", "customer").await;
    let conv = server.conversation("group", Some("Baustelle"), &alice, &[&bob]).await;
    let filter = format!("conversation_id=eq.{conv}");

    // Carl listens on a public topic; he is not a member yet.
    let mut carl_ws = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    assert_eq!(carl_ws.join("realtime:carl", changes_config(&filter), Some(&carl.access_token)).await.payload["status"], "ok");
    // Bob listens on the members-only topic.
    let mut bob_ws = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    let topic = format!("realtime:messages:{conv}");
    assert_eq!(bob_ws.join(&topic, changes_config(&filter), Some(&bob.access_token)).await.payload["status"], "ok");

    assert_eq!(send_message(&server, &alice, conv, "eins").await, StatusCode::CREATED);
    assert!(bob_ws.expect(WAIT, |r| change_of(r).is_some()).await.is_some());
    assert!(carl_ws.expect(QUIET, |r| change_of(r).is_some()).await.is_none());

    // Carl is added: he starts receiving.
    let resp = server
        .request(Method::POST, "/rest/v1/rpc/add_conversation_members", Some(&alice))
        .json(&json!({"p_conversation_id": conv, "p_user_ids": [carl.id]}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    assert_eq!(send_message(&server, &alice, conv, "zwei").await, StatusCode::CREATED);
    let got = carl_ws.expect(WAIT, |r| change_of(r).is_some()).await.expect("an added member receives");
    assert_eq!(change_of(&got).unwrap()["data"]["record"]["content"], "zwei");
    assert!(bob_ws.expect(WAIT, |r| change_of(r).is_some()).await.is_some());

    // Bob is removed: his members-only channel is closed and he receives nothing more.
    let resp = server
        .request(Method::POST, "/rest/v1/rpc/remove_conversation_member", Some(&alice))
        .json(&json!({"p_conversation_id": conv, "p_user_id": bob.id}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let closed = bob_ws.expect(WAIT, is_event(&topic, "phx_close")).await;
    assert!(closed.is_some(), "a removed member's conversation channel closes");
    assert_eq!(send_message(&server, &alice, conv, "drei").await, StatusCode::CREATED);
    assert!(bob_ws.expect(QUIET, |r| change_of(r).is_some()).await.is_none());

    // A hard DELETE reaches those who could see the row, with its key and conversation.
    let got = carl_ws.expect(WAIT, |r| change_of(r).is_some_and(|c| c["data"]["record"]["content"] == "drei")).await.unwrap();
    let id = change_of(&got).unwrap()["data"]["record"]["id"].clone();
    sqlx::query("delete from public.messages where id = $1::uuid")
        .bind(id.as_str().unwrap())
        .execute(server.db.pool())
        .await
        .unwrap();
    let got = carl_ws.expect(WAIT, |r| change_of(r).is_some_and(|c| c["data"]["type"] == "DELETE")).await.expect("delete");
    let old = &change_of(&got).unwrap()["data"]["old_record"];
    assert_eq!(old["id"], id);
    assert_eq!(old["conversation_id"], json!(conv));
    assert!(old.get("content").is_none(), "a delete carries the key, not the content");
    server.stop().await;
}

#[tokio::test]
async fn broadcast_self_ack_and_binary_frames() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let topic = format!("realtime:typing:{conv}");
    let config = |own: bool| json!({"broadcast": {"ack": true, "self": own}, "presence": {"key": ""}, "postgres_changes": []});

    let mut a = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    let mut b = TestSocket::connect(&server.url, &server.anon_key, Vsn::V1).await;
    assert_eq!(a.join(&topic, config(false), Some(&alice.access_token)).await.payload["status"], "ok");
    assert_eq!(b.join(&topic, config(true), Some(&bob.access_token)).await.payload["status"], "ok");

    // vsn 2: a kind-3 binary push from Alice.
    let (join_ref, r) = ("1", "9");
    let mut frame = vec![3u8, join_ref.len() as u8, r.len() as u8, topic.len() as u8, 6, 0, 1];
    frame.extend_from_slice(join_ref.as_bytes());
    frame.extend_from_slice(r.as_bytes());
    frame.extend_from_slice(topic.as_bytes());
    frame.extend_from_slice(b"typing");
    frame.extend_from_slice(br#"{"userId":"a"}"#);
    a.send_raw(tokio_tungstenite::tungstenite::Message::Binary(frame.into())).await;
    // Bob (vsn 1) gets it as text; Alice (no self) does not.
    let got = b.expect(WAIT, is_event(&topic, "broadcast")).await.expect("bob hears alice");
    let Received::Frame(f) = got else { unreachable!() };
    assert_eq!(f.payload, json!({"type": "broadcast", "event": "typing", "payload": {"userId": "a"}}));
    let ack = a.expect(WAIT, is_event(&topic, "phx_reply")).await;
    assert!(ack.is_some(), "ack:true is answered");
    assert!(a.expect(QUIET, |r| matches!(r, Received::Binary { .. })).await.is_none(), "no echo without self");

    // vsn 1 text push from Bob with self: both get it; Alice as a binary kind-4 frame.
    b.push(&topic, Some("1"), "broadcast", json!({"type": "broadcast", "event": "typing", "payload": {"userId": "b"}})).await;
    let got = a.expect(WAIT, |r| matches!(r, Received::Binary { .. })).await.expect("alice hears bob");
    assert_eq!(got, Received::Binary { topic: topic.clone(), event: "typing".into(), payload: json!({"userId": "b"}) });
    assert!(b.expect(WAIT, is_event(&topic, "broadcast")).await.is_some(), "self:true echoes");

    // The REST fallback works for members and is refused to outsiders.
    let resp = server
        .request(Method::POST, "/realtime/v1/api/broadcast", Some(&bob))
        .json(&json!({"messages": [{"topic": format!("typing:{conv}"), "event": "typing", "payload": {"userId": "rest"}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let got = a.expect(WAIT, |r| matches!(r, Received::Binary { .. })).await.unwrap();
    assert!(matches!(got, Received::Binary { payload, .. } if payload["userId"] == "rest"));
    let eve = server.signup("Eve", "customer").await;
    let resp = server
        .request(Method::POST, "/realtime/v1/api/broadcast", Some(&eve))
        .json(&json!({"messages": [{"topic": format!("typing:{conv}"), "event": "typing", "payload": {}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    server.stop().await;
}

#[tokio::test]
async fn presence_state_diffs_and_leave_on_disconnect() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let topic = format!("realtime:presence:{conv}");
    let config = |key: &Uuid| json!({"presence": {"key": key.to_string(), "enabled": false}, "postgres_changes": []});

    let mut a = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    assert_eq!(a.join(&topic, config(&alice.id), Some(&alice.access_token)).await.payload["status"], "ok");
    let Some(Received::Frame(state)) = a.expect(WAIT, is_event(&topic, "presence_state")).await else { panic!("presence_state") };
    assert_eq!(state.payload, json!({}), "sent even when empty");
    let r = a
        .push(
            &topic,
            Some("1"),
            "presence",
            json!({"type": "presence", "event": "track", "payload": {"user_id": alice.id, "status": "online"}}),
        )
        .await;
    let reply =
        a.expect(WAIT, |x| matches!(x, Received::Frame(f) if f.event == "phx_reply" && f.reference.as_deref() == Some(&r))).await;
    assert!(
        matches!(reply, Some(Received::Frame(f)) if f.payload["status"] == "ok"),
        "track is answered ok even with presence disabled"
    );
    assert!(a.expect(WAIT, is_event(&topic, "presence_diff")).await.is_some(), "the tracker sees its own join");

    let mut b = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    assert_eq!(b.join(&topic, config(&bob.id), Some(&bob.access_token)).await.payload["status"], "ok");
    let Some(Received::Frame(state)) = b.expect(WAIT, is_event(&topic, "presence_state")).await else { panic!() };
    assert_eq!(state.payload[alice.id.to_string()]["metas"][0]["status"], "online");
    assert!(state.payload[alice.id.to_string()]["metas"][0]["phx_ref"].is_string());

    a.close().await;
    let Some(Received::Frame(diff)) = b.expect(WAIT, is_event(&topic, "presence_diff")).await else { panic!("leave") };
    assert!(diff.payload["leaves"].get(alice.id.to_string()).is_some());

    // Outsiders cannot join (and so cannot hear or track) a conversation's topics.
    let eve = server.signup("Eve", "customer").await;
    let mut e = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    let reply = e.join(&topic, config(&eve.id), Some(&eve.access_token)).await;
    assert_eq!(reply.payload["status"], "error");
    assert!(reply.payload["response"]["reason"].as_str().unwrap().starts_with("Unauthorized"));
    let reply = e.join(&topic, config(&eve.id), None).await;
    assert_eq!(reply.payload["status"], "error", "the anon key is not a member either");
    server.stop().await;
}

#[tokio::test]
async fn expired_tokens_close_channels_and_fresh_ones_keep_them() {
    let server = TestServer::start_with(|c| c.jwt_exp = Duration::from_secs(4)).await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let filter = format!("conversation_id=eq.{conv}");

    let mut kept = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    let kept_topic = format!("realtime:messages:{conv}");
    assert_eq!(kept.join(&kept_topic, changes_config(&filter), Some(&bob.access_token)).await.payload["status"], "ok");
    let mut lapsed = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    assert_eq!(lapsed.join("realtime:lapsed", changes_config(&filter), Some(&bob.access_token)).await.payload["status"], "ok");

    // Refresh Bob's session and hand the new token to the first channel only.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let resp: Value = server
        .request(Method::POST, "/auth/v1/token?grant_type=refresh_token", None)
        .json(&json!({"refresh_token": bob.refresh_token}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fresh = resp["access_token"].as_str().unwrap();
    kept.push(&kept_topic, Some("1"), "access_token", json!({"access_token": fresh})).await;

    let expiry = |r: &Received| matches!(r, Received::Frame(f) if f.event == "system" && f.payload["status"] == "error");
    let Some(Received::Frame(sys)) = lapsed.expect(WAIT, expiry).await else { panic!("expiry") };
    assert_eq!(sys.payload["extension"], "system");
    assert!(sys.payload["message"].as_str().unwrap().starts_with("Token has expired"));
    assert!(lapsed.expect(WAIT, is_event("realtime:lapsed", "phx_close")).await.is_some());

    // Past the first token's expiry the refreshed channel still delivers.
    let alice_fresh: Value = server
        .request(Method::POST, "/auth/v1/token?grant_type=password", None)
        .json(&json!({"email": alice.email, "password": alice.password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut a = alice.clone();
    a.access_token = alice_fresh["access_token"].as_str().unwrap().to_owned();
    assert_eq!(send_message(&server, &a, conv, "noch da?").await, StatusCode::CREATED);
    let got = kept.expect(WAIT, |r| change_of(r).is_some() || matches!(r, Received::Frame(f) if f.event == "phx_close")).await;
    assert!(got.as_ref().and_then(change_of).is_some(), "refreshed channel stays joined: {got:?}");

    // A join with an expired token is refused with Supabase's reason.
    let reply = lapsed.join("realtime:again", changes_config(&filter), Some(&bob.access_token)).await;
    assert!(reply.payload["response"]["reason"].as_str().unwrap().starts_with("InvalidJWTExpiration: Token has expired"));
    server.stop().await;
}

#[tokio::test]
async fn hostile_input_is_answered_and_harms_no_one() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let topic = format!("realtime:typing:{conv}");

    // A bystander who must notice nothing.
    let mut bystander = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    assert_eq!(
        bystander.join(&topic, json!({"broadcast": {"self": true}}), Some(&bob.access_token)).await.payload["status"],
        "ok"
    );

    // Handshake: missing and forged keys.
    let ws_url = server.url.replacen("http", "ws", 1);
    assert!(tokio_tungstenite::connect_async(format!("{ws_url}/realtime/v1/websocket?vsn=2.0.0")).await.is_err());
    let forged = werkfunk_server::jwt::Keys::new("a completely different secret of enough length")
        .api_key(werkfunk_server::jwt::DbRole::Anon, werkfunk_server::jwt::now());
    let resp = reqwest::get(format!("{}/realtime/v1/websocket?apikey={forged}&vsn=2.0.0", server.url)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "Failed to validate JWT signature");

    let mut evil = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    use tokio_tungstenite::tungstenite::Message;
    let malformed = |r: &Received| matches!(r, Received::Frame(f) if f.event == "phx_error" && f.topic == "phoenix");
    for bad in ["not json", r#"["1","2","realtime:x"]"#, r#"{"topic":"x"}"#, r#"[1,2,3,4,5]"#] {
        evil.send_raw(Message::Text(bad.into())).await;
        assert!(evil.expect(WAIT, malformed).await.is_some(), "{bad} is answered");
    }
    // Binary frame whose length bytes lie, and a binary kind the client may not send.
    evil.send_raw(Message::Binary(vec![3u8, 1, 1, 200, 1, 0, 1, b'1', b'2', b'x'].into())).await;
    assert!(evil.expect(WAIT, malformed).await.is_some());
    evil.send_raw(Message::Binary(vec![4u8, 0, 0, 0, 1].into())).await;
    assert!(evil.expect(WAIT, malformed).await.is_some());
    // Unknown event on an unjoined topic, and on the socket topic.
    evil.push("realtime:nowhere", Some("1"), "broadcast", json!({})).await;
    let Some(Received::Frame(r)) = evil.expect(WAIT, is_event("realtime:nowhere", "phx_reply")).await else { panic!() };
    assert_eq!(r.payload["response"]["reason"], "unmatched topic");
    // `realtime:` alone, a filter on a column that does not exist, a forged join token.
    let reply = evil.join("realtime:", json!({}), None).await;
    assert!(reply.payload["response"]["reason"].as_str().unwrap().starts_with("TopicNameRequired"));
    let reply = evil.join("realtime:f", changes_config("no_such_column=eq.1"), None).await;
    assert_eq!(reply.payload["status"], "error");
    assert!(reply.payload["response"]["reason"].as_str().unwrap().contains("no_such_column"));
    let forged_user = werkfunk_server::jwt::Keys::new("a completely different secret of enough length")
        .sign(&json!({"sub": alice.id, "role": "authenticated", "exp": werkfunk_server::jwt::now() + 60}));
    let reply = evil.join(&topic, json!({}), Some(&forged_user)).await;
    assert!(reply.payload["response"]["reason"].as_str().unwrap().starts_with("Unauthorized"));
    // 200 channels on one socket: the first 100 join, the rest are refused.
    let mut refused = 0;
    for i in 0..200 {
        let reply = evil.join(&format!("realtime:room-{i}"), json!({}), None).await;
        if reply.payload["status"] == "error" {
            assert_eq!(reply.payload["response"]["reason"], "ChannelRateLimitReached: Too many channels");
            refused += 1;
        }
    }
    assert_eq!(refused, 100);
    // An oversized frame ends only that socket.
    let big = format!(
        r#"[null,"1","realtime:room-1","broadcast",{{"type":"broadcast","event":"x","payload":"{}"}}]"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let _ = evil.send_raw_checked(Message::Text(big.into())).await;
    assert_eq!(evil.expect(WAIT, |r| *r == Received::Closed).await, Some(Received::Closed), "the server ends that socket");

    // The bystander still works and heard nothing of it.
    let mut alice_ws = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    assert_eq!(alice_ws.join(&topic, json!({}), Some(&alice.access_token)).await.payload["status"], "ok");
    alice_ws.push(&topic, Some("1"), "broadcast", json!({"type": "broadcast", "event": "typing", "payload": {"ok": 1}})).await;
    let got = bystander.expect(WAIT, |r| matches!(r, Received::Binary { .. })).await;
    assert_eq!(got, Some(Received::Binary { topic: topic.clone(), event: "typing".into(), payload: json!({"ok": 1}) }));
    let heartbeat = Frame {
        join_ref: None,
        reference: Some("77".into()),
        topic: "phoenix".into(),
        event: "heartbeat".into(),
        payload: json!({}),
    };
    bystander.send(&heartbeat).await;
    let Some(Received::Frame(r)) = bystander.expect(WAIT, is_event("phoenix", "phx_reply")).await else { panic!("heartbeat") };
    assert_eq!(r.payload["status"], "ok");
    server.stop().await;
}

#[tokio::test]
async fn two_server_processes_behave_as_one() {
    let a_server = TestServer::start().await;
    let b_server = a_server.start_peer().await;
    let alice = a_server.signup("Alice", "tradesperson").await;
    let bob = a_server.signup("Bob", "customer").await;
    let eve = a_server.signup("Eve", "customer").await;
    let conv = a_server.conversation("direct", None, &alice, &[&bob]).await;
    let filter = format!("conversation_id=eq.{conv}");
    // Let the two processes hear each other's hello.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let topic = format!("realtime:messages:{conv}");
    let config = |key: &Uuid| {
        json!({"broadcast": {"self": false}, "presence": {"key": key.to_string()},
               "postgres_changes": [{"event": "INSERT", "schema": "public", "table": "messages", "filter": filter}]})
    };
    let mut a = TestSocket::connect(&a_server.url, &a_server.anon_key, Vsn::V2).await;
    let mut b = TestSocket::connect(&b_server.url, &b_server.anon_key, Vsn::V1).await;
    let mut e = TestSocket::connect(&b_server.url, &b_server.anon_key, Vsn::V2).await;
    assert_eq!(a.join(&topic, config(&alice.id), Some(&alice.access_token)).await.payload["status"], "ok");
    a.push(&topic, Some("1"), "presence", json!({"type": "presence", "event": "track", "payload": {"status": "online"}})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.join(&topic, config(&bob.id), Some(&bob.access_token)).await.payload["status"], "ok");
    assert_eq!(e.join("realtime:eve", config(&eve.id), Some(&eve.access_token)).await.payload["status"], "ok");

    // Presence tracked on A is in B's state.
    let Some(Received::Frame(state)) = b.expect(WAIT, is_event(&topic, "presence_state")).await else { panic!() };
    assert_eq!(state.payload[alice.id.to_string()]["metas"][0]["status"], "online", "{state:?}");

    // A change written through B reaches the subscriber on A, and the one on B; not Eve.
    let resp = b_server
        .request(Method::POST, "/rest/v1/messages", Some(&bob))
        .json(&json!({"conversation_id": conv, "sender_id": bob.id, "content": "über B"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(a.expect(WAIT, |r| change_of(r).is_some()).await.is_some(), "A's subscriber receives");
    assert!(b.expect(WAIT, |r| change_of(r).is_some()).await.is_some(), "B's subscriber receives");
    assert!(e.expect(QUIET, |r| change_of(r).is_some()).await.is_none(), "the outsider on B does not");

    // A broadcast on B reaches A.
    b.push(&topic, Some("1"), "broadcast", json!({"type": "broadcast", "event": "typing", "payload": {"from": "b"}})).await;
    let got = a.expect(WAIT, |r| matches!(r, Received::Binary { .. })).await;
    assert_eq!(got, Some(Received::Binary { topic: topic.clone(), event: "typing".into(), payload: json!({"from": "b"}) }));

    // Alice disconnects from A: B sees her leave.
    a.close().await;
    let leave = |r: &Received| matches!(r, Received::Frame(f) if f.event == "presence_diff" && f.payload["leaves"].get(alice.id.to_string()).is_some());
    assert!(b.expect(WAIT, leave).await.is_some());
    b_server.stop().await;
    a_server.stop().await;
}

#[tokio::test]
async fn a_flooding_socket_loses_its_channels_and_others_carry_on() {
    let server = TestServer::start().await;
    let mut flood = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    let mut calm = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    assert_eq!(flood.join("realtime:lobby", json!({}), None).await.payload["status"], "ok");
    assert_eq!(calm.join("realtime:lobby", json!({}), None).await.payload["status"], "ok");
    // Far more frames in one burst than the 2,500 per second a socket may send.
    for _ in 0..4000 {
        let f = Frame { join_ref: None, reference: None, topic: "phoenix".into(), event: "heartbeat".into(), payload: json!({}) };
        flood.send(&f).await;
    }
    let limited = |r: &Received| matches!(r, Received::Frame(f) if f.event == "system" && f.payload["message"] == "Too many messages per second");
    assert!(flood.expect(WAIT, limited).await.is_some());
    assert!(flood.expect(WAIT, is_event("realtime:lobby", "phx_close")).await.is_some());
    // The calm socket still hears broadcasts on the topic.
    let mut speaker = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    assert_eq!(speaker.join("realtime:lobby", json!({}), None).await.payload["status"], "ok");
    speaker.push("realtime:lobby", Some("1"), "broadcast", json!({"type": "broadcast", "event": "hallo", "payload": {}})).await;
    assert!(calm.expect(WAIT, |r| matches!(r, Received::Binary { event, .. } if event == "hallo")).await.is_some());
    server.stop().await;
}

#[tokio::test]
async fn a_lost_change_feed_makes_channels_rejoin_instead_of_missing_changes() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let topic = format!("realtime:messages:{conv}");
    let mut bob_ws = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    assert_eq!(
        bob_ws.join(&topic, changes_config(&format!("conversation_id=eq.{conv}")), Some(&bob.access_token)).await.payload
            ["status"],
        "ok"
    );
    // A broadcast-only channel has nothing to miss and is left alone.
    let mut calm = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    assert_eq!(calm.join("realtime:lobby", json!({}), None).await.payload["status"], "ok");

    // Cut the server's LISTEN connection, as a Postgres restart or a network blip would.
    let cut: i64 = sqlx::query_scalar(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity
         where datname = current_database() and pid <> pg_backend_pid() and query ilike 'listen%'",
    )
    .fetch_one(server.db.pool())
    .await
    .unwrap();
    assert!(cut >= 1, "the listener connection was found");
    assert!(bob_ws.expect(WAIT, is_event(&topic, "phx_error")).await.is_some(), "the channel is errored, not left silent");
    assert!(calm.expect(QUIET, is_event("realtime:lobby", "phx_error")).await.is_none());

    // Rejoined, it receives changes again.
    assert_eq!(
        bob_ws.join(&topic, changes_config(&format!("conversation_id=eq.{conv}")), Some(&bob.access_token)).await.payload
            ["status"],
        "ok"
    );
    assert_eq!(send_message(&server, &alice, conv, "wieder da").await, StatusCode::CREATED);
    let got = bob_ws.expect(WAIT, |r| change_of(r).is_some()).await.expect("delivery after the feed came back");
    assert_eq!(change_of(&got).unwrap()["data"]["record"]["content"], "wieder da");
    server.stop().await;
}

#[tokio::test]
async fn a_subscriber_without_privileges_costs_members_nothing() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let filter = format!("conversation_id=eq.{conv}");
    // Anonymous (the anon key only) on the same table and filter: the anon role may not
    // read messages at all.
    let mut anon = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    assert_eq!(anon.join("realtime:anon", changes_config(&filter), None).await.payload["status"], "ok");
    let mut bob_ws = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    assert_eq!(
        bob_ws.join(&format!("realtime:messages:{conv}"), changes_config(&filter), Some(&bob.access_token)).await.payload
            ["status"],
        "ok"
    );
    assert_eq!(send_message(&server, &alice, conv, "für Bob").await, StatusCode::CREATED);
    assert!(bob_ws.expect(WAIT, |r| change_of(r).is_some()).await.is_some(), "the member still receives");
    assert!(anon.expect(QUIET, |r| change_of(r).is_some()).await.is_none(), "anon receives nothing");
    server.stop().await;
}
