//! The change feed: database changes captured by the `realtime.capture` trigger arrive
//! (via NOTIFY, in commit order) in batches; each batch is authorized by Postgres in one
//! call per table — `realtime.authorize` reads the changed rows back under each distinct
//! subscriber's role and claims, so row-level security alone decides — and delivered in
//! the order it was committed.
//!
//! Cost: one round trip per table per batch, and inside Postgres one indexed read per
//! distinct subscriber per batch (not per change, as Supabase's walrus does).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::hub::{Outbound, SocketId, Subscription};
use super::Realtime;
use crate::rest::schema::quote_ident;

/// One captured change.
#[derive(Debug, Clone)]
pub struct Change {
    pub table: String,
    pub kind: String,
    pub commit_timestamp: Value,
    pub record: Value,
    pub old_record: Value,
}

impl Change {
    fn parse(v: Value) -> Option<Change> {
        Some(Change {
            table: v.get("table")?.as_str()?.to_owned(),
            kind: v.get("type")?.as_str()?.to_owned(),
            commit_timestamp: v.get("commit_timestamp").cloned().unwrap_or(Value::Null),
            record: v.get("record").cloned().unwrap_or(Value::Null),
            old_record: v.get("old_record").cloned().unwrap_or(Value::Null),
        })
    }

    /// The row a filter and the authorization look at: the new one, or the old for a DELETE.
    fn row(&self) -> &Value {
        if self.kind == "DELETE" {
            &self.old_record
        } else {
            &self.record
        }
    }

    fn id(&self) -> Option<Uuid> {
        self.row().get("id")?.as_str()?.parse().ok()
    }
}

/// Largest batch taken from the queue at once.
const MAX_BATCH: usize = 1000;

/// Resolves a notification payload (inline, or a reference into `realtime.overflow`).
pub async fn resolve(pool: &sqlx::PgPool, payload: &str) -> Option<Value> {
    let v: Value = serde_json::from_str(payload).ok()?;
    match v.get("overflow").and_then(Value::as_i64) {
        None => Some(v),
        Some(id) => sqlx::query_scalar::<_, Value>("select payload from realtime.overflow where id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
            .ok()
            .flatten(),
    }
}

/// The feed task: takes notifications in batches and delivers them.
pub async fn run(rt: Arc<Realtime>, mut rx: mpsc::UnboundedReceiver<String>) {
    let mut raw = Vec::new();
    loop {
        if rx.recv_many(&mut raw, MAX_BATCH).await == 0 {
            return;
        }
        let mut batch = Vec::with_capacity(raw.len());
        for payload in raw.drain(..) {
            if let Some(change) = resolve(&rt.pool, &payload).await.and_then(Change::parse) {
                batch.push(change);
            }
        }
        deliver(&rt, &batch).await;
    }
}

/// Authorizes and sends one batch.
pub async fn deliver(rt: &Realtime, batch: &[Change]) {
    let mut by_table: BTreeMap<&str, Vec<&Change>> = BTreeMap::new();
    for c in batch {
        if c.table == "conversation_members" && c.kind == "DELETE" {
            revoke(rt, c);
        }
        by_table.entry(c.table.as_str()).or_default().push(c);
    }
    for (table, changes) in by_table {
        let subs = rt.hub.subscriptions(table);
        if subs.is_empty() {
            continue;
        }
        deliver_table(rt, table, &changes, &subs).await;
    }
}

fn revoke(rt: &Realtime, c: &Change) {
    let get = |k: &str| c.old_record.get(k).and_then(Value::as_str).and_then(|s| s.parse::<Uuid>().ok());
    if let (Some(conversation), Some(user)) = (get("conversation_id"), get("user_id")) {
        rt.hub.revoke(conversation, user);
    }
}

async fn deliver_table(rt: &Realtime, table: &str, changes: &[&Change], subs: &[Subscription]) {
    // Candidates: (change, subscription) pairs whose event and filter match.
    let mut claims: Vec<Arc<str>> = Vec::new();
    let mut claims_index: HashMap<Arc<str>, usize> = HashMap::new();
    let mut sub_claims = Vec::with_capacity(subs.len());
    for s in subs {
        let next = claims.len();
        let i = *claims_index.entry(s.claims.clone()).or_insert_with(|| {
            claims.push(s.claims.clone());
            next
        });
        sub_claims.push(i + 1);
    }
    let mut candidates: Vec<Vec<usize>> = Vec::with_capacity(changes.len());
    let mut ids = Vec::new();
    let mut deleted = Vec::new();
    for c in changes {
        let matching: Vec<usize> = subs
            .iter()
            .enumerate()
            .filter(|(_, s)| s.binding.event.matches(&c.kind) && s.binding.filter.as_ref().is_none_or(|f| f.matches(c.row())))
            .map(|(j, _)| j)
            .collect();
        if !matching.is_empty() {
            if let Some(id) = c.id() {
                ids.push(id);
                if c.kind == "DELETE" {
                    deleted.push(c.old_record.clone());
                }
            }
        }
        candidates.push(matching);
    }
    if ids.is_empty() {
        return;
    }
    let visible = match authorize(rt, table, &ids, &deleted, &claims).await {
        Ok(v) => v,
        Err(e) => {
            // Fail closed: nothing is delivered that Postgres did not allow.
            tracing::error!(error = %e, table, "realtime: authorization failed; batch dropped");
            return;
        }
    };
    let columns = rt.publication.columns(table).map(|c| serde_json::to_value(c).unwrap_or_default()).unwrap_or_default();
    for (c, matching) in changes.iter().zip(&candidates) {
        let Some(id) = c.id() else { continue };
        let mut recipients: Vec<(SocketId, Arc<str>, Vec<u32>, &Subscription)> = Vec::new();
        for &j in matching {
            if !visible.contains(&(sub_claims[j] as i32, id)) {
                continue;
            }
            let s = &subs[j];
            match recipients.iter_mut().find(|r| r.0 == s.socket.id && r.1 == s.topic) {
                Some(r) => {
                    if !r.2.contains(&s.binding.id) {
                        r.2.push(s.binding.id)
                    }
                }
                None => recipients.push((s.socket.id, s.topic.clone(), vec![s.binding.id], s)),
            }
        }
        if recipients.is_empty() {
            continue;
        }
        let data: Arc<str> = payload(c, &columns).to_string().into();
        for (_, topic, ids, s) in recipients {
            s.socket.send(Outbound::Change { topic, ids, data: data.clone() });
        }
    }
}

/// The `data` of a `postgres_changes` message. A DELETE's old record carries only the key
/// and the conversation, as Supabase sends it under RLS.
fn payload(c: &Change, columns: &Value) -> Value {
    let empty = || Value::Object(Default::default());
    let old = match c.kind.as_str() {
        "INSERT" => empty(),
        "DELETE" => {
            let mut o = serde_json::Map::new();
            for k in ["id", "conversation_id"] {
                if let Some(v) = c.old_record.get(k) {
                    o.insert(k.to_owned(), v.clone());
                }
            }
            Value::Object(o)
        }
        _ => c.old_record.clone(),
    };
    json!({
        "schema": "public",
        "table": c.table,
        "commit_timestamp": c.commit_timestamp,
        "type": c.kind,
        "columns": columns,
        "record": if c.kind == "DELETE" { empty() } else { c.record.clone() },
        "old_record": old,
        "errors": null,
    })
}

/// `(claims index (1-based), row id)` pairs that Postgres lets each claims object select.
async fn authorize(rt: &Realtime, table: &str, ids: &[Uuid], deleted: &[Value], claims: &[Arc<str>]) -> Result<HashSet<(i32, Uuid)>, sqlx::Error> {
    let mut tx = rt.pool.begin().await?;
    let claims: Vec<&str> = claims.iter().map(|c| c.as_ref()).collect();
    let rows: Vec<(i32, Uuid)> =
        sqlx::query_as("select claims_index, id from realtime.authorize($1::regclass, $2, $3, $4::text[]::jsonb[])")
            .bind(format!("public.{}", quote_ident(table)))
            .bind(ids)
            .bind((!deleted.is_empty()).then(|| Value::Array(deleted.to_vec())))
            .bind(&claims)
            .fetch_all(&mut *tx)
            .await?;
    // Deleted rows were put back only to be judged.
    tx.rollback().await?;
    Ok(rows.into_iter().collect())
}
