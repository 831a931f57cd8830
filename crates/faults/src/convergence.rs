//! The convergence run: clients under faults, then every promise checked.
//!
//! A run owns a throwaway Postgres cluster (so it may restart it), the server binary on it,
//! and a [`FaultProxy`] in front. `clients` `werkfunk-cli` profiles share a group
//! conversation (the first two also a direct one the others must never see) and, until the
//! deadline, each sends numbered messages (`<client>-<seq>`), edits and deletes its own and
//! marks conversations read, one command at a time through the proxy; some commands are
//! killed with SIGKILL at a random moment (a client dying mid-outbox). A "sleeper" profile
//! queues messages offline, then runs `watch` and is stopped (SIGSTOP) for longer than the
//! heartbeat and the token lifetime, and resumed. Meanwhile a chaos loop kills the server
//! with SIGKILL and restarts it, restarts Postgres (`pg_ctl restart -m fast`) and partitions
//! the proxy. Two clients' wall clocks are off by ten minutes, one behind and one ahead
//! (libfaketime, [`Settings::clock_skews`]).
//!
//! Then the faults stop, every client syncs, and [`Report`] counts what broke a promise:
//! a message a client was told is `sent`/`queued` that the server lacks (lost), one message
//! stored twice (duplicated), a sender's messages out of their order, an edit or delete that
//! is missing or landed on another message, a cache that differs from what the server lets
//! that user see, a conversation still unread after reading it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};
use sqlx::{Connection, Executor};
use tokio::time::Instant;
use uuid::Uuid;
use werkfunk_server::jwt::{self, DbRole, Keys};
use werkfunk_testkit::cluster::Cluster;
use werkfunk_testkit::JWT_SECRET;

use crate::procs::{self, CliClient, ServerProcess};
use crate::proxy::{Counts, FaultProxy};
use crate::{seed, Error, Result};

/// What a run does.
#[derive(Debug, Clone)]
pub struct Settings {
    pub seed: u64,
    /// Workload clients (besides the sleeper), at least 2.
    pub clients: usize,
    /// How long the clients work under faults.
    pub duration: Duration,
    /// Share of proxied connections that get a fault.
    pub fault_rate: f64,
    /// Share of client commands killed with SIGKILL at a random moment.
    pub kill_rate: f64,
    /// How long the sleeper stays stopped (longer than the 25 s heartbeat and `jwt_exp`).
    pub stop_for: Duration,
    /// Access-token lifetime of the server, seconds (short, so tokens expire during the run).
    pub jwt_exp: u64,
    /// Seconds between chaos actions: a random pause in this range.
    pub chaos_every: (u64, u64),
    /// Workload clients (by index) whose wall clock is off by this many seconds
    /// (libfaketime; ahead if positive).
    pub clock_skews: Vec<(usize, i64)>,
    /// A supabase-js client (`js/supabase-client.mjs`, named `j0`) works beside the CLI
    /// clients in the group conversation — sends, edits, deletes, reads — and keeps a mirror of
    /// it from realtime changes. Needs `node` and `tests/supabase-js/node_modules`.
    pub supabase_js: bool,
}

impl Settings {
    /// The short run of `cargo test -p werkfunk-faults`, adjustable through the environment:
    /// `WERKFUNK_FAULTS_SEED`, `WERKFUNK_FAULTS_SECS`, `WERKFUNK_FAULTS_CLIENTS`,
    /// `WERKFUNK_FAULTS_SKEW_SECS` (client c1's clock that far behind, c2's that far ahead;
    /// default 600, 0 for none).
    pub fn from_env(default_secs: u64) -> Settings {
        let num = |k: &str, d: u64| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(d);
        let clients = num("WERKFUNK_FAULTS_CLIENTS", 3).max(2) as usize;
        let skew = num("WERKFUNK_FAULTS_SKEW_SECS", 600) as i64;
        let clock_skews = match (skew, clients) {
            (0, _) => vec![],
            (_, 2) => vec![(1, -skew)],
            _ => vec![(1, -skew), (2, skew)],
        };
        Settings {
            seed: seed::run_seed("convergence"),
            clients,
            clock_skews,
            supabase_js: num("WERKFUNK_FAULTS_SUPABASE_JS", 1) == 1,
            duration: Duration::from_secs(num("WERKFUNK_FAULTS_SECS", default_secs)),
            fault_rate: 0.25,
            kill_rate: 0.06,
            stop_for: Duration::from_secs(32),
            jwt_exp: 20,
            chaos_every: (3, 9),
        }
    }
}

/// Faults injected, by kind.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub proxy: Counts,
    pub server_kills: u64,
    pub postgres_restarts: u64,
    pub client_kills: u64,
    pub client_stops: u64,
    /// Server starts that failed and were retried (not faults: noted to be honest about them).
    pub server_failed_starts: u64,
}

impl Faults {
    pub fn total(&self) -> u64 {
        let p = &self.proxy;
        p.cuts
            + p.resets
            + p.stalls
            + p.slows
            + p.partitions
            + self.server_kills
            + self.postgres_restarts
            + self.client_kills
            + self.client_stops
    }
}

/// The outcome of a run: figures, and every broken promise in words.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub seed: u64,
    pub duration_secs: u64,
    pub clients: usize,
    pub faults: Faults,
    /// Sends a client was told are `sent` or `queued`.
    pub sent_confirmed: u64,
    /// Sends whose command was killed or failed before it answered (may or may not exist).
    pub sent_unconfirmed: u64,
    pub edits: u64,
    pub deletes: u64,
    pub reads: u64,
    pub messages_on_server: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub edits_wrong: u64,
    pub deletes_wrong: u64,
    pub caches_diverged: u64,
    pub unread_left: u64,
    /// Clients whose clock was off, and by how many seconds.
    pub clock_skews: Vec<(String, i64)>,
    /// Refresh tokens the server issued to each client's user (a sign-in or a refresh
    /// each): how often each client renewed its session.
    pub refresh_tokens: BTreeMap<String, i64>,
    /// The supabase-js client's figures (`None` when it did not run).
    pub supabase_js: Option<JsFigures>,
    pub failures: Vec<String>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.failures.is_empty()
    }

    pub fn to_json(&self) -> Value {
        let p = &self.faults.proxy;
        json!({
            "seed": self.seed,
            "duration_secs": self.duration_secs,
            "clients": self.clients,
            "faults": {
                "total": self.faults.total(),
                "proxy_connections": p.connections,
                "proxy_cuts": p.cuts,
                "proxy_resets": p.resets,
                "proxy_stalls": p.stalls,
                "proxy_slow": p.slows,
                "proxy_partitions": p.partitions,
                "proxy_refused": p.refused,
                "server_kill9_restarts": self.faults.server_kills,
                "postgres_fast_restarts": self.faults.postgres_restarts,
                "client_kill9": self.faults.client_kills,
                "client_sigstop": self.faults.client_stops,
                "server_failed_starts_retried": self.faults.server_failed_starts,
            },
            "sent_confirmed": self.sent_confirmed,
            "sent_unconfirmed": self.sent_unconfirmed,
            "edits": self.edits,
            "deletes": self.deletes,
            "reads": self.reads,
            "messages_on_server": self.messages_on_server,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "out_of_order": self.out_of_order,
            "edits_wrong": self.edits_wrong,
            "deletes_wrong": self.deletes_wrong,
            "caches_diverged": self.caches_diverged,
            "unread_left": self.unread_left,
            "clock_skews_secs": self.clock_skews.iter().map(|(c, s)| json!({"client": c, "offset": s})).collect::<Vec<_>>(),
            "refresh_tokens_issued": self.refresh_tokens,
            "supabase_js": self.supabase_js.as_ref().map(|f| json!({
                "sent_confirmed": f.sent,
                "edits": f.edits,
                "deletes": f.deletes,
                "reads": f.reads,
                "requests_retried": f.retries,
                "sign_ins": f.sign_ins,
                "channel_joins": f.joins,
                "refetches": f.refetches,
                "mirror_rows": f.mirror_rows,
                "errors": f.errors,
            })),
            "failures": self.failures,
        })
    }
}

/// What the supabase-js client did, by its own count.
#[derive(Debug, Clone, Default)]
pub struct JsFigures {
    pub sent: u64,
    pub edits: u64,
    pub deletes: u64,
    pub reads: u64,
    /// Requests that failed (cut, refused, token expired) and were sent again.
    pub retries: u64,
    pub sign_ins: u64,
    /// `SUBSCRIBED` answers: the first join and every rejoin after a cut or a closed channel.
    pub joins: u64,
    /// Refetches of the conversation over REST (one per join).
    pub refetches: u64,
    pub mirror_rows: u64,
    /// The errors its requests were answered with, by code or message.
    pub errors: Value,
}

/// One send as its client saw it.
#[derive(Debug, Clone)]
struct SendRec {
    conversation: Uuid,
    seq: u64,
    content: String,
    /// Known when the command answered with an id (state `sent` or `queued`).
    id: Option<Uuid>,
    /// The state the command answered: `sent` or `queued`.
    state: String,
}

/// One edit or delete as its client saw it.
#[derive(Debug, Clone)]
struct ChangeRec {
    /// `None` for a delete.
    content: Option<String>,
    /// The command answered with success.
    confirmed: bool,
}

#[derive(Debug, Default)]
struct ClientLog {
    sends: Vec<SendRec>,
    changes: HashMap<Uuid, Vec<ChangeRec>>,
    reads: u64,
    kills: u64,
    stops: u64,
    failures: Vec<String>,
}

const OP_TIMEOUT: Duration = Duration::from_secs(90);
const PASSWORD: &str = "Fehler-Toleranz-2026";

/// Runs the whole thing; `Err` only when the run could not be set up.
pub async fn run(settings: Settings) -> Result<Report> {
    let started = Instant::now();
    let bins = procs::binaries()?;
    // A cluster of our own: the run restarts it.
    let cluster = tokio::task::spawn_blocking(Cluster::start_temporary).await.map_err(|e| Error::Setup(e.to_string()))??;
    let mut admin = sqlx::PgConnection::connect(&cluster.url("postgres")).await?;
    admin.execute("create database werkfunk_faults").await?;
    admin.close().await?;
    let db_url = cluster.url("werkfunk_faults");
    let scratch = tempfile::tempdir()?;
    let log = scratch.path().join("server.log");
    let mut server = ServerProcess::start(&bins.server, &db_url, JWT_SECRET, settings.jwt_exp, log.clone()).await?;
    let anon_key = Keys::new(JWT_SECRET).api_key(DbRole::Anon, jwt::now());
    let proxy = Arc::new(FaultProxy::start(server.addr(), seed::rng(settings.seed, 1), 0.0).await?);

    // Accounts and conversations, straight to the server.
    let mut clients = Vec::new();
    for i in 0..=settings.clients {
        let name = if i == settings.clients { "s".to_owned() } else { format!("c{i}") };
        let mut c = CliClient::new(&name, &bins.cli, &anon_key)?;
        if let Some((_, offset)) = settings.clock_skews.iter().find(|(k, _)| *k == i && i < settings.clients) {
            c.skew_clock(*offset)?;
        }
        let email = format!("{name}-{}@werkfunk.test", settings.seed);
        let run = c
            .run(
                &server.url(),
                &["signup", "--email", &email, "--password", PASSWORD, "--name", &format!("Client {name}")],
                OP_TIMEOUT,
                None,
            )
            .await?;
        let id = run.json().first().and_then(|v| v["user_id"].as_str()).and_then(|s| s.parse::<Uuid>().ok());
        let Some(id) = id else {
            return Err(Error::Setup(format!("signup of {name} failed: {}", run.stderr)));
        };
        clients.push((Arc::new(c), id));
    }
    let mut others: Vec<String> = clients[1..].iter().map(|(_, id)| id.to_string()).collect();
    let js_dir = crate_root().join("../../tests/supabase-js");
    let js_user = if settings.supabase_js {
        if !js_dir.join("node_modules/@supabase/supabase-js").exists() {
            return Err(Error::Setup(format!(
                "{}/node_modules is missing (`cargo xtask setup`, or WERKFUNK_FAULTS_SUPABASE_JS=0)",
                js_dir.display()
            )));
        }
        let email = format!("j0-{}@werkfunk.test", settings.seed);
        let id = sign_up_over_http(&server.url(), &anon_key, &email).await?;
        others.push(id.to_string());
        Some((email, id))
    } else {
        None
    };
    let mut args = vec!["new", "--type", "group", "--title", "Baustelle", "--with"];
    args.extend(others.iter().map(String::as_str));
    let group = new_conversation(&clients[0].0, &server.url(), &args).await?;
    let partner = clients[1].1.to_string();
    let direct = new_conversation(&clients[0].0, &server.url(), &["new", "--type", "direct", "--with", &partner]).await?;
    let sync_all = |cs: &Vec<(Arc<CliClient>, Uuid)>, url: String| {
        let cs: Vec<Arc<CliClient>> = cs.iter().map(|(c, _)| c.clone()).collect();
        async move {
            for c in cs {
                c.run(&url, &["sync"], OP_TIMEOUT, None).await?;
            }
            Ok::<_, Error>(())
        }
    };
    sync_all(&clients, server.url()).await?;

    // Work under faults.
    proxy.set_rate(settings.fault_rate);
    let deadline = Instant::now() + settings.duration;
    let mut workers = Vec::new();
    for (i, (c, _)) in clients.iter().enumerate().take(settings.clients) {
        let convs = if i < 2 { vec![group, direct] } else { vec![group] };
        let rng = seed::rng(settings.seed, 100 + i as u64);
        workers.push(tokio::spawn(work(c.clone(), proxy.url(), convs, rng, deadline, settings.kill_rate)));
    }
    let (finish_js, js_finished) = tokio::sync::oneshot::channel::<()>();
    let js = js_user.as_ref().map(|(email, id)| {
        let mut node = tokio::process::Command::new("node");
        node.arg(crate_root().join("js/supabase-client.mjs"))
            .env("WERKFUNK_URL", proxy.url())
            .env("WERKFUNK_ANON_KEY", &anon_key)
            .env("WERKFUNK_JS_EMAIL", email)
            .env("WERKFUNK_JS_PASSWORD", PASSWORD)
            .env("WERKFUNK_JS_USER_ID", id.to_string())
            .env("WERKFUNK_JS_CONVERSATION", group.to_string())
            .env("WERKFUNK_JS_NAME", "j0")
            .env("WERKFUNK_JS_SECS", settings.duration.as_secs().to_string())
            .env("WERKFUNK_JS_SEED", seed::rng(settings.seed, 4).gen::<u64>().to_string())
            .env("WERKFUNK_SUPABASE_JS_DIR", &js_dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        // The faults, then the other clients' sync (up to 10 rounds of 90 s commands each).
        let limit = settings.duration + Duration::from_secs(20 * 60);
        tokio::spawn(async move {
            let mut child = node.spawn()?;
            let stdin = child.stdin.take();
            // Told to finish once the other clients have synced (or the run gave up on them).
            let finisher = tokio::spawn(async move {
                let _ = js_finished.await;
                if let Some(mut stdin) = stdin {
                    use tokio::io::AsyncWriteExt;
                    let _ = stdin.write_all(b"finish\n").await;
                }
            });
            let out = tokio::time::timeout(limit, child.wait_with_output()).await;
            finisher.abort();
            match out {
                Ok(out) => Ok(out?),
                Err(_) => Err(Error::Setup("the supabase-js client did not end in time".into())),
            }
        })
    });
    let sleeper = {
        let (c, _) = clients[settings.clients].clone();
        tokio::spawn(sleep_and_resume(c, proxy.url(), group, seed::rng(settings.seed, 2), deadline, settings.stop_for))
    };
    let mut chaos_rng = seed::rng(settings.seed, 3);
    let mut faults = Faults::default();
    let mut failures = Vec::new();
    while Instant::now() < deadline {
        let pause = Duration::from_secs(chaos_rng.gen_range(settings.chaos_every.0..=settings.chaos_every.1));
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        if Instant::now() >= deadline {
            break;
        }
        match chaos_rng.gen_range(0..10u8) {
            0..=3 => {
                if let Err(e) = server.kill9_and_restart().await {
                    failures.push(format!("server did not come back after kill -9: {e}"));
                    break;
                }
                faults.server_kills += 1;
            }
            4..=5 => {
                let c = &cluster;
                let restarted = tokio::task::block_in_place(|| procs::restart_postgres(c));
                if let Err(e) = restarted {
                    failures.push(format!("postgres restart: {e}"));
                    break;
                }
                faults.postgres_restarts += 1;
            }
            _ => {
                let d = Duration::from_millis(chaos_rng.gen_range(300..4_000));
                proxy.partition(d).await;
            }
        }
    }
    let mut logs = Vec::new();
    for w in workers {
        logs.push(w.await.map_err(|e| Error::Setup(format!("worker panicked: {e}")))?);
    }
    let sleeper_log = sleeper.await.map_err(|e| Error::Setup(format!("sleeper panicked: {e}")))?;

    // Quiet: no more faults; everyone syncs.
    proxy.set_rate(0.0);
    if server.wait_healthy().await.is_err() {
        server.kill9_and_restart().await?;
    }
    let mut report = Report {
        seed: settings.seed,
        clients: settings.clients,
        clock_skews: clients.iter().filter_map(|(c, _)| Some((c.name.clone(), c.clock_offset()?))).collect(),
        failures,
        ..Report::default()
    };
    for (c, _) in &clients {
        let mut clean = false;
        for _ in 0..10 {
            let s = c.run(&proxy.url(), &["sync"], OP_TIMEOUT, None).await?;
            let pending = c.run(&proxy.url(), &["outbox"], OP_TIMEOUT, None).await?;
            if s.ok() && pending.ok() && pending.json().is_empty() {
                clean = true;
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        if !clean {
            let pending = c.run(&proxy.url(), &["outbox"], OP_TIMEOUT, None).await?;
            report.failures.push(format!("{}: outbox not empty after the faults stopped: {}", c.name, pending.stdout.trim()));
        }
    }

    let mut all_logs = logs;
    all_logs.push(sleeper_log);
    let _ = finish_js.send(());
    let js_log = match (js, &js_user) {
        (Some(task), Some((_, id))) => {
            let out = task.await.map_err(|e| Error::Setup(format!("supabase-js client: {e}")))??;
            let mut js = js_log_of(&String::from_utf8_lossy(&out.stdout));
            js.trace = String::from_utf8_lossy(&out.stderr).into_owned();
            if !out.status.success() {
                let tail: Vec<&str> = js.trace.lines().rev().take(20).collect();
                report.failures.push(format!("the supabase-js client failed (last lines first): {}", tail.join("\n")));
            }
            report.supabase_js = Some(js.figures.clone());
            Some(("j0".to_owned(), *id, js))
        }
        _ => None,
    };
    check(&mut report, &db_url, &clients, &all_logs, js_log.as_ref(), &proxy.url(), [group, direct]).await?;
    faults.proxy = proxy.stats();
    faults.client_kills = all_logs.iter().map(|l| l.kills).sum();
    faults.client_stops = all_logs.iter().map(|l| l.stops).sum();
    faults.server_failed_starts = server.failed_starts;
    report.faults = faults;
    for l in all_logs.iter().chain(js_log.as_ref().map(|(_, _, js)| &js.log)) {
        report.failures.extend(l.failures.iter().cloned());
    }
    report.duration_secs = started.elapsed().as_secs();
    server.stop().await;
    if !report.is_clean() {
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(30).collect();
        eprintln!("server log (last lines, newest first):\n{}", tail.join("\n"));
        if let Some((_, _, js)) = &js_log {
            let tail: Vec<&str> = js.trace.lines().rev().take(150).collect();
            eprintln!("supabase-js client's trace (last lines, newest first):\n{}", tail.join("\n"));
        }
    }
    drop(cluster);
    Ok(report)
}

async fn new_conversation(c: &CliClient, url: &str, args: &[&str]) -> Result<Uuid> {
    let run = c.run(url, args, OP_TIMEOUT, None).await?;
    run.json()
        .first()
        .and_then(|v| v["conversation_id"].as_str())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Setup(format!("new conversation failed: {}", run.stderr)))
}

fn kill_after(rng: &mut StdRng, rate: f64) -> Option<Duration> {
    let roll: f64 = rng.gen();
    // A command takes a few hundred milliseconds: most kills land in its middle.
    let after = Duration::from_millis(rng.gen_range(5..400));
    (roll < rate).then_some(after)
}

/// One client's workload until `deadline`.
async fn work(c: Arc<CliClient>, url: String, convs: Vec<Uuid>, mut rng: StdRng, deadline: Instant, kill_rate: f64) -> ClientLog {
    let mut log = ClientLog::default();
    let mut seq = 0u64;
    let mut edits = 0u64;
    while Instant::now() < deadline {
        let roll = rng.gen_range(0..100u8);
        let kill = kill_after(&mut rng, kill_rate);
        let conv = convs[rng.gen_range(0..convs.len())];
        // Own messages that are known and not deleted (edit and delete need an id).
        let live: Vec<Uuid> = log
            .sends
            .iter()
            .filter_map(|s| s.id)
            .filter(|id| !log.changes.get(id).is_some_and(|cs| cs.iter().any(|c| c.content.is_none())))
            .collect();
        let pick = (!live.is_empty()).then(|| live[rng.gen_range(0..live.len())]);
        let result = match (roll, pick) {
            (60..=79, Some(id)) => {
                edits += 1;
                let prefix = log.sends.iter().find(|s| s.id == Some(id)).map(|s| prefix_of(&s.content)).unwrap_or_default();
                let text = format!("{prefix} edit {edits}");
                let run = c.run(&url, &["edit", &id.to_string(), &text], OP_TIMEOUT, kill).await;
                run.inspect(|r| {
                    let confirmed = r.ok() && r.json().first().is_some_and(|v| v["edited"] == json!(true));
                    log.changes.entry(id).or_default().push(ChangeRec { content: Some(text), confirmed });
                })
            }
            (80..=87, Some(id)) => {
                let run = c.run(&url, &["delete", &id.to_string()], OP_TIMEOUT, kill).await;
                run.inspect(|r| {
                    let confirmed = r.ok() && r.json().first().is_some_and(|v| v["deleted"] == json!(true));
                    log.changes.entry(id).or_default().push(ChangeRec { content: None, confirmed });
                })
            }
            (88..=99, _) => {
                log.reads += 1;
                c.run(&url, &["read", &conv.to_string()], OP_TIMEOUT, kill).await
            }
            _ => {
                seq += 1;
                // Sometimes long, so that cuts land inside request bodies.
                let padding = "Fliesen ".repeat(rng.gen_range(0..3usize).pow(3) * 40);
                let content = format!("{}-{seq:05} Nachricht über die Baustelle {padding}", c.name);
                let run = c.run(&url, &["send", &conv.to_string(), &content], OP_TIMEOUT, kill).await;
                run.inspect(|r| {
                    let answer = r.json().into_iter().next();
                    let id = answer.as_ref().and_then(|v| v["message_id"].as_str()).and_then(|s| s.parse::<Uuid>().ok());
                    let state = answer.as_ref().and_then(|v| v["state"].as_str()).unwrap_or("").to_owned();
                    if state == "failed" {
                        log.failures.push(format!("{}: send {seq} failed for good: {}", c.name, r.stdout.trim()));
                    }
                    let id = id.filter(|_| state == "sent" || state == "queued");
                    log.sends.push(SendRec { conversation: conv, seq, content, id, state });
                })
            }
        };
        match result {
            Ok(r) if r.code.is_none() && kill.is_some() => log.kills += 1,
            Ok(_) => {}
            Err(e) => log.failures.push(format!("{}: could not run werkfunk-cli: {e}", c.name)),
        }
    }
    log
}

/// Queues messages offline, then runs `watch` and stops it (SIGSTOP) for `stop_for`, resumes
/// it, lets it work, ends it; until `deadline`.
async fn sleep_and_resume(
    c: Arc<CliClient>,
    url: String,
    conv: Uuid,
    mut rng: StdRng,
    deadline: Instant,
    stop_for: Duration,
) -> ClientLog {
    let mut log = ClientLog::default();
    let nowhere = match procs::free_port() {
        Ok(p) => format!("http://127.0.0.1:{p}"),
        Err(e) => {
            log.failures.push(format!("sleeper: {e}"));
            return log;
        }
    };
    let mut seq = 0u64;
    while Instant::now() < deadline {
        for _ in 0..rng.gen_range(1..4) {
            seq += 1;
            let content = format!("{}-{seq:05} offline geschrieben", c.name);
            match c.run(&nowhere, &["send", &conv.to_string(), &content], OP_TIMEOUT, None).await {
                Ok(r) => {
                    let answer = r.json().into_iter().next();
                    let id = answer.as_ref().and_then(|v| v["message_id"].as_str()).and_then(|s| s.parse::<Uuid>().ok());
                    if answer.as_ref().and_then(|v| v["state"].as_str()) != Some("queued") {
                        log.failures.push(format!(
                            "sleeper: an offline send was not queued: {} {}",
                            r.stdout.trim(),
                            r.stderr.trim()
                        ));
                    }
                    log.sends.push(SendRec { conversation: conv, seq, content, id, state: "queued".into() });
                }
                Err(e) => log.failures.push(format!("sleeper: {e}")),
            }
        }
        let mut watch = match c.command(&url, &["watch"]).stdout(std::process::Stdio::null()).spawn() {
            Ok(w) => w,
            Err(e) => {
                log.failures.push(format!("sleeper: watch did not start: {e}"));
                return log;
            }
        };
        let Some(pid) = watch.id() else { return log };
        tokio::time::sleep(Duration::from_millis(rng.gen_range(200..4_000))).await;
        if procs::signal(pid, "STOP") {
            log.stops += 1;
            tokio::time::sleep(stop_for).await;
            procs::signal(pid, "CONT");
        }
        tokio::time::sleep(Duration::from_secs(8)).await;
        procs::signal(pid, "TERM");
        if tokio::time::timeout(Duration::from_secs(15), watch.wait()).await.is_err() {
            log.failures.push("sleeper: watch did not end within 15 s of SIGTERM".into());
            let _ = watch.start_kill();
            let _ = watch.wait().await;
        }
    }
    log
}

/// `c0-00012` of `c0-00012 …`.
fn prefix_of(content: &str) -> String {
    content.split(' ').next().unwrap_or("").to_owned()
}

/// `(client name, seq)` of a message's content.
fn parse_prefix(content: &str) -> Option<(String, u64)> {
    let p = prefix_of(content);
    let (name, seq) = p.rsplit_once('-')?;
    Some((name.to_owned(), seq.parse().ok()?))
}

#[derive(Debug, Clone)]
struct Row {
    id: Uuid,
    conversation: Uuid,
    sender: Uuid,
    content: String,
    deleted: bool,
    created_at: String,
    /// `(client, seq)`: from the content, or — the server clears a deleted message's text —
    /// from the id its client was given.
    key: Option<(String, u64)>,
}

async fn check(
    report: &mut Report,
    db_url: &str,
    clients: &[(Arc<CliClient>, Uuid)],
    logs: &[ClientLog],
    js: Option<&(String, Uuid, JsRun)>,
    url: &str,
    [group, direct]: [Uuid; 2],
) -> Result<()> {
    // Every client's log by name: the CLI clients', and the supabase-js client's.
    let named: Vec<(&str, &ClientLog)> = logs
        .iter()
        .zip(clients)
        .map(|(log, (c, _))| (c.name.as_str(), log))
        .chain(js.map(|(n, _, r)| (n.as_str(), &r.log)))
        .collect();
    // Every id a client was given, with its (client, seq).
    let known: HashMap<Uuid, (String, u64)> =
        named.iter().flat_map(|(name, log)| log.sends.iter().filter_map(|s| Some((s.id?, (name.to_string(), s.seq))))).collect();
    let mut db = sqlx::PgConnection::connect(db_url).await?;
    let raw: Vec<(Uuid, Uuid, Uuid, String, bool, String)> = sqlx::query_as(
        "select id, conversation_id, sender_id, content, deleted_at is not null, created_at::text
         from public.messages order by created_at, id",
    )
    .fetch_all(&mut db)
    .await?;
    let issued: Vec<(Uuid, i64)> =
        sqlx::query_as("select user_id, count(*) from auth.refresh_tokens group by user_id").fetch_all(&mut db).await?;
    db.close().await?;
    for (c, id) in clients {
        let n = issued.iter().find(|(u, _)| u == id).map(|(_, n)| *n).unwrap_or(0);
        report.refresh_tokens.insert(c.name.clone(), n);
    }
    if let Some((name, id, _)) = js {
        report.refresh_tokens.insert(name.clone(), issued.iter().find(|(u, _)| u == id).map(|(_, n)| *n).unwrap_or(0));
    }
    let rows: Vec<Row> = raw
        .into_iter()
        .map(|(id, conversation, sender, content, deleted, created_at)| {
            let key = parse_prefix(&content).or_else(|| known.get(&id).cloned());
            Row { id, conversation, sender, content, deleted, created_at, key }
        })
        .collect();
    report.messages_on_server = rows.len() as u64;
    let by_id: HashMap<Uuid, &Row> = rows.iter().map(|r| (r.id, r)).collect();
    let name_of: HashMap<Uuid, &str> =
        clients.iter().map(|(c, id)| (*id, c.name.as_str())).chain(js.map(|(n, id, _)| (*id, n.as_str()))).collect();

    // Exactly once: one row per (client, seq).
    let mut seen: HashMap<(String, u64), Vec<Uuid>> = HashMap::new();
    for r in &rows {
        match &r.key {
            Some(key) => seen.entry(key.clone()).or_default().push(r.id),
            None => report.failures.push(format!("message {} has content no client wrote: {:?}", r.id, r.content)),
        }
        let claimed = r.key.as_ref().map(|(n, _)| n.clone());
        if claimed.as_deref() != name_of.get(&r.sender).copied() {
            report.failures.push(format!("message {} says it is from {claimed:?} but its sender is {}", r.id, r.sender));
        }
    }
    for (key, ids) in &seen {
        if ids.len() > 1 {
            report.duplicated += ids.len() as u64 - 1;
            report.failures.push(format!("{key:?} stored {} times: {ids:?}", ids.len()));
        }
    }

    for &(name, log) in &named {
        for s in &log.sends {
            let Some(id) = s.id else {
                report.sent_unconfirmed += 1;
                continue;
            };
            report.sent_confirmed += 1;
            // Deleting a message that is still queued means it is never sent.
            let deleted_while_queued =
                s.state == "queued" && log.changes.get(&id).is_some_and(|cs| cs.iter().any(|c| c.content.is_none()));
            match by_id.get(&id) {
                None if deleted_while_queued => {}
                None => {
                    report.lost += 1;
                    report.failures.push(format!(
                        "{}: message {} ({}) was confirmed ({}) but is not on the server; its edits/deletes: {:?}",
                        name,
                        s.seq,
                        id,
                        s.state,
                        log.changes.get(&id)
                    ));
                }
                Some(r) if r.conversation != s.conversation || (!r.deleted && prefix_of(&r.content) != prefix_of(&s.content)) => {
                    report.failures.push(format!(
                        "{}: message {id} is in {} as {:?}, expected {} {:?}",
                        name, r.conversation, r.content, s.conversation, s.content
                    ));
                }
                Some(_) => {}
            }
        }
        // Edits and deletes: the last confirmed one holds, or a later unconfirmed one.
        for (id, changes) in &log.changes {
            report.edits += changes.iter().filter(|c| c.content.is_some()).count() as u64;
            report.deletes += changes.iter().filter(|c| c.content.is_none()).count() as u64;
            let Some(row) = by_id.get(id) else { continue };
            let original = log.sends.iter().find(|s| s.id == Some(*id)).map(|s| s.content.clone()).unwrap_or_default();
            let edits: Vec<&ChangeRec> = changes.iter().filter(|c| c.content.is_some()).collect();
            let last_confirmed = edits.iter().rposition(|e| e.confirmed);
            let mut allowed: Vec<String> = Vec::new();
            match last_confirmed {
                Some(i) => allowed.extend(edits[i..].iter().filter_map(|e| e.content.clone())),
                None => {
                    allowed.push(original);
                    allowed.extend(edits.iter().filter_map(|e| e.content.clone()));
                }
            }
            // A deleted message's text is cleared by the server (migration 0008).
            if !row.deleted && !allowed.contains(&row.content) {
                report.edits_wrong += 1;
                report.failures.push(format!("{}: message {id} reads {:?}; expected one of {allowed:?}", name, row.content));
            }
            let delete_confirmed = changes.iter().any(|c| c.content.is_none() && c.confirmed);
            if delete_confirmed && !row.deleted {
                report.deletes_wrong += 1;
                report.failures.push(format!("{}: message {id} was deleted (confirmed) but is not", name));
            }
        }
        report.reads += log.reads;
    }
    // Messages deleted that nobody deleted.
    let deleted_by_someone: std::collections::HashSet<Uuid> = named
        .iter()
        .flat_map(|(_, l)| l.changes.iter().filter(|(_, cs)| cs.iter().any(|c| c.content.is_none())).map(|(id, _)| *id))
        .collect();
    for r in rows.iter().filter(|r| r.deleted && !deleted_by_someone.contains(&r.id)) {
        report.deletes_wrong += 1;
        report.failures.push(format!("message {} is deleted, but no one deleted it", r.id));
    }

    // Each sender's order, per conversation, by (created_at, id).
    let mut last: HashMap<(Uuid, Uuid), (u64, &Row)> = HashMap::new();
    for r in &rows {
        let Some((_, seq)) = r.key.clone() else {
            continue;
        };
        let key = (r.sender, r.conversation);
        if let Some((prev, prev_row)) = last.get(&key) {
            if seq <= *prev {
                report.out_of_order += 1;
                report.failures.push(format!(
                    "{} in {}: message {seq} ({}, created {}, deleted {}) stored after {prev} ({}, created {}, deleted {})",
                    r.sender, r.conversation, r.id, r.created_at, r.deleted, prev_row.id, prev_row.created_at, prev_row.deleted
                ));
            }
        }
        last.insert(key, (seq, r));
    }

    // The supabase-js client's mirror equals what the server shows it, and reading cleared
    // its unread count.
    if let Some((name, _, run)) = js {
        let expected: BTreeMap<Uuid, (String, bool)> =
            rows.iter().filter(|r| r.conversation == group).map(|r| (r.id, (r.content.clone(), r.deleted))).collect();
        match &run.mirror {
            Some(mirror) => compare_cache(report, name, group, &expected, mirror),
            None => {
                report.caches_diverged += 1;
                report.failures.push(format!("{name}: printed no mirror"));
            }
        }
        if run.unread != Some(0) {
            report.unread_left += 1;
            report.failures.push(format!("{name}: {group} unread after reading: {:?}", run.unread));
        }
    }

    // Every cache equals what the server shows that user.
    for (i, (c, _)) in clients.iter().enumerate() {
        let mine: Vec<Uuid> = if i < 2 { vec![group, direct] } else { vec![group] };
        for conv in [group, direct] {
            let expected: BTreeMap<Uuid, (String, bool)> = if mine.contains(&conv) {
                rows.iter().filter(|r| r.conversation == conv).map(|r| (r.id, (r.content.clone(), r.deleted))).collect()
            } else {
                BTreeMap::new()
            };
            let h = c.run(url, &["history", &conv.to_string(), "--limit", "1000000"], OP_TIMEOUT, None).await?;
            let cached: BTreeMap<Uuid, (String, bool)> = h
                .json()
                .iter()
                .filter_map(|m| {
                    let id = m["id"].as_str()?.parse().ok()?;
                    Some((id, (m["content"].as_str().unwrap_or("").to_owned(), m["deleted"].as_bool().unwrap_or(false))))
                })
                .collect();
            compare_cache(report, &c.name, conv, &expected, &cached);
        }
        // Reading clears the unread count.
        for conv in &mine {
            c.run(url, &["read", &conv.to_string()], OP_TIMEOUT, None).await?;
        }
        let list = c.run(url, &["conversations"], OP_TIMEOUT, None).await?;
        for conv in list.json() {
            let id = conv["conversation_id"].as_str().and_then(|s| s.parse::<Uuid>().ok());
            if id.is_some_and(|id| !mine.contains(&id)) {
                report.failures.push(format!("{}: lists conversation {id:?} it is not a member of", c.name));
            }
            if conv["unread_count"].as_i64().unwrap_or(0) != 0 {
                report.unread_left += 1;
                report.failures.push(format!("{}: {} still unread after reading: {conv}", c.name, conv["conversation_id"]));
            }
        }
    }
    Ok(())
}

/// Counts and names a client's cache of `conv` that differs from the server's rows of it:
/// the same ids, each with the same deleted flag and, when not deleted, the same text.
fn compare_cache(
    report: &mut Report,
    name: &str,
    conv: Uuid,
    expected: &BTreeMap<Uuid, (String, bool)>,
    cached: &BTreeMap<Uuid, (String, bool)>,
) {
    let same = expected.len() == cached.len()
        && expected
            .iter()
            .all(|(id, (content, deleted))| cached.get(id).is_some_and(|(cc, cd)| cd == deleted && (*deleted || cc == content)));
    if same {
        return;
    }
    report.caches_diverged += 1;
    let missing: Vec<&Uuid> = expected.keys().filter(|k| !cached.contains_key(k)).collect();
    let extra: Vec<&Uuid> = cached.keys().filter(|k| !expected.contains_key(k)).collect();
    let differ: Vec<String> = expected
        .iter()
        .filter(|(id, e)| cached.get(id).is_some_and(|c| c != *e))
        .map(|(id, e)| format!("{id}: server {e:?}, cache {:?}", cached.get(id)))
        .take(5)
        .collect();
    report.failures.push(format!(
        "{name}: cache of {conv} differs from the server: {} expected, {} cached, missing {missing:?}, extra {extra:?}, differing {differ:?}",
        expected.len(),
        cached.len()
    ));
}

/// The folder of this crate's sources.
fn crate_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Signs up `email` with the run's password over REST (for the supabase-js client, which has
/// no profile); returns the user's id.
async fn sign_up_over_http(url: &str, anon_key: &str, email: &str) -> Result<Uuid> {
    let body: Value = reqwest::Client::new()
        .post(format!("{url}/auth/v1/signup"))
        .header("apikey", anon_key)
        .bearer_auth(anon_key)
        .json(
            &json!({"email": email, "password": PASSWORD, "data": {"full_name": "Client j0 (supabase-js)", "role": "customer"}}),
        )
        .send()
        .await?
        .json()
        .await?;
    body["user"]["id"].as_str().and_then(|s| s.parse().ok()).ok_or_else(|| Error::Setup(format!("signup of j0 failed: {body}")))
}

/// What the supabase-js client printed: its log (confirmed sends, edits, deletes, reads, and
/// its own failures), its figures, its mirror of the conversation and its last unread count.
#[derive(Debug, Default)]
struct JsRun {
    log: ClientLog,
    figures: JsFigures,
    mirror: Option<BTreeMap<Uuid, (String, bool)>>,
    unread: Option<i64>,
    /// Its trace (stderr): channel states, refetches, auth events, changes received.
    trace: String,
}

fn js_log_of(stdout: &str) -> JsRun {
    let mut run = JsRun::default();
    let log = &mut run.log;
    for line in stdout.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
        if let Some(s) = line.get("sent") {
            let (Some(seq), Some(id), Some(conversation)) = (
                s["seq"].as_u64(),
                s["id"].as_str().and_then(|v| v.parse().ok()),
                s["conversation"].as_str().and_then(|v| v.parse().ok()),
            ) else {
                continue;
            };
            log.sends.push(SendRec {
                conversation,
                seq,
                content: s["content"].as_str().unwrap_or_default().to_owned(),
                id: Some(id),
                state: "sent".to_owned(),
            });
        } else if let Some(c) = line.get("change") {
            let Some(id) = c["id"].as_str().and_then(|v| v.parse().ok()) else { continue };
            let content = c["content"].as_str().map(str::to_owned);
            log.changes.entry(id).or_default().push(ChangeRec { content, confirmed: c["confirmed"] == json!(true) });
        } else if line.get("read").is_some() {
            log.reads += 1;
        } else if let Some(f) = line.get("failure") {
            log.failures.push(f.as_str().unwrap_or_default().to_owned());
        } else if let Some(u) = line.get("unread") {
            run.unread = u.as_i64();
        } else if let Some(m) = line.get("mirror").and_then(Value::as_array) {
            run.mirror = Some(
                m.iter()
                    .filter_map(|r| {
                        let id = r["id"].as_str()?.parse().ok()?;
                        Some((id, (r["content"].as_str().unwrap_or_default().to_owned(), r["deleted"] == json!(true))))
                    })
                    .collect(),
            );
        } else if let Some(d) = line.get("done") {
            run.figures.retries = d["retries"].as_u64().unwrap_or(0);
            run.figures.sign_ins = d["signIns"].as_u64().unwrap_or(0);
            run.figures.refetches = d["refetches"].as_u64().unwrap_or(0);
            run.figures.joins = d["joins"].as_u64().unwrap_or(0);
            run.figures.errors = d["errors"].clone();
        }
    }
    let changes = || log.changes.values().flatten();
    run.figures.sent = log.sends.len() as u64;
    run.figures.edits = changes().filter(|c| c.content.is_some()).count() as u64;
    run.figures.deletes = changes().filter(|c| c.content.is_none()).count() as u64;
    run.figures.reads = log.reads;
    run.figures.mirror_rows = run.mirror.as_ref().map_or(0, |m| m.len() as u64);
    run
}
