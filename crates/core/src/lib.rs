//! `werkfunk-core`: the desktop app's engine — no Tauri, no UI.
//!
//! An [`Engine`] is one signed-in account in one profile folder. It opens the account's
//! SQLite cache at once (nothing at start-up waits for the network), and from there:
//!
//! - [`session`]: sign up / in / out, token refresh, the secret in the OS keyring or a
//!   user-only file;
//! - [`store`]: the cache (`cache.sqlite3`) and the device-local outbox file
//!   (`outbox.sqlite3`), migrations, full-text search;
//! - [`outbox`]: sends, edits, deletes and read marks, delivered in order, exactly once;
//! - [`sync`]: catch-up from cursors, older history on demand, live changes applied;
//! - [`realtime`]: the websocket actor (Phoenix channels, vsn 2.0.0);
//! - [`draft`], [`typing`], [`presence`], [`notify`]: small state and decisions, pure where
//!   they can be;
//! - [`events`]: what a front end listens to; [`supervisor`]: the background tasks.
//!
//! Front ends (the Tauri shell, `werkfunk-cli`) call the engine and listen to its events;
//! they never touch SQLite or HTTP themselves.

pub mod api;
pub mod draft;
pub mod error;
pub mod events;
pub mod notify;
pub mod outbox;
pub mod presence;
pub mod realtime;
pub mod session;
pub mod store;
pub mod supervisor;
pub mod sync;
pub mod typing;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use uuid::Uuid;
use werkfunk_protocol::rows;

pub use api::{Api, ServerConfig};
pub use error::{Error, Result};
pub use events::{Event, Events};
pub use outbox::{DrainOutcome, Entry, EntryState, Outbox, SendState};
pub use realtime::{Connectivity, RealtimeConfig};
pub use session::Session;
pub use store::Store;

use notify::{DoNotDisturb, Grouper};
use realtime::{Binding, ChannelSpec, Incoming, Realtime};
use supervisor::TaskHandle;
use sync::Catchup;

/// A message as a front end shows it: cached or still in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageView {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub sender_id: Uuid,
    pub content: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub edited: bool,
    pub deleted: bool,
    pub state: SendState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl MessageView {
    /// A message as the cache has it, in `state`.
    fn cached(m: store::CachedMessage, state: SendState) -> MessageView {
        MessageView {
            edited: m.updated_at > m.created_at && m.deleted_at.is_none(),
            deleted: m.deleted_at.is_some(),
            id: m.id,
            conversation_id: m.conversation_id,
            sender_id: m.sender_id,
            content: m.content,
            created_at: m.created_at,
            updated_at: m.updated_at,
            state,
            error: None,
        }
    }
}

/// The platform's data folder for the default profile (`~/.local/share/werkfunk`).
pub fn default_profile() -> PathBuf {
    dirs::data_dir().unwrap_or_else(|| PathBuf::from(".")).join("werkfunk")
}

struct Live {
    realtime: Arc<Realtime>,
    _tasks: Vec<TaskHandle>,
}

/// State the live tasks share with the engine's callers.
#[derive(Default)]
struct Focus {
    in_front: Option<Uuid>,
    typing: typing::Throttle,
}

/// One signed-in account.
pub struct Engine {
    profile: PathBuf,
    session: Arc<Session>,
    store: Arc<Store>,
    events: Events,
    outbox: Arc<Outbox>,
    catchup: Catchup,
    drafts: draft::Drafts,
    focus: Arc<Mutex<Focus>>,
    live: Mutex<Option<Live>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("profile", &self.profile).field("user", &self.session.user_id()).finish_non_exhaustive()
    }
}

impl Engine {
    fn assemble(profile: &Path, session: Session) -> Result<Engine> {
        let session = Arc::new(session);
        let store = Arc::new(Store::open(&session.account_dir())?);
        let events = Events::new();
        let outbox = Outbox::new(store.clone(), session.clone(), events.clone());
        let catchup = Catchup::new(store.clone(), session.clone(), events.clone());
        Ok(Engine {
            profile: profile.to_owned(),
            drafts: draft::Drafts::new(store.clone()),
            session,
            store,
            events,
            outbox,
            catchup,
            focus: Arc::new(Mutex::new(Focus::default())),
            live: Mutex::new(None),
        })
    }

    /// Opens the account signed in with `profile`. Offline: reads only local files.
    pub async fn open(profile: &Path, server: &ServerConfig) -> Result<Engine> {
        let api = Api::new(server);
        let session = Session::resume(&api, profile).await?.ok_or(session::SessionError::SignedOut)?;
        Self::assemble(profile, session)
    }

    pub async fn sign_up(profile: &Path, server: &ServerConfig, email: &str, password: &str, name: &str, role: &str) -> Result<Engine> {
        let session = Session::sign_up(&Api::new(server), profile, email, password, name, role).await?;
        Self::assemble(profile, session)
    }

    pub async fn sign_in(profile: &Path, server: &ServerConfig, email: &str, password: &str) -> Result<Engine> {
        let session = Session::sign_in(&Api::new(server), profile, email, password).await?;
        Self::assemble(profile, session)
    }

    /// Signs out (the cache and the outbox of the account stay for its next sign-in).
    pub async fn sign_out(self) -> Result<()> {
        self.stop_live();
        self.session.sign_out().await
    }

    pub fn user_id(&self) -> Uuid {
        self.session.user_id()
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    pub fn catchup(&self) -> &Catchup {
        &self.catchup
    }

    pub fn drafts(&self) -> &draft::Drafts {
        &self.drafts
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    // --- people and conversations -------------------------------------------------------------

    /// Profiles by name (`rpc/search_profiles`, at most 20).
    pub async fn people(&self, query: &str) -> Result<Vec<rows::Profile>> {
        let api = self.session.api().clone();
        let args = json!({"p_query": query});
        let list: Vec<rows::Profile> = self
            .session
            .call(|t| {
                let (api, args) = (api.clone(), args.clone());
                async move { api.rpc("search_profiles", &t, &args).await }
            })
            .await?;
        self.store.upsert_profiles(&list)?;
        Ok(list)
    }

    /// Starts a conversation (`rpc/create_conversation`; an existing direct one is returned).
    pub async fn create_conversation(&self, kind: &str, with: &[Uuid], title: Option<&str>) -> Result<Uuid> {
        if !["direct", "group", "project"].contains(&kind) {
            return Err(Error::invalid(format!("unknown conversation type {kind:?}: direct, group or project")));
        }
        let api = self.session.api().clone();
        let args = json!({"p_type": kind, "p_title": title, "p_member_ids": with});
        let id: Uuid = self
            .session
            .call(|t| {
                let (api, args) = (api.clone(), args.clone());
                async move { api.rpc("create_conversation", &t, &args).await }
            })
            .await?;
        self.catchup.conversations().await?;
        Ok(id)
    }

    /// The conversations in the cache, most recent first.
    pub fn conversations(&self) -> Result<Vec<store::CachedConversation>> {
        Ok(self.store.conversations()?)
    }

    // --- messages -----------------------------------------------------------------------------

    /// Queues a message (persisted before this returns); delivery is the outbox's job.
    pub fn send(&self, conversation: Uuid, text: &str) -> Result<Uuid> {
        if let Ok(mut f) = self.focus.lock() {
            f.typing.reset();
        }
        self.outbox.send(conversation, text)
    }

    /// One bounded delivery pass over a conversation's outbox.
    pub async fn deliver(&self, conversation: Uuid, deadline: Instant) -> Result<DrainOutcome> {
        self.outbox.drain_once(conversation, deadline).await
    }

    /// One bounded pass over every conversation with queued entries.
    pub async fn deliver_all(&self, deadline: Instant) -> Result<Vec<(Uuid, DrainOutcome)>> {
        let mut out = Vec::new();
        for conversation in self.outbox.conversations()? {
            let outcome = self.outbox.drain_once(conversation, deadline).await?;
            let unreachable = matches!(outcome, DrainOutcome::Unreachable(_));
            out.push((conversation, outcome));
            if unreachable {
                break; // the server is away: the other conversations would fail the same way
            }
        }
        Ok(out)
    }

    /// A full catch-up pass.
    pub async fn catch_up(&self) -> Result<sync::Report> {
        self.catchup.run().await
    }

    /// The send state of a message, if we know it.
    pub fn message_state(&self, message: Uuid) -> Result<Option<(SendState, Option<String>)>> {
        if let Some(e) = self.outbox.send_entry(message)? {
            return Ok(Some((self.outbox.state_of(&e), e.error.map(|f| f.to_string()))));
        }
        Ok(self.store.message(message)?.map(|_| (SendState::Sent, None)))
    }

    /// The newest `limit` messages before `before` from the cache, with unsent ones from the
    /// outbox after them (only on the newest page), oldest first. Never touches the network.
    pub fn timeline(&self, conversation: Uuid, before: Option<(DateTime<Utc>, Uuid)>, limit: usize) -> Result<Vec<MessageView>> {
        let me = self.user_id();
        let cached = self.store.messages_before(conversation, before, limit)?;
        let entries = self.outbox.entries_for(conversation)?;
        let members = self.store.members(conversation)?;
        let read_by_all = members.iter().filter(|m| m.user_id != me).map(|m| m.last_read_at).min();
        let mut views: Vec<MessageView> = cached
            .into_iter()
            .map(|m| {
                let state = match read_by_all {
                    Some(t) if m.sender_id == me && t >= m.created_at => SendState::Read,
                    _ => SendState::Sent,
                };
                MessageView::cached(m, state)
            })
            .collect();
        let index: HashMap<Uuid, usize> = views.iter().enumerate().map(|(i, v)| (v.id, i)).collect();
        for e in &entries {
            let Some(message) = e.message_id else { continue };
            let state = self.outbox.state_of(e);
            let error = e.error.as_ref().map(|f| f.to_string());
            match (e.op, index.get(&message)) {
                (outbox::Op::Edit, Some(&i)) => {
                    views[i].content = e.content().unwrap_or_default().to_owned();
                    views[i].edited = true;
                    views[i].state = state;
                    views[i].error = error;
                }
                (outbox::Op::Delete, Some(&i)) => {
                    views[i].deleted = true;
                    views[i].state = state;
                    views[i].error = error;
                }
                (outbox::Op::Send, None) if before.is_none() => views.push(MessageView {
                    id: message,
                    conversation_id: conversation,
                    sender_id: me,
                    content: e.content().unwrap_or_default().to_owned(),
                    created_at: e.created_at,
                    updated_at: e.created_at,
                    edited: false,
                    deleted: false,
                    state,
                    error,
                }),
                _ => {}
            }
        }
        // Queued edits/deletes of a still-unsent message apply to its local echo.
        for e in entries.iter().filter(|e| matches!(e.op, outbox::Op::Edit | outbox::Op::Delete)) {
            if let Some(v) = views.iter_mut().find(|v| Some(v.id) == e.message_id && !index.contains_key(&v.id)) {
                match e.op {
                    outbox::Op::Edit => v.content = e.content().unwrap_or_default().to_owned(),
                    _ => v.deleted = true,
                }
            }
        }
        Ok(views)
    }

    /// Older history: from the cache first; from the server when the cache has less than
    /// `limit` before `before` and the server may have more.
    pub async fn load_older(&self, conversation: Uuid, before: (DateTime<Utc>, Uuid), limit: usize) -> Result<Vec<MessageView>> {
        let cached = self.timeline(conversation, Some(before), limit)?;
        if cached.len() >= limit {
            return Ok(cached);
        }
        let cursor = self.store.cursor(conversation)?.unwrap_or_default();
        if cursor.complete {
            return Ok(cached);
        }
        match self.catchup.older(conversation, limit.max(50)).await {
            Ok(_) => self.timeline(conversation, Some(before), limit),
            Err(Error::Api(e)) if e.is_transient() => Ok(cached), // offline: what the cache has
            Err(e) => Err(e),
        }
    }

    /// Full-text search over the cache (offline too), newest first.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<MessageView>> {
        Ok(self
            .store
            .search(query, limit)?
            .into_iter()
            .map(|m| MessageView::cached(m, SendState::Sent))
            .collect())
    }

    /// Marks a conversation read now (through the outbox: works offline).
    pub fn mark_read(&self, conversation: Uuid) -> Result<Uuid> {
        self.outbox.mark_read(conversation, Utc::now())
    }

    // --- device settings ----------------------------------------------------------------------

    pub fn set_muted(&self, conversation: Uuid, muted: bool) -> Result<()> {
        self.store.write(|tx| {
            tx.execute(
                "insert or replace into local.conversation_settings (conversation_id, muted) values (?1, ?2)",
                rusqlite::params![conversation.to_string(), muted],
            )
        })?;
        Ok(())
    }

    pub fn muted(&self) -> Result<HashSet<Uuid>> {
        let ids: Vec<String> = self.store.read(|c| {
            let mut s = c.prepare("select conversation_id from local.conversation_settings where muted = 1")?;
            let r = s.query_map([], |r| r.get(0))?.collect();
            r
        })?;
        Ok(ids.iter().filter_map(|s| s.parse().ok()).collect())
    }

    pub fn set_do_not_disturb(&self, dnd: DoNotDisturb) -> Result<()> {
        let value = serde_json::to_string(&dnd).expect("serialises");
        self.store.write(|tx| {
            tx.execute("insert or replace into local.settings (key, value) values ('dnd', ?1)", [value])
        })?;
        Ok(())
    }

    pub fn do_not_disturb(&self) -> Result<DoNotDisturb> {
        use rusqlite::OptionalExtension;
        let v: Option<String> =
            self.store.read(|c| c.query_row("select value from local.settings where key = 'dnd'", [], |r| r.get(0)).optional())?;
        Ok(v.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default())
    }

    // --- live mode ----------------------------------------------------------------------------

    /// Goes live: outbox workers, the realtime connection with the account's channel, and
    /// catch-ups after every (re)join. Idempotent.
    pub fn start_live(&self, config: RealtimeConfig) -> Result<()> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if live.is_some() {
            return Ok(());
        }
        self.outbox.start()?;
        let api = self.session.api();
        let url = realtime::socket_url(api.base_url(), api.anon_key());
        let (realtime, incoming) = Realtime::start(url, self.session.watch_token(), config);
        let realtime = Arc::new(realtime);
        let me = self.user_id();
        let user_topic = format!("user:{me}");
        let spec = ChannelSpec {
            topic: user_topic.clone(),
            postgres_changes: vec![
                Binding::table("*", "messages", None),
                Binding::table("*", "conversation_members", None),
                Binding::table("*", "conversations", None),
                Binding::table("*", "notifications", Some(format!("user_id=eq.{me}"))),
            ],
            presence_key: None,
        };
        let mut tasks = Vec::new();
        {
            let rt = realtime.clone();
            tasks.push(supervisor::spawn("realtime:join-user-channel", true, async move { rt.join(spec).await }));
        }
        let processor = Processor {
            me,
            user_topic,
            catchup: self.catchup.clone(),
            store: self.store.clone(),
            outbox: self.outbox.clone(),
            events: self.events.clone(),
            focus: self.focus.clone(),
            session: self.session.clone(),
            grouper: Grouper::default(),
            typing: HashMap::new(),
            presence: HashMap::new(),
            catchup_task: None,
            refresh_task: None,
        };
        tasks.push(supervisor::spawn("live:incoming", true, processor.run(incoming)));
        tasks.push(supervisor::spawn(
            "live:connectivity",
            true,
            watch_connectivity(realtime.connectivity(), self.events.clone(), self.outbox.clone()),
        ));
        {
            let rt = realtime.clone();
            let focus = self.focus.clone();
            tasks.push(supervisor::spawn("live:presence-heartbeat", false, async move {
                let mut tick = tokio::time::interval(presence::HEARTBEAT);
                loop {
                    tick.tick().await;
                    let open = focus.lock().ok().and_then(|f| f.in_front);
                    if let Some(c) = open {
                        rt.track(&format!("presence:{c}"), json!({"user_id": me, "online_at": Utc::now()})).await;
                    }
                }
            }));
        }
        {
            // Refresh shortly before expiry, so the channels get the new token in time.
            let session = self.session.clone();
            let events = self.events.clone();
            tasks.push(supervisor::spawn("session:refresh", false, async move {
                loop {
                    let due = session.refresh_due().await;
                    let wait = (due - Utc::now().timestamp()).max(1) as u64;
                    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
                    match session.access_token().await {
                        Ok(_) => {}
                        Err(Error::Session(e)) => {
                            tracing::warn!(error = %e, "the session ended");
                            events.emit(Event::SignedOut);
                            std::future::pending::<()>().await;
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "token refresh failed; retrying");
                            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                        }
                    }
                }
            }));
        }
        *live = Some(Live { realtime, _tasks: tasks });
        Ok(())
    }

    /// Stops the live tasks (the outbox keeps its entries).
    pub fn stop_live(&self) {
        self.outbox.stop();
        self.live.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// The connection state, while live.
    pub fn connectivity(&self) -> Option<watch::Receiver<Connectivity>> {
        self.live.lock().ok()?.as_ref().map(|l| l.realtime.connectivity())
    }

    fn realtime(&self) -> Option<Arc<Realtime>> {
        self.live.lock().ok()?.as_ref().map(|l| l.realtime.clone())
    }

    /// The conversation now in front (or none): it gets no notifications, and we are present
    /// and can see typing there.
    pub async fn set_in_front(&self, conversation: Option<Uuid>) {
        let previous = {
            let mut f = self.focus.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(&mut f.in_front, conversation)
        };
        let Some(rt) = self.realtime() else { return };
        if previous == conversation {
            return;
        }
        if let Some(p) = previous {
            rt.leave(&format!("typing:{p}")).await;
            rt.leave(&format!("presence:{p}")).await;
        }
        if let Some(c) = conversation {
            // The server's members-only topics: typing:<id> (broadcast), presence:<id>.
            rt.join(ChannelSpec { topic: format!("typing:{c}"), postgres_changes: Vec::new(), presence_key: None }).await;
            let topic = format!("presence:{c}");
            rt.join(ChannelSpec { topic: topic.clone(), postgres_changes: Vec::new(), presence_key: Some(self.user_id().to_string()) })
                .await;
            rt.track(&topic, json!({"user_id": self.user_id(), "online_at": Utc::now()})).await;
        }
    }

    /// The user typed in `conversation`: announces it, at most once per 2 s.
    pub async fn typing(&self, conversation: Uuid) {
        let go = self.focus.lock().map(|mut f| f.typing.should_send(Instant::now())).unwrap_or(false);
        if let (true, Some(rt)) = (go, self.realtime()) {
            rt.broadcast(&format!("typing:{conversation}"), "typing", json!({"user_id": self.user_id()})).await;
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // The outbox workers hold the outbox; stopping them breaks that cycle.
        self.stop_live();
    }
}

async fn watch_connectivity(mut rx: watch::Receiver<Connectivity>, events: Events, outbox: Arc<Outbox>) {
    loop {
        let state = rx.borrow_and_update().clone();
        if state == Connectivity::Online {
            outbox.wake_all();
        }
        events.emit(Event::Connectivity { state });
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Applies what the realtime connection delivers.
struct Processor {
    me: Uuid,
    user_topic: String,
    catchup: Catchup,
    store: Arc<Store>,
    outbox: Arc<Outbox>,
    events: Events,
    focus: Arc<Mutex<Focus>>,
    session: Arc<Session>,
    grouper: Grouper,
    typing: HashMap<Uuid, typing::Indicators>,
    presence: HashMap<Uuid, presence::Roster>,
    catchup_task: Option<TaskHandle>,
    refresh_task: Option<TaskHandle>,
}

impl Processor {
    async fn run(mut self, mut incoming: mpsc::Receiver<Incoming>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tokio::select! {
                msg = incoming.recv() => match msg {
                    Some(m) => self.handle(m),
                    None => return,
                },
                _ = tick.tick() => self.expire_typing(),
            }
        }
    }

    fn conversation_of(topic: &str) -> Option<Uuid> {
        topic.strip_prefix("typing:").or_else(|| topic.strip_prefix("presence:"))?.parse().ok()
    }

    fn handle(&mut self, m: Incoming) {
        match m {
            Incoming::Trusted { topic } if topic == self.user_topic => {
                self.events.emit(Event::Channel { topic: topic.clone(), subscribed: true });
                // Subscribed: whatever happened before now is fetched by a catch-up.
                self.outbox.wake_all();
                let catchup = self.catchup.clone();
                self.catchup_task = Some(supervisor::spawn("live:catch-up", true, async move {
                    if let Err(e) = catchup.run().await {
                        tracing::warn!(error = %e, code = e.code(), "catch-up after join failed; the next join retries");
                    }
                }));
            }
            Incoming::Trusted { topic } => self.events.emit(Event::Channel { topic, subscribed: true }),
            Incoming::Lost { topic } => self.events.emit(Event::Channel { topic, subscribed: false }),
            Incoming::Change { table, kind, record, old_record, .. } => {
                match sync::change_from(&table, &kind, &record, &old_record) {
                    Ok(Some(change)) => {
                        let is_insert = kind == "INSERT";
                        match self.catchup.apply_change(change) {
                            Ok(Some(message)) if is_insert => self.on_new_message(&message),
                            Ok(_) => {}
                            Err(e) => tracing::warn!(error = %e, "could not apply a live change"),
                        }
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "malformed live change"),
                }
            }
            Incoming::Broadcast { topic, event, payload } if event == "typing" => {
                let (Some(c), Some(user)) = (
                    Self::conversation_of(&topic),
                    payload.get("user_id").and_then(Value::as_str).and_then(|s| s.parse::<Uuid>().ok()),
                ) else {
                    return;
                };
                if user == self.me {
                    return;
                }
                let ind = self.typing.entry(c).or_default();
                ind.typed(user, Instant::now());
                let typing = ind.active(Instant::now());
                self.events.emit(Event::Typing { conversation_id: c, typing });
            }
            Incoming::PresenceState { topic, payload } | Incoming::PresenceDiff { topic, payload } => {
                let Some(c) = Self::conversation_of(&topic) else { return };
                let roster = self.presence.entry(c).or_default();
                if payload.get("joins").is_some() || payload.get("leaves").is_some() {
                    roster.diff(&payload, Instant::now());
                } else {
                    roster.state(&payload, Instant::now());
                }
                self.events.emit(Event::Presence { conversation_id: c, online: roster.online(Instant::now()) });
            }
            Incoming::Error { topic, message } => {
                tracing::info!(%topic, %message, "realtime channel error");
                if message.to_lowercase().contains("token") {
                    // Push a fresh token before the rejoin.
                    let session = self.session.clone();
                    if self.refresh_task.as_ref().is_none_or(|t| t.is_finished()) {
                        self.refresh_task = Some(supervisor::spawn("live:token-refresh", true, async move {
                            let _ = session.access_token().await;
                        }));
                    }
                }
            }
            _ => {}
        }
    }

    fn on_new_message(&mut self, m: &rows::Message) {
        let in_front = self.focus.lock().ok().and_then(|f| f.in_front);
        if m.sender_id != self.me {
            if let Some(ind) = self.typing.get_mut(&m.conversation_id) {
                ind.stopped(m.sender_id);
            }
            if in_front != Some(m.conversation_id) && m.deleted_at.is_none() {
                let _ = self.store.add_unread(m.conversation_id, 1);
                self.events.emit(Event::ConversationChanged { conversation_id: m.conversation_id });
            }
        }
        let ctx = notify::Context {
            me: self.me,
            in_front,
            muted: self.muted(),
            dnd: self.dnd(),
            now: Utc::now(),
        };
        let incoming = notify::Incoming {
            message_id: m.id,
            conversation_id: m.conversation_id,
            sender_id: m.sender_id,
            deleted: m.deleted_at.is_some(),
        };
        if notify::decide(&incoming, &ctx) != notify::Decision::Notify {
            return;
        }
        if let Some(group) = self.grouper.add(&incoming) {
            let name = self.store.profile_name(m.sender_id).ok().flatten().unwrap_or_else(|| "Jemand".into());
            self.events.emit(Event::Notification {
                conversation_id: m.conversation_id,
                message_id: m.id,
                sender_id: m.sender_id,
                title: name.clone(),
                body: notify::body(&group, &name, &m.content),
                count: group.count,
            });
        }
    }

    fn muted(&self) -> HashSet<Uuid> {
        self.store
            .read(|c| {
                let mut s = c.prepare_cached("select conversation_id from local.conversation_settings where muted = 1")?;
                let r = s.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>();
                r
            })
            .map(|v| v.iter().filter_map(|s| s.parse().ok()).collect())
            .unwrap_or_default()
    }

    fn dnd(&self) -> DoNotDisturb {
        use rusqlite::OptionalExtension;
        self.store
            .read(|c| c.query_row("select value from local.settings where key = 'dnd'", [], |r| r.get::<_, String>(0)).optional())
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default()
    }

    fn expire_typing(&mut self) {
        let now = Instant::now();
        let mut changed = Vec::new();
        self.typing.retain(|c, ind| {
            let active = ind.active(now);
            if active.is_empty() {
                changed.push(*c);
                false
            } else {
                true
            }
        });
        for c in changed {
            self.events.emit(Event::Typing { conversation_id: c, typing: Vec::new() });
        }
    }
}
