//! `cargo xtask ui`: builds the webview UI (`ui/dist`, embedded into the app at compile time).

use std::process::Command;

use anyhow::Result;

use crate::{process, root};

pub fn build() -> Result<()> {
    let dir = root().join("ui");
    if !dir.join("node_modules").exists() {
        process::run(
            "npm ci (ui)",
            Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&dir),
        )?;
    }
    process::run("npm run build (ui)", Command::new("npm").args(["run", "build"]).current_dir(&dir))
}

/// The app binary (debug or release); build the UI first, so that it embeds the current one.
pub fn app_binary(release: bool) -> Result<std::path::PathBuf> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "-p", "werkfunk-desktop", "--bin", "werkfunk"]).current_dir(root());
    if release {
        // What `tauri build` adds: the assets are served from the binary.
        cmd.args(["--release", "--features", "custom-protocol"]);
    }
    process::run("cargo build werkfunk-desktop", &mut cmd)?;
    Ok(crate::test::target_dir().join(if release { "release" } else { "debug" }).join("werkfunk"))
}
