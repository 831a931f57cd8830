//! One websocket connection: a task that owns the socket and its joined channels, reads
//! frames, runs the Phoenix channel protocol, and writes what the hub queues for it.
//!
//! The connection is `Open` until the client closes, goes silent past the idle timeout
//! (no heartbeat), falls behind its outbound queue, or the server shuts down; then its
//! channels leave the hub and its presence entries leave their topics.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use uuid::Uuid;
use werkfunk_protocol::realtime::{ChangeBinding, Frame, Vsn};

use super::filter::{self, Binding};
use super::hub::{reply, system, Member, Outbound, SocketHandle, Subscription};
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
    channels: HashMap<Arc<str>, Channel>,
    last_seen: Instant,
    state: State,
    /// Frames received in the current one-second window, and when it began.
    window: (Instant, u32),
}

/// Serves one upgraded websocket until it ends.
pub async fn serve(mut ws: WebSocket, rt: Arc<Realtime>, vsn: Vsn, key: Caller) {
    let (tx, mut rx) = mpsc::channel(rt.limits.socket_queue);
    let handle = SocketHandle { id: rt.next_socket_id(), tx, kick: Arc::new(Notify::new()) };
    let mut shutdown = rt.shutdown_signal();
    let idle = rt.limits.idle_timeout;
    let now = Instant::now();
    let mut conn = Connection { rt, vsn, key, handle, channels: HashMap::new(), last_seen: now, state: State::Open, window: (now, 0) };
    let far = Duration::from_secs(365 * 24 * 3600);
    while conn.state == State::Open {
        let expiry = conn.next_expiry().unwrap_or_else(|| Instant::now() + far);
        let kick = conn.handle.kick.clone();
        tokio::select! {
            msg = ws.recv() => match msg {
                Some(Ok(Message::Text(text))) => {
                    conn.last_seen = Instant::now();
                    let frame = Frame::decode_text(conn.vsn, text.as_str());
                    conn.on_decoded(frame, &mut ws).await;
                }
                Some(Ok(Message::Binary(bytes))) => {
                    conn.last_seen = Instant::now();
                    let frame = match conn.vsn {
                        Vsn::V2 => Frame::decode_binary(&bytes),
                        Vsn::V1 => Err(werkfunk_protocol::realtime::DecodeError::Binary("binary frames need vsn 2.0.0")),
                    };
                    conn.on_decoded(frame, &mut ws).await;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => conn.last_seen = Instant::now(),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => conn.state = State::ClosedByClient,
            },
            out = rx.recv() => {
                if let Some(out) = out {
                    conn.on_outbound(out, &mut ws).await;
                }
            }
            _ = kick.notified() => conn.state = State::TooSlow,
            _ = shutdown.changed() => conn.state = State::ServerShutdown,
            _ = tokio::time::sleep_until(expiry) => conn.expire(&mut ws).await,
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
        let _ = ws.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
    }
    tracing::debug!(socket = conn.handle.id, state = ?conn.state, "realtime socket closed");
    conn.leave_everything();
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
    async fn send(&mut self, ws: &mut WebSocket, frame: Frame) {
        if ws.send(Message::Text(frame.encode_text(self.vsn).into())).await.is_err() {
            self.state = State::ClosedByClient;
        }
    }

    async fn on_outbound(&mut self, out: Outbound, ws: &mut WebSocket) {
        let message = match out {
            Outbound::Frame(f) => Message::Text(f.encode_text(self.vsn).into()),
            Outbound::Broadcast { topic, event, payload } => {
                let binary = (self.vsn == Vsn::V2)
                    .then(|| Frame::encode_broadcast_binary(&topic, &event, &Value::Null, &payload))
                    .flatten();
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
                    let f = Frame { join_ref, reference: None, topic: topic.to_string(), event: "phx_error".into(), payload: json!({}) };
                    self.send(ws, f).await;
                }
                return;
            }
            Outbound::Revoke { topic } => {
                if let Some(ch) = self.channels.get(&topic) {
                    let sub = topic.strip_prefix("realtime:").unwrap_or(&topic).to_owned();
                    let join_ref = ch.join_ref.clone();
                    let message = format!("Unauthorized: You do not have permissions to read from this Channel topic: {sub}");
                    self.close_channel(ws, &topic, join_ref, "system", &message).await;
                }
                return;
            }
        };
        if ws.send(message).await.is_err() {
            self.state = State::ClosedByClient;
        }
    }

    /// A server push with no refs, its payload already JSON.
    fn raw_frame(&self, topic: &str, event: &str, payload: &str) -> String {
        match self.vsn {
            Vsn::V2 => format!(r#"[null,null,{},"{event}",{payload}]"#, json_str(topic)),
            Vsn::V1 => format!(r#"{{"join_ref":null,"ref":null,"topic":{},"event":"{event}","payload":{payload}}}"#, json_str(topic)),
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

    async fn on_decoded(&mut self, frame: Result<Frame, werkfunk_protocol::realtime::DecodeError>, ws: &mut WebSocket) {
        if !self.within_rate() {
            // Once per window: close the channels, as Supabase does; drop frames until it ends.
            if self.window.1 == self.rt.limits.messages_per_second + 1 {
                let open: Vec<(Arc<str>, Option<String>)> =
                    self.channels.values().map(|c| (c.topic.clone(), c.join_ref.clone())).collect();
                for (topic, join_ref) in open {
                    self.close_channel(ws, &topic, join_ref, "system", "Too many messages per second").await;
                }
            }
            return;
        }
        match frame {
            Ok(frame) => self.on_frame(frame, ws).await,
            Err(e) => {
                // Nothing to reply to: say what was wrong on the socket topic and carry on.
                let f = Frame {
                    join_ref: None,
                    reference: None,
                    topic: "phoenix".into(),
                    event: "phx_error".into(),
                    payload: json!({"reason": format!("malformed frame: {e}")}),
                };
                self.send(ws, f).await;
            }
        }
    }

    async fn on_frame(&mut self, f: Frame, ws: &mut WebSocket) {
        if f.topic == "phoenix" {
            let status = if f.event == "heartbeat" { "ok" } else { "error" };
            let response = if status == "ok" { json!({}) } else { json!({"reason": "unknown event"}) };
            self.send(ws, reply("phoenix", None, f.reference, status, response)).await;
            return;
        }
        if f.event == "phx_join" {
            return self.join(f, ws).await;
        }
        let topic: Arc<str> = f.topic.as_str().into();
        if !self.channels.contains_key(&topic) {
            self.send(ws, reply(&f.topic, f.join_ref, f.reference, "error", json!({"reason": "unmatched topic"}))).await;
            return;
        }
        match f.event.as_str() {
            "phx_leave" => {
                self.leave(&topic);
                self.send(ws, reply(&f.topic, f.join_ref, f.reference, "ok", json!({}))).await;
            }
            "access_token" => self.access_token(&topic, f, ws).await,
            "broadcast" => self.broadcast(&topic, f, ws).await,
            "presence" => self.presence(&topic, f, ws).await,
            _ => self.send(ws, reply(&f.topic, f.join_ref, f.reference, "error", json!({"reason": "unknown event"}))).await,
        }
    }

    fn verify(&self, token: &str) -> Result<Caller, String> {
        caller::verify_token(&self.rt.keys, token, jwt::now()).map_err(|e| match e {
            JwtError::Expired { seconds_ago } => format!("Token has expired {seconds_ago} seconds ago"),
            JwtError::Role => "Fields `role` and `exp` are required in JWT".to_owned(),
            _ => "The token provided is not a valid JWT".to_owned(),
        })
    }

    async fn join(&mut self, f: Frame, ws: &mut WebSocket) {
        let error = |reason: String| reply(&f.topic, f.join_ref.clone(), f.reference.clone(), "error", json!({"reason": reason}));
        let sub = f.topic.strip_prefix("realtime:").unwrap_or("");
        if sub.is_empty() {
            return self.send(ws, error("TopicNameRequired: You must provide a topic name".into())).await;
        }
        let topic: Arc<str> = f.topic.as_str().into();
        if !self.channels.contains_key(&topic) && self.channels.len() >= self.rt.limits.channels_per_socket {
            return self.send(ws, error("ChannelRateLimitReached: Too many channels".into())).await;
        }
        let token = ["access_token", "user_token"]
            .iter()
            .find_map(|k| f.payload.get(*k).and_then(Value::as_str))
            .filter(|t| !t.starts_with("sb_"));
        let caller = match token {
            Some(t) => match self.verify(t) {
                Ok(c) => c,
                Err(m) if m.starts_with("Token has expired") => return self.send(ws, error(format!("InvalidJWTExpiration: {m}"))).await,
                Err(m) => return self.send(ws, error(format!("Unauthorized: {m}"))).await,
            },
            None => self.key.clone(),
        };
        let config = f.payload.get("config").cloned().unwrap_or(Value::Null);
        let raw_bindings: Vec<Value> = config.get("postgres_changes").and_then(Value::as_array).cloned().unwrap_or_default();
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
                Err(reason) => return self.send(ws, error(reason)).await,
            }
        }
        let conversation = match self.rt.authorize_topic(&caller, sub).await {
            Ok(c) => c,
            Err(reason) => return self.send(ws, error(reason)).await,
        };
        if self.channels.contains_key(&topic) {
            self.leave(&topic);
        }
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
        let member = Member {
            socket: self.handle.clone(),
            receive_own: flag(config.pointer("/broadcast/self")),
            user_id: caller.user_id,
            conversation,
        };
        self.rt.hub.join(&topic, member, subscriptions);
        self.channels.insert(
            topic.clone(),
            Channel { topic: topic.clone(), join_ref: f.join_ref.clone(), caller, ack: flag(config.pointer("/broadcast/ack")), presence_key },
        );
        self.send(ws, reply(&f.topic, f.join_ref.clone(), f.reference.clone(), "ok", json!({"postgres_changes": echoed}))).await;
        if has_bindings {
            self.send(ws, system(&f.topic, f.join_ref.clone(), "postgres_changes", "ok", "Subscribed to PostgreSQL")).await;
        }
        let state = self.rt.hub.presence.lock().expect("presence lock").state(&f.topic);
        self.send(ws, Frame { join_ref: f.join_ref, reference: None, topic: f.topic, event: "presence_state".into(), payload: state }).await;
    }

    /// Removes a channel from the hub and its presence from the topic.
    fn leave(&mut self, topic: &Arc<str>) {
        if self.channels.remove(topic).is_some() {
            self.rt.hub.leave(topic, self.handle.id);
            let diff = self.rt.hub.presence.lock().expect("presence lock").untrack(topic, self.handle.id);
            self.rt.presence_changed(topic, &diff);
        }
    }

    /// A channel-level `system` error, then `phx_close`, then gone.
    async fn close_channel(&mut self, ws: &mut WebSocket, topic: &Arc<str>, join_ref: Option<String>, extension: &str, message: &str) {
        self.leave(topic);
        self.send(ws, system(topic, join_ref.clone(), extension, "error", message)).await;
        self.send(ws, Frame { join_ref, reference: None, topic: topic.to_string(), event: "phx_close".into(), payload: json!({}) })
            .await;
    }

    fn next_expiry(&self) -> Option<Instant> {
        let exp = self.channels.values().map(|c| c.caller.exp).min()?;
        let secs = (exp - jwt::now()).max(0) as u64;
        Some(Instant::now() + Duration::from_secs(secs))
    }

    /// Closes the channels whose token has expired.
    async fn expire(&mut self, ws: &mut WebSocket) {
        let now = jwt::now();
        let expired: Vec<(Arc<str>, Option<String>, i64)> = self
            .channels
            .values()
            .filter(|c| c.caller.exp <= now)
            .map(|c| (c.topic.clone(), c.join_ref.clone(), now - c.caller.exp))
            .collect();
        for (topic, join_ref, ago) in expired {
            self.close_channel(ws, &topic, join_ref, "system", &format!("Token has expired {ago} seconds ago")).await;
        }
    }

    async fn access_token(&mut self, topic: &Arc<str>, f: Frame, ws: &mut WebSocket) {
        let Some(token) = f.payload.get("access_token").and_then(Value::as_str) else { return };
        if token.starts_with("sb_") {
            return;
        }
        let join_ref = self.channels.get(topic).and_then(|c| c.join_ref.clone());
        let caller = match self.verify(token) {
            Ok(c) => c,
            Err(message) => return self.close_channel(ws, topic, join_ref, "system", &message).await,
        };
        let sub = topic.strip_prefix("realtime:").unwrap_or(topic).to_owned();
        if let Err(message) = self.rt.authorize_topic(&caller, &sub).await {
            return self.close_channel(ws, topic, join_ref, "system", &message).await;
        }
        self.rt.hub.update_claims(topic, self.handle.id, caller.claims_json.as_str().into());
        if let Some(ch) = self.channels.get_mut(topic) {
            ch.caller = caller;
        }
    }

    async fn broadcast(&mut self, topic: &Arc<str>, f: Frame, ws: &mut WebSocket) {
        let ack = self.channels.get(topic).is_some_and(|c| c.ack);
        let event = f.payload.get("event").and_then(Value::as_str).unwrap_or_default().to_owned();
        let payload = f.payload.get("payload").cloned().unwrap_or(Value::Null);
        if payload.to_string().len() > self.rt.limits.max_broadcast_bytes {
            if ack {
                self.send(ws, reply(topic, f.join_ref, f.reference, "error", json!({"error": "payload_size_exceeded"}))).await;
            }
            return;
        }
        self.rt.broadcast(topic, &event, &payload, Some(self.handle.id));
        if ack {
            self.send(ws, reply(topic, f.join_ref, f.reference, "ok", json!({}))).await;
        }
    }

    async fn presence(&mut self, topic: &Arc<str>, f: Frame, ws: &mut WebSocket) {
        let Some(ch) = self.channels.get(topic) else { return };
        let key = ch.presence_key.clone();
        let diff = match f.payload.get("event").and_then(Value::as_str) {
            Some("track") => {
                let Some(payload) = f.payload.get("payload").and_then(Value::as_object).cloned() else {
                    let r = reply(topic, f.join_ref, f.reference, "error", json!({"reason": "Presence track payload must be a map"}));
                    return self.send(ws, r).await;
                };
                self.rt.hub.presence.lock().expect("presence lock").track(topic, &key, self.handle.id, payload)
            }
            Some("untrack") => self.rt.hub.presence.lock().expect("presence lock").untrack(topic, self.handle.id),
            _ => {
                let r = reply(topic, f.join_ref, f.reference, "error", json!({"reason": "unknown presence event"}));
                return self.send(ws, r).await;
            }
        };
        self.rt.presence_changed(topic, &diff);
        self.send(ws, reply(topic, f.join_ref, f.reference, "ok", json!({}))).await;
    }

    fn leave_everything(&mut self) {
        self.rt.hub.leave_all(self.handle.id);
        let diffs = self.rt.hub.presence.lock().expect("presence lock").untrack_socket(self.handle.id);
        for (topic, diff) in diffs {
            self.rt.presence_changed(&topic.as_str().into(), &diff);
        }
        self.channels.clear();
    }
}

