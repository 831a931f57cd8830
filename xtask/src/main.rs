//! `cargo xtask`: the project's own commands.
//!
//! - `test`  — installs what is missing, starts one throwaway Postgres for the run, runs every
//!   suite (Rust, then supabase-js against the real server) and prints their summaries.
//! - `demo`  — a private Postgres under `.data/`, the server, seeded demo accounts.
//! - `bench` — benchmarks; figures go to BENCHMARKS.md.
//! - `ui` — builds the webview UI; `bundle` — the .deb of the desktop app.
//! - `fuzz` — cargo-fuzz targets, bounded; `soak` — the long convergence run under faults;
//!   `soak connections` — 1,000 websockets with steady traffic, the server's RSS and descriptors.
//! - `supabase-check` — Werkfunk's hosted-Supabase migrations against Supabase's own bootstrap
//!   and GoTrue's migrations (from local git checkouts), on a throwaway cluster.
//!
//! Everything started here is stopped on every path: children are killed on drop, and the
//! cluster has a watchdog that outlives a crashed xtask by at most half a second.

mod bench;
mod bundle;
mod demo;
mod fuzz;
mod process;
mod setup;
mod soak;
mod supabase_check;
mod test;
mod ui;

use anyhow::{bail, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("test") => test::run(rest),
        Some("demo") => demo::run(rest),
        Some("bench") => bench::run(rest),
        Some("setup") => setup::run(),
        Some("ui") => ui::build(),
        Some("bundle") => bundle::run().map(|_| ()),
        Some("fuzz") => fuzz::run(rest),
        Some("soak") => soak::run(rest),
        Some("supabase-check") => supabase_check::run(rest),
        _ => {
            eprintln!("usage: cargo xtask <test|demo|bench [rest|realtime|core|desktop] [--quick]|bundle|ui|fuzz [target] [seconds]|soak [minutes]|soak connections [--minutes N] [--connections N] [--auth N]|supabase-check --postgres-repo <git dir> --auth-repo <git dir>|setup>");
            bail!("unknown or missing command")
        }
    }
}

/// The repository root (xtask lives one level below it).
pub fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask has a parent").to_path_buf()
}
