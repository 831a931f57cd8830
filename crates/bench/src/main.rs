//! `werkfunk-bench`: the load generator behind `cargo xtask bench`.
//!
//! `cargo xtask bench` starts a throwaway Postgres and a release `werkfunk-server` process,
//! then runs this binary against them. Each benchmark measures the server and, in the same
//! run, a baseline that does the same work minus the part being measured (the same SQL
//! through sqlx under the same role and claims; a bare LISTEN/NOTIFY round trip; a bare
//! websocket fan-out server). The figures are written as Markdown to `WERKFUNK_BENCH_OUT`;
//! xtask puts them into BENCHMARKS.md with the machine they ran on.
//!
//! - `werkfunk-bench rest`: `POST /rest/v1/messages` and the seed's message-list query.
//! - `werkfunk-bench realtime`: idle-connection memory, INSERT → subscriber latency,
//!   postgres_changes deliveries at saturation, broadcast fan-out.
//! - `werkfunk-bench fanout-server <port>`: the bare tokio-tungstenite baseline server
//!   (started by `realtime` as a child process).
//!
//! Timings are figures to read, never pass/fail thresholds.

mod fanout;
mod realtime;
mod rest;
mod stats;
mod ws;

use anyhow::{Context, Result};
use serde_json::json;
use uuid::Uuid;
use werkfunk_server::jwt::Keys;

/// What xtask hands over (environment variables).
#[derive(Clone)]
pub struct Env {
    /// `http://127.0.0.1:<port>` of the server under test.
    pub url: String,
    pub anon_key: String,
    /// A superuser URL of the server's database (seeding, baselines).
    pub database_url: String,
    pub keys: Keys,
    /// The server's JWT secret (as its configuration takes it).
    pub secret: String,
    /// The server process (CPU time, RSS).
    pub server_pid: u32,
    /// The cluster's folder (its `data/postmaster.pid`, for Postgres's CPU time).
    pub pg_dir: Option<String>,
    pub out: String,
    /// Smaller counts, for trying the benchmark out (marked as such in the output).
    pub quick: bool,
}

impl Env {
    fn from_env() -> Result<Env> {
        let var = |k: &str| std::env::var(k).with_context(|| format!("{k} is not set (run through `cargo xtask bench`)"));
        Ok(Env {
            url: var("WERKFUNK_BENCH_URL")?,
            anon_key: var("WERKFUNK_BENCH_ANON_KEY")?,
            database_url: var("WERKFUNK_BENCH_DATABASE_URL")?,
            keys: Keys::new(&var("WERKFUNK_BENCH_JWT_SECRET")?),
            secret: var("WERKFUNK_BENCH_JWT_SECRET")?,
            server_pid: var("WERKFUNK_BENCH_SERVER_PID")?.parse().context("WERKFUNK_BENCH_SERVER_PID")?,
            pg_dir: std::env::var("WERKFUNK_BENCH_PG_DIR").ok(),
            out: var("WERKFUNK_BENCH_OUT")?,
            quick: std::env::var("WERKFUNK_BENCH_QUICK").is_ok_and(|v| v == "1"),
        })
    }

    /// `n`, or a tenth of it in a quick run.
    pub fn scale(&self, n: usize) -> usize {
        if self.quick {
            (n / 10).max(1)
        } else {
            n
        }
    }

    pub fn ws_url(&self) -> String {
        format!("{}/realtime/v1/websocket?apikey={}&vsn=2.0.0", self.url.replacen("http", "ws", 1), self.anon_key)
    }
}

/// An access token for `user` in `session` (a row of `auth.sessions`) as `/auth/v1` signs it,
/// and the claims JSON the server hands to Postgres for it (what the baselines set with
/// `set_config`).
pub fn member_token(keys: &Keys, user: Uuid, session: Uuid, email: &str) -> (String, String) {
    let now = werkfunk_server::jwt::now();
    let claims = json!({
        "iss": "werkfunk/auth/v1",
        "sub": user,
        "aud": "authenticated",
        "exp": now + 3 * 3600,
        "iat": now,
        "email": email,
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {},
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": now}],
        "session_id": session,
        "is_anonymous": false,
    });
    (keys.sign(&claims), claims.to_string())
}

/// The claims JSON of a token, exactly as the server passes it to `request.jwt.claims`.
pub fn claims_of(keys: &Keys, token: &str) -> Result<String> {
    let verified = keys.verify(token, werkfunk_server::jwt::now()).map_err(|e| anyhow::anyhow!("token: {e}"))?;
    Ok(verified.claims_json)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match args.first().map(String::as_str) {
        Some("fanout-server") => {
            let port: u16 = args.get(1).context("fanout-server <port>")?.parse()?;
            runtime.block_on(fanout::serve(port))
        }
        Some(which @ ("rest" | "realtime")) => {
            let env = Env::from_env()?;
            let markdown = runtime.block_on(async {
                match which {
                    "rest" => rest::run(&env).await,
                    _ => realtime::run(&env).await,
                }
            })?;
            std::fs::write(&env.out, markdown).with_context(|| format!("writing {}", env.out))?;
            Ok(())
        }
        _ => anyhow::bail!("usage: werkfunk-bench <rest|realtime|fanout-server PORT> (run through `cargo xtask bench`)"),
    }
}
