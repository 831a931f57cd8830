//! Installs what the suites, the app and the demo need and the machine lacks: Debian packages
//! (the Tauri build's libraries, Xvfb, WebKitWebDriver, D-Bus), `tauri-driver` (cargo
//! install), and the npm packages of the UI and the Node suites (`npm ci`, from the committed
//! lock files).

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
    // The desktop app's build (webkit2gtk-4.1 pulls in GTK 3, libsoup 3, JavaScriptCore).
    ("pkg-config", "/usr/bin/pkg-config"),
    ("libwebkit2gtk-4.1-dev", "/usr/lib/x86_64-linux-gnu/pkgconfig/webkit2gtk-4.1.pc"),
    ("libgtk-3-dev", "/usr/lib/x86_64-linux-gnu/pkgconfig/gtk+-3.0.pc"),
    ("libsoup-3.0-dev", "/usr/lib/x86_64-linux-gnu/pkgconfig/libsoup-3.0.pc"),
    // The tray (dlopen'ed at run time: missing, the tray panics).
    ("libayatana-appindicator3-dev", "/usr/lib/x86_64-linux-gnu/pkgconfig/ayatana-appindicator3-0.1.pc"),
    // The end-to-end suite: a display, WebDriver for WebKitGTK, a private session bus.
    ("xvfb", "/usr/bin/Xvfb"),
    ("xauth", "/usr/bin/xauth"),
    ("webkit2gtk-driver", "/usr/bin/WebKitWebDriver"),
    ("dbus", "/usr/bin/dbus-run-session"),
    // Its screenshots, cropped from the X display (WebKitWebDriver's own never answers).
    ("imagemagick", "/usr/bin/import"),
    // The fault suite's client with its clock off by ±10 minutes (libfaketime via LD_PRELOAD).
    ("faketime", "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
    // `cargo xtask bundle`.
    ("dpkg-dev", "/usr/bin/dpkg-deb"),
];

/// Node packages with a package-lock.json: the UI and the Node suites.
pub const NODE_SUITES: &[&str] = &["ui", "tests/supabase-js", "tests/e2e"];

pub fn run() -> Result<()> {
    debian()?;
    node()?;
    tauri_driver()?;
    Ok(())
}

/// `tauri-driver`, the WebDriver front for Tauri apps (from crates, pinned).
pub fn tauri_driver() -> Result<()> {
    let present = Command::new("tauri-driver").arg("--help").output().map(|o| o.status.success()).unwrap_or(false);
    if present {
        return Ok(());
    }
    eprintln!("installing tauri-driver");
    process::run(
        "cargo install tauri-driver",
        Command::new(env!("CARGO")).args(["install", "tauri-driver", "--version", "2.1.0", "--locked"]),
    )
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
            process::run(
                "npm ci",
                Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&dir),
            )?;
        }
    }
    Ok(())
}

pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.trim_ascii() == b"0").unwrap_or(false)
}
