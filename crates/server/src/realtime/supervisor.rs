//! Supervision of the gateway's long-lived tasks (change feed, listener, relay publisher,
//! liveness): a task that ends or panics before shutdown is logged and started again after
//! a backoff, and is told it was restarted, so it can make clients rejoin once it is ready.
//!
//! A panic is caught where the task runs (the supervisor's own task), so aborting the
//! supervisor on shutdown also ends the task. Locks are never a reason for a restart loop:
//! the server's policy is to take over a poisoned lock (see ARCHITECTURE.md's invariants).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// First wait before a restart; doubled for each restart in a row, up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run this long counts as healthy: the next restart waits [`MIN_BACKOFF`] again.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// What a task is told each time it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// 0 for the first start, then one more for each restart.
    pub attempt: u64,
}

impl Run {
    pub fn restarted(self) -> bool {
        self.attempt > 0
    }
}

/// How a run of a task ended: `Ok(())` if it simply returned, `Err(reason)` if it gave up
/// (typically its database connection was lost).
pub type Ended = Result<(), String>;

/// The delay before the next restart.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn after(&mut self, ran: Duration) -> Duration {
        if ran >= HEALTHY_RUN {
            self.next = MIN_BACKOFF;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        wait
    }
}

/// Runs `start(run)` until `shutdown` becomes true, starting it again whenever it ends or
/// panics. Abort the returned handle to stop at once.
pub fn supervise<F, Fut>(name: &'static str, mut shutdown: watch::Receiver<bool>, mut start: F) -> JoinHandle<()>
where
    F: FnMut(Run) -> Fut + Send + 'static,
    Fut: Future<Output = Ended> + Send + 'static,
{
    tokio::spawn(async move {
        let mut backoff = Backoff { next: MIN_BACKOFF };
        let mut attempt = 0;
        loop {
            let began = Instant::now();
            let outcome = AssertUnwindSafe(start(Run { attempt })).catch_unwind().await;
            if *shutdown.borrow() {
                return;
            }
            let wait = backoff.after(began.elapsed());
            match outcome {
                Ok(Ok(())) => tracing::error!(task = name, ?wait, "realtime task ended unexpectedly; restarting"),
                Ok(Err(reason)) => tracing::warn!(task = name, %reason, ?wait, "realtime task stopped; restarting"),
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "(no message)".to_owned());
                    tracing::error!(task = name, panic = %message, ?wait, "realtime task panicked; restarting");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait_for(|down| *down) => return,
            }
            attempt += 1;
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets_after_a_healthy_run() {
        let mut b = Backoff { next: MIN_BACKOFF };
        let short = Duration::from_millis(1);
        let waits: Vec<Duration> = (0..12).map(|_| b.after(short)).collect();
        assert_eq!(waits[0], MIN_BACKOFF);
        assert_eq!(waits[1], MIN_BACKOFF * 2);
        assert_eq!(waits[11], MAX_BACKOFF);
        assert_eq!(b.after(HEALTHY_RUN), MIN_BACKOFF);
    }

    #[tokio::test]
    async fn a_task_that_panics_or_ends_is_started_again_and_told_so() {
        let (down_tx, down) = watch::channel(false);
        let starts = Arc::new(AtomicU64::new(0));
        let seen = starts.clone();
        let (runs_tx, mut runs) = tokio::sync::mpsc::unbounded_channel();
        let handle = supervise("test", down, move |run| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let runs_tx = runs_tx.clone();
            async move {
                let _ = runs_tx.send(run);
                match n {
                    0 => panic!("first run fails"),
                    1 => Ok(()),
                    2 => Err("connection lost".to_owned()),
                    _ => std::future::pending().await,
                }
            }
        });
        for attempt in 0..4 {
            assert_eq!(runs.recv().await, Some(Run { attempt }));
        }
        assert!(!Run { attempt: 0 }.restarted() && Run { attempt: 3 }.restarted());
        let _ = down_tx.send(true);
        handle.abort();
        let _ = handle.await;
        assert_eq!(starts.load(Ordering::SeqCst), 4, "no restart after shutdown");
    }

    #[tokio::test]
    async fn shutdown_ends_the_supervisor_without_a_restart() {
        let (down_tx, down) = watch::channel(false);
        let starts = Arc::new(AtomicU64::new(0));
        let seen = starts.clone();
        let handle = supervise("test", down, move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
            async { Err("always failing".to_owned()) }
        });
        tokio::time::sleep(MIN_BACKOFF / 2).await;
        let _ = down_tx.send(true);
        handle.await.expect("the supervisor returns");
        assert_eq!(starts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn aborting_the_supervisor_ends_the_task() {
        struct Flag(Arc<AtomicU64>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(1, Ordering::SeqCst);
            }
        }
        let (_down_tx, down) = watch::channel(false);
        let dropped = Arc::new(AtomicU64::new(0));
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let mut started_tx = Some(started_tx);
        let flag = dropped.clone();
        let handle = supervise("test", down, move |_| {
            let guard = Flag(flag.clone());
            let started_tx = started_tx.take();
            async move {
                let _guard = guard;
                if let Some(tx) = started_tx {
                    let _ = tx.send(());
                }
                std::future::pending::<Ended>().await
            }
        });
        started.await.expect("the task started");
        handle.abort();
        let _ = handle.await;
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "the task's future was dropped with the supervisor");
    }
}
