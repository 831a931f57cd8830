//! `cargo xtask bench [rest|realtime|core] [--quick]`: benchmarks, each beside its baseline
//! in the same run, written with the machine they ran on into BENCHMARKS.md.
//!
//! For each benchmark: a release `werkfunk-server` process on a free port over its own
//! database in one throwaway cluster, and the release `werkfunk-bench` load generator
//! (crates/bench) against it. The section of BENCHMARKS.md between the benchmark's markers
//! is replaced; the other sections stay. The server, the baseline servers and the cluster
//! are stopped on every path (drop guards; the cluster's watchdog if xtask itself dies).
//! `core` is the engine's own bench (`cargo bench -p werkfunk-core --bench core`), which
//! runs the server in-process over a database of the same cluster.
//! `--quick` runs a tenth of the work, to try things out; its figures are marked as such.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use werkfunk_testkit::cluster::Cluster;

use crate::process;
use crate::root;
use crate::test::{create_database, start_server_via, target_dir};

const SECRET: &str = "werkfunk-bench-secret-0123456789-abcdefghijklmn";
const KNOWN: [&str; 4] = ["rest", "realtime", "core", "desktop"];

/// Raises the soft limit on open files to the hard limit, then runs the program: the
/// realtime benchmark holds 10,000 websockets on each side.
pub fn with_open_files_raised(program: &Path) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(r#"ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@""#).arg(program);
    cmd
}

pub fn run(args: &[String]) -> Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let names: Vec<&str> = args.iter().map(String::as_str).filter(|a| !a.starts_with("--")).collect();
    let which: Vec<&str> = match names.as_slice() {
        [] => KNOWN.to_vec(),
        [one] if KNOWN.contains(one) => vec![*one],
        other => bail!("unknown benchmark {other:?}; known: rest, realtime, core, desktop"),
    };
    let mut command = String::from("cargo xtask bench");
    for a in args {
        command.push(' ');
        command.push_str(a);
    }

    eprintln!("building the release server and load generator…");
    process::run(
        "cargo build --release (werkfunk-server, werkfunk-bench)",
        Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "-p",
                "werkfunk-server",
                "--bin",
                "werkfunk-server",
                "-p",
                "werkfunk-bench",
                "--bin",
                "werkfunk-bench",
            ])
            .current_dir(root()),
    )?;
    let release = target_dir().join("release");
    let server_bin = release.join("werkfunk-server");
    let bench_bin = release.join("werkfunk-bench");

    let cluster = Cluster::start_temporary().context("starting the benchmark cluster")?;
    let machine = machine(&cluster);
    for name in which {
        let figures = if name == "core" {
            run_core(&cluster, quick)?
        } else if name == "desktop" {
            run_desktop(&cluster, &server_bin)?
        } else {
            run_one(name, &cluster, &server_bin, &bench_bin, quick)?
        };
        let section = section(name, &command, &machine, quick, &figures);
        let path = root().join("BENCHMARKS.md");
        write_section(&path, name, &section)?;
        eprintln!("{name}: figures written to {}", path.display());
        println!("{section}");
    }
    drop(cluster);
    Ok(())
}

/// One benchmark: its database, its server process, the load generator; returns the
/// load generator's Markdown plus how the server stopped.
fn run_one(name: &str, cluster: &Cluster, server_bin: &PathBuf, bench_bin: &Path, quick: bool) -> Result<String> {
    let database = format!("werkfunk_bench_{name}");
    create_database(cluster, &database)?;
    let mut server =
        start_server_via(with_open_files_raised(server_bin), server_bin, cluster, &database, SECRET, process::free_port()?, &[])?;
    eprintln!("{name}: server pid {} at {}", server.guard.id(), server.url);
    let out = target_dir().join(format!("bench-{name}.md"));
    let _ = std::fs::remove_file(&out);
    let mut cmd = with_open_files_raised(bench_bin);
    cmd.arg(name)
        .env("WERKFUNK_BENCH_URL", &server.url)
        .env("WERKFUNK_BENCH_ANON_KEY", &server.anon_key)
        .env("WERKFUNK_BENCH_DATABASE_URL", cluster.url(&database))
        .env("WERKFUNK_BENCH_JWT_SECRET", SECRET)
        .env("WERKFUNK_BENCH_SERVER_PID", server.guard.id().to_string())
        .env("WERKFUNK_BENCH_PG_DIR", cluster.dir())
        .env("WERKFUNK_BENCH_OUT", &out)
        .env("WERKFUNK_BENCH_QUICK", if quick { "1" } else { "0" });
    let ok = cmd.status().context("starting werkfunk-bench")?.success();
    let stopped = server.guard.stop();
    if !ok {
        bail!("the {name} benchmark failed");
    }
    let mut figures = std::fs::read_to_string(&out).with_context(|| format!("reading {}", out.display()))?;
    figures.push_str(&format!(
        "The server process stopped on SIGTERM with exit code 0 afterwards: {}.\n",
        if stopped { "yes" } else { "NO" }
    ));
    Ok(figures)
}

/// The app against a blank Tauri v2 window from the same dependencies (`tests/e2e/bench.mjs`,
/// under Xvfb with a private session bus): release builds as a user installs them.
fn run_desktop(cluster: &Cluster, server_bin: &Path) -> Result<String> {
    crate::setup::run()?;
    let deb = crate::bundle::run()?;
    process::run(
        "cargo build --release (blank window, werkfunk-cli)",
        Command::new(env!("CARGO"))
            .args(["build", "--release", "--features", "custom-protocol", "-p", "werkfunk-desktop", "--example", "blank"])
            .args(["-p", "werkfunk-cli", "--bin", "werkfunk-cli"])
            .current_dir(root()),
    )?;
    let release = target_dir().join("release");
    create_database(cluster, "werkfunk_bench_desktop")?;
    let out = target_dir().join("bench-desktop.md");
    let mut cmd = Command::new("xvfb-run");
    cmd.args(["-a", "-s", "-screen 0 1280x800x24", "dbus-run-session", "--", "node", "bench.mjs"])
        .current_dir(root().join("tests/e2e"))
        .env("WERKFUNK_APP", release.join("werkfunk"))
        .env("WERKFUNK_BLANK", release.join("examples/blank"))
        .env("WERKFUNK_CLI", release.join("werkfunk-cli"))
        .env("WERKFUNK_SERVER_BIN", server_bin)
        .env("WERKFUNK_DATABASE_URL", cluster.url("werkfunk_bench_desktop"))
        .env("WERKFUNK_JWT_SECRET", SECRET)
        .env("WERKFUNK_DEB", &deb)
        .env("WERKFUNK_BENCH_OUT", &out)
        .env("WERKFUNK_SECRET_STORE", "file")
        .env("NO_AT_BRIDGE", "1");
    process::run("the desktop benchmark", &mut cmd)?;
    Ok(std::fs::read_to_string(out)?)
}

/// The engine's bench (a cargo bench target of werkfunk-core): its Markdown table.
fn run_core(cluster: &Cluster, quick: bool) -> Result<String> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["bench", "-p", "werkfunk-core", "--bench", "core"])
        .env(werkfunk_testkit::cluster::CLUSTER_URL_ENV, cluster.url("").trim_end_matches('/'))
        .current_dir(root())
        .stderr(std::process::Stdio::inherit());
    if quick {
        cmd.env("WERKFUNK_BENCH_QUICK", "1");
    }
    let out = cmd.output().context("starting cargo bench -p werkfunk-core")?;
    if !out.status.success() {
        bail!("the core benchmark failed");
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn section(name: &str, command: &str, machine: &[(String, String)], quick: bool, figures: &str) -> String {
    let title = match name {
        "rest" => "REST: `/rest/v1` against the same SQL through sqlx",
        "core" => "Core: the engine's catch-up, reads during a catch-up, outbox drain, cache and search",
        "desktop" => "Desktop: the app beside a blank Tauri v2 window",
        _ => "Realtime: `/realtime/v1/websocket` against raw baselines",
    };
    let mut s = format!("<!-- bench:{name}:begin -->\n## {title}\n\n");
    if quick {
        s.push_str("> **Quick run (`--quick`): a tenth of the work; not figures to quote.**\n\n");
    }
    s.push_str("| machine | |\n|---|---|\n");
    for (k, v) in machine {
        s.push_str(&format!("| {k} | {v} |\n"));
    }
    s.push_str(&format!("| command | `{command}` |\n\n"));
    s.push_str(figures.trim_end());
    s.push_str(&format!("\n<!-- bench:{name}:end -->\n"));
    s
}

/// Replaces the section between the markers of `name`, or appends it.
fn write_section(path: &Path, name: &str, section: &str) -> Result<()> {
    let begin = format!("<!-- bench:{name}:begin -->");
    let end = format!("<!-- bench:{name}:end -->");
    let current = std::fs::read_to_string(path).unwrap_or_else(|_| {
        "# Benchmarks\n\n\
         Written by `cargo xtask bench [rest|realtime|core]`; each section is replaced in place when its \
         benchmark runs again, and names the machine and the command that produced it. Every figure \
         stands beside a baseline measured in the same run. Timings live here, never in tests.\n"
            .to_owned()
    });
    let updated = match (current.find(&begin), current.find(&end)) {
        (Some(b), Some(e)) if e > b => {
            let after = &current[e + end.len()..];
            let after = after.strip_prefix('\n').unwrap_or(after);
            format!("{}{section}{after}", &current[..b])
        }
        _ => format!("{}\n{section}", current.trim_end().to_owned() + "\n"),
    };
    std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))
}

fn first_line(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok().filter(|o| o.status.success())?;
    String::from_utf8(out.stdout).ok()?.lines().next().map(|l| l.trim().to_owned()).filter(|l| !l.is_empty())
}

/// The machine, as BENCHMARKS.md names it.
fn machine(cluster: &Cluster) -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_owned()))
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let ram = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().trim_end_matches("kB").trim().to_owned()))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_owned()).unwrap_or_default();
    let postgres = werkfunk_testkit::cluster::postgres_bin()
        .ok()
        .and_then(|bin| {
            first_line(
                Command::new(bin.join("psql"))
                    .args(["-tA", "-h", "127.0.0.1", "-p", &cluster.port().to_string(), "-U", "postgres", "-d", "postgres", "-c"])
                    .arg("select version()"),
            )
        })
        .unwrap_or_else(|| "unknown".into());
    let date = first_line(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])).unwrap_or_default();
    let rustc = first_line(Command::new("rustc").arg("--version")).unwrap_or_default();
    let commit = first_line(Command::new("git").args(["rev-parse", "--short", "HEAD"]).current_dir(root())).unwrap_or_default();
    let dirty = first_line(Command::new("git").args(["status", "--porcelain"]).current_dir(root())).is_some();
    vec![
        ("CPU".into(), format!("{model}, {cores} cores")),
        ("RAM".into(), ram),
        ("kernel".into(), kernel),
        ("Postgres".into(), format!("{postgres} (throwaway cluster: fsync off, synchronous_commit off)")),
        ("Rust".into(), format!("{rustc}, release profile")),
        ("source".into(), format!("{commit}{}", if dirty { " with uncommitted changes" } else { "" })),
        ("date".into(), date),
    ]
}
