//! `werkfunk-faults`: the reliability and security harness.
//!
//! - [`seed`]: every run is seeded; the seed is printed and `WERKFUNK_FAULTS_SEED` replays it.
//! - [`proxy`]: a TCP proxy between clients and the server that cuts, stalls, slows and
//!   resets connections at random byte offsets (so in the middle of HTTP bodies and of
//!   websocket frames), and can cut every connection at once (a partition).
//! - [`procs`]: the real `werkfunk-server` and `werkfunk-cli` binaries as child processes
//!   (kill -9, restart on the same database, SIGSTOP/SIGCONT), and a fast restart of the
//!   throwaway Postgres cluster.
//! - [`convergence`]: several `werkfunk-cli` clients send, edit, delete and mark read through
//!   the proxy while faults are injected; afterwards the server and every client's cache are
//!   checked against what each client was told.
//! - [`soak`]: the connection soak's samples of the server process (RSS, descriptors), its
//!   CSV and SVG chart and its verdict; the load is the `werkfunk-soak` binary.
//! - [`fuzzing`]: the properties the cargo-fuzz targets under `fuzz/` check, also replayed
//!   over the committed corpus by `tests/fuzz_corpus.rs`.
//!
//! The tests live in `tests/` (`convergence.rs`, `lost_answers.rs`, `security.rs`,
//! `fuzz_corpus.rs`); `cargo xtask soak` runs the long convergence run,
//! `cargo xtask soak connections` the connection soak.

pub mod convergence;
pub mod fuzzing;
pub mod procs;
pub mod proxy;
pub mod seed;
pub mod soak;

/// What can go wrong while setting up or driving a run (not a failed check: those are
/// collected in [`convergence::Report`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Setup(String),
}

pub type Result<T> = std::result::Result<T, Error>;
