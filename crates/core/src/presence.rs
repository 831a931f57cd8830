//! Presence: who is online, from the realtime channel's `presence_state` / `presence_diff`.
//!
//! We track ourselves on the channel of the open conversation and re-track every
//! [`HEARTBEAT`] (the seed's 30 s), so a presence that stopped being refreshed — a client that
//! vanished without a leave — is shown offline [`OFFLINE_AFTER`] (60 s) after its last
//! sign of life, even if the server still lists it. Keys are user ids; each key may have
//! several metas (one per device), and a user is online while any meta is fresh.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use uuid::Uuid;

pub const HEARTBEAT: Duration = Duration::from_secs(30);
pub const OFFLINE_AFTER: Duration = Duration::from_secs(60);

/// Presence in one conversation.
#[derive(Debug, Default)]
pub struct Roster {
    /// user → (presence refs → last seen)
    users: HashMap<Uuid, HashMap<String, Instant>>,
}

fn metas(v: &Value) -> impl Iterator<Item = String> + '_ {
    v.get("metas")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("phx_ref").or_else(|| m.get("presence_ref")).and_then(Value::as_str).map(str::to_owned))
}

impl Roster {
    /// A full `presence_state` payload: `{key: {metas: [...]}, ...}`.
    pub fn state(&mut self, payload: &Value, now: Instant) {
        self.users.clear();
        self.joins(payload, now);
    }

    /// A `presence_diff` payload: `{joins: {...}, leaves: {...}}`.
    pub fn diff(&mut self, payload: &Value, now: Instant) {
        if let Some(leaves) = payload.get("leaves").and_then(Value::as_object) {
            for (key, v) in leaves {
                let Ok(user) = key.parse::<Uuid>() else { continue };
                if let Some(refs) = self.users.get_mut(&user) {
                    for r in metas(v) {
                        refs.remove(&r);
                    }
                    if refs.is_empty() {
                        self.users.remove(&user);
                    }
                }
            }
        }
        if let Some(joins) = payload.get("joins") {
            self.joins(joins, now);
        }
    }

    fn joins(&mut self, map: &Value, now: Instant) {
        let Some(map) = map.as_object() else { return };
        for (key, v) in map {
            let Ok(user) = key.parse::<Uuid>() else { continue };
            let refs = self.users.entry(user).or_default();
            for r in metas(v) {
                refs.insert(r, now);
            }
        }
    }

    /// Who is online at `now`, sorted.
    pub fn online(&self, now: Instant) -> Vec<Uuid> {
        let mut out: Vec<Uuid> = self
            .users
            .iter()
            .filter(|(_, refs)| refs.values().any(|t| now.duration_since(*t) < OFFLINE_AFTER))
            .map(|(u, _)| *u)
            .collect();
        out.sort();
        out
    }
}

/// Presence across every watched conversation: the engine-wide online set.
#[derive(Debug, Default)]
pub struct Book {
    rosters: HashMap<Uuid, Roster>,
}

impl Book {
    /// The roster of one conversation's `presence:<id>` channel.
    pub fn roster(&mut self, conversation: Uuid) -> &mut Roster {
        self.rosters.entry(conversation).or_default()
    }

    /// The channel was left: its roster no longer counts.
    pub fn forget(&mut self, conversation: Uuid) {
        self.rosters.remove(&conversation);
    }

    /// Everyone online at `now` in any watched conversation, except `me`, sorted.
    pub fn online(&self, now: Instant, me: Uuid) -> Vec<Uuid> {
        let all: BTreeSet<Uuid> = self.rosters.values().flat_map(|r| r.online(now)).filter(|u| *u != me).collect();
        all.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn state_diff_and_staleness() {
        let t0 = Instant::now();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut r = Roster::default();
        r.state(&json!({a.to_string(): {"metas": [{"phx_ref": "r1"}]}}), t0);
        assert_eq!(r.online(t0), vec![a]);
        r.diff(&json!({"joins": {b.to_string(): {"metas": [{"phx_ref": "r2"}]}}, "leaves": {}}), t0 + Duration::from_secs(40));
        assert_eq!(r.online(t0 + Duration::from_secs(59)), vec![a, b]);
        // a's only meta was not refreshed for 60 s: shown offline.
        assert_eq!(r.online(t0 + Duration::from_secs(61)), vec![b]);
        // A re-track shows up as leave(old ref) + join(new ref).
        r.diff(
            &json!({"joins": {a.to_string(): {"metas": [{"phx_ref": "r3"}]}}, "leaves": {a.to_string(): {"metas": [{"phx_ref": "r1"}]}}}),
            t0 + Duration::from_secs(62),
        );
        assert_eq!(r.online(t0 + Duration::from_secs(62)), vec![a, b]);
        r.diff(&json!({"leaves": {b.to_string(): {"metas": [{"phx_ref": "r2"}]}}}), t0 + Duration::from_secs(63));
        assert_eq!(r.online(t0 + Duration::from_secs(63)), vec![a]);
    }

    #[test]
    fn the_book_is_the_union_of_its_rosters_without_me() {
        let t0 = Instant::now();
        let (me, a, b) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let mut book = Book::default();
        book.roster(Uuid::from_u128(10))
            .state(&json!({me.to_string(): {"metas": [{"phx_ref": "m"}]}, a.to_string(): {"metas": [{"phx_ref": "r1"}]}}), t0);
        book.roster(Uuid::from_u128(11))
            .state(&json!({b.to_string(): {"metas": [{"phx_ref": "r2"}]}, a.to_string(): {"metas": [{"phx_ref": "r3"}]}}), t0);
        assert_eq!(book.online(t0, me), vec![a, b]);
        book.forget(Uuid::from_u128(11));
        assert_eq!(book.online(t0, me), vec![a]);
        assert!(book.online(t0 + OFFLINE_AFTER, me).is_empty(), "the timeout applies without a payload");
    }
}
