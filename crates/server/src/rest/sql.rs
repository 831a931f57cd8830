//! Turns a parsed [`Query`](super::query::Query) into SQL text and bind values.
//!
//! Identifiers come only from the introspected [`Schema`] and are quoted; every value from
//! the request is a bind parameter, cast to the column's catalog type. Results are built as
//! JSON inside Postgres (`json_agg`/`row_to_json`), as PostgREST does, so rows never pass
//! through Rust types.

use axum::http::StatusCode;

use super::query::{Condition, Embed, IsValue, Nulls, Op, Operand, Order, SelectItem};
use super::schema::{quote_ident, ForeignKey, Relation, Schema};
use crate::error::{Error, Result};

/// A bind value.
#[derive(Debug, Clone)]
pub enum Bind {
    Text(Option<String>),
    TextArray(Vec<String>),
}

/// Collects bind values and hands out fresh table aliases while SQL is assembled.
pub struct Builder<'s> {
    schema: &'s Schema,
    pub binds: Vec<Bind>,
    aliases: usize,
}

/// `column messages.foo does not exist`, as Postgres and PostgREST word it.
pub fn unknown_column(relation: &str, column: &str) -> Error {
    Error::rest(StatusCode::BAD_REQUEST, "42703", format!("column {relation}.{column} does not exist"))
}

/// How an embedded resource joins its parent.
enum Join<'s> {
    /// The parent holds the foreign key (`messages.sender_id → profiles.id`): one object.
    ToOne(&'s ForeignKey),
    /// The embedded relation holds it (`conversations ← messages.conversation_id`): an array.
    ToMany(&'s ForeignKey),
}

impl<'s> Builder<'s> {
    pub fn new(schema: &'s Schema) -> Builder<'s> {
        Builder { schema, binds: Vec::new(), aliases: 0 }
    }

    pub fn bind(&mut self, bind: Bind) -> String {
        self.binds.push(bind);
        format!("${}", self.binds.len())
    }

    pub fn alias(&mut self) -> String {
        let a = format!("_t{}", self.aliases);
        self.aliases += 1;
        a
    }

    /// The select list of `relation` (aliased `alias`), embeds included.
    pub fn select_list(&mut self, relation: &Relation, items: Option<&[SelectItem]>, alias: &str) -> Result<String> {
        let items = items.unwrap_or(&[SelectItem::Star]);
        let mut out = Vec::new();
        for item in items {
            match item {
                SelectItem::Star => {
                    out.extend(relation.columns.iter().map(|c| format!("{alias}.{0} as {0}", quote_ident(&c.name))))
                }
                SelectItem::Column { name, alias: label } => {
                    relation.column(name).ok_or_else(|| unknown_column(&relation.name, name))?;
                    out.push(format!("{alias}.{} as {}", quote_ident(name), quote_ident(label.as_deref().unwrap_or(name))));
                }
                SelectItem::Embed(embed) => out.push(self.embed(relation, embed, alias)?),
            }
        }
        if out.is_empty() {
            return Err(Error::bad_query("\"failed to parse select parameter\"", "nothing selected"));
        }
        Ok(out.join(", "))
    }

    fn resolve(&self, parent: &Relation, embed: &Embed) -> Result<(Join<'s>, &'s Relation)> {
        let not_found = || {
            Error::rest(
                StatusCode::BAD_REQUEST,
                "PGRST200",
                format!("Could not find a relationship between '{}' and '{}' in the schema cache", parent.name, embed.target),
            )
        };
        let fks = &self.schema.foreign_keys;
        // `sender_id(...)`: a foreign-key column of the parent names the relationship.
        if parent.column(&embed.target).is_some() {
            let fk =
                fks.iter().find(|fk| fk.table == parent.name && fk.columns == [embed.target.clone()]).ok_or_else(not_found)?;
            let target = self.schema.relations.get(&fk.foreign_table).ok_or_else(not_found)?;
            return Ok((Join::ToOne(fk), target));
        }
        let target = self.schema.relations.get(&embed.target).ok_or_else(not_found)?;
        let hint_matches = |fk: &ForeignKey| embed.hint.as_ref().is_none_or(|h| fk.name == *h || fk.columns == [h.clone()]);
        let mut candidates: Vec<Join<'s>> = Vec::new();
        for fk in fks {
            if !hint_matches(fk) {
                continue;
            }
            if fk.table == parent.name && fk.foreign_table == target.name {
                candidates.push(Join::ToOne(fk));
            } else if fk.table == target.name && fk.foreign_table == parent.name {
                candidates.push(Join::ToMany(fk));
            }
        }
        match candidates.len() {
            0 => Err(not_found()),
            1 => Ok((candidates.pop().expect("one candidate"), target)),
            _ => {
                let names: Vec<&str> = candidates
                    .iter()
                    .map(|j| match j {
                        Join::ToOne(fk) | Join::ToMany(fk) => fk.name.as_str(),
                    })
                    .collect();
                Err(Error::rest(
                    StatusCode::MULTIPLE_CHOICES,
                    "PGRST201",
                    format!(
                        "Could not embed because more than one relationship was found for '{}' and '{}'",
                        parent.name, target.name
                    ),
                )
                .with_details(names.join(", "))
                .with_hint(format!(
                    "Try changing '{}' to one of the relationships, e.g. '{}!{}'",
                    embed.target, target.name, names[0]
                )))
            }
        }
    }

    /// `parent.fk = child.key and …` for a join.
    fn join_condition(join: &Join<'_>, parent: &str, child: &str) -> String {
        let pairs: Vec<String> = match join {
            Join::ToOne(fk) => fk
                .columns
                .iter()
                .zip(&fk.foreign_columns)
                .map(|(p, c)| format!("{child}.{} = {parent}.{}", quote_ident(c), quote_ident(p)))
                .collect(),
            Join::ToMany(fk) => fk
                .columns
                .iter()
                .zip(&fk.foreign_columns)
                .map(|(c, p)| format!("{child}.{} = {parent}.{}", quote_ident(c), quote_ident(p)))
                .collect(),
        };
        pairs.join(" and ")
    }

    fn embed(&mut self, parent: &Relation, embed: &Embed, parent_alias: &str) -> Result<String> {
        let (join, target) = self.resolve(parent, embed)?;
        let child = self.alias();
        let row = self.alias();
        let list = self.select_list(target, Some(&embed.select), &child)?;
        let on = Self::join_condition(&join, parent_alias, &child);
        let table = format!("public.{}", quote_ident(&target.name));
        let label = quote_ident(embed.alias.as_deref().unwrap_or(&embed.target));
        Ok(match join {
            Join::ToOne(_) => format!(
                "(select row_to_json({row}) from (select {list} from {table} as {child} where {on} limit 1) {row}) as {label}"
            ),
            Join::ToMany(_) => format!(
                "(select coalesce(json_agg({row}), '[]'::json) from (select {list} from {table} as {child} where {on}) {row}) as {label}"
            ),
        })
    }

    /// `exists(…)` conditions for `!inner` embeds in `items`.
    pub fn inner_joins(&mut self, relation: &Relation, items: Option<&[SelectItem]>, alias: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for item in items.unwrap_or(&[]) {
            if let SelectItem::Embed(embed) = item {
                if embed.inner {
                    let (join, target) = self.resolve(relation, embed)?;
                    let child = self.alias();
                    let on = Self::join_condition(&join, alias, &child);
                    out.push(format!("exists (select 1 from public.{} as {child} where {on})", quote_ident(&target.name)));
                }
            }
        }
        Ok(out)
    }

    /// `where …` for `conditions` (AND-ed), or an empty string.
    pub fn where_clause(
        &mut self,
        relation: &Relation,
        conditions: &[Condition],
        alias: &str,
        extra: Vec<String>,
    ) -> Result<String> {
        let mut parts = extra;
        for c in conditions {
            parts.push(self.condition(relation, c, alias)?);
        }
        Ok(if parts.is_empty() { String::new() } else { format!(" where {}", parts.join(" and ")) })
    }

    fn condition(&mut self, relation: &Relation, condition: &Condition, alias: &str) -> Result<String> {
        let (negated, sql) = match condition {
            Condition::Filter(f) => {
                let column = relation.column(&f.column).ok_or_else(|| unknown_column(&relation.name, &f.column))?;
                let col = format!("{alias}.{}", quote_ident(&column.name));
                let ty = &column.sql_type;
                let sql = match (&f.op, &f.operand) {
                    (Op::Is, Operand::Is(v)) => format!(
                        "{col} is {}",
                        match v {
                            IsValue::Null => "null",
                            IsValue::NotNull => "not null",
                            IsValue::True => "true",
                            IsValue::False => "false",
                            IsValue::Unknown => "unknown",
                        }
                    ),
                    (Op::In, Operand::List(items)) => {
                        let p = self.bind(Bind::TextArray(items.clone()));
                        format!("{col} = any(({p}::text[])::{ty}[])")
                    }
                    (Op::Like | Op::Ilike, Operand::Value(v)) => {
                        let p = self.bind(Bind::Text(Some(v.replace('*', "%"))));
                        let op = if f.op == Op::Like { "like" } else { "ilike" };
                        format!("{col}::text {op} {p}::text")
                    }
                    (op, Operand::Value(v)) => {
                        let p = self.bind(Bind::Text(Some(v.clone())));
                        let sym = match op {
                            Op::Eq => "=",
                            Op::Neq => "<>",
                            Op::Gt => ">",
                            Op::Gte => ">=",
                            Op::Lt => "<",
                            Op::Lte => "<=",
                            _ => unreachable!("operands are parsed per operator"),
                        };
                        format!("{col} {sym} {p}::{ty}")
                    }
                    _ => unreachable!("operands are parsed per operator"),
                };
                (f.negated, sql)
            }
            Condition::Or { negated, conditions } | Condition::And { negated, conditions } => {
                let glue = if matches!(condition, Condition::Or { .. }) { " or " } else { " and " };
                let parts = conditions.iter().map(|c| self.condition(relation, c, alias)).collect::<Result<Vec<_>>>()?;
                let body = if parts.is_empty() { "true".to_owned() } else { parts.join(glue) };
                (*negated, format!("({body})"))
            }
        };
        Ok(if negated { format!("not ({sql})") } else { sql })
    }

    /// `order by …`, or an empty string.
    pub fn order_clause(&self, relation: &Relation, order: &[Order], alias: &str) -> Result<String> {
        if order.is_empty() {
            return Ok(String::new());
        }
        let terms = order
            .iter()
            .map(|o| {
                relation.column(&o.column).ok_or_else(|| unknown_column(&relation.name, &o.column))?;
                let mut t = format!("{alias}.{} {}", quote_ident(&o.column), if o.descending { "desc" } else { "asc" });
                match o.nulls {
                    Some(Nulls::First) => t.push_str(" nulls first"),
                    Some(Nulls::Last) => t.push_str(" nulls last"),
                    None => {}
                }
                Ok(t)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(format!(" order by {}", terms.join(", ")))
    }
}

/// A JSON argument value as the text Postgres parses for the argument's type: strings as
/// they are, arrays as array literals, objects as JSON.
pub fn json_to_pg_text(value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(_) | Value::Number(_) | Value::Object(_) => Some(value.to_string()),
        Value::Array(items) => {
            let elems: Vec<String> = items
                .iter()
                .map(|i| match json_to_pg_text(i) {
                    None => "NULL".to_owned(),
                    Some(t) => format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\"")),
                })
                .collect();
            Some(format!("{{{}}}", elems.join(",")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::json_to_pg_text;
    use serde_json::json;

    #[test]
    fn array_literals_quote_everything() {
        assert_eq!(json_to_pg_text(&json!(["a", "b\"c", null])).as_deref(), Some(r#"{"a","b\"c",NULL}"#));
        assert_eq!(json_to_pg_text(&json!(null)), None);
        assert_eq!(json_to_pg_text(&json!({"k": 1})).as_deref(), Some(r#"{"k":1}"#));
    }
}
