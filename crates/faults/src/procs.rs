//! The real binaries as child processes, and the cluster's fast restart.
//!
//! [`binaries`] builds `werkfunk-server` and `werkfunk-cli` once per test binary (the same
//! `cargo` and target folder as the test itself), so a run always drives current code.
//! [`ServerProcess`] is the server binary on a fixed loopback port over one database: kill -9
//! and restart on the same port. [`CliClient`] is one `--profile` folder driven through
//! `werkfunk-cli --json`. Every child is killed when its handle is dropped, so a panicking
//! test leaves no process behind.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};
use werkfunk_testkit::cluster::{postgres_bin, Cluster};

use crate::{Error, Result};

/// Paths of the two binaries, built (or found up to date) once.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub server: PathBuf,
    pub cli: PathBuf,
}

/// Builds the server and the CLI with the cargo that runs this test (no-op when fresh).
pub fn binaries() -> Result<Binaries> {
    static BINS: OnceLock<std::result::Result<Binaries, String>> = OnceLock::new();
    BINS.get_or_init(|| {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        // <target>/<profile>/deps/<test binary>
        let profile_dir = exe.parent().and_then(Path::parent).ok_or("no target folder")?.to_path_buf();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let target_dir = profile_dir.parent().ok_or("no target folder")?;
        let mut build = std::process::Command::new(cargo);
        build.args(["build", "-p", "werkfunk-server", "-p", "werkfunk-cli", "--bins"]).arg("--target-dir").arg(target_dir);
        if release {
            build.arg("--release");
        }
        let status = build.stdout(Stdio::null()).status().map_err(|e| format!("cargo build: {e}"))?;
        if !status.success() {
            return Err(format!("cargo build of the server and the CLI failed ({status})"));
        }
        Ok(Binaries { server: profile_dir.join("werkfunk-server"), cli: profile_dir.join("werkfunk-cli") })
    })
    .clone()
    .map_err(Error::Setup)
}

/// A free loopback port.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The server binary on one port over one database.
pub struct ServerProcess {
    bin: PathBuf,
    pub port: u16,
    database_url: String,
    secret: String,
    jwt_exp: u64,
    log: PathBuf,
    child: Option<Child>,
    pub starts: u64,
    pub kills: u64,
    /// Starts that failed and were retried.
    pub failed_starts: u64,
}

impl ServerProcess {
    /// Starts the server (it migrates the database) and waits for `/health`.
    pub async fn start(bin: &Path, database_url: &str, secret: &str, jwt_exp: u64, log: PathBuf) -> Result<ServerProcess> {
        let mut s = ServerProcess {
            bin: bin.to_owned(),
            port: free_port()?,
            database_url: database_url.to_owned(),
            secret: secret.to_owned(),
            jwt_exp,
            log,
            child: None,
            starts: 0,
            kills: 0,
            failed_starts: 0,
        };
        s.spawn().await?;
        Ok(s)
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Starts the binary; a start that fails (the port briefly taken as another socket's
    /// source port, the database restarting) is retried up to five times, then reported with
    /// the end of the server's log.
    async fn spawn(&mut self) -> Result<()> {
        let mut last = None;
        for attempt in 0..5 {
            if attempt > 0 {
                self.failed_starts += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            match self.spawn_once().await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    if let Some(mut child) = self.child.take() {
                        let _ = child.start_kill();
                        let _ = child.wait().await;
                    }
                    last = Some(e);
                }
            }
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        Err(Error::Setup(format!(
            "{}; server log (newest first):\n{}",
            last.map(|e| e.to_string()).unwrap_or_default(),
            tail.join("\n")
        )))
    }

    async fn spawn_once(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let child = Command::new(&self.bin)
            .env("DATABASE_URL", &self.database_url)
            .env("WERKFUNK_JWT_SECRET", &self.secret)
            .env("WERKFUNK_LISTEN", self.addr().to_string())
            .env("WERKFUNK_JWT_EXP", self.jwt_exp.to_string())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        self.child = Some(child);
        self.starts += 1;
        self.wait_healthy().await
    }

    /// Waits (bounded) until `/health` answers 200.
    pub async fn wait_healthy(&mut self) -> Result<()> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        for _ in 0..300 {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(Error::Setup(format!("werkfunk-server exited at start ({status}); see {}", self.log.display())));
                }
            }
            if let Ok(r) = http.get(format!("{}/health", self.url())).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(Error::Setup(format!("werkfunk-server did not become healthy in 60 s; see {}", self.log.display())))
    }

    /// SIGKILL, no draining.
    pub async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
            self.kills += 1;
        }
    }

    /// Kill -9, then start again on the same port and database.
    pub async fn kill9_and_restart(&mut self) -> Result<()> {
        self.kill9().await;
        self.spawn().await
    }

    /// SIGTERM and wait (bounded), then SIGKILL.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                signal(pid, "TERM");
            }
            if tokio::time::timeout(Duration::from_secs(15), child.wait()).await.is_err() {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
    }
}

/// Sends `SIG<name>` to `pid` with the system's `kill` (the workspace forbids `unsafe`).
pub fn signal(pid: u32, name: &str) -> bool {
    std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A fast shutdown and restart (`pg_ctl restart -m fast`) of a cluster this run owns.
pub fn restart_postgres(cluster: &Cluster) -> Result<()> {
    let bin = postgres_bin()?;
    let data = cluster.dir().join("data");
    let log = cluster.dir().join("postgres.log");
    let as_root = std::process::Command::new("id").arg("-u").output().map(|o| o.stdout.trim_ascii() == b"0").unwrap_or(false);
    let pg_ctl = bin.join("pg_ctl");
    let mut cmd = if as_root {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&pg_ctl);
        c
    } else {
        std::process::Command::new(&pg_ctl)
    };
    let out = cmd
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(&log)
        .args(["-m", "fast", "-w", "-t", "60", "restart"])
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(Error::Setup(format!("pg_ctl restart failed: {}", String::from_utf8_lossy(&out.stderr))));
    }
    Ok(())
}

/// One `werkfunk-cli` profile.
pub struct CliClient {
    pub name: String,
    bin: PathBuf,
    dir: tempfile::TempDir,
    anon_key: String,
    /// Seconds the client's wall clock is off (libfaketime), if it is.
    clock_offset: Option<i64>,
}

/// Debian's libfaketime (package `faketime`): preloaded, it shifts the wall clock a process
/// sees, and nothing else.
pub const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// A finished command.
#[derive(Debug, Clone)]
pub struct Run {
    /// `None` when the process was killed or timed out.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The stdout lines that parse as JSON objects.
    pub fn json(&self) -> Vec<Value> {
        self.stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

impl CliClient {
    pub fn new(name: &str, bin: &Path, anon_key: &str) -> Result<CliClient> {
        Ok(CliClient {
            name: name.to_owned(),
            bin: bin.to_owned(),
            dir: tempfile::tempdir()?,
            anon_key: anon_key.to_owned(),
            clock_offset: None,
        })
    }

    /// Runs this client's commands with its wall clock `seconds` off (ahead if positive),
    /// through libfaketime; its monotonic clock is left alone, as on a machine whose clock
    /// is simply set wrong.
    pub fn skew_clock(&mut self, seconds: i64) -> Result<()> {
        if !Path::new(LIBFAKETIME).exists() {
            return Err(Error::Setup(format!("{LIBFAKETIME} is missing (`cargo xtask setup` installs the faketime package)")));
        }
        self.clock_offset = Some(seconds);
        Ok(())
    }

    pub fn clock_offset(&self) -> Option<i64> {
        self.clock_offset
    }

    pub fn profile(&self) -> &Path {
        self.dir.path()
    }

    /// The command with this profile, `--json`, and `url`.
    pub fn command(&self, url: &str, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--profile")
            .arg(self.dir.path())
            .arg("--json")
            .args(args)
            .env("WERKFUNK_URL", url)
            .env("WERKFUNK_ANON_KEY", &self.anon_key)
            .env("WERKFUNK_LOG", "warn")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(offset) = self.clock_offset {
            c.env("LD_PRELOAD", LIBFAKETIME).env("FAKETIME", format!("{offset:+}")).env("DONT_FAKE_MONOTONIC", "1");
        }
        c
    }

    /// Runs to the end, or kills the process after `kill_after` (kill -9 mid-command) or
    /// `timeout`.
    pub async fn run(&self, url: &str, args: &[&str], timeout: Duration, kill_after: Option<Duration>) -> Result<Run> {
        let child = self.command(url, args).spawn()?;
        let limit = kill_after.unwrap_or(timeout).min(timeout);
        let wait = child.wait_with_output();
        match tokio::time::timeout(limit, wait).await {
            Ok(out) => {
                let out = out?;
                Ok(Run {
                    code: out.status.code(),
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                })
            }
            // Dropping the future drops the child: kill_on_drop sends SIGKILL.
            Err(_) => Ok(Run { code: None, stdout: String::new(), stderr: format!("killed after {limit:?}") }),
        }
    }
}
