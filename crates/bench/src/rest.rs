//! `rest`: `POST /rest/v1/messages` and the seed's message-list query (the 50 newest of
//! 100,000 messages with the embedded sender), each beside the same SQL run directly
//! through sqlx in a transaction under the same role and claims, with the same concurrency.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row};
use uuid::Uuid;
use werkfunk_server::rest::query::Query;
use werkfunk_server::rest::schema::{quote_ident, Schema};
use werkfunk_server::rest::sql::{Bind, Builder};

use crate::stats::{int, ms, ratio, Cpu, CpuProbe, Samples};
use crate::Env;

const SEED: i64 = 100_000;
const WORKERS: usize = 4;

struct Member {
    id: Uuid,
    token: String,
    claims: String,
}

/// One measured phase: latencies, wall time, CPU.
#[derive(Default, Clone)]
struct Phase {
    samples: Samples,
    wall: Duration,
    cpu: Cpu,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.samples.len() as f64 / self.wall.as_secs_f64()
    }

    fn merge(&mut self, other: Phase) {
        self.samples.extend(other.samples);
        self.wall += other.wall;
        self.cpu = Cpu {
            server: self.cpu.server + other.cpu.server,
            bench: self.cpu.bench + other.cpu.bench,
            postgres: self.cpu.postgres + other.cpu.postgres,
        };
    }
}

/// Runs `n` operations on `workers` tasks; `op(i)` is one operation.
async fn phase<F, Fut>(probe: &CpuProbe, workers: usize, n: usize, op: F) -> Result<Phase>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let cpu0 = probe.read();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (op, next) = (op.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<Samples, anyhow::Error>(samples);
                }
                let t = Instant::now();
                op(i).await?;
                samples.push(t.elapsed());
            }
        }));
    }
    let mut samples = Samples::default();
    for t in tasks {
        samples.extend(t.await??);
    }
    let wall = start.elapsed();
    Ok(Phase { samples, wall, cpu: probe.read() - cpu0 })
}

async fn signup(http: &reqwest::Client, env: &Env, name: &str) -> Result<Member> {
    let email = format!("{}-{}@werkfunk.bench", name.to_lowercase(), Uuid::new_v4().simple());
    let resp = http
        .post(format!("{}/auth/v1/signup", env.url))
        .header("apikey", &env.anon_key)
        .json(&json!({"email": email, "password": "Bench-Passwort-1", "data": {"full_name": name, "role": "customer"}}))
        .send()
        .await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    if !status.is_success() {
        bail!("signup failed: {status} {body}");
    }
    let token = body["access_token"].as_str().context("access_token")?.to_owned();
    let id = body["user"]["id"].as_str().context("user id")?.parse()?;
    let claims = crate::claims_of(&env.keys, &token)?;
    Ok(Member { id, token, claims })
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    binds: &'q [Bind],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    for b in binds {
        q = match b {
            Bind::Text(t) => q.bind(t.as_deref()),
            Bind::TextArray(a) => q.bind(a),
        };
    }
    q
}

/// The SQL the server generates for `raw` on `messages` (read path of `rest/mod.rs`:
/// `select_sql` wrapped by `aggregate`), built with the server's own query builder.
fn list_sql(schema: &Schema, raw: &str) -> Result<(String, Vec<Bind>)> {
    let q = Query::parse(raw, &[]).map_err(|e| anyhow::anyhow!("{e}"))?;
    let relation = schema.relations.get("messages").context("messages table")?;
    let mut b = Builder::new(schema);
    let alias = b.alias();
    let err = |e: werkfunk_server::error::Error| anyhow::anyhow!("{e}");
    let list = b.select_list(relation, q.select.as_deref(), &alias).map_err(err)?;
    let inner = b.inner_joins(relation, q.select.as_deref(), &alias).map_err(err)?;
    let filter = b.where_clause(relation, &q.conditions, &alias, inner).map_err(err)?;
    let order = b.order_clause(relation, &q.order, &alias).map_err(err)?;
    let limit = q.limit.context("limit")?;
    let page = format!(" limit {}::bigint", b.bind(Bind::Text(Some(limit.to_string()))));
    let inner = format!("select {list} from public.{} as {alias}{filter}{order}{page}", quote_ident("messages"));
    let sql = format!(
        "select coalesce(json_agg(_r), '[]'::json)::text, (json_agg(_r) -> 0)::text, count(*), null::bigint from ({inner}) _r"
    );
    Ok((sql, b.binds))
}

const SET_CALLER: &str = "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)";

pub async fn run(env: &Env) -> Result<String> {
    let probe = Arc::new(CpuProbe::new(env.server_pid, env.pg_dir.as_deref()));
    let admin = PgPoolOptions::new().max_connections(2).connect(&env.database_url).await?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;

    // Two members (signed up through /auth/v1, as the app does) and their conversation.
    let alice = signup(&http, env, "Alice").await?;
    let bob = signup(&http, env, "Bob").await?;
    let resp = http
        .post(format!("{}/rest/v1/rpc/create_conversation", env.url))
        .header("apikey", &env.anon_key)
        .bearer_auth(&alice.token)
        .json(&json!({"p_type": "direct", "p_title": null, "p_member_ids": [bob.id]}))
        .send()
        .await?;
    let conv: Uuid = resp.json::<Value>().await?.as_str().context("conversation id")?.parse()?;

    // 100,000 messages, every 50th soft-deleted, a second apart; triggers off for the seed.
    let seed_start = Instant::now();
    let seed = env.scale(SEED as usize) as i64;
    {
        let mut tx = admin.begin().await?;
        sqlx::query("set local session_replication_role = replica").execute(&mut *tx).await?;
        sqlx::query(
            "insert into public.messages (conversation_id, sender_id, content, created_at, updated_at, deleted_at)
             select $1, case when g % 2 = 0 then $2 else $3 end, 'Nachricht ' || g || ': Termin am Dienstag passt, ich bringe die Fliesen mit.',
                    now() - g * interval '1 second', now() - g * interval '1 second',
                    case when g % 50 = 0 then now() - g * interval '1 second' end
               from generate_series(1, $4::bigint) g",
        )
        .bind(conv)
        .bind(alice.id)
        .bind(bob.id)
        .bind(seed)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        sqlx::query("analyze public.messages").execute(&admin).await?;
    }
    let seed_time = seed_start.elapsed();
    eprintln!("rest: seeded {seed} messages in {seed_time:.1?}");

    // The baseline's pool is configured as the server's (sqlx, same size): sqlx hands out idle
    // connections in turn, so a pool that has grown spreads the work over more backends. A
    // second baseline uses exactly WORKERS connections.
    let server_pool = werkfunk_server::Config::new(env.database_url.clone(), env.secret.clone())?.pool_size;
    let direct = PgPoolOptions::new()
        .max_connections(server_pool)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&env.database_url)
        .await?;
    let direct4 = PgPoolOptions::new().max_connections(WORKERS as u32).connect(&env.database_url).await?;
    let member = Arc::new(alice);

    // ---- (1) inserts ---------------------------------------------------------------------
    let inserts = env.scale(5_000);
    let insert_sql = {
        let cols = ["conversation_id", "sender_id", "content"].map(quote_ident).join(", ");
        let table = format!("public.{}", quote_ident("messages"));
        format!("insert into {table} ({cols}) select {cols} from json_populate_recordset(null::{table}, $1::json)")
    };
    let body = move |i: usize, m: &Member, via: &str| json!({"conversation_id": conv, "sender_id": m.id, "content": format!("Bench {via} {i}: Ich komme morgen um acht.")});
    let rest_insert = {
        let (http, env, member) = (http.clone(), env.clone(), member.clone());
        move |i: usize| {
            let req = http
                .post(format!("{}/rest/v1/messages", env.url))
                .header("apikey", &env.anon_key)
                .bearer_auth(&member.token)
                .header("prefer", "return=minimal")
                .header("content-type", "application/json")
                .body(body(i, &member, "rest").to_string());
            async move {
                let resp = req.send().await?;
                if resp.status() != reqwest::StatusCode::CREATED {
                    bail!("POST /rest/v1/messages: {} {}", resp.status(), resp.text().await.unwrap_or_default());
                }
                Ok(())
            }
        }
    };
    let sql_insert = |direct: PgPool| {
        let (member, sql) = (member.clone(), insert_sql.clone());
        Arc::new(move |i: usize| {
            let (direct, member, sql) = (direct.clone(), member.clone(), sql.clone());
            // The server wraps the object in an array before binding it.
            let payload = Value::Array(vec![body(i, &member, "sql")]).to_string();
            async move {
                let mut tx = direct.begin().await?;
                sqlx::query(SET_CALLER).bind("authenticated").bind(&member.claims).execute(&mut *tx).await?;
                let done = sqlx::query(&sql).bind(Some(payload.as_str())).execute(&mut *tx).await?;
                anyhow::ensure!(done.rows_affected() == 1, "insert affected {} rows", done.rows_affected());
                tx.commit().await?;
                Ok(())
            }
        })
    };
    let sql_insert4 = sql_insert(direct4.clone());
    let sql_insert = sql_insert(direct.clone());
    let rest_insert = Arc::new(rest_insert);
    // Warm-up (connections, prepared statements), then two interleaved halves each way so
    // that table growth and background work fall on both sides alike.
    {
        let (r, s, s4) = (rest_insert.clone(), sql_insert.clone(), sql_insert4.clone());
        phase(&probe, WORKERS, 200, move |i| r(i)).await?;
        phase(&probe, WORKERS, 200, move |i| s(i)).await?;
        phase(&probe, WORKERS, 200, move |i| s4(i)).await?;
    }
    let (mut rest_ins, mut sql_ins, mut sql_ins4) = (Phase::default(), Phase::default(), Phase::default());
    for _ in 0..2 {
        let r = rest_insert.clone();
        rest_ins.merge(phase(&probe, WORKERS, inserts / 2, move |i| r(i)).await?);
        let s = sql_insert.clone();
        sql_ins.merge(phase(&probe, WORKERS, inserts / 2, move |i| s(i)).await?);
        let s4 = sql_insert4.clone();
        sql_ins4.merge(phase(&probe, WORKERS, inserts / 2, move |i| s4(i)).await?);
    }
    let single = env.scale(500);
    let (mut rest_ins1, mut sql_ins1) = (Phase::default(), Phase::default());
    for _ in 0..2 {
        let r = rest_insert.clone();
        rest_ins1.merge(phase(&probe, 1, single / 2, move |i| r(i)).await?);
        let s = sql_insert.clone();
        sql_ins1.merge(phase(&probe, 1, single / 2, move |i| s(i)).await?);
    }
    eprintln!("rest: inserts done");

    // ---- (2) the message list ------------------------------------------------------------
    let reads = env.scale(2_000);
    let raw = format!("select=*,sender:sender_id(full_name,avatar_url)&conversation_id=eq.{conv}&deleted_at=is.null&order=created_at.desc&limit=50");
    let schema = Schema::load(&admin).await?;
    let (list, binds) = list_sql(&schema, &raw)?;
    let binds = Arc::new(binds);
    let list = Arc::new(list);

    let rest_list = {
        let (http, env, member, raw) = (http.clone(), env.clone(), member.clone(), raw.clone());
        move |_i: usize| {
            let req = http
                .get(format!("{}/rest/v1/messages?{raw}", env.url))
                .header("apikey", &env.anon_key)
                .bearer_auth(&member.token);
            async move {
                let resp = req.send().await?;
                if resp.status() != reqwest::StatusCode::OK {
                    bail!("GET /rest/v1/messages: {} {}", resp.status(), resp.text().await.unwrap_or_default());
                }
                let body = resp.bytes().await?;
                anyhow::ensure!(body.len() > 1000, "short list response");
                Ok(())
            }
        }
    };
    let sql_list = |direct: PgPool| {
        let (member, list, binds) = (member.clone(), list.clone(), binds.clone());
        Arc::new(move |_i: usize| {
            let (direct, member, list, binds) = (direct.clone(), member.clone(), list.clone(), binds.clone());
            async move {
                let mut tx = direct.begin().await?;
                sqlx::query(SET_CALLER).bind("authenticated").bind(&member.claims).execute(&mut *tx).await?;
                let row = bind_all(sqlx::query(&list), &binds).fetch_one(&mut *tx).await?;
                let body: String = row.get(0);
                anyhow::ensure!(body.len() > 1000, "short list result");
                tx.commit().await?;
                Ok(())
            }
        })
    };
    let sql_list4 = sql_list(direct4.clone());
    let sql_list = sql_list(direct.clone());

    // Same answer both ways, byte for byte (nothing is written in between).
    let rest_body = http
        .get(format!("{}/rest/v1/messages?{raw}", env.url))
        .header("apikey", &env.anon_key)
        .bearer_auth(&member.token)
        .send()
        .await?
        .text()
        .await?;
    let sql_body: String = {
        let mut tx = direct.begin().await?;
        sqlx::query(SET_CALLER).bind("authenticated").bind(&member.claims).execute(&mut *tx).await?;
        let row = bind_all(sqlx::query(&list), &binds).fetch_one(&mut *tx).await?;
        row.get(0)
    };
    let same_answer = rest_body == sql_body;
    let rows = serde_json::from_str::<Value>(&rest_body).ok().and_then(|v| v.as_array().map(Vec::len)).unwrap_or(0);
    anyhow::ensure!(rows == 50, "the list returned {rows} rows, not 50: {}", &rest_body[..rest_body.len().min(300)]);

    let rest_list = Arc::new(rest_list);
    {
        let (r, s, s4) = (rest_list.clone(), sql_list.clone(), sql_list4.clone());
        phase(&probe, WORKERS, 100, move |i| r(i)).await?;
        phase(&probe, WORKERS, 100, move |i| s(i)).await?;
        phase(&probe, WORKERS, 100, move |i| s4(i)).await?;
    }
    let (mut rest_rd, mut sql_rd, mut sql_rd4) = (Phase::default(), Phase::default(), Phase::default());
    for _ in 0..2 {
        let r = rest_list.clone();
        rest_rd.merge(phase(&probe, WORKERS, reads / 2, move |i| r(i)).await?);
        let s = sql_list.clone();
        sql_rd.merge(phase(&probe, WORKERS, reads / 2, move |i| s(i)).await?);
        let s4 = sql_list4.clone();
        sql_rd4.merge(phase(&probe, WORKERS, reads / 2, move |i| s4(i)).await?);
    }
    let (mut rest_rd1, mut sql_rd1) = (Phase::default(), Phase::default());
    for _ in 0..2 {
        let r = rest_list.clone();
        rest_rd1.merge(phase(&probe, 1, single / 2, move |i| r(i)).await?);
        let s = sql_list.clone();
        sql_rd1.merge(phase(&probe, 1, single / 2, move |i| s(i)).await?);
    }
    eprintln!("rest: reads done");

    let total: i64 = sqlx::query_scalar("select count(*) from public.messages").fetch_one(&admin).await?;
    direct.close().await;
    direct4.close().await;
    admin.close().await;

    // ---- report ---------------------------------------------------------------------------
    let mut md = String::new();
    let pg = probe.has_postgres();
    md.push_str(&format!(
        "Seed: {} messages in one direct conversation (bulk SQL insert, {:.1} s), every 50th soft-deleted; \
         {WORKERS} concurrent workers on each side; each side's run is split into two interleaved halves \
         (REST, SQL, SQL with {WORKERS} connections, then again) after a warm-up. Baseline: the same SQL through sqlx, one \
         transaction per operation with `{SET_CALLER}` first, role `authenticated` and the same member's claims — what the \
         server runs for the request, minus HTTP, auth and query building — through a sqlx pool configured as the \
         server's ({server_pool} connections at most). \
         \"REST ÷ SQL\" is the cost of the REST path in units of the baseline's: time per operation for rates, \
         latency for latencies.\n\n",
        int(seed as f64),
        seed_time.as_secs_f64()
    ));
    let table = |title: &str, unit: &str, rest: &Phase, sql: &Phase, rest1: &Phase, sql1: &Phase, sql4: &Phase| {
        let mut t =
            format!("#### {title}\n\n| | REST (`werkfunk-server`) | direct SQL (sqlx) | REST ÷ SQL |\n|---|---:|---:|---:|\n");
        t.push_str(&format!(
            "| {unit}/s | {} | {} | {} (time per op) |\n",
            int(rest.rate()),
            int(sql.rate()),
            ratio(sql.rate(), rest.rate())
        ));
        for (name, p) in [("p50 latency", 50.0), ("p99 latency", 99.0)] {
            t.push_str(&format!(
                "| {name} | {} | {} | {} |\n",
                ms(rest.samples.pct(p)),
                ms(sql.samples.pct(p)),
                ratio(rest.samples.pct(p), sql.samples.pct(p))
            ));
        }
        t.push_str(&format!("| operations | {} | {} | |\n", int(rest.samples.len() as f64), int(sql.samples.len() as f64)));
        t.push_str(&format!(
            "| one worker, nothing else in flight ({} ops each way): p50 / p99 | {} / {} | {} / {} | {} / {} |\n",
            int(rest1.samples.len() as f64),
            ms(rest1.samples.pct(50.0)),
            ms(rest1.samples.pct(99.0)),
            ms(sql1.samples.pct(50.0)),
            ms(sql1.samples.pct(99.0)),
            ratio(rest1.samples.pct(50.0), sql1.samples.pct(50.0)),
            ratio(rest1.samples.pct(99.0), sql1.samples.pct(99.0)),
        ));
        t.push_str(&format!(
            "| second baseline, SQL through a pool of exactly {WORKERS} connections: {unit}/s; p50 / p99 | (as above) | {}; {} / {} | {} (time per op); {} / {} |\n",
            int(sql4.rate()),
            ms(sql4.samples.pct(50.0)),
            ms(sql4.samples.pct(99.0)),
            ratio(sql4.rate(), rest.rate()),
            ratio(rest.samples.pct(50.0), sql4.samples.pct(50.0)),
            ratio(rest.samples.pct(99.0), sql4.samples.pct(99.0)),
        ));
        let per_op = |p: &Phase| {
            let n = p.samples.len().max(1) as f64;
            (1e6 * p.cpu.server / n, 1e6 * p.cpu.bench / n, 1e6 * p.cpu.postgres / n)
        };
        let (rs, rb, rp) = per_op(rest);
        let (ss, sb, sp) = per_op(sql);
        t.push_str(&format!(
            "| CPU per operation, {WORKERS} workers: server / load generator / Postgres | {rs:.0} / {rb:.0} / {rp:.0} µs | {ss:.0} / {sb:.0} / {sp:.0} µs | {} (sum) |\n",
            ratio(rs + rb + rp, ss + sb + sp)
        ));
        t.push_str(&format!(
            "\nCPU during the measured runs — REST: {}; SQL: {}.\n\n",
            rest.cpu.describe(rest.wall, pg),
            sql.cpu.describe(sql.wall, pg)
        ));
        t
    };
    md.push_str(&table(
        &format!(
            "`POST /rest/v1/messages` (`Prefer: return=minimal`, one message per request), {} inserts each way",
            int(inserts as f64)
        ),
        "inserts",
        &rest_ins,
        &sql_ins,
        &rest_ins1,
        &sql_ins1,
        &sql_ins4,
    ));
    md.push_str(&format!(
        "Baseline statement: `{insert_sql}` with the JSON array bound as `$1` (every insert fires the schema's triggers on both sides: \
         conversation `updated_at`, a notification for the other member, realtime capture).\n\n"
    ));
    md.push_str(&table(
        &format!(
            "`GET /rest/v1/messages?{}` — the 50 newest of {} with the sender embedded, {} requests each way",
            raw.replace(&conv.to_string(), "<id>"),
            int(seed as f64),
            int(reads as f64)
        ),
        "requests",
        &rest_rd,
        &sql_rd,
        &rest_rd1,
        &sql_rd1,
        &sql_rd4,
    ));
    md.push_str(&format!(
        "REST and SQL returned the same JSON, byte for byte: **{}** ({} rows; {} messages in the table by the end).\n\n\
         <details><summary>Baseline SQL (generated by the server's own query builder)</summary>\n\n```sql\n{}\n```\n\nbinds: {:?}\n</details>\n",
        if same_answer { "yes" } else { "NO" },
        rows,
        int(total as f64),
        list.replace(&conv.to_string(), "<id>"),
        binds.iter().map(|b| match b {
            Bind::Text(t) => t.clone().unwrap_or_default().replace(&conv.to_string(), "<id>"),
            Bind::TextArray(a) => format!("{a:?}"),
        }).collect::<Vec<_>>()
    ));
    Ok(md)
}
