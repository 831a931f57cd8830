//! `cargo xtask test`: every suite, against one throwaway Postgres cluster for the run.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use werkfunk_testkit::cluster::Cluster;

use crate::process::{self, Guarded};
use crate::{root, setup, ui};

/// The secret the Node suites' server signs with (a test value, not a deployment's).
const NODE_SECRET: &str = "werkfunk-node-suite-secret-0123456789abcdef";

pub fn run(args: &[String]) -> Result<()> {
    setup::run()?;
    // Before any cargo build: the app embeds ui/dist at compile time.
    ui::build()?;
    let cluster = Cluster::start_temporary().context("starting the test cluster")?;
    let base_url = cluster.url("").trim_end_matches('/').to_owned();
    eprintln!("test cluster: {base_url} ({})", cluster.dir().display());

    let mut summary = Vec::new();
    let house_ok = house_rules(&mut summary)?;
    let rust_ok = rust_suites(&base_url, args, &mut summary)?;
    let node_ok = node_suites(&cluster, &mut summary)?;
    let ui_ok = ui_suite(&mut summary)?;
    let e2e_ok = e2e_suite(&cluster, &mut summary)?;

    println!("\n==================== summary ====================");
    for line in &summary {
        println!("{line}");
    }
    drop(cluster);
    if !(house_ok && rust_ok && node_ok && ui_ok && e2e_ok) {
        bail!("some tests failed");
    }
    println!("all suites passed");
    Ok(())
}

/// Runs `cmd`, echoing its output, and returns (success, lines matching `keep`).
fn run_collecting(cmd: &mut Command, keep: impl Fn(&str) -> bool) -> Result<(bool, Vec<String>)> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().context("starting a test runner")?;
    let stderr = child.stderr.take().expect("piped stderr");
    let err_thread = std::thread::spawn(move || {
        let mut kept = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            kept.push(line);
        }
        kept
    });
    let mut kept = Vec::new();
    for line in BufReader::new(child.stdout.take().expect("piped stdout")).lines().map_while(Result::ok) {
        println!("{line}");
        if keep(&line) {
            kept.push(line);
        }
    }
    let err_lines = err_thread.join().unwrap_or_default();
    kept.extend(err_lines.into_iter().filter(|l| keep(l)));
    Ok((child.wait()?.success(), kept))
}

fn rust_suites(base_url: &str, args: &[String], summary: &mut Vec<String>) -> Result<bool> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["test", "--workspace", "--no-fail-fast"])
        .args(args)
        .env(werkfunk_testkit::cluster::CLUSTER_URL_ENV, base_url)
        .current_dir(root());
    // cargo names each test binary on stderr ("Running …", "Doc-tests …") and the binary
    // prints its result on stdout, in the same order: pair them up.
    let (ok, lines) = run_collecting(&mut cmd, |l| {
        let l = l.trim_start();
        l.starts_with("test result:") || l.starts_with("Running ") || l.starts_with("Doc-tests ")
    })?;
    let (names, results): (Vec<&String>, Vec<&String>) = lines.iter().partition(|l| !l.contains("test result:"));
    summary.push("Rust (cargo test --workspace):".into());
    for (name, result) in names.iter().zip(&results) {
        // "Running tests/auth.rs (target/debug/deps/auth-1f2e…)" → "auth: tests/auth.rs"
        let name = name.trim().trim_start_matches("Running ");
        let (what, binary) = name.split_once(" (").unwrap_or((name, ""));
        let binary = binary.rsplit('/').next().unwrap_or("").rsplit_once('-').map_or("", |(b, _)| b);
        let name = if binary.is_empty() { what.to_owned() } else { format!("{binary}: {what}") };
        summary.push(format!("  {name}: {}", result.trim().trim_start_matches("test result: ")));
    }
    if !ok {
        summary.push("  FAILED".into());
    }
    Ok(ok)
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

/// Builds the server binary once and returns its path.
pub fn server_binary(release: bool) -> Result<PathBuf> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "-p", "werkfunk-server", "--bin", "werkfunk-server"]).current_dir(root());
    if release {
        cmd.arg("--release");
    }
    process::run("cargo build werkfunk-server", &mut cmd)?;
    Ok(target_dir().join(if release { "release" } else { "debug" }).join("werkfunk-server"))
}

/// Creates `name` in the cluster (through psql), unless it is there already.
pub fn create_database(cluster: &Cluster, name: &str) -> Result<()> {
    let psql = werkfunk_testkit::cluster::postgres_bin()?.join("psql");
    let query = |sql: String| {
        let mut c = Command::new(&psql);
        c.args(["-qtA", "-h", "127.0.0.1", "-p", &cluster.port().to_string(), "-U", "postgres", "-d", "postgres", "-c"]).arg(sql);
        c
    };
    let exists = query(format!("select 1 from pg_database where datname = '{name}'")).output()?;
    if String::from_utf8_lossy(&exists.stdout).trim() == "1" {
        return Ok(());
    }
    process::run("psql create database", &mut query(format!("create database {name}")))
}

/// A `werkfunk-server` process over `database`.
pub struct ServerProcess {
    pub url: String,
    pub anon_key: String,
    pub service_key: String,
    pub guard: Guarded,
}

/// [`start_server_via`] the binary itself, on a free port.
pub fn start_server(
    binary: &PathBuf,
    cluster: &Cluster,
    database: &str,
    secret: &str,
    extra_env: &[(&str, &str)],
) -> Result<ServerProcess> {
    start_server_via(Command::new(binary), binary, cluster, database, secret, process::free_port()?, extra_env)
}

/// Starts the server on `port` by running `cmd` (the binary itself, or a shell that
/// `exec`s it after raising a limit), waits for `/health`, and reads the API keys from
/// `binary keys`.
pub fn start_server_via(
    mut cmd: Command,
    binary: &PathBuf,
    cluster: &Cluster,
    database: &str,
    secret: &str,
    port: u16,
    extra_env: &[(&str, &str)],
) -> Result<ServerProcess> {
    cmd.env("DATABASE_URL", cluster.url(database))
        .env("WERKFUNK_JWT_SECRET", secret)
        .env("WERKFUNK_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()));
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let guard = Guarded::spawn("werkfunk-server", &mut cmd)?;
    let url = format!("http://127.0.0.1:{port}");
    process::wait_http_ok(&format!("{url}/health"), Duration::from_secs(60))?;
    let keys = Command::new(binary).arg("keys").env("WERKFUNK_JWT_SECRET", secret).output()?;
    let keys = String::from_utf8(keys.stdout)?;
    let key =
        |name: &str| keys.lines().find_map(|l| l.strip_prefix(&format!("{name}="))).map(str::to_owned).context("keys output");
    Ok(ServerProcess { url, anon_key: key("anon_key")?, service_key: key("service_role_key")?, guard })
}

fn node_suites(cluster: &Cluster, summary: &mut Vec<String>) -> Result<bool> {
    // `cargo test --workspace` has just built the binary (the server has integration tests),
    // with the workspace's unified features; building it alone would rebuild half the world.
    let built = target_dir().join("debug").join("werkfunk-server");
    let binary = if built.exists() { built } else { server_binary(false)? };
    create_database(cluster, "werkfunk_node")?;
    let mut server = start_server(&binary, cluster, "werkfunk_node", NODE_SECRET, &[])?;
    let dir = root().join("tests/supabase-js");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".test.mjs"))
        .collect();
    files.sort();
    let mut cmd = Command::new("node");
    cmd.arg("--test")
        .arg("--test-concurrency=1")
        .args(&files)
        .current_dir(&dir)
        .env("WERKFUNK_URL", &server.url)
        .env("WERKFUNK_ANON_KEY", &server.anon_key)
        .env("WERKFUNK_SERVICE_KEY", &server.service_key)
        .env("WERKFUNK_JWT_SECRET", NODE_SECRET);
    let (ok, lines) = run_collecting(&mut cmd, |l| {
        ["# tests", "# pass", "# fail", "# skipped", "# cancelled"].iter().any(|p| l.starts_with(p))
    })?;
    summary.push("supabase-js (node --test tests/supabase-js):".into());
    summary.extend(lines.into_iter().map(|l| format!("  {l}")));
    let stopped_cleanly = server.guard.stop();
    summary.push(format!("  server stopped on SIGTERM with exit 0: {stopped_cleanly}"));
    Ok(ok && stopped_cleanly)
}

/// The UI's component tests (Vitest, in Node with a fake backend) and its type check and lint.
fn ui_suite(summary: &mut Vec<String>) -> Result<bool> {
    let dir = root().join("ui");
    let mut ok = true;
    summary.push("UI (ui/: typecheck, lint, vitest):".into());
    for script in ["typecheck", "lint"] {
        let passed = Command::new("npm").args(["run", "--silent", script]).current_dir(&dir).status()?.success();
        summary.push(format!("  {script}: {}", if passed { "clean" } else { "FAILED" }));
        ok &= passed;
    }
    let mut cmd = Command::new("npm");
    // Plain text, so that the summary can pick up vitest's closing lines.
    cmd.args(["test", "--silent"]).current_dir(&dir).env("TZ", "Europe/Berlin").env("NO_COLOR", "1").env("FORCE_COLOR", "0");
    let (passed, lines) = run_collecting(&mut cmd, |l| {
        let l = l.trim_start();
        l.starts_with("Test Files") || l.starts_with("Tests ")
    })?;
    summary.extend(lines.into_iter().map(|l| format!("  {}", l.trim())));
    Ok(ok && passed)
}

/// Two real app windows on one real server, under Xvfb with a private D-Bus session bus,
/// driven through tauri-driver and WebKitWebDriver (`tests/e2e`).
fn e2e_suite(cluster: &Cluster, summary: &mut Vec<String>) -> Result<bool> {
    let app = ui::app_binary(false)?;
    let built = target_dir().join("debug").join("werkfunk-server");
    let server = if built.exists() { built } else { server_binary(false)? };
    create_database(cluster, "werkfunk_e2e")?;
    let dir = root().join("tests/e2e");
    let mut cmd = Command::new("timeout");
    cmd.args([
        "--signal=TERM",
        "--kill-after=30",
        "900",
        "xvfb-run",
        "-a",
        "-s",
        "-screen 0 2560x800x24",
        "dbus-run-session",
        "--",
    ])
    .args(["node", "--test", "--test-force-exit", "--test-concurrency=1", "app.test.mjs"])
    .current_dir(&dir)
    .env("WERKFUNK_APP", &app)
    .env("WERKFUNK_SERVER_BIN", &server)
    .env("WERKFUNK_DATABASE_URL", cluster.url("werkfunk_e2e"))
    .env("WERKFUNK_JWT_SECRET", NODE_SECRET)
    .env("WERKFUNK_SCREENSHOTS", root().join("docs/screenshots"))
    .env("WERKFUNK_SECRET_STORE", "file")
    .env("NO_AT_BRIDGE", "1");
    let (ok, lines) = run_collecting(&mut cmd, |l| {
        ["# tests", "# pass", "# fail", "# skipped", "# cancelled"].iter().any(|p| l.starts_with(p))
    })?;
    summary.push("desktop end to end (xvfb + dbus + tauri-driver, tests/e2e):".into());
    summary.extend(lines.into_iter().map(|l| format!("  {l}")));
    Ok(ok)
}

/// The house rules as checks: the tree formatted (`rustfmt.toml`) and clippy clean.
fn house_rules(summary: &mut Vec<String>) -> Result<bool> {
    let cargo = |args: &[&str]| Command::new(env!("CARGO")).args(args).current_dir(root()).status().map(|s| s.success());
    let fmt = cargo(&["fmt", "--all", "--check"])?;
    let clippy = cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    summary.push("House rules:".into());
    summary.push(format!("  cargo fmt --all --check: {}", if fmt { "clean" } else { "FAILED" }));
    summary.push(format!("  cargo clippy --workspace --all-targets -D warnings: {}", if clippy { "clean" } else { "FAILED" }));
    Ok(fmt && clippy)
}
