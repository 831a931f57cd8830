//! `werkfunk-testkit`: the one harness every Rust test uses.
//!
//! - [`cluster`]: a throwaway Postgres from the system's binaries (also used by `cargo xtask`).
//! - [`TestDb`]: a fresh, migrated database per test — a `CREATE DATABASE … TEMPLATE` copy of
//!   one template migrated once per test binary. The cluster is the one `cargo xtask test`
//!   started (`WERKFUNK_TEST_PG_URL`), else one started for this test binary.
//! - [`TestServer`]: the real server, in-process, on a free port, over such a database.
//! - [`phoenix::TestSocket`]: a raw Phoenix-channel client for the realtime gateway.
//! - One-line helpers: [`TestServer::signup`], [`TestServer::conversation`],
//!   [`TestDb::user`], [`TestDb::as_user`].

pub mod cluster;

#[cfg(feature = "server")]
mod harness;
#[cfg(feature = "server")]
pub mod phoenix;
#[cfg(feature = "server")]
pub use harness::*;
