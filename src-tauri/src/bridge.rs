//! Engine events → the UI, the tray and the OS.
//!
//! Every engine event is emitted to the webview as `engine:<kind>` with the event's JSON as
//! payload (`docs/app-commands.md`). Beside that, three reactions live here because they are
//! the shell's: a notification event is shown natively ([`crate::notification`]), changes to
//! conversations recount the tray's unread total (coalesced), and a language change relabels
//! the tray. A subscriber that lagged behind tells the UI to re-read everything.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::broadcast::{error::RecvError, Receiver};
use werkfunk_core::{Engine, Event};

use crate::account::Account;
use crate::notification::{Notifier, Shown};
use crate::tray::{self, Lang};

/// The language the shell's own texts (tray, notification action) use.
pub fn lang_of(setting: werkfunk_core::view::Language) -> Lang {
    use werkfunk_core::view::Language;
    match setting {
        Language::De => Lang::De,
        Language::En => Lang::En,
        Language::System => {
            let locale = ["LC_ALL", "LC_MESSAGES", "LANG"].iter().find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
            if locale.is_some_and(|l| l.starts_with("en")) {
                Lang::En
            } else {
                Lang::De
            }
        }
    }
}

/// Starts forwarding `events` (subscribed before the engine went live, so nothing is missed).
pub fn start<R: Runtime>(
    app: AppHandle<R>,
    engine: Arc<Engine>,
    events: Receiver<Event>,
) -> tauri::async_runtime::JoinHandle<()> {
    tauri::async_runtime::spawn(run(app, engine, events))
}

async fn run<R: Runtime>(app: AppHandle<R>, engine: Arc<Engine>, mut events: Receiver<Event>) {
    let mut lang = match engine.settings().await {
        Ok(s) => lang_of(s.language),
        Err(_) => Lang::De,
    };
    tray::set_language(&app, lang);
    let recount = Recount { app: app.clone(), engine: engine.clone(), pending: Arc::new(AtomicBool::new(false)) };
    recount.soon(lang);
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(RecvError::Lagged(n)) => {
                tracing::debug!(missed = n, "the UI bridge lagged; the UI re-reads");
                let _ = app.emit("engine:conversations_changed", serde_json::json!({}));
                recount.soon(lang);
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let json = serde_json::to_value(&event).unwrap_or_default();
        if let Some(kind) = json.get("event").and_then(|k| k.as_str()) {
            let _ = app.emit(&format!("engine:{kind}"), &json);
        }
        match event {
            Event::Notification { conversation_id, title, body, sound, .. } => {
                let open_label = if lang == Lang::En { "Open" } else { "Öffnen" };
                app.state::<Notifier>().show(&app, Shown { conversation_id, title, body, sound, open_label: open_label.into() });
            }
            Event::ConversationChanged { .. } | Event::ConversationsChanged {} | Event::Synced { .. } => recount.soon(lang),
            Event::SettingsChanged { settings } => {
                lang = lang_of(settings.language);
                tray::set_language(&app, lang);
                recount.soon(lang);
            }
            Event::SignedOut {} => {
                tray::set_unread(&app, 0, lang);
                app.state::<Account>().drop_engine();
                return;
            }
            _ => {}
        }
    }
}

/// Recounts the unread total for the tray, at most once per quarter second.
struct Recount<R: Runtime> {
    app: AppHandle<R>,
    engine: Arc<Engine>,
    pending: Arc<AtomicBool>,
}

impl<R: Runtime> Recount<R> {
    fn soon(&self, lang: Lang) {
        if self.pending.swap(true, Ordering::SeqCst) {
            return;
        }
        let (app, engine, pending) = (self.app.clone(), self.engine.clone(), self.pending.clone());
        tauri::async_runtime::spawn(async move {
            tokio::time::sleep(Duration::from_millis(250)).await;
            pending.store(false, Ordering::SeqCst);
            if let Ok(list) = engine.conversations().await {
                let unread = list.iter().filter(|c| !c.muted).map(|c| c.unread_count).sum();
                tray::set_unread(&app, unread, lang);
            }
        });
    }
}
