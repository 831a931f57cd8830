//! `cargo xtask bundle`: the desktop app as a Debian package, `target/bundle/werkfunk_<version>_<arch>.deb`.
//!
//! Built by hand with `dpkg-deb` rather than the Tauri CLI: the package is the stripped release
//! binary (UI embedded), the `.desktop` entry (so the desktop lists Werkfunk, also among its
//! notification senders) and the icons from `icons/` in the hicolor theme.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::test::target_dir;
use crate::{process, root, setup, ui};

const ICON_SIZES: &[u32] = &[32, 64, 128, 256, 512];

pub fn run() -> Result<PathBuf> {
    setup::debian()?;
    ui::build()?;
    let binary = ui::app_binary(true)?;
    let version = env!("CARGO_PKG_VERSION");
    let arch = String::from_utf8(Command::new("dpkg").arg("--print-architecture").output()?.stdout)?.trim().to_owned();
    let out = target_dir().join("bundle");
    let tree = out.join(format!("werkfunk_{version}_{arch}"));
    let _ = std::fs::remove_dir_all(&tree);
    let place = |from: &Path, to: &str| -> Result<()> {
        let dest = tree.join(to);
        std::fs::create_dir_all(dest.parent().expect("a folder"))?;
        std::fs::copy(from, &dest).with_context(|| format!("copying {}", from.display()))?;
        Ok(())
    };
    place(&binary, "usr/bin/werkfunk")?;
    process::run("strip", Command::new("strip").arg(tree.join("usr/bin/werkfunk")))?;
    place(&root().join("src-tauri/werkfunk.desktop"), "usr/share/applications/werkfunk.desktop")?;
    for size in ICON_SIZES {
        place(
            &root().join(format!("icons/{size}x{size}.png")),
            &format!("usr/share/icons/hicolor/{size}x{size}/apps/werkfunk.png"),
        )?;
    }
    place(&root().join("icons/werkfunk.svg"), "usr/share/icons/hicolor/scalable/apps/werkfunk.svg")?;
    let installed_kib = dir_size(&tree)? / 1024;
    std::fs::create_dir_all(tree.join("DEBIAN"))?;
    std::fs::write(
        tree.join("DEBIAN/control"),
        format!(
            "Package: werkfunk\nVersion: {version}\nArchitecture: {arch}\nMaintainer: Werkfunk <team@werkfunk.test>\n\
             Installed-Size: {installed_kib}\nDepends: libwebkit2gtk-4.1-0, libgtk-3-0, libayatana-appindicator3-1\n\
             Section: net\nPriority: optional\nHomepage: https://werkfunk.test\n\
             Description: Werkfunk, the messenger of the crafts marketplace\n \
             Tradespeople and their customers talk about jobs: one to one, in groups and in\n \
             project conversations. History stays readable without signal, and what you write\n \
             goes out by itself, once and in order, when the line comes back.\n"
        ),
    )?;
    let deb = out.join(format!("werkfunk_{version}_{arch}.deb"));
    process::run("dpkg-deb", Command::new("dpkg-deb").args(["--build", "--root-owner-group"]).arg(&tree).arg(&deb))?;
    let size = std::fs::metadata(&deb)?.len();
    println!("{} ({:.1} MB)", deb.display(), size as f64 / 1_000_000.0);
    Ok(deb)
}

fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() { dir_size(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}
