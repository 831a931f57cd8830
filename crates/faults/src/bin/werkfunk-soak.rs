//! `werkfunk-soak`: the connection soak's load, started by `cargo xtask soak connections`.
//!
//! Against one running server (loopback): signs up `connections / 4` users in pairs, each
//! pair a direct conversation; opens `connections` realtime websockets (vsn 2.0.0, four per
//! user), each joined to its conversation's `messages:` (a `postgres_changes` binding),
//! `typing:` (broadcast) and `presence:` (tracked) topics; then, until the run's end, posts
//! messages over REST, sends typing broadcasts and presence tracks from the sockets, and
//! spreads the sign-ins and refreshes evenly over the run. Every 10 s the server process's
//! RSS and open descriptors are sampled; the samples go to `<out>/<stem>.csv` and `.svg`
//! as the run goes, and the verdict (growth after warm-up within 10 %) ends the run.
//!
//! Environment: `WERKFUNK_SOAK_URL`, `WERKFUNK_SOAK_ANON_KEY`, `WERKFUNK_SOAK_SERVER_PID`,
//! `WERKFUNK_SOAK_SECS`, `WERKFUNK_SOAK_CONNECTIONS`, `WERKFUNK_SOAK_AUTH_OPS`,
//! `WERKFUNK_SOAK_OUT` (a folder), `WERKFUNK_SOAK_STEM`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::{SinkExt, StreamExt};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;
use werkfunk_faults::soak::{self, Sample};

const SAMPLE_EVERY: Duration = Duration::from_secs(10);
const PASSWORD: &str = "Soak-Passwort-2026";
/// Messages over REST per second, over all users.
const MESSAGES_PER_SECOND: f64 = 4.0;
/// Typing broadcasts and presence tracks per second, over all sockets.
const BROADCASTS_PER_SECOND: f64 = 10.0;
const TRACKS_PER_SECOND: f64 = 5.0;
const CONNECTIONS_PER_USER: usize = 4;
const HEARTBEAT: Duration = Duration::from_secs(25);
/// Sockets send the newest access token this often (tokens live an hour).
const TOKEN_EVERY: Duration = Duration::from_secs(20 * 60);
const GROWTH_LIMIT_PERCENT: f64 = 10.0;

struct Config {
    url: String,
    anon_key: String,
    pid: u32,
    run: Duration,
    connections: usize,
    auth_ops: u64,
    out: PathBuf,
    stem: String,
}

fn env(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

impl Config {
    fn from_env() -> Result<Config> {
        Ok(Config {
            url: env("WERKFUNK_SOAK_URL")?,
            anon_key: env("WERKFUNK_SOAK_ANON_KEY")?,
            pid: env("WERKFUNK_SOAK_SERVER_PID")?.parse()?,
            run: Duration::from_secs(env("WERKFUNK_SOAK_SECS")?.parse()?),
            connections: env("WERKFUNK_SOAK_CONNECTIONS")?.parse()?,
            auth_ops: env("WERKFUNK_SOAK_AUTH_OPS")?.parse()?,
            out: PathBuf::from(env("WERKFUNK_SOAK_OUT")?),
            stem: env("WERKFUNK_SOAK_STEM").unwrap_or_else(|_| "connections".into()),
        })
    }

    /// A fifth of the run, at most five minutes.
    fn warm_up(&self) -> Duration {
        (self.run / 5).min(Duration::from_secs(300))
    }
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    messages_sent: AtomicU64,
    deliveries: AtomicU64,
    /// For each message sent, the sockets joined to its conversation.
    deliveries_expected: AtomicU64,
    broadcasts_sent: AtomicU64,
    broadcasts_received: AtomicU64,
    presence_tracks: AtomicU64,
    sign_ins: AtomicU64,
    refreshes: AtomicU64,
    errors: AtomicU64,
    sockets_lost: AtomicU64,
    channels_errored: AtomicU64,
}

fn add(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

struct User {
    id: Uuid,
    email: String,
    /// The newest access token (sign-ins and refreshes replace it).
    token: Mutex<String>,
    conversation: Mutex<Option<Uuid>>,
}

impl User {
    fn token(&self) -> String {
        self.token.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn conversation(&self) -> Uuid {
        self.conversation.lock().unwrap_or_else(PoisonError::into_inner).expect("conversation set up")
    }
}

struct Soak {
    cfg: Config,
    http: reqwest::Client,
    users: Vec<Arc<User>>,
    /// Sockets per conversation.
    sockets_in: std::collections::HashMap<Uuid, u64>,
    counters: Counters,
}

impl Soak {
    fn request(&self, method: reqwest::Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.cfg.url))
            .header("apikey", &self.cfg.anon_key)
            .bearer_auth(token.unwrap_or(&self.cfg.anon_key))
    }
}

async fn sign_up(http: &reqwest::Client, cfg: &Config, i: usize, run_id: &str) -> Result<User> {
    let email = format!("soak-{run_id}-{i}@werkfunk.test");
    let resp = http
        .post(format!("{}/auth/v1/signup", cfg.url))
        .header("apikey", &cfg.anon_key)
        .bearer_auth(&cfg.anon_key)
        .json(&json!({"email": email, "password": PASSWORD, "data": {"full_name": format!("Soak {i}"), "role": if i.is_multiple_of(2) { "tradesperson" } else { "customer" }}}))
        .send()
        .await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    if !status.is_success() {
        bail!("sign-up {i}: {status} {body}");
    }
    Ok(User {
        id: body["user"]["id"].as_str().context("user id")?.parse()?,
        email,
        token: Mutex::new(body["access_token"].as_str().context("access token")?.to_owned()),
        conversation: Mutex::new(None),
    })
}

async fn set_up(cfg: Config) -> Result<Arc<Soak>> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).pool_max_idle_per_host(64).build()?;
    let users_n = (cfg.connections.div_ceil(CONNECTIONS_PER_USER)).max(2).next_multiple_of(2);
    let run_id = Uuid::new_v4().simple().to_string()[..8].to_owned();
    eprintln!("soak: signing up {users_n} users");
    let mut users = Vec::with_capacity(users_n);
    let results: Vec<Result<User>> =
        futures::stream::iter((0..users_n).map(|i| sign_up(&http, &cfg, i, &run_id))).buffered(8).collect().await;
    for r in results {
        users.push(Arc::new(r?));
    }
    eprintln!("soak: {} direct conversations", users_n / 2);
    for pair in users.chunks(2) {
        let resp = http
            .post(format!("{}/rest/v1/rpc/create_conversation", cfg.url))
            .header("apikey", &cfg.anon_key)
            .bearer_auth(pair[0].token())
            .json(&json!({"p_type": "direct", "p_title": null, "p_member_ids": [pair[1].id]}))
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        if !status.is_success() {
            bail!("create_conversation: {status} {body}");
        }
        let conv: Uuid = body.as_str().or_else(|| body["id"].as_str()).context("conversation id")?.parse()?;
        for u in pair {
            *u.conversation.lock().unwrap_or_else(PoisonError::into_inner) = Some(conv);
        }
    }
    let mut sockets_in = std::collections::HashMap::new();
    for i in 0..cfg.connections {
        *sockets_in.entry(users[i % users.len()].conversation()).or_insert(0) += 1;
    }
    Ok(Arc::new(Soak { cfg, http, users, sockets_in, counters: Counters::default() }))
}

/// One websocket of `user`, reconnected until `stop` if the server drops it.
async fn connection(
    soak: Arc<Soak>,
    index: usize,
    user: Arc<User>,
    mut stop: watch::Receiver<bool>,
    ready: tokio::sync::mpsc::Sender<()>,
) {
    let mut ready = Some(ready);
    loop {
        let outcome = session(&soak, index, &user, &mut stop, &mut ready).await;
        soak.counters.connections.fetch_sub(u64::from(outcome.connected), Ordering::Relaxed);
        if *stop.borrow() {
            return;
        }
        if let Err(e) = outcome.result {
            add(&soak.counters.errors);
            add(&soak.counters.sockets_lost);
            eprintln!("soak: socket {index} lost: {e:#}");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

struct Outcome {
    connected: bool,
    result: Result<()>,
}

async fn session(
    soak: &Soak,
    index: usize,
    user: &User,
    stop: &mut watch::Receiver<bool>,
    ready: &mut Option<tokio::sync::mpsc::Sender<()>>,
) -> Outcome {
    let url = format!("{}/realtime/v1/websocket?apikey={}&vsn=2.0.0", soak.cfg.url.replacen("http", "ws", 1), soak.cfg.anon_key);
    let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
    let ws = match tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::connect_async_with_config(url, Some(config), true),
    )
    .await
    {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => return Outcome { connected: false, result: Err(e.into()) },
        Err(_) => return Outcome { connected: false, result: Err(anyhow::anyhow!("connect timed out")) },
    };
    add(&soak.counters.connections);
    let result = drive(soak, index, user, ws, stop, ready).await;
    Outcome { connected: true, result }
}

async fn drive(
    soak: &Soak,
    index: usize,
    user: &User,
    mut ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    stop: &mut watch::Receiver<bool>,
    ready: &mut Option<tokio::sync::mpsc::Sender<()>>,
) -> Result<()> {
    let conv = user.conversation();
    let topics = [format!("realtime:messages:{conv}"), format!("realtime:typing:{conv}"), format!("realtime:presence:{conv}")];
    let presence_key = format!("{}-{index}", user.id);
    let join_payload = |t: usize, token: &str| -> Value {
        let config = match t {
            0 => {
                json!({"broadcast": {"self": false}, "presence": {"key": ""}, "postgres_changes": [{"event": "*", "schema": "public", "table": "messages", "filter": format!("conversation_id=eq.{conv}")}], "private": false})
            }
            1 => {
                json!({"broadcast": {"self": false, "ack": false}, "presence": {"key": ""}, "postgres_changes": [], "private": false})
            }
            _ => {
                json!({"broadcast": {"self": false}, "presence": {"key": presence_key}, "postgres_changes": [], "private": false})
            }
        };
        json!({"config": config, "access_token": token})
    };
    let mut next_ref = 0u64;
    // Each channel's join_ref is its index + 1; `joins` holds the refs of joins not answered.
    let mut frame = |join_ref: Option<usize>, topic: &str, event: &str, payload: Value| -> (Message, String) {
        next_ref += 1;
        let jr = join_ref.map(|t| (t + 1).to_string());
        (Message::Text(json!([jr, next_ref.to_string(), topic, event, payload]).to_string().into()), next_ref.to_string())
    };
    let mut joins: Vec<(String, usize)> = Vec::new();
    let token = user.token();
    for (t, topic) in topics.iter().enumerate() {
        let (m, r) = frame(Some(t), topic, "phx_join", join_payload(t, &token));
        ws.send(m).await?;
        joins.push((r, t));
    }
    let mut joined = 0;
    let mut rng = rand::rngs::StdRng::from_entropy();
    let connections = soak.cfg.connections as f64;
    let mean_typing = Duration::from_secs_f64(connections / BROADCASTS_PER_SECOND);
    let mean_track = Duration::from_secs_f64(connections / TRACKS_PER_SECOND);
    let jitter = |rng: &mut rand::rngs::StdRng, mean: Duration| mean.mul_f64(rng.gen_range(0.5..1.5));
    let mut typing_at = tokio::time::Instant::now() + jitter(&mut rng, mean_typing);
    let mut track_at = tokio::time::Instant::now() + jitter(&mut rng, mean_track);
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    let mut token_refresh = tokio::time::interval(TOKEN_EVERY);
    token_refresh.tick().await;
    loop {
        tokio::select! {
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => { add(&soak.counters.broadcasts_received); continue; }
                    Some(Ok(Message::Close(c))) => bail!("closed by the server: {c:?}"),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => bail!("socket error: {e}"),
                    None => bail!("socket ended"),
                };
                let Ok(Value::Array(f)) = serde_json::from_str::<Value>(text.as_str()) else { bail!("unreadable frame: {text}") };
                let (topic, event, payload) = (f[2].as_str().unwrap_or(""), f[3].as_str().unwrap_or(""), &f[4]);
                match event {
                    "postgres_changes" => add(&soak.counters.deliveries),
                    "phx_reply" if joins.iter().any(|(r, _)| Some(r.as_str()) == f[1].as_str()) => {
                        let at = joins.iter().position(|(r, _)| Some(r.as_str()) == f[1].as_str()).unwrap_or(0);
                        let (_, t) = joins.swap_remove(at);
                        if payload["status"] != "ok" {
                            add(&soak.counters.errors);
                            bail!("join refused on {topic}: {payload}");
                        }
                        joined += 1;
                        if t == 2 {
                            let (m, _) = frame(Some(2), topic, "presence", json!({"type": "presence", "event": "track", "payload": {"status": "online"}}));
                            ws.send(m).await?;
                            add(&soak.counters.presence_tracks);
                        }
                        if joined == 3 {
                            if let Some(r) = ready.take() {
                                let _ = r.send(()).await;
                            }
                        }
                    }
                    "phx_reply" if payload["status"] != "ok" => {
                        add(&soak.counters.errors);
                        eprintln!("soak: socket {index}: refused on {topic}: {payload}");
                    }
                    "phx_error" | "phx_close" => {
                        // Rejoin, as a client does.
                        add(&soak.counters.channels_errored);
                        if let Some(t) = topics.iter().position(|x| x == topic) {
                            let (m, r) = frame(Some(t), topic, "phx_join", join_payload(t, &user.token()));
                            ws.send(m).await?;
                            joins.push((r, t));
                        }
                    }
                    _ => {}
                }
            }
            _ = heartbeat.tick() => {
                ws.send(frame(None, "phoenix", "heartbeat", json!({})).0).await?;
            }
            _ = tokio::time::sleep_until(typing_at) => {
                typing_at = tokio::time::Instant::now() + jitter(&mut rng, mean_typing);
                ws.send(frame(Some(1), &topics[1], "broadcast", json!({"type": "broadcast", "event": "typing", "payload": {"user": user.id, "typing": true}})).0).await?;
                add(&soak.counters.broadcasts_sent);
            }
            _ = tokio::time::sleep_until(track_at) => {
                track_at = tokio::time::Instant::now() + jitter(&mut rng, mean_track);
                let status = if rng.gen_bool(0.5) { "online" } else { "away" };
                ws.send(frame(Some(2), &topics[2], "presence", json!({"type": "presence", "event": "track", "payload": {"status": status}})).0).await?;
                add(&soak.counters.presence_tracks);
            }
            _ = token_refresh.tick() => {
                let token = user.token();
                for (t, topic) in topics.iter().enumerate() {
                    ws.send(frame(Some(t), topic, "access_token", json!({"access_token": token})).0).await?;
                }
            }
            _ = stop.changed() => {
                let _ = ws.close(None).await;
                return Ok(());
            }
        }
    }
}

/// Messages over REST at [`MESSAGES_PER_SECOND`] from random users, until `stop`.
async fn messages(soak: Arc<Soak>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / MESSAGES_PER_SECOND));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        n += 1;
        let user = &soak.users[rng.gen_range(0..soak.users.len())];
        let conv = user.conversation();
        let body = json!({"conversation_id": conv, "sender_id": user.id, "content": format!("soak message {n}")});
        let ok = match soak.request(reqwest::Method::POST, "/rest/v1/messages", Some(&user.token())).json(&body).send().await {
            Ok(r) if r.status().is_success() => true,
            Ok(r) => {
                eprintln!("soak: message {n} refused: {}", r.status());
                false
            }
            Err(e) => {
                eprintln!("soak: message {n} failed: {e}");
                false
            }
        };
        if ok {
            add(&soak.counters.messages_sent);
            soak.counters.deliveries_expected.fetch_add(soak.sockets_in.get(&conv).copied().unwrap_or(0), Ordering::Relaxed);
        } else {
            add(&soak.counters.errors);
        }
    }
}

/// `auth_ops` sign-ins and refreshes, alternating, spread evenly over `run`.
async fn auth(soak: Arc<Soak>, mut stop: watch::Receiver<bool>) {
    let every = soak.cfg.run.div_f64(soak.cfg.auth_ops.max(1) as f64);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refresh_token: Option<(usize, String)> = None;
    for op in 0..soak.cfg.auth_ops {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let (grant, body, user_index) = match refresh_token.take() {
            Some((i, rt)) if op % 2 == 1 => ("refresh_token", json!({"refresh_token": rt}), i),
            _ => {
                let i = (op as usize / 2) % soak.users.len();
                ("password", json!({"email": soak.users[i].email, "password": PASSWORD}), i)
            }
        };
        let resp =
            soak.request(reqwest::Method::POST, &format!("/auth/v1/token?grant_type={grant}"), None).json(&body).send().await;
        let answer = match resp {
            Ok(r) if r.status().is_success() => r.json::<Value>().await.ok(),
            Ok(r) => {
                eprintln!("soak: {grant} grant refused: {}", r.status());
                None
            }
            Err(e) => {
                eprintln!("soak: {grant} grant failed: {e}");
                None
            }
        };
        match answer {
            Some(a) => {
                if let (Some(access), Some(refresh)) = (a["access_token"].as_str(), a["refresh_token"].as_str()) {
                    *soak.users[user_index].token.lock().unwrap_or_else(PoisonError::into_inner) = access.to_owned();
                    refresh_token = Some((user_index, refresh.to_owned()));
                }
                add(if grant == "password" { &soak.counters.sign_ins } else { &soak.counters.refreshes });
            }
            None => add(&soak.counters.errors),
        }
    }
}

fn sample(soak: &Soak, started: Instant) -> Result<Sample> {
    let (rss_kib, fds) = soak::read_process(soak.cfg.pid).context("reading the server process")?;
    let c = &soak.counters;
    Ok(Sample {
        elapsed: started.elapsed(),
        rss_kib,
        fds,
        connections: get(&c.connections),
        messages_sent: get(&c.messages_sent),
        deliveries: get(&c.deliveries),
        broadcasts_sent: get(&c.broadcasts_sent),
        presence_tracks: get(&c.presence_tracks),
        sign_ins: get(&c.sign_ins),
        refreshes: get(&c.refreshes),
        errors: get(&c.errors),
    })
}

async fn run(cfg: Config) -> Result<bool> {
    let soak = set_up(cfg).await?;
    let (stop_tx, stop) = watch::channel(false);
    let n = soak.cfg.connections;
    eprintln!("soak: opening {n} websockets");
    let (ready_tx, mut ready) = tokio::sync::mpsc::channel(n.max(1));
    let mut sockets = Vec::with_capacity(n);
    for i in 0..n {
        let user = soak.users[i % soak.users.len()].clone();
        sockets.push(tokio::spawn(connection(soak.clone(), i, user, stop.clone(), ready_tx.clone())));
        // Opened in waves, so the joins do not all queue at once.
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    drop(ready_tx);
    let opened = Instant::now();
    let mut all_joined = 0;
    while all_joined < n {
        match tokio::time::timeout(Duration::from_secs(120), ready.recv()).await {
            Ok(Some(())) => all_joined += 1,
            _ => break,
        }
    }
    eprintln!("soak: {all_joined} of {n} sockets joined all three channels in {:.1} s", opened.elapsed().as_secs_f64());
    if all_joined < n {
        let _ = stop_tx.send(true);
        bail!("only {all_joined} of {n} sockets joined");
    }

    let started = Instant::now();
    let (quiet_tx, quiet) = watch::channel(false);
    let traffic = [tokio::spawn(messages(soak.clone(), quiet.clone())), tokio::spawn(auth(soak.clone(), quiet))];
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    let warm_up = soak.cfg.warm_up();
    let title = format!("werkfunk-server under {n} websockets: RSS and open descriptors");
    loop {
        tick.tick().await;
        let s = sample(&soak, started)?;
        println!(
            "{:>5} s  rss {:>7.1} MiB  fds {:>5}  sockets {:>5}  messages {:>6}  deliveries {:>7}  broadcasts {:>6}  tracks {:>6}  sign-ins {:>5}  refreshes {:>5}  errors {}",
            s.elapsed.as_secs(),
            s.rss_kib as f64 / 1024.0,
            s.fds,
            s.connections,
            s.messages_sent,
            s.deliveries,
            s.broadcasts_sent,
            s.presence_tracks,
            s.sign_ins,
            s.refreshes,
            s.errors
        );
        samples.push(s);
        soak::write(&soak.cfg.out, &soak.cfg.stem, &samples, warm_up, &title)?;
        if started.elapsed() >= soak.cfg.run {
            break;
        }
    }
    // Traffic stops first; deliveries in flight arrive; then the sockets close.
    let _ = quiet_tx.send(true);
    for t in traffic {
        let _ = t.await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _ = stop_tx.send(true);
    for s in sockets {
        let _ = s.await;
    }
    let verdict = soak::verdict(&samples, warm_up, GROWTH_LIMIT_PERCENT);
    let c = &soak.counters;
    let summary = json!({
        "connections": n,
        "users": soak.users.len(),
        "run_secs": soak.cfg.run.as_secs(),
        "warm_up_secs": warm_up.as_secs(),
        "samples": samples.len(),
        "messages_sent": get(&c.messages_sent),
        "deliveries": get(&c.deliveries),
        "deliveries_expected": get(&c.deliveries_expected),
        "broadcasts_sent": get(&c.broadcasts_sent),
        "broadcasts_received": get(&c.broadcasts_received),
        "presence_tracks": get(&c.presence_tracks),
        "sign_ins": get(&c.sign_ins),
        "refreshes": get(&c.refreshes),
        "errors": get(&c.errors),
        "sockets_lost": get(&c.sockets_lost),
        "channels_errored": get(&c.channels_errored),
        "rss_kib": {"after_warm_up": verdict.rss.after_warm_up, "at_end": verdict.rss.at_end, "max": verdict.rss.max, "growth_percent": verdict.rss.percent()},
        "fds": {"after_warm_up": verdict.fds.after_warm_up, "at_end": verdict.fds.at_end, "max": verdict.fds.max, "growth_percent": verdict.fds.percent()},
        "limit_percent": verdict.limit,
        "passed": verdict.passed(),
    });
    std::fs::write(soak.cfg.out.join(format!("{}.json", soak.cfg.stem)), serde_json::to_string_pretty(&summary)? + "\n")?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    println!(
        "verdict: RSS {:+.1} % ({:.1} → {:.1} MiB), descriptors {:+.1} % ({:.0} → {:.0}) after warm-up; limit {} %: {}",
        verdict.rss.percent(),
        verdict.rss.after_warm_up / 1024.0,
        verdict.rss.at_end / 1024.0,
        verdict.fds.percent(),
        verdict.fds.after_warm_up,
        verdict.fds.at_end,
        verdict.limit,
        if verdict.passed() { "PASSED" } else { "FAILED" }
    );
    Ok(verdict.passed())
}

fn main() -> Result<()> {
    let cfg = Config::from_env()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let passed = runtime.block_on(run(cfg))?;
    runtime.shutdown_timeout(Duration::from_secs(5));
    if !passed {
        std::process::exit(1);
    }
    Ok(())
}
