//! Deterministic replays of what the convergence run found: a send whose request reached the
//! server but whose answer was lost (the proxy swallows every byte back), then an edit or a
//! delete of that message while its send is still queued, then a sync on a good line.
//!
//! The engine rewrites a queued send in place on edit, and cancels it on delete
//! (`crates/core/src/outbox/mod.rs`, `Outbox::edit` / `Outbox::delete`); but the server already
//! has the message, so the resend is answered `[]`, settled by id as sent — and the edit or
//! the delete never reaches the server.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;
use werkfunk_faults::procs::{self, CliClient};
use werkfunk_faults::proxy::{Direction, Fault, FaultProxy};
use werkfunk_faults::seed;
use werkfunk_testkit::{TestServer, TestUser};

const LIMIT: Duration = Duration::from_secs(90);

struct Setup {
    server: TestServer,
    proxy: FaultProxy,
    cli: CliClient,
    conv: Uuid,
    alice: TestUser,
}

async fn setup() -> Setup {
    let bins = procs::binaries().expect("binaries");
    let server = TestServer::start().await;
    let (alice, _bob, conv) = server.alice_and_bob().await;
    let proxy = FaultProxy::start(server.addr(), seed::rng(1, 1), 0.0).await.expect("proxy");
    let cli = CliClient::new("alice", &bins.cli, &server.anon_key).expect("profile");
    let r = cli.run(&server.url, &["login", "--email", &alice.email, "--password", &alice.password], LIMIT, None).await.unwrap();
    assert!(r.ok(), "login: {}", r.stderr);
    Setup { server, proxy, cli, conv, alice }
}

/// Sends `text` while every answer is swallowed; returns the message id, after checking that
/// the CLI says `queued` and the server does have the message.
async fn send_with_lost_answer(s: &Setup, text: &str) -> Uuid {
    s.proxy.force(Some(Fault::Blackhole { dir: Direction::Down }));
    let r = s.cli.run(&s.proxy.url(), &["send", &s.conv.to_string(), text], LIMIT, None).await.unwrap();
    s.proxy.force(None);
    s.proxy.cut_all();
    let answer = r.json().into_iter().next().unwrap_or_else(|| panic!("send answered nothing: {}", r.stderr));
    assert_eq!(answer["state"], "queued", "{answer}");
    let id: Uuid = answer["message_id"].as_str().unwrap().parse().unwrap();
    let on_server: Option<String> = sqlx::query_scalar("select content from public.messages where id = $1")
        .bind(id)
        .fetch_optional(s.server.db.pool())
        .await
        .unwrap();
    assert_eq!(on_server.as_deref(), Some(text), "precondition: the request reached the server");
    id
}

async fn server_row(s: &Setup, id: Uuid) -> Value {
    let resp = s
        .server
        .request(Method::GET, &format!("/rest/v1/messages?id=eq.{id}&select=content,deleted_at"), Some(&s.alice))
        .send()
        .await
        .unwrap();
    resp.json::<Value>().await.unwrap()[0].clone()
}

async fn sync_clean(s: &Setup) {
    let r = s.cli.run(&s.server.url, &["sync"], LIMIT, None).await.unwrap();
    assert!(r.ok(), "sync: {} {}", r.stdout, r.stderr);
    let pending = s.cli.run(&s.server.url, &["outbox"], LIMIT, None).await.unwrap();
    assert!(pending.json().is_empty(), "outbox empty after sync: {}", pending.stdout);
}

#[tokio::test]
async fn an_edit_of_a_send_whose_answer_was_lost_reaches_the_server() {
    let s = setup().await;
    let id = send_with_lost_answer(&s, "Termin um 8").await;
    // Offline edit (nowhere to deliver it), then a sync on a good line.
    let nowhere = format!("http://127.0.0.1:{}", procs::free_port().unwrap());
    let r = s.cli.run(&nowhere, &["edit", &id.to_string(), "Termin um 9"], LIMIT, None).await.unwrap();
    assert!(r.ok(), "edit: {}", r.stderr);
    sync_clean(&s).await;
    assert_eq!(server_row(&s, id).await["content"], "Termin um 9", "the edit is on the server");
    let h = s.cli.run(&s.server.url, &["history", &s.conv.to_string()], LIMIT, None).await.unwrap();
    let cached = h.json().into_iter().find(|m| m["id"] == id.to_string()).expect("in the cache");
    assert_eq!(cached["content"], "Termin um 9", "and in the cache");
    s.server.stop().await;
}

#[tokio::test]
async fn a_delete_of_a_send_whose_answer_was_lost_reaches_the_server() {
    let s = setup().await;
    let id = send_with_lost_answer(&s, "Falsche Adresse").await;
    let nowhere = format!("http://127.0.0.1:{}", procs::free_port().unwrap());
    let r = s.cli.run(&nowhere, &["delete", &id.to_string()], LIMIT, None).await.unwrap();
    assert!(r.ok(), "delete: {}", r.stderr);
    sync_clean(&s).await;
    assert!(!server_row(&s, id).await["deleted_at"].is_null(), "the message is deleted on the server");
    s.server.stop().await;
}
