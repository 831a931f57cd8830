//! A throwaway Postgres cluster from the system's binaries.
//!
//! `initdb` into a fresh temporary folder, `postgres` on a free loopback port with its socket
//! in that folder, tuned for tests (no fsync) unless asked otherwise, and `wal_level=logical`.
//! As root (CI) the cluster runs as the `postgres` user, since Postgres refuses root.
//!
//! A cluster never outlives its owner: besides [`Drop`], a watchdog shell started with the
//! cluster polls the owning process and stops Postgres and removes the folder once the owner
//! is gone — a test binary that panics, is killed, or ends with the cluster in a `static`
//! leaves nothing behind.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};
use std::{fs, io};

/// Set by `cargo xtask test`: a superuser URL (without database) of the run's cluster, which
/// the harness then uses instead of starting its own.
pub const CLUSTER_URL_ENV: &str = "WERKFUNK_TEST_PG_URL";

/// How durable the cluster is: tests trade crash safety for speed, the demo does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Throwaway,
    Durable,
}

/// A running cluster. Dropping it stops Postgres; a temporary folder is removed too.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    temporary: bool,
    superuser: String,
}

impl Cluster {
    /// A cluster in a new temporary folder, removed when the cluster stops.
    pub fn start_temporary() -> io::Result<Cluster> {
        Self::start_temporary_as("postgres")
    }

    /// A temporary cluster whose bootstrap superuser is `superuser` instead of `postgres`:
    /// for layouts where `postgres` is an ordinary role (a hosted Supabase project's, whose
    /// superuser is `supabase_admin`). Postgres never lets its bootstrap superuser be demoted.
    pub fn start_temporary_as(superuser: &str) -> io::Result<Cluster> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("werkfunk-pg-{}-{nanos}", std::process::id()));
        Self::start_in(&dir, Durability::Throwaway, true, superuser)
    }

    /// A cluster in `dir` (initialised on first use, kept afterwards), e.g. for the demo.
    pub fn start_persistent(dir: &Path) -> io::Result<Cluster> {
        Self::start_in(dir, Durability::Durable, false, "postgres")
    }

    fn start_in(dir: &Path, durability: Durability, temporary: bool, superuser: &str) -> io::Result<Cluster> {
        let bin = postgres_bin()?;
        fs::create_dir_all(dir)?;
        let dir = dir.canonicalize()?;
        let data = dir.join("data");
        let as_root = is_root();
        if as_root {
            run(Command::new("chown").arg("-R").arg("postgres:postgres").arg(&dir))?;
        }
        if !data.join("PG_VERSION").exists() {
            let mut initdb = pg_command(&bin.join("initdb"), as_root);
            initdb.arg("-D").arg(&data).args(["-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"]).arg("-U").arg(superuser);
            run(&mut initdb)?;
        }
        let port = free_port()?;
        let mut settings = vec![
            format!("port={port}"),
            "listen_addresses='127.0.0.1'".to_owned(),
            format!("unix_socket_directories='{}'", dir.display()),
            "wal_level=logical".to_owned(),
            "max_connections=400".to_owned(),
            "shared_buffers=128MB".to_owned(),
        ];
        if durability == Durability::Throwaway {
            settings.extend(["fsync=off", "synchronous_commit=off", "full_page_writes=off"].map(String::from));
        }
        let mut conf = settings.join("\n");
        conf.push('\n');
        fs::write(data.join("postgresql.auto.conf"), conf)?;
        if as_root {
            run(Command::new("chown").arg("-R").arg("postgres:postgres").arg(&dir))?;
        }
        let log = dir.join("postgres.log");
        let mut pg_ctl = pg_command(&bin.join("pg_ctl"), as_root);
        pg_ctl.arg("-D").arg(&data).arg("-l").arg(&log).args(["-w", "-t", "60", "start"]).stdout(Stdio::null());
        if let Err(e) = run(&mut pg_ctl) {
            let tail = fs::read_to_string(&log).unwrap_or_default();
            if temporary {
                let _ = fs::remove_dir_all(&dir);
            }
            return Err(io::Error::other(format!("{e}\n{tail}")));
        }
        let cluster = Cluster { dir, port, bin, temporary, superuser: superuser.to_owned() };
        cluster.spawn_watchdog()?;
        Ok(cluster)
    }

    /// A connection URL for `database` as the bootstrap superuser (`postgres` unless started
    /// with [`Cluster::start_temporary_as`]).
    pub fn url(&self, database: &str) -> String {
        self.url_as(&self.superuser, database)
    }

    /// A connection URL for `database` as `role` (every role may log in without a password
    /// over the loopback address: the cluster trusts local connections).
    pub fn url_as(&self, role: &str, database: &str) -> String {
        format!("postgres://{role}@127.0.0.1:{}/{database}", self.port)
    }

    /// The cluster's `psql`.
    pub fn psql(&self) -> PathBuf {
        self.bin.join("psql")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's folder (data, socket and log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn stop_script(&self) -> String {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.dir.join("data");
        let prefix = if is_root() { "runuser -u postgres -- " } else { "" };
        let mut script = format!("{prefix}'{}' -D '{}' -m immediate -w stop >/dev/null 2>&1", pg_ctl.display(), data.display());
        if self.temporary {
            script.push_str(&format!("; rm -rf '{}'", self.dir.display()));
        }
        script
    }

    fn spawn_watchdog(&self) -> io::Result<()> {
        let script = format!(
            "while kill -0 {owner} 2>/dev/null; do sleep 0.5; done; {stop}",
            owner = std::process::id(),
            stop = self.stop_script()
        );
        // In a session of its own, so that a signal to the owner's process group (Ctrl-C, a
        // CI step's timeout) cannot take the watchdog down with its owner.
        Command::new("setsid")
            .arg("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("sh").arg("-c").arg(self.stop_script()).status();
    }
}

fn is_root() -> bool {
    std::env::var("USER").map(|u| u == "root").unwrap_or(false)
        || Command::new("id").arg("-u").output().map(|o| o.stdout.trim_ascii() == b"0").unwrap_or(false)
}

fn pg_command(program: &Path, as_root: bool) -> Command {
    if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Runs `deploy/roles.sql` as an operator does once per cluster — `psql`, as the superuser of
/// `superuser_url`, with `owner` (the role the server connects as) in psql's `owner` variable.
pub fn apply_roles_sql(superuser_url: &str, owner: &str) -> io::Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/roles.sql");
    let mut psql = Command::new(postgres_bin()?.join("psql"));
    psql.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-v"])
        .arg(format!("owner={owner}"))
        .arg("-d")
        .arg(superuser_url)
        .arg("-f")
        .arg(script);
    run(psql.stdout(Stdio::null()))
}

/// The newest installed Postgres's binaries (`/usr/lib/postgresql/<v>/bin`), or `PG_BIN`.
pub fn postgres_bin() -> io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no Postgres server binaries under /usr/lib/postgresql"))
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn run(cmd: &mut Command) -> io::Result<()> {
    let out = cmd.stderr(Stdio::piped()).output()?;
    if out.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!("{cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr))))
}
