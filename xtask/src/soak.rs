//! `cargo xtask soak [minutes]` — the long convergence run (default 30 minutes).
//!
//! The same run as the short `cargo test -p werkfunk-faults --test convergence`, for longer:
//! `werkfunk-cli` clients through the fault proxy while the server is killed with SIGKILL and
//! restarted, Postgres restarts, connections are cut, reset, stalled and slowed, clients are
//! killed mid-outbox and stopped past their heartbeat. It stops by itself (the run's length,
//! plus at most 15 minutes for set-up and checks, after which it is killed). The seed is
//! printed; `WERKFUNK_FAULTS_SEED=<seed> cargo xtask soak <minutes>` replays the plan. The
//! figures go to `target/reliability/soak.json`, the numbers RELIABILITY.md quotes.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub fn run(args: &[String]) -> Result<()> {
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
