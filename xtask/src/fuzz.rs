//! `cargo xtask fuzz [target|all] [seconds]` — the cargo-fuzz targets under `fuzz/`, each for
//! a bounded time (default: all targets, 60 s each).
//!
//! Targets: `rest_query` (PostgREST query string → SQL: no panic, values only as binds),
//! `phoenix_frames` (v1/v2 text and binary frames), `jwt_verify`, `engine_realtime`. The
//! properties live in `werkfunk_faults::fuzzing`.
//!
//! cargo-fuzz needs nightly compiler features: a nightly toolchain when `rustup run nightly`
//! finds one, else the stable one with `RUSTC_BOOTSTRAP=1`. cargo-fuzz is installed when
//! missing. Builds are unoptimised and without a sanitizer (the workspace forbids `unsafe`):
//! they compile in minutes on two cores. New inputs go to `target/fuzz-corpus/<target>`
//! (the committed `fuzz/corpus/<target>` is read, not grown); crashes to
//! `fuzz/artifacts/<target>/` — copy each into `fuzz/regressions/<target>/`, where
//! `cargo test -p werkfunk-faults --test fuzz_corpus` keeps replaying it. Figures go to
//! `target/reliability/fuzz.json`.

use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::json;

pub const TARGETS: [&str; 4] = ["rest_query", "phoenix_frames", "jwt_verify", "engine_realtime"];

fn has_nightly() -> bool {
    Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn has_cargo_fuzz() -> bool {
    Command::new("cargo")
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// `cargo [+nightly] fuzz`, or `cargo fuzz` with `RUSTC_BOOTSTRAP=1`.
fn cargo_fuzz(nightly: bool) -> Command {
    let mut c = Command::new("cargo");
    if nightly {
        c.arg("+nightly");
    } else {
        c.env("RUSTC_BOOTSTRAP", "1");
    }
    c.arg("fuzz");
    c
}

pub fn run(args: &[String]) -> Result<()> {
    let which = args.first().map(String::as_str).unwrap_or("all");
    let seconds: u64 = match args.get(1) {
        Some(s) => s.parse().with_context(|| format!("seconds expected, got {s:?}"))?,
        None => 60,
    };
    let targets: Vec<&str> = if which == "all" {
        TARGETS.to_vec()
    } else if TARGETS.contains(&which) {
        vec![which]
    } else {
        bail!("unknown fuzz target {which:?}; one of {TARGETS:?} or all");
    };
    if !has_cargo_fuzz() {
        println!("fuzz: installing cargo-fuzz");
        crate::process::run("cargo install cargo-fuzz", Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    let nightly = has_nightly();
    println!("fuzz: {} toolchain", if nightly { "nightly" } else { "stable with RUSTC_BOOTSTRAP=1" });
    let root = crate::root();
    let fuzz_dir = root.join("fuzz");
    // A target folder of its own: instrumented builds must not evict the workspace's.
    let target_dir =
        std::env::var("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| root.join("target")).join("fuzz");
    let mut summary = Vec::new();
    for t in &targets {
        let scratch = root.join("target").join("fuzz-corpus").join(t);
        let artifacts = fuzz_dir.join("artifacts").join(t);
        std::fs::create_dir_all(&scratch)?;
        std::fs::create_dir_all(&artifacts)?;
        let before = std::fs::read_dir(&artifacts).map(|d| d.count()).unwrap_or(0);
        println!("fuzz: {t} for {seconds} s");
        let out = cargo_fuzz(nightly)
            .current_dir(&fuzz_dir)
            .env("CARGO_TARGET_DIR", &target_dir)
            .args(["run", "--dev", "-s", "none", t])
            .arg(&scratch)
            .arg(fuzz_dir.join("corpus").join(t))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg("-rss_limit_mb=2048")
            .arg("-timeout=10")
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped())
            .output()
            .with_context(|| format!("running cargo fuzz for {t}"))?;
        let log = String::from_utf8_lossy(&out.stderr);
        // libFuzzer ends with "Done <n> runs in <s> second(s)".
        let runs: u64 = log
            .lines()
            .filter_map(|l| l.strip_prefix("Done ").and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse().ok()))
            .next_back()
            .unwrap_or(0);
        let crashes = std::fs::read_dir(&artifacts).map(|d| d.count()).unwrap_or(0).saturating_sub(before);
        // No run and no crash: the target did not build (or libFuzzer did not start).
        let built = runs > 0 || crashes > 0 || log.contains("INFO: Seed:");
        if !out.status.success() && crashes == 0 {
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        println!("fuzz: {t}: {runs} executions, {crashes} new crashes{}", if built { "" } else { " (did not build)" });
        summary.push(json!({
            "target": t, "seconds": seconds, "executions": runs, "crashes": crashes,
            "built": built, "exit_ok": out.status.success(),
        }));
    }
    let out_dir = root.join("target").join("reliability");
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(out_dir.join("fuzz.json"), serde_json::to_string_pretty(&summary)? + "\n")?;
    println!("fuzz: summary in {}", out_dir.join("fuzz.json").display());
    if summary.iter().any(|s| s["crashes"].as_u64().unwrap_or(0) > 0 || s["exit_ok"] == json!(false)) {
        bail!("a fuzz target crashed: see fuzz/artifacts/, and keep each crash under fuzz/regressions/<target>/");
    }
    Ok(())
}
