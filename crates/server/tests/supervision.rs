//! The realtime gateway survives its own faults: each long-lived task's database
//! connection (found by its `application_name`) is terminated with `pg_terminate_backend`
//! under a real server, and the channels that could have missed a change are errored, then
//! receive changes again once rejoined, while `/health` and other users' REST carry on.
//! (A task that panics or ends is restarted: `realtime::supervisor`'s unit tests.)

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;
use werkfunk_protocol::realtime::Vsn;
use werkfunk_server::realtime::{GatewayTask, CHANGES_CHANNEL};
use werkfunk_testkit::phoenix::{is_event, Received, TestSocket};
use werkfunk_testkit::{TestServer, TestUser};

const WAIT: Duration = Duration::from_secs(15);
/// How long to wait for something that must NOT arrive.
const QUIET: Duration = Duration::from_millis(1500);

fn changes_config(conversation: Uuid) -> Value {
    json!({
        "broadcast": {"ack": false, "self": false},
        "presence": {"key": "", "enabled": false},
        "postgres_changes": [{"event": "*", "schema": "public", "table": "messages", "filter": format!("conversation_id=eq.{conversation}")}],
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

/// Terminates every connection of `task` to this test's database; returns how many.
async fn terminate(server: &TestServer, task: GatewayTask) -> i64 {
    sqlx::query_scalar(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity
          where datname = current_database() and application_name = $1",
    )
    .bind(task.application_name())
    .fetch_one(server.db.pool())
    .await
    .unwrap()
}

/// Bob, on the realtime socket, joined to his conversation's changes; and a public room
/// with nothing to miss on another socket.
struct Watchers {
    topic: String,
    bob: TestSocket,
    lobby: TestSocket,
}

async fn watchers(server: &TestServer, bob: &TestUser, conv: Uuid) -> Watchers {
    let topic = format!("realtime:messages:{conv}");
    let mut bob_ws = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    assert_eq!(bob_ws.join(&topic, changes_config(conv), Some(&bob.access_token)).await.payload["status"], "ok");
    let mut lobby = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    assert_eq!(lobby.join("realtime:lobby", json!({}), None).await.payload["status"], "ok");
    Watchers { topic, bob: bob_ws, lobby }
}

impl Watchers {
    /// Bob's channel is errored; the public room is left alone.
    async fn errored(&mut self) {
        assert!(
            self.bob.expect(WAIT, is_event(&self.topic, "phx_error")).await.is_some(),
            "the channel is errored, not left silent"
        );
        assert!(
            self.lobby.expect(QUIET, is_event("realtime:lobby", "phx_error")).await.is_none(),
            "a public room has nothing to miss"
        );
    }

    /// Bob rejoins and hears the next message.
    async fn rejoined_and_hearing(&mut self, server: &TestServer, bob: &TestUser, alice: &TestUser, conv: Uuid, content: &str) {
        assert_eq!(self.bob.join(&self.topic, changes_config(conv), Some(&bob.access_token)).await.payload["status"], "ok");
        assert_eq!(send_message(server, alice, conv, content).await, StatusCode::CREATED);
        let got = self
            .bob
            .expect(WAIT, |r| matches!(r, Received::Frame(f) if f.event == "postgres_changes" && f.payload["data"]["record"]["content"] == content))
            .await;
        assert!(got.is_some(), "{content:?} is delivered after the rejoin");
    }
}

/// `/health` answers, and so does REST for users who have nothing to do with the fault.
async fn others_unaffected(server: &TestServer) {
    let health = server.http.get(format!("{}/health", server.url)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let carol = server.signup("Carol", "tradesperson").await;
    let dave = server.signup("Dave", "customer").await;
    let conv = server.conversation("direct", None, &carol, &[&dave]).await;
    assert_eq!(send_message(server, &carol, conv, "unberührt").await, StatusCode::CREATED);
    let rows: Value = server
        .request(Method::GET, &format!("/rest/v1/messages?conversation_id=eq.{conv}&select=content"), Some(&dave))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rows, json!([{"content": "unberührt"}]));
}

#[tokio::test]
async fn the_listeners_lost_connection_errors_channels_and_deliveries_resume_after_rejoin() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let mut w = watchers(&server, &bob, conv).await;
    assert_eq!(terminate(&server, GatewayTask::Listener).await, 1, "the listener has one connection of its own");
    w.errored().await;
    others_unaffected(&server).await;
    w.rejoined_and_hearing(&server, &bob, &alice, conv, "nach dem Listener").await;
    server.stop().await;
}

#[tokio::test]
async fn a_change_feed_connection_lost_mid_read_errors_channels_and_deliveries_resume() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let mut w = watchers(&server, &bob, conv).await;
    let pool = server.db.pool();
    // A change too large for NOTIFY, stored in the overflow table (found by name, whatever
    // its schema), whose read by the feed is held up by a lock and then has its connection
    // terminated.
    let overflow: String = sqlx::query_scalar(
        "select c.oid::regclass::text from pg_class c where c.relname = 'overflow' and c.relkind in ('r', 'p')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let change = json!({"table": "messages", "type": "INSERT", "record": {"id": Uuid::new_v4(), "conversation_id": conv}});
    let id: i64 = sqlx::query_scalar(&format!("insert into {overflow} (payload) values ($1) returning id"))
        .bind(&change)
        .fetch_one(pool)
        .await
        .unwrap();
    let mut holder = pool.begin().await.unwrap();
    sqlx::query(&format!("lock table {overflow} in access exclusive mode")).execute(&mut *holder).await.unwrap();
    sqlx::query("select pg_notify($1, $2)")
        .bind(CHANGES_CHANNEL)
        .bind(json!({"overflow": id}).to_string())
        .execute(pool)
        .await
        .unwrap();
    let mut waiting = 0i64;
    for _ in 0..100 {
        waiting = sqlx::query_scalar(
            "select count(*) from pg_stat_activity
              where datname = current_database() and application_name = $1 and wait_event_type = 'Lock'",
        )
        .bind(GatewayTask::ChangeFeed.application_name())
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(waiting, 1, "the feed's read of the overflow row waits on the lock");
    assert!(terminate(&server, GatewayTask::ChangeFeed).await >= 1);
    w.errored().await;
    holder.rollback().await.unwrap();
    others_unaffected(&server).await;
    w.rejoined_and_hearing(&server, &bob, &alice, conv, "nach dem Feed").await;
    server.stop().await;
}

#[tokio::test]
async fn an_overflow_row_that_is_gone_errors_channels_instead_of_dropping_the_change() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let mut w = watchers(&server, &bob, conv).await;
    // A reference to a row that is not there (trimmed, say, while the feed lagged).
    sqlx::query("select pg_notify($1, $2)")
        .bind(CHANGES_CHANNEL)
        .bind(json!({"overflow": -1}).to_string())
        .execute(server.db.pool())
        .await
        .unwrap();
    w.errored().await;
    w.rejoined_and_hearing(&server, &bob, &alice, conv, "nach der Lücke").await;
    server.stop().await;
}

#[tokio::test]
async fn every_gateway_connection_lost_at_once_and_two_processes_carry_on() {
    let server = TestServer::start().await;
    let peer = server.start_peer().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let mut w = watchers(&server, &bob, conv).await;
    // Carol listens on the peer process to a public room that the first process's socket
    // speaks in: that goes through both processes' relay publisher and listener.
    let mut carol = TestSocket::connect(&peer.url, &peer.anon_key, Vsn::V2).await;
    assert_eq!(carol.join("realtime:werkstatt", json!({}), None).await.payload["status"], "ok");
    let mut speaker = TestSocket::connect(&server.url, &server.anon_key, Vsn::V2).await;
    assert_eq!(speaker.join("realtime:werkstatt", json!({}), None).await.payload["status"], "ok");
    // The processes know each other before the fault (the relay only publishes then).
    let known = relays(&mut speaker, &mut carol, "vorher").await;
    assert!(known, "the two processes relay to each other");

    let mut cut = 0;
    for task in GatewayTask::ALL {
        cut += terminate(&server, task).await;
    }
    // The listener's and the relay publisher's connections at least (the others open
    // lazily), of both processes.
    assert!(cut >= 4, "{cut} connections cut");
    w.errored().await;
    others_unaffected(&server).await;
    others_unaffected(&peer).await;
    w.rejoined_and_hearing(&server, &bob, &alice, conv, "nach allem").await;
    // Broadcasts cross between the processes again.
    let relayed = relays(&mut speaker, &mut carol, "nachher").await;
    assert!(relayed, "the relay carries broadcasts again");
    peer.stop().await;
    server.stop().await;
}

/// Whether a broadcast by `speaker` on the public room reaches `carol` (on the other process)
/// within 40 tries of half a second.
async fn relays(speaker: &mut TestSocket, carol: &mut TestSocket, tag: &str) -> bool {
    for n in 0..40 {
        let event = format!("{tag}-{n}");
        speaker
            .push("realtime:werkstatt", Some("1"), "broadcast", json!({"type": "broadcast", "event": event, "payload": {}}))
            .await;
        if carol
            .expect(Duration::from_millis(500), |r| matches!(r, Received::Binary { event: e, .. } if *e == event))
            .await
            .is_some()
        {
            return true;
        }
    }
    false
}
