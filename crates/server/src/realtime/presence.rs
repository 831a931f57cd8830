//! Presence: who is tracked on which topic, here and on the other server processes.
//!
//! Local entries are owned by a socket's channel; remote ones by another process (`node`),
//! learned through the relay. Every change comes out as a Phoenix `presence_diff`
//! (`{joins, leaves}`, keyed by presence key, each with `metas`).

use std::collections::HashMap;

use serde_json::{json, Map, Value};
use uuid::Uuid;

/// Who owns an entry: a channel of a local socket, or a remote process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    Local { socket: u64 },
    Remote { node: Uuid },
}

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    owner: Owner,
    /// The meta as sent: the tracked payload plus `phx_ref` (and `phx_ref_prev` after an update).
    meta: Map<String, Value>,
}

/// A presence change on one topic.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Diff {
    pub joins: Vec<(String, Map<String, Value>)>,
    pub leaves: Vec<(String, Map<String, Value>)>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.joins.is_empty() && self.leaves.is_empty()
    }

    fn group(items: &[(String, Map<String, Value>)]) -> Value {
        let mut out = Map::new();
        for (key, meta) in items {
            let entry = out.entry(key.clone()).or_insert_with(|| json!({"metas": []}));
            entry["metas"].as_array_mut().expect("metas array").push(Value::Object(meta.clone()));
        }
        Value::Object(out)
    }

    /// The `presence_diff` payload.
    pub fn to_payload(&self) -> Value {
        json!({"joins": Self::group(&self.joins), "leaves": Self::group(&self.leaves)})
    }

    /// Reads a `presence_diff` payload (from the relay).
    pub fn from_payload(v: &Value) -> Diff {
        let read = |side: &str| -> Vec<(String, Map<String, Value>)> {
            let mut out = Vec::new();
            if let Some(map) = v.get(side).and_then(Value::as_object) {
                for (key, entry) in map {
                    for meta in entry.get("metas").and_then(Value::as_array).into_iter().flatten() {
                        if let Some(m) = meta.as_object() {
                            out.push((key.clone(), m.clone()));
                        }
                    }
                }
            }
            out
        };
        Diff { joins: read("joins"), leaves: read("leaves") }
    }
}

#[derive(Debug, Default)]
pub struct Presence {
    topics: HashMap<String, Vec<Entry>>,
}

fn new_ref() -> String {
    Uuid::new_v4().simple().to_string()[..16].to_owned()
}

fn payload_eq(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    let strip = |m: &Map<String, Value>| {
        let mut m = m.clone();
        m.remove("phx_ref");
        m.remove("phx_ref_prev");
        m
    };
    strip(a) == strip(b)
}

impl Presence {
    /// Tracks (or updates) `key` for a local socket's channel on `topic`.
    pub fn track(&mut self, topic: &str, key: &str, socket: u64, payload: Map<String, Value>) -> Diff {
        let entries = self.topics.entry(topic.to_owned()).or_default();
        let owner = Owner::Local { socket };
        let mut meta = payload;
        meta.remove("phx_ref");
        meta.remove("phx_ref_prev");
        let mut diff = Diff::default();
        if let Some(existing) = entries.iter_mut().find(|e| e.owner == owner && e.key == key) {
            if payload_eq(&existing.meta, &meta) {
                return diff;
            }
            let prev = existing.meta.get("phx_ref").cloned().unwrap_or(Value::Null);
            diff.leaves.push((key.to_owned(), existing.meta.clone()));
            meta.insert("phx_ref".into(), Value::String(new_ref()));
            meta.insert("phx_ref_prev".into(), prev);
            existing.meta = meta.clone();
            diff.joins.push((key.to_owned(), meta));
        } else {
            meta.insert("phx_ref".into(), Value::String(new_ref()));
            entries.push(Entry { key: key.to_owned(), owner, meta: meta.clone() });
            diff.joins.push((key.to_owned(), meta));
        }
        diff
    }

    /// Removes a local socket's entries on `topic`.
    pub fn untrack(&mut self, topic: &str, socket: u64) -> Diff {
        self.remove_where(topic, |e| e.owner == Owner::Local { socket })
    }

    fn remove_where(&mut self, topic: &str, pred: impl Fn(&Entry) -> bool) -> Diff {
        let mut diff = Diff::default();
        if let Some(entries) = self.topics.get_mut(topic) {
            entries.retain(|e| {
                if pred(e) {
                    diff.leaves.push((e.key.clone(), e.meta.clone()));
                    false
                } else {
                    true
                }
            });
            if entries.is_empty() {
                self.topics.remove(topic);
            }
        }
        diff
    }

    /// Removes every entry of a local socket; the diffs per topic.
    pub fn untrack_socket(&mut self, socket: u64) -> Vec<(String, Diff)> {
        let topics: Vec<String> = self.topics.keys().cloned().collect();
        topics
            .into_iter()
            .map(|t| {
                let d = self.untrack(&t, socket);
                (t, d)
            })
            .filter(|(_, d)| !d.is_empty())
            .collect()
    }

    /// Applies another process's diff.
    pub fn apply_remote(&mut self, node: Uuid, topic: &str, diff: &Diff) {
        let owner = Owner::Remote { node };
        for (key, meta) in &diff.leaves {
            let phx_ref = meta.get("phx_ref");
            if let Some(entries) = self.topics.get_mut(topic) {
                entries.retain(|e| !(e.owner == owner && e.key == *key && e.meta.get("phx_ref") == phx_ref));
            }
        }
        let entries = self.topics.entry(topic.to_owned()).or_default();
        for (key, meta) in &diff.joins {
            entries.push(Entry { key: key.clone(), owner, meta: meta.clone() });
        }
        if entries.is_empty() {
            self.topics.remove(topic);
        }
    }

    /// Forgets a process that went away; the diffs per topic.
    pub fn purge_node(&mut self, node: Uuid) -> Vec<(String, Diff)> {
        let topics: Vec<String> = self.topics.keys().cloned().collect();
        topics
            .into_iter()
            .map(|t| {
                let d = self.remove_where(&t, |e| e.owner == Owner::Remote { node });
                (t, d)
            })
            .filter(|(_, d)| !d.is_empty())
            .collect()
    }

    /// The `presence_state` payload for `topic`.
    pub fn state(&self, topic: &str) -> Value {
        let mut out = Map::new();
        for e in self.topics.get(topic).into_iter().flatten() {
            let entry = out.entry(e.key.clone()).or_insert_with(|| json!({"metas": []}));
            entry["metas"].as_array_mut().expect("metas array").push(Value::Object(e.meta.clone()));
        }
        Value::Object(out)
    }

    /// This process's own entries, as joins per topic (for a process that just started).
    pub fn local_joins(&self) -> Vec<(String, Diff)> {
        self.topics
            .iter()
            .map(|(topic, entries)| {
                let joins = entries
                    .iter()
                    .filter(|e| matches!(e.owner, Owner::Local { .. }))
                    .map(|e| (e.key.clone(), e.meta.clone()))
                    .collect();
                (topic.clone(), Diff { joins, leaves: Vec::new() })
            })
            .filter(|(_, d)| !d.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn track_update_untrack() {
        let mut p = Presence::default();
        let d = p.track("t", "u1", 1, map(json!({"status": "online"})));
        assert_eq!(d.joins.len(), 1);
        assert!(p.track("t", "u1", 1, map(json!({"status": "online"}))).is_empty(), "unchanged is a no-op");
        let d = p.track("t", "u1", 1, map(json!({"status": "away"})));
        assert_eq!((d.joins.len(), d.leaves.len()), (1, 1));
        assert!(d.joins[0].1.contains_key("phx_ref_prev"));
        assert_eq!(p.state("t")["u1"]["metas"].as_array().unwrap().len(), 1);
        let d = p.untrack_socket(1);
        assert_eq!(d.len(), 1);
        assert_eq!(p.state("t"), json!({}));
    }

    #[test]
    fn remote_entries_and_purge() {
        let mut p = Presence::default();
        let node = Uuid::new_v4();
        let d = Diff { joins: vec![("u2".into(), map(json!({"phx_ref": "r1"})))], leaves: vec![] };
        p.apply_remote(node, "t", &Diff::from_payload(&d.to_payload()));
        assert!(p.state("t").get("u2").is_some());
        assert!(p.local_joins().is_empty());
        let purged = p.purge_node(node);
        assert_eq!(purged[0].1.leaves.len(), 1);
        assert_eq!(p.state("t"), json!({}));
    }
}
