//! Deterministic replays of what the convergence run found with a client's wall clock off by
//! ten minutes (libfaketime on `werkfunk-cli`; its monotonic clock is left alone):
//!
//! - ten minutes behind, marking a conversation read stamped it with the client's clock, so
//!   the last ten minutes of messages stayed unread on the server however often it was read;
//! - ten minutes ahead, the engine judged the server's `expires_at` on its own clock, saw
//!   every token as expired and refreshed before every command (221 refresh tokens in one
//!   short run, against 5 for a client with a true clock).

use std::time::Duration;

use werkfunk_faults::procs::{self, CliClient};
use werkfunk_testkit::{TestServer, TestUser};

const LIMIT: Duration = Duration::from_secs(90);
const TEN_MINUTES: i64 = 600;

async fn skewed_cli(server: &TestServer, user: &TestUser, offset: i64) -> CliClient {
    let bins = procs::binaries().expect("binaries");
    let mut cli = CliClient::new(&user.name, &bins.cli, &server.anon_key).expect("profile");
    cli.skew_clock(offset).expect("libfaketime (cargo xtask setup installs the faketime package)");
    let r = cli.run(&server.url, &["login", "--email", &user.email, "--password", &user.password], LIMIT, None).await.unwrap();
    assert!(r.ok(), "login: {}", r.stderr);
    cli
}

async fn refresh_tokens_of(server: &TestServer, user: &TestUser) -> i64 {
    sqlx::query_scalar("select count(*) from auth.refresh_tokens where user_id = $1")
        .bind(user.id)
        .fetch_one(server.db.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_client_ten_minutes_behind_can_mark_a_conversation_read() {
    let server = TestServer::start().await;
    let (alice, bob, conv) = server.alice_and_bob().await;
    let cli = skewed_cli(&server, &bob, -TEN_MINUTES).await;
    // The clock really is behind for the client.
    let r = cli.run(&server.url, &["conversations"], LIMIT, None).await.unwrap();
    assert!(r.ok(), "{}", r.stderr);
    for text in ["Angebot kommt", "Termin am Montag?"] {
        let status = server
            .request(reqwest::Method::POST, "/rest/v1/messages", Some(&alice))
            .json(&serde_json::json!({"conversation_id": conv, "sender_id": alice.id, "content": text}))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{status}");
    }
    for args in [vec!["sync"], vec!["read", &conv.to_string()], vec!["sync"]] {
        let r = cli.run(&server.url, &args, LIMIT, None).await.unwrap();
        assert!(r.ok(), "{args:?}: {} {}", r.stdout, r.stderr);
    }
    let list = cli.run(&server.url, &["conversations"], LIMIT, None).await.unwrap();
    let entry = list.json().into_iter().find(|c| c["conversation_id"] == conv.to_string()).expect("the conversation is listed");
    assert_eq!(entry["unread_count"], 0, "{entry}");
    let unread_on_server: i64 = sqlx::query_scalar(
        "select count(*) from public.messages m join public.conversation_members cm
             on cm.conversation_id = m.conversation_id and cm.user_id = $2
          where m.conversation_id = $1 and m.sender_id <> $2 and m.created_at > cm.last_read_at",
    )
    .bind(conv)
    .bind(bob.id)
    .fetch_one(server.db.pool())
    .await
    .unwrap();
    assert_eq!(unread_on_server, 0, "the server's read marker covers the messages read");
    server.stop().await;
}

#[tokio::test]
async fn a_client_ten_minutes_ahead_refreshes_its_token_only_when_it_is_due() {
    // Tokens live ten minutes: to a clock ten minutes ahead, the server's `expires_at` has
    // just passed.
    let server = TestServer::start_with(|c| c.jwt_exp = Duration::from_secs(TEN_MINUTES as u64)).await;
    let alice = server.signup("Alice", "tradesperson").await;
    let before = refresh_tokens_of(&server, &alice).await;
    let cli = skewed_cli(&server, &alice, TEN_MINUTES).await;
    for _ in 0..4 {
        let r = cli.run(&server.url, &["conversations"], LIMIT, None).await.unwrap();
        assert!(r.ok(), "{}", r.stderr);
    }
    assert_eq!(refresh_tokens_of(&server, &alice).await - before, 1, "the sign-in's refresh token only: no refresh was due");
    server.stop().await;
}
