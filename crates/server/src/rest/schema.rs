//! The `public` schema as introspected at start: relations, columns, keys, functions.
//!
//! Every identifier that reaches SQL text comes from here — never from the request — and is
//! quoted on the way out ([`quote_ident`]).

use std::collections::BTreeMap;

use sqlx::PgPool;

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// The type as `format_type` spells it, usable in a cast.
    pub sql_type: String,
}

#[derive(Debug, Clone)]
pub struct Relation {
    pub name: String,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    /// Views and functions' results cannot be written.
    pub writable: bool,
}

impl Relation {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// A foreign key between two relations of `public`.
#[derive(Debug, Clone)]
pub struct ForeignKey {
    pub name: String,
    pub table: String,
    pub columns: Vec<String>,
    pub foreign_table: String,
    pub foreign_columns: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Argument {
    pub name: String,
    pub sql_type: String,
    pub has_default: bool,
}

#[derive(Debug, Clone)]
pub enum Returns {
    Void,
    /// One value of a base type.
    Scalar,
    /// Rows with these columns (`setof table`, `returns table(...)`, or a single composite).
    Rows {
        columns: Vec<Column>,
        set: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Function {
    pub name: String,
    pub arguments: Vec<Argument>,
    pub returns: Returns,
}

#[derive(Debug, Default)]
pub struct Schema {
    pub relations: BTreeMap<String, Relation>,
    pub foreign_keys: Vec<ForeignKey>,
    pub functions: BTreeMap<String, Vec<Function>>,
}

/// `"name"` with inner quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Schema {
    #[allow(clippy::type_complexity)] // rows of catalog queries, read once at start
    pub async fn load(pool: &PgPool) -> Result<Schema, sqlx::Error> {
        let mut schema = Schema::default();
        let columns: Vec<(String, String, bool, String, Option<Vec<String>>)> = sqlx::query_as(
            r#"select c.relname::text, a.attname::text, c.relkind in ('r','p'), format_type(a.atttypid, a.atttypmod),
                      (select array_agg(pa.attname::text order by array_position(k.conkey, pa.attnum))
                         from pg_constraint k join pg_attribute pa on pa.attrelid = k.conrelid and pa.attnum = any(k.conkey)
                        where k.conrelid = c.oid and k.contype = 'p')
                 from pg_class c
                 join pg_namespace n on n.oid = c.relnamespace
                 join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                where n.nspname = 'public' and c.relkind in ('r','p','v','m','f')
                order by c.relname, a.attnum"#,
        )
        .fetch_all(pool)
        .await?;
        for (table, column, writable, sql_type, pk) in columns {
            let relation = schema.relations.entry(table.clone()).or_insert_with(|| Relation {
                name: table,
                columns: Vec::new(),
                primary_key: pk.unwrap_or_default(),
                writable,
            });
            relation.columns.push(Column { name: column, sql_type });
        }

        let fks: Vec<(String, String, Vec<String>, String, Vec<String>)> = sqlx::query_as(
            r#"select k.conname::text, c.relname::text,
                      (select array_agg(a.attname::text order by array_position(k.conkey, a.attnum))
                         from pg_attribute a where a.attrelid = k.conrelid and a.attnum = any(k.conkey)),
                      fc.relname::text,
                      (select array_agg(a.attname::text order by array_position(k.confkey, a.attnum))
                         from pg_attribute a where a.attrelid = k.confrelid and a.attnum = any(k.confkey))
                 from pg_constraint k
                 join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
                 join pg_class fc on fc.oid = k.confrelid join pg_namespace fn on fn.oid = fc.relnamespace
                where k.contype = 'f' and n.nspname = 'public' and fn.nspname = 'public'
                order by k.conname"#,
        )
        .fetch_all(pool)
        .await?;
        schema.foreign_keys = fks
            .into_iter()
            .map(|(name, table, columns, foreign_table, foreign_columns)| ForeignKey {
                name,
                table,
                columns,
                foreign_table,
                foreign_columns,
            })
            .collect();

        type FnRow = (String, Vec<String>, Vec<String>, i16, Vec<String>, String, bool, String, Option<String>);
        let functions: Vec<FnRow> = sqlx::query_as(
            r#"select p.proname::text,
                      coalesce(p.proargnames, '{}')::text[],
                      coalesce(p.proargmodes::text[], array_fill('i'::text, array[cardinality(p.proargtypes)])),
                      p.pronargdefaults,
                      coalesce((select array_agg(format_type(t, null) order by o) from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality as x(t, o)), '{}'),
                      t.typtype::text, p.proretset, format_type(p.prorettype, null),
                      case when t.typtype = 'c' then t.typrelid::regclass::text end
                 from pg_proc p
                 join pg_namespace n on n.oid = p.pronamespace
                 join pg_type t on t.oid = p.prorettype
                where n.nspname = 'public' and p.prokind = 'f'
                  and p.prorettype <> 'trigger'::regtype and p.prorettype <> 'event_trigger'::regtype"#,
        )
        .fetch_all(pool)
        .await?;
        for (name, arg_names, modes, n_defaults, types, typtype, set, ret_type, ret_rel) in functions {
            let mut arguments = Vec::new();
            let mut out = Vec::new();
            for (i, mode) in modes.iter().enumerate() {
                let arg_name = arg_names.get(i).cloned().unwrap_or_default();
                let sql_type = types.get(i).cloned().unwrap_or_default();
                match mode.as_str() {
                    "i" | "b" => arguments.push(Argument { name: arg_name, sql_type, has_default: false }),
                    "t" | "o" => out.push(Column { name: arg_name, sql_type }),
                    _ => {}
                }
            }
            let n = arguments.len();
            for arg in arguments.iter_mut().skip(n.saturating_sub(n_defaults.max(0) as usize)) {
                arg.has_default = true;
            }
            let returns = if ret_type == "void" {
                Returns::Void
            } else if !out.is_empty() {
                Returns::Rows { columns: out, set }
            } else if typtype == "c" {
                let rel = ret_rel.as_deref().map(|r| r.trim_start_matches("public.").trim_matches('"').to_owned());
                let columns = rel.and_then(|r| schema.relations.get(&r)).map(|r| r.columns.clone()).unwrap_or_default();
                Returns::Rows { columns, set }
            } else {
                Returns::Scalar
            };
            schema.functions.entry(name.clone()).or_default().push(Function { name, arguments, returns });
        }
        Ok(schema)
    }
}
