//! The commands the webview may call (`docs/app-commands.md`), each one call into the engine.
//!
//! Only sign-in/up/out and the window and settings commands do more than forward: they swap
//! the account's engine, or apply what is the shell's (autostart, the tray's language).

use tauri::{AppHandle, State, WebviewWindow};
use uuid::Uuid;
use werkfunk_core::view::{self, ConversationKind, Role, Settings};
use werkfunk_core::{Connectivity, Engine};

use crate::account::Account;
use crate::error::{CommandError, CommandResult};
use crate::{autostart, bridge, tray, window};

type Acc<'a> = State<'a, Account>;

#[derive(serde::Serialize)]
pub struct SessionView {
    signed_in: bool,
    profile: Option<view::Profile>,
}

#[tauri::command]
pub async fn session(account: Acc<'_>) -> CommandResult<SessionView> {
    match account.current() {
        Some(e) => Ok(SessionView { signed_in: true, profile: Some(e.profile().await?) }),
        None => Ok(SessionView { signed_in: false, profile: None }),
    }
}

#[tauri::command]
pub async fn sign_in(app: AppHandle, account: Acc<'_>, email: String, password: String) -> CommandResult<view::Profile> {
    account.drop_engine();
    let o = &account.options;
    let engine = Engine::sign_in(&o.profile, &o.server, &email, &password).await?;
    Ok(account.adopt(&app, engine)?.profile().await?)
}

#[tauri::command]
pub async fn sign_up(
    app: AppHandle,
    account: Acc<'_>,
    email: String,
    password: String,
    name: String,
    role: Role,
) -> CommandResult<view::Profile> {
    account.drop_engine();
    let o = &account.options;
    let engine = Engine::sign_up(&o.profile, &o.server, &email, &password, &name, role).await?;
    Ok(account.adopt(&app, engine)?.profile().await?)
}

#[tauri::command]
pub async fn sign_out(app: AppHandle, account: Acc<'_>, wipe: bool) -> CommandResult<()> {
    let engine = account.engine()?;
    // The tray keeps the language the account had (a wiped profile no longer knows it).
    let lang = engine.settings().await.map(|s| bridge::lang_of(s.language)).unwrap_or(tray::Lang::De);
    engine.sign_out(wipe).await?;
    account.drop_engine();
    tray::set_unread(&app, 0, lang);
    Ok(())
}

#[tauri::command]
pub async fn unsent_count(account: Acc<'_>) -> CommandResult<u32> {
    Ok(account.engine()?.unsent_count().await?)
}

#[tauri::command]
pub async fn connectivity(account: Acc<'_>) -> CommandResult<Connectivity> {
    Ok(account.engine()?.connectivity())
}

#[tauri::command]
pub async fn conversations(account: Acc<'_>) -> CommandResult<Vec<view::ConversationRow>> {
    Ok(account.engine()?.conversations().await?)
}

#[tauri::command]
pub async fn create_conversation(
    account: Acc<'_>,
    kind: ConversationKind,
    with: Vec<Uuid>,
    title: Option<String>,
) -> CommandResult<Uuid> {
    Ok(account.engine()?.create_conversation(kind, &with, title.as_deref()).await?)
}

#[tauri::command]
pub async fn people(account: Acc<'_>, query: String) -> CommandResult<Vec<view::Profile>> {
    Ok(account.engine()?.people(&query).await?)
}

#[tauri::command]
pub async fn members(account: Acc<'_>, conversation_id: Uuid) -> CommandResult<Vec<view::Member>> {
    Ok(account.engine()?.members(conversation_id).await?)
}

#[tauri::command]
pub async fn add_members(account: Acc<'_>, conversation_id: Uuid, user_ids: Vec<Uuid>) -> CommandResult<()> {
    Ok(account.engine()?.add_members(conversation_id, &user_ids).await?)
}

#[tauri::command]
pub async fn remove_member(account: Acc<'_>, conversation_id: Uuid, user_id: Uuid) -> CommandResult<()> {
    Ok(account.engine()?.remove_member(conversation_id, user_id).await?)
}

#[tauri::command]
pub async fn leave_conversation(account: Acc<'_>, conversation_id: Uuid) -> CommandResult<()> {
    Ok(account.engine()?.leave_conversation(conversation_id).await?)
}

#[tauri::command]
pub async fn set_muted(account: Acc<'_>, conversation_id: Uuid, muted: bool) -> CommandResult<()> {
    Ok(account.engine()?.set_muted(conversation_id, muted).await?)
}

#[tauri::command]
pub async fn timeline(account: Acc<'_>, conversation_id: Uuid, limit: usize) -> CommandResult<Vec<view::Message>> {
    Ok(account.engine()?.timeline(conversation_id, limit).await?)
}

#[tauri::command]
pub async fn load_older(
    account: Acc<'_>,
    conversation_id: Uuid,
    before_created_at: chrono::DateTime<chrono::Utc>,
    before_id: Uuid,
    limit: usize,
) -> CommandResult<Vec<view::Message>> {
    Ok(account.engine()?.load_older(conversation_id, before_created_at, before_id, limit).await?)
}

#[tauri::command]
pub async fn send(account: Acc<'_>, conversation_id: Uuid, text: String) -> CommandResult<Uuid> {
    Ok(account.engine()?.send(conversation_id, &text).await?)
}

#[tauri::command]
pub async fn edit_message(account: Acc<'_>, message_id: Uuid, text: String) -> CommandResult<()> {
    Ok(account.engine()?.edit_message(message_id, &text).await?)
}

#[tauri::command]
pub async fn delete_message(account: Acc<'_>, message_id: Uuid) -> CommandResult<()> {
    Ok(account.engine()?.delete_message(message_id).await?)
}

#[tauri::command]
pub async fn retry_message(account: Acc<'_>, message_id: Uuid) -> CommandResult<()> {
    Ok(account.engine()?.retry_message(message_id).await?)
}

#[tauri::command]
pub async fn discard_message(account: Acc<'_>, message_id: Uuid) -> CommandResult<()> {
    Ok(account.engine()?.discard_message(message_id).await?)
}

#[tauri::command]
pub async fn mark_read(account: Acc<'_>, conversation_id: Uuid) -> CommandResult<()> {
    Ok(account.engine()?.mark_read(conversation_id).await?)
}

#[tauri::command]
pub async fn open_conversation(account: Acc<'_>, conversation_id: Option<Uuid>) -> CommandResult<()> {
    Ok(account.engine()?.set_in_front(conversation_id).await?)
}

#[tauri::command]
pub async fn typing(account: Acc<'_>, conversation_id: Uuid) -> CommandResult<()> {
    account.engine()?.typing(conversation_id).await;
    Ok(())
}

#[tauri::command]
pub async fn typing_now(account: Acc<'_>, conversation_id: Uuid) -> CommandResult<Vec<String>> {
    Ok(account.engine()?.typing_now(conversation_id).await?)
}

#[tauri::command]
pub async fn online(account: Acc<'_>) -> CommandResult<Vec<Uuid>> {
    Ok(account.engine()?.online())
}

#[tauri::command]
pub async fn draft(account: Acc<'_>, conversation_id: Uuid) -> CommandResult<Option<String>> {
    Ok(account.engine()?.draft(conversation_id).await?)
}

#[tauri::command]
pub async fn save_draft(account: Acc<'_>, conversation_id: Uuid, text: String) -> CommandResult<()> {
    Ok(account.engine()?.save_draft(conversation_id, &text).await?)
}

#[tauri::command]
pub async fn search(account: Acc<'_>, query: String, limit: usize) -> CommandResult<Vec<view::SearchHit>> {
    Ok(account.engine()?.search(&query, limit).await?)
}

#[tauri::command]
pub async fn notifications(account: Acc<'_>) -> CommandResult<Vec<view::Notification>> {
    Ok(account.engine()?.notifications().await?)
}

#[tauri::command]
pub async fn mark_notification_read(account: Acc<'_>, id: Uuid) -> CommandResult<()> {
    Ok(account.engine()?.mark_notification_read(id).await?)
}

#[tauri::command]
pub async fn mark_all_notifications_read(account: Acc<'_>) -> CommandResult<()> {
    Ok(account.engine()?.mark_all_notifications_read().await?)
}

#[tauri::command]
pub async fn profile(account: Acc<'_>) -> CommandResult<view::Profile> {
    Ok(account.engine()?.profile().await?)
}

#[tauri::command]
pub async fn update_profile(account: Acc<'_>, full_name: String) -> CommandResult<view::Profile> {
    Ok(account.engine()?.update_profile(&full_name).await?)
}

#[tauri::command]
pub async fn change_password(account: Acc<'_>, current: String, next: String) -> CommandResult<()> {
    Ok(account.engine()?.change_password(&current, &next).await?)
}

#[tauri::command]
pub async fn settings(account: Acc<'_>) -> CommandResult<Settings> {
    Ok(account.engine()?.settings().await?)
}

/// Saves the settings; autostart is applied here (it is the shell's), the rest by the engine,
/// whose `SettingsChanged` event relabels the tray (`bridge`).
#[tauri::command]
pub async fn update_settings(account: Acc<'_>, settings: Settings) -> CommandResult<Settings> {
    let engine = account.engine()?;
    let before = engine.settings().await?;
    if before.autostart != settings.autostart {
        autostart::apply(&account.options.profile, settings.autostart)
            .map_err(|e| CommandError::new("autostart_unavailable", e.to_string()))?;
    }
    Ok(engine.update_settings(settings).await?)
}

#[tauri::command]
pub async fn window_state(window: WebviewWindow, account: Acc<'_>, focused: bool, visible: bool) -> CommandResult<()> {
    let visible = visible && window::visible(&window);
    Ok(account.engine()?.set_window_state(focused, visible).await?)
}
