//! Live mode: the realtime connection and what the engine does with what it delivers.
//!
//! - The account channel `user:<id>` carries database changes (messages, members,
//!   conversations, the user's notifications). Once it is trusted, a catch-up runs; a
//!   catch-up that fails is retried with backoff for as long as the channel stays
//!   subscribed (a REST call can fail while the websocket stays up).
//! - Presence: one `presence:<id>` channel per direct conversation (the most recent
//!   [`PRESENCE_CHANNELS`]) and one for the open conversation. We track ourselves on each
//!   and re-track every [`presence::HEARTBEAT`]; a timer recomputes the engine-wide online
//!   set every second, so someone whose presence stopped being refreshed goes offline after
//!   [`presence::OFFLINE_AFTER`] even when no payload arrives.
//! - Typing: the open conversation's `typing:<id>` broadcasts; indicators expire by timer.
//! - Notifications: live messages and catch-up summaries ([`crate::notify`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use uuid::Uuid;
use werkfunk_protocol::realtime::ChangeBinding;

use crate::error::{Error, Result};
use crate::events::Event;
use crate::outbox::Outbox;
use crate::realtime::{self, ChannelSpec, Connectivity, Incoming, Realtime, RealtimeConfig};
use crate::supervisor::{self, TaskHandle};
use crate::{presence, sync, Core};

/// Direct conversations whose partner's presence is watched (the server allows 100
/// channels per socket: the account channel, the open conversation's typing and presence
/// channels, and these).
pub const PRESENCE_CHANNELS: usize = 90;

/// The running live mode; dropping it stops everything.
pub(crate) struct Live {
    pub(crate) realtime: Arc<Realtime>,
    _tasks: Vec<TaskHandle>,
}

impl Live {
    pub(crate) fn start(core: Core, config: RealtimeConfig) -> Result<Live> {
        core.outbox.start()?;
        let api = core.session.api();
        let url = realtime::socket_url(api.base_url(), api.anon_key());
        let (realtime, incoming) = Realtime::start(url, core.session.watch_token(), config);
        let realtime = Arc::new(realtime);
        let me = core.me;
        let user_topic = format!("user:{me}");
        let spec = ChannelSpec {
            topic: user_topic.clone(),
            postgres_changes: vec![
                ChangeBinding::table("*", "messages", None),
                ChangeBinding::table("*", "conversation_members", None),
                ChangeBinding::table("*", "conversations", None),
                ChangeBinding::table("*", "notifications", Some(format!("user_id=eq.{me}"))),
            ],
            presence_key: None,
        };
        let mut tasks = Vec::new();
        {
            let rt = realtime.clone();
            tasks.push(supervisor::spawn("realtime:join-user-channel", true, async move { rt.join(spec).await }));
        }
        let processor = Processor {
            core: core.clone(),
            realtime: realtime.clone(),
            user_topic,
            catchup_task: None,
            refresh_task: None,
            presence_topics: HashSet::new(),
        };
        tasks.push(supervisor::spawn("live:incoming", true, processor.run(incoming)));
        tasks.push(supervisor::spawn(
            "live:connectivity",
            true,
            watch_connectivity(realtime.connectivity(), core.clone(), core.outbox.clone()),
        ));
        {
            // Refresh shortly before expiry, so the channels get the new token in time.
            let session = core.session.clone();
            let events = core.events.clone();
            tasks.push(supervisor::spawn("session:refresh", false, async move {
                loop {
                    let due = session.refresh_due().await;
                    let wait = (due - Utc::now().timestamp()).max(1) as u64;
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                    match session.access_token().await {
                        Ok(_) => {}
                        Err(Error::Session(e)) => {
                            tracing::warn!(error = %e, "the session ended");
                            events.emit(Event::SignedOut {});
                            std::future::pending::<()>().await;
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "token refresh failed; retrying");
                            tokio::time::sleep(Duration::from_secs(5)).await;
                        }
                    }
                }
            }));
        }
        Ok(Live { realtime, _tasks: tasks })
    }
}

async fn watch_connectivity(mut rx: watch::Receiver<Connectivity>, core: Core, outbox: Arc<Outbox>) {
    loop {
        let state = rx.borrow_and_update().clone();
        if state == Connectivity::Online {
            outbox.wake_all();
        }
        core.events.emit(Event::Connectivity { state });
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Applies what the realtime connection delivers.
struct Processor {
    core: Core,
    realtime: Arc<Realtime>,
    user_topic: String,
    catchup_task: Option<TaskHandle>,
    refresh_task: Option<TaskHandle>,
    presence_topics: HashSet<Uuid>,
}

fn conversation_of(topic: &str, prefix: &str) -> Option<Uuid> {
    topic.strip_prefix(prefix)?.parse().ok()
}

impl Processor {
    async fn run(mut self, mut incoming: mpsc::Receiver<Incoming>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut heartbeat = tokio::time::interval(presence::HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let dirty = self.core.presence_dirty.clone();
        loop {
            tokio::select! {
                msg = incoming.recv() => match msg {
                    Some(m) => self.handle(m).await,
                    None => return,
                },
                _ = tick.tick() => {
                    self.expire_typing();
                    self.publish_online();
                }
                _ = heartbeat.tick() => self.heartbeat().await,
                _ = dirty.notified() => self.sync_presence_topics().await,
            }
        }
    }

    /// Every 30 s: re-track on every presence channel, and note that this device is online.
    async fn heartbeat(&mut self) {
        let me = self.core.me;
        for c in &self.presence_topics {
            self.realtime.track(&format!("presence:{c}"), json!({"user_id": me, "online_at": Utc::now()})).await;
        }
        let online = *self.realtime.connectivity().borrow() == Connectivity::Online;
        let caught_up = self.catchup_task.as_ref().is_some_and(|t| t.is_finished());
        if online && caught_up {
            let at = Utc::now();
            if let Err(e) = self.core.set_last_online(at).await {
                tracing::debug!(error = %e, "cannot note the time online");
            }
        }
    }

    /// Joins the presence channels the engine should hold now, leaves the others.
    async fn sync_presence_topics(&mut self) {
        let me = self.core.me;
        let open = self.core.shared().window.open;
        let partners = self.core.store.direct_partners(me).await.unwrap_or_default();
        let mut wanted: HashSet<Uuid> = HashSet::new();
        for (conversation, _) in partners {
            if wanted.len() >= PRESENCE_CHANNELS {
                break;
            }
            wanted.insert(conversation);
        }
        wanted.extend(open);
        let gone: Vec<Uuid> = self.presence_topics.difference(&wanted).copied().collect();
        for c in gone {
            self.realtime.leave(&format!("presence:{c}")).await;
            self.core.shared().presence.forget(c);
            self.presence_topics.remove(&c);
        }
        let new: Vec<Uuid> = wanted.difference(&self.presence_topics).copied().collect();
        for c in new {
            let topic = format!("presence:{c}");
            self.realtime
                .join(ChannelSpec { topic: topic.clone(), postgres_changes: Vec::new(), presence_key: Some(me.to_string()) })
                .await;
            self.realtime.track(&topic, json!({"user_id": me, "online_at": Utc::now()})).await;
            self.presence_topics.insert(c);
        }
        self.publish_online();
    }

    fn publish_online(&self) {
        let online = {
            let mut shared = self.core.shared();
            let online = shared.presence.online(Instant::now(), self.core.me);
            if online == shared.online {
                return;
            }
            shared.online = online.clone();
            online
        };
        self.core.events.emit(Event::Presence { online });
    }

    /// A catch-up now, retried with backoff until it succeeds (or the channel is lost, which
    /// drops this task; the rejoin starts another).
    fn start_catch_up(&mut self) {
        let core = self.core.clone();
        self.catchup_task = Some(supervisor::spawn("live:catch-up", true, async move {
            let since = core.last_online().await;
            let mut failures = 0u32;
            loop {
                let started = Utc::now();
                match core.catchup.run_since(Some(since)).await {
                    Ok(report) => {
                        core.presence_dirty.notify_one();
                        let result = match core.set_last_online(started).await {
                            Ok(()) => core.on_catch_up(&report.arrivals).await,
                            Err(e) => Err(e),
                        };
                        if let Err(e) = result {
                            tracing::warn!(error = %e, "catch-up notifications failed");
                        }
                        return;
                    }
                    Err(Error::Session(e)) => {
                        tracing::warn!(error = %e, "catch-up: the session ended");
                        core.events.emit(Event::SignedOut {});
                        return;
                    }
                    Err(e) => {
                        let delay = crate::backoff::OUTBOX.delay(failures, rand::random::<f64>());
                        failures = failures.saturating_add(1);
                        tracing::warn!(error = %e, code = e.code(), ?delay, "catch-up after join failed; retrying");
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }));
    }

    async fn handle(&mut self, m: Incoming) {
        match m {
            Incoming::Trusted { topic } if topic == self.user_topic => {
                self.core.events.emit(Event::Channel { topic: topic.clone(), subscribed: true });
                // Subscribed: whatever happened before now is fetched by a catch-up.
                self.core.outbox.wake_all();
                self.start_catch_up();
            }
            Incoming::Trusted { topic } => {
                if topic.starts_with("presence:") {
                    // (Re)joined: be seen there at once, not only at the next heartbeat.
                    self.realtime.track(&topic, json!({"user_id": self.core.me, "online_at": Utc::now()})).await;
                }
                self.core.events.emit(Event::Channel { topic, subscribed: true });
            }
            Incoming::Lost { topic } => {
                if topic == self.user_topic {
                    // The rejoin runs a new catch-up; this one's retries stop.
                    self.catchup_task = None;
                }
                if let Some(c) = conversation_of(&topic, "presence:") {
                    self.core.shared().presence.forget(c);
                    self.publish_online();
                }
                self.core.events.emit(Event::Channel { topic, subscribed: false });
            }
            Incoming::Change { table, kind, record, old_record, .. } => {
                match sync::change_from(&table, &kind, &record, &old_record) {
                    Ok(Some(change)) => {
                        let is_insert = kind == "INSERT";
                        let touches_list = matches!(
                            change,
                            sync::Change::Conversation(_) | sync::Change::Member(_) | sync::Change::MemberGone { .. }
                        );
                        let result = match self.core.catchup.apply_change(change).await {
                            Ok(Some(m)) if is_insert => self.core.on_live_message(&m).await,
                            Ok(_) => Ok(()),
                            Err(e) => Err(e),
                        };
                        if let Err(e) = result {
                            tracing::warn!(error = %e, "could not apply a live change");
                        }
                        if touches_list {
                            self.core.presence_dirty.notify_one();
                        }
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "malformed live change"),
                }
            }
            Incoming::Broadcast { topic, event, payload } if event == "typing" => {
                let (Some(c), Some(user)) = (
                    conversation_of(&topic, "typing:"),
                    payload.get("user_id").and_then(Value::as_str).and_then(|s| s.parse::<Uuid>().ok()),
                ) else {
                    return;
                };
                if user == self.core.me {
                    return;
                }
                let typing = {
                    let mut shared = self.core.shared();
                    let ind = shared.typing.entry(c).or_default();
                    ind.typed(user, Instant::now());
                    ind.active(Instant::now())
                };
                self.core.events.emit(Event::Typing { conversation_id: c, typing });
            }
            Incoming::PresenceState { topic, payload } | Incoming::PresenceDiff { topic, payload } => {
                let Some(c) = conversation_of(&topic, "presence:") else { return };
                {
                    let mut shared = self.core.shared();
                    let roster = shared.presence.roster(c);
                    if payload.get("joins").is_some() || payload.get("leaves").is_some() {
                        roster.diff(&payload, Instant::now());
                    } else {
                        roster.state(&payload, Instant::now());
                    }
                }
                self.publish_online();
            }
            Incoming::Error { topic, message } => {
                tracing::info!(%topic, %message, "realtime channel error");
                if message.to_lowercase().contains("token") {
                    // Push a fresh token before the rejoin.
                    let session = self.core.session.clone();
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

    fn expire_typing(&mut self) {
        let now = Instant::now();
        let mut changed = Vec::new();
        self.core.shared().typing.retain(|c, ind| {
            if ind.active(now).is_empty() {
                changed.push(*c);
                false
            } else {
                true
            }
        });
        for c in changed {
            self.core.events.emit(Event::Typing { conversation_id: c, typing: Vec::new() });
        }
    }
}
