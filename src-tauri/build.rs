//! Embeds the UI (`../ui/dist`) and declares Werkfunk's commands, so that the capability in
//! `capabilities/` can allow the webview exactly these and nothing else.

const COMMANDS: &[&str] = &[
    "session",
    "sign_in",
    "sign_up",
    "sign_out",
    "unsent_count",
    "connectivity",
    "conversations",
    "create_conversation",
    "people",
    "members",
    "add_members",
    "remove_member",
    "leave_conversation",
    "set_muted",
    "timeline",
    "load_older",
    "send",
    "edit_message",
    "delete_message",
    "retry_message",
    "discard_message",
    "mark_read",
    "open_conversation",
    "typing",
    "typing_now",
    "online",
    "draft",
    "save_draft",
    "search",
    "notifications",
    "mark_notification_read",
    "mark_all_notifications_read",
    "profile",
    "update_profile",
    "change_password",
    "settings",
    "update_settings",
    "window_state",
];

fn main() {
    // A workspace build (clippy, `cargo test --workspace`) must not need Node: when the UI has
    // not been built, embed a page that says how to build it. `cargo xtask` always builds it.
    let dist = std::path::Path::new("../ui/dist");
    if !dist.join("index.html").exists() {
        println!("cargo:warning=ui/dist is missing: embedding a placeholder (run `cargo xtask ui`)");
        std::fs::create_dir_all(dist).expect("create ui/dist");
        std::fs::write(
            dist.join("index.html"),
            "<!doctype html><meta charset=utf-8><title>Werkfunk</title>\
             <p>The UI is not built. Run <code>cargo xtask ui</code>, then build again.</p>",
        )
        .expect("write the placeholder page");
    }
    println!("cargo:rerun-if-changed=../ui/dist");
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)))
        .expect("tauri-build");
}
