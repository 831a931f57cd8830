//! `postgres_changes` bindings: event, table and the `column=op.value` filter, checked against
//! the published tables at join, then matched against each change's record.
//!
//! A filter only narrows what a subscriber asked for; whether they may see a row is decided
//! by Postgres ([`super::changes`]), never here. `eq` and `in` filters are *indexed*: the
//! change feed finds them by (column, value) of a changed row ([`index_key`]) instead of
//! testing each; the others are *scanned* against every change of their table.

use serde_json::Value;
use werkfunk_protocol::realtime::ChangeBinding;

use super::publication::Publication;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    Insert,
    Update,
    Delete,
    All,
}

impl Event {
    fn parse(s: &str) -> Option<Event> {
        match s {
            "INSERT" => Some(Event::Insert),
            "UPDATE" => Some(Event::Update),
            "DELETE" => Some(Event::Delete),
            "*" => Some(Event::All),
            _ => None,
        }
    }

    pub fn matches(self, change_type: &str) -> bool {
        match self {
            Event::All => true,
            Event::Insert => change_type == "INSERT",
            Event::Update => change_type == "UPDATE",
            Event::Delete => change_type == "DELETE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Filter {
    column: String,
    op: Op,
    values: Vec<String>,
}

/// A validated binding.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub id: u32,
    pub event: Event,
    pub table: String,
    pub filter: Option<Filter>,
}

/// Supabase's deterministic, non-zero binding id (FNV-1a over the binding's fields).
pub fn binding_id(b: &ChangeBinding) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for part in [
        b.event.as_str(),
        "\0",
        b.schema.as_str(),
        "\0",
        b.table.as_deref().unwrap_or("*"),
        "\0",
        b.filter.as_deref().unwrap_or(""),
    ] {
        for byte in part.bytes() {
            h ^= u32::from(byte);
            h = h.wrapping_mul(0x01000193);
        }
    }
    (h & 0x7fff_ffff).max(1)
}

/// Checks a client's binding against the publication; the error text is what the client sees.
pub fn parse(b: &ChangeBinding, publication: &Publication) -> Result<Binding, String> {
    let event =
        Event::parse(&b.event).ok_or_else(|| format!("Invalid event {:?}: expected INSERT, UPDATE, DELETE or *", b.event))?;
    if b.schema != "public" {
        return Err(format!("Invalid schema {:?}: only public is published", b.schema));
    }
    let table = b.table.as_deref().filter(|t| !t.is_empty() && *t != "*").ok_or("A table is required")?;
    let columns = publication.columns(table).ok_or_else(|| format!("Table {table:?} is not published for realtime"))?;
    let filter = match b.filter.as_deref().filter(|f| !f.is_empty()) {
        None => None,
        Some(raw) => {
            let err = || format!("Error parsing `filter` params: {raw:?}");
            let (column, rest) = raw.split_once('=').ok_or_else(err)?;
            let (op, value) = rest.split_once('.').ok_or_else(err)?;
            if !columns.iter().any(|c| c.name == column) {
                return Err(format!("Error parsing `filter` params: column {column:?} does not exist in {table:?}"));
            }
            let op = match op {
                "eq" => Op::Eq,
                "neq" => Op::Neq,
                "lt" => Op::Lt,
                "lte" => Op::Lte,
                "gt" => Op::Gt,
                "gte" => Op::Gte,
                "in" => Op::In,
                _ => return Err(err()),
            };
            let values = if op == Op::In {
                let inner = value.strip_prefix('(').and_then(|v| v.strip_suffix(')')).ok_or_else(err)?;
                let values: Vec<String> = inner.split(',').map(|v| v.trim().trim_matches('"').to_owned()).collect();
                if values.len() > 100 {
                    return Err("Error parsing `filter` params: in takes at most 100 values".into());
                }
                values
            } else {
                vec![value.to_owned()]
            };
            Some(Filter { column: column.to_owned(), op, values })
        }
    };
    Ok(Binding { id: binding_id(b), event, table: table.to_owned(), filter })
}

/// A JSON cell as the text Postgres would print, for comparison with filter values.
fn cell_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The value under which an indexed filter is found: numbers in one canonical form (so
/// `1` and `1.0` meet, as [`Filter::matches`] compares them), everything else as it is. A
/// lookup only proposes candidates; [`Filter::matches`] confirms them.
pub fn index_key(value: &str) -> std::borrow::Cow<'_, str> {
    match value.parse::<f64>() {
        Ok(n) if n.is_finite() => std::borrow::Cow::Owned(format!("{n}")),
        _ => std::borrow::Cow::Borrowed(value),
    }
}

/// A cell of `record` as [`index_key`] keys it.
pub fn cell_key(record: &Value, column: &str) -> Option<String> {
    cell_text(record.get(column)?).map(|t| index_key(&t).into_owned())
}

impl Filter {
    /// Whether this filter can be found by value (`eq`, `in`).
    pub fn is_indexed(&self) -> bool {
        matches!(self.op, Op::Eq | Op::In)
    }

    /// The column an indexed filter looks at, and the values that pass it.
    pub fn indexed(&self) -> Option<(&str, &[String])> {
        self.is_indexed().then_some((self.column.as_str(), self.values.as_slice()))
    }

    /// Whether `record` passes. Numbers compare numerically, everything else as text
    /// (uuids, text and ISO timestamps of one zone order correctly as text).
    pub fn matches(&self, record: &Value) -> bool {
        let Some(cell) = record.get(&self.column).and_then(cell_text) else { return false };
        let cmp = |value: &str| -> std::cmp::Ordering {
            match (cell.parse::<f64>(), value.parse::<f64>()) {
                (Ok(a), Ok(b)) => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
                _ => cell.as_str().cmp(value),
            }
        };
        use std::cmp::Ordering::*;
        match self.op {
            Op::Eq => cmp(&self.values[0]) == Equal,
            Op::Neq => cmp(&self.values[0]) != Equal,
            Op::Lt => cmp(&self.values[0]) == Less,
            Op::Lte => cmp(&self.values[0]) != Greater,
            Op::Gt => cmp(&self.values[0]) == Greater,
            Op::Gte => cmp(&self.values[0]) != Less,
            Op::In => self.values.iter().any(|v| cmp(v) == Equal),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_match_records() {
        let f = Filter { column: "n".into(), op: Op::Gt, values: vec!["9".into()] };
        assert!(f.matches(&json!({"n": 10})));
        assert!(!f.matches(&json!({"n": 9})));
        assert!(!f.matches(&json!({"m": 10})));
        let f = Filter { column: "c".into(), op: Op::In, values: vec!["a".into(), "b".into()] };
        assert!(f.matches(&json!({"c": "b"})));
        assert!(!f.matches(&json!({"c": null})));
    }

    #[test]
    fn index_keys_meet_where_matches_agrees() {
        let f = Filter { column: "n".into(), op: Op::Eq, values: vec!["1.0".into()] };
        assert_eq!(index_key("1.0"), cell_key(&json!({"n": 1}), "n").unwrap());
        assert!(f.matches(&json!({"n": 1})));
        let id = "0190d0a4-0000-7000-8000-000000000001";
        assert_eq!(cell_key(&json!({"c": id}), "c").as_deref(), Some(id));
        assert_eq!(cell_key(&json!({"c": null}), "c"), None);
    }

    #[test]
    fn ids_are_stable_and_non_zero() {
        let b = ChangeBinding { event: "INSERT".into(), schema: "public".into(), table: Some("messages".into()), filter: None };
        assert_eq!(binding_id(&b), binding_id(&b.clone()));
        assert_ne!(binding_id(&b), 0);
    }
}
