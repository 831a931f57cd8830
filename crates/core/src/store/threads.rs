//! The store's threads: one writer and a pool of readers, each owning its SQLite connection.
//!
//! A caller sends a job (a closure over the connection) on a channel and awaits a oneshot for
//! its answer, so async code never runs SQLite on an async worker nor on tokio's blocking
//! pool. The writer takes jobs one at a time in the order they were sent; readers share one
//! queue and each takes the next job when free. A panic in a job is resumed in the caller, and
//! the thread goes on. Dropping [`Threads`] closes the queues; each thread finishes the jobs
//! already sent, closes its connection and ends, and the drop waits for that.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::{StoreError, StoreResult};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Which connection runs a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Writer,
    Reader,
}

/// The running threads of one store.
pub(super) struct Threads {
    writer: Option<mpsc::Sender<Job>>,
    readers: Option<mpsc::Sender<Job>>,
    handles: Vec<JoinHandle<()>>,
}

impl Threads {
    /// Starts the writer on `writer` and one reader thread per connection `readers` opens;
    /// `name` prefixes the thread names (`<name>-writer`, `<name>-reader-<i>`).
    pub(super) fn start(name: &str, writer: Connection, readers: Vec<Connection>) -> StoreResult<Threads> {
        let mut handles = Vec::with_capacity(1 + readers.len());
        let (writer_tx, writer_rx) = mpsc::channel::<Job>();
        handles.push(spawn(format!("{name}-writer"), writer, move || writer_rx.recv().ok())?);
        let (reader_tx, reader_rx) = mpsc::channel::<Job>();
        let shared = Arc::new(Mutex::new(reader_rx));
        for (i, conn) in readers.into_iter().enumerate() {
            let queue = shared.clone();
            // The queue's lock is held only while waiting for the next job, never while one runs.
            let next = move || queue.lock().unwrap_or_else(|p| p.into_inner()).recv().ok();
            handles.push(spawn(format!("{name}-reader-{i}"), conn, next)?);
        }
        Ok(Threads { writer: Some(writer_tx), readers: Some(reader_tx), handles })
    }

    /// Runs `f` on a connection of `role` and answers what it returns.
    pub(super) async fn run<T, F>(&self, role: Role, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, Box<dyn Any + Send>>>();
        let job: Job = Box::new(move |conn| {
            let _ = tx.send(std::panic::catch_unwind(AssertUnwindSafe(|| f(conn))));
        });
        let queue = match role {
            Role::Writer => &self.writer,
            Role::Reader => &self.readers,
        };
        queue.as_ref().ok_or(StoreError::Closed)?.send(job).map_err(|_| StoreError::Closed)?;
        match rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => Err(StoreError::Closed),
        }
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        self.writer.take();
        self.readers.take();
        for handle in self.handles.drain(..) {
            // Not from one of our own threads (a job never holds the store, so this is moot).
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

fn spawn(
    name: String,
    mut conn: Connection,
    mut next: impl FnMut() -> Option<Job> + Send + 'static,
) -> StoreResult<JoinHandle<()>> {
    let label = name.clone();
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            while let Some(job) = next() {
                job(&mut conn);
            }
            tracing::debug!(thread = %label, "store thread ended");
        })
        .map_err(|e| StoreError::Sqlite(format!("cannot start a store thread: {e}")))
}
