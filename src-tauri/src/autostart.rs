//! Autostart at login, a setting of this device: on Linux an XDG autostart entry
//! (`~/.config/autostart/werkfunk[-<profile>].desktop`) that starts the app hidden in the tray.
//! Other systems: not yet (the setting answers `unsupported`).

use std::path::{Path, PathBuf};

fn entry_path(profile: &Path) -> Option<PathBuf> {
    let name = if *profile == werkfunk_core::default_profile() {
        "werkfunk.desktop".to_owned()
    } else {
        // One entry per profile (a workshop PC may start two accounts), named by a stable
        // FNV-1a hash of the profile path.
        let hash = profile
            .to_string_lossy()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        format!("werkfunk-{:08x}.desktop", hash as u32)
    };
    Some(dirs::config_dir()?.join("autostart").join(name))
}

fn entry(exe: &Path, profile: &Path) -> String {
    let quote = |p: &Path| format!("\"{}\"", p.to_string_lossy().replace('\\', "\\\\").replace('"', "\\\""));
    let profile_arg =
        if *profile == werkfunk_core::default_profile() { String::new() } else { format!(" --profile {}", quote(profile)) };
    format!(
        "[Desktop Entry]\nType=Application\nName=Werkfunk\nExec={}{} --hidden\nIcon=werkfunk\nX-GNOME-Autostart-enabled=true\nNoDisplay=false\n",
        quote(exe),
        profile_arg
    )
}

/// Turns autostart on or off for `profile`.
pub fn apply(profile: &Path, enabled: bool) -> std::io::Result<()> {
    if !cfg!(target_os = "linux") {
        return if enabled {
            Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "autostart is not supported here yet"))
        } else {
            Ok(())
        };
    }
    let Some(path) = entry_path(profile) else {
        return Ok(());
    };
    if enabled {
        let exe = std::env::current_exe()?;
        std::fs::create_dir_all(path.parent().expect("autostart folder"))?;
        std::fs::write(&path, entry(&exe, profile))
    } else {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_starts_this_profile_hidden() {
        let e = entry(Path::new("/usr/bin/werkfunk"), Path::new("/home/a/Werk Funk"));
        assert!(e.contains("Exec=\"/usr/bin/werkfunk\" --profile \"/home/a/Werk Funk\" --hidden"), "{e}");
        let e = entry(Path::new("/usr/bin/werkfunk"), &werkfunk_core::default_profile());
        assert!(e.contains("Exec=\"/usr/bin/werkfunk\" --hidden"), "{e}");
    }
}
