//! `werkfunk-cli` as a script would use it, against the real server and Postgres (testkit):
//! offline sends, a kill -9 in the middle of a drain, a member removed while offline, a
//! damaged or locked cache.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;
use werkfunk_testkit::{TestServer, TestUser};

const CLI: &str = env!("CARGO_BIN_EXE_werkfunk-cli");

/// One profile folder driven through the binary.
struct Client {
    dir: tempfile::TempDir,
    url: String,
    anon_key: String,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The stdout lines as JSON objects.
    fn json(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\nstderr: {}", self.stderr)))
            .collect()
    }

    fn one(&self) -> Value {
        let mut all = self.json();
        assert_eq!(all.len(), 1, "expected one line: {}\nstderr: {}", self.stdout, self.stderr);
        all.remove(0)
    }

    #[track_caller]
    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "exit {}\nstdout: {}\nstderr: {}", self.code, self.stdout, self.stderr);
        self
    }
}

impl Client {
    fn new(server: &TestServer) -> Client {
        Client { dir: tempfile::tempdir().expect("temp dir"), url: server.url.clone(), anon_key: server.anon_key.clone() }
    }

    fn profile(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(CLI);
        c.arg("--profile")
            .arg(self.dir.path())
            .arg("--json")
            .args(args)
            .env("WERKFUNK_URL", &self.url)
            .env("WERKFUNK_ANON_KEY", &self.anon_key)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("WERKFUNK_SECRET_STORE", "file")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    async fn run(&self, args: &[&str]) -> Run {
        let out: Output = tokio::time::timeout(Duration::from_secs(120), self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("werkfunk-cli {args:?} did not finish in 120 s"))
            .expect("run werkfunk-cli");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn login(&self, user: &TestUser) -> Uuid {
        let r = self.run(&["login", "--email", &user.email, "--password", &user.password]).await.ok();
        r.one()["user_id"].as_str().unwrap().parse().unwrap()
    }

    async fn send(&self, conversation: Uuid, text: &str) -> (i32, Value) {
        let r = self.run(&["send", &conversation.to_string(), text]).await;
        let v = r.one();
        (r.code, v)
    }

    fn account_dir(&self, user: Uuid) -> PathBuf {
        self.dir.path().join(user.to_string())
    }
}

async fn contents(server: &TestServer, conversation: Uuid) -> Vec<String> {
    sqlx::query_scalar("select content from messages where conversation_id = $1 order by created_at, id")
        .bind(conversation)
        .fetch_all(server.db.pool())
        .await
        .expect("read messages")
}

async fn rpc(server: &TestServer, user: &TestUser, function: &str, args: Value) {
    let resp = server
        .request(reqwest::Method::POST, &format!("/rest/v1/rpc/{function}"), Some(user))
        .json(&args)
        .send()
        .await
        .expect("rpc");
    assert!(resp.status().is_success(), "{function}: {} {}", resp.status(), resp.text().await.unwrap_or_default());
}

#[tokio::test]
async fn signup_new_send_history_and_search() {
    let server = TestServer::start().await;
    let a = Client::new(&server);
    let b = Client::new(&server);
    let ra = a
        .run(&[
            "signup",
            "--email",
            "meister@werkfunk.test",
            "--password",
            "Sicheres-Passwort-1",
            "--name",
            "Meister Müller",
            "--role",
            "tradesperson",
        ])
        .await
        .ok();
    let a_id: Uuid = ra.one()["user_id"].as_str().unwrap().parse().unwrap();
    let rb = b
        .run(&["signup", "--email", "kundin@werkfunk.test", "--password", "Sicheres-Passwort-1", "--name", "Kundin Schmidt"])
        .await
        .ok();
    let b_id: Uuid = rb.one()["user_id"].as_str().unwrap().parse().unwrap();

    // The session is kept in a user-only file (no keyring here), never on stdout.
    let secret = a.account_dir(a_id).join("session.secret");
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert!(!ra.stdout.contains("refresh_token") && !ra.stderr.contains("refresh_token"));

    let people = a.run(&["people", "Schmidt"]).await.ok().json();
    assert_eq!(people.len(), 1);
    assert_eq!(people[0]["id"], json!(b_id));
    assert_eq!(people[0]["name"], "Kundin Schmidt");

    let conv: Uuid = a.run(&["new", "--type", "project", "--with", &b_id.to_string(), "--title", "Bad"]).await.ok().one()
        ["conversation_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (code, sent) = a.send(conv, "Die Fließen kommen morgen").await;
    assert_eq!(code, 0);
    assert_eq!(sent["state"], "sent");

    b.run(&["sync"]).await.ok();
    let convs = b.run(&["conversations"]).await.ok().json();
    assert_eq!(convs.len(), 1);
    assert_eq!(convs[0]["unread_count"], 1);
    let history = b.run(&["history", &conv.to_string()]).await.ok().json();
    assert_eq!(history.len(), 1);
    for key in ["id", "conversation_id", "sender_id", "content", "created_at", "state"] {
        assert!(history[0].get(key).is_some(), "history line lacks {key}: {}", history[0]);
    }
    assert_eq!(history[0]["id"], sent["message_id"]);
    assert_eq!(history[0]["sender_id"], json!(a_id));

    // Search folds ß and diacritics, and works on prefixes.
    for q in ["fliessen", "Fließen", "FLIESS", "morgen"] {
        let hits = b.run(&["search", q]).await.ok().json();
        assert_eq!(hits.len(), 1, "search {q:?}");
        assert_eq!(hits[0]["content"], "Die Fließen kommen morgen");
    }
    assert!(b.run(&["search", "übermorgen"]).await.ok().json().is_empty());

    // Bad input: an empty message is refused before anything is stored.
    let r = a.run(&["send", &conv.to_string(), "   "]).await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("invalid_input"), "{}", r.stderr);
    assert!(a.run(&["outbox"]).await.ok().json().is_empty());

    // Read state goes through the outbox; B's unread count falls to 0, and so does the
    // server's notification for that conversation (the bell follows the conversation).
    let unread_notifications = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from public.notifications where user_id = $1 and not read")
            .bind(b_id)
            .fetch_one(server.db.pool())
            .await
            .unwrap()
    };
    assert_eq!(unread_notifications().await, 1);
    b.run(&["read", &conv.to_string()]).await.ok();
    b.run(&["sync"]).await.ok();
    assert_eq!(b.run(&["conversations"]).await.ok().json()[0]["unread_count"], 0);
    assert_eq!(unread_notifications().await, 0);
    a.run(&["sync"]).await.ok();
    assert_eq!(a.run(&["history", &conv.to_string()]).await.ok().json()[0]["state"], "read");

    a.run(&["logout"]).await.ok();
    assert!(!secret.exists());
    let r = a.run(&["history", &conv.to_string()]).await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("signed_out"), "{}", r.stderr);
    server.stop().await;
}

#[tokio::test]
async fn offline_sends_go_out_once_in_order_when_the_server_is_back() {
    let server = TestServer::start().await;
    let alice = server.signup("Alice Fliesen", "tradesperson").await;
    let bob = server.signup("Bob Kunde", "customer").await;
    let conv = server.conversation("direct", None, &alice, &[&bob]).await;
    let a = Client::new(&server);
    a.login(&alice).await;
    a.run(&["sync"]).await.ok();

    let addr = server.addr();
    let db = server.stop().await;
    let mut ids = Vec::new();
    for text in ["eins", "zwei", "drei"] {
        let (code, v) = a.send(conv, text).await;
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["state"], "queued");
        ids.push(v["message_id"].clone());
    }
    let pending = a.run(&["outbox"]).await.ok().json();
    assert_eq!(pending.iter().map(|e| e["message_id"].clone()).collect::<Vec<_>>(), ids);
    // Readable offline, in order, marked queued.
    let history = a.run(&["history", &conv.to_string()]).await.ok().json();
    assert_eq!(history.iter().map(|m| m["content"].as_str().unwrap()).collect::<Vec<_>>(), ["eins", "zwei", "drei"]);
    assert!(history.iter().all(|m| m["state"] == "queued"));
    // `sync` offline: the outbox stays, the exit says it could not sync.
    assert_ne!(a.run(&["sync"]).await.code, 0);

    let server = TestServer::start_on(db, |c| c.listen = addr).await;
    let synced = a.run(&["sync"]).await.ok().one();
    assert_eq!(synced["queued"], 0);
    assert_eq!(contents(&server, conv).await, ["eins", "zwei", "drei"]);
    assert!(a.run(&["outbox"]).await.ok().json().is_empty());
    // A second sync sends nothing again.
    a.run(&["sync"]).await.ok();
    assert_eq!(contents(&server, conv).await.len(), 3);

    let b = Client::new(&server);
    b.login(&bob).await;
    b.run(&["sync"]).await.ok();
    let seen = b.run(&["history", &conv.to_string()]).await.ok().json();
    assert_eq!(seen.iter().map(|m| m["id"].clone()).collect::<Vec<_>>(), ids);
    b.run(&["sync"]).await.ok();
    assert_eq!(b.run(&["history", &conv.to_string()]).await.ok().json().len(), 3);
    server.stop().await;
}

#[tokio::test]
async fn kill_9_in_the_middle_of_a_drain_loses_and_duplicates_nothing() {
    let server = TestServer::start().await;
    let (alice, _, conv) = server.alice_and_bob().await;
    let a = Client::new(&server);
    a.login(&alice).await;

    // 200 messages queued while the server is away (through the engine, as `send` would).
    let db = server.stop().await;
    {
        let config = werkfunk_core::ServerConfig { url: a.url.clone(), anon_key: a.anon_key.clone() };
        let engine = werkfunk_core::Engine::open(a.profile(), &config).await.unwrap();
        for i in 0..200 {
            engine.send(conv, &format!("msg {i:03}")).await.unwrap();
        }
    }
    let server = TestServer::start_on(db, |_| {}).await;
    let a = Client { url: server.url.clone(), ..a };
    assert_eq!(a.run(&["outbox"]).await.ok().json().len(), 200);

    let mut child = a.command(&["sync"]).spawn().expect("start sync");
    let mut at_kill = 0;
    for _ in 0..4000 {
        at_kill = contents(&server, conv).await.len();
        if at_kill >= 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.start_kill().expect("kill -9");
    let _ = child.wait().await;
    let after_kill = contents(&server, conv).await.len();
    eprintln!("killed the drain with {at_kill} delivered ({after_kill} after the kill settled)");
    assert!(at_kill >= 20, "the drain never started");

    a.run(&["sync"]).await.ok();
    let expected: Vec<String> = (0..200).map(|i| format!("msg {i:03}")).collect();
    if contents(&server, conv).await != expected {
        // Name the rows around the kill, to read a failure without a rerun (it is rare).
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "select content, created_at::text, id::text from messages where conversation_id = $1 order by created_at, id limit 40",
        )
        .bind(conv)
        .fetch_all(server.db.pool())
        .await
        .expect("read messages");
        for (content, created_at, id) in rows {
            eprintln!("stored: {content} at {created_at} ({id})");
        }
    }
    assert_eq!(contents(&server, conv).await, expected, "every message once, in order");
    assert!(a.run(&["outbox"]).await.ok().json().is_empty());
    let history = a.run(&["history", &conv.to_string(), "--limit", "500"]).await.ok().json();
    assert_eq!(history.len(), 200);
    assert!(history.iter().all(|m| m["state"] == "sent"));
    server.stop().await;
}

#[tokio::test]
async fn removed_while_offline_fails_with_the_rls_reason_and_later_messages_wait() {
    let server = TestServer::start().await;
    let owner = server.signup("Olga Owner", "tradesperson").await;
    let member = server.signup("Max Member", "customer").await;
    let conv = server.conversation("group", Some("Baustelle"), &owner, &[&member]).await;
    let m = Client::new(&server);
    m.login(&member).await;
    m.run(&["sync"]).await.ok();

    // Offline: two messages queued. Meanwhile the owner removes the member.
    let addr = server.addr();
    let db = server.stop().await;
    assert_eq!(m.send(conv, "erste").await.1["state"], "queued");
    assert_eq!(m.send(conv, "zweite").await.1["state"], "queued");
    let server = TestServer::start_on(db, |c| c.listen = addr).await;
    rpc(&server, &owner, "remove_conversation_member", json!({"p_conversation_id": conv, "p_user_id": member.id})).await;

    let r = m.run(&["sync"]).await;
    assert_eq!(r.code, 3, "sync reports the failure: {}", r.stderr);
    let entries = m.run(&["outbox"]).await.ok().json();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["state"], "failed");
    assert!(entries[0]["error"].as_str().unwrap().contains("42501"), "{}", entries[0]);
    assert_eq!(entries[1]["state"], "queued", "the later one waits");
    // A new message waits behind the failed one too.
    let (code, third) = m.send(conv, "dritte").await;
    assert_eq!((code, third["state"].as_str().unwrap()), (0, "queued"));
    assert!(contents(&server, conv).await.is_empty());
    let history = m.run(&["history", &conv.to_string()]).await.ok().json();
    assert_eq!(history.iter().map(|h| h["state"].as_str().unwrap()).collect::<Vec<_>>(), ["failed", "queued", "queued"]);

    // Re-added: retry sends the failed one, and the rest follows in order.
    rpc(&server, &owner, "add_conversation_members", json!({"p_conversation_id": conv, "p_user_ids": [member.id]})).await;
    let failed_entry = entries[0]["entry_id"].as_str().unwrap().to_owned();
    assert_eq!(m.run(&["retry", &failed_entry]).await.ok().one()["state"], "sent");
    m.run(&["sync"]).await.ok();
    assert_eq!(contents(&server, conv).await, ["erste", "zweite", "dritte"]);

    // Removed again: a send fails at once (exit 3); the next waits; discarding the failed
    // one (after being re-added) lets the next go out, and the discarded one never does.
    rpc(&server, &owner, "remove_conversation_member", json!({"p_conversation_id": conv, "p_user_id": member.id})).await;
    let (code, v) = m.send(conv, "vierte").await;
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["state"], "failed");
    assert!(v["error"].as_str().unwrap().contains("42501"));
    assert_eq!(m.send(conv, "fünfte").await.1["state"], "queued");
    rpc(&server, &owner, "add_conversation_members", json!({"p_conversation_id": conv, "p_user_ids": [member.id]})).await;
    let entries = m.run(&["outbox"]).await.ok().json();
    m.run(&["discard", entries[0]["entry_id"].as_str().unwrap()]).await.ok();
    m.run(&["sync"]).await.ok();
    assert_eq!(contents(&server, conv).await, ["erste", "zweite", "dritte", "fünfte"]);
    assert!(m.run(&["outbox"]).await.ok().json().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_damaged_cache_is_reported_and_the_outbox_survives_it() {
    let server = TestServer::start().await;
    let (alice, _, conv) = server.alice_and_bob().await;
    let a = Client::new(&server);
    let me = a.login(&alice).await;
    let (_, first) = a.send(conv, "vor dem Schaden").await;
    assert_eq!(first["state"], "sent");

    let addr = server.addr();
    let db = server.stop().await;
    a.send(conv, "eins").await;
    a.send(conv, "zwei").await;

    let dir = a.account_dir(me);
    let outbox_before = std::fs::read(dir.join("outbox.sqlite3")).unwrap();
    for f in ["cache.sqlite3-wal", "cache.sqlite3-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    std::fs::write(dir.join("cache.sqlite3"), b"this is not a database, it was overwritten by a broken disk").unwrap();

    let r = a.run(&["history", &conv.to_string()]).await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("store_corrupt") && r.stderr.contains("cache.sqlite3"), "{}", r.stderr);
    let r = a.run(&["send", &conv.to_string(), "drei"]).await;
    assert_eq!(r.code, 1, "nothing is queued into a damaged store");
    assert_eq!(std::fs::read(dir.join("outbox.sqlite3")).unwrap(), outbox_before, "the outbox file is untouched");

    let repaired = a.run(&["repair"]).await.ok().one();
    assert!(repaired["cache_set_aside"].as_str().unwrap().contains("cache.sqlite3.damaged-"));
    let server = TestServer::start_on(db, |c| c.listen = addr).await;
    a.run(&["sync"]).await.ok();
    assert_eq!(contents(&server, conv).await, ["vor dem Schaden", "eins", "zwei"]);
    let history = a.run(&["history", &conv.to_string()]).await.ok().json();
    assert_eq!(history.len(), 3, "the rebuilt cache has the history again");
    server.stop().await;
}

#[tokio::test]
async fn a_locked_store_is_a_clear_error_and_loses_nothing() {
    let server = TestServer::start().await;
    let (alice, _, conv) = server.alice_and_bob().await;
    let a = Client::new(&server);
    let me = a.login(&alice).await;
    let addr = server.addr();
    let db = server.stop().await;
    assert_eq!(a.send(conv, "eins").await.1["state"], "queued");

    // Another process holds the outbox file's write lock.
    let dir = a.account_dir(me);
    let holder = rusqlite::Connection::open(dir.join("outbox.sqlite3")).unwrap();
    holder.execute_batch("begin exclusive").unwrap();
    let r = a.run(&["send", &conv.to_string(), "zwei"]).await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("store_locked"), "{}", r.stderr);
    holder.execute_batch("rollback").unwrap();
    drop(holder);

    assert_eq!(a.send(conv, "drei").await.1["state"], "queued");
    let server = TestServer::start_on(db, |c| c.listen = addr).await;
    a.run(&["sync"]).await.ok();
    assert_eq!(contents(&server, conv).await, ["eins", "drei"]);
    server.stop().await;
}

#[tokio::test]
async fn a_newcomer_logs_in_and_sees_conversations_and_names_without_a_manual_sync() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let a = Client::new(&server);
    a.login(&alice).await;
    assert_eq!(a.send(conv, "Guten Morgen, ich komme um acht.").await.1["state"], "sent");

    // Bob's first commands after `login`: no `sync` in between.
    let b = Client::new(&server);
    b.login(&bob).await;
    let convs = b.run(&["conversations"]).await.ok().json();
    assert_eq!(convs.len(), 1);
    assert_eq!(convs[0]["title"], "Alice", "a direct conversation is named after the other person");
    assert_eq!(convs[0]["last_message"], "Guten Morgen, ich komme um acht.");
    // Human output names people and shows local times, not UUIDs.
    let out = tokio::process::Command::new(CLI)
        .arg("--profile")
        .arg(b.profile())
        .args(["history", &conv.to_string()])
        .env("WERKFUNK_URL", &b.url)
        .env("WERKFUNK_ANON_KEY", &b.anon_key)
        .env("WERKFUNK_SECRET_STORE", "file")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Alice: Guten Morgen"), "{text}");
    assert!(!text.contains(&alice.id.to_string()), "{text}");
    let local = chrono::Local::now().format("%Y-%m-%d").to_string();
    assert!(text.contains(&local), "{text}");
    let hits = b.run(&["search", "acht"]).await.ok().json();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["sender_name"], "Alice");

    // The server away: reading commands say so on stderr and show the cache.
    let _db = server.stop().await;
    let r = b.run(&["history", &conv.to_string()]).await.ok();
    assert_eq!(r.json().len(), 1);
    assert!(r.stderr.contains("showing the local cache"), "{}", r.stderr);
}

#[tokio::test]
async fn a_profile_in_use_by_another_process_is_one_line_and_exit_1() {
    let server = TestServer::start().await;
    let (alice, _, _) = server.alice_and_bob().await;
    let a = Client::new(&server);
    a.login(&alice).await;
    let config = werkfunk_core::ServerConfig { url: a.url.clone(), anon_key: a.anon_key.clone() };
    let holder = werkfunk_core::Engine::open(a.profile(), &config).await.unwrap();
    let r = a.run(&["conversations"]).await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("profile_in_use"), "{}", r.stderr);
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    drop(holder);
    a.run(&["conversations"]).await.ok();
    server.stop().await;
}
