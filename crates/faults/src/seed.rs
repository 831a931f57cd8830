//! Seeds: one per run, printed, and taken from `WERKFUNK_FAULTS_SEED` when set.
//!
//! A seed fixes the workload and the schedule of faults (which connection gets which fault,
//! at which byte, which process is killed when). The interleaving of processes on the
//! machine is not under its control, so a replay walks the same plan, not the same
//! nanoseconds.

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

/// The environment variable that replays a run.
pub const SEED_ENV: &str = "WERKFUNK_FAULTS_SEED";

/// The seed of this run: `WERKFUNK_FAULTS_SEED`, else a fresh one. Printed to stderr either way.
pub fn run_seed(what: &str) -> u64 {
    let seed =
        std::env::var(SEED_ENV).ok().and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or_else(|| rand::thread_rng().next_u64());
    eprintln!("{what}: seed {seed} (replay with {SEED_ENV}={seed})");
    seed
}

/// A deterministic generator for one part of a run (`stream` keeps parts independent, so
/// adding a draw in one part does not shift another's plan).
pub fn rng(seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}
