//! `/realtime/v1`: Supabase Realtime's Phoenix channels — database changes under RLS,
//! broadcast and presence — for supabase-js and the desktop engine.
//!
//! - [`socket`]: one task per websocket, speaking `vsn` 1.0.0 or 2.0.0.
//! - [`hub`]: which socket joined what, and the fan-out.
//! - [`changes`]: the change feed (trigger → NOTIFY → batch → `werkfunk_realtime.authorize` → sockets).
//! - [`presence`]: presence entries, local and remote.
//! - [`relay`]: broadcasts and presence between server processes.
//! - [`filter`], [`publication`]: `postgres_changes` bindings and the published tables.
//! - [`supervisor`]: the long-lived tasks ([`GatewayTask`]), started again when they end or
//!   panic.
//!
//! Conversation topics (`messages:<id>`, `typing:<id>`, `presence:<id>`) are members-only:
//! joining, hearing and tracking need Postgres to let the caller see the conversation, and a
//! membership that ends closes those channels. Other topics are public, as in Supabase.

pub mod changes;
pub mod filter;
pub mod hub;
pub mod presence;
pub mod publication;
pub mod relay;
pub mod socket;
pub mod supervisor;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;
use werkfunk_protocol::realtime::Vsn;

use crate::caller::{self, Caller, CallerError};
use crate::jwt::{self, JwtError, Keys};
use crate::AppState;
use hub::Hub;
use presence::Diff;
use publication::Publication;
use relay::{Envelope, PgRelay, Relay, RelayMessage};
use supervisor::{Ended, Run};

/// The NOTIFY channel of the change feed (see the realtime migration).
pub const CHANGES_CHANNEL: &str = "werkfunk_changes";

/// Supabase's limits, as this server applies them.
#[derive(Debug, Clone)]
pub struct Limits {
    pub channels_per_socket: usize,
    pub max_frame_bytes: usize,
    pub max_broadcast_bytes: usize,
    /// A socket silent for this long (no heartbeat) is closed.
    pub idle_timeout: Duration,
    /// Outbound queue per socket; a socket that lets it fill up is closed.
    pub socket_queue: usize,
    /// Frames a socket may send per second; past it, its channels are closed with
    /// Supabase's "Too many messages per second".
    pub messages_per_second: u32,
    /// `postgres_changes` bindings in one join.
    pub bindings_per_join: usize,
    /// `postgres_changes` bindings over all of a socket's channels.
    pub bindings_per_socket: usize,
    /// Distinct filters on this process that cannot be looked up by value (`neq`, `lt`,
    /// `gt`, …) and so are tested against every change of their table.
    pub scanned_filters: usize,
    /// Largest presence `track` payload, as JSON text.
    pub max_track_bytes: usize,
    /// A write to a socket that takes longer than this closes it (the client is not reading).
    pub send_timeout: Duration,
    /// Messages in one `POST /realtime/v1/api/broadcast`.
    pub api_broadcast_messages: usize,
    /// Open websockets per server process; past it, Supabase's 429 "Too many connected users".
    pub max_sockets: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            channels_per_socket: 100,
            max_frame_bytes: 1024 * 1024,
            max_broadcast_bytes: 256 * 1024,
            idle_timeout: Duration::from_secs(60),
            socket_queue: 1024,
            messages_per_second: 2500,
            bindings_per_join: 10,
            bindings_per_socket: 100,
            scanned_filters: 1000,
            max_track_bytes: 8 * 1024,
            send_timeout: Duration::from_secs(10),
            api_broadcast_messages: 100,
            max_sockets: 20_000,
        }
    }
}

/// Other processes are gone after this much silence.
const PEER_TIMEOUT: Duration = Duration::from_secs(15);
const ALIVE_EVERY: Duration = Duration::from_secs(5);

/// The gateway's long-lived tasks. Each is supervised ([`supervisor`]) and has database
/// connections of its own, named by [`GatewayTask::application_name`] in
/// `pg_stat_activity`, so that neither REST load nor a lost connection of one task reaches
/// the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayTask {
    /// Batches, authorizes and delivers the changes the listener hears.
    ChangeFeed,
    /// LISTENs to the change feed and the relay.
    Listener,
    /// Sends this process's broadcasts and presence diffs to the others.
    RelayPublisher,
    /// Tells the others this process is alive, forgets silent ones, trims the overflow table.
    Liveness,
}

impl GatewayTask {
    pub const ALL: [GatewayTask; 4] =
        [GatewayTask::ChangeFeed, GatewayTask::Listener, GatewayTask::RelayPublisher, GatewayTask::Liveness];

    /// The task's name in logs.
    pub fn name(self) -> &'static str {
        match self {
            GatewayTask::ChangeFeed => "realtime-change-feed",
            GatewayTask::Listener => "realtime-listener",
            GatewayTask::RelayPublisher => "realtime-relay-publisher",
            GatewayTask::Liveness => "realtime-liveness",
        }
    }

    /// The `application_name` of the task's database connections.
    pub fn application_name(self) -> &'static str {
        match self {
            GatewayTask::ChangeFeed => "werkfunk-realtime-change-feed",
            GatewayTask::Listener => "werkfunk-realtime-listener",
            GatewayTask::RelayPublisher => "werkfunk-realtime-relay-publisher",
            GatewayTask::Liveness => "werkfunk-realtime-liveness",
        }
    }

    /// The most connections the task holds at once.
    fn connections(self) -> u32 {
        match self {
            // The parallel authorization statements of one batch, and an overflow read.
            GatewayTask::ChangeFeed => changes::AUTHORIZE_PARALLEL as u32 + 1,
            // A listener being replaced and its replacement.
            GatewayTask::Listener => 2,
            GatewayTask::RelayPublisher | GatewayTask::Liveness => 1,
        }
    }

    /// A pool of the task's own, opened lazily with the server pool's settings.
    fn pool(self, server: &PgPool) -> PgPool {
        let options = (*server.connect_options()).clone().application_name(self.application_name());
        PgPoolOptions::new()
            .max_connections(self.connections())
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options)
    }
}

/// The realtime gateway of this process.
pub struct Realtime {
    pub node: Uuid,
    pub pool: PgPool,
    pub keys: Keys,
    pub hub: Hub,
    pub publication: Publication,
    pub limits: Limits,
    relay: Box<dyn Relay>,
    peers: Mutex<HashMap<Uuid, Instant>>,
    next_socket: AtomicU64,
    /// Open websockets of this process (`Limits::max_sockets`).
    open_sockets: Arc<AtomicUsize>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The change feed's connections (overflow reads, authorization).
    pub(crate) feed_pool: PgPool,
    /// Every task's pool, closed by [`Realtime::close`].
    task_pools: Vec<PgPool>,
}

impl Realtime {
    /// Loads the publication, LISTENs (before anything is served, so no change committed
    /// after a join reply can be missed) and starts the gateway's supervised tasks.
    pub async fn start(pool: PgPool, keys: Keys, limits: Limits) -> Result<Arc<Realtime>, sqlx::Error> {
        let publication = Publication::load(&pool).await?;
        let node = Uuid::new_v4();
        let task_pools: Vec<PgPool> = GatewayTask::ALL.iter().map(|t| t.pool(&pool)).collect();
        let task_pool = |task: GatewayTask| task_pools[GatewayTask::ALL.iter().position(|t| *t == task).unwrap_or(0)].clone();
        let (relay, publisher) = PgRelay::new(node);
        let listener_pool = task_pool(GatewayTask::Listener);
        let first_listener = Arc::new(Mutex::new(Some(listen_on(&listener_pool).await?)));
        let (changes_tx, changes_rx) = mpsc::unbounded_channel();
        let changes_rx = Arc::new(tokio::sync::Mutex::new(changes_rx));
        let rt = Arc::new(Realtime {
            node,
            pool,
            keys,
            hub: Hub::default(),
            publication,
            limits,
            relay: Box::new(relay),
            peers: Mutex::new(HashMap::new()),
            next_socket: AtomicU64::new(1),
            open_sockets: Arc::new(AtomicUsize::new(0)),
            shutdown: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
            feed_pool: task_pool(GatewayTask::ChangeFeed),
            task_pools: task_pools.clone(),
        });
        let publisher = Arc::new(publisher);
        let relay_pool = task_pool(GatewayTask::RelayPublisher);
        rt.supervise(GatewayTask::RelayPublisher, move |rt, run| {
            let (publisher, pool) = (publisher.clone(), relay_pool.clone());
            async move {
                let mut queue = publisher.queue().await;
                rt.after_start(GatewayTask::RelayPublisher, run);
                publisher.run(&mut queue, &pool).await;
                Ok(())
            }
        });
        rt.supervise(GatewayTask::Listener, move |rt, run| {
            listen(rt, first_listener.clone(), listener_pool.clone(), changes_tx.clone(), run)
        });
        rt.supervise(GatewayTask::ChangeFeed, move |rt, run| {
            let changes_rx = changes_rx.clone();
            async move {
                let mut rx = changes_rx.lock().await;
                rt.after_start(GatewayTask::ChangeFeed, run);
                changes::run(rt.clone(), &mut rx).await;
                Ok(())
            }
        });
        let liveness_pool = task_pool(GatewayTask::Liveness);
        rt.supervise(GatewayTask::Liveness, move |rt, run| liveness(rt, liveness_pool.clone(), run));
        rt.relay.publish(RelayMessage::Hello);
        Ok(rt)
    }

    /// Starts `task` under a [`supervisor`]: it runs until [`Realtime::shutdown`]; a run that
    /// ends or panics before is logged and followed by another after a backoff.
    fn supervise<F, Fut>(self: &Arc<Self>, task: GatewayTask, mut start: F)
    where
        F: FnMut(Arc<Realtime>, Run) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Ended> + Send + 'static,
    {
        // Between runs the supervisor holds the gateway only weakly: it never keeps a
        // gateway alive that everything else has let go of.
        let weak = Arc::downgrade(self);
        let handle = supervisor::supervise(task.name(), self.shutdown.subscribe(), move |run| {
            let fut = weak.upgrade().map(|rt| start(rt, run));
            async move {
                match fut {
                    Some(fut) => fut.await,
                    None => std::future::pending().await,
                }
            }
        });
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner).push(handle);
    }

    /// Called by a task once it is ready again after a restart. What it was doing when it
    /// failed (a batch, a notification, a relay message) may be lost, so every channel with
    /// `postgres_changes` bindings or on a members-only topic is errored: its client
    /// rejoins, and catches up on rejoin, instead of silently missing something.
    fn after_start(&self, task: GatewayTask, run: Run) {
        if run.restarted() {
            let channels = self.hub.interrupt_changes();
            tracing::warn!(
                task = task.name(),
                attempt = run.attempt,
                channels,
                "realtime: task restarted; channels told to rejoin"
            );
        }
    }

    /// Closes every socket (going away) and stops the gateway's tasks.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.lock().unwrap_or_else(PoisonError::into_inner).drain(..) {
            t.abort();
        }
    }

    /// Closes the tasks' database connections (after [`Realtime::shutdown`]).
    pub async fn close(&self) {
        for pool in &self.task_pools {
            pool.close().await;
        }
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn next_socket_id(&self) -> u64 {
        self.next_socket.fetch_add(1, Ordering::Relaxed)
    }

    /// Relays to the other processes, if any are alive.
    fn publish(&self, message: RelayMessage) {
        let peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        if peers.values().any(|seen| seen.elapsed() < PEER_TIMEOUT) {
            self.relay.publish(message);
        }
    }

    /// A user broadcast (`event` and the user's `payload`) on `topic` from a local socket
    /// (or the REST API).
    pub fn broadcast(&self, topic: &Arc<str>, event: &str, payload: &Value, from: Option<hub::SocketId>) {
        let event: Arc<str> = event.into();
        let payload: Arc<str> = payload.to_string().into();
        self.hub.broadcast(topic, &event, &payload, from);
        self.publish(RelayMessage::Broadcast {
            topic: topic.to_string(),
            event: event.to_string(),
            payload: payload.to_string(),
        });
    }

    /// Sends a presence diff on `topic` to local members and the other processes.
    pub fn presence_changed(&self, topic: &Arc<str>, diff: &Diff) {
        if diff.is_empty() {
            return;
        }
        let payload = diff.to_payload();
        self.hub.push_all(topic, "presence_diff", &payload);
        self.publish(RelayMessage::Presence { topic: topic.to_string(), diff: payload });
    }

    /// Whether `caller` may use `sub_topic`: public topics yes; a conversation topic only if
    /// Postgres lets the caller see that conversation. Returns the conversation, if any.
    pub async fn authorize_topic(&self, caller: &Caller, sub_topic: &str) -> Result<Option<Uuid>, String> {
        let Some(conversation) = members_only(sub_topic) else { return Ok(None) };
        let denied = || denied(sub_topic);
        let conversation = conversation.ok_or_else(denied)?;
        if self.visible_conversations(caller, &[conversation]).await.map_err(|e| e.to_string())?.contains(&conversation) {
            Ok(Some(conversation))
        } else {
            Err(denied())
        }
    }

    /// Which of `conversations` Postgres lets `caller` see, in one transaction.
    pub async fn visible_conversations(&self, caller: &Caller, conversations: &[Uuid]) -> Result<HashSet<Uuid>, MembershipError> {
        let seen = async {
            let mut tx = crate::db::begin_as(&self.pool, caller).await?;
            let seen: Vec<Uuid> = sqlx::query_scalar("select id from public.conversations where id = any($1)")
                .bind(conversations)
                .fetch_all(&mut *tx)
                .await?;
            tx.rollback().await?;
            Ok::<Vec<Uuid>, crate::db::BeginError>(seen)
        }
        .await;
        match seen {
            Ok(seen) => Ok(seen.into_iter().collect()),
            Err(crate::db::BeginError::SessionEnded) => Err(MembershipError::SessionEnded),
            // No privilege on conversations at all (the anon role): simply not a member.
            Err(crate::db::BeginError::Db(e)) if crate::error::db_error(&e).is_some_and(|d| d.code() == "42501") => {
                Ok(HashSet::new())
            }
            Err(e) => {
                tracing::warn!(error = %e, "realtime: membership check failed");
                Err(MembershipError::Unavailable)
            }
        }
    }
}

/// Why a membership check gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// The caller's token is valid but its session has ended ([`crate::db::BeginError`]).
    #[error("Unauthorized: Session from session_id claim in JWT does not exist")]
    SessionEnded,
    /// The database did not answer (logged where it happened).
    #[error("Unknown Error on Channel")]
    Unavailable,
}

/// Supabase's refusal of a topic the caller may not read.
pub fn denied(sub_topic: &str) -> String {
    format!("Unauthorized: You do not have permissions to read from this Channel topic: {sub_topic}")
}

/// `Some(conversation)` for the members-only topics; `Some(None)` when such a topic does
/// not name a valid conversation id.
pub fn members_only(sub_topic: &str) -> Option<Option<Uuid>> {
    ["messages:", "typing:", "presence:"].iter().find_map(|p| sub_topic.strip_prefix(p)).map(|rest| rest.parse().ok())
}

/// The listener task: hears the change feed and the relay on a connection of its own, and
/// ends when that connection is lost (the supervisor starts it again).
async fn listen(
    rt: Arc<Realtime>,
    first: Arc<Mutex<Option<PgListener>>>,
    pool: PgPool,
    changes: mpsc::UnboundedSender<String>,
    run: Run,
) -> Ended {
    let first = first.lock().unwrap_or_else(PoisonError::into_inner).take();
    let mut listener = match first {
        Some(l) => l,
        None => listen_on(&pool).await.map_err(|e| format!("cannot listen: {e}"))?,
    };
    // What was committed while no one listened is lost to live delivery: now that the feed
    // is back, channels that could have missed it rejoin and catch up.
    rt.after_start(GatewayTask::Listener, run);
    loop {
        // `try_recv` without reconnecting: a silent reconnect would hide the gap.
        match listener.try_recv().await {
            Ok(Some(n)) if n.channel() == CHANGES_CHANNEL => {
                let _ = changes.send(n.payload().to_owned());
            }
            Ok(Some(n)) => on_relay(&rt, n.payload()).await,
            Ok(None) => return Err("listener connection closed".to_owned()),
            Err(e) => return Err(format!("listener connection lost: {e}")),
        }
    }
}

/// A listener on both channels, on a connection of `pool`.
async fn listen_on(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut l = PgListener::connect_with(pool).await?;
    l.eager_reconnect(false);
    l.listen_all([CHANGES_CHANNEL, relay::CHANNEL]).await?;
    Ok(l)
}

async fn on_relay(rt: &Realtime, payload: &str) {
    let Some(envelope) = changes::resolve(&rt.pool, payload).await.ok().and_then(|v| serde_json::from_value::<Envelope>(v).ok())
    else {
        tracing::warn!("realtime: unreadable relay message");
        return;
    };
    if envelope.node == rt.node {
        return;
    }
    let is_new = rt.peers.lock().unwrap_or_else(PoisonError::into_inner).insert(envelope.node, Instant::now()).is_none();
    match envelope.message {
        RelayMessage::Hello | RelayMessage::Alive if is_new || matches!(envelope.message, RelayMessage::Hello) => {
            // A process we did not know: tell it who is present here.
            rt.relay.publish(RelayMessage::Alive);
            let joins = rt.hub.presence.lock().unwrap_or_else(PoisonError::into_inner).local_joins();
            for (topic, diff) in joins {
                rt.relay.publish(RelayMessage::Presence { topic, diff: diff.to_payload() });
            }
        }
        RelayMessage::Hello | RelayMessage::Alive => {}
        RelayMessage::Broadcast { topic, event, payload } => {
            rt.hub.broadcast(&topic.into(), &event.into(), &payload.into(), None);
        }
        RelayMessage::Presence { topic, diff } => {
            let parsed = Diff::from_payload(&diff);
            rt.hub.presence.lock().unwrap_or_else(PoisonError::into_inner).apply_remote(envelope.node, &topic, &parsed);
            rt.hub.push_all(&topic.as_str().into(), "presence_diff", &diff);
        }
    }
}

/// Announces this process, forgets silent ones (their presence leaves), and trims the
/// overflow table (on a connection of its own).
async fn liveness(rt: Arc<Realtime>, pool: PgPool, run: Run) -> Ended {
    rt.after_start(GatewayTask::Liveness, run);
    let mut tick = tokio::time::interval(ALIVE_EVERY);
    let mut rounds = 0u64;
    loop {
        tick.tick().await;
        rounds += 1;
        rt.relay.publish(RelayMessage::Alive);
        let gone: Vec<Uuid> = {
            let mut peers = rt.peers.lock().unwrap_or_else(PoisonError::into_inner);
            let gone = peers.iter().filter(|(_, seen)| seen.elapsed() > PEER_TIMEOUT).map(|(n, _)| *n).collect::<Vec<_>>();
            for n in &gone {
                peers.remove(n);
            }
            gone
        };
        for node in gone {
            let diffs = rt.hub.presence.lock().unwrap_or_else(PoisonError::into_inner).purge_node(node);
            for (topic, diff) in diffs {
                rt.hub.push_all(&topic.as_str().into(), "presence_diff", &diff.to_payload());
            }
        }
        if rounds.is_multiple_of(12) {
            if let Err(e) = sqlx::query("delete from werkfunk_realtime.overflow where created_at < now() - interval '10 minutes'")
                .execute(&pool)
                .await
            {
                tracing::warn!(error = %e, "realtime: cannot trim the overflow table");
            }
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/websocket", get(websocket)).route("/api/broadcast", post(api_broadcast))
}

/// A handshake refusal as Supabase sends it: `{"error": "…"}`.
fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

fn caller_error_message(e: &CallerError) -> &'static str {
    match e {
        CallerError::MissingKey => "API key is missing",
        CallerError::InvalidKey(JwtError::Expired { .. }) | CallerError::InvalidToken(JwtError::Expired { .. }) => {
            "Token has expired"
        }
        CallerError::InvalidKey(JwtError::Signature) | CallerError::InvalidToken(JwtError::Signature) => {
            "Failed to validate JWT signature"
        }
        CallerError::InvalidKey(JwtError::Role) | CallerError::InvalidToken(JwtError::Role) => {
            "Fields `role` and `exp` are required in JWT"
        }
        _ => "The token provided is not a valid JWT",
    }
}

async fn websocket(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let Some(vsn) = Vsn::parse(params.get("vsn").map(String::as_str)) else {
        return refuse(StatusCode::BAD_REQUEST, "Unsupported serializer version: use 1.0.0 or 2.0.0");
    };
    let caller = match caller::authenticate(&state.keys, &headers, params.get("apikey").map(String::as_str), jwt::now()) {
        Ok(c) => c,
        Err(e) => return refuse(StatusCode::UNAUTHORIZED, caller_error_message(&e)),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let rt = state.realtime.clone();
    let limits = rt.limits.clone();
    // A place is taken before the upgrade and given back when the socket's task ends.
    let Some(place) = SocketPlace::take(&rt.open_sockets, limits.max_sockets) else {
        return refuse(StatusCode::TOO_MANY_REQUESTS, "Too many connected users");
    };
    ws.max_message_size(limits.max_frame_bytes)
        .max_frame_size(limits.max_frame_bytes)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| async move {
            socket::serve(socket, rt, vsn, caller).await;
            drop(place);
        })
}

/// One of the process's `max_sockets` places, given back on drop.
struct SocketPlace(Arc<AtomicUsize>);

impl SocketPlace {
    fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<SocketPlace> {
        if open.fetch_add(1, Ordering::AcqRel) >= max {
            open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(SocketPlace(open.clone()))
    }
}

impl Drop for SocketPlace {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `POST /realtime/v1/api/broadcast`: `{"messages": [{topic, event, payload, private}]}`.
/// At most `Limits::api_broadcast_messages` messages; the members-only topics among them are
/// checked together in one transaction, and nothing is sent unless every message may be.
async fn api_broadcast(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let caller = match caller::authenticate(&state.keys, &headers, None, jwt::now()) {
        Ok(c) => c,
        Err(e) => return (StatusCode::UNAUTHORIZED, Json(json!({"message": caller_error_message(&e)}))).into_response(),
    };
    let limits = &state.realtime.limits;
    let bad = |m: &str| (StatusCode::BAD_REQUEST, Json(json!({"message": m}))).into_response();
    let Ok(body) = serde_json::from_slice::<Value>(&body) else { return bad("Body is not JSON") };
    let Some(messages) = body.get("messages").and_then(Value::as_array) else { return bad("Expected {\"messages\": [...]}") };
    if messages.len() > limits.api_broadcast_messages {
        return bad(&format!("Too many messages: at most {} per request", limits.api_broadcast_messages));
    }
    let mut accepted = Vec::new();
    let mut conversations: Vec<(Uuid, String)> = Vec::new();
    for m in messages {
        let (Some(topic), Some(event)) = (m.get("topic").and_then(Value::as_str), m.get("event").and_then(Value::as_str)) else {
            return bad("Each message needs a topic and an event");
        };
        let payload = m.get("payload").cloned().unwrap_or(Value::Null);
        if payload.to_string().len() > limits.max_broadcast_bytes {
            return (StatusCode::PAYLOAD_TOO_LARGE, Json(json!({"message": "payload_size_exceeded"}))).into_response();
        }
        let sub = topic.strip_prefix("realtime:").unwrap_or(topic);
        if sub.is_empty() {
            return bad("TopicNameRequired: You must provide a topic name");
        }
        match members_only(sub) {
            None => {}
            Some(Some(conversation)) => conversations.push((conversation, sub.to_owned())),
            Some(None) => return (StatusCode::FORBIDDEN, Json(json!({"message": denied(sub)}))).into_response(),
        }
        accepted.push((Arc::<str>::from(format!("realtime:{sub}")), event.to_owned(), payload));
    }
    if !conversations.is_empty() {
        let ids: Vec<Uuid> = conversations.iter().map(|(c, _)| *c).collect();
        let visible = match state.realtime.visible_conversations(&caller, &ids).await {
            Ok(v) => v,
            Err(e) => {
                let status = match e {
                    MembershipError::SessionEnded => StatusCode::UNAUTHORIZED,
                    MembershipError::Unavailable => StatusCode::INTERNAL_SERVER_ERROR,
                };
                return (status, Json(json!({"message": e.to_string()}))).into_response();
            }
        };
        if let Some((_, sub)) = conversations.iter().find(|(c, _)| !visible.contains(c)) {
            return (StatusCode::FORBIDDEN, Json(json!({"message": denied(sub)}))).into_response();
        }
    }
    for (topic, event, payload) in accepted {
        state.realtime.broadcast(&topic, &event, &payload, None);
    }
    StatusCode::ACCEPTED.into_response()
}
