//! `werkfunk-cli`: a headless Werkfunk client on `werkfunk-core` — the same cache, outbox and
//! sync as the desktop app, for scripts, bots, benchmarks and tests.
//!
//! stdout carries results only (one JSON object per line with `--json`); logs and errors go
//! to stderr. Exit codes: 0 success (a `send` that is `sent` or `queued` included), 1 an
//! error, 2 bad usage, 3 something was refused by the server for good (a `send` that
//! `failed`, a `sync` while failed entries remain).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use tokio::time::Instant;
use uuid::Uuid;
use werkfunk_core::outbox::EntryState;
use werkfunk_core::{ConversationKind, Engine, Event, Message, Role, SendState, ServerConfig};

/// How long `send` may try before it reports `queued`.
const SEND_ATTEMPT: Duration = Duration::from_secs(5);
/// The bound of one `sync` pass over the outbox.
const SYNC_DELIVERY: Duration = Duration::from_secs(600);
/// How long a reading command waits for the server before it shows the cache as it is.
const FRESHEN: Duration = Duration::from_secs(3);
/// How long `login` may catch up.
const LOGIN_CATCH_UP: Duration = Duration::from_secs(30);

const EXIT_ERROR: u8 = 1;
const EXIT_FAILED: u8 = 3;

#[derive(Parser)]
#[command(name = "werkfunk-cli", version, about = "Headless Werkfunk client (same cache, outbox and sync as the app)")]
struct Cli {
    /// Profile folder (cache, session); created when missing. Default: the platform data dir.
    #[arg(long, global = true, value_name = "DIR")]
    profile: Option<PathBuf>,
    /// Server base URL.
    #[arg(long, global = true, env = "WERKFUNK_URL", default_value = werkfunk_core::api::DEFAULT_URL)]
    url: String,
    /// The anon API key.
    #[arg(long = "anon-key", global = true, env = "WERKFUNK_ANON_KEY", hide_env_values = true)]
    anon_key: Option<String>,
    /// One JSON object per line on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an account (and sign in).
    Signup {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "customer", value_parser = ["tradesperson", "customer"])]
        role: String,
    },
    /// Sign in.
    Login {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
    },
    /// Sign out (queued messages stay for the next sign-in).
    Logout,
    /// Find people by name.
    People { query: String },
    /// Conversations with unread counts (from the cache).
    Conversations,
    /// Start a conversation; prints its id.
    New {
        #[arg(long = "type", value_parser = ["direct", "group", "project"])]
        kind: String,
        #[arg(long = "with", required = true, num_args = 1..)]
        with: Vec<Uuid>,
        #[arg(long)]
        title: Option<String>,
    },
    /// Queue a message and try to deliver it (one bounded attempt).
    Send { conversation: Uuid, text: String },
    /// Deliver the outbox and catch up, once.
    Sync,
    /// Messages of a conversation, from the cache.
    History {
        conversation: Uuid,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Full-text search over the cache.
    Search {
        query: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Stay connected and print each event.
    Watch,
    /// Pending and failed outbox entries.
    Outbox,
    /// Put a failed outbox entry back in the queue.
    Retry { entry: Uuid },
    /// Drop an outbox entry (a failed message and its queued edits).
    Discard { entry: Uuid },
    /// Edit one of your messages (through the outbox).
    Edit { message: Uuid, text: String },
    /// Delete one of your messages (through the outbox).
    Delete { message: Uuid },
    /// Mark a conversation read (through the outbox).
    Read { conversation: Uuid },
    /// Set a damaged cache aside so the next sync rebuilds it; the outbox is kept.
    Repair,
}

struct Out {
    json: bool,
}

impl Out {
    /// One result: a JSON object, or its human form.
    fn print(&self, value: Value, human: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", human());
        }
    }

    fn message(&self, m: &Message) {
        self.print(
            json!({
                "id": m.id,
                "conversation_id": m.conversation_id,
                "sender_id": m.sender_id,
                "content": m.content,
                "created_at": m.created_at,
                "state": m.state,
                "sender_name": m.sender_name,
                "edited": m.edited,
                "deleted": m.deleted,
                "error": m.error.as_ref().map(|e| format!("{} ({})", e.message, e.code)),
            }),
            || {
                let text = if m.deleted { "(gelöscht)".to_owned() } else { m.content.clone() };
                let edited = if m.edited { " (bearbeitet)" } else { "" };
                let state = match (&m.error, m.state) {
                    (Some(e), _) => format!(" [failed: {} ({})]", e.message, e.code),
                    (None, SendState::Sent) => String::new(),
                    (None, s) => format!(" [{}]", s.as_str()),
                };
                format!(
                    "{} {}: {text}{edited}{state}  ({})",
                    local_time(m.created_at),
                    name_or_id(&m.sender_name, m.sender_id),
                    m.id
                )
            },
        );
    }
}

/// A time as the user's clock shows it.
fn local_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M").to_string()
}

fn name_or_id(name: &str, id: Uuid) -> String {
    if name.is_empty() {
        id.to_string()
    } else {
        name.to_owned()
    }
}

/// Before a reading command: deliver what is queued and catch up, if the server answers
/// within [`FRESHEN`]; otherwise say so and show the cache.
async fn freshen(engine: &Engine) {
    let pass = async {
        engine.deliver_all(Instant::now() + FRESHEN).await?;
        engine.catch_up().await
    };
    match tokio::time::timeout(FRESHEN, pass).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => eprintln!("werkfunk-cli: showing the local cache: could not update from the server ({}) [{}]", e, e.code()),
        Err(_) => eprintln!("werkfunk-cli: showing the local cache: the server did not answer within {} s", FRESHEN.as_secs()),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("WERKFUNK_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    let json = cli.json;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = e.downcast_ref::<werkfunk_core::Error>().map(|e| e.code()).unwrap_or("error");
            if json {
                eprintln!("{}", json!({"error": code, "message": format!("{e:#}")}));
            } else {
                eprintln!("werkfunk-cli: {e:#} [{code}]");
            }
            ExitCode::from(EXIT_ERROR)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let profile = cli.profile.clone().unwrap_or_else(werkfunk_core::default_profile);
    std::fs::create_dir_all(&profile).with_context(|| format!("cannot create the profile folder {}", profile.display()))?;
    let out = Out { json: cli.json };
    let server = || -> anyhow::Result<ServerConfig> {
        let Some(anon_key) = cli.anon_key.clone() else {
            bail!("no API key: set WERKFUNK_ANON_KEY or pass --anon-key");
        };
        Ok(ServerConfig { url: cli.url.clone(), anon_key })
    };
    let open = || async { Ok::<_, anyhow::Error>(Engine::open(&profile, &server()?).await?) };

    match cli.command {
        Command::Signup { email, password, name, role } => {
            let role: Role = role.parse()?;
            let engine = Engine::sign_up(&profile, &server()?, &email, &password, &name, role).await?;
            out.print(json!({"user_id": engine.user_id(), "email": email}), || engine.user_id().to_string());
        }
        Command::Login { email, password } => {
            let engine = Engine::sign_in(&profile, &server()?, &email, &password).await?;
            // Signed in: fetch what there is, so the next command has something to show.
            match tokio::time::timeout(LOGIN_CATCH_UP, engine.catch_up()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    eprintln!("werkfunk-cli: signed in, but the first sync failed ({e}) [{}]; run `sync` later", e.code())
                }
                Err(_) => eprintln!("werkfunk-cli: signed in; the first sync is taking long, run `sync` to finish it"),
            }
            let name = engine.profile().await.map(|p| p.full_name).unwrap_or_default();
            out.print(json!({"user_id": engine.user_id(), "email": email}), || {
                format!("signed in as {} ({})", name_or_id(&name, engine.user_id()), engine.user_id())
            });
        }
        Command::Logout => {
            match Engine::open(&profile, &server()?).await {
                Ok(engine) => engine.sign_out(false).await?,
                Err(werkfunk_core::Error::Session(_)) => werkfunk_core::session::forget_local(&profile).await?,
                Err(e) => return Err(e.into()),
            }
            out.print(json!({"signed_out": true}), || "signed out".into());
        }
        Command::People { query } => {
            let engine = open().await?;
            for p in engine.people(&query).await? {
                out.print(json!({"id": p.id, "name": p.full_name, "role": p.role}), || {
                    format!("{} ({})  {}", p.full_name, p.role, p.id)
                });
            }
        }
        Command::Conversations => {
            let engine = open().await?;
            freshen(&engine).await;
            for c in engine.conversations().await? {
                out.print(
                    json!({
                        "conversation_id": c.id, "type": c.kind, "title": c.title, "unread_count": c.unread_count,
                        "last_message": c.last_message.as_ref().map(|m| m.content.clone()),
                        "last_message_at": c.last_message.as_ref().map(|m| m.created_at),
                        "last_sender_name": c.last_message.as_ref().map(|m| m.sender_name.clone()),
                        "partner_id": c.partner_id, "unsent_count": c.unsent_count, "muted": c.muted, "left": c.left,
                    }),
                    || {
                        let mut line = format!("{} [{}]", c.title, c.kind);
                        if c.unread_count > 0 {
                            line.push_str(&format!(" — {} ungelesen", c.unread_count));
                        }
                        if c.unsent_count > 0 {
                            line.push_str(&format!(" — {} nicht gesendet", c.unsent_count));
                        }
                        if c.left {
                            line.push_str(" [verlassen]");
                        }
                        if let Some(m) = &c.last_message {
                            let text = if m.deleted { "(gelöscht)" } else { m.content.as_str() };
                            let preview: String = text.chars().take(60).collect();
                            line.push_str(&format!(
                                "\n    {} {}: {preview}",
                                local_time(m.created_at),
                                name_or_id(&m.sender_name, m.sender_id)
                            ));
                        }
                        line.push_str(&format!("\n    id {}", c.id));
                        line
                    },
                );
            }
        }
        Command::New { kind, with, title } => {
            let engine = open().await?;
            let kind: ConversationKind = kind.parse()?;
            let id = engine.create_conversation(kind, &with, title.as_deref()).await?;
            out.print(json!({"conversation_id": id}), || id.to_string());
        }
        Command::Send { conversation, text } => {
            let engine = open().await?;
            let id = engine.send(conversation, &text).await?;
            let outcome = engine.deliver(conversation, Instant::now() + SEND_ATTEMPT).await;
            if let Err(e) = &outcome {
                // Queued is a fine answer: the message is safe and goes out with the next sync.
                tracing::warn!(error = %e, "delivery attempt failed; the message stays queued");
            }
            let (state, error) = engine.message_state(id).await?.unwrap_or((SendState::Queued, None));
            let state = if state == SendState::Sending { SendState::Queued } else { state };
            out.print(json!({"message_id": id, "state": state, "error": error}), || match &error {
                Some(e) if state == SendState::Failed => format!("{id} failed: {e}"),
                _ => format!("{id} {}", state.as_str()),
            });
            if state == SendState::Failed {
                return Ok(EXIT_FAILED);
            }
        }
        Command::Sync => {
            let engine = open().await?;
            let delivered = engine.deliver_all(Instant::now() + SYNC_DELIVERY).await?;
            for (conversation, outcome) in &delivered {
                tracing::info!(%conversation, ?outcome, "outbox pass");
            }
            let report = engine.catch_up().await?;
            let entries = engine.outbox_entries().await?;
            let failed = entries.iter().filter(|e| e.state == EntryState::Failed).count();
            let queued = entries.len() - failed;
            out.print(
                json!({"synced": true, "conversations": report.conversations, "messages": report.changed, "queued": queued, "failed": failed}),
                || format!("synced: {} conversations, {} new or changed messages, {queued} queued, {failed} failed", report.conversations, report.changed),
            );
            if failed > 0 {
                return Ok(EXIT_FAILED);
            }
        }
        Command::History { conversation, limit } => {
            let engine = open().await?;
            freshen(&engine).await;
            for m in engine.timeline(conversation, limit).await? {
                out.message(&m);
            }
        }
        Command::Search { query, limit } => {
            let engine = open().await?;
            freshen(&engine).await;
            for hit in engine.search(&query, limit).await? {
                out.message(&hit.message);
            }
        }
        Command::Watch => {
            let engine = open().await?;
            let mut events = engine.subscribe();
            engine.start_live(werkfunk_core::RealtimeConfig::default())?;
            let terminate = async {
                #[cfg(unix)]
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
                #[cfg(not(unix))]
                std::future::pending::<()>().await
            };
            tokio::pin!(terminate);
            loop {
                tokio::select! {
                    e = events.recv() => match e {
                        Ok(event) => print_event(&out, &event),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(missed = n, "too many events; some were not printed");
                        }
                        Err(_) => break,
                    },
                    _ = tokio::signal::ctrl_c() => break,
                    _ = &mut terminate => break,
                }
            }
            engine.stop_live();
        }
        Command::Outbox => {
            let engine = open().await?;
            for e in engine.outbox_entries().await? {
                out.print(
                    json!({
                        "entry_id": e.id, "conversation_id": e.conversation_id, "op": e.op, "message_id": e.message_id,
                        "state": e.state, "attempts": e.attempts, "error": e.error.as_ref().map(|f| f.to_string()),
                        "created_at": e.created_at,
                    }),
                    || {
                        let why = e.error.as_ref().map(|f| format!(": {f}")).unwrap_or_default();
                        format!("{} {:?} {:?} in {} ({} attempts){why}", e.id, e.op, e.state, e.conversation_id, e.attempts)
                    },
                );
            }
        }
        Command::Retry { entry } => {
            let engine = open().await?;
            let conversation = engine.retry_entry(entry).await?.map(|e| e.conversation_id);
            if let Some(c) = conversation {
                let _ = engine.deliver(c, Instant::now() + SEND_ATTEMPT).await;
            }
            let state = match engine.outbox_entries().await?.into_iter().find(|e| e.id == entry) {
                Some(e) if e.state == EntryState::Failed => SendState::Failed,
                Some(_) => SendState::Queued,
                None => SendState::Sent,
            };
            out.print(json!({"entry_id": entry, "state": state}), || format!("{entry} {}", state.as_str()));
            if state == SendState::Failed {
                return Ok(EXIT_FAILED);
            }
        }
        Command::Discard { entry } => {
            let engine = open().await?;
            engine.discard_entry(entry).await?;
            out.print(json!({"entry_id": entry, "discarded": true}), || format!("{entry} discarded"));
        }
        Command::Edit { message, text } => {
            let engine = open().await?;
            engine.edit_message(message, &text).await?;
            deliver_message(&engine, message).await?;
            out.print(json!({"message_id": message, "edited": true}), || format!("{message} edited"));
        }
        Command::Delete { message } => {
            let engine = open().await?;
            engine.delete_message(message).await?;
            deliver_message(&engine, message).await?;
            out.print(json!({"message_id": message, "deleted": true}), || format!("{message} deleted"));
        }
        Command::Read { conversation } => {
            let engine = open().await?;
            engine.mark_read(conversation).await?;
            let _ = engine.deliver(conversation, Instant::now() + SEND_ATTEMPT).await;
            out.print(json!({"conversation_id": conversation, "read": true}), || format!("{conversation} read"));
        }
        Command::Repair => {
            // Not while another process uses the profile.
            let _lock = werkfunk_core::lock::ProfileLock::acquire(&profile)?;
            let Some(account) = werkfunk_core::session::Session::account_in(&profile)? else {
                bail!("nobody is signed in with this profile");
            };
            let dir = werkfunk_core::session::account_dir(&profile, account.user_id);
            let aside = werkfunk_core::Store::set_aside_cache(&dir, chrono::Utc::now())?;
            out.print(json!({"cache_set_aside": aside}), || match &aside {
                Some(p) => format!("the damaged cache was moved to {}; run `sync` to rebuild it", p.display()),
                None => "there was no cache to set aside".into(),
            });
        }
    }
    Ok(0)
}

/// One bounded delivery attempt for the conversation a message's queued change is in.
async fn deliver_message(engine: &Engine, message: Uuid) -> anyhow::Result<()> {
    let conversation =
        engine.outbox_entries().await?.into_iter().find(|e| e.message_id == Some(message)).map(|e| e.conversation_id);
    if let Some(c) = conversation {
        let _ = engine.deliver(c, Instant::now() + SEND_ATTEMPT).await;
    }
    Ok(())
}

fn print_event(out: &Out, event: &Event) {
    let value = serde_json::to_value(event).unwrap_or(Value::Null);
    out.print(value.clone(), || value.to_string());
}
