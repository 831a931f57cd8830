//! The one place background tasks are started.
//!
//! Every long-lived task of the engine (outbox workers, the realtime connection, the live
//! sync) is spawned here with a name. A task that panics or ends unexpectedly is logged with
//! its name; its [`TaskHandle`] aborts it when dropped, so dropping the engine stops its
//! tasks. Nothing else in the crate calls `tokio::spawn`. SQLite runs on the store's own
//! threads ([`crate::store`]); other blocking work (removing a folder) goes through
//! [`blocking`], on tokio's blocking pool, never on an async worker.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use tokio::task::JoinHandle;

/// A running task; aborted when dropped.
#[derive(Debug)]
pub struct TaskHandle {
    name: String,
    handle: JoinHandle<()>,
}

impl TaskHandle {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Stops the task now.
    pub fn abort(&self) {
        self.handle.abort();
    }
}

impl Drop for TaskHandle {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Spawns `task` as `name` on the current runtime. `expect_end` says whether the task
/// finishing on its own is normal (a one-shot job) or a fault (a loop that should run until
/// aborted); either way a panic is logged, not propagated.
pub fn spawn<F>(name: impl Into<String>, expect_end: bool, task: F) -> TaskHandle
where
    F: Future<Output = ()> + Send + 'static,
{
    let name = name.into();
    let label = name.clone();
    #[allow(clippy::disallowed_methods)]
    let handle = tokio::spawn(async move {
        tracing::debug!(task = %label, "task started");
        match AssertUnwindSafe(task).catch_unwind().await {
            Ok(()) if expect_end => tracing::debug!(task = %label, "task finished"),
            Ok(()) => tracing::error!(task = %label, "task ended unexpectedly"),
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                tracing::error!(task = %label, panic = %msg, "task panicked");
            }
        }
    });
    TaskHandle { name, handle }
}

/// Runs blocking `f` (file system work) on the blocking pool and waits for it. A panic in `f` is
/// resumed here; a runtime shutting down answers [`crate::Error::Stopped`].
pub async fn blocking<T, F>(f: F) -> crate::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> crate::Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => Err(crate::Error::Stopped),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn panics_are_contained_and_handles_abort() {
        let h = spawn("boom", true, async { panic!("boom") });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(h.is_finished());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let h = spawn("forever", false, async move {
            let _tx = tx;
            std::future::pending::<()>().await
        });
        drop(h);
        assert!(rx.await.is_err(), "the task was aborted and dropped its sender");
    }
}
