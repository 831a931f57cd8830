//! The realtime actor against a scripted peer, for what the real server never does: leave a
//! heartbeat unanswered (a half-open connection after sleep), or hold back the
//! "Subscribed to PostgreSQL" message. Everything else is tested against the real server
//! (tests/live.rs).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use werkfunk_core::realtime::{ChannelSpec, Incoming, Realtime, RealtimeConfig};
use werkfunk_core::Connectivity;
use werkfunk_protocol::realtime::ChangeBinding;

/// What the peer saw: (connection number, frame).
type Seen = mpsc::UnboundedReceiver<(usize, Value)>;

/// A websocket peer that answers joins (`system` after `system_delay`) and never answers
/// heartbeats.
async fn peer(system_delay: Duration) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/realtime/v1/websocket?apikey=k&vsn=2.0.0", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((tcp, _)) = listener.accept().await {
            n += 1;
            let tx = tx.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                while let Some(Ok(Message::Text(t))) = ws.next().await {
                    let frame: Value = serde_json::from_str(t.as_str()).unwrap();
                    let _ = tx.send((n, frame.clone()));
                    if frame[3] == "phx_join" {
                        let (jr, topic) = (frame[0].clone(), frame[2].clone());
                        let ids: Vec<Value> = frame[4]["config"]["postgres_changes"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .enumerate()
                            .map(|(i, b)| {
                                let mut b = b.clone();
                                b["id"] = json!(i + 1);
                                b
                            })
                            .collect();
                        let reply =
                            json!([jr, frame[1], topic, "phx_reply", {"status": "ok", "response": {"postgres_changes": ids}}]);
                        ws.send(Message::text(reply.to_string())).await.unwrap();
                        tokio::time::sleep(system_delay).await;
                        let system = json!([jr, null, topic, "system", {"extension": "postgres_changes", "status": "ok", "message": "Subscribed to PostgreSQL", "channel": "x"}]);
                        ws.send(Message::text(system.to_string())).await.unwrap();
                    }
                }
            });
        }
    });
    (url, rx)
}

fn spec() -> ChannelSpec {
    ChannelSpec {
        topic: "user:1".into(),
        postgres_changes: vec![ChangeBinding::table("*", "messages", None)],
        presence_key: None,
    }
}

#[tokio::test]
async fn an_unanswered_heartbeat_means_reconnect_and_rejoin_without_leave() {
    let (url, mut seen) = peer(Duration::ZERO).await;
    let (token_tx, token_rx) = watch::channel("token-1".to_owned());
    let config = RealtimeConfig {
        heartbeat: Duration::from_millis(300),
        reconnect: vec![Duration::from_millis(100)],
        connect_timeout: Duration::from_secs(2),
    };
    let (rt, mut incoming) = Realtime::start(url, token_rx, config);
    rt.join(spec()).await;
    let mut status = rt.connectivity();

    // Joined and trusted on the first connection.
    let got = tokio::time::timeout(Duration::from_secs(5), incoming.recv()).await.unwrap().unwrap();
    assert_eq!(got, Incoming::Trusted { topic: "user:1".into() });
    // A new token is pushed to the joined channel.
    token_tx.send_replace("token-2".into());

    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !frames.iter().any(|(n, f): &(usize, Value)| *n >= 2 && f[3] == "phx_join") {
        let f = tokio::time::timeout_at(deadline, seen.recv()).await.expect("a second connection that rejoins").unwrap();
        frames.push(f);
    }
    let first: Vec<&Value> = frames.iter().filter(|(n, _)| *n == 1).map(|(_, f)| f).collect();
    assert!(first.iter().any(|f| f[3] == "heartbeat" && f[2] == "phoenix"), "heartbeats were sent");
    assert!(
        first.iter().any(|f| f[3] == "access_token" && f[4]["access_token"] == "token-2"),
        "the refreshed token reached the channel: {first:?}"
    );
    assert!(frames.iter().all(|(_, f)| f[3] != "phx_leave"), "no phx_leave on reconnect");
    let rejoin = frames.iter().find(|(n, f)| *n >= 2 && f[3] == "phx_join").unwrap();
    assert_eq!(rejoin.1[4]["access_token"], "token-2", "the rejoin carries the current token");
    assert_ne!(rejoin.1[0], first.iter().find(|f| f[3] == "phx_join").unwrap()[0], "a fresh join_ref");
    // The channel was lost and is trusted again on the new connection.
    let mut lost = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), incoming.recv()).await.unwrap().unwrap() {
            Incoming::Lost { .. } => lost = true,
            Incoming::Trusted { .. } if lost => break,
            _ => {}
        }
    }
    // Connectivity is observable; it ends up online again.
    tokio::time::timeout(Duration::from_secs(5), status.wait_for(|s| *s == Connectivity::Online)).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_channel_is_trusted_only_after_subscribed_to_postgresql() {
    let (url, _seen) = peer(Duration::from_millis(700)).await;
    let (_token_tx, token_rx) = watch::channel("t".to_owned());
    let (rt, mut incoming) = Realtime::start(url, token_rx, RealtimeConfig::default());
    let started = tokio::time::Instant::now();
    rt.join(spec()).await;
    let got = tokio::time::timeout(Duration::from_secs(5), incoming.recv()).await.unwrap().unwrap();
    assert_eq!(got, Incoming::Trusted { topic: "user:1".into() });
    assert!(started.elapsed() >= Duration::from_millis(700), "not before the system message");
}

#[tokio::test]
async fn an_unreachable_server_is_offline_since_the_first_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/realtime/v1/websocket?apikey=k&vsn=2.0.0", listener.local_addr().unwrap());
    drop(listener);
    let (_tx, token_rx) = watch::channel("t".to_owned());
    let config = RealtimeConfig { reconnect: vec![Duration::from_millis(50)], ..RealtimeConfig::default() };
    let (rt, _incoming) = Realtime::start(url, token_rx, config);
    let mut status = rt.connectivity();
    let offline = tokio::time::timeout(Duration::from_secs(5), status.wait_for(|s| matches!(s, Connectivity::Offline { .. })))
        .await
        .unwrap()
        .unwrap()
        .clone();
    let Connectivity::Offline { since } = offline else { unreachable!() };
    // Attempts go on; `since` stays the time it was first lost.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let now = status.borrow().clone();
    match now {
        Connectivity::Offline { since: later } => assert_eq!(later, since),
        Connectivity::Connecting { attempt } => assert!(attempt >= 1),
        Connectivity::Online => panic!("nothing listens there"),
    }
}
