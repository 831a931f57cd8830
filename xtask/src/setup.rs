//! Installs what the suites and the demo need and the machine lacks: Debian packages and the
//! npm packages of the Node suites (`npm ci`, from the committed lock files).

use std::process::Command;

use anyhow::Result;

use crate::process;
use crate::root;

/// Debian packages, by the command or file that shows each is present.
const PACKAGES: &[(&str, &str)] = &[
    ("postgresql-15", "/usr/lib/postgresql/15/bin/initdb"),
    ("nodejs", "/usr/bin/node"),
    ("npm", "/usr/bin/npm"),
    ("curl", "/usr/bin/curl"),
];

/// Node suites with a package-lock.json.
pub const NODE_SUITES: &[&str] = &["tests/supabase-js"];

pub fn run() -> Result<()> {
    debian()?;
    node()?;
    Ok(())
}

fn node_present() -> bool {
    Command::new("node").arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

pub fn debian() -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(pkg, path)| {
            // A Node from elsewhere (nvm, a tarball) serves as well as Debian's.
            let present = std::path::Path::new(path).exists() || (matches!(*pkg, "nodejs" | "npm") && node_present());
            !present
        })
        .map(|(pkg, _)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing Debian packages: {}", missing.join(" "));
    let sudo = if is_root() { vec![] } else { vec!["sudo"] };
    let apt = |args: &[&str]| {
        let mut c = Command::new(if sudo.is_empty() { "apt-get" } else { "sudo" });
        if !sudo.is_empty() {
            c.arg("apt-get");
        }
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    process::run("apt-get update", &mut apt(&["update", "-q"]))?;
    let mut install = apt(&["install", "-y", "-q", "--no-install-recommends"]);
    install.args(&missing);
    process::run("apt-get install", &mut install)
}

pub fn node() -> Result<()> {
    for suite in NODE_SUITES {
        let dir = root().join(suite);
        if dir.join("package-lock.json").exists() {
            eprintln!("npm ci in {suite}");
            process::run("npm ci", Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&dir))?;
        }
    }
    Ok(())
}

pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.trim_ascii() == b"0").unwrap_or(false)
}
