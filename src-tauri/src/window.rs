//! The main window: created with the size and position it had last time, hidden (not closed)
//! by its close button, shown and focused by the tray, a notification or a second launch.
//! Links never open inside it: any navigation away from the app goes to the system browser.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Manager, PhysicalPosition, PhysicalSize, Runtime, WebviewUrl, WebviewWindow, WebviewWindowBuilder};

pub const MAIN: &str = "main";

/// Where and how big the window was (kept in the profile folder).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Geometry {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
    pub maximized: bool,
}

fn geometry_file(profile: &Path) -> PathBuf {
    profile.join("window.json")
}

pub fn load_geometry(profile: &Path) -> Option<Geometry> {
    let g: Geometry = serde_json::from_slice(&std::fs::read(geometry_file(profile)).ok()?).ok()?;
    // A window saved on a monitor that is gone, or absurdly small, is not restored.
    (g.width >= 480 && g.height >= 360 && g.x > -10_000 && g.y > -10_000).then_some(g)
}

pub fn save_geometry<R: Runtime>(window: &WebviewWindow<R>, profile: &Path) {
    let (Ok(pos), Ok(size)) = (window.outer_position(), window.inner_size()) else {
        return;
    };
    let g = Geometry {
        x: pos.x,
        y: pos.y,
        width: size.width,
        height: size.height,
        maximized: window.is_maximized().unwrap_or(false),
    };
    if let Ok(json) = serde_json::to_vec(&g) {
        let _ = std::fs::create_dir_all(profile);
        let _ = std::fs::write(geometry_file(profile), json);
    }
}

/// Only the app's own pages load in the window.
fn is_app_url(url: &tauri::Url) -> bool {
    matches!((url.scheme(), url.host_str()), ("tauri", Some("localhost")) | ("http" | "https", Some("tauri.localhost")))
}

pub fn create<R: Runtime>(app: &AppHandle<R>, profile: &Path, visible: bool) -> tauri::Result<WebviewWindow<R>> {
    let opener = app.clone();
    let mut builder = WebviewWindowBuilder::new(app, MAIN, WebviewUrl::App("index.html".into()))
        .title("Werkfunk")
        .inner_size(1280.0, 800.0)
        .min_inner_size(720.0, 480.0)
        .visible(false)
        .on_navigation(move |url| {
            if is_app_url(url) {
                return true;
            }
            if matches!(url.scheme(), "http" | "https" | "mailto") {
                use tauri_plugin_opener::OpenerExt;
                let _ = opener.opener().open_url(url.as_str(), None::<&str>);
            }
            false
        });
    let saved = load_geometry(profile);
    if saved.is_none() {
        builder = builder.center();
    }
    let window = builder.build()?;
    if let Some(g) = saved {
        let _ = window.set_size(PhysicalSize::new(g.width, g.height));
        let _ = window.set_position(PhysicalPosition::new(g.x, g.y));
        if g.maximized {
            let _ = window.maximize();
        }
    }
    if visible {
        window.show()?;
    }
    Ok(window)
}

/// Brings the main window to the front.
pub fn show<R: Runtime>(app: &AppHandle<R>) {
    if let Some(w) = app.get_webview_window(MAIN) {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
    }
}

/// Is the window on screen (shown and not minimized)?
pub fn visible<R: Runtime>(window: &WebviewWindow<R>) -> bool {
    window.is_visible().unwrap_or(false) && !window.is_minimized().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_app_itself_loads_in_the_window() {
        assert!(is_app_url(&"tauri://localhost/index.html".parse().unwrap()));
        assert!(is_app_url(&"http://tauri.localhost/".parse().unwrap()));
        assert!(!is_app_url(&"https://example.org/".parse().unwrap()));
        assert!(!is_app_url(&"tauri://evil/".parse().unwrap()));
    }

    #[test]
    fn geometry_round_trips_and_nonsense_is_not_restored() {
        let dir = std::env::temp_dir().join(format!("werkfunk-geometry-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let g = Geometry { x: 10, y: 20, width: 1000, height: 700, maximized: false };
        std::fs::write(geometry_file(&dir), serde_json::to_vec(&g).unwrap()).unwrap();
        assert_eq!(load_geometry(&dir), Some(g));
        std::fs::write(geometry_file(&dir), br#"{"x":0,"y":0,"width":5,"height":5,"maximized":false}"#).unwrap();
        assert_eq!(load_geometry(&dir), None);
        std::fs::write(geometry_file(&dir), b"garbage").unwrap();
        assert_eq!(load_geometry(&dir), None);
    }
}
