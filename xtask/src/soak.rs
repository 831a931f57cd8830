//! `cargo xtask soak [minutes]` — the long convergence run (default 30 minutes).
//! `cargo xtask soak connections [--minutes N] [--connections N] [--auth N]` — the
//! connection soak (default 30 minutes, 1,000 websockets, 10,000 sign-ins and refreshes).
//!
//! The same run as the short `cargo test -p werkfunk-faults --test convergence`, for longer:
//! `werkfunk-cli` clients through the fault proxy while the server is killed with SIGKILL and
//! restarted, Postgres restarts, connections are cut, reset, stalled and slowed, clients are
//! killed mid-outbox and stopped past their heartbeat. It stops by itself (the run's length,
//! plus at most 15 minutes for set-up and checks, after which it is killed). The seed is
//! printed; `WERKFUNK_FAULTS_SEED=<seed> cargo xtask soak <minutes>` replays the plan. The
//! figures go to `target/reliability/soak.json`, the numbers RELIABILITY.md quotes.
//!
//! The connection soak: one release `werkfunk-server` over its own database in a throwaway
//! cluster, and the `werkfunk-soak` load generator (crates/faults) against it on loopback
//! with steady traffic; it samples the server's RSS and open descriptors every 10 s into
//! `docs/soak/connections.{csv,svg,json}` and prints the verdict (no growth beyond 10 %
//! after warm-up). The server, the load generator and the cluster are stopped on every path.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use werkfunk_testkit::cluster::Cluster;

use crate::bench::with_open_files_raised;
use crate::process::{self, Guarded};
use crate::test::{create_database, start_server_via, target_dir};

const SECRET: &str = "werkfunk-soak-secret-0123456789-abcdefghijklmn";

pub fn run(args: &[String]) -> Result<()> {
    if args.first().is_some_and(|a| a == "connections") {
        return connections(&args[1..]);
    }
    let minutes: u64 = match args.first() {
        Some(m) => m.parse().with_context(|| format!("minutes expected, got {m:?}"))?,
        None => 30,
    };
    let root = crate::root();
    let out_dir = root.join("target").join("reliability");
    std::fs::create_dir_all(&out_dir)?;
    let report = out_dir.join("soak.json");
    let _ = std::fs::remove_file(&report);
    println!("soak: {minutes} minutes of faults, then the checks; report to {}", report.display());
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&root)
        .args(["test", "-p", "werkfunk-faults", "--test", "convergence", "--", "--nocapture", "--test-threads", "1"])
        .env("WERKFUNK_FAULTS_SECS", (minutes * 60).to_string())
        .env("WERKFUNK_FAULTS_REPORT", &report);
    let mut child = cmd.spawn().context("starting the soak run")?;
    let limit = Duration::from_secs(minutes * 60 + 15 * 60);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > limit {
            // SIGTERM first (the test binary's children die with it), then SIGKILL.
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            std::thread::sleep(Duration::from_secs(10));
            let _ = child.kill();
            let _ = child.wait();
            bail!("the soak run did not finish within {} minutes and was stopped", limit.as_secs() / 60);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    match std::fs::read_to_string(&report) {
        Ok(json) => println!("soak figures ({}):\n{json}", report.display()),
        Err(_) => println!("soak: no report was written (the run failed before its checks)"),
    }
    if !status.success() {
        bail!("the soak run found broken promises or failed ({status}); its seed is printed above");
    }
    Ok(())
}

/// The value after `--name`, parsed, or `default`.
fn option(args: &[String], name: &str, default: u64) -> Result<u64> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => {
            let v = args.get(i + 1).with_context(|| format!("{name} needs a number"))?;
            v.parse().with_context(|| format!("{name}: a number expected, got {v:?}"))
        }
    }
}

fn connections(args: &[String]) -> Result<()> {
    let minutes = option(args, "--minutes", 30)?;
    let connections = option(args, "--connections", 1000)?;
    let auth = option(args, "--auth", 10_000)?;
    if let Some(unknown) =
        args.iter().find(|a| a.starts_with("--") && !["--minutes", "--connections", "--auth"].contains(&a.as_str()))
    {
        bail!("unknown option {unknown}; known: --minutes, --connections, --auth");
    }
    eprintln!("building the release server and the load generator…");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    process::run(
        "cargo build --release -p werkfunk-server",
        Command::new(&cargo)
            .args(["build", "--release", "-p", "werkfunk-server", "--bin", "werkfunk-server"])
            .current_dir(crate::root()),
    )?;
    process::run(
        "cargo build -p werkfunk-faults --bin werkfunk-soak",
        Command::new(&cargo).args(["build", "-p", "werkfunk-faults", "--bin", "werkfunk-soak"]).current_dir(crate::root()),
    )?;
    let server_bin = target_dir().join("release").join("werkfunk-server");
    let soak_bin = target_dir().join("debug").join("werkfunk-soak");

    let cluster = Cluster::start_temporary().context("starting the soak's cluster")?;
    create_database(&cluster, "werkfunk_soak")?;
    let mut server = start_server_via(
        with_open_files_raised(&server_bin),
        &server_bin,
        &cluster,
        "werkfunk_soak",
        SECRET,
        process::free_port()?,
        &[],
    )?;
    let pid = server.guard.id();
    eprintln!(
        "soak: release server pid {pid} at {}; {connections} websockets for {minutes} minutes, {auth} sign-ins and refreshes",
        server.url
    );
    let out = crate::root().join("docs").join("soak");
    let mut load = Guarded::spawn(
        "werkfunk-soak",
        with_open_files_raised(&soak_bin)
            .env("WERKFUNK_SOAK_URL", &server.url)
            .env("WERKFUNK_SOAK_ANON_KEY", &server.anon_key)
            .env("WERKFUNK_SOAK_SERVER_PID", pid.to_string())
            .env("WERKFUNK_SOAK_SECS", (minutes * 60).to_string())
            .env("WERKFUNK_SOAK_CONNECTIONS", connections.to_string())
            .env("WERKFUNK_SOAK_AUTH_OPS", auth.to_string())
            .env("WERKFUNK_SOAK_OUT", &out)
            .env("WERKFUNK_SOAK_STEM", "connections"),
    )?;
    // The run's length, plus set-up (sign-ups, joins) and the end; then it is stopped.
    let limit = Duration::from_secs(minutes * 60 + 10 * 60);
    let started = Instant::now();
    let passed = loop {
        if let Some(status) = load.try_wait()? {
            break status.success();
        }
        if started.elapsed() > limit {
            load.stop();
            bail!("the connection soak did not finish within {} minutes and was stopped", limit.as_secs() / 60);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let stopped = server.guard.stop();
    drop(cluster);
    eprintln!(
        "soak: figures in {}; the server stopped on SIGTERM with exit code 0: {}",
        out.display(),
        if stopped { "yes" } else { "NO" }
    );
    if !passed {
        bail!("the connection soak failed (see its verdict above)");
    }
    Ok(())
}
