//! One websocket connection: a task that owns the socket's read half and its joined
//! channels, reads frames, runs the Phoenix channel protocol and hands what it sends to a
//! writer task of its own.
//!
//! Writes never block the connection: the writer sends with a timeout
//! (`Limits::send_timeout`), the connection queues to it without waiting, and takes from the
//! hub's queue only while the writer has room. So a client that stops reading is closed —
//! its writer times out, or the hub's queue for it fills (the slow-consumer kick) — and the
//! idle timeout fires whatever the client does.
//!
//! The connection is `Open` until the client closes, goes silent past the idle timeout
//! (no heartbeat), falls behind its outbound queue, or the server shuts down; then its
//! channels leave the hub and its presence entries leave their topics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use uuid::Uuid;
use werkfunk_protocol::realtime::{binary, ChangeBinding, Frame, Vsn};

use super::filter::{self, Binding};
use super::hub::{reply, system, JoinRefused, Member, Outbound, SocketHandle, Subscription};
use super::Realtime;
use crate::caller::{self, Caller};
use crate::jwt::{self, JwtError};

/// A joined channel.
struct Channel {
    topic: Arc<str>,
    join_ref: Option<String>,
    caller: Caller,
    ack: bool,
    presence_key: String,
    /// Its `postgres_changes` bindings.
    bindings: usize,
}

/// Bytes queued for the writer task at most; past this the client is not keeping up and the
/// connection closes. (A burst of replies to a burst of frames fits easily.)
const WRITE_BUFFER_BYTES: usize = 1024 * 1024;
/// The connection takes more from the hub's queue only while less than this is queued.
const WRITE_LOW_WATER: usize = WRITE_BUFFER_BYTES / 4;

/// The connection's side of the writer task's queue, bounded in bytes.
struct Writes {
    tx: mpsc::UnboundedSender<Message>,
    queued: Arc<AtomicUsize>,
}

fn message_bytes(m: &Message) -> usize {
    match m {
        Message::Text(t) => t.len(),
        Message::Binary(b) => b.len(),
        _ => 0,
    }
}

/// Why the connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    ClosedByClient,
    Idle,
    TooSlow,
    ServerShutdown,
}

struct Connection {
    rt: Arc<Realtime>,
    vsn: Vsn,
    /// The socket's API key: the claims of a join without its own `access_token`.
    key: Caller,
    handle: SocketHandle,
    /// The writer task's queue.
    writes: Writes,
    channels: HashMap<Arc<str>, Channel>,
    last_seen: Instant,
    state: State,
    /// Frames received in the current one-second window, and when it began.
    window: (Instant, u32),
}

/// Serves one upgraded websocket until it ends.
pub async fn serve(ws: WebSocket, rt: Arc<Realtime>, vsn: Vsn, key: Caller) {
    let (tx, mut rx) = mpsc::channel(rt.limits.socket_queue);
    let handle = SocketHandle { id: rt.next_socket_id(), tx, kick: Arc::new(Notify::new()) };
    let (sink, mut stream) = ws.split();
    let (tx, write_queue) = mpsc::unbounded_channel();
    let writes = Writes { tx, queued: Arc::new(AtomicUsize::new(0)) };
    let send_timeout = rt.limits.send_timeout;
    let (stalled, drained) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let mut writer =
        tokio::spawn(write(sink, write_queue, writes.queued.clone(), send_timeout, stalled.clone(), drained.clone()));
    let mut shutdown = rt.shutdown_signal();
    let idle = rt.limits.idle_timeout;
    let now = Instant::now();
    let mut conn = Connection {
        rt,
        vsn,
        key,
        handle,
        writes,
        channels: HashMap::new(),
        last_seen: now,
        state: State::Open,
        window: (now, 0),
    };
    let far = Duration::from_secs(365 * 24 * 3600);
    while conn.state == State::Open {
        let expiry = conn.next_expiry().unwrap_or_else(|| Instant::now() + far);
        let kick = conn.handle.kick.clone();
        let writer_has_room = conn.writes.queued.load(Ordering::Acquire) < WRITE_LOW_WATER;
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    conn.last_seen = Instant::now();
                    let frame = Frame::decode_text(conn.vsn, text.as_str());
                    conn.on_decoded(frame).await;
                }
                Some(Ok(Message::Binary(bytes))) => {
                    conn.last_seen = Instant::now();
                    let frame = match conn.vsn {
                        Vsn::V2 => Frame::decode_binary(&bytes),
                        Vsn::V1 => Err(werkfunk_protocol::realtime::DecodeError::BinaryOnV1),
                    };
                    conn.on_decoded(frame).await;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => conn.last_seen = Instant::now(),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => conn.state = State::ClosedByClient,
            },
            out = rx.recv(), if writer_has_room => {
                if let Some(out) = out {
                    conn.on_outbound(out);
                }
            }
            _ = kick.notified() => conn.state = State::TooSlow,
            _ = stalled.notified() => conn.state = State::TooSlow,
            // The writer has room again: take from the hub's queue.
            _ = drained.notified(), if !writer_has_room => {}
            _ = shutdown.changed() => conn.state = State::ServerShutdown,
            _ = tokio::time::sleep_until(expiry) => conn.expire(),
            _ = tokio::time::sleep_until(conn.last_seen + idle) => conn.state = State::Idle,
        }
    }
    let close = match conn.state {
        State::ServerShutdown => Some((1001, "server shutting down")),
        State::TooSlow => Some((1008, "too slow to keep up")),
        State::Idle => Some((1000, "heartbeat timeout")),
        _ => None,
    };
    if let Some((code, reason)) = close {
        let _ = conn.writes.tx.send(Message::Close(Some(CloseFrame { code, reason: reason.into() })));
    }
    tracing::debug!(socket = conn.handle.id, state = ?conn.state, "realtime socket closed");
    conn.leave_everything();
    drop(conn);
    // The writer finishes what is queued (the close frame last) within one send timeout;
    // a client that does not read is cut off.
    if tokio::time::timeout(send_timeout, &mut writer).await.is_err() {
        writer.abort();
    }
}

/// The writer task: sends what the connection queues, each write bounded by `timeout`; a
/// write that does not finish in time (the client is not reading) ends it and tells the
/// connection (`stalled`). Below the low-water mark it wakes the connection (`drained`).
async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut queue: mpsc::UnboundedReceiver<Message>,
    queued: Arc<AtomicUsize>,
    timeout: Duration,
    stalled: Arc<Notify>,
    drained: Arc<Notify>,
) {
    while let Some(message) = queue.recv().await {
        queued.fetch_sub(message_bytes(&message), Ordering::AcqRel);
        let closing = matches!(message, Message::Close(_));
        match tokio::time::timeout(timeout, sink.send(message)).await {
            Ok(Ok(())) if closing => break,
            Ok(Ok(())) => {
                if queued.load(Ordering::Acquire) < WRITE_LOW_WATER {
                    drained.notify_one();
                }
            }
            Ok(Err(_)) => break,
            Err(_) => {
                stalled.notify_one();
                return;
            }
        }
    }
    let _ = tokio::time::timeout(timeout, sink.close()).await;
}

fn json_str(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// A `flexible` boolean: `true`, `"true"`.
fn flag(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

impl Connection {
    /// Queues `message` for the writer; a full queue means the client is not keeping up.
    fn queue(&mut self, message: Message) {
        let size = message_bytes(&message);
        let before = self.writes.queued.fetch_add(size, Ordering::AcqRel);
        if before > 0 && before + size > WRITE_BUFFER_BYTES {
            self.writes.queued.fetch_sub(size, Ordering::AcqRel);
            if self.state == State::Open {
                self.state = State::TooSlow;
            }
            return;
        }
        if self.writes.tx.send(message).is_err() && self.state == State::Open {
            self.state = State::ClosedByClient;
        }
    }

    fn send(&mut self, frame: Frame) {
        let text = frame.encode_text(self.vsn);
        self.queue(Message::Text(text.into()));
    }

    fn on_outbound(&mut self, out: Outbound) {
        // What was queued for a channel that has left since (or whose join was refused
        // after registering) is not sent.
        let joined = |topic: &Arc<str>| self.channels.contains_key(topic);
        let message = match out {
            Outbound::Frame(f) => Message::Text(f.encode_text(self.vsn).into()),
            Outbound::Broadcast { topic, .. } | Outbound::Change { topic, .. } | Outbound::Push { topic, .. }
                if !joined(&topic) =>
            {
                return;
            }
            Outbound::Push { topic, event, payload } => Message::Text(self.raw_frame(&topic, event, &payload).into()),
            Outbound::Broadcast { topic, event, payload } => {
                let binary =
                    (self.vsn == Vsn::V2).then(|| binary::encode_broadcast(&topic, &event, None, &payload).ok()).flatten();
                match binary {
                    Some(bytes) => Message::Binary(bytes.into()),
                    None => {
                        let inner = format!(r#"{{"type":"broadcast","event":{},"payload":{payload}}}"#, json_str(&event));
                        Message::Text(self.raw_frame(&topic, "broadcast", &inner).into())
                    }
                }
            }
            Outbound::Change { topic, ids, data } => {
                let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
                let inner = format!(r#"{{"ids":[{}],"data":{data}}}"#, ids.join(","));
                Message::Text(self.raw_frame(&topic, "postgres_changes", &inner).into())
            }
            Outbound::Interrupt { topic } => {
                // Phoenix's "the channel crashed": clients rejoin with backoff.
                if let Some(join_ref) = self.channels.get(&topic).map(|c| c.join_ref.clone()) {
                    self.leave(&topic);
                    let f = Frame {
                        join_ref,
                        reference: None,
                        topic: topic.to_string(),
                        event: "phx_error".into(),
                        payload: json!({}),
                    };
                    self.send(f);
                }
                return;
            }
            Outbound::SessionEnded { session } => {
                let ended: Vec<(Arc<str>, Option<String>)> = self
                    .channels
                    .values()
                    .filter(|c| c.caller.session_id == Some(session))
                    .map(|c| (c.topic.clone(), c.join_ref.clone()))
                    .collect();
                let message = super::MembershipError::SessionEnded.to_string();
                for (topic, join_ref) in ended {
                    self.close_channel(&topic, join_ref, "system", &message);
                }
                return;
            }
            Outbound::Revoke { topic } => {
                if let Some(ch) = self.channels.get(&topic) {
                    let sub = topic.strip_prefix("realtime:").unwrap_or(&topic).to_owned();
                    let join_ref = ch.join_ref.clone();
                    self.close_channel(&topic, join_ref, "system", &super::denied(&sub));
                }
                return;
            }
        };
        self.queue(message);
    }

    /// A server push with no refs, its payload already JSON.
    fn raw_frame(&self, topic: &str, event: &str, payload: &str) -> String {
        match self.vsn {
            Vsn::V2 => format!(r#"[null,null,{},"{event}",{payload}]"#, json_str(topic)),
            Vsn::V1 => {
                format!(r#"{{"join_ref":null,"ref":null,"topic":{},"event":"{event}","payload":{payload}}}"#, json_str(topic))
            }
        }
    }

    /// Counts a received frame; false once the socket is over its rate for this second.
    fn within_rate(&mut self) -> bool {
        let now = Instant::now();
        if now.duration_since(self.window.0) >= Duration::from_secs(1) {
            self.window = (now, 0);
        }
        self.window.1 += 1;
        self.window.1 <= self.rt.limits.messages_per_second
    }

    async fn on_decoded(&mut self, frame: Result<Frame, werkfunk_protocol::realtime::DecodeError>) {
        if !self.within_rate() {
            // Once per window: close the channels, as Supabase does; drop frames until it ends.
            if self.window.1 == self.rt.limits.messages_per_second + 1 {
                let open: Vec<(Arc<str>, Option<String>)> =
                    self.channels.values().map(|c| (c.topic.clone(), c.join_ref.clone())).collect();
                for (topic, join_ref) in open {
                    self.close_channel(&topic, join_ref, "system", "Too many messages per second");
                }
            }
            return;
        }
        match frame {
            Ok(frame) => self.on_frame(frame).await,
            Err(e) => {
                // Nothing to reply to: say what was wrong on the socket topic and carry on.
                let f = Frame {
                    join_ref: None,
                    reference: None,
                    topic: "phoenix".into(),
                    event: "phx_error".into(),
                    payload: json!({"reason": format!("malformed frame: {e}")}),
                };
                self.send(f);
            }
        }
    }

    async fn on_frame(&mut self, f: Frame) {
        if f.topic == "phoenix" {
            let status = if f.event == "heartbeat" { "ok" } else { "error" };
            let response = if status == "ok" { json!({}) } else { json!({"reason": "unknown event"}) };
            self.send(reply("phoenix", None, f.reference, status, response));
            return;
        }
        if f.event == "phx_join" {
            return self.join(f).await;
        }
        let topic: Arc<str> = f.topic.as_str().into();
        if !self.channels.contains_key(&topic) {
            self.send(reply(&f.topic, f.join_ref, f.reference, "error", json!({"reason": "unmatched topic"})));
            return;
        }
        match f.event.as_str() {
            "phx_leave" => {
                self.leave(&topic);
                self.send(reply(&f.topic, f.join_ref, f.reference, "ok", json!({})));
            }
            "access_token" => self.access_token(&topic, f).await,
            "broadcast" => self.broadcast(&topic, f),
            "presence" => self.presence(&topic, f),
            _ => self.send(reply(&f.topic, f.join_ref, f.reference, "error", json!({"reason": "unknown event"}))),
        }
    }

    fn verify(&self, token: &str) -> Result<Caller, String> {
        caller::verify_token(&self.rt.keys, token, jwt::now()).map_err(|e| match e {
            JwtError::Expired { seconds_ago } => format!("Token has expired {seconds_ago} seconds ago"),
            JwtError::Role => "Fields `role` and `exp` are required in JWT".to_owned(),
            _ => "The token provided is not a valid JWT".to_owned(),
        })
    }

    async fn join(&mut self, f: Frame) {
        let error = |reason: String| reply(&f.topic, f.join_ref.clone(), f.reference.clone(), "error", json!({"reason": reason}));
        let sub = f.topic.strip_prefix("realtime:").unwrap_or("");
        if sub.is_empty() {
            return self.send(error("TopicNameRequired: You must provide a topic name".into()));
        }
        let topic: Arc<str> = f.topic.as_str().into();
        if !self.channels.contains_key(&topic) && self.channels.len() >= self.rt.limits.channels_per_socket {
            return self.send(error("ChannelRateLimitReached: Too many channels".into()));
        }
        let token = ["access_token", "user_token"]
            .iter()
            .find_map(|k| f.payload.get(*k).and_then(Value::as_str))
            .filter(|t| !t.starts_with("sb_"));
        let caller = match token {
            Some(t) => match self.verify(t) {
                Ok(c) => c,
                Err(m) if m.starts_with("Token has expired") => return self.send(error(format!("InvalidJWTExpiration: {m}"))),
                Err(m) => return self.send(error(format!("Unauthorized: {m}"))),
            },
            None => {
                // The socket's key may have expired since the socket opened.
                let now = jwt::now();
                if self.key.exp <= now {
                    let ago = now - self.key.exp;
                    return self.send(error(format!("InvalidJWTExpiration: Token has expired {ago} seconds ago")));
                }
                self.key.clone()
            }
        };
        let config = f.payload.get("config").cloned().unwrap_or(Value::Null);
        let raw_bindings: Vec<Value> = config.get("postgres_changes").and_then(Value::as_array).cloned().unwrap_or_default();
        let limits = self.rt.limits.clone();
        if raw_bindings.len() > limits.bindings_per_join {
            let n = limits.bindings_per_join;
            return self.send(error(format!(
                "PostgresChangesLimitReached: Too many postgres_changes bindings, at most {n} per channel"
            )));
        }
        let elsewhere: usize = self.channels.values().filter(|c| c.topic != topic).map(|c| c.bindings).sum();
        if elsewhere + raw_bindings.len() > limits.bindings_per_socket {
            let n = limits.bindings_per_socket;
            return self.send(error(format!(
                "PostgresChangesLimitReached: Too many postgres_changes bindings, at most {n} per connection"
            )));
        }
        let mut bindings: Vec<Binding> = Vec::new();
        let mut echoed = Vec::new();
        for raw in &raw_bindings {
            let parsed = serde_json::from_value::<ChangeBinding>(raw.clone())
                .map_err(|e| format!("Invalid postgres_changes binding: {e}"))
                .and_then(|b| filter::parse(&b, &self.rt.publication));
            match parsed {
                Ok(b) => {
                    let mut e = raw.as_object().cloned().unwrap_or_default();
                    e.insert("id".into(), json!(b.id));
                    echoed.push(Value::Object(e));
                    bindings.push(b);
                }
                Err(reason) => return self.send(error(reason)),
            }
        }
        if self.channels.contains_key(&topic) {
            self.leave(&topic);
        }
        let conversation = match super::members_only(sub) {
            Some(Some(c)) => Some(c),
            Some(None) => return self.send(error(super::denied(sub))),
            None => None,
        };
        let presence_key = config
            .pointer("/presence/key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| Uuid::new_v4().to_string());
        let claims: Arc<str> = caller.claims_json.as_str().into();
        let subscriptions = bindings
            .into_iter()
            .map(|binding| Subscription { socket: self.handle.clone(), topic: topic.clone(), binding, claims: claims.clone() })
            .collect::<Vec<_>>();
        let has_bindings = !subscriptions.is_empty();
        let binding_count = subscriptions.len();
        let member = Member {
            socket: self.handle.clone(),
            receive_own: flag(config.pointer("/broadcast/self")),
            user_id: caller.user_id,
            conversation,
        };
        if let Err(JoinRefused::TooManyScannedFilters { limit }) =
            self.rt.hub.join(&topic, member, subscriptions, limits.scanned_filters)
        {
            return self.send(error(format!(
                "PostgresChangesLimitReached: Too many distinct filters other than eq and in on this server (at most {limit})"
            )));
        }
        // Membership is checked after the channel is registered: a removal committed before
        // this check is seen by it, one committed after reaches the registered channel and
        // closes it. (Checking first left a window in which a removal reached no one.)
        if let Err(reason) = self.rt.authorize_topic(&caller, sub).await {
            self.rt.hub.leave(&topic, self.handle.id);
            return self.send(error(reason));
        }
        let ack = flag(config.pointer("/broadcast/ack"));
        self.channels.insert(
            topic.clone(),
            Channel { topic: topic.clone(), join_ref: f.join_ref.clone(), caller, ack, presence_key, bindings: binding_count },
        );
        self.send(reply(&f.topic, f.join_ref.clone(), f.reference.clone(), "ok", json!({"postgres_changes": echoed})));
        if has_bindings {
            self.send(system(&f.topic, f.join_ref.clone(), "postgres_changes", "ok", "Subscribed to PostgreSQL"));
        }
        let state = self.rt.hub.presence.lock().unwrap_or_else(PoisonError::into_inner).state(&f.topic);
        self.send(Frame {
            join_ref: f.join_ref,
            reference: None,
            topic: f.topic,
            event: "presence_state".into(),
            payload: state,
        });
    }

    /// Removes a channel from the hub and its presence from the topic.
    fn leave(&mut self, topic: &Arc<str>) {
        if self.channels.remove(topic).is_some() {
            self.rt.hub.leave(topic, self.handle.id);
            let diff = self.rt.hub.presence.lock().unwrap_or_else(PoisonError::into_inner).untrack(topic, self.handle.id);
            self.rt.presence_changed(topic, &diff);
        }
    }

    /// A channel-level `system` error, then `phx_close`, then gone.
    fn close_channel(&mut self, topic: &Arc<str>, join_ref: Option<String>, extension: &str, message: &str) {
        self.leave(topic);
        self.send(system(topic, join_ref.clone(), extension, "error", message));
        self.send(Frame { join_ref, reference: None, topic: topic.to_string(), event: "phx_close".into(), payload: json!({}) });
    }

    fn next_expiry(&self) -> Option<Instant> {
        let exp = self.channels.values().map(|c| c.caller.exp).min()?;
        let secs = (exp - jwt::now()).max(0) as u64;
        Some(Instant::now() + Duration::from_secs(secs))
    }

    /// Closes the channels whose token has expired.
    fn expire(&mut self) {
        let now = jwt::now();
        let expired: Vec<(Arc<str>, Option<String>, i64)> = self
            .channels
            .values()
            .filter(|c| c.caller.exp <= now)
            .map(|c| (c.topic.clone(), c.join_ref.clone(), now - c.caller.exp))
            .collect();
        for (topic, join_ref, ago) in expired {
            self.close_channel(&topic, join_ref, "system", &format!("Token has expired {ago} seconds ago"));
        }
    }

    async fn access_token(&mut self, topic: &Arc<str>, f: Frame) {
        let Some(token) = f.payload.get("access_token").and_then(Value::as_str) else { return };
        if token.starts_with("sb_") {
            return;
        }
        let join_ref = self.channels.get(topic).and_then(|c| c.join_ref.clone());
        let caller = match self.verify(token) {
            Ok(c) => c,
            Err(message) => return self.close_channel(topic, join_ref, "system", &message),
        };
        let sub = topic.strip_prefix("realtime:").unwrap_or(topic).to_owned();
        if let Err(message) = self.rt.authorize_topic(&caller, &sub).await {
            return self.close_channel(topic, join_ref, "system", &message);
        }
        self.rt.hub.update_claims(topic, self.handle.id, caller.claims_json.as_str().into(), caller.user_id);
        if let Some(ch) = self.channels.get_mut(topic) {
            ch.caller = caller;
        }
    }

    fn broadcast(&mut self, topic: &Arc<str>, f: Frame) {
        let ack = self.channels.get(topic).is_some_and(|c| c.ack);
        let event = f.payload.get("event").and_then(Value::as_str).unwrap_or_default().to_owned();
        let payload = f.payload.get("payload").cloned().unwrap_or(Value::Null);
        if payload.to_string().len() > self.rt.limits.max_broadcast_bytes {
            if ack {
                self.send(reply(topic, f.join_ref, f.reference, "error", json!({"error": "payload_size_exceeded"})));
            }
            return;
        }
        self.rt.broadcast(topic, &event, &payload, Some(self.handle.id));
        if ack {
            self.send(reply(topic, f.join_ref, f.reference, "ok", json!({})));
        }
    }

    fn presence(&mut self, topic: &Arc<str>, f: Frame) {
        let Some(ch) = self.channels.get(topic) else { return };
        let key = ch.presence_key.clone();
        let diff = match f.payload.get("event").and_then(Value::as_str) {
            Some("track") => {
                let Some(payload) = f.payload.get("payload").and_then(Value::as_object).cloned() else {
                    let r =
                        reply(topic, f.join_ref, f.reference, "error", json!({"reason": "Presence track payload must be a map"}));
                    return self.send(r);
                };
                let size = f.payload.get("payload").map(|p| p.to_string().len()).unwrap_or(0);
                if size > self.rt.limits.max_track_bytes {
                    // Supabase's answer: the channel closes with "Track message size exceeded".
                    let join_ref = ch.join_ref.clone();
                    let reason = json!({"reason": "Track message size exceeded"});
                    self.send(reply(topic, f.join_ref, f.reference, "error", reason));
                    return self.close_channel(topic, join_ref, "system", "Track message size exceeded");
                }
                self.rt.hub.presence.lock().unwrap_or_else(PoisonError::into_inner).track(topic, &key, self.handle.id, payload)
            }
            Some("untrack") => self.rt.hub.presence.lock().unwrap_or_else(PoisonError::into_inner).untrack(topic, self.handle.id),
            _ => {
                let r = reply(topic, f.join_ref, f.reference, "error", json!({"reason": "unknown presence event"}));
                return self.send(r);
            }
        };
        self.rt.presence_changed(topic, &diff);
        self.send(reply(topic, f.join_ref, f.reference, "ok", json!({})));
    }

    fn leave_everything(&mut self) {
        self.rt.hub.leave_all(self.handle.id);
        let diffs = self.rt.hub.presence.lock().unwrap_or_else(PoisonError::into_inner).untrack_socket(self.handle.id);
        for (topic, diff) in diffs {
            self.rt.presence_changed(&topic.as_str().into(), &diff);
        }
        self.channels.clear();
    }
}
