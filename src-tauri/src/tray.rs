//! The system tray: the icon with the unread total, a tooltip with the count, and a menu that
//! always exists — Öffnen, Nicht stören (1 Stunde / bis morgen / aus), Beenden.
//!
//! Labels follow the language setting; the menu's actions call the engine like the UI does.

use std::path::Path;

use tauri::menu::{Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Runtime};

use crate::badge;
use crate::window;

pub const TRAY_ID: &str = "main";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    De,
    En,
}

struct Labels {
    open: &'static str,
    dnd: &'static str,
    dnd_hour: &'static str,
    dnd_tomorrow: &'static str,
    dnd_off: &'static str,
    quit: &'static str,
}

fn labels(lang: Lang) -> Labels {
    match lang {
        Lang::De => Labels {
            open: "Öffnen",
            dnd: "Nicht stören",
            dnd_hour: "1 Stunde",
            dnd_tomorrow: "Bis morgen",
            dnd_off: "Aus",
            quit: "Beenden",
        },
        Lang::En => Labels {
            open: "Open",
            dnd: "Do not disturb",
            dnd_hour: "1 hour",
            dnd_tomorrow: "Until tomorrow",
            dnd_off: "Off",
            quit: "Quit",
        },
    }
}

/// The tooltip for `unread` messages.
pub fn tooltip(unread: u32, lang: Lang) -> String {
    match (lang, unread) {
        (_, 0) => "Werkfunk".into(),
        (Lang::De, 1) => "Werkfunk — 1 ungelesene Nachricht".into(),
        (Lang::De, n) => format!("Werkfunk — {n} ungelesene Nachrichten"),
        (Lang::En, 1) => "Werkfunk — 1 unread message".into(),
        (Lang::En, n) => format!("Werkfunk — {n} unread messages"),
    }
}

fn menu<R: Runtime>(app: &AppHandle<R>, lang: Lang) -> tauri::Result<Menu<R>> {
    let l = labels(lang);
    let dnd = Submenu::with_items(
        app,
        l.dnd,
        true,
        &[
            &MenuItem::with_id(app, "dnd:hour", l.dnd_hour, true, None::<&str>)?,
            &MenuItem::with_id(app, "dnd:tomorrow", l.dnd_tomorrow, true, None::<&str>)?,
            &MenuItem::with_id(app, "dnd:off", l.dnd_off, true, None::<&str>)?,
        ],
    )?;
    Menu::with_items(
        app,
        &[
            &MenuItem::with_id(app, "open", l.open, true, None::<&str>)?,
            &dnd,
            &PredefinedMenuItem::separator(app)?,
            &MenuItem::with_id(app, "quit", l.quit, true, None::<&str>)?,
        ],
    )
}

fn image(unread: u32) -> tauri::image::Image<'static> {
    let img = badge::with_count(unread);
    tauri::image::Image::new_owned(img.pixels, img.width, img.height)
}

/// Builds the tray; `on_menu` gets the id of a chosen menu item other than open/quit.
///
/// On Linux the icon reaches the panel as a PNG file: it is written inside `profile`, since
/// the default (one shared temporary folder, one file name per tray id) lets two running
/// profiles overwrite and delete each other's icon.
pub fn create<R: Runtime>(
    app: &AppHandle<R>,
    profile: &Path,
    on_menu: impl Fn(&AppHandle<R>, &str) + Send + Sync + 'static,
) -> tauri::Result<TrayIcon<R>> {
    TrayIconBuilder::with_id(TRAY_ID)
        .temp_dir_path(profile.join("tray-icon"))
        .icon(image(0))
        .tooltip(tooltip(0, Lang::De))
        .menu(&menu(app, Lang::De)?)
        .show_menu_on_left_click(false)
        .on_menu_event(move |app, event| match event.id().as_ref() {
            "open" => window::show(app),
            "quit" => crate::quit(app),
            other => on_menu(app, other),
        })
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click { button: MouseButton::Left, button_state: MouseButtonState::Up, .. } = event {
                window::show(tray.app_handle());
            }
        })
        .build(app)
}

/// Shows `unread` on the icon and in the tooltip.
pub fn set_unread<R: Runtime>(app: &AppHandle<R>, unread: u32, lang: Lang) {
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        let _ = tray.set_icon(Some(image(unread)));
        let _ = tray.set_tooltip(Some(tooltip(unread, lang)));
    }
}

/// Relabels the menu for `lang`.
pub fn set_language<R: Runtime>(app: &AppHandle<R>, lang: Lang) {
    if let (Some(tray), Ok(menu)) = (app.tray_by_id(TRAY_ID), menu(app, lang)) {
        let _ = tray.set_menu(Some(menu));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tooltip_counts_in_both_languages() {
        assert_eq!(tooltip(0, Lang::De), "Werkfunk");
        assert_eq!(tooltip(1, Lang::De), "Werkfunk — 1 ungelesene Nachricht");
        assert_eq!(tooltip(3, Lang::En), "Werkfunk — 3 unread messages");
    }
}
