//! The change feed: database changes captured by the `werkfunk_realtime.capture` trigger arrive
//! (via NOTIFY, in commit order) in batches; each batch is authorized by Postgres in one
//! call per table — `werkfunk_realtime.authorize` reads the changed rows back under each distinct
//! subscriber's role and claims, so row-level security alone decides — and delivered in
//! the order it was committed.
//!
//! Cost: one round trip per table per batch, and inside Postgres one indexed read per
//! distinct subscriber per batch (not per change, as Supabase's walrus does), over only the
//! rows that subscriber's filters matched: subscribers asking about the same rows (e.g. the
//! members of one conversation) are authorized as one group.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::filter::{cell_key, index_key, Event, Filter};
use super::hub::{Outbound, SocketId, Subscription};
use super::Realtime;
use crate::rest::schema::quote_ident;

/// One captured change.
#[derive(Debug, Clone)]
pub struct Change {
    pub schema: String,
    pub table: String,
    pub kind: String,
    pub commit_timestamp: Value,
    pub record: Value,
    pub old_record: Value,
}

impl Change {
    fn parse(v: Value) -> Option<Change> {
        Some(Change {
            schema: v.get("schema").and_then(Value::as_str).unwrap_or("public").to_owned(),
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

/// Largest batch taken from the queue at once. Under load, batches grow towards it and the
/// fixed cost of authorizing a claims object is shared by more changes.
const MAX_BATCH: usize = 10_000;

/// Resolves a notification payload (inline, or a reference into `werkfunk_realtime.overflow`).
/// `Err` says why it cannot be read: not JSON, or an overflow row that is gone (trimmed) or
/// whose read failed (its connection was lost).
pub async fn resolve(pool: &sqlx::PgPool, payload: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(payload).map_err(|e| format!("notification is not JSON: {e}"))?;
    match v.get("overflow").and_then(Value::as_i64) {
        None => Ok(v),
        Some(id) => sqlx::query_scalar::<_, Value>("select payload from werkfunk_realtime.overflow where id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(|e| format!("overflow row {id} cannot be read: {e}"))?
            .ok_or_else(|| format!("overflow row {id} is gone")),
    }
}

/// Whether a notification may matter here: a change of a table nobody on this process is
/// subscribed to (say `notifications`, written for every member by each message) is dropped
/// after reading its table name, before the whole record is parsed. Membership deletions
/// always matter (they close channels).
fn wanted(rt: &Realtime, payload: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(borrow)]
        schema: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow)]
        table: Option<std::borrow::Cow<'a, str>>,
        overflow: Option<i64>,
    }
    match serde_json::from_str::<Head<'_>>(payload) {
        // Membership removals and ended sessions close channels even where no one has bindings.
        Ok(Head { schema, table: Some(table), overflow: None }) => {
            table == "conversation_members" || is_session(schema.as_deref(), &table) || rt.hub.has_subscriptions(&table)
        }
        _ => true,
    }
}

/// The feed task: takes notifications in batches and delivers them.
pub async fn run(rt: Arc<Realtime>, rx: &mut mpsc::UnboundedReceiver<String>) {
    let mut raw = Vec::new();
    loop {
        if rx.recv_many(&mut raw, MAX_BATCH).await == 0 {
            return;
        }
        let started = std::time::Instant::now();
        let mut batch = Vec::with_capacity(raw.len());
        let mut unreadable = 0usize;
        for payload in raw.drain(..) {
            if !wanted(&rt, &payload) {
                continue;
            }
            match resolve(&rt.feed_pool, &payload).await {
                Ok(v) => batch.extend(Change::parse(v)),
                Err(reason) => {
                    unreadable += 1;
                    tracing::error!(%reason, "realtime: a change cannot be read");
                }
            }
        }
        let parsed = started.elapsed();
        deliver(&rt, &batch).await;
        if unreadable > 0 {
            // Which table an overflow reference was about is in the row that cannot be read:
            // every channel that could have wanted it rejoins and catches up, rather than
            // missing it silently.
            let channels = rt.hub.interrupt_changes();
            tracing::warn!(unreadable, channels, "realtime: changes lost to live delivery; channels told to rejoin");
        }
        tracing::debug!(changes = batch.len(), ?parsed, total = ?started.elapsed(), "realtime: batch delivered");
    }
}

/// Authorizes and sends one batch.
pub async fn deliver(rt: &Realtime, batch: &[Change]) {
    let mut by_table: BTreeMap<&str, Vec<&Change>> = BTreeMap::new();
    for c in batch {
        // A session that ended (migration 0013): for the server alone, never delivered.
        if is_session(Some(&c.schema), &c.table) {
            let user = c.old_record.get("user_id").and_then(Value::as_str).and_then(|s| s.parse().ok());
            if let (Some(session), Some(user)) = (c.id(), user) {
                rt.hub.end_session(session, user);
            }
            continue;
        }
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

/// The session-end notice of migration 0013 (`auth.sessions`), not a change of a table.
fn is_session(schema: Option<&str>, table: &str) -> bool {
    (schema, table) == (Some("auth"), "sessions")
}

fn revoke(rt: &Realtime, c: &Change) {
    let get = |k: &str| c.old_record.get(k).and_then(Value::as_str).and_then(|s| s.parse::<Uuid>().ok());
    if let (Some(conversation), Some(user)) = (get("conversation_id"), get("user_id")) {
        rt.hub.revoke(conversation, user);
    }
}

async fn deliver_table(rt: &Realtime, table: &str, changes: &[&Change], subs: &[Arc<Subscription>]) {
    // Distinct claims objects (0-based), and each subscription's.
    let mut claims: Vec<Arc<str>> = Vec::new();
    let mut claims_index: HashMap<Arc<str>, usize> = HashMap::new();
    let mut sub_claims = Vec::with_capacity(subs.len());
    for s in subs {
        let next = claims.len();
        let i = *claims_index.entry(s.claims.clone()).or_insert_with(|| {
            claims.push(s.claims.clone());
            next
        });
        sub_claims.push(i);
    }
    // Candidates: (change, subscription) pairs whose event and filter match; and for each
    // claims object, the changes (in order, by index) it must be asked about — only those,
    // so that the work in Postgres grows with the deliveries, not subscribers × changes.
    // Subscriptions with the same event and filter (all members watching one conversation)
    // are matched against a change once.
    let mut kinds: Vec<(Event, Option<&Filter>, Vec<usize>)> = Vec::new();
    let mut kind_index: HashMap<(Event, Option<&Filter>), usize> = HashMap::new();
    for (j, s) in subs.iter().enumerate() {
        let key = (s.binding.event, s.binding.filter.as_ref());
        let k = *kind_index.entry(key).or_insert_with(|| {
            kinds.push((key.0, key.1, Vec::new()));
            kinds.len() - 1
        });
        kinds[k].2.push(j);
    }
    // `eq`/`in` filters are found through an index by (column, value) of the changed row;
    // only unfiltered bindings and scanned filters (`neq`, `lt`, …, capped per process) are
    // tested against every change.
    let mut tested: Vec<usize> = Vec::new();
    let mut index: HashMap<&str, HashMap<std::borrow::Cow<'_, str>, Vec<usize>>> = HashMap::new();
    for (k, (_, filter, _)) in kinds.iter().enumerate() {
        match filter.and_then(|f| f.indexed()) {
            Some((column, values)) => {
                let by_value = index.entry(column).or_default();
                for v in values {
                    let found = by_value.entry(index_key(v)).or_default();
                    if found.last() != Some(&k) {
                        found.push(k);
                    }
                }
            }
            None => tested.push(k),
        }
    }
    let passes = |k: usize, c: &Change| kinds[k].0.matches(&c.kind) && kinds[k].1.is_none_or(|f| f.matches(c.row()));
    let mut candidates: Vec<Vec<usize>> = Vec::with_capacity(changes.len());
    let mut wanted: Vec<Vec<u32>> = vec![Vec::new(); claims.len()];
    let mut deleted = Vec::new();
    let mut hits: Vec<usize> = Vec::new();
    for (ci, c) in changes.iter().enumerate() {
        hits.clear();
        hits.extend(tested.iter().copied().filter(|&k| passes(k, c)));
        for (column, by_value) in &index {
            let Some(key) = cell_key(c.row(), column) else { continue };
            for &k in by_value.get(key.as_str()).into_iter().flatten() {
                if passes(k, c) {
                    hits.push(k);
                }
            }
        }
        hits.sort_unstable();
        hits.dedup();
        let mut matching: Vec<usize> = hits.iter().flat_map(|&k| kinds[k].2.iter().copied()).collect();
        matching.sort_unstable();
        if !matching.is_empty() && c.id().is_some() {
            for &j in &matching {
                let w = &mut wanted[sub_claims[j]];
                if w.last() != Some(&(ci as u32)) {
                    w.push(ci as u32);
                }
            }
            if c.kind == "DELETE" {
                deleted.push(c.old_record.clone());
            }
        }
        candidates.push(matching);
    }
    // Claims objects asking about the same changes are authorized together.
    let mut groups: HashMap<&[u32], Vec<usize>> = HashMap::new();
    for (k, w) in wanted.iter().enumerate() {
        if !w.is_empty() {
            groups.entry(w.as_slice()).or_default().push(k);
        }
    }
    if groups.is_empty() {
        return;
    }
    let groups_n = groups.len();
    let groups: Vec<Group> = groups
        .into_iter()
        .map(|(w, members)| Group { ids: w.iter().filter_map(|&ci| changes[ci as usize].id()).collect(), claims: members })
        .collect();
    // Many claims objects are judged in parallel statements, each in its own transaction.
    // (Deleted rows are judged from their old records, by their conversation or user: see
    // migration 0010; nothing is written, so the parts do not queue on each other.)
    let started = std::time::Instant::now();
    let parts = split(groups, AUTHORIZE_CHUNK, AUTHORIZE_PARALLEL);
    let results = futures::future::join_all(parts.iter().map(|part| authorize(rt, table, part, &deleted, &claims))).await;
    let mut visible = HashSet::new();
    for result in results {
        match result {
            Ok(v) => visible.extend(v),
            Err(e) => {
                // Fail closed: nothing is delivered that Postgres did not allow; and the
                // channels that could have wanted the batch rejoin and catch up.
                let channels = rt.hub.interrupt_changes();
                tracing::error!(error = %e, table, channels, "realtime: authorization failed; batch dropped, channels told to rejoin");
                return;
            }
        }
    }
    tracing::debug!(table, changes = changes.len(), subscriptions = subs.len(), groups = groups_n, claims = claims.len(), elapsed = ?started.elapsed(), "realtime: batch authorized");
    let columns = rt.publication.columns(table).map(|c| serde_json::to_value(c).unwrap_or_default()).unwrap_or_default();
    let mut recipients: Vec<(Arc<str>, Vec<u32>, &Arc<Subscription>)> = Vec::new();
    let mut by_channel: HashMap<(SocketId, &str), usize> = HashMap::new();
    for (c, matching) in changes.iter().zip(&candidates) {
        let Some(id) = c.id() else { continue };
        recipients.clear();
        by_channel.clear();
        for &j in matching {
            if !visible.contains(&(sub_claims[j], id)) {
                continue;
            }
            let s = &subs[j];
            match by_channel.get(&(s.socket.id, &*s.topic)) {
                Some(&r) => {
                    let ids = &mut recipients[r].1;
                    if !ids.contains(&s.binding.id) {
                        ids.push(s.binding.id)
                    }
                }
                None => {
                    by_channel.insert((s.socket.id, &*s.topic), recipients.len());
                    recipients.push((s.topic.clone(), vec![s.binding.id], s));
                }
            }
        }
        if recipients.is_empty() {
            continue;
        }
        let data: Arc<str> = payload(c, &columns).to_string().into();
        for (topic, ids, s) in recipients.drain(..) {
            s.socket.send(Outbound::Change { topic, ids, data: data.clone() });
        }
    }
}

/// Claims objects (indexes into the batch's distinct claims) and the row ids they are asked
/// about.
struct Group {
    ids: Vec<Uuid>,
    claims: Vec<usize>,
}

/// Claims objects per authorization statement before the work is split, and the most
/// statements run at once for one batch.
const AUTHORIZE_CHUNK: usize = 128;
pub(crate) const AUTHORIZE_PARALLEL: usize = 4;

/// Splits `groups` into at most `max` parts of about equal claims count, at least `chunk`
/// claims each (a group may be cut in two).
fn split(groups: Vec<Group>, chunk: usize, max: usize) -> Vec<Vec<Group>> {
    let total: usize = groups.iter().map(|g| g.claims.len()).sum();
    let parts = (total / chunk.max(1)).clamp(1, max.max(1));
    if parts == 1 {
        return vec![groups];
    }
    let share = total.div_ceil(parts);
    let mut out = Vec::with_capacity(parts);
    let (mut current, mut filled) = (Vec::new(), 0);
    for group in groups {
        let mut claims = group.claims;
        while !claims.is_empty() {
            let rest = claims.split_off((share - filled).min(claims.len()));
            filled += claims.len();
            current.push(Group { ids: group.ids.clone(), claims });
            claims = rest;
            if filled == share {
                out.push(std::mem::take(&mut current));
                filled = 0;
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The `data` of a `postgres_changes` message. A DELETE's old record carries only the key,
/// the conversation and the user (Supabase sends only the key under RLS); so does an
/// UPDATE's: the previous version of a row is not everyone's to read (a soft delete blanks a
/// message's text, an edit replaces it — the old text must not ride along in the change).
fn payload(c: &Change, columns: &Value) -> Value {
    let empty = || Value::Object(Default::default());
    let old = match c.kind.as_str() {
        "INSERT" => empty(),
        _ => {
            let mut o = serde_json::Map::new();
            // `user_id` too where the row has one (a membership, a notification): who left
            // is what a client needs from a membership DELETE, and every recipient may read it.
            for k in ["id", "conversation_id", "user_id"] {
                if let Some(v) = c.old_record.get(k) {
                    o.insert(k.to_owned(), v.clone());
                }
            }
            Value::Object(o)
        }
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

/// `(claims index, row id)` pairs that Postgres lets each claims object select, asking
/// each group's claims only about the group's rows: `werkfunk_realtime.authorize` once per group,
/// all in one statement.
async fn authorize(
    rt: &Realtime,
    table: &str,
    groups: &[Group],
    deleted: &[Value],
    claims: &[Arc<str>],
) -> Result<HashSet<(usize, Uuid)>, sqlx::Error> {
    // [{"ids": [...], "claims": [<claims JSON>, ...]}, ...]; the claims are JSON already.
    let mut spec = String::from("[");
    for (g, group) in groups.iter().enumerate() {
        if g > 0 {
            spec.push(',');
        }
        spec.push_str("{\"ids\":[");
        for (i, id) in group.ids.iter().enumerate() {
            if i > 0 {
                spec.push(',');
            }
            spec.push('"');
            spec.push_str(&id.to_string());
            spec.push('"');
        }
        spec.push_str("],\"claims\":[");
        for (i, &k) in group.claims.iter().enumerate() {
            if i > 0 {
                spec.push(',');
            }
            spec.push_str(&claims[k]);
        }
        spec.push_str("]}");
    }
    spec.push(']');
    let mut tx = crate::db::begin(&rt.feed_pool).await?;
    let rows: Vec<(i64, i32, Uuid)> = sqlx::query_as(
        "select g.ord, a.claims_index, a.id
           from jsonb_array_elements($2::jsonb) with ordinality as g(spec, ord)
          cross join lateral werkfunk_realtime.authorize(
                $1::regclass,
                array(select jsonb_array_elements_text(g.spec -> 'ids'))::uuid[],
                $3,
                array(select c.claims from jsonb_array_elements(g.spec -> 'claims') with ordinality as c(claims, n) order by c.n)) as a",
    )
    .bind(format!("public.{}", quote_ident(table)))
    .bind(spec)
    .bind((!deleted.is_empty()).then(|| Value::Array(deleted.to_vec())))
    .fetch_all(&mut *tx)
    .await?;
    // Only transaction-local settings (role, claims) were changed.
    tx.rollback().await?;
    Ok(rows
        .into_iter()
        .filter_map(|(g, k, id)| {
            let group = groups.get(usize::try_from(g).ok()?.checked_sub(1)?)?;
            Some((*group.claims.get(usize::try_from(k).ok()?.checked_sub(1)?)?, id))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_every_claims_object_once_with_its_rows() {
        let id = |n: u128| Uuid::from_u128(n);
        let groups = vec![
            Group { ids: vec![id(1)], claims: (0..300).collect() },
            Group { ids: vec![id(2), id(3)], claims: (300..400).collect() },
        ];
        let parts = split(groups, 128, 4);
        assert_eq!(parts.len(), 3);
        let mut seen = Vec::new();
        for part in &parts {
            let n: usize = part.iter().map(|g| g.claims.len()).sum();
            assert!(n <= 134, "{n}");
            for g in part {
                for &k in &g.claims {
                    assert_eq!(g.ids, if k < 300 { vec![id(1)] } else { vec![id(2), id(3)] });
                    seen.push(k);
                }
            }
        }
        seen.sort();
        assert_eq!(seen, (0..400).collect::<Vec<_>>());
        assert_eq!(split(vec![Group { ids: vec![], claims: vec![0, 1] }], 128, 4).len(), 1);
    }
}
