//! `werkfunk-core`: the desktop app's engine — no Tauri, no UI.
//!
//! An [`Engine`] is one signed-in account in one profile folder. It opens the account's
//! SQLite cache at once (nothing at start-up waits for the network), and from there:
//!
//! - [`session`]: sign up / in / out, token refresh, the secret in the OS keyring or a
//!   user-only file; [`lock`]: one process per profile;
//! - [`store`]: the cache (`cache.sqlite3`) and the device-local outbox file
//!   (`outbox.sqlite3`), migrations, full-text search, all of the engine's SQL — one writer
//!   thread and a pool of reader threads, called through async methods;
//! - [`outbox`]: sends, edits, deletes and read marks, delivered in order, exactly once;
//! - [`sync`]: catch-up from cursors, older history on demand, live changes applied;
//! - [`realtime`]: the websocket actor (Phoenix channels, vsn 2.0.0);
//! - [`draft`], [`typing`], [`presence`], [`notify`]: small state and decisions, pure where
//!   they can be;
//! - [`view`]: what front ends show (serialisable); [`events`]: what they listen to;
//!   [`supervisor`]: the background tasks; [`backoff`]: every retry's schedule.
//!
//! Front ends (the Tauri shell, `werkfunk-cli`) call the engine's methods — one per command of
//! `docs/app-commands.md` — and listen to its events; they never touch SQLite or HTTP
//! themselves. Every method that reads or writes the store is `async` and awaits the store's own
//! threads, so a command never blocks the runtime.

pub mod api;
pub mod backoff;
pub mod draft;
pub mod error;
pub mod events;
mod live;
pub mod lock;
pub mod notify;
pub mod outbox;
pub mod presence;
pub mod realtime;
pub mod session;
pub mod store;
pub mod supervisor;
pub mod sync;
pub mod typing;
pub mod view;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use uuid::Uuid;
use werkfunk_protocol::{auth, rows};

pub use api::{Api, ServerConfig};
pub use error::{Error, Result};
pub use events::{Event, Events};
pub use outbox::{DrainOutcome, Entry, EntryState, Outbox, SendState};
pub use realtime::{Connectivity, RealtimeConfig};
pub use session::Session;
pub use store::Store;
pub use view::{
    ConversationKind, ConversationRow, Language, Member, MemberRole, Message, Notification, Profile, Role, SearchHit, Settings,
};

use live::Live;
use lock::ProfileLock;
use sync::Catchup;

/// The key of the device settings in `local.settings`.
const SETTINGS_KEY: &str = "settings";
/// When this device was last online (RFC 3339), for catch-up notifications.
const LAST_ONLINE_KEY: &str = "last_online_at";
/// The longest display name the engine sends.
pub const MAX_NAME_CHARS: usize = 100;
/// The shortest password the server takes.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Notifications the notification center lists.
pub const NOTIFICATION_LIST: usize = 200;

/// The platform's data folder for the default profile (`~/.local/share/werkfunk`).
pub fn default_profile() -> PathBuf {
    dirs::data_dir().unwrap_or_else(|| PathBuf::from(".")).join("werkfunk")
}

/// What the caller's commands and the live tasks share.
#[derive(Debug, Default)]
struct Shared {
    window: notify::Window,
    typing_throttle: typing::Throttle,
    typing: HashMap<Uuid, typing::Indicators>,
    presence: presence::Book,
    /// The online set last published.
    online: Vec<Uuid>,
    grouper: notify::Grouper,
}

/// The parts of an engine, cheap to clone into a task.
#[derive(Clone)]
struct Core {
    me: Uuid,
    session: Arc<Session>,
    store: Arc<Store>,
    outbox: Arc<Outbox>,
    events: Events,
    catchup: Catchup,
    shared: Arc<Mutex<Shared>>,
    /// Wakes the live task to recompute which presence channels to hold.
    presence_dirty: Arc<Notify>,
    started_at: DateTime<Utc>,
}

impl Core {
    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    // --- reading and deciding (the store answers on its own threads) -------------------------

    async fn settings(&self) -> Result<Settings> {
        Ok(self.store.setting(SETTINGS_KEY).await?.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default())
    }

    async fn last_online(&self) -> DateTime<Utc> {
        let stored = self.store.setting(LAST_ONLINE_KEY).await.ok().flatten();
        stored.and_then(|v| store::parse_ts(&v).ok()).unwrap_or(self.started_at)
    }

    async fn set_last_online(&self, at: DateTime<Utc>) -> Result<()> {
        Ok(self.store.set_setting(LAST_ONLINE_KEY, &store::ts(at)).await?)
    }

    async fn my_name(&self) -> String {
        self.store.profile(self.me).await.ok().flatten().map(|p| p.full_name).unwrap_or_default()
    }

    async fn rows(&self) -> Result<Vec<ConversationRow>> {
        let language = self.settings().await?.language;
        let data = self.store.conversation_rows(self.me).await?;
        Ok(data.into_iter().map(|d| conversation_row(d, language)).collect())
    }

    async fn timeline(&self, conversation: Uuid, before: Option<(DateTime<Utc>, Uuid)>, limit: usize) -> Result<Vec<Message>> {
        let me = self.me;
        let cached = self.store.messages_before(conversation, before, limit).await?;
        let entries = self.outbox.entries_for(conversation).await?;
        let members = self.store.members(conversation).await?;
        let read_by_all = members.iter().filter(|m| m.user_id != me).map(|m| m.last_read_at).min();
        let mut views: Vec<Message> = cached
            .into_iter()
            .map(|m| {
                let state = match read_by_all {
                    Some(t) if m.sender_id == me && t >= m.created_at => SendState::Read,
                    _ => SendState::Sent,
                };
                cached_message(m, state)
            })
            .collect();
        let index: HashMap<Uuid, usize> = views.iter().enumerate().map(|(i, v)| (v.id, i)).collect();
        let my_name = if entries.is_empty() { String::new() } else { self.my_name().await };
        for e in &entries {
            let Some(message) = e.message_id else { continue };
            let state = self.outbox.state_of(e);
            let error = e.error.as_ref().map(|f| view::MessageError { code: f.code.clone(), message: f.message.clone() });
            match (e.op, index.get(&message)) {
                (outbox::Op::Edit, Some(&i)) => {
                    views[i].content = e.content().unwrap_or_default().to_owned();
                    views[i].edited = true;
                    views[i].state = state;
                    views[i].error = error;
                }
                (outbox::Op::Delete, Some(&i)) => {
                    views[i].deleted = true;
                    views[i].content = String::new();
                    views[i].state = state;
                    views[i].error = error;
                }
                (outbox::Op::Send, None) if before.is_none() => views.push(Message {
                    id: message,
                    conversation_id: conversation,
                    sender_id: me,
                    sender_name: my_name.clone(),
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
                    _ => {
                        v.deleted = true;
                        v.content = String::new();
                    }
                }
            }
        }
        Ok(views)
    }

    /// Marks a conversation read (outbox) and clears its notification group: read up to now,
    /// or up to the newest message seen if that is later by this machine's clock (a clock
    /// behind would otherwise leave the last minutes unread; the server clamps a time ahead).
    async fn mark_read(&self, conversation: Uuid) -> Result<Uuid> {
        self.shared().grouper.clear(conversation);
        let newest = self.store.newest_created_at(conversation).await?;
        self.outbox.mark_read(conversation, newest.map_or_else(Utc::now, |n| n.max(Utc::now()))).await
    }

    async fn notify_context(&self) -> notify::Context {
        let settings = self.settings().await.unwrap_or_default();
        let muted = self.store.muted().await.unwrap_or_default();
        notify::Context {
            me: self.me,
            window: self.shared().window,
            muted,
            dnd_until: settings.dnd_until,
            disabled: !settings.notifications,
            now: Utc::now(),
        }
    }

    /// A message that arrived live: unread count, read-in-front, notification.
    async fn on_live_message(&self, m: &rows::Message) -> Result<()> {
        let ctx = self.notify_context().await;
        let incoming = notify::Incoming {
            message_id: m.id,
            conversation_id: m.conversation_id,
            sender_id: m.sender_id,
            deleted: m.deleted_at.is_some(),
        };
        let decision = notify::decide(&incoming, &ctx);
        if m.sender_id != self.me {
            if let Some(ind) = self.shared().typing.get_mut(&m.conversation_id) {
                ind.stopped(m.sender_id);
            }
        }
        match decision {
            notify::Decision::Own | notify::Decision::Deleted => return Ok(()),
            notify::Decision::ReadInFront => {
                self.mark_read(m.conversation_id).await?;
                return Ok(());
            }
            _ => {
                self.store.add_unread(m.conversation_id, 1).await?;
                self.events.emit(Event::ConversationChanged { conversation_id: m.conversation_id });
            }
        }
        if decision != notify::Decision::Notify {
            return Ok(());
        }
        let Some(group) = self.shared().grouper.add(&incoming) else { return Ok(()) };
        let settings = self.settings().await?;
        let name = self.store.profile_name(m.sender_id).await?.unwrap_or_else(|| notify::someone(settings.language).to_owned());
        let text = notify::text(&group, settings.language, &name, &m.content);
        self.events.emit(Event::Notification {
            conversation_id: m.conversation_id,
            message_id: m.id,
            sender_id: m.sender_id,
            title: text.title,
            body: text.body,
            count: group.count,
            sound: settings.sound,
        });
        Ok(())
    }

    /// A catch-up's new messages: one summary notification per conversation.
    async fn on_catch_up(&self, arrivals: &[rows::Message]) -> Result<()> {
        if arrivals.is_empty() {
            return Ok(());
        }
        let ctx = self.notify_context().await;
        let settings = self.settings().await?;
        let mut by_conversation: Vec<(Uuid, Vec<&rows::Message>)> = Vec::new();
        for m in arrivals {
            match by_conversation.iter_mut().find(|(c, _)| *c == m.conversation_id) {
                Some((_, list)) => list.push(m),
                None => by_conversation.push((m.conversation_id, vec![m])),
            }
        }
        let rows = self.rows().await?;
        for (conversation, mut list) in by_conversation {
            list.sort_by_key(|m| (m.created_at, m.id));
            let Some(last) = list.last() else { continue };
            let incoming = notify::Incoming {
                message_id: last.id,
                conversation_id: conversation,
                sender_id: last.sender_id,
                deleted: false,
            };
            match notify::decide(&incoming, &ctx) {
                notify::Decision::ReadInFront => {
                    self.mark_read(conversation).await?;
                    continue;
                }
                notify::Decision::Notify => {}
                _ => continue,
            }
            let ids: Vec<(Uuid, Uuid)> = list.iter().map(|m| (m.id, m.sender_id)).collect();
            let Some(group) = self.shared().grouper.add_many(conversation, &ids) else { continue };
            let sender =
                self.store.profile_name(last.sender_id).await?.unwrap_or_else(|| notify::someone(settings.language).to_owned());
            let title = rows.iter().find(|r| r.id == conversation).map(|r| r.title.clone()).unwrap_or_else(|| sender.clone());
            let body = if group.count <= 1 {
                notify::text(&group, settings.language, &sender, &last.content).body
            } else {
                notify::count_text(group.count, settings.language)
            };
            self.events.emit(Event::Notification {
                conversation_id: conversation,
                message_id: last.id,
                sender_id: last.sender_id,
                title,
                body,
                count: group.count,
                sound: settings.sound,
            });
        }
        Ok(())
    }

    // --- server calls -----------------------------------------------------------------------

    async fn rpc<T: serde::de::DeserializeOwned>(&self, function: &'static str, args: Value) -> Result<T> {
        let api = self.session.api().clone();
        self.session
            .call(|t| {
                let (api, args) = (api.clone(), args.clone());
                async move { api.rpc(function, &t, &args).await }
            })
            .await
            .map_err(Error::offline_if_unreachable)
    }

    /// Fetches the user's own profile into the cache.
    async fn refresh_own_profile(&self) -> Result<rows::Profile> {
        let api = self.session.api().clone();
        let me = self.me;
        let list: Vec<rows::Profile> = self
            .session
            .call(|t| {
                let api = api.clone();
                async move {
                    api.get("/profiles", &t, &[("select", "id,full_name,avatar_url,role".into()), ("id", format!("eq.{me}"))])
                        .await
                }
            })
            .await
            .map_err(Error::offline_if_unreachable)?;
        let profile = list.into_iter().next().ok_or_else(|| Error::NotFound("your profile".into()))?;
        let p = profile.clone();
        self.store.upsert_profiles(std::slice::from_ref(&p)).await?;
        Ok(profile)
    }

    /// Re-reads one conversation's members from the server into the cache.
    async fn refresh_members(&self, conversation: Uuid) -> Result<()> {
        let api = self.session.api().clone();
        let members: Vec<rows::ConversationMember> = self
            .session
            .call(|t| {
                let api = api.clone();
                async move {
                    api.get(
                        "/conversation_members",
                        &t,
                        &[("select", "*".into()), ("conversation_id", format!("eq.{conversation}"))],
                    )
                    .await
                }
            })
            .await
            .map_err(Error::offline_if_unreachable)?;
        self.store.replace_members(&[conversation], &members).await?;
        self.catchup.profiles().await?;
        self.events.emit(Event::MembersChanged { conversation_id: conversation });
        self.events.emit(Event::ConversationChanged { conversation_id: conversation });
        Ok(())
    }
}

fn cached_message(m: store::CachedMessage, state: SendState) -> Message {
    Message {
        edited: m.updated_at > m.created_at && m.deleted_at.is_none(),
        deleted: m.deleted_at.is_some(),
        id: m.id,
        conversation_id: m.conversation_id,
        sender_id: m.sender_id,
        sender_name: m.sender_name.unwrap_or_default(),
        content: if m.deleted_at.is_some() { String::new() } else { m.content },
        created_at: m.created_at,
        updated_at: m.updated_at,
        state,
        error: None,
    }
}

fn conversation_row(d: store::ConversationRowData, language: Language) -> ConversationRow {
    let kind = ConversationKind::parse(&d.kind).unwrap_or(ConversationKind::Group);
    let title = d
        .title
        .filter(|t| !t.trim().is_empty())
        .or(if kind == ConversationKind::Direct { d.partner_name.clone() } else { None })
        .or(d.others.clone().filter(|o| !o.is_empty()))
        .unwrap_or_else(|| {
            match language.resolved() {
                Language::En => "Conversation",
                _ => "Unterhaltung",
            }
            .to_owned()
        });
    ConversationRow {
        id: d.id,
        kind,
        title,
        partner_id: d.partner_id,
        unread_count: d.unread_count,
        last_message: d.last_message.map(|m| view::LastMessage {
            sender_id: m.sender_id,
            sender_name: m.sender_name.unwrap_or_default(),
            content: if m.deleted { String::new() } else { m.content },
            deleted: m.deleted,
            created_at: m.created_at,
        }),
        last_activity_at: d.last_activity_at,
        unsent_count: d.unsent_count,
        muted: d.muted,
        left: d.left,
    }
}

/// One signed-in account in one profile folder (which it holds locked).
pub struct Engine {
    profile: PathBuf,
    core: Core,
    drafts: draft::Drafts,
    live: Mutex<Option<Live>>,
    signed_out: AtomicBool,
    /// Held until the engine is dropped or signs out.
    lock: Mutex<Option<ProfileLock>>,
}

// The desktop shell keeps the engine in its state and calls it from any thread.
const _: fn() = || {
    fn assert_shareable<T: Send + Sync + 'static>() {}
    assert_shareable::<Engine>();
};

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("profile", &self.profile).field("user", &self.core.me).finish_non_exhaustive()
    }
}

impl Engine {
    async fn assemble(profile: &Path, session: Session, lock: ProfileLock) -> Result<Engine> {
        let session = Arc::new(session);
        let dir = session.account_dir();
        let store = Arc::new(Store::open(&dir).await?);
        let events = Events::new();
        let outbox = Outbox::new(store.clone(), session.clone(), events.clone());
        let catchup = Catchup::new(store.clone(), session.clone(), events.clone());
        let core = Core {
            me: session.user_id(),
            session,
            store: store.clone(),
            outbox,
            events,
            catchup,
            shared: Arc::new(Mutex::new(Shared::default())),
            presence_dirty: Arc::new(Notify::new()),
            started_at: Utc::now(),
        };
        Ok(Engine {
            profile: profile.to_owned(),
            drafts: draft::Drafts::new(store),
            core,
            live: Mutex::new(None),
            signed_out: AtomicBool::new(false),
            lock: Mutex::new(Some(lock)),
        })
    }

    /// Opens the account signed in with `profile`. Offline: reads only local files. Another
    /// process on the profile: [`Error::ProfileInUse`] at once.
    pub async fn open(profile: &Path, server: &ServerConfig) -> Result<Engine> {
        let lock = ProfileLock::acquire(profile)?;
        let api = Api::new(server);
        let session = Session::resume(&api, profile).await?.ok_or(session::SessionError::SignedOut)?;
        Self::assemble(profile, session, lock).await
    }

    /// Creates an account (confirmed at once) and signs it in with `profile`.
    pub async fn sign_up(
        profile: &Path,
        server: &ServerConfig,
        email: &str,
        password: &str,
        name: &str,
        role: Role,
    ) -> Result<Engine> {
        let lock = ProfileLock::acquire(profile)?;
        check_name(name)?;
        check_password(password)?;
        let session = Session::sign_up(&Api::new(server), profile, email, password, name.trim(), role.as_str()).await?;
        let engine = Self::assemble(profile, session, lock).await?;
        let _ = engine.core.refresh_own_profile().await;
        Ok(engine)
    }

    /// Signs in with `profile`.
    pub async fn sign_in(profile: &Path, server: &ServerConfig, email: &str, password: &str) -> Result<Engine> {
        let lock = ProfileLock::acquire(profile)?;
        let session = Session::sign_in(&Api::new(server), profile, email, password).await?;
        let engine = Self::assemble(profile, session, lock).await?;
        let _ = engine.core.refresh_own_profile().await;
        Ok(engine)
    }

    fn check_signed_in(&self) -> Result<()> {
        if self.signed_out.load(Ordering::SeqCst) {
            return Err(session::SessionError::SignedOut.into());
        }
        Ok(())
    }

    /// The engine's parts, once signed in.
    fn core(&self) -> Result<&Core> {
        self.check_signed_in()?;
        Ok(&self.core)
    }

    /// For commands that need the server now: [`Error::Offline`] at once while the live
    /// connection is down.
    fn require_online(&self) -> Result<()> {
        self.check_signed_in()?;
        match self.connectivity() {
            Connectivity::Offline { since } => Err(Error::Offline(format!("offline since {since}"))),
            Connectivity::Connecting { attempt } if attempt > 0 => {
                Err(Error::Offline(format!("reconnecting (attempt {attempt})")))
            }
            _ => Ok(()),
        }
    }

    /// Signs out. The server session is revoked (best effort) and the secret forgotten. With
    /// `wipe`, this device's data of the account goes too: its folder (cache, outbox with
    /// whatever is unsent — ask [`Engine::unsent_count`] and confirm first) and its keyring
    /// entry. Without, the cache and the outbox stay for the next sign-in. The engine answers
    /// `signed_out` from then on, and the profile's lock is released.
    pub async fn sign_out(&self, wipe: bool) -> Result<()> {
        if self.signed_out.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.stop_live();
        self.core.session.sign_out().await?;
        if wipe {
            let dir = self.core.session.account_dir();
            supervisor::blocking(move || match std::fs::remove_dir_all(&dir) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(session::SessionError::Io { path: dir.clone(), source }.into()),
            })
            .await?;
        }
        self.core.events.emit(Event::SignedOut {});
        // The profile is free for the next sign-in, even while this engine is still held.
        self.lock.lock().unwrap_or_else(|p| p.into_inner()).take();
        Ok(())
    }

    pub fn user_id(&self) -> Uuid {
        self.core.me
    }

    /// The profile folder this engine holds.
    pub fn profile_dir(&self) -> &Path {
        &self.profile
    }

    /// This account's folder (cache, outbox) inside the profile.
    pub fn account_dir(&self) -> PathBuf {
        self.core.session.account_dir()
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.core.session
    }

    /// The catch-up machinery (benchmarks and tests drive single passes through it).
    pub fn catchup(&self) -> &Catchup {
        &self.core.catchup
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.core.events.subscribe()
    }

    /// Messages, edits and deletes not yet on the server (queued or failed), all
    /// conversations: what signing out with `wipe` would lose.
    pub async fn unsent_count(&self) -> Result<u32> {
        Ok(self.core()?.store.unsent_count().await?)
    }

    // --- people and conversations -------------------------------------------------------------

    /// Profiles by name (`rpc/search_profiles`, at most 20), never the user's own.
    pub async fn people(&self, query: &str) -> Result<Vec<Profile>> {
        self.require_online()?;
        let list: Vec<rows::Profile> = self.core.rpc("search_profiles", json!({"p_query": query})).await?;
        let cached = list.clone();
        self.core.store.upsert_profiles(&cached).await?;
        let me = self.user_id();
        Ok(list.into_iter().filter(|p| p.id != me).map(|p| Profile::from_row(p, None)).collect())
    }

    /// Starts a conversation (`rpc/create_conversation`; an existing direct one is returned).
    pub async fn create_conversation(&self, kind: ConversationKind, with: &[Uuid], title: Option<&str>) -> Result<Uuid> {
        self.require_online()?;
        if with.is_empty() {
            return Err(Error::invalid("a conversation needs at least one other person"));
        }
        if kind == ConversationKind::Direct && with.len() != 1 {
            return Err(Error::invalid("a direct conversation is with exactly one other person"));
        }
        let title = title.map(str::trim).filter(|t| !t.is_empty());
        let id: Uuid = self
            .core
            .rpc("create_conversation", json!({"p_type": kind.as_str(), "p_title": title, "p_member_ids": with}))
            .await?;
        self.core.catchup.conversations().await?;
        self.core.presence_dirty.notify_one();
        Ok(id)
    }

    /// The conversation list from the cache, most recent activity first.
    pub async fn conversations(&self) -> Result<Vec<ConversationRow>> {
        self.core()?.rows().await
    }

    /// The members of a conversation with their read positions and presence.
    pub async fn members(&self, conversation: Uuid) -> Result<Vec<Member>> {
        let online = self.online();
        Ok(self
            .core()?
            .store
            .members_named(conversation)
            .await?
            .into_iter()
            .map(|(m, full_name)| Member {
                online: online.contains(&m.user_id),
                role: MemberRole::parse(&m.role).unwrap_or(MemberRole::Member),
                user_id: m.user_id,
                full_name,
                last_read_at: m.last_read_at,
            })
            .collect())
    }

    /// Adds people to a conversation (owner or admin; `rpc/add_conversation_members`).
    pub async fn add_members(&self, conversation: Uuid, users: &[Uuid]) -> Result<()> {
        if users.is_empty() {
            return Err(Error::invalid("no one to add"));
        }
        self.require_online()?;
        let _: Value =
            self.core.rpc("add_conversation_members", json!({"p_conversation_id": conversation, "p_user_ids": users})).await?;
        self.core.refresh_members(conversation).await
    }

    /// Removes someone from a conversation (owner or admin; `rpc/remove_conversation_member`).
    pub async fn remove_member(&self, conversation: Uuid, user: Uuid) -> Result<()> {
        self.require_online()?;
        if user == self.user_id() {
            return Err(Error::invalid("to remove yourself, leave the conversation"));
        }
        let _: Value =
            self.core.rpc("remove_conversation_member", json!({"p_conversation_id": conversation, "p_user_id": user})).await?;
        self.core.refresh_members(conversation).await
    }

    /// Leaves a conversation (`rpc/leave_conversation`); its history stays readable.
    pub async fn leave_conversation(&self, conversation: Uuid) -> Result<()> {
        self.require_online()?;
        let _: Value = self.core.rpc("leave_conversation", json!({"p_conversation_id": conversation})).await?;
        self.core.catchup.conversations().await?;
        self.core.presence_dirty.notify_one();
        Ok(())
    }

    /// Mutes or unmutes a conversation on this device (no notifications while muted).
    pub async fn set_muted(&self, conversation: Uuid, muted: bool) -> Result<()> {
        let c = self.core()?;
        c.store.set_muted(conversation, muted).await?;
        c.events.emit(Event::ConversationChanged { conversation_id: conversation });
        Ok(())
    }

    // --- messages -----------------------------------------------------------------------------

    /// Queues a message (persisted before this returns); delivery is the outbox's job.
    pub async fn send(&self, conversation: Uuid, text: &str) -> Result<Uuid> {
        self.core.shared().typing_throttle.reset();
        self.core()?.outbox.send(conversation, text).await
    }

    /// Edits one of the user's messages (through the outbox: works offline).
    pub async fn edit_message(&self, message: Uuid, text: &str) -> Result<()> {
        self.core()?.outbox.edit(message, text).await.map(|_| ())
    }

    /// Deletes one of the user's messages (a soft delete; through the outbox). A message not
    /// yet sent is simply not sent.
    pub async fn delete_message(&self, message: Uuid) -> Result<()> {
        self.core()?.outbox.delete(message).await.map(|_| ())
    }

    /// Puts a message's failed send (or edit, or delete) back in the queue.
    pub async fn retry_message(&self, message: Uuid) -> Result<()> {
        let c = self.core()?;
        let failed: Vec<Entry> =
            c.outbox.entries_for_message(message).await?.into_iter().filter(|e| e.state == EntryState::Failed).collect();
        if failed.is_empty() {
            return Err(Error::NotFound(format!("a failed change of message {message}")));
        }
        for e in failed {
            c.outbox.retry(e.id).await?;
        }
        Ok(())
    }

    /// Drops a message's unsent changes: a send that failed (or waits) is dropped with its
    /// edits; failed edits or deletes of a sent message are dropped.
    pub async fn discard_message(&self, message: Uuid) -> Result<()> {
        let c = self.core()?;
        let entries = c.outbox.entries_for_message(message).await?;
        if let Some(send) = entries.iter().find(|e| e.op == outbox::Op::Send) {
            return c.outbox.discard(send.id).await;
        }
        let failed: Vec<&Entry> = entries.iter().filter(|e| e.state == EntryState::Failed).collect();
        if failed.is_empty() {
            return Err(Error::NotFound(format!("an unsent change of message {message}")));
        }
        for e in failed {
            c.outbox.discard(e.id).await?;
        }
        Ok(())
    }

    /// One bounded delivery pass over a conversation's outbox.
    pub async fn deliver(&self, conversation: Uuid, deadline: Instant) -> Result<DrainOutcome> {
        self.check_signed_in()?;
        self.core.outbox.drain_once(conversation, deadline).await
    }

    /// One bounded pass over every conversation with queued entries.
    pub async fn deliver_all(&self, deadline: Instant) -> Result<Vec<(Uuid, DrainOutcome)>> {
        let conversations = self.core()?.outbox.conversations().await?;
        let mut out = Vec::new();
        for conversation in conversations {
            let outcome = self.core.outbox.drain_once(conversation, deadline).await?;
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
        self.check_signed_in()?;
        let report = self.core.catchup.run().await?;
        self.core.presence_dirty.notify_one();
        Ok(report)
    }

    /// The outbox's entries, in delivery order (the CLI's `outbox`).
    pub async fn outbox_entries(&self) -> Result<Vec<Entry>> {
        self.core()?.outbox.entries().await
    }

    /// Puts a failed outbox entry back in the queue (by entry id).
    pub async fn retry_entry(&self, entry: Uuid) -> Result<Option<Entry>> {
        let c = self.core()?;
        c.outbox.retry(entry).await?;
        c.outbox.entry(entry).await
    }

    /// Drops an outbox entry (by entry id); returns it as it was.
    pub async fn discard_entry(&self, entry: Uuid) -> Result<Entry> {
        let c = self.core()?;
        let e = c.outbox.entry(entry).await?.ok_or_else(|| Error::NotFound(format!("outbox entry {entry}")))?;
        c.outbox.discard(entry).await?;
        Ok(e)
    }

    /// The send state of a message, if we know it.
    pub async fn message_state(&self, message: Uuid) -> Result<Option<(SendState, Option<String>)>> {
        let c = self.core()?;
        if let Some(e) = c.outbox.send_entry(message).await? {
            return Ok(Some((c.outbox.state_of(&e), e.error.map(|f| f.to_string()))));
        }
        Ok(c.store.message(message).await?.map(|_| (SendState::Sent, None)))
    }

    /// The newest `limit` messages from the cache, oldest first, with unsent ones from the
    /// outbox after them. Never touches the network.
    pub async fn timeline(&self, conversation: Uuid, limit: usize) -> Result<Vec<Message>> {
        self.core()?.timeline(conversation, None, limit).await
    }

    /// Older history before (`before_created_at`, `before_id`), oldest first: from the cache
    /// first; from the server when the cache has less than `limit` and the server may have
    /// more (offline: what the cache has).
    pub async fn load_older(
        &self,
        conversation: Uuid,
        before_created_at: DateTime<Utc>,
        before_id: Uuid,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let before = Some((before_created_at, before_id));
        let c = self.core()?;
        let cached = c.timeline(conversation, before, limit).await?;
        if cached.len() >= limit {
            return Ok(cached);
        }
        let cursor = c.store.cursor(conversation).await?.unwrap_or_default();
        if cursor.complete {
            return Ok(cached);
        }
        match self.core.catchup.older(conversation, limit.max(50)).await {
            Ok(_) => c.timeline(conversation, before, limit).await,
            Err(Error::Api(e)) if e.is_transient() => Ok(cached),
            Err(e) => Err(e),
        }
    }

    /// Full-text search over the whole cache (offline too): the best matches first.
    pub async fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        let c = self.core()?;
        let hits = c.store.search(query, limit).await?;
        if hits.is_empty() {
            return Ok(Vec::new());
        }
        let titles: HashMap<Uuid, String> = c.rows().await?.into_iter().map(|r| (r.id, r.title)).collect();
        Ok(hits
            .into_iter()
            .map(|m| {
                let conversation_title = titles.get(&m.conversation_id).cloned().unwrap_or_default();
                SearchHit { message: cached_message(m, SendState::Sent), conversation_title }
            })
            .collect())
    }

    /// Marks a conversation read now (through the outbox: works offline); its notifications
    /// are read too, and its notification group is cleared.
    pub async fn mark_read(&self, conversation: Uuid) -> Result<()> {
        self.core()?.mark_read(conversation).await.map(|_| ())
    }

    // --- drafts -------------------------------------------------------------------------------

    pub async fn draft(&self, conversation: Uuid) -> Result<Option<String>> {
        self.check_signed_in()?;
        self.drafts.get(conversation).await
    }

    /// Keeps the composer's text; `""` clears it.
    pub async fn save_draft(&self, conversation: Uuid, text: &str) -> Result<()> {
        self.check_signed_in()?;
        self.drafts.save(conversation, text).await
    }

    // --- notification center ------------------------------------------------------------------

    /// The notification center, newest first (the newest [`NOTIFICATION_LIST`]).
    pub async fn notifications(&self) -> Result<Vec<Notification>> {
        Ok(self
            .core()?
            .store
            .notifications(NOTIFICATION_LIST)
            .await?
            .into_iter()
            .map(|n| Notification {
                id: n.id,
                conversation_id: n.link.as_deref().and_then(|l| l.strip_prefix("/conversations/")).and_then(|s| s.parse().ok()),
                title: n.title,
                body: n.body.unwrap_or_default(),
                read: n.read,
                created_at: n.created_at,
            })
            .collect())
    }

    /// Marks one notification read (through the outbox: works offline).
    pub async fn mark_notification_read(&self, id: Uuid) -> Result<()> {
        let c = self.core()?;
        if !c.store.has_notification(id).await? {
            return Err(Error::NotFound(format!("notification {id}")));
        }
        c.outbox.mark_notifications_read(Some(id), Utc::now()).await.map(|_| ())
    }

    /// Marks every notification read (through the outbox: works offline).
    pub async fn mark_all_notifications_read(&self) -> Result<()> {
        self.core()?.outbox.mark_notifications_read(None, Utc::now()).await.map(|_| ())
    }

    // --- own profile, password ----------------------------------------------------------------

    /// The user's own profile (from the cache; from the server the first time).
    pub async fn profile(&self) -> Result<Profile> {
        self.check_signed_in()?;
        let me = self.user_id();
        let email = Some(self.core.session.account().email.clone());
        let cached = self.core.store.profile(me).await?;
        let row = match cached {
            Some(p) => p,
            None => self.core.refresh_own_profile().await?,
        };
        Ok(Profile::from_row(row, email))
    }

    /// Changes the user's display name (needs the server: `offline` when it is away).
    pub async fn update_profile(&self, full_name: &str) -> Result<Profile> {
        check_name(full_name)?;
        self.require_online()?;
        let api = self.core.session.api().clone();
        let me = self.user_id();
        let body = json!({"full_name": full_name.trim()});
        let answer: Value = self
            .core
            .session
            .call(|t| {
                let (api, body) = (api.clone(), body.clone());
                async move {
                    api.rest(
                        Method::PATCH,
                        "/profiles",
                        &t,
                        &[("id", format!("eq.{me}")), ("select", "id,full_name,avatar_url,role".into())],
                        Some("return=representation"),
                        Some(&body),
                    )
                    .await
                }
            })
            .await
            .map_err(Error::offline_if_unreachable)?;
        let row: rows::Profile = serde_json::from_value(answer.get(0).cloned().unwrap_or(Value::Null))
            .map_err(|_| Error::NotFound("your profile".into()))?;
        let cached = row.clone();
        self.core.store.upsert_profiles(std::slice::from_ref(&cached)).await?;
        self.core.events.emit(Event::ProfileChanged { user_id: me });
        self.core.events.emit(Event::ConversationsChanged {});
        Ok(Profile::from_row(row, Some(self.core.session.account().email.clone())))
    }

    /// Changes the password. The current one is checked by signing in with it (a new
    /// session); the new password is set with that session's token, and the engine carries
    /// on with that session (the server ends every other one). Wrong current password:
    /// `invalid_credentials`, nothing changed.
    pub async fn change_password(&self, current: &str, next: &str) -> Result<()> {
        check_password(next)?;
        if current == next {
            return Err(Error::invalid("the new password is the current one"));
        }
        self.require_online()?;
        let api = self.core.session.api().clone();
        let email = self.core.session.account().email.clone();
        let grant = auth::PasswordGrant { email, password: current.to_owned() };
        let fresh = api.password_grant(&grant).await.map_err(|e| Error::from(e).offline_if_unreachable())?;
        let update = auth::UserUpdate { password: Some(next.to_owned()), ..auth::UserUpdate::default() };
        if let Err(e) = api.update_user(&fresh.access_token, &update).await {
            // The check's session is of no use now.
            let _ = api.logout(&fresh.access_token).await;
            return Err(Error::from(e).offline_if_unreachable());
        }
        self.core.session.adopt(&fresh).await
    }

    // --- settings -----------------------------------------------------------------------------

    pub async fn settings(&self) -> Result<Settings> {
        self.core()?.settings().await
    }

    /// Stores the device settings (a `dnd_until` already past is stored as off) and
    /// announces them; returns them as stored.
    pub async fn update_settings(&self, settings: Settings) -> Result<Settings> {
        let c = self.core()?;
        let mut settings = settings;
        if settings.dnd_until.is_some_and(|t| t <= Utc::now()) {
            settings.dnd_until = None;
        }
        let text = serde_json::to_string(&settings).map_err(|e| Error::invalid(e.to_string()))?;
        c.store.set_setting(SETTINGS_KEY, &text).await?;
        c.events.emit(Event::SettingsChanged { settings: settings.clone() });
        Ok(settings)
    }

    // --- live mode ----------------------------------------------------------------------------

    /// Goes live: outbox workers, the realtime connection with the account's channel,
    /// catch-ups after every (re)join, presence and typing. Idempotent.
    pub fn start_live(&self, config: RealtimeConfig) -> Result<()> {
        self.check_signed_in()?;
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if live.is_none() {
            *live = Some(Live::start(self.core.clone(), config)?);
        }
        Ok(())
    }

    /// Stops the live tasks (the outbox keeps its entries).
    pub fn stop_live(&self) {
        self.core.outbox.stop();
        self.live.lock().unwrap_or_else(|p| p.into_inner()).take();
        let mut shared = self.core.shared();
        shared.presence = presence::Book::default();
        shared.online.clear();
    }

    /// The connection state now (`connecting` while not live).
    pub fn connectivity(&self) -> Connectivity {
        self.watch_connectivity().map(|rx| rx.borrow().clone()).unwrap_or(Connectivity::Connecting { attempt: 0 })
    }

    /// The connection state as it changes, while live.
    pub fn watch_connectivity(&self) -> Option<watch::Receiver<Connectivity>> {
        self.live.lock().ok()?.as_ref().map(|l| l.realtime.connectivity())
    }

    fn realtime(&self) -> Option<Arc<realtime::Realtime>> {
        self.live.lock().ok()?.as_ref().map(|l| l.realtime.clone())
    }

    /// The conversation open in the window (or none). In a focused, visible window it gets
    /// no notifications and is marked read; we are present there and see typing.
    pub async fn set_in_front(&self, conversation: Option<Uuid>) -> Result<()> {
        self.check_signed_in()?;
        let (previous, in_front) = {
            let mut shared = self.core.shared();
            let previous = std::mem::replace(&mut shared.window.open, conversation);
            (previous, shared.window.in_front())
        };
        if previous != conversation {
            if let Some(rt) = self.realtime() {
                if let Some(p) = previous {
                    rt.leave(&format!("typing:{p}")).await;
                }
                if let Some(c) = conversation {
                    // The server's members-only broadcast topic.
                    rt.join(realtime::ChannelSpec {
                        topic: format!("typing:{c}"),
                        postgres_changes: Vec::new(),
                        presence_key: None,
                    })
                    .await;
                }
            }
            self.core.presence_dirty.notify_one();
        }
        if let Some(c) = in_front.filter(|_| previous != conversation) {
            self.mark_read(c).await?;
        }
        Ok(())
    }

    /// The window's state as the shell sees it. Focusing the window on an open conversation
    /// marks it read.
    pub async fn set_window_state(&self, focused: bool, visible: bool) -> Result<()> {
        self.check_signed_in()?;
        let (before, after) = {
            let mut shared = self.core.shared();
            let before = shared.window.in_front();
            shared.window.focused = focused;
            shared.window.visible = visible;
            (before, shared.window.in_front())
        };
        if let Some(c) = after.filter(|c| before != Some(*c)) {
            self.mark_read(c).await?;
        }
        Ok(())
    }

    /// The user typed in `conversation`: announces it, at most once per 2 s.
    pub async fn typing(&self, conversation: Uuid) {
        let go = self.core.shared().typing_throttle.should_send(Instant::now());
        if let (true, Some(rt)) = (go, self.realtime()) {
            rt.broadcast(&format!("typing:{conversation}"), "typing", json!({"user_id": self.user_id()})).await;
        }
    }

    /// The names of who types in `conversation` now.
    pub async fn typing_now(&self, conversation: Uuid) -> Result<Vec<String>> {
        let users = self.core.shared().typing.get_mut(&conversation).map(|i| i.active(Instant::now())).unwrap_or_default();
        let c = self.core()?;
        let language = c.settings().await?.language;
        let mut names = Vec::with_capacity(users.len());
        for u in users {
            names.push(c.store.profile_name(u).await?.unwrap_or_else(|| notify::someone(language).to_owned()));
        }
        Ok(names)
    }

    /// Who is online now among the partners of direct conversations and the members of the
    /// open one (user ids, sorted).
    pub fn online(&self) -> Vec<Uuid> {
        self.core.shared().online.clone()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // The outbox workers hold the outbox; stopping them breaks that cycle.
        self.stop_live();
    }
}

fn check_name(name: &str) -> Result<()> {
    let n = name.trim().chars().count();
    if n == 0 {
        return Err(Error::invalid("a name needs some text"));
    }
    if n > MAX_NAME_CHARS {
        return Err(Error::invalid(format!("a name may have at most {MAX_NAME_CHARS} characters (this one has {n})")));
    }
    Ok(())
}

fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::invalid(format!("a password needs at least {MIN_PASSWORD_CHARS} characters")));
    }
    Ok(())
}
