//! `realtime`: (a) INSERT → subscriber latency, (b) RLS-filtered postgres_changes deliveries
//! at saturation, (c) broadcast fan-out, (d) memory per idle connection — each beside its
//! baseline from the same run.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::{SinkExt, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::{watch, Notify};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;
use werkfunk_server::rest::schema::quote_ident;

use crate::stats::{cpu_secs, int, ms, ratio, rss_kib, Cpu, CpuProbe, Samples};
use crate::ws::{self, now_us, number_after, Ws};
use crate::Env;

const SET_CALLER: &str = "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)";

struct User {
    id: Uuid,
    token: String,
    claims: String,
}

/// The INSERT the server issues for `POST /rest/v1/messages` with these three keys.
fn insert_sql() -> String {
    let cols = ["conversation_id", "sender_id", "content"].map(quote_ident).join(", ");
    let table = format!("public.{}", quote_ident("messages"));
    format!("insert into {table} ({cols}) select {cols} from json_populate_recordset(null::{table}, $1::json)")
}

fn message(conv: Uuid, sender: Uuid, content: String) -> String {
    json!([{"conversation_id": conv, "sender_id": sender, "content": content}]).to_string()
}

/// Inserts one message as `user`, in one transaction under their role and claims (what the
/// server does for `POST /rest/v1/messages`), optionally NOTIFYing `notify` from the same
/// transaction.
async fn insert_as(pool: &PgPool, sql: &str, user: &User, payload: String, notify: Option<(&str, String)>) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(SET_CALLER).bind("authenticated").bind(&user.claims).execute(&mut *tx).await?;
    sqlx::query(sql).bind(payload).execute(&mut *tx).await?;
    if let Some((channel, text)) = notify {
        sqlx::query("select pg_notify($1, $2)").bind(channel).bind(text).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// `n` users straight into auth.users (the sign-up trigger makes their profiles), with
/// access tokens signed as /auth/v1 signs them.
async fn create_users(env: &Env, admin: &PgPool, n: usize) -> Result<Vec<User>> {
    let tag = Uuid::new_v4().simple().to_string()[..8].to_owned();
    // Each user with a session of its own: the server refuses a token whose session is gone.
    let rows: Vec<(Uuid, String, Uuid)> = sqlx::query_as(
        "with u as (
           insert into auth.users (email, encrypted_password, raw_user_meta_data, email_confirmed_at)
           select 'bench-' || $1 || '-' || g || '@werkfunk.bench', 'x',
                  jsonb_build_object('full_name', 'Bench ' || g, 'role', 'customer'), now()
             from generate_series(1, $2::int) g
           returning id, email::text),
         s as (insert into auth.sessions (user_id) select id from u returning id, user_id)
         select u.id, u.email, s.id from u join s on s.user_id = u.id",
    )
    .bind(&tag)
    .bind(n as i32)
    .fetch_all(admin)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, email, session)| {
            let (token, claims) = crate::member_token(&env.keys, id, session, &email);
            User { id, token, claims }
        })
        .collect())
}

async fn conversation(admin: &PgPool, members: &[Uuid]) -> Result<Uuid> {
    let id: Uuid = sqlx::query_scalar("insert into public.conversations (type, title) values ('group', 'Bench') returning id")
        .fetch_one(admin)
        .await?;
    sqlx::query("insert into public.conversation_members (conversation_id, user_id, role) select $1, u, 'member' from unnest($2::uuid[]) u")
        .bind(id)
        .bind(members)
        .execute(admin)
        .await?;
    Ok(id)
}

fn changes_config(conv: Uuid) -> Value {
    json!({
        "broadcast": {"ack": false, "self": false},
        "presence": {"key": "", "enabled": false},
        "postgres_changes": [{"event": "INSERT", "schema": "public", "table": "messages", "filter": format!("conversation_id=eq.{conv}")}],
        "private": true
    })
}

/// Connects and joins every `(topic, config, token)`, `concurrency` at a time.
async fn open_all(
    url: &str,
    joins: Vec<(String, Value, Option<String>)>,
    concurrency: usize,
    expect_system: bool,
) -> Result<Vec<Ws>> {
    futures::stream::iter(joins)
        .map(|(topic, mut config, token)| {
            let url = url.to_owned();
            async move {
                let mut socket = ws::connect(&url).await?;
                if !expect_system {
                    // The bare baseline server sends no "Subscribed to PostgreSQL".
                    config["postgres_changes"] = json!([]);
                }
                ws::join(&mut socket, &topic, config, token.as_deref()).await?;
                Ok::<Ws, anyhow::Error>(socket)
            }
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await
}

/// Stops readers and counts those the server had closed.
async fn stop_readers(stop: watch::Sender<bool>, readers: Vec<tokio::task::JoinHandle<Result<u64>>>) -> usize {
    let _ = stop.send(true);
    let mut closed = 0;
    for r in readers {
        if !matches!(r.await, Ok(Ok(_))) {
            closed += 1;
        }
    }
    closed
}

/// A child process running the bare fan-out server.
struct Fanout {
    child: tokio::process::Child,
    url: String,
}

impl Fanout {
    async fn start() -> Result<Fanout> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = tokio::process::Command::new(std::env::current_exe()?)
            .arg("fanout-server")
            .arg(port.to_string())
            .kill_on_drop(true)
            .spawn()
            .context("starting the baseline fan-out server")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if Instant::now() > deadline {
                bail!("the baseline fan-out server did not listen");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Fanout { child, url: format!("ws://127.0.0.1:{port}/realtime/v1/websocket?vsn=2.0.0") })
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

pub async fn run(env: &Env) -> Result<String> {
    let probe = CpuProbe::new(env.server_pid, env.pg_dir.as_deref());
    let admin = PgPoolOptions::new().max_connections(4).connect(&env.database_url).await?;
    // (d) first, while the server process is fresh: memory freed by the other runs would
    // otherwise be reused by the new connections and hide their cost.
    let d = idle(env).await?;
    eprintln!("realtime: (d) done");
    let a = latency(env, &admin, &probe).await?;
    eprintln!("realtime: (a) done");
    let b = saturation(env, &admin, &probe).await?;
    eprintln!("realtime: (b) done");
    let c = broadcast(env, &probe).await?;
    eprintln!("realtime: (c) done");
    admin.close().await;
    Ok(format!(
        "All clients speak vsn 2.0.0 (supabase-js's default) over real websockets from the load generator, \
         which shares the machine's cores with the server and Postgres — their CPU time is given with each run. \
         Postgres is a throwaway cluster (fsync off).\n\n{a}{b}{c}{d}"
    ))
}

// ---- (a) INSERT → subscriber latency ---------------------------------------------------------

async fn latency(env: &Env, admin: &PgPool, probe: &CpuProbe) -> Result<String> {
    let bare = bare_notify(env, admin, env.scale(200)).await?;
    let mut columns = Vec::new();
    for (subs, count) in [(100, env.scale(200)), (1000, env.scale(60))] {
        let subs = env.scale(subs).max(10);
        columns.push((subs, latency_with(env, admin, probe, subs, count).await?));
    }
    let mut t = String::from(
        "### (a) INSERT → subscriber latency\n\n\
         One conversation whose members are all subscribed (one websocket each, `postgres_changes` INSERT on `messages` \
         filtered to the conversation, joined with their own token). One member inserts a message at a time (the INSERT \
         `POST /rest/v1/messages` issues, through sqlx in a transaction under the member's role and claims); the clock runs \
         from just before `BEGIN` until each subscriber has the change. Baseline: the same INSERT by the same member with \
         `select pg_notify(…)` in the same transaction, received by a LISTEN on a second connection (no subscribers \
         connected) — the round trip through Postgres that any change feed needs, including the schema's own triggers \
         (a notification row per other member). The bare row is a trigger-less table.\n\n",
    );
    t.push_str("| | ");
    t.push_str(&columns.iter().map(|(n, _)| format!("{} subscribers", int(*n as f64))).collect::<Vec<_>>().join(" | "));
    t.push_str(" |\n|---|");
    t.push_str(&columns.iter().map(|_| "---:").collect::<Vec<_>>().join("|"));
    t.push_str("|\n");
    let row = |label: &str, f: &dyn Fn(&Latency) -> String| {
        format!("| {label} | {} |\n", columns.iter().map(|(_, l)| f(l)).collect::<Vec<_>>().join(" | "))
    };
    let pp = |s: &Samples| format!("{} / {}", ms(s.pct(50.0)), ms(s.pct(99.0)));
    t.push_str(&row("**server**: INSERT → each subscriber, p50 / p99", &|l| pp(&l.each)));
    t.push_str(&row("server: INSERT → last subscriber, p50 / p99", &|l| pp(&l.last)));
    t.push_str(&row("server: the INSERT's commit alone, p50", &|l| ms(l.commit.pct(50.0))));
    t.push_str(&row("**baseline**: same INSERT + `pg_notify` → listener, p50 / p99", &|l| pp(&l.baseline)));
    t.push_str(&row("ratio server ÷ baseline (each subscriber), p50 / p99", &|l| {
        format!("{} / {}", ratio(l.each.pct(50.0), l.baseline.pct(50.0)), ratio(l.each.pct(99.0), l.baseline.pct(99.0)))
    }));
    t.push_str(&row("bare INSERT (no triggers) + `pg_notify` → listener, p50 / p99", &|_| pp(&bare)));
    t.push_str(&row("inserts measured (deliveries)", &|l| format!("{} ({})", int(l.inserts as f64), int(l.each.len() as f64))));
    t.push_str(&row("changes missing / sockets closed by the server", &|l| format!("{} / {}", l.missing, l.closed)));
    t.push('\n');
    for (n, l) in &columns {
        t.push_str(&format!(
            "CPU while {} subscribers were served: {}.\n\n",
            int(*n as f64),
            l.cpu.describe(l.wall, probe.has_postgres())
        ));
    }
    Ok(t)
}

struct Latency {
    each: Samples,
    last: Samples,
    commit: Samples,
    baseline: Samples,
    inserts: usize,
    missing: usize,
    closed: usize,
    cpu: Cpu,
    wall: Duration,
}

/// A bare insert into a table without triggers, NOTIFY from the same transaction.
async fn bare_notify(env: &Env, admin: &PgPool, count: usize) -> Result<Samples> {
    sqlx::query("create schema if not exists bench").execute(admin).await?;
    sqlx::query("create table if not exists bench.bare (id bigserial primary key, body text not null)").execute(admin).await?;
    let pool = PgPoolOptions::new().max_connections(1).connect(&env.database_url).await?;
    let mut listener = PgListener::connect(&env.database_url).await?;
    listener.listen("werkfunk_bench_bare").await?;
    let mut samples = Samples::default();
    for i in 0..count + 10 {
        let t = Instant::now();
        let mut tx = pool.begin().await?;
        sqlx::query("insert into bench.bare (body) values ($1)").bind(format!("bench {i}")).execute(&mut *tx).await?;
        sqlx::query("select pg_notify('werkfunk_bench_bare', $1)").bind(i.to_string()).execute(&mut *tx).await?;
        tx.commit().await?;
        let n = listener.recv().await?;
        anyhow::ensure!(n.payload() == i.to_string(), "bare notify out of order");
        if i >= 10 {
            samples.push(t.elapsed());
        }
    }
    pool.close().await;
    Ok(samples)
}

async fn latency_with(env: &Env, admin: &PgPool, probe: &CpuProbe, subs: usize, count: usize) -> Result<Latency> {
    let users = create_users(env, admin, subs).await?;
    let conv = conversation(admin, &users.iter().map(|u| u.id).collect::<Vec<_>>()).await?;
    let sender = &users[0];
    let sql = insert_sql();
    let pool = PgPoolOptions::new().max_connections(1).connect(&env.database_url).await?;
    const WARM: usize = 5;

    // Baseline, before anyone subscribes.
    let mut listener = PgListener::connect(&env.database_url).await?;
    listener.listen("werkfunk_bench").await?;
    let mut baseline = Samples::default();
    for i in 0..count + WARM {
        let t = Instant::now();
        let payload = message(conv, sender.id, format!("bench-base:{i}: Passt es am Donnerstag?"));
        insert_as(&pool, &sql, sender, payload, Some(("werkfunk_bench", i.to_string()))).await?;
        let n = listener.recv().await?;
        anyhow::ensure!(n.payload() == i.to_string(), "baseline notify out of order");
        if i >= WARM {
            baseline.push(t.elapsed());
        }
    }
    drop(listener);
    // Let the server's feed work off the baseline's changes before the clock runs for it.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The server: every member subscribed.
    let joins =
        users.iter().map(|u| (format!("realtime:messages:{conv}"), changes_config(conv), Some(u.token.clone()))).collect();
    let sockets = open_all(&env.ws_url(), joins, 50, true).await?;
    let total = count + WARM;
    let starts: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let got: Arc<Vec<AtomicUsize>> = Arc::new((0..total).map(|_| AtomicUsize::new(0)).collect());
    let all_in = Arc::new(Notify::new());
    let each = Arc::new(Mutex::new(Samples::default()));
    let (stop, stop_rx) = watch::channel(false);
    let mut readers = Vec::new();
    for socket in sockets {
        let (starts, got, all_in, each) = (starts.clone(), got.clone(), all_in.clone(), each.clone());
        readers.push(ws::spawn_reader(socket, stop_rx.clone(), move |b| {
            let Some(seq) = number_after(b, b"bench-a:").map(|s| s as usize) else { return };
            if seq >= WARM {
                let t0 = starts[seq].load(Ordering::Relaxed);
                each.lock().expect("samples").micros.push(now_us().saturating_sub(t0));
            }
            if got[seq].fetch_add(1, Ordering::AcqRel) + 1 == subs {
                all_in.notify_one();
            }
        }));
    }
    let (mut last, mut commit) = (Samples::default(), Samples::default());
    let mut missing = 0;
    let cpu0 = probe.read();
    let wall0 = Instant::now();
    for seq in 0..total {
        starts[seq].store(now_us(), Ordering::Relaxed);
        let t = Instant::now();
        let payload = message(conv, sender.id, format!("bench-a:{seq}: Die Fliesen sind da."));
        insert_as(&pool, &sql, sender, payload, None).await?;
        let committed = t.elapsed();
        let arrived = tokio::time::timeout(Duration::from_secs(10), async {
            while got[seq].load(Ordering::Acquire) < subs {
                all_in.notified().await;
            }
        })
        .await;
        if seq >= WARM {
            commit.push(committed);
            match arrived {
                Ok(()) => last.push(t.elapsed()),
                Err(_) => missing += subs - got[seq].load(Ordering::Acquire),
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu = probe.read() - cpu0;
    let wall = wall0.elapsed();
    let closed = stop_readers(stop, readers).await;
    pool.close().await;
    let each = std::mem::take(&mut *each.lock().expect("samples"));
    Ok(Latency { each, last, commit, baseline, inserts: count, missing, closed, cpu, wall })
}

// ---- (b) deliveries at saturation -------------------------------------------------------------

const CONVERSATIONS: usize = 100;
const MEMBERS: usize = 10;
const INSERTERS: usize = 8;

struct Load {
    stop: Arc<AtomicBool>,
    inserted: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Result<()>>>,
}

/// `INSERTERS` connections inserting messages as fast as they can, round-robin over the
/// conversations, each message from one of its conversation's members.
fn start_load(pool: &PgPool, convs: &Arc<Vec<(Uuid, Vec<User>)>>) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let inserted = Arc::new(AtomicU64::new(0));
    let sql = Arc::new(insert_sql());
    let tasks = (0..INSERTERS)
        .map(|w| {
            let (pool, convs, stop, inserted, sql) = (pool.clone(), convs.clone(), stop.clone(), inserted.clone(), sql.clone());
            tokio::spawn(async move {
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let (conv, members) = &convs[(w + i * INSERTERS) % convs.len()];
                    let sender = &members[i % members.len()];
                    let payload = message(*conv, sender.id, format!("bench-b:{}: Bin in zehn Minuten da.", now_us()));
                    insert_as(&pool, &sql, sender, payload, None).await?;
                    inserted.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                Ok(())
            })
        })
        .collect();
    Load { stop, inserted, tasks }
}

impl Load {
    async fn stop(self) -> Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await??;
        }
        Ok(self.inserted.load(Ordering::Relaxed))
    }
}

async fn saturation(env: &Env, admin: &PgPool, probe: &CpuProbe) -> Result<String> {
    let convs_n = env.scale(CONVERSATIONS).max(2);
    let users = create_users(env, admin, convs_n * MEMBERS).await?;
    let mut convs = Vec::new();
    let mut users = users.into_iter();
    for _ in 0..convs_n {
        let members: Vec<User> = users.by_ref().take(MEMBERS).collect();
        let conv = conversation(admin, &members.iter().map(|u| u.id).collect::<Vec<_>>()).await?;
        convs.push((conv, members));
    }
    let convs = Arc::new(convs);
    let pool = PgPoolOptions::new().max_connections(INSERTERS as u32).connect(&env.database_url).await?;
    let warm = Duration::from_secs(2);
    let measure = Duration::from_secs(if env.quick { 4 } else { 10 });

    // Baseline: the same inserts with nobody subscribed.
    let load = start_load(&pool, &convs);
    tokio::time::sleep(warm).await;
    let (n0, cpu0, t0) = (load.inserted.load(Ordering::Relaxed), probe.read(), Instant::now());
    tokio::time::sleep(measure / 2).await;
    let (base_inserts, base_wall, base_cpu) = (load.inserted.load(Ordering::Relaxed) - n0, t0.elapsed(), probe.read() - cpu0);
    load.stop().await?;
    let base_rate = base_inserts as f64 / base_wall.as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Everyone subscribed to their conversation.
    let joins = convs
        .iter()
        .flat_map(|(conv, members)| {
            members.iter().map(move |u| (format!("realtime:messages:{conv}"), changes_config(*conv), Some(u.token.clone())))
        })
        .collect();
    let sockets = open_all(&env.ws_url(), joins, 50, true).await?;
    let subscribers = sockets.len();
    let delivered = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(AtomicBool::new(false));
    let lat = Arc::new(Mutex::new(Samples::default()));
    let (stop, stop_rx) = watch::channel(false);
    let mut readers = Vec::new();
    for socket in sockets {
        let (delivered, measuring, lat) = (delivered.clone(), measuring.clone(), lat.clone());
        readers.push(ws::spawn_reader(socket, stop_rx.clone(), move |b| {
            let Some(t) = number_after(b, b"bench-b:") else { return };
            let n = delivered.fetch_add(1, Ordering::Relaxed);
            if n % 4 == 0 && measuring.load(Ordering::Relaxed) {
                lat.lock().expect("samples").micros.push(now_us().saturating_sub(t));
            }
        }));
    }
    let load = start_load(&pool, &convs);
    tokio::time::sleep(warm).await;
    measuring.store(true, Ordering::Relaxed);
    let (d0, i0, cpu0, t0) =
        (delivered.load(Ordering::Relaxed), load.inserted.load(Ordering::Relaxed), probe.read(), Instant::now());
    tokio::time::sleep(measure).await;
    let (d1, i1, cpu, wall) =
        (delivered.load(Ordering::Relaxed), load.inserted.load(Ordering::Relaxed), probe.read() - cpu0, t0.elapsed());
    measuring.store(false, Ordering::Relaxed);
    let inserted = load.stop().await?;
    // Drain: every insert is due to all MEMBERS subscribers of its conversation.
    let expected = inserted * MEMBERS as u64;
    let drain = Instant::now();
    while delivered.load(Ordering::Relaxed) < expected && drain.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained = delivered.load(Ordering::Relaxed);
    let closed = stop_readers(stop, readers).await;
    pool.close().await;

    let deliveries = (d1 - d0) as f64;
    let rate = deliveries / wall.as_secs_f64();
    // Where the time goes, per delivery: the server's CPU, and Postgres's beyond what the
    // same inserts cost in the baseline (that is, the authorization queries).
    let pg_per_insert = base_cpu.postgres / base_inserts.max(1) as f64;
    let server_us = 1e6 * cpu.server / deliveries.max(1.0);
    let pg_us = 1e6 * (cpu.postgres - pg_per_insert * (i1 - i0) as f64).max(0.0) / deliveries.max(1.0);
    let client_us = 1e6 * cpu.bench / deliveries.max(1.0);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    let gateway_ceiling = cores * 1e6 / (server_us + pg_us).max(0.001);
    let ins_rate = (i1 - i0) as f64 / wall.as_secs_f64();
    let lat = std::mem::take(&mut *lat.lock().expect("samples"));
    let pg = probe.has_postgres();
    Ok(format!(
        "### (b) RLS-filtered `postgres_changes` deliveries per second at saturation\n\n\
         {convs_n} conversations × {MEMBERS} members, every member subscribed to their conversation's messages \
         ({subscribers} websockets, each with its own token, so {subscribers} distinct claims); {INSERTERS} connections insert \
         messages as fast as they can (one message per transaction, round-robin over the conversations, each from a member \
         under their role and claims). Deliveries are counted at the clients over {:.0} s after a {:.0} s warm-up. \
         Baseline: the same inserts with nobody subscribed — the rate the database sustains for this work, \
         times {MEMBERS} subscribers per message, is the most any change feed could deliver here.\n\n\
         | | server, {subscribers} subscribers | baseline: same inserts, no subscribers | ratio |\n|---|---:|---:|---:|\n\
         | inserts/s | {} | {} | {} |\n\
         | deliveries/s at the clients | **{}** | {} (inserts/s × {MEMBERS}, ceiling) | {} |\n\
         | INSERT → delivery under this load, p50 / p99 | {} / {} | – | |\n\
         | delivered after the load stopped / expected | {} / {} | | |\n\
         | sockets closed by the server | {closed} | | |\n\n\
         CPU — server run: {}; baseline: {}.\n\n\
         Where the time goes, per delivery: server process {server_us:.1} µs CPU; Postgres {pg_us:.1} µs CPU beyond the \
         inserts' own cost (the authorization queries: the Postgres CPU of the run minus the baseline's Postgres CPU per insert \
         times the inserts); the load generator's websocket clients {client_us:.1} µs. The gateway's own work (server + \
         authorization) would thus allow about **{} deliveries/s on these {cores:.0} cores** if inserting cost nothing \
         (derived, not measured); each insert here costs Postgres {:.0} µs CPU by itself.\n\n",
        measure.as_secs_f64(),
        warm.as_secs_f64(),
        int(ins_rate),
        int(base_rate),
        ratio(ins_rate, base_rate),
        int(rate),
        int(base_rate * MEMBERS as f64),
        ratio(rate, base_rate * MEMBERS as f64),
        ms(lat.pct(50.0)),
        ms(lat.pct(99.0)),
        int(drained as f64),
        int(expected as f64),
        cpu.describe(wall, pg),
        base_cpu.describe(base_wall, pg),
        int(gateway_ceiling),
        1e6 * pg_per_insert,
    ))
}

// ---- (c) broadcast ----------------------------------------------------------------------------

const RECEIVERS: usize = 100;
const WINDOW: u64 = 256;

struct Fan {
    saturated_rate: f64,
    saturated: Samples,
    paced_rate: f64,
    paced: Samples,
    paced_sent_per_s: f64,
    closed: usize,
    lost: u64,
    cpu: Cpu,
    other_cpu: f64,
    wall: Duration,
}

async fn broadcast(env: &Env, probe: &CpuProbe) -> Result<String> {
    let receivers = env.scale(RECEIVERS).max(10);
    let server = fan(&env.ws_url(), receivers, probe, None, env.quick).await?;
    let fanout = Fanout::start().await?;
    let bare = fan(&fanout.url, receivers, probe, Some(fanout.pid()), env.quick).await;
    fanout.stop().await;
    let bare = bare?;
    let pp = |s: &Samples| format!("{} / {}", ms(s.pct(50.0)), ms(s.pct(99.0)));
    Ok(format!(
        "### (c) broadcast on one topic\n\n\
         {SENDERS} senders and {receivers} receivers on one public topic (`broadcast: {{self: false}}`); the senders push \
         `broadcast` frames with a timestamp, keeping at most {WINDOW} messages ahead of the slowest receiver (the server \
         closes a socket whose queue of 1,024 fills) and each under {} frames/s (the server allows a socket 2,500 frames/s, \
         so the senders together can offer at most {} received/s). Saturated: as fast as that allows; paced: one sender at a \
         steady rate below it. \
         Received messages/s counts frames at all receivers together. Baseline: a bare tokio-tungstenite server (in \
         `crates/bench/src/fanout.rs`, its own process) that writes each incoming frame, unchanged, to every other \
         connection through the same kind of bounded per-connection queue — the websocket work without the \
         Phoenix channel layer.\n\n\
         | | server | bare tokio-tungstenite fan-out | server ÷ bare |\n|---|---:|---:|---:|\n\
         | received messages/s, saturated | **{}** | {} | {} |\n\
         | latency saturated, p50 / p99 | {} / {} | {} / {} | |\n\
         | latency paced at {} sent/s ({} received/s), p50 / p99 | **{}** | {} | {} (p50) |\n\
         | sockets closed by the server / messages lost | {} / {} | {} / {} | |\n\n\
         CPU — server run: {}; bare run: bare server {:.1} s, load generator {:.1} s over {:.1} s.\n\n",
        int(SENDER_CAP),
        int(SENDER_CAP * SENDERS as f64 * receivers as f64),
        int(server.saturated_rate),
        int(bare.saturated_rate),
        ratio(server.saturated_rate, bare.saturated_rate),
        ms(server.saturated.pct(50.0)),
        ms(server.saturated.pct(99.0)),
        ms(bare.saturated.pct(50.0)),
        ms(bare.saturated.pct(99.0)),
        int(server.paced_sent_per_s),
        int(server.paced_rate),
        pp(&server.paced),
        pp(&bare.paced),
        ratio(server.paced.pct(50.0), bare.paced.pct(50.0)),
        server.closed,
        server.lost,
        bare.closed,
        bare.lost,
        server.cpu.describe(server.wall, false),
        bare.other_cpu,
        bare.cpu.bench,
        bare.wall.as_secs_f64(),
    ))
}

/// Senders on the topic, each kept under the server's per-socket limit of 2,500 frames/s.
const SENDERS: usize = 3;
const SENDER_CAP: f64 = 2_000.0;

/// What the senders do: 0 warm-up and 1 saturated (as fast as the window and the cap
/// allow), 2 paced (sender 0 alone at `paced` messages/s), 3 stop.
struct SendPlan {
    phase: AtomicU64,
    paced: AtomicU64,
    sent: AtomicU64,
    counts: Arc<Vec<AtomicU64>>,
}

impl SendPlan {
    fn slowest(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).min().unwrap_or(0)
    }
    fn received(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

async fn send_loop(
    mut sink: futures::stream::SplitSink<Ws, Message>,
    idx: usize,
    topic: String,
    plan: Arc<SendPlan>,
) -> Result<()> {
    let frame = |seq: u64, phase: u64| {
        let f = json!([null, seq.to_string(), topic, "broadcast", {"type": "broadcast", "event": "tick", "payload": {"p": phase, "t": now_us(), "body": "Alice tippt …"}}]);
        Message::Text(f.to_string().into())
    };
    // Token bucket: at most 100 + SENDER_CAP frames in any second.
    let (mut tokens, mut refilled) = (100.0f64, Instant::now());
    let (mut owed, mut paid) = (0.0f64, Instant::now());
    let mut seq = 0u64;
    loop {
        let phase = plan.phase.load(Ordering::Relaxed);
        let now = Instant::now();
        tokens = (tokens + now.duration_since(refilled).as_secs_f64() * SENDER_CAP).min(100.0);
        refilled = now;
        match phase {
            3 => break,
            2 => {
                tokio::time::sleep(Duration::from_millis(1)).await;
                if idx != 0 {
                    continue;
                }
                let now = Instant::now();
                owed = (owed + plan.paced.load(Ordering::Relaxed) as f64 * now.duration_since(paid).as_secs_f64()).min(100.0);
                paid = now;
                while owed >= 1.0 && tokens >= 1.0 {
                    sink.feed(frame(seq, 2)).await?;
                    seq += 1;
                    plan.sent.fetch_add(1, Ordering::Relaxed);
                    owed -= 1.0;
                    tokens -= 1.0;
                }
                sink.flush().await?;
            }
            _ => {
                paid = now;
                if tokens < 8.0 || plan.sent.load(Ordering::Relaxed).saturating_sub(plan.slowest()) >= WINDOW {
                    // Sleeping (rather than spinning) leaves the cores to the server.
                    tokio::time::sleep(Duration::from_micros(500)).await;
                    continue;
                }
                for _ in 0..8 {
                    sink.feed(frame(seq, phase)).await?;
                    seq += 1;
                }
                tokens -= 8.0;
                plan.sent.fetch_add(8, Ordering::Relaxed);
                sink.flush().await?;
            }
        }
    }
    let _ = sink.close().await;
    Ok(())
}

async fn fan(url: &str, receivers: usize, probe: &CpuProbe, other_pid: Option<u32>, quick: bool) -> Result<Fan> {
    let topic = "realtime:bench-broadcast".to_owned();
    let config = json!({"broadcast": {"ack": false, "self": false}, "presence": {"key": "", "enabled": false}, "postgres_changes": [], "private": false});
    let joins = (0..receivers + SENDERS).map(|_| (topic.clone(), config.clone(), None)).collect();
    let mut sockets = open_all(url, joins, 50, false).await?;
    let senders: Vec<Ws> = sockets.split_off(receivers);
    let counts: Arc<Vec<AtomicU64>> = Arc::new((0..receivers).map(|_| AtomicU64::new(0)).collect());
    // Phase 1 = saturated, 2 = paced; 0 = warm-up.
    let samples: Arc<Vec<Mutex<Samples>>> = Arc::new((0..3).map(|_| Mutex::new(Samples::default())).collect());
    let (stop, stop_rx) = watch::channel(false);
    let mut readers = Vec::new();
    for (i, socket) in sockets.into_iter().enumerate() {
        let (counts, samples) = (counts.clone(), samples.clone());
        readers.push(ws::spawn_reader(socket, stop_rx.clone(), move |b| {
            let (Some(phase), Some(t)) = (number_after(b, b"\"p\":"), number_after(b, b"\"t\":")) else { return };
            let n = counts[i].fetch_add(1, Ordering::Relaxed);
            if (1..=2).contains(&phase) && n % 2 == 0 {
                samples[phase as usize].lock().expect("samples").micros.push(now_us().saturating_sub(t));
            }
        }));
    }
    let plan = Arc::new(SendPlan {
        phase: AtomicU64::new(0),
        paced: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        counts: counts.clone(),
    });
    let mut send_tasks = Vec::new();
    for (idx, socket) in senders.into_iter().enumerate() {
        // The senders hear each other: drain that, uncounted.
        let (sink, mut stream) = socket.split();
        tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
        send_tasks.push(tokio::spawn(send_loop(sink, idx, topic.clone(), plan.clone())));
    }
    let (warm, measure, paced_for) = if quick {
        (Duration::from_secs(1), Duration::from_secs(3), Duration::from_secs(2))
    } else {
        (Duration::from_secs(2), Duration::from_secs(8), Duration::from_secs(5))
    };
    tokio::time::sleep(warm).await;
    plan.phase.store(1, Ordering::Relaxed);
    let (r0, cpu0, other0, t0) = (plan.received(), probe.read(), other_pid.map(cpu_secs).unwrap_or(0.0), Instant::now());
    tokio::time::sleep(measure).await;
    let wall = t0.elapsed();
    let saturated_rate = (plan.received() - r0) as f64 / wall.as_secs_f64();
    let cpu = probe.read() - cpu0;
    let other_cpu = other_pid.map(cpu_secs).unwrap_or(0.0) - other0;
    // Drain, then paced: 1,000 messages/s (100,000 received/s with 100 receivers), or half
    // the saturated rate if that is lower.
    let per_s = (1000.0f64).min(saturated_rate / receivers as f64 / 2.0).max(10.0);
    plan.paced.store(per_s as u64, Ordering::Relaxed);
    plan.phase.store(2, Ordering::Relaxed);
    let drain = Instant::now();
    while plan.slowest() < plan.sent.load(Ordering::Relaxed) && drain.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (p_r0, p_t0) = (plan.received(), Instant::now());
    tokio::time::sleep(paced_for).await;
    let paced_rate = (plan.received() - p_r0) as f64 / p_t0.elapsed().as_secs_f64();
    plan.phase.store(3, Ordering::Relaxed);
    for t in send_tasks {
        t.await??;
    }
    let drain = Instant::now();
    while plan.slowest() < plan.sent.load(Ordering::Relaxed) && drain.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let lost = plan.sent.load(Ordering::Relaxed) * receivers as u64 - plan.received();
    let closed = stop_readers(stop, readers).await;
    let take = |i: usize| std::mem::take(&mut *samples[i].lock().expect("samples"));
    Ok(Fan {
        saturated_rate,
        saturated: take(1),
        paced_rate,
        paced: take(2),
        paced_sent_per_s: per_s,
        closed,
        lost,
        cpu,
        other_cpu,
        wall,
    })
}

// ---- (d) memory per idle connection ---------------------------------------------------------

const IDLE: usize = 10_000;
const IDLE_WARM: usize = 500;

struct Idle {
    fds_full: usize,
    fds_after: usize,
    open_cpu: f64,
    rss_start: u64,
    rss_warm: u64,
    rss_full: u64,
    rss_after: u64,
    open_time: Duration,
    n: usize,
}

impl Idle {
    fn per_conn_kib(&self) -> f64 {
        (self.rss_full as f64 - self.rss_warm as f64) / self.n as f64
    }
}

async fn idle(env: &Env) -> Result<String> {
    let n = env.scale(IDLE);
    let server = idle_run(&env.ws_url(), env.server_pid, n, true).await?;
    let fanout = Fanout::start().await?;
    let bare = idle_run(&fanout.url, fanout.pid(), n, false).await;
    fanout.stop().await;
    let bare = bare?;
    let mib = |k: u64| format!("{:.1} MiB", k as f64 / 1024.0);
    Ok(format!(
        "### (d) memory per idle connection\n\n\
         {IDLE_WARM} connections are opened first (warm-up, kept open), then {} more, each joined to a channel \
         (`realtime:idle:<n>`, 100 topics, with a `postgres_changes` binding as the app's channels have) and then left \
         idle. Per connection = growth of the server process's `VmRSS` (from `/proc/<pid>/status`) over those {} \
         connections ÷ {}. The server's process was fresh (this runs before the other realtime benchmarks). \
         Baseline: the bare tokio-tungstenite server of (c), same clients (its joins carry no binding).\n\n\
         | | server | bare tokio-tungstenite | server ÷ bare |\n|---|---:|---:|---:|\n\
         | RSS per idle connection | **{:.1} KiB** | {:.1} KiB | {} |\n\
         | RSS at start → after warm-up → with {} open | {} → {} → {} | {} → {} → {} | |\n\
         | RSS 3 s after all closed (open file descriptors with all open → after) | {} ({} → {}) | {} ({} → {}) | |\n\
         | time to open and join {} connections (50 at a time); CPU per connection | {:.1} s; {:.0} µs | {:.1} s; {:.0} µs | |\n\n",
        int(n as f64),
        int(n as f64),
        int(n as f64),
        server.per_conn_kib(),
        bare.per_conn_kib(),
        ratio(server.per_conn_kib(), bare.per_conn_kib()),
        int((n + IDLE_WARM) as f64),
        mib(server.rss_start),
        mib(server.rss_warm),
        mib(server.rss_full),
        mib(bare.rss_start),
        mib(bare.rss_warm),
        mib(bare.rss_full),
        mib(server.rss_after),
        int(server.fds_full as f64),
        int(server.fds_after as f64),
        mib(bare.rss_after),
        int(bare.fds_full as f64),
        int(bare.fds_after as f64),
        int(n as f64),
        server.open_time.as_secs_f64(),
        1e6 * server.open_cpu / n as f64,
        bare.open_time.as_secs_f64(),
        1e6 * bare.open_cpu / n as f64,
    ))
}

async fn idle_run(url: &str, pid: u32, n: usize, expect_system: bool) -> Result<Idle> {
    let rss = || rss_kib(pid).context("reading VmRSS");
    let joins = |count: usize| -> Vec<(String, Value, Option<String>)> {
        (0..count).map(|i| (format!("realtime:idle:{}", i % 100), changes_config(Uuid::new_v4()), None)).collect()
    };
    let rss_start = rss()?;
    let warm = open_all(url, joins(IDLE_WARM), 50, expect_system).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_warm = rss()?;
    let fds = || std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    let (t, cpu0) = (Instant::now(), cpu_secs(pid));
    let rest = open_all(url, joins(n), 50, expect_system).await?;
    let (open_time, open_cpu) = (t.elapsed(), cpu_secs(pid) - cpu0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_full, fds_full) = (rss()?, fds());
    drop(rest);
    drop(warm);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rss_after, fds_after) = (rss()?, fds());
    Ok(Idle { fds_full, fds_after, open_cpu, rss_start, rss_warm, rss_full, rss_after, open_time, n })
}
