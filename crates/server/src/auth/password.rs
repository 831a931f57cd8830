//! Password hashing (argon2id), run off the async workers and bounded: at most
//! `hash_concurrency` hashes run at once (one per core by default, 19 MiB each), at most
//! `hash_queue` more wait for a turn, and anything beyond is refused at once ([`Busy`]) —
//! so a burst of sign-ins costs a bounded amount of memory and CPU, never the process.

use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// The shortest password accepted.
pub const MIN_LENGTH: usize = 8;

fn hasher() -> Argon2<'static> {
    // OWASP's second recommended argon2id configuration: 19 MiB, 2 passes.
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// All hashing slots and queue places are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password hashing is at capacity")]
pub struct Busy;

/// Why a hash could not be made.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error("hashing failed: {0}")]
    Failed(String),
}

/// The bounded hashing pool of one server process.
pub struct Hashing {
    running: Semaphore,
    /// Hashes running or waiting; refused past `capacity`.
    admitted: AtomicUsize,
    capacity: usize,
}

/// Gives an admission back when the hash is done (or its request was dropped).
struct Admission<'a>(&'a AtomicUsize);

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hashing {
    /// `concurrency` hashes at once (at least one), `queue` more waiting.
    pub fn new(concurrency: usize, queue: usize) -> Hashing {
        let concurrency = concurrency.max(1);
        Hashing { running: Semaphore::new(concurrency), admitted: AtomicUsize::new(0), capacity: concurrency + queue }
    }

    /// Runs `work` on the blocking pool once a slot is free, or refuses at once when the
    /// queue is full.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, HashError> {
        if self.admitted.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(Busy.into());
        }
        let _admission = Admission(&self.admitted);
        let _slot = self.running.acquire().await.map_err(|e| HashError::Failed(e.to_string()))?;
        tokio::task::spawn_blocking(work).await.map_err(|e| HashError::Failed(e.to_string()))
    }

    /// Hashes `password`.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            hasher().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
        })
        .await?
        .map_err(HashError::Failed)
    }

    /// Checks `password` against `stored`, or against a decoy when there is no account, so
    /// that the answer takes as long either way and timing does not tell which accounts exist.
    pub async fn verify_or_decoy(&self, password: String, stored: Option<String>) -> Result<bool, Busy> {
        let known = stored.is_some();
        let ok = self
            .run(move || {
                let stored = stored.unwrap_or_else(|| decoy().to_owned());
                PasswordHash::new(&stored).map(|h| hasher().verify_password(password.as_bytes(), &h).is_ok()).unwrap_or(false)
            })
            .await;
        match ok {
            Ok(ok) => Ok(ok && known),
            Err(HashError::Busy(b)) => Err(b),
            Err(HashError::Failed(_)) => Ok(false),
        }
    }
}

/// A hash of no one's password (computed once, on the blocking pool).
fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        hasher().hash_password(b"decoy password", &salt).map(|h| h.to_string()).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_past_its_queue() {
        let pool = Hashing::new(1, 0);
        let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
        let blocked = pool.run(move || gate_rx.recv().ok());
        tokio::pin!(blocked);
        // The first takes the only slot; a second is refused while it runs.
        assert!(futures::poll!(blocked.as_mut()).is_pending());
        assert!(matches!(pool.run(|| ()).await, Err(HashError::Busy(_))));
        gate_tx.send(()).unwrap();
        assert!(blocked.await.is_ok());
        assert!(pool.run(|| ()).await.is_ok(), "a slot is free again");
    }
}
