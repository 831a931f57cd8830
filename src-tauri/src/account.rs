//! The signed-in account of this window: at most one [`Engine`], opened from the profile at
//! start (offline: local files only), replaced by sign-in and sign-up, dropped by sign-out.
//! While there is one, it is live and its events flow to the UI ([`crate::bridge`]).

use std::sync::{Arc, Mutex, RwLock};

use tauri::{AppHandle, Runtime};
use werkfunk_core::{Engine, RealtimeConfig};

use crate::bridge;
use crate::error::{CommandError, CommandResult};
use crate::options::Options;

pub struct Account {
    pub options: Options,
    engine: RwLock<Option<Arc<Engine>>>,
    bridge: Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
}

impl Account {
    pub fn new(options: Options) -> Account {
        Account { options, engine: RwLock::new(None), bridge: Mutex::new(None) }
    }

    /// The engine, or `signed_out`.
    pub fn engine(&self) -> CommandResult<Arc<Engine>> {
        self.engine.read().unwrap_or_else(|p| p.into_inner()).clone().ok_or_else(CommandError::signed_out)
    }

    pub fn current(&self) -> Option<Arc<Engine>> {
        self.engine.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Opens the account the profile was signed in with, if any.
    pub async fn resume<R: Runtime>(&self, app: &AppHandle<R>) -> CommandResult<bool> {
        match Engine::open(&self.options.profile, &self.options.server).await {
            Ok(engine) => {
                self.adopt(app, engine)?;
                Ok(true)
            }
            Err(e) if e.code() == "signed_out" => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes `engine` this window's account: live, with its events bridged to the UI.
    pub fn adopt<R: Runtime>(&self, app: &AppHandle<R>, engine: Engine) -> CommandResult<Arc<Engine>> {
        let engine = Arc::new(engine);
        let task = bridge::start(app.clone(), engine.clone(), engine.subscribe());
        engine.start_live(RealtimeConfig::default())?;
        if let Some(old) = self.bridge.lock().unwrap_or_else(|p| p.into_inner()).replace(task) {
            old.abort();
        }
        *self.engine.write().unwrap_or_else(|p| p.into_inner()) = Some(engine.clone());
        Ok(engine)
    }

    /// Forgets the engine (after sign-out, or when the session ended).
    pub fn drop_engine(&self) -> Option<Arc<Engine>> {
        if let Some(task) = self.bridge.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
        self.engine.write().unwrap_or_else(|p| p.into_inner()).take()
    }
}
