//! Native notifications (notify-rust) for what the engine decided to notify.
//!
//! One notification per conversation: a later message replaces the earlier one (same OS id)
//! instead of stacking. The engine's sound decision picks a sound or silence. Clicking a
//! notification (its default action, on Linux through the notification server's
//! `ActionInvoked` signal) brings the window up on that conversation. The `.desktop` entry
//! named in the hints lets the desktop list Werkfunk among its notification senders.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tauri::{AppHandle, Emitter, Runtime};
use uuid::Uuid;

use crate::window;

/// What to show.
#[derive(Debug, Clone)]
pub struct Shown {
    pub conversation_id: Uuid,
    pub title: String,
    pub body: String,
    pub sound: bool,
    /// The default action's label ("Öffnen" / "Open").
    pub open_label: String,
}

/// The notifications on screen, by conversation.
#[derive(Default, Clone)]
pub struct Notifier {
    on_screen: Arc<Mutex<HashMap<Uuid, u32>>>,
}

impl Notifier {
    /// Shows (or replaces) the notification of `n.conversation_id`, off the UI thread.
    pub fn show<R: Runtime>(&self, app: &AppHandle<R>, n: Shown) {
        let on_screen = self.on_screen.clone();
        let app = app.clone();
        let spawned = std::thread::Builder::new().name("notification".into()).spawn(move || {
            let replaces = on_screen.lock().unwrap_or_else(|p| p.into_inner()).get(&n.conversation_id).copied();
            let mut note = notify_rust::Notification::new();
            note.appname("Werkfunk").summary(&n.title).body(&n.body).icon("werkfunk").action("default", &n.open_label);
            #[cfg(all(unix, not(target_os = "macos")))]
            {
                use notify_rust::Hint;
                note.hint(Hint::DesktopEntry("werkfunk".into())).hint(Hint::Category("im.received".into()));
                if n.sound {
                    note.sound_name("message-new-instant");
                } else {
                    note.hint(Hint::SuppressSound(true));
                }
            }
            if let Some(id) = replaces {
                note.id(id);
            }
            let handle = match note.show() {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(error = %e, "could not show a notification");
                    return;
                }
            };
            if replaces.is_some() {
                return; // the first notification's thread is already waiting for its click
            }
            on_screen.lock().unwrap_or_else(|p| p.into_inner()).insert(n.conversation_id, handle.id());
            #[cfg(all(unix, not(target_os = "macos")))]
            handle.wait_for_action(|action| {
                if action == "default" {
                    open_conversation(&app, n.conversation_id);
                }
            });
            on_screen.lock().unwrap_or_else(|p| p.into_inner()).remove(&n.conversation_id);
            let _ = app;
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start a notification thread");
        }
    }
}

/// Shows the window on `conversation` (a click on a notification, a second launch).
pub fn open_conversation<R: Runtime>(app: &AppHandle<R>, conversation: Uuid) {
    window::show(app);
    let _ = app.emit("app:open_conversation", serde_json::json!({ "conversation_id": conversation }));
}
