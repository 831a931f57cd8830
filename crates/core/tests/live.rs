//! The engine live against the real server's realtime gateway: two clients, a client that
//! was away while 500 messages (with edits and deletes) went by, typing and presence, and
//! 20-second access tokens during a two-minute session.

use std::collections::HashSet;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;
use uuid::Uuid;
use werkfunk_core::{Connectivity, Engine, Event, RealtimeConfig, ServerConfig};
use werkfunk_testkit::{TestServer, TestUser};

async fn engine(server: &TestServer, user: &TestUser) -> (Engine, tempfile::TempDir) {
    // Never the developer's real keyring.
    std::env::set_var("WERKFUNK_SECRET_STORE", "file");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig { url: server.url.clone(), anon_key: server.anon_key.clone() };
    let engine = Engine::sign_in(dir.path(), &config, &user.email, &user.password).await.expect("sign in");
    (engine, dir)
}

/// Waits for the first event matching `pred`.
async fn wait_for(rx: &mut broadcast::Receiver<Event>, within: Duration, mut pred: impl FnMut(&Event) -> bool) -> Event {
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(e)) if pred(&e) => return e,
            Ok(Ok(_)) => {}
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("event bus closed: {e}"),
            Err(_) => panic!("no matching event within {within:?}"),
        }
    }
}

/// Goes live and waits until the account channel is subscribed and caught up.
async fn go_live(engine: &Engine) -> broadcast::Receiver<Event> {
    let mut rx = engine.subscribe();
    engine.start_live(RealtimeConfig::default()).unwrap();
    wait_for(&mut rx, Duration::from_secs(20), |e| matches!(e, Event::Synced { .. })).await;
    rx
}

async fn deliver(engine: &Engine, conversation: Uuid) {
    let outcome = engine.deliver(conversation, Instant::now() + Duration::from_secs(60)).await.unwrap();
    assert_eq!(outcome, werkfunk_core::DrainOutcome::Empty);
}

#[tokio::test]
async fn a_message_reaches_the_other_client_through_realtime() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let (a, _da) = engine(&server, &alice).await;
    let (b, _db) = engine(&server, &bob).await;
    let mut a_rx = go_live(&a).await;
    let mut b_rx = go_live(&b).await;
    assert_eq!(b.connectivity(), Connectivity::Online);

    // A sends through the outbox workers; B hears it live and is notified.
    let id = a.send(conv, "Ich bin in zehn Minuten da").await.unwrap();
    wait_for(&mut b_rx, Duration::from_secs(10), |e| matches!(e, Event::MessageUpserted { message_id, .. } if *message_id == id))
        .await;
    let shown = b.timeline(conv, 10).await.unwrap();
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].content, "Ich bin in zehn Minuten da");
    let note = wait_for(&mut b_rx, Duration::from_secs(5), |e| matches!(e, Event::Notification { .. })).await;
    assert!(matches!(note, Event::Notification { conversation_id, count: 1, .. } if conversation_id == conv));
    assert_eq!(b.conversations().await.unwrap()[0].unread_count, 1);
    wait_for(
        &mut a_rx,
        Duration::from_secs(10),
        |e| matches!(e, Event::OutboxChanged { message_id: Some(m), state: werkfunk_core::SendState::Sent, .. } if *m == id),
    )
    .await;

    // An edit arrives live too; a conversation in front raises no notification.
    b.set_in_front(Some(conv)).await.unwrap();
    a.edit_message(id, "Ich bin in zwanzig Minuten da").await.unwrap();
    wait_for(&mut b_rx, Duration::from_secs(10), |e| matches!(e, Event::MessageUpserted { message_id, .. } if *message_id == id))
        .await;
    assert_eq!(b.timeline(conv, 10).await.unwrap()[0].content, "Ich bin in zwanzig Minuten da");
    assert!(b.timeline(conv, 10).await.unwrap()[0].edited);
    let id2 = a.send(conv, "Bin unterwegs").await.unwrap();
    wait_for(
        &mut b_rx,
        Duration::from_secs(10),
        |e| matches!(e, Event::MessageUpserted { message_id, .. } if *message_id == id2),
    )
    .await;

    // Typing and presence over the members-only topics.
    a.set_in_front(Some(conv)).await.unwrap();
    let typing = async {
        loop {
            a.typing(conv).await;
            tokio::time::sleep(Duration::from_millis(2100)).await;
        }
    };
    let (mut saw_typing, mut saw_presence) = (false, false);
    let seen = async {
        while !(saw_typing && saw_presence) {
            // Presence is published when the set changes: it may have come before this point.
            saw_presence |= b.online().contains(&alice.id);
            if saw_typing && saw_presence {
                break;
            }
            match wait_for(&mut b_rx, Duration::from_secs(15), |e| matches!(e, Event::Typing { .. } | Event::Presence { .. }))
                .await
            {
                Event::Typing { conversation_id, typing } => saw_typing |= conversation_id == conv && typing.contains(&alice.id),
                Event::Presence { online } => saw_presence |= online.contains(&alice.id),
                _ => {}
            }
        }
    };
    tokio::select! {
        _ = seen => {}
        _ = typing => unreachable!(),
    }
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_was_away_catches_up_on_500_messages_with_edits_and_deletes() {
    let server = TestServer::start().await;
    let alice = server.signup("Alice", "tradesperson").await;
    let bob = server.signup("Bob", "customer").await;
    let conv = server.conversation("project", Some("Dach"), &alice, &[&bob]).await;
    let (a, _da) = engine(&server, &alice).await;
    let (b, _db) = engine(&server, &bob).await;
    let first = a.send(conv, "Vorher").await.unwrap();
    deliver(&a, conv).await;
    go_live(&b).await;
    assert_eq!(b.timeline(conv, 10).await.unwrap().len(), 1);

    // B goes away; A sends 500, edits ten and deletes ten of them.
    b.stop_live();
    let mut ids = vec![first];
    for i in 0..500 {
        ids.push(a.send(conv, &format!("Nachricht {i:03}")).await.unwrap());
    }
    deliver(&a, conv).await;
    for i in 0..10 {
        a.edit_message(ids[1 + i], &format!("Nachricht {i:03} (korrigiert)")).await.unwrap();
        a.delete_message(ids[400 + i]).await.unwrap();
    }
    deliver(&a, conv).await;

    // B comes back: the join is followed by a catch-up.
    let mut b_rx = b.subscribe();
    b.start_live(RealtimeConfig::default()).unwrap();
    wait_for(&mut b_rx, Duration::from_secs(30), |e| matches!(e, Event::Synced { .. })).await;
    let all = b.timeline(conv, 1000).await.unwrap();
    assert_eq!(all.len(), 501, "every message once");
    assert_eq!(all.iter().map(|m| m.id).collect::<HashSet<_>>().len(), 501);
    assert_eq!(all.iter().map(|m| m.id).collect::<Vec<_>>(), ids, "in send order");
    for i in 0..10 {
        assert_eq!(all[1 + i].content, format!("Nachricht {i:03} (korrigiert)"));
        assert!(all[1 + i].edited);
        assert!(all[400 + i].deleted);
    }
    assert_eq!(all.iter().filter(|m| m.deleted).count(), 10);
    assert_eq!(b.conversations().await.unwrap()[0].unread_count, 491, "the server's count: deleted ones do not count");
    server.stop().await;
}

#[tokio::test]
async fn twenty_second_tokens_for_two_minutes_miss_nothing() {
    let server = TestServer::start_with(|c| c.jwt_exp = Duration::from_secs(20)).await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let (a, _da) = engine(&server, &alice).await;
    let (b, _db) = engine(&server, &bob).await;
    let mut b_rx = go_live(&b).await;

    let started = Instant::now();
    let mut sent = Vec::new();
    while started.elapsed() < Duration::from_secs(120) {
        let id = a.send(conv, &format!("Zeitpunkt {}", started.elapsed().as_secs())).await.unwrap();
        deliver(&a, conv).await;
        sent.push(id);
        // Heard live, not only by a later catch-up: within a few seconds of the send.
        wait_for(&mut b_rx, Duration::from_secs(8), |e| {
            assert!(!matches!(e, Event::Channel { subscribed: false, .. }), "a channel was lost: {e:?}");
            assert!(!matches!(e, Event::Connectivity { state: Connectivity::Offline { .. } }), "went offline: {e:?}");
            matches!(e, Event::MessageUpserted { message_id, .. } if *message_id == id)
        })
        .await;
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    assert!(sent.len() >= 20);
    assert_eq!(b.connectivity(), Connectivity::Online, "the socket stayed up");
    let seen: Vec<Uuid> = b.timeline(conv, 1000).await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(seen, sent);
    server.stop().await;
}

#[tokio::test]
async fn a_server_restart_loses_nothing_clients_reconnect_rejoin_and_catch_up() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let (a, _da) = engine(&server, &alice).await;
    let (b, _db) = engine(&server, &bob).await;
    let mut a_rx = go_live(&a).await;
    let mut b_rx = go_live(&b).await;

    let addr = server.addr();
    let db = server.stop().await;
    wait_for(&mut b_rx, Duration::from_secs(60), |e| matches!(e, Event::Connectivity { state: Connectivity::Offline { .. } }))
        .await;
    // While the server is away: A writes (queued in A's outbox), and a message is committed
    // straight into the database, which no live event will ever announce.
    let queued = a.send(conv, "während der Server weg war").await.unwrap();
    // Queued, or being tried right now by A's live outbox worker — not sent.
    let state = a.message_state(queued).await.unwrap().unwrap().0;
    assert!(matches!(state, werkfunk_core::SendState::Queued | werkfunk_core::SendState::Sending), "{state:?}");
    let silent: Uuid = sqlx::query_scalar(
        "insert into messages (conversation_id, sender_id, content) values ($1, $2, 'direkt in der Datenbank') returning id",
    )
    .bind(conv)
    .bind(alice.id)
    .fetch_one(db.pool())
    .await
    .unwrap();

    let server = TestServer::start_on(db, |c| c.listen = addr).await;
    // A's outbox retries at once on reconnect; B's rejoin is followed by a catch-up.
    wait_for(
        &mut a_rx,
        Duration::from_secs(30),
        |e| matches!(e, Event::OutboxChanged { message_id: Some(m), state: werkfunk_core::SendState::Sent, .. } if *m == queued),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ids: Vec<Uuid> = b.timeline(conv, 10).await.unwrap().iter().map(|m| m.id).collect();
        if ids.contains(&queued) && ids.contains(&silent) {
            break;
        }
        assert!(Instant::now() < deadline, "B did not catch up: {ids:?}");
        let _ = tokio::time::timeout(Duration::from_millis(500), b_rx.recv()).await;
    }
    assert_eq!(b.connectivity(), Connectivity::Online);
    // And live again afterwards.
    let after = a.send(conv, "wieder da").await.unwrap();
    wait_for(
        &mut b_rx,
        Duration::from_secs(10),
        |e| matches!(e, Event::MessageUpserted { message_id, .. } if *message_id == after),
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn drafts_survive_a_restart_and_sending_clears_them() {
    let server = TestServer::start().await;
    let (alice, _, conv) = server.alice_and_bob().await;
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig { url: server.url.clone(), anon_key: server.anon_key.clone() };
    {
        let a = Engine::sign_in(dir.path(), &config, &alice.email, &alice.password).await.unwrap();
        a.save_draft(conv, "Guten Tag, ich wollte fr").await.unwrap();
    }
    let a = Engine::open(dir.path(), &config).await.unwrap();
    assert_eq!(a.draft(conv).await.unwrap().as_deref(), Some("Guten Tag, ich wollte fr"));
    a.send(conv, "Guten Tag, ich wollte fragen").await.unwrap();
    assert_eq!(a.draft(conv).await.unwrap(), None);
    server.stop().await;
}

#[tokio::test]
async fn older_history_comes_from_the_cache_first_then_the_server() {
    let server = TestServer::start().await;
    let alice = server.signup("Alice", "tradesperson").await;
    let bob = server.signup("Bob", "customer").await;
    let conv = server.conversation("group", Some("Altbau"), &alice, &[&bob]).await;
    let (a, _da) = engine(&server, &alice).await;
    for i in 0..160 {
        a.send(conv, &format!("Nachricht {i:03}")).await.unwrap();
    }
    deliver(&a, conv).await;
    let (b, b_dir) = engine(&server, &bob).await;
    b.catch_up().await.unwrap();
    // First sight: only the newest page is fetched.
    let newest = b.timeline(conv, 1000).await.unwrap();
    assert_eq!(newest.len(), werkfunk_core::sync::FIRST_PAGE);
    assert_eq!(newest[0].content, "Nachricht 060");
    let oldest = (newest[0].created_at, newest[0].id);
    // Older: from the server (the cache has nothing before its floor) …
    let page = b.load_older(conv, oldest.0, oldest.1, 50).await.unwrap();
    assert_eq!(page.len(), 50);
    assert_eq!(page[0].content, "Nachricht 010");
    assert_eq!(page[49].content, "Nachricht 059");
    // … then from the cache, offline too; the rest is not there yet, and that is said by
    // returning what the cache has.
    let db = server.stop().await;
    let again = b.load_older(conv, oldest.0, oldest.1, 50).await.unwrap();
    assert_eq!(again, page);
    let rest = b.load_older(conv, page[0].created_at, page[0].id, 50).await.unwrap();
    assert!(rest.is_empty(), "offline: nothing older cached");
    let server = TestServer::start_on(db, |_| {}).await;
    drop(b);
    let b =
        Engine::open(b_dir.path(), &ServerConfig { url: server.url.clone(), anon_key: server.anon_key.clone() }).await.unwrap();
    let rest = b.load_older(conv, page[0].created_at, page[0].id, 50).await.unwrap();
    assert_eq!(rest.len(), 10, "the beginning is reached");
    assert_eq!(rest[0].content, "Nachricht 000");
    server.stop().await;
}
