//! `werkfunk-desktop`: the Tauri v2 shell over `werkfunk-core` — thin glue, no decisions.
//!
//! - [`options`]: the command line (`--profile`, `--url`, `--anon-key`, `--open`, `--hidden`);
//! - [`instance`]: one app per profile (a second launch focuses the first);
//! - [`account`]: the window's signed-in engine; [`commands`]: what the webview may call;
//! - [`bridge`]: engine events to the UI, the tray and native notifications;
//! - [`window`], [`tray`] with [`badge`], [`notification`], [`autostart`]: the desktop's parts.
//!
//! Everything a user sees decided — what to notify, what is unread, what is sent — is decided
//! in the engine; this crate forwards.

mod account;
mod autostart;
mod badge;
mod bridge;
mod commands;
mod error;
mod instance;
mod notification;
mod options;
mod tray;
mod window;

use tauri::{AppHandle, Manager, RunEvent, Runtime, WindowEvent};

use account::Account;
use instance::Request;
use notification::Notifier;
use options::Options;

/// Quits for real (the tray's "Beenden"); closing the window only hides it.
pub fn quit<R: Runtime>(app: &AppHandle<R>) {
    if let Some(w) = app.get_webview_window(window::MAIN) {
        window::save_geometry(&w, &app.state::<Account>().options.profile);
    }
    app.state::<Quitting>().0.store(true, std::sync::atomic::Ordering::SeqCst);
    app.exit(0);
}

#[derive(Default)]
struct Quitting(std::sync::atomic::AtomicBool);

fn on_tray_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let Some(engine) = app.state::<Account>().current() else {
        return;
    };
    let until = match id {
        "dnd:hour" => Some(chrono::Utc::now() + chrono::Duration::hours(1)),
        "dnd:tomorrow" => Some(tomorrow_morning(chrono::Local::now())),
        "dnd:off" => None,
        _ => return,
    };
    tauri::async_runtime::spawn(async move {
        if let Ok(mut s) = engine.settings().await {
            s.dnd_until = until;
            if let Err(e) = engine.update_settings(s).await {
                tracing::warn!(error = %e, "could not change do-not-disturb");
            }
        }
    });
}

/// "Bis morgen": 7:00 tomorrow, local time.
fn tomorrow_morning(now: chrono::DateTime<chrono::Local>) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    let day = now.date_naive() + chrono::Days::new(1);
    let at = day.and_hms_opt(7, 0, 0).expect("a valid time");
    chrono::Local.from_local_datetime(&at).earliest().map_or(now.to_utc() + chrono::Duration::hours(12), |t| t.to_utc())
}

pub fn run() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let options = Options::from_env();
    let request = options.open.map_or(Request::Focus, Request::Open);
    if instance::hand_over(&options.profile, &request) {
        return; // the app of this profile runs already and has been asked to show itself
    }
    // WebKitGTK's DMA-BUF renderer paints a blank window on some GPU stacks (NVIDIA).
    if std::env::var_os("WEBKIT_DISABLE_DMABUF_RENDERER").is_none() {
        std::env::set_var("WEBKIT_DISABLE_DMABUF_RENDERER", "1");
    }
    let open_at_start = options.open;
    let hidden = options.hidden;
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_opener::init())
        .manage(Account::new(options))
        .manage(Notifier::default())
        .manage(Quitting::default())
        .invoke_handler(tauri::generate_handler![
            commands::session,
            commands::sign_in,
            commands::sign_up,
            commands::sign_out,
            commands::unsent_count,
            commands::connectivity,
            commands::conversations,
            commands::create_conversation,
            commands::people,
            commands::members,
            commands::add_members,
            commands::remove_member,
            commands::leave_conversation,
            commands::set_muted,
            commands::timeline,
            commands::load_older,
            commands::send,
            commands::edit_message,
            commands::delete_message,
            commands::retry_message,
            commands::discard_message,
            commands::mark_read,
            commands::open_conversation,
            commands::typing,
            commands::typing_now,
            commands::online,
            commands::draft,
            commands::save_draft,
            commands::search,
            commands::notifications,
            commands::mark_notification_read,
            commands::mark_all_notifications_read,
            commands::profile,
            commands::update_profile,
            commands::change_password,
            commands::settings,
            commands::update_settings,
            commands::window_state,
        ])
        .setup(move |app| {
            let handle = app.handle().clone();
            let profile = app.state::<Account>().options.profile.clone();
            let h = handle.clone();
            if let Err(e) = instance::listen(&profile, move |r| match r {
                Request::Focus => window::show(&h),
                Request::Open(c) => notification::open_conversation(&h, c),
            }) {
                tracing::warn!(error = %e, "second launches cannot reach this app");
            }
            tray::create(&handle, &profile, on_tray_menu)?;
            // The account opens from local files only: the cached list shows without the network.
            if let Err(e) = tauri::async_runtime::block_on(app.state::<Account>().resume(&handle)) {
                tracing::warn!(code = %e.code, error = %e.message, "could not open the profile");
            }
            window::create(&handle, &profile, !hidden)?;
            if let Some(c) = open_at_start {
                notification::open_conversation(&handle, c);
            }
            Ok(())
        })
        .on_window_event(|window, event| {
            let app = window.app_handle();
            let account = app.state::<Account>();
            match event {
                WindowEvent::CloseRequested { api, .. }
                    if !app.state::<Quitting>().0.load(std::sync::atomic::Ordering::SeqCst) =>
                {
                    // Closing keeps Werkfunk in the tray; "Beenden" quits.
                    api.prevent_close();
                    if let Some(w) = app.get_webview_window(window::MAIN) {
                        window::save_geometry(&w, &account.options.profile);
                    }
                    let _ = window.hide();
                    report_window_state(app, false, false);
                }
                WindowEvent::Focused(focused) => {
                    let visible = app.get_webview_window(window::MAIN).is_some_and(|w| window::visible(&w));
                    report_window_state(app, *focused, visible);
                }
                _ => {}
            }
        })
        .build(tauri::generate_context!())
        .expect("the Werkfunk window could not be created");
    app.run(|app, event| {
        if let RunEvent::ExitRequested { api, code, .. } = event {
            // The last window hidden is no reason to quit; only "Beenden" (an explicit code) is.
            if code.is_none() && !app.state::<Quitting>().0.load(std::sync::atomic::Ordering::SeqCst) {
                api.prevent_exit();
            }
        }
    });
}

fn report_window_state<R: Runtime>(app: &AppHandle<R>, focused: bool, visible: bool) {
    if let Some(engine) = app.state::<Account>().current() {
        tauri::async_runtime::spawn(async move {
            if let Err(e) = engine.set_window_state(focused, visible).await {
                tracing::debug!(error = %e, "window state not recorded");
            }
        });
    }
}
