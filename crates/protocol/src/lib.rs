//! Wire types shared by `werkfunk-server` and its clients.
//!
//! Everything here is a serde twin of a JSON document that crosses the network: GoTrue's
//! session and error bodies ([`auth`]), PostgREST's error body ([`rest`]) and the rows of the
//! messaging schema ([`rows`]). The shapes follow what `@supabase/supabase-js` 2.x sends and
//! expects, so that the same server answers the web client and the desktop engine.
//!
//! This crate does no I/O and has no async runtime dependency.

pub mod auth;
pub mod realtime;
pub mod rest;
pub mod rows;
