//! The realtime client: one actor per websocket connection to `/realtime/v1/websocket`
//! (Supabase Realtime's Phoenix protocol, serializer `vsn=2.0.0`).
//!
//! [`Realtime`] is a handle: a bounded command channel, an observable [`Connectivity`], and the
//! supervised task that owns the socket and all mutable state (the recipe of "Actors with
//! Tokio" and phoenix-channels-client). The task runs an explicit [`State`] machine:
//!
//! ```text
//!   Connecting{attempt} ──ok──▶ Connected ──socket lost / heartbeat missed──▶ Waiting{until}
//!        ▲                                                                          │
//!        └──────────────────────── backoff 1/2/5/10 s (+jitter) ◀───────────────────┘
//! ```
//!
//! - **Heartbeat** on topic `phoenix` every 25 s; if the previous one has no reply when the
//!   next is due, the connection is treated as dead and replaced (the Phoenix JS client's
//!   rule; a half-open TCP connection after sleep never delivers another change).
//! - **Channels** are remembered by topic and rejoined on every new connection with a fresh
//!   `join_ref`, never preceded by `phx_leave` (a leave/join pair on reconnect can leave a
//!   channel closed). A channel with `postgres_changes` bindings is **trusted** only after
//!   the join reply *and* the `system` message "Subscribed to PostgreSQL"; only then is
//!   [`Incoming::Trusted`] sent, and the engine runs a catch-up, so nothing committed
//!   between the last catch-up and the subscription is missed. A channel closed by the
//!   server (`phx_close`, `phx_error`, a channel-level `system` error such as an expired
//!   token) is rejoined after a backoff, with the current token.
//! - **Tokens**: every refreshed access token is pushed to each joined channel
//!   (`access_token`) and used for later joins.
//! - **Connectivity** ([`Connectivity`]) is published on a watch channel: `online` once a
//!   socket is open, `connecting`, or `offline` with the time it was lost.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use werkfunk_protocol::realtime::{binary, ChangeBinding, Frame, Vsn};

use crate::supervisor::{self, TaskHandle};

/// Timing of the connection; [`RealtimeConfig::default`] is the JS client's.
#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    pub heartbeat: Duration,
    /// Waits before reconnect attempts 1, 2, 3, …; the last repeats.
    pub reconnect: Vec<Duration>,
    pub connect_timeout: Duration,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        RealtimeConfig {
            heartbeat: Duration::from_secs(25),
            reconnect: [1, 2, 5, 10].map(Duration::from_secs).to_vec(),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl RealtimeConfig {
    /// The wait before attempt `n` (0-based), with ±20 % jitter (`jitter` in [0, 1)).
    pub fn backoff(&self, n: u32, jitter: f64) -> Duration {
        crate::backoff::Backoff::steps(self.reconnect.clone(), 0.2).delay(n, jitter)
    }
}

/// The state of the connection, for the online/offline banner.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Connectivity {
    Online,
    Connecting { attempt: u32 },
    Offline { since: DateTime<Utc> },
}

/// A channel to join: its topic (without `realtime:`) and configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelSpec {
    pub topic: String,
    pub postgres_changes: Vec<ChangeBinding>,
    /// Presence key (our user id) when this channel carries presence.
    pub presence_key: Option<String>,
}

/// What the connection reports to the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// The channel is joined and (with bindings) subscribed: changes from now on arrive.
    Trusted {
        topic: String,
    },
    /// The channel stopped (socket lost, closed by the server); it will be rejoined.
    Lost {
        topic: String,
    },
    Change {
        topic: String,
        table: String,
        kind: String,
        record: Value,
        old_record: Value,
    },
    Broadcast {
        topic: String,
        event: String,
        payload: Value,
    },
    PresenceState {
        topic: String,
        payload: Value,
    },
    PresenceDiff {
        topic: String,
        payload: Value,
    },
    /// A `system` error or a refused join, as the server worded it.
    Error {
        topic: String,
        message: String,
    },
}

enum Command {
    Join(ChannelSpec),
    Leave(String),
    Broadcast { topic: String, event: String, payload: Value },
    Track { topic: String, payload: Value },
}

/// The handle of one connection. Dropping it closes the connection.
pub struct Realtime {
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<Connectivity>,
    _task: TaskHandle,
}

impl std::fmt::Debug for Realtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realtime").field("status", &*self.status.borrow()).finish()
    }
}

/// `http(s)://host` → `ws(s)://host/realtime/v1/websocket?apikey=…&vsn=2.0.0`.
pub fn socket_url(base: &str, api_key: &str) -> String {
    let base = base.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    format!("{ws}/realtime/v1/websocket?apikey={api_key}&vsn=2.0.0")
}

impl Realtime {
    /// Starts connecting to `url` (see [`socket_url`]) with the access tokens from `token`;
    /// returns the handle and the stream of what arrives.
    pub fn start(url: String, token: watch::Receiver<String>, config: RealtimeConfig) -> (Realtime, mpsc::Receiver<Incoming>) {
        let (commands, command_rx) = mpsc::channel(64);
        let (incoming_tx, incoming) = mpsc::channel(1024);
        let (status_tx, status) = watch::channel(Connectivity::Connecting { attempt: 0 });
        let actor = Actor {
            url,
            config,
            token,
            commands: command_rx,
            incoming: incoming_tx,
            status: status_tx,
            channels: HashMap::new(),
            next_ref: 0,
            offline_since: None,
        };
        let task = supervisor::spawn("realtime", true, actor.run());
        (Realtime { commands, status, _task: task }, incoming)
    }

    pub fn connectivity(&self) -> watch::Receiver<Connectivity> {
        self.status.clone()
    }

    /// Joins `spec.topic` now and on every reconnect until [`Realtime::leave`].
    pub async fn join(&self, spec: ChannelSpec) {
        let _ = self.commands.send(Command::Join(spec)).await;
    }

    pub async fn leave(&self, topic: &str) {
        let _ = self.commands.send(Command::Leave(topic.to_owned())).await;
    }

    /// Sends a broadcast (e.g. `typing`) on a joined channel; dropped when not connected.
    pub async fn broadcast(&self, topic: &str, event: &str, payload: Value) {
        let _ = self.commands.send(Command::Broadcast { topic: topic.into(), event: event.into(), payload }).await;
    }

    /// Tracks our presence on a joined channel.
    pub async fn track(&self, topic: &str, payload: Value) {
        let _ = self.commands.send(Command::Track { topic: topic.into(), payload }).await;
    }
}

#[derive(Debug, Clone, PartialEq)]
enum ChannelStatus {
    /// Waiting for a connection (or for its rejoin time).
    Idle {
        retry_at: Option<Instant>,
        failures: u32,
    },
    /// `phx_join` sent with this ref.
    Joining {
        join_ref: String,
        failures: u32,
    },
    /// Join acknowledged; waiting for "Subscribed to PostgreSQL".
    Joined {
        join_ref: String,
    },
    Trusted {
        join_ref: String,
    },
}

struct Channel {
    spec: ChannelSpec,
    status: ChannelStatus,
}

impl Channel {
    fn join_ref(&self) -> Option<&str> {
        match &self.status {
            ChannelStatus::Joining { join_ref, .. }
            | ChannelStatus::Joined { join_ref }
            | ChannelStatus::Trusted { join_ref } => Some(join_ref),
            ChannelStatus::Idle { .. } => None,
        }
    }
}

/// The connection's state machine.
enum State {
    Connecting { attempt: u32 },
    Connected(Box<Socket>),
    Waiting { until: Instant, attempt: u32 },
    Done,
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a connected socket was given up.
#[derive(Debug)]
enum Lost {
    Closed,
    HeartbeatMissed,
    Shutdown,
}

struct Actor {
    url: String,
    config: RealtimeConfig,
    token: watch::Receiver<String>,
    commands: mpsc::Receiver<Command>,
    incoming: mpsc::Sender<Incoming>,
    status: watch::Sender<Connectivity>,
    channels: HashMap<String, Channel>,
    next_ref: u64,
    offline_since: Option<DateTime<Utc>>,
}

fn full_topic(topic: &str) -> String {
    format!("realtime:{topic}")
}

impl Actor {
    async fn run(mut self) {
        let mut state = State::Connecting { attempt: 0 };
        loop {
            state = match state {
                State::Connecting { attempt } => self.connect(attempt).await,
                State::Connected(socket) => {
                    let lost = self.connected(*socket).await;
                    tracing::info!(?lost, "realtime connection ended");
                    for ch in self.channels.values_mut() {
                        ch.status = ChannelStatus::Idle { retry_at: None, failures: 0 };
                    }
                    for topic in self.channels.keys() {
                        let _ = self.incoming.try_send(Incoming::Lost { topic: topic.clone() });
                    }
                    match lost {
                        Lost::Shutdown => State::Done,
                        _ => {
                            self.went_offline();
                            State::Waiting { until: Instant::now() + self.config.backoff(0, rand::random()), attempt: 1 }
                        }
                    }
                }
                State::Waiting { until, attempt } => self.wait(until, attempt).await,
                State::Done => return,
            };
        }
    }

    fn went_offline(&mut self) {
        let since = *self.offline_since.get_or_insert_with(Utc::now);
        self.status.send_replace(Connectivity::Offline { since });
    }

    async fn connect(&mut self, attempt: u32) -> State {
        self.status.send_replace(Connectivity::Connecting { attempt });
        match tokio::time::timeout(self.config.connect_timeout, tokio_tungstenite::connect_async(self.url.as_str())).await {
            Ok(Ok((socket, _))) => {
                tracing::info!("realtime connected");
                self.offline_since = None;
                self.status.send_replace(Connectivity::Online);
                State::Connected(Box::new(socket))
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, attempt, "realtime connect failed");
                self.went_offline();
                State::Waiting { until: Instant::now() + self.config.backoff(attempt, rand::random()), attempt: attempt + 1 }
            }
            Err(_) => {
                tracing::debug!(attempt, "realtime connect timed out");
                self.went_offline();
                State::Waiting { until: Instant::now() + self.config.backoff(attempt, rand::random()), attempt: attempt + 1 }
            }
        }
    }

    async fn wait(&mut self, until: Instant, attempt: u32) -> State {
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return State::Connecting { attempt },
                cmd = self.commands.recv() => match cmd {
                    None => return State::Done,
                    Some(Command::Join(spec)) => {
                        self.channels.insert(spec.topic.clone(), Channel { spec, status: ChannelStatus::Idle { retry_at: None, failures: 0 } });
                    }
                    Some(Command::Leave(topic)) => { self.channels.remove(&topic); }
                    Some(_) => {} // broadcasts and tracks are not kept while offline
                },
            }
        }
    }

    fn make_ref(&mut self) -> String {
        self.next_ref += 1;
        self.next_ref.to_string()
    }

    async fn send(&mut self, socket: &mut Socket, frame: Frame) -> bool {
        socket.send(WsMessage::text(frame.encode_text(Vsn::V2))).await.is_ok()
    }

    fn join_payload(&self, spec: &ChannelSpec) -> Value {
        json!({
            "config": {
                "broadcast": {"ack": false, "self": false},
                "presence": {"key": spec.presence_key.clone().unwrap_or_default(), "enabled": spec.presence_key.is_some()},
                "postgres_changes": spec.postgres_changes,
                "private": false,
            },
            "access_token": *self.token.borrow(),
        })
    }

    async fn join(&mut self, socket: &mut Socket, topic: &str) -> bool {
        tracing::debug!(topic, "realtime join");
        let Some(ch) = self.channels.get(topic) else { return true };
        let failures = match ch.status {
            ChannelStatus::Idle { failures, .. } => failures,
            _ => 0,
        };
        let payload = self.join_payload(&ch.spec);
        let join_ref = self.make_ref();
        if let Some(ch) = self.channels.get_mut(topic) {
            ch.status = ChannelStatus::Joining { join_ref: join_ref.clone(), failures };
        }
        self.send(socket, frame(Some(&join_ref), Some(&join_ref), &full_topic(topic), "phx_join", payload)).await
    }

    /// The channel failed: rejoin it later, after a backoff.
    fn channel_failed(&mut self, topic: &str, failures: u32) {
        let retry_at = Instant::now() + self.config.backoff(failures, rand::random());
        if let Some(ch) = self.channels.get_mut(topic) {
            ch.status = ChannelStatus::Idle { retry_at: Some(retry_at), failures: failures + 1 };
        }
        let _ = self.incoming.try_send(Incoming::Lost { topic: topic.to_owned() });
    }

    fn next_rejoin(&self) -> Option<Instant> {
        self.channels
            .values()
            .filter_map(|c| match c.status {
                ChannelStatus::Idle { retry_at: Some(t), .. } => Some(t),
                _ => None,
            })
            .min()
    }

    async fn connected(&mut self, mut socket: Socket) -> Lost {
        let topics: Vec<String> = self.channels.keys().cloned().collect();
        for topic in topics {
            if !self.join(&mut socket, &topic).await {
                return Lost::Closed;
            }
        }
        let mut heartbeat = tokio::time::interval_at(Instant::now() + self.config.heartbeat, self.config.heartbeat);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut pending_heartbeat: Option<String> = None;
        loop {
            let rejoin_at = self.next_rejoin();
            tokio::select! {
                frame = socket.next() => match frame {
                    Some(Ok(WsMessage::Text(text))) => {
                        if let Some(r) = self.on_text(&mut socket, text.as_str(), &mut pending_heartbeat).await {
                            return r;
                        }
                    }
                    Some(Ok(WsMessage::Binary(bytes))) => self.on_binary(&bytes),
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return Lost::Closed,
                    Some(Ok(_)) => {}
                },
                _ = heartbeat.tick() => {
                    if pending_heartbeat.is_some() {
                        tracing::warn!("realtime heartbeat unanswered; reconnecting");
                        let _ = socket.close(None).await;
                        return Lost::HeartbeatMissed;
                    }
                    let r = self.make_ref();
                    pending_heartbeat = Some(r.clone());
                    if !self.send(&mut socket, frame(None, Some(&r), "phoenix", "heartbeat", json!({}))).await {
                        return Lost::Closed;
                    }
                }
                _ = async { tokio::time::sleep_until(rejoin_at.expect("guarded")).await }, if rejoin_at.is_some() => {
                    let now = Instant::now();
                    let due: Vec<String> = self.channels.iter()
                        .filter(|(_, c)| matches!(c.status, ChannelStatus::Idle { retry_at: Some(t), .. } if t <= now))
                        .map(|(k, _)| k.clone()).collect();
                    for topic in due {
                        if !self.join(&mut socket, &topic).await { return Lost::Closed; }
                    }
                }
                changed = self.token.changed() => {
                    if changed.is_err() { continue; }
                    let token = self.token.borrow_and_update().clone();
                    let joined: Vec<(String, String)> = self.channels.iter()
                        .filter_map(|(t, c)| c.join_ref().map(|r| (t.clone(), r.to_owned()))).collect();
                    for (topic, join_ref) in joined {
                        let r = self.make_ref();
                        let f = frame(Some(&join_ref), Some(&r), &full_topic(&topic), "access_token", json!({"access_token": token}));
                        if !self.send(&mut socket, f).await {
                            return Lost::Closed;
                        }
                    }
                }
                cmd = self.commands.recv() => match cmd {
                    None => { let _ = socket.close(None).await; return Lost::Shutdown; }
                    Some(Command::Join(spec)) => {
                        let topic = spec.topic.clone();
                        let same = self.channels.get(&topic).is_some_and(|c| c.spec == spec && c.join_ref().is_some());
                        if !same {
                            self.channels.insert(topic.clone(), Channel { spec, status: ChannelStatus::Idle { retry_at: None, failures: 0 } });
                            if !self.join(&mut socket, &topic).await { return Lost::Closed; }
                        }
                    }
                    Some(Command::Leave(topic)) => {
                        if let Some(ch) = self.channels.remove(&topic) {
                            if let Some(join_ref) = ch.join_ref() {
                                let r = self.make_ref();
                                let _ = self.send(&mut socket, frame(Some(join_ref), Some(&r), &full_topic(&topic), "phx_leave", json!({}))).await;
                            }
                        }
                    }
                    Some(Command::Broadcast { topic, event, payload }) => {
                        if let Some(join_ref) = self.channels.get(&topic).and_then(|c| c.join_ref()).map(str::to_owned) {
                            let r = self.make_ref();
                            tracing::trace!(%topic, %event, "realtime broadcast out");
                            let full = full_topic(&topic);
                            let sent = match binary::encode_push(&join_ref, &r, &full, &event, &payload.to_string()) {
                                Ok(bytes) => socket.send(WsMessage::binary(bytes)).await.is_ok(),
                                // A field too long for the binary layout goes as a text frame.
                                Err(_) => {
                                    let inner = json!({"type": "broadcast", "event": event, "payload": payload});
                                    self.send(&mut socket, frame(Some(&join_ref), Some(&r), &full, "broadcast", inner)).await
                                }
                            };
                            if !sent { return Lost::Closed; }
                        }
                    }
                    Some(Command::Track { topic, payload }) => {
                        if let Some(join_ref) = self.channels.get(&topic).and_then(|c| c.join_ref()).map(str::to_owned) {
                            let r = self.make_ref();
                            let payload = json!({"type": "presence", "event": "track", "payload": payload});
                            let f = frame(Some(&join_ref), Some(&r), &full_topic(&topic), "presence", payload);
                            if !self.send(&mut socket, f).await { return Lost::Closed; }
                        }
                    }
                },
            }
        }
    }

    fn emit(&self, incoming: Incoming) {
        if self.incoming.try_send(incoming).is_err() {
            tracing::warn!("realtime: the engine is not keeping up; an event was dropped (the next catch-up finds it)");
        }
    }

    /// Handles one text frame; `Some` ends the connection.
    async fn on_text(&mut self, socket: &mut Socket, text: &str, pending_heartbeat: &mut Option<String>) -> Option<Lost> {
        let frame = match Frame::decode_text(Vsn::V2, text) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "realtime: ignoring a malformed frame");
                return None;
            }
        };
        let Frame { join_ref, reference: r, topic, event, payload } = frame;
        let (topic, event) = (topic.as_str(), event.as_str());
        tracing::trace!(topic, event, status = ?payload.get("status"), "realtime frame in");
        if topic == "phoenix" {
            if event == "phx_reply" && r.is_some() && r == *pending_heartbeat {
                *pending_heartbeat = None;
            }
            return None;
        }
        let short = topic.strip_prefix("realtime:").map(str::to_owned)?;
        let ch = self.channels.get(&short)?;
        // Frames of an older join of this topic are stale.
        let current = ch.join_ref().map(str::to_owned);
        if join_ref.is_some() && join_ref != current {
            return None;
        }
        match event {
            "phx_reply" => {
                let ChannelStatus::Joining { join_ref: jr, failures } = ch.status.clone() else { return None };
                if r.as_deref() != Some(jr.as_str()) {
                    return None;
                }
                if payload.get("status").and_then(Value::as_str) == Some("ok") {
                    let needs_pg = !ch.spec.postgres_changes.is_empty();
                    let ch = self.channels.get_mut(&short).expect("present");
                    if needs_pg {
                        ch.status = ChannelStatus::Joined { join_ref: jr };
                    } else {
                        ch.status = ChannelStatus::Trusted { join_ref: jr };
                        self.emit(Incoming::Trusted { topic: short });
                    }
                } else {
                    let reason = payload.pointer("/response/reason").and_then(Value::as_str).unwrap_or("join refused").to_owned();
                    tracing::warn!(topic = %short, %reason, "realtime join refused");
                    self.emit(Incoming::Error { topic: short.clone(), message: reason });
                    self.channel_failed(&short, failures);
                }
            }
            "system" => {
                let status = payload.get("status").and_then(Value::as_str).unwrap_or("");
                let extension = payload.get("extension").and_then(Value::as_str).unwrap_or("");
                let message = payload.get("message").and_then(Value::as_str).unwrap_or("").to_owned();
                if status == "ok" && extension == "postgres_changes" {
                    if let ChannelStatus::Joined { join_ref } = ch.status.clone() {
                        self.channels.get_mut(&short).expect("present").status = ChannelStatus::Trusted { join_ref };
                        self.emit(Incoming::Trusted { topic: short });
                    }
                } else if status == "error" {
                    tracing::warn!(topic = %short, %message, "realtime system error");
                    self.emit(Incoming::Error { topic: short.clone(), message });
                    if extension != "postgres_changes" {
                        // Channel-level errors close the channel; rejoin with the current token.
                        self.channel_failed(&short, 0);
                    }
                }
            }
            "phx_close" | "phx_error" => {
                tracing::info!(topic = %short, event, "realtime channel closed by the server");
                self.channel_failed(&short, 0);
            }
            "postgres_changes" => {
                let data = payload.get("data").cloned().unwrap_or(Value::Null);
                let s = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                self.emit(Incoming::Change {
                    topic: short,
                    table: s("table"),
                    kind: s("type"),
                    record: data.get("record").cloned().unwrap_or(Value::Null),
                    old_record: data.get("old_record").cloned().unwrap_or(Value::Null),
                });
            }
            "broadcast" => {
                let event = payload.get("event").and_then(Value::as_str).unwrap_or("").to_owned();
                self.emit(Incoming::Broadcast {
                    topic: short,
                    event,
                    payload: payload.get("payload").cloned().unwrap_or(Value::Null),
                });
            }
            "presence_state" => self.emit(Incoming::PresenceState { topic: short, payload }),
            "presence_diff" => self.emit(Incoming::PresenceDiff { topic: short, payload }),
            _ => {}
        }
        let _ = socket;
        None
    }

    fn on_binary(&mut self, bytes: &[u8]) {
        tracing::trace!(len = bytes.len(), kind = bytes.first(), "realtime binary frame in");
        match binary::decode_broadcast(bytes) {
            Ok(b) => {
                if let Some(short) = b.topic.strip_prefix("realtime:") {
                    if self.channels.contains_key(short) {
                        self.emit(Incoming::Broadcast { topic: short.to_owned(), event: b.event, payload: b.payload });
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "realtime: ignoring a binary frame"),
        }
    }
}

/// A text frame (the shared [`Frame`] type, serialised as vsn 2.0.0).
fn frame(join_ref: Option<&str>, r: Option<&str>, topic: &str, event: &str, payload: Value) -> Frame {
    Frame {
        join_ref: join_ref.map(str::to_owned),
        reference: r.map(str::to_owned),
        topic: topic.to_owned(),
        event: event.to_owned(),
        payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_and_backoff() {
        assert_eq!(socket_url("http://127.0.0.1:1/", "k"), "ws://127.0.0.1:1/realtime/v1/websocket?apikey=k&vsn=2.0.0");
        assert!(socket_url("https://x.supabase.co", "k").starts_with("wss://x.supabase.co/realtime/v1/websocket"));
        let c = RealtimeConfig::default();
        assert_eq!(c.backoff(0, 0.5), Duration::from_secs(1));
        assert_eq!(c.backoff(2, 0.5), Duration::from_secs(5));
        assert_eq!(c.backoff(9, 0.5), Duration::from_secs(10));
        assert!(c.backoff(3, 0.0) >= Duration::from_secs(8));
    }
}
