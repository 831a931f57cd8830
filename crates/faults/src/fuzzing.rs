//! The properties the fuzz targets check, as plain functions.
//!
//! `fuzz/fuzz_targets/*.rs` (cargo-fuzz, nightly features) call these on every input; the
//! test `tests/fuzz_corpus.rs` replays the committed corpus and every past crash through the
//! same functions on the stable toolchain, so a crash once found stays a regression test.
//! Each function panics when a property does not hold.
//!
//! - [`rest_query`]: the PostgREST query-string parser and the SQL builder never panic, and
//!   the SQL they produce carries request values only as bind parameters or as quoted,
//!   escaped identifiers (aliases) — nothing from the request as SQL text.
//! - [`phoenix_frames`]: the v1 JSON, v2 array and v2 binary decoders never panic, and a
//!   decoded text frame encodes back to the same frame.
//! - [`jwt_verify`]: the verifier never panics, accepts only HS256 tokens signed with its
//!   secret, unexpired, with one of the three roles.
//! - [`engine_realtime`]: the engine's decoding of realtime frames (binary broadcasts, and
//!   `postgres_changes` payloads into cache changes) never panics.

use std::collections::BTreeMap;

use serde_json::Value;
use werkfunk_protocol::realtime::{Frame, Vsn};
use werkfunk_server::jwt::{DbRole, Keys};
use werkfunk_server::rest::query::{Query, SelectItem};
use werkfunk_server::rest::schema::{Column, ForeignKey, Relation, Schema};
use werkfunk_server::rest::sql::Builder;

fn col(name: &str, sql_type: &str) -> Column {
    Column { name: name.to_owned(), sql_type: sql_type.to_owned() }
}

fn relation(name: &str, columns: Vec<Column>) -> Relation {
    Relation { name: name.to_owned(), columns, primary_key: vec!["id".to_owned()], writable: true }
}

fn fk(name: &str, table: &str, column: &str, foreign_table: &str) -> ForeignKey {
    ForeignKey {
        name: name.to_owned(),
        table: table.to_owned(),
        columns: vec![column.to_owned()],
        foreign_table: foreign_table.to_owned(),
        foreign_columns: vec!["id".to_owned()],
    }
}

/// The messaging schema's shape, as the server introspects it (enough for embeds).
pub fn schema() -> Schema {
    let mut relations = BTreeMap::new();
    let ts = "timestamp with time zone";
    relations.insert(
        "messages".to_owned(),
        relation(
            "messages",
            vec![
                col("id", "uuid"),
                col("conversation_id", "uuid"),
                col("sender_id", "uuid"),
                col("content", "text"),
                col("type", "text"),
                col("attachments", "jsonb"),
                col("meta", "jsonb"),
                col("created_at", ts),
                col("updated_at", ts),
                col("deleted_at", ts),
            ],
        ),
    );
    relations.insert(
        "profiles".to_owned(),
        relation("profiles", vec![col("id", "uuid"), col("full_name", "text"), col("avatar_url", "text"), col("role", "text")]),
    );
    relations.insert(
        "conversations".to_owned(),
        relation("conversations", vec![col("id", "uuid"), col("type", "text"), col("title", "text"), col("updated_at", ts)]),
    );
    relations.insert(
        "conversation_members".to_owned(),
        relation(
            "conversation_members",
            vec![col("id", "uuid"), col("conversation_id", "uuid"), col("user_id", "uuid"), col("last_read_at", ts)],
        ),
    );
    let foreign_keys = vec![
        fk("messages_sender_id_fkey", "messages", "sender_id", "profiles"),
        fk("messages_conversation_id_fkey", "messages", "conversation_id", "conversations"),
        fk("conversation_members_conversation_id_fkey", "conversation_members", "conversation_id", "conversations"),
        fk("conversation_members_user_id_fkey", "conversation_members", "user_id", "profiles"),
    ];
    Schema { relations, foreign_keys, functions: BTreeMap::new() }
}

/// Every alias a select list names (they reach SQL as quoted identifiers).
fn labels(items: &[SelectItem], out: &mut Vec<String>) {
    for item in items {
        match item {
            SelectItem::Column { alias: Some(a), .. } => out.push(a.clone()),
            SelectItem::Embed(e) => {
                if let Some(a) = &e.alias {
                    out.push(a.clone());
                }
                out.push(e.target.clone());
                labels(&e.select, out);
            }
            _ => {}
        }
    }
}

/// Checks that `sql` is built only from keywords, aliases, casts, placeholders `$1..$binds`,
/// the literal `'[]'`, and quoted identifiers that are schema names or the query's labels.
fn assert_only_binds(sql: &str, binds: usize, schema: &Schema, allowed_labels: &[String]) {
    let known = |ident: &str| {
        schema.relations.values().any(|r| r.name == ident || r.columns.iter().any(|c| c.name == ident))
            || allowed_labels.iter().any(|l| l == ident)
    };
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '"' => {
                let mut ident = String::new();
                i += 1;
                loop {
                    assert!(i < chars.len(), "unterminated quoted identifier in {sql:?}");
                    if chars[i] == '"' {
                        if chars.get(i + 1) == Some(&'"') {
                            ident.push('"');
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    ident.push(chars[i]);
                    i += 1;
                }
                assert!(known(&ident), "quoted identifier {ident:?} is neither a schema name nor a label, in {sql:?}");
                i += 1;
            }
            '\'' => {
                let rest: String = chars[i..].iter().take(4).collect();
                assert_eq!(rest, "'[]'", "a string literal in {sql:?}");
                i += 4;
            }
            '$' => {
                let digits: String = chars[i + 1..].iter().take_while(|c| c.is_ascii_digit()).collect();
                let n: usize = digits.parse().unwrap_or_else(|_| panic!("`$` without a number in {sql:?}"));
                assert!(n >= 1 && n <= binds, "placeholder ${n} with {binds} binds in {sql:?}");
                i += 1 + digits.len();
            }
            c => {
                assert!(
                    c.is_ascii_lowercase() || c.is_ascii_digit() || " _.,()=<>:[]*".contains(c),
                    "character {c:?} outside identifiers and binds in {sql:?}"
                );
                i += 1;
            }
        }
    }
}

/// Parses `data` as a query string (for a table, and for a function with an argument), and
/// builds the SQL of a read on `messages`.
pub fn rest_query(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let _ = Query::parse(&raw, &["p_query", "p_conversation_id"]);
    let Ok(q) = Query::parse(&raw, &[]) else {
        return;
    };
    let schema = schema();
    let relation = &schema.relations["messages"];
    let mut b = Builder::new(&schema);
    let alias = b.alias();
    let Ok(list) = b.select_list(relation, q.select.as_deref(), &alias) else {
        return;
    };
    let Ok(inner) = b.inner_joins(relation, q.select.as_deref(), &alias) else {
        return;
    };
    let Ok(filter) = b.where_clause(relation, &q.conditions, &alias, inner) else {
        return;
    };
    let Ok(order) = b.order_clause(relation, &q.order, &alias) else {
        return;
    };
    let sql = format!("select {list} from public.\"messages\" as {alias}{filter} {order}");
    let mut allowed = Vec::new();
    labels(q.select.as_deref().unwrap_or(&[]), &mut allowed);
    assert_only_binds(&sql, b.binds.len(), &schema, &allowed);
}

/// All three decoders; text frames that decode must survive an encode/decode round trip.
pub fn phoenix_frames(data: &[u8]) {
    let _ = Frame::decode_binary(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for vsn in [Vsn::V1, Vsn::V2] {
        if let Ok(frame) = Frame::decode_text(vsn, text) {
            let again = Frame::decode_text(vsn, &frame.encode_text(vsn)).expect("an encoded frame decodes");
            assert_eq!(again, frame, "round trip of {text:?}");
        }
    }
}

/// The secret the JWT target verifies with.
pub const FUZZ_SECRET: &str = "fuzz-secret-0123456789-abcdefghijklmnopqrstuvwxyz";

/// `data` as a token as is; then as claims (and a header) signed with the right secret.
pub fn jwt_verify(data: &[u8]) {
    let keys = Keys::new(FUZZ_SECRET);
    let now = 1_800_000_000;
    let text = String::from_utf8_lossy(data);
    if let Ok(v) = keys.verify(&text, now) {
        // Accepted as is: it must really be ours.
        assert!(
            Keys::new("another secret of the same kind, 0123456789").verify(&text, now).is_err(),
            "{text:?} verifies under any secret"
        );
        assert!(v.claims.exp > now);
    }
    // As claims: signed correctly, accepted only with a valid role and a future exp.
    let Ok(claims) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if !claims.is_object() {
        return;
    }
    let token = keys.sign(&claims);
    if let Ok(v) = keys.verify(&token, now) {
        let role = claims.get("role").and_then(Value::as_str);
        assert!(matches!(role, Some("anon" | "authenticated" | "service_role")), "role {role:?} accepted");
        assert_eq!(Some(v.role.as_str()), role);
        assert!(claims.get("exp").and_then(Value::as_i64).is_some_and(|e| e > now), "exp not checked: {claims}");
        if v.role == DbRole::Authenticated {
            assert!(v.claims.sub.is_some(), "authenticated without sub");
        }
        // The same claims under `alg: none` or another algorithm are refused.
        let forged = token.replacen(token.split('.').next().unwrap_or(""), "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0", 1);
        assert!(keys.verify(&forged, now).is_err(), "alg none accepted");
    }
}

/// The engine's side: binary broadcasts, and text frames as its realtime actor reads them.
pub fn engine_realtime(data: &[u8]) {
    let _ = werkfunk_protocol::realtime::binary::decode_broadcast(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(frame) = Frame::decode_text(Vsn::V2, text) else {
        return;
    };
    let data = frame.payload.get("data").cloned().unwrap_or(Value::Null);
    let s = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let record = data.get("record").cloned().unwrap_or(Value::Null);
    let old = data.get("old_record").cloned().unwrap_or(Value::Null);
    let _ = werkfunk_core::sync::change_from(&s("table"), &s("type"), &record, &old);
    // Also the payload itself as a record of every table the engine applies.
    for table in ["messages", "conversations", "conversation_members", "notifications"] {
        for kind in ["INSERT", "UPDATE", "DELETE"] {
            let _ = werkfunk_core::sync::change_from(table, kind, &frame.payload, &frame.payload);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_check_accepts_built_sql_and_catches_values_in_the_text() {
        let schema = schema();
        let q = Query::parse("select=id,label:content,sender:sender_id(full_name)&content=eq.x'y&order=created_at.desc", &[])
            .unwrap();
        let relation = &schema.relations["messages"];
        let mut b = Builder::new(&schema);
        let a = b.alias();
        let list = b.select_list(relation, q.select.as_deref(), &a).unwrap();
        let filter = b.where_clause(relation, &q.conditions, &a, Vec::new()).unwrap();
        let sql = format!("select {list} from public.\"messages\" as {a}{filter}");
        let mut allowed = Vec::new();
        labels(q.select.as_deref().unwrap(), &mut allowed);
        assert_only_binds(&sql, b.binds.len(), &schema, &allowed);
        let leaked = std::panic::catch_unwind(|| assert_only_binds("select 1 where x = 'y'", 0, &schema, &[]));
        assert!(leaked.is_err());
        let unknown = std::panic::catch_unwind(|| assert_only_binds("select \"secret\"", 0, &schema, &[]));
        assert!(unknown.is_err());
        rest_query(b"select=*,sender:sender_id(full_name,avatar_url)&or=(content.eq.a,id.eq.b)");
    }
}
