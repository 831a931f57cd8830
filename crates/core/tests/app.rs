//! The desktop app's API (`docs/app-commands.md`) against the real server: the notification
//! center, members, the own profile, password change, sign-out with and without wiping,
//! settings, one process per profile, notification decisions, deleted text, and bad input
//! answered by a typed error with nothing lost.

use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;
use uuid::Uuid;
use werkfunk_core::{ConversationKind, DrainOutcome, Engine, Event, Language, RealtimeConfig, SendState, ServerConfig, Settings};
use werkfunk_testkit::{TestServer, TestUser};

fn config(server: &TestServer) -> ServerConfig {
    ServerConfig { url: server.url.clone(), anon_key: server.anon_key.clone() }
}

async fn engine(server: &TestServer, user: &TestUser) -> (Engine, tempfile::TempDir) {
    // Never the developer's real keyring.
    std::env::set_var("WERKFUNK_SECRET_STORE", "file");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::sign_in(dir.path(), &config(server), &user.email, &user.password).await.expect("sign in");
    (engine, dir)
}

async fn wait_for(rx: &mut broadcast::Receiver<Event>, within: Duration, mut pred: impl FnMut(&Event) -> bool) -> Event {
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(e)) if pred(&e) => return e,
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("event bus closed: {e}"),
            Err(_) => panic!("no matching event within {within:?}"),
        }
    }
}

/// Events that arrive within `within`, without waiting for a particular one.
async fn collect(rx: &mut broadcast::Receiver<Event>, within: Duration) -> Vec<Event> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while let Ok(Ok(e)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        out.push(e);
    }
    out
}

async fn go_live(engine: &Engine) -> broadcast::Receiver<Event> {
    let mut rx = engine.subscribe();
    engine.start_live(RealtimeConfig::default()).unwrap();
    wait_for(&mut rx, Duration::from_secs(20), |e| matches!(e, Event::Synced { .. })).await;
    rx
}

async fn deliver_all(engine: &Engine) {
    for (_, outcome) in engine.deliver_all(Instant::now() + Duration::from_secs(30)).await.unwrap() {
        assert_eq!(outcome, DrainOutcome::Empty);
    }
}

async fn server_rows(server: &TestServer, sql: &str, user: Uuid) -> i64 {
    sqlx::query_scalar::<_, i64>(sql).bind(user).fetch_one(server.db.pool()).await.unwrap()
}

#[tokio::test]
async fn the_notification_center_lists_marks_one_and_all_read_also_offline() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let (a, _da) = engine(&server, &alice).await;
    for text in ["Erste", "Zweite", "Dritte"] {
        a.send(conv, text).await.unwrap();
    }
    deliver_all(&a).await;
    let (b, _db) = engine(&server, &bob).await;
    let mut rx = b.subscribe();
    b.catch_up().await.unwrap();
    let count = wait_for(&mut rx, Duration::from_secs(5), |e| matches!(e, Event::NotificationCount { .. })).await;
    assert_eq!(count, Event::NotificationCount { unread: 3 });

    let list = b.notifications().await.unwrap();
    assert_eq!(list.len(), 3);
    assert!(list.windows(2).all(|w| w[0].created_at >= w[1].created_at), "newest first");
    assert!(list.iter().all(|n| !n.read && n.conversation_id == Some(conv) && n.title == "Neue Nachricht"));
    assert_eq!(list[0].body, "Dritte");

    // Bad input: an unknown id is not_found, and nothing changes.
    assert_eq!(b.mark_notification_read(Uuid::now_v7()).await.unwrap_err().code(), "not_found");
    assert_eq!(b.unsent_count().await.unwrap(), 0);

    // One read: at once locally, then on the server.
    b.mark_notification_read(list[0].id).await.unwrap();
    wait_for(&mut rx, Duration::from_secs(5), |e| *e == Event::NotificationCount { unread: 2 }).await;
    assert!(b.notifications().await.unwrap().iter().find(|n| n.id == list[0].id).unwrap().read);
    deliver_all(&b).await;
    let unread_sql = "select count(*) from public.notifications where user_id = $1 and not read";
    assert_eq!(server_rows(&server, unread_sql, bob.id).await, 2);

    // All read while the server is away: queued, delivered when it is back.
    let addr = server.addr();
    let db = server.stop().await;
    b.mark_all_notifications_read().await.unwrap();
    wait_for(&mut rx, Duration::from_secs(5), |e| *e == Event::NotificationCount { unread: 0 }).await;
    assert!(b.notifications().await.unwrap().iter().all(|n| n.read));
    let server = TestServer::start_on(db, |c| c.listen = addr).await;
    deliver_all(&b).await;
    assert_eq!(server_rows(&server, unread_sql, bob.id).await, 0);
    server.stop().await;
}

#[tokio::test]
async fn members_are_added_removed_and_left_with_typed_errors_for_bad_input() {
    let server = TestServer::start().await;
    let olga = server.signup("Olga Owner", "tradesperson").await;
    let max = server.signup("Max Member", "customer").await;
    let carla = server.signup("Carla Neu", "customer").await;
    let conv = server.conversation("group", Some("Baustelle"), &olga, &[&max]).await;
    let (o, _do) = engine(&server, &olga).await;
    let (m, _dm) = engine(&server, &max).await;
    o.catch_up().await.unwrap();
    m.catch_up().await.unwrap();

    let members = o.members(conv).await.unwrap();
    assert_eq!(
        members.iter().map(|m| (m.full_name.as_str(), m.role.as_str())).collect::<Vec<_>>(),
        [("Olga Owner", "owner"), ("Max Member", "member")]
    );

    // Bad input, each answered by a typed error; nothing changes.
    assert_eq!(o.add_members(conv, &[]).await.unwrap_err().code(), "invalid_input");
    assert_eq!(o.remove_member(conv, olga.id).await.unwrap_err().code(), "invalid_input");
    let refused = m.add_members(conv, &[carla.id]).await.unwrap_err();
    assert_eq!(refused.code(), "server_refused", "a plain member may not add: {refused}");
    assert_eq!(o.members(conv).await.unwrap().len(), 2);

    let mut rx = o.subscribe();
    o.add_members(conv, &[carla.id]).await.unwrap();
    wait_for(&mut rx, Duration::from_secs(5), |e| *e == Event::MembersChanged { conversation_id: conv }).await;
    let names: Vec<String> = o.members(conv).await.unwrap().into_iter().map(|m| m.full_name).collect();
    assert_eq!(names, ["Olga Owner", "Max Member", "Carla Neu"]);

    o.remove_member(conv, carla.id).await.unwrap();
    assert_eq!(o.members(conv).await.unwrap().len(), 2);

    m.leave_conversation(conv).await.unwrap();
    let row = m.conversations().await.unwrap().into_iter().find(|c| c.id == conv).unwrap();
    assert!(row.left, "left, the history stays listed");
    o.catch_up().await.unwrap();
    assert_eq!(o.members(conv).await.unwrap().iter().map(|m| m.user_id).collect::<Vec<_>>(), [olga.id]);
    server.stop().await;
}

#[tokio::test]
async fn the_conversation_list_names_direct_partners_and_shows_last_sender_and_unsent() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let (a, _da) = engine(&server, &alice).await;
    a.catch_up().await.unwrap();
    let id = a.send(conv, "Hallo Bob").await.unwrap();
    let rows = a.conversations().await.unwrap();
    assert_eq!(rows[0].title, "Bob");
    assert_eq!(rows[0].kind, ConversationKind::Direct);
    assert_eq!(rows[0].partner_id, Some(bob.id));
    assert_eq!(rows[0].unsent_count, 1);
    assert_eq!(a.unsent_count().await.unwrap(), 1);
    deliver_all(&a).await;
    let rows = a.conversations().await.unwrap();
    assert_eq!(rows[0].unsent_count, 0);
    let last = rows[0].last_message.clone().unwrap();
    assert_eq!((last.sender_id, last.sender_name.as_str(), last.content.as_str()), (alice.id, "Alice", "Hallo Bob"));
    let json = serde_json::to_value(&rows[0]).unwrap();
    assert_eq!(json["kind"], "direct");
    assert_eq!(json["last_message"]["sender_name"], "Alice");
    let timeline = a.timeline(conv, 10).await.unwrap();
    assert_eq!((timeline[0].id, timeline[0].sender_name.as_str()), (id, "Alice"));
    server.stop().await;
}

#[tokio::test]
async fn the_own_profile_is_updated_and_bad_names_change_nothing() {
    let server = TestServer::start().await;
    let (alice, _, _) = server.alice_and_bob().await;
    let (a, _da) = engine(&server, &alice).await;
    let me = a.profile().await.unwrap();
    assert_eq!(
        (me.full_name.as_str(), me.role.as_str(), me.email.as_deref()),
        ("Alice", "tradesperson", Some(alice.email.as_str()))
    );

    assert_eq!(a.update_profile("   ").await.unwrap_err().code(), "invalid_input");
    assert_eq!(a.update_profile(&"x".repeat(101)).await.unwrap_err().code(), "invalid_input");
    assert_eq!(a.profile().await.unwrap().full_name, "Alice");

    let mut rx = a.subscribe();
    let updated = a.update_profile("Alice Meisterin").await.unwrap();
    assert_eq!(updated.full_name, "Alice Meisterin");
    wait_for(&mut rx, Duration::from_secs(5), |e| *e == Event::ProfileChanged { user_id: alice.id }).await;
    assert_eq!(a.profile().await.unwrap().full_name, "Alice Meisterin");
    let on_server: String = sqlx::query_scalar("select full_name from public.profiles where id = $1")
        .bind(alice.id)
        .fetch_one(server.db.pool())
        .await
        .unwrap();
    assert_eq!(on_server, "Alice Meisterin");

    // The server away: `offline` at once, nothing changed.
    let db = server.stop().await;
    assert_eq!(a.update_profile("Alice Offline").await.unwrap_err().code(), "offline");
    assert_eq!(a.profile().await.unwrap().full_name, "Alice Meisterin");
    drop(db);
}

#[tokio::test]
async fn password_change_checks_the_current_password_and_keeps_the_engine_signed_in() {
    let server = TestServer::start().await;
    let (alice, bob, _) = server.alice_and_bob().await;
    let (a, dir) = engine(&server, &alice).await;

    assert_eq!(a.change_password("falsch-falsch", "Neues-Passwort-2").await.unwrap_err().code(), "invalid_credentials");
    assert_eq!(a.change_password(&alice.password, "kurz").await.unwrap_err().code(), "invalid_input");
    // Nothing changed: the old password still signs in.
    let other = tempfile::tempdir().unwrap();
    drop(Engine::sign_in(other.path(), &config(&server), &alice.email, &alice.password).await.unwrap());

    a.change_password(&alice.password, "Neues-Passwort-2").await.unwrap();
    let refused = Engine::sign_in(other.path(), &config(&server), &alice.email, &alice.password).await.unwrap_err();
    assert_eq!(refused.code(), "invalid_credentials");
    drop(Engine::sign_in(other.path(), &config(&server), &alice.email, "Neues-Passwort-2").await.unwrap());
    // The engine carries on with the new session, also after a restart.
    assert_eq!(a.people("Bob").await.unwrap()[0].id, bob.id);
    drop(a);
    let a = Engine::open(dir.path(), &config(&server)).await.unwrap();
    assert_eq!(a.people("Bob").await.unwrap()[0].id, bob.id);
    server.stop().await;
}

#[tokio::test]
async fn sign_out_keeps_unsent_messages_and_wipe_removes_the_account_folder() {
    let server = TestServer::start().await;
    let (alice, _, conv) = server.alice_and_bob().await;
    let (a, dir) = engine(&server, &alice).await;
    let account = a.account_dir();
    a.send(conv, "noch nicht gesendet").await.unwrap();
    assert_eq!(a.unsent_count().await.unwrap(), 1);

    // Without wipe: the outbox stays for the next sign-in.
    let mut rx = a.subscribe();
    a.sign_out(false).await.unwrap();
    wait_for(&mut rx, Duration::from_secs(1), |e| *e == Event::SignedOut {}).await;
    assert_eq!(a.unsent_count().await.unwrap_err().code(), "signed_out");
    drop(a);
    assert!(account.join("outbox.sqlite3").exists());
    assert_eq!(Engine::open(dir.path(), &config(&server)).await.unwrap_err().code(), "signed_out");
    let a = Engine::sign_in(dir.path(), &config(&server), &alice.email, &alice.password).await.unwrap();
    assert_eq!(a.unsent_count().await.unwrap(), 1);

    // With wipe: the account's folder goes, unsent message included (the caller confirmed).
    // The signed-out engine may still be held (a shell's Arc): the profile is free anyway.
    a.sign_out(true).await.unwrap();
    assert!(!account.exists());
    assert!(!dir.path().join("account.json").exists());
    let _old = a;
    let a = Engine::sign_in(dir.path(), &config(&server), &alice.email, &alice.password).await.unwrap();
    assert_eq!(a.unsent_count().await.unwrap(), 0);
    assert!(a.timeline(conv, 10).await.unwrap().is_empty());

    // Wiping with nothing unsent works the same.
    a.sign_out(true).await.unwrap();
    assert!(!account.exists());
    server.stop().await;
}

#[tokio::test]
async fn settings_round_trip_and_survive_a_restart() {
    let server = TestServer::start().await;
    let (alice, _, _) = server.alice_and_bob().await;
    let (a, dir) = engine(&server, &alice).await;
    assert_eq!(a.settings().await.unwrap(), Settings::default());
    let wanted = Settings {
        notifications: true,
        sound: false,
        language: Language::En,
        dnd_until: Some(chrono::Utc::now() + chrono::Duration::hours(2)),
        autostart: true,
    };
    let mut rx = a.subscribe();
    let stored = a.update_settings(wanted.clone()).await.unwrap();
    // Stored at microsecond precision, like every timestamp of the store.
    assert_eq!(stored.dnd_until.map(|t| t.timestamp_micros()), wanted.dnd_until.map(|t| t.timestamp_micros()));
    wait_for(&mut rx, Duration::from_secs(1), |e| matches!(e, Event::SettingsChanged { .. })).await;
    assert_eq!(a.settings().await.unwrap(), stored);
    // A do-not-disturb already over is stored as off.
    let past = a
        .update_settings(Settings { dnd_until: Some(chrono::Utc::now() - chrono::Duration::minutes(1)), ..stored.clone() })
        .await;
    assert_eq!(past.unwrap().dnd_until, None);
    a.update_settings(stored.clone()).await.unwrap();
    drop(a);
    let a = Engine::open(dir.path(), &config(&server)).await.unwrap();
    assert_eq!(a.settings().await.unwrap(), stored);
    server.stop().await;
}

#[tokio::test]
async fn a_second_engine_on_the_profile_is_refused_until_the_first_is_dropped() {
    let server = TestServer::start().await;
    let (alice, _, _) = server.alice_and_bob().await;
    let (a, dir) = engine(&server, &alice).await;
    let second = Engine::open(dir.path(), &config(&server)).await.unwrap_err();
    assert_eq!(second.code(), "profile_in_use");
    let third = Engine::sign_in(dir.path(), &config(&server), &alice.email, &alice.password).await.unwrap_err();
    assert_eq!(third.code(), "profile_in_use");
    drop(a);
    let again = Engine::open(dir.path(), &config(&server)).await.unwrap();
    assert_eq!(again.user_id(), alice.id);
    server.stop().await;
}

#[tokio::test]
async fn edits_deletes_retry_and_discard_by_message_id_with_typed_errors() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let carla = server.signup("Carla", "customer").await;
    let elsewhere = server.conversation("direct", None, &bob, &[&carla]).await;
    let (a, _da) = engine(&server, &alice).await;
    let (b, _db) = engine(&server, &bob).await;

    let id = a.send(conv, "Das geheime Wort ist Dachrinne").await.unwrap();
    deliver_all(&a).await;
    b.catch_up().await.unwrap();
    assert_eq!(b.search("Dachrinne", 10).await.unwrap().len(), 1);
    assert_eq!(b.edit_message(id, "nicht meins").await.unwrap_err().code(), "invalid_input");
    assert_eq!(a.edit_message(Uuid::now_v7(), "gibt es nicht").await.unwrap_err().code(), "not_found");
    assert_eq!(a.edit_message(id, "  ").await.unwrap_err().code(), "invalid_input");
    assert_eq!(a.retry_message(id).await.unwrap_err().code(), "not_found");

    a.edit_message(id, "Das geheime Wort ist Regenrinne").await.unwrap();
    deliver_all(&a).await;
    a.delete_message(id).await.unwrap();
    deliver_all(&a).await;
    b.catch_up().await.unwrap();
    // Deleted: no text in the cache, and the search index does not know it any more.
    let shown = b.timeline(conv, 10).await.unwrap();
    assert!(shown[0].deleted && shown[0].content.is_empty());
    assert!(b.search("Regenrinne", 10).await.unwrap().is_empty());
    assert!(b.search("Dachrinne", 10).await.unwrap().is_empty());

    // A message into a conversation Alice is not in: refused for good, by RLS.
    let refused = a.send(elsewhere, "darf ich nicht").await.unwrap();
    let _ = a.deliver(elsewhere, Instant::now() + Duration::from_secs(10)).await.unwrap();
    let failed = a.timeline(elsewhere, 10).await.unwrap();
    assert_eq!(failed[0].state, SendState::Failed);
    let error = failed[0].error.clone().unwrap();
    assert_eq!(error.code, "42501");
    a.retry_message(refused).await.unwrap();
    assert_eq!(a.timeline(elsewhere, 10).await.unwrap()[0].state, SendState::Queued);
    let _ = a.deliver(elsewhere, Instant::now() + Duration::from_secs(10)).await.unwrap();
    a.discard_message(refused).await.unwrap();
    assert!(a.timeline(elsewhere, 10).await.unwrap().is_empty());
    assert_eq!(a.unsent_count().await.unwrap(), 0);
    server.stop().await;
}

#[tokio::test]
async fn notifications_follow_the_window_catch_up_summarises_and_language_applies() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let (a, _da) = engine(&server, &alice).await;
    let (b, _db) = engine(&server, &bob).await;
    let mut rx = go_live(&b).await;
    let notification = |e: &Event| matches!(e, Event::Notification { .. });

    // Open in a focused window: no notification, and read.
    b.set_in_front(Some(conv)).await.unwrap();
    b.set_window_state(true, true).await.unwrap();
    let first = a.send(conv, "Siehst du das?").await.unwrap();
    deliver_all(&a).await;
    let seen = collect(&mut rx, Duration::from_secs(3)).await;
    assert!(seen.iter().any(|e| matches!(e, Event::MessageUpserted { message_id, .. } if *message_id == first)), "{seen:?}");
    assert!(!seen.iter().any(notification), "no notification in front: {seen:?}");
    assert_eq!(b.conversations().await.unwrap()[0].unread_count, 0);
    deliver_all(&b).await;
    let read_at: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select last_read_at from public.conversation_members where conversation_id = $1 and user_id = $2")
            .bind(conv)
            .bind(bob.id)
            .fetch_one(server.db.pool())
            .await
            .unwrap();
    let first_at = b.timeline(conv, 10).await.unwrap()[0].created_at;
    assert!(read_at >= first_at, "marked read on the server");

    // Open but the window not focused: it notifies, with the sound decision.
    b.set_window_state(false, true).await.unwrap();
    a.send(conv, "Jetzt nicht im Blick").await.unwrap();
    deliver_all(&a).await;
    let note = wait_for(&mut rx, Duration::from_secs(10), notification).await;
    let Event::Notification { title, body, count, sound, .. } = note else { unreachable!() };
    assert_eq!((title.as_str(), body.as_str(), count, sound), ("Alice", "Jetzt nicht im Blick", 1, true));

    // Reading clears the group: the next one counts from 1 again.
    b.mark_read(conv).await.unwrap();
    b.set_in_front(None).await.unwrap();
    a.send(conv, "Nach dem Lesen").await.unwrap();
    deliver_all(&a).await;
    let note = wait_for(&mut rx, Duration::from_secs(10), notification).await;
    assert!(matches!(note, Event::Notification { count: 1, .. }), "{note:?}");

    // Away while three arrive: the catch-up notifies once, "3 neue Nachrichten".
    b.stop_live();
    for text in ["eins", "zwei", "drei"] {
        a.send(conv, text).await.unwrap();
    }
    deliver_all(&a).await;
    b.mark_read(conv).await.unwrap(); // clears the group: the summary counts only these three
    let mut rx = b.subscribe();
    b.start_live(RealtimeConfig::default()).unwrap();
    let note = wait_for(&mut rx, Duration::from_secs(20), notification).await;
    let Event::Notification { conversation_id, body, count, .. } = note else { unreachable!() };
    assert_eq!((conversation_id, body.as_str(), count), (conv, "3 neue Nachrichten", 3));
    // (The catch-up announced `Synced` before it notified.)
    assert!(!collect(&mut rx, Duration::from_secs(2)).await.iter().any(notification), "one summary, not one per message");

    // English, and no sound: the same summary in English, silent.
    b.update_settings(Settings { language: Language::En, sound: false, ..Settings::default() }).await.unwrap();
    b.stop_live();
    b.mark_read(conv).await.unwrap();
    for text in ["one", "two", "three"] {
        a.send(conv, text).await.unwrap();
    }
    deliver_all(&a).await;
    let mut rx = b.subscribe();
    b.start_live(RealtimeConfig::default()).unwrap();
    let note = wait_for(&mut rx, Duration::from_secs(20), notification).await;
    let Event::Notification { body, sound, .. } = note else { unreachable!() };
    assert_eq!((body.as_str(), sound), ("3 new messages", false));
    server.stop().await;
}

#[tokio::test]
async fn presence_of_direct_partners_reaches_the_list_without_opening_the_conversation() {
    let server = TestServer::start().await;
    let (alice, bob, _conv) = server.alice_and_bob().await;
    let (a, _da) = engine(&server, &alice).await;
    let (b, _db) = engine(&server, &bob).await;
    let mut b_rx = go_live(&b).await;
    let _a_rx = go_live(&a).await;
    wait_for(&mut b_rx, Duration::from_secs(15), |e| matches!(e, Event::Presence { online } if online.contains(&alice.id))).await;
    assert_eq!(b.online(), vec![alice.id]);
    // Alice goes away: gone from the set.
    a.stop_live();
    wait_for(&mut b_rx, Duration::from_secs(15), |e| matches!(e, Event::Presence { online } if online.is_empty())).await;
    server.stop().await;
}

#[tokio::test]
async fn a_catch_up_that_fails_after_the_join_is_retried_while_the_channel_stays_subscribed() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let (a, _da) = engine(&server, &alice).await;
    a.send(conv, "während der Catch-up scheitert").await.unwrap();
    deliver_all(&a).await;
    let (b, _db) = engine(&server, &bob).await;

    // REST refuses the catch-up's first request; the websocket and its join are fine.
    sqlx::query("revoke select on table public.conversations from authenticated").execute(server.db.pool()).await.unwrap();
    let mut rx = b.subscribe();
    b.start_live(RealtimeConfig::default()).unwrap();
    wait_for(
        &mut rx,
        Duration::from_secs(20),
        |e| matches!(e, Event::Channel { topic, subscribed: true } if topic.starts_with("user:")),
    )
    .await;
    let meanwhile = collect(&mut rx, Duration::from_secs(2)).await;
    assert!(!meanwhile.iter().any(|e| matches!(e, Event::Synced { .. })), "the catch-up cannot succeed yet: {meanwhile:?}");
    assert!(b.timeline(conv, 10).await.unwrap().is_empty());

    // The line is back: the retry (with backoff, no rejoin) catches up.
    sqlx::query("grant select on table public.conversations to authenticated").execute(server.db.pool()).await.unwrap();
    let events = {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let e = wait_for(&mut rx, deadline - Instant::now(), |_| true).await;
            let done = matches!(e, Event::Synced { .. });
            seen.push(e);
            if done {
                break seen;
            }
        }
    };
    assert!(
        !events.iter().any(|e| matches!(e, Event::Channel { subscribed: false, .. })),
        "the channel stayed subscribed: {events:?}"
    );
    assert_eq!(b.timeline(conv, 10).await.unwrap()[0].content, "während der Catch-up scheitert");
    server.stop().await;
}
