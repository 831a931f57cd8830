//! `cargo xtask supabase-check --postgres-repo <git dir> --auth-repo <git dir>`: does Werkfunk's
//! hosted-Supabase migration selection apply to a database laid out as Supabase lays it out?
//!
//! On a throwaway cluster whose superuser is `supabase_admin` (as in Supabase's images):
//! 1. Supabase's bootstrap from a checkout of `supabase/postgres` — `migrations/db/init-scripts`
//!    as `postgres`, then `migrations/db/migrations` as `supabase_admin`, as its `migrate.sh`
//!    runs them. Statements that need an extension not installed here (pgjwt, pgsodium,
//!    pg_graphql …) fail and are listed as skipped; any other failure is listed as such.
//! 2. GoTrue's migrations from a checkout of `supabase/auth` — each file in one transaction as
//!    `supabase_auth_admin`, its `{{ index .Options "Namespace" }}` rendered as `auth`, its
//!    version recorded in `auth.schema_migrations`, stopping at the first failure (as GoTrue's
//!    `migrate` command does).
//! 3. `alter role postgres nosuperuser` (as on the hosted platform), then the files of
//!    `deploy/hosted-supabase.txt`, each in one transaction as `postgres`.
//! 4. `deploy/hosted-supabase-check.sql` as `postgres`: users in `auth.users`, row-level
//!    security through `set role authenticated` + `request.jwt.claims`.
//!
//! Nothing of Supabase's is copied into this repository: the SQL is read from the git
//! directories given (`git show`). Exits non-zero when a Werkfunk migration or the smoke
//! check fails, or when GoTrue's migrations do not all apply.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use werkfunk_testkit::cluster::Cluster;

use crate::root;

/// Errors from these extensions (or their roles and schemas) mean "not installed here".
const ABSENT_EXTENSIONS: &[&str] = &[
    "pgjwt",
    "pgsodium",
    "pg_graphql",
    "graphql",
    "supabase_vault",
    "pg_net",
    "pg_cron",
    "supautils",
    "safeupdate",
    "pg_stat_statements",
];

struct Repo {
    git_dir: PathBuf,
    commit: String,
}

impl Repo {
    fn open(git_dir: &Path) -> Result<Repo> {
        let commit = git(git_dir, &["rev-parse", "HEAD"])?.trim().to_owned();
        Ok(Repo { git_dir: git_dir.to_owned(), commit })
    }

    /// The files under `dir` at HEAD, sorted by name.
    fn files(&self, dir: &str, suffix: &str) -> Result<Vec<String>> {
        let listing = git(&self.git_dir, &["ls-tree", "--name-only", "HEAD", &format!("{dir}/")])?;
        let mut files: Vec<String> = listing.lines().filter(|f| f.ends_with(suffix)).map(str::to_owned).collect();
        files.sort();
        Ok(files)
    }

    fn read(&self, path: &str) -> Result<String> {
        git(&self.git_dir, &["show", &format!("HEAD:{path}")])
    }
}

fn git(git_dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git").arg("--git-dir").arg(git_dir).args(args).output().context("running git")?;
    if !out.status.success() {
        bail!("git {args:?} in {}: {}", git_dir.display(), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// One psql run's result: its errors (`psql:<file>:<line>: ERROR: …`) and NOTICE lines.
struct PsqlRun {
    ok: bool,
    errors: Vec<String>,
    notices: Vec<String>,
}

/// Runs `sql` through the cluster's psql as `role`; `atomic` = one transaction, stop at the
/// first error; otherwise every statement on its own, errors collected.
fn psql(cluster: &Cluster, role: &str, name: &str, sql: &str, atomic: bool) -> Result<PsqlRun> {
    let mut cmd = Command::new(cluster.psql());
    cmd.args(["-X", "-q", "-d"]).arg(cluster.url_as(role, "postgres"));
    cmd.args(["-v", if atomic { "ON_ERROR_STOP=1" } else { "ON_ERROR_STOP=0" }]);
    if atomic {
        cmd.arg("-1");
    }
    cmd.args(["-f", "-"]).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().context("starting psql")?;
    child.stdin.take().expect("piped stdin").write_all(sql.as_bytes())?;
    let out = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors = stderr
        .lines()
        .filter(|l| l.contains("ERROR:") || l.contains("FATAL:"))
        .map(|l| format!("{name}:{}", l.trim_start_matches("psql:<stdin>:")))
        .collect();
    let notices = stderr.lines().filter(|l| l.contains("NOTICE:")).map(str::to_owned).collect();
    Ok(PsqlRun { ok: out.status.success(), errors, notices })
}

fn needs_absent_extension(error: &str) -> bool {
    error.contains("is not available")
        || error.contains("extension control file")
        || ABSENT_EXTENSIONS.iter().any(|e| error.contains(&format!("\"{e}")) || error.contains(&format!(" {e}.")))
}

pub fn run(args: &[String]) -> Result<()> {
    let flag = |name: &str| -> Result<PathBuf> {
        let at = args.iter().position(|a| a == name).with_context(|| format!("missing {name} <git dir>"))?;
        Ok(PathBuf::from(args.get(at + 1).with_context(|| format!("{name} needs a git directory"))?))
    };
    let postgres_repo = Repo::open(&flag("--postgres-repo")?)?;
    let auth_repo = Repo::open(&flag("--auth-repo")?)?;
    println!("supabase/postgres at {}", postgres_repo.commit);
    println!("supabase/auth     at {}", auth_repo.commit);

    let cluster = Cluster::start_temporary_as("supabase_admin").context("starting the throwaway cluster")?;
    println!("throwaway cluster on port {} (superuser supabase_admin)\n", cluster.port());
    let mut failed = false;

    // 1. Supabase's bootstrap, as migrate.sh runs it.
    let pre = "create role postgres superuser login; alter database postgres owner to postgres;";
    let created = psql(&cluster, "supabase_admin", "pre-create postgres", pre, true)?;
    if !created.ok {
        bail!("creating role postgres: {:?}", created.errors);
    }
    let mut skipped = Vec::new();
    let mut bootstrap_failures = Vec::new();
    for (dir, role) in [("migrations/db/init-scripts", "postgres"), ("migrations/db/migrations", "supabase_admin")] {
        for file in postgres_repo.files(dir, ".sql")? {
            let result = psql(&cluster, role, &file, &postgres_repo.read(&file)?, false)?;
            let (absent, other): (Vec<_>, Vec<_>) = result.errors.into_iter().partition(|e| needs_absent_extension(e));
            println!("bootstrap {file} as {role}: {}", if other.is_empty() { "applied" } else { "applied with errors" });
            skipped.extend(absent);
            bootstrap_failures.extend(other);
        }
    }
    println!("\nbootstrap statements skipped (extension not installed here): {}", skipped.len());
    for s in &skipped {
        println!("  skipped  {s}");
    }
    println!("bootstrap statements failed otherwise: {}", bootstrap_failures.len());
    for s in &bootstrap_failures {
        println!("  FAILED   {s}");
    }

    // 2. GoTrue's migrations, as `supabase_auth_admin`, as GoTrue's `migrate` runs them.
    println!();
    let applied = Command::new(cluster.psql())
        .args(["-X", "-At", "-d"])
        .arg(cluster.url_as("supabase_admin", "postgres"))
        .args(["-c", "select version from auth.schema_migrations"])
        .output()?;
    let applied = String::from_utf8_lossy(&applied.stdout).lines().map(str::to_owned).collect::<Vec<_>>();
    let (mut gotrue_applied, mut gotrue_already) = (0, 0);
    for file in auth_repo.files("migrations", ".up.sql")? {
        let version = file.trim_start_matches("migrations/").split('_').next().unwrap_or_default().to_owned();
        if applied.contains(&version) {
            gotrue_already += 1;
            continue;
        }
        let sql = auth_repo
            .read(&file)?
            .replace("{{ index .Options \"Namespace\" }}", "auth")
            .replace("{{index .Options \"Namespace\" }}", "auth");
        if sql.contains("{{") {
            bail!("{file}: a template this check does not render");
        }
        let sql = format!("{sql}\n;\ninsert into auth.schema_migrations (version) values ('{version}');\n");
        let result = psql(&cluster, "supabase_auth_admin", &file, &sql, true)?;
        if !result.ok {
            println!("GoTrue {file}: FAILED\n  {}", result.errors.join("\n  "));
            failed = true;
            break;
        }
        gotrue_applied += 1;
    }
    println!("GoTrue migrations applied as supabase_auth_admin: {gotrue_applied} (already recorded by the bootstrap: {gotrue_already})");

    // 3. Werkfunk's selection as `postgres`, no longer a superuser.
    println!();
    let demoted = psql(&cluster, "supabase_admin", "demote postgres", "alter role postgres nosuperuser;", true)?;
    if !demoted.ok {
        bail!("alter role postgres nosuperuser: {:?}", demoted.errors);
    }
    let selection = std::fs::read_to_string(root().join("deploy/hosted-supabase.txt"))?;
    for file in selection.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let sql = std::fs::read_to_string(root().join("migrations").join(file)).with_context(|| format!("reading {file}"))?;
        let result = psql(&cluster, "postgres", file, &sql, true)?;
        if result.ok {
            println!("werkfunk {file} as postgres: applied");
            for n in &result.notices {
                println!("  {n}");
            }
        } else {
            println!("werkfunk {file} as postgres: FAILED\n  {}", result.errors.join("\n  "));
            failed = true;
        }
    }

    // For the record: what the left-out migrations would do there (each rolled back).
    println!();
    let selected: Vec<&str> = selection.lines().map(str::trim).collect();
    let mut all: Vec<String> = std::fs::read_dir(root().join("migrations"))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.ends_with(".sql") && !selected.contains(&f.as_str()))
        .collect();
    all.sort();
    for file in all {
        let sql = std::fs::read_to_string(root().join("migrations").join(&file))?;
        let result = psql(&cluster, "postgres", &file, &format!("begin; {sql}\n;\nrollback;\n"), false)?;
        let outcome = match result.errors.first() {
            None => "would apply".to_owned(),
            Some(first) => format!("would fail: {first}"),
        };
        println!("left out  {file} as postgres: {outcome}");
    }

    // 4. The smoke check.
    println!();
    let check = std::fs::read_to_string(root().join("deploy/hosted-supabase-check.sql"))?;
    let result = psql(&cluster, "postgres", "hosted-supabase-check.sql", &check, false)?;
    let passed = result.errors.is_empty() && result.notices.iter().any(|n| n.contains("hosted-supabase check passed"));
    if passed {
        println!("smoke check as postgres: passed (a member sees the conversation and its message, a stranger and anon nothing)");
    } else {
        println!("smoke check as postgres: FAILED\n  {}", result.errors.join("\n  "));
        failed = true;
    }
    drop(cluster);
    if failed {
        bail!("supabase-check failed");
    }
    println!("\nsupabase-check passed");
    Ok(())
}
