//! `cargo bench -p werkfunk-core --bench core` (wired as `cargo xtask bench core`): the
//! engine's figures, each beside a baseline that does the same work minus the part measured.
//!
//! - catch-up of 10,000 new messages (real server, real SQLite) vs. fetching the same pages
//!   over REST without storing them;
//! - drain of 1,000 queued messages vs. the same 1,000 POSTs without the outbox;
//! - reads while a catch-up writes: p50/p99 of `conversations()` and of opening a
//!   conversation (`timeline(conv, 50)`) while a 10,000-message catch-up runs, beside the same
//!   reads with nothing else running (the store's reader pool beside its writer);
//! - open a conversation: the newest 50 of 1,000,000 cached messages;
//! - full-text search over 1,000,000 cached messages, ranking every match, beside the same
//!   queries on the index as it was before (a size per message): ranking the newest 500
//!   matches, and ranking every match.
//!
//! Prints one Markdown table on stdout. `WERKFUNK_BENCH_QUICK=1` makes a small run;
//! `WERKFUNK_BENCH_ONLY=drain` (or `catch-up`, `reads`, `cache`, comma-separated) a partial one.

use std::time::{Duration, Instant};

use chrono::{Duration as ChronoDuration, Utc};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use uuid::Uuid;
use werkfunk_core::{Engine, ServerConfig, Store};
use werkfunk_protocol::rows;
use werkfunk_testkit::TestServer;

const WORDS: &[&str] = &[
    "Fliesen",
    "Fließenleger",
    "Bad",
    "Küche",
    "Termin",
    "morgen",
    "Angebot",
    "Rechnung",
    "Heizung",
    "Dach",
    "Ziegel",
    "Estrich",
    "Maler",
    "Fenster",
    "Tür",
    "Boden",
    "Parkett",
    "Wasserhahn",
    "Dusche",
    "Armatur",
    "Material",
    "Lieferung",
    "Baustelle",
    "Gerüst",
    "Kostenvoranschlag",
    "Mittwoch",
    "Freitag",
    "Uhr",
    "kommen",
    "später",
    "Handwerker",
    "Elektriker",
    "Steckdose",
    "Leitung",
    "Wand",
    "Decke",
    "Farbe",
    "weiß",
    "grau",
    "Silikon",
];

fn quick() -> bool {
    std::env::var_os("WERKFUNK_BENCH_QUICK").is_some()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

struct Row {
    name: String,
    result: String,
    baseline: String,
    aim: &'static str,
}

/// `WERKFUNK_BENCH_ONLY=catch-up,drain,cache` runs a subset.
fn wanted(name: &str) -> bool {
    std::env::var("WERKFUNK_BENCH_ONLY").map_or(true, |only| only.split(',').any(|n| n.trim() == name))
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut rows = Vec::new();
    rt.block_on(async {
        if wanted("catch-up") {
            rows.push(catch_up().await);
        }
        if wanted("reads") {
            rows.extend(reads_under_catch_up().await);
        }
        if wanted("drain") {
            rows.push(drain().await);
        }
        if wanted("cache") {
            rows.extend(cache_figures().await);
        }
    });
    println!("| benchmark | result | baseline | aim |");
    println!("|---|---|---|---|");
    for r in rows {
        println!("| {} | {} | {} | {} |", r.name, r.result, r.baseline, r.aim);
    }
}

async fn engine(server: &TestServer, email: &str, password: &str, dir: &std::path::Path) -> Engine {
    let config = ServerConfig { url: server.url.clone(), anon_key: server.anon_key.clone() };
    Engine::sign_in(dir, &config, email, password).await.unwrap()
}

async fn catch_up() -> Row {
    let n: i64 = if quick() { 1_000 } else { 10_000 };
    let server = TestServer::start().await;
    let alice = server.signup("Alice", "tradesperson").await;
    let bob = server.signup("Bob", "customer").await;
    let conv = server.conversation("direct", None, &alice, &[&bob]).await;
    let dir = tempfile::tempdir().unwrap();
    let b = engine(&server, &bob.email, &bob.password, dir.path()).await;
    b.catch_up().await.unwrap();
    sqlx::query(
        "insert into messages (conversation_id, sender_id, content)
         select $1, $2, 'Nachricht ' || g from generate_series(1, $3) g",
    )
    .bind(conv)
    .bind(alice.id)
    .bind(n)
    .execute(server.db.pool())
    .await
    .unwrap();

    // Baseline: the same pages over REST, not stored.
    let t = Instant::now();
    let mut after: Option<(String, String)> = None;
    let mut got = 0;
    loop {
        let mut q = vec![
            ("select", "*".to_owned()),
            ("conversation_id", format!("eq.{conv}")),
            ("order", "updated_at.asc,id.asc".into()),
            ("limit", "1000".into()),
        ];
        if let Some((t, id)) = &after {
            q.push(("or", format!("(updated_at.gt.{t},and(updated_at.eq.{t},id.gt.{id}))")));
        }
        let page: Vec<Value> = server
            .request(reqwest::Method::GET, "/rest/v1/messages", Some(&bob))
            .query(&q)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        got += page.len();
        if page.len() < 1000 {
            break;
        }
        let last = page.last().unwrap();
        let ts: chrono::DateTime<Utc> = last["updated_at"].as_str().unwrap().parse().unwrap();
        after = Some((werkfunk_core::store::ts(ts), last["id"].as_str().unwrap().to_owned()));
    }
    let baseline = t.elapsed();
    assert_eq!(got as i64, n);

    let t = Instant::now();
    let (received, changed) = b.catchup().messages(conv).await.unwrap();
    let took = t.elapsed();
    assert_eq!(changed as i64, n);
    assert!(received as i64 >= n);
    server.stop().await;
    Row {
        name: format!("catch-up of {n} messages"),
        result: ms(took),
        baseline: format!("{} (REST pages only)", ms(baseline)),
        aim: "≤ 1 s for 10,000",
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn p50_p99(mut v: Vec<Duration>) -> String {
    v.sort();
    format!("p50 {} / p99 {} ({} reads)", ms(percentile(&v, 0.5)), ms(percentile(&v, 0.99)), v.len())
}

/// The list and an open conversation, read through the engine's async API while a catch-up
/// of 10,000 messages writes, beside the same reads on an idle engine.
async fn reads_under_catch_up() -> Vec<Row> {
    let n: i64 = if quick() { 1_000 } else { 10_000 };
    let server = TestServer::start().await;
    let alice = server.signup("Alice", "tradesperson").await;
    let bob = server.signup("Bob", "customer").await;
    let conv = server.conversation("direct", None, &alice, &[&bob]).await;
    // A list of realistic length: 30 more conversations with a few messages each.
    let mut others = Vec::new();
    for i in 0..30 {
        let u = server.signup(&format!("Kunde {i}"), "customer").await;
        let c = server.conversation("direct", None, &bob, &[&u]).await;
        others.push(c);
    }
    for c in &others {
        sqlx::query("insert into messages (conversation_id, sender_id, content) select $1, $2, 'Hallo ' || g from generate_series(1, 20) g")
            .bind(c)
            .bind(bob.id)
            .execute(server.db.pool())
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let b = engine(&server, &bob.email, &bob.password, dir.path()).await;
    b.catch_up().await.unwrap();
    let open = others[0];

    // Baseline: nothing else running.
    let (mut list_idle, mut open_idle) = (Vec::new(), Vec::new());
    for _ in 0..300 {
        let t = Instant::now();
        assert!(!b.conversations().await.unwrap().is_empty());
        list_idle.push(t.elapsed());
        let t = Instant::now();
        assert!(!b.timeline(open, 50).await.unwrap().is_empty());
        open_idle.push(t.elapsed());
    }

    sqlx::query(
        "insert into messages (conversation_id, sender_id, content)
         select $1, $2, 'Nachricht ' || g from generate_series(1, $3) g",
    )
    .bind(conv)
    .bind(alice.id)
    .bind(n)
    .execute(server.db.pool())
    .await
    .unwrap();
    // The catch-up of the new messages runs as its own task; the reads go on beside it.
    let b = std::sync::Arc::new(b);
    let catching_up = {
        let b = b.clone();
        tokio::spawn(async move { b.catch_up().await.unwrap() })
    };
    let (mut list_busy, mut open_busy) = (Vec::new(), Vec::new());
    while !catching_up.is_finished() {
        let t = Instant::now();
        assert!(!b.conversations().await.unwrap().is_empty());
        list_busy.push(t.elapsed());
        let t = Instant::now();
        assert!(!b.timeline(open, 50).await.unwrap().is_empty());
        open_busy.push(t.elapsed());
    }
    let report = catching_up.await.unwrap();
    assert!(report.changed as i64 >= n);
    server.stop().await;
    vec![
        Row {
            name: format!("`conversations()` (31 rows) during a catch-up of {n}"),
            result: p50_p99(list_busy),
            baseline: format!("{} (idle)", p50_p99(list_idle)),
            aim: "p99 ≤ 5 ms",
        },
        Row {
            name: format!("open a conversation (`timeline`, 50) during a catch-up of {n}"),
            result: p50_p99(open_busy),
            baseline: format!("{} (idle)", p50_p99(open_idle)),
            aim: "p99 ≤ 5 ms",
        },
    ]
}

async fn drain() -> Row {
    let n = if quick() { 200 } else { 1_000 };
    let server = TestServer::start().await;
    let alice = server.signup("Alice", "tradesperson").await;
    let bob = server.signup("Bob", "customer").await;
    let conv = server.conversation("direct", None, &alice, &[&bob]).await;

    // Baseline: the same idempotent POSTs, one after the other, without the outbox.
    let t = Instant::now();
    for i in 0..n {
        let resp = server
            .request(reqwest::Method::POST, "/rest/v1/messages?on_conflict=id&select=*", Some(&alice))
            .header("prefer", "return=representation,resolution=ignore-duplicates")
            .json(&json!({"id": Uuid::now_v7(), "conversation_id": conv, "content": format!("Basis {i}"), "type": "text"}))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
    }
    let baseline = t.elapsed();

    let dir = tempfile::tempdir().unwrap();
    let a = engine(&server, &alice.email, &alice.password, dir.path()).await;
    for i in 0..n {
        a.send(conv, &format!("Nachricht {i}")).await.unwrap();
    }
    let t = Instant::now();
    let outcome = a.deliver(conv, tokio::time::Instant::now() + Duration::from_secs(600)).await.unwrap();
    let took = t.elapsed();
    assert_eq!(outcome, werkfunk_core::DrainOutcome::Empty);
    server.stop().await;
    Row {
        name: format!("drain of {n} queued messages"),
        result: ms(took),
        baseline: format!("{} (same POSTs, no outbox)", ms(baseline)),
        aim: "≤ 2 s for 1,000",
    }
}

async fn cache_figures() -> Vec<Row> {
    let n: usize = if quick() { 100_000 } else { 1_000_000 };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let conv = Uuid::now_v7();
    let others: Vec<Uuid> = (0..9).map(|_| Uuid::now_v7()).collect();
    let sender = Uuid::now_v7();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let start = Utc::now() - ChronoDuration::days(365);
    let fill = Instant::now();
    let batch = 10_000;
    for b in 0..n / batch {
        let msgs: Vec<rows::Message> = (0..batch)
            .map(|i| {
                let k = b * batch + i;
                let words: Vec<&str> = (0..8).map(|_| WORDS[rng.gen_range(0..WORDS.len())]).collect();
                let at = start + ChronoDuration::milliseconds(k as i64 * 20);
                // Half the cache is the open conversation, the rest spread over nine others.
                let c = if k % 2 == 0 { conv } else { others[k % 9] };
                rows::Message {
                    id: Uuid::now_v7(),
                    conversation_id: c,
                    sender_id: sender,
                    content: format!("Nachricht {k}: {}", words.join(" ")),
                    kind: "text".into(),
                    attachments: json!([]),
                    meta: json!({}),
                    created_at: at,
                    updated_at: at,
                    deleted_at: None,
                }
            })
            .collect();
        store.upsert_messages(&msgs).await.unwrap();
    }
    eprintln!("filled {n} messages in {:?}", fill.elapsed());

    let runs = 200;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let page = store.messages_before(conv, None, 50).await.unwrap();
        times.push(t.elapsed());
        assert_eq!(page.len(), 50);
    }
    let open = Row {
        name: format!("open conversation: newest 50 of {n} cached"),
        result: format!("{} median", ms(median(times))),
        baseline: "—".into(),
        aim: "≤ 2 ms",
    };

    let queries = ["Fliesen", "kostenvoranschlag freitag", "fliessenleger", "Armatur Silikon grau", "Baustelle Gerüst Lieferung"];
    let mut times = Vec::new();
    for _ in 0..20 {
        for q in queries {
            let t = Instant::now();
            let hits = store.search(q, 50).await.unwrap();
            times.push(t.elapsed());
            assert!(!hits.is_empty(), "{q}");
        }
    }
    let (window, sized) = earlier_search(dir.path(), &queries);
    // The same searches once FTS5 has merged the index into one segment ('optimize').
    {
        let c = rusqlite::Connection::open(dir.path().join(werkfunk_core::store::CACHE_FILE)).unwrap();
        let t = Instant::now();
        c.execute("insert into messages_fts (messages_fts) values ('optimize')", []).unwrap();
        eprintln!("optimized the index in {:?}", t.elapsed());
    }
    let mut optimized = Vec::new();
    for _ in 0..20 {
        for q in queries {
            let t = Instant::now();
            assert!(!store.search(q, 50).await.unwrap().is_empty());
            optimized.push(t.elapsed());
        }
    }
    let search = Row {
        name: format!("full-text search over {n} (the 50 best by rank over every match)"),
        result: format!("{} median, {} worst", ms(median(times.clone())), ms(*times.iter().max().unwrap())),
        baseline: format!(
            "earlier index (a size per message), same data: ranking the newest 500 matches {} median; \
             ranking every match {} median",
            ms(median(window)),
            ms(median(sized))
        ),
        aim: "≤ 30 ms",
    };
    let merged = Row {
        name: format!("the same search after FTS5 `optimize` (one index segment; {n})"),
        result: format!("{} median, {} worst", ms(median(optimized.clone())), ms(*optimized.iter().max().unwrap())),
        baseline: "—".into(),
        aim: "≤ 30 ms",
    };
    vec![open, search, merged]
}

/// The same queries against the index as it was before cache migration 4 (contentless, with a
/// size per message), built beside the cache from the same messages: (ranking the newest 500
/// matches, as the previous build did; ranking every match). FTS part only, per query.
fn earlier_search(dir: &std::path::Path, queries: &[&str]) -> (Vec<Duration>, Vec<Duration>) {
    let c = rusqlite::Connection::open(dir.join(werkfunk_core::store::CACHE_FILE)).unwrap();
    let earlier = dir.join("earlier-index.sqlite3");
    c.execute("attach database ?1 as earlier", [earlier.to_str().unwrap()]).unwrap();
    let t = Instant::now();
    c.execute_batch(
        "create virtual table earlier.fts using fts5(content, content = '', contentless_delete = 1,
           tokenize = 'unicode61 remove_diacritics 2');",
    )
    .unwrap();
    // In transactions of 10,000 rows, as the cache's own index was filled (FTS5 merges its
    // segments as it goes; one big insert would leave a better-merged index than the cache's).
    let max: i64 = c.query_row("select max(rowid) from main.messages", [], |r| r.get(0)).unwrap();
    for from in (0..=max).step_by(10_000) {
        c.execute(
            "insert into earlier.fts (rowid, content)
             select rowid, replace(replace(content, 'ß', 'ss'), 'ẞ', 'SS') from main.messages
             where rowid > ?1 and rowid <= ?1 + 10000",
            [from],
        )
        .unwrap();
    }
    eprintln!("built the earlier index in {:?}", t.elapsed());
    let (mut window, mut sized) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        for q in queries {
            let fts = werkfunk_core::store::fts_query(q).unwrap();
            let t = Instant::now();
            let floor: i64 = c
                .query_row(
                    "select rowid from earlier.fts where fts match ?1 order by rowid desc limit 1 offset 499",
                    [&fts],
                    |r| r.get(0),
                )
                .unwrap_or(0);
            let mut s = c
                .prepare_cached("select rowid from earlier.fts where fts match ?1 and rowid >= ?2 order by rank limit 50")
                .unwrap();
            let n = s.query_map(rusqlite::params![fts, floor], |r| r.get::<_, i64>(0)).unwrap().count();
            window.push(t.elapsed());
            assert!(n > 0);
            let t = Instant::now();
            let mut s =
                c.prepare_cached("select rowid from earlier.fts where fts match ?1 order by rank, rowid desc limit 50").unwrap();
            let n = s.query_map([&fts], |r| r.get::<_, i64>(0)).unwrap().count();
            sized.push(t.elapsed());
            assert!(n > 0);
        }
    }
    (window, sized)
}
