//! The PostgREST query string: `select`, filters, `or`/`and`, `order`, `limit`, `offset`,
//! `on_conflict`, `columns` — parsed into a tree, before any name is checked against the
//! schema (that happens in [`super::sql`]).

use crate::error::{Error, Result};

/// Deepest parenthesis nesting accepted in `select`, `or`/`and` and their lists. Checked by
/// a linear scan before any recursive parsing, so no request can run the parser (or the SQL
/// builder after it) out of stack; PostgREST answers such input with a 400 as well.
pub const MAX_NESTING: usize = 16;

/// Longest query string accepted (after the path), in bytes.
pub const MAX_QUERY_BYTES: usize = 64 * 1024;

/// Most filters (leaves and `or`/`and` groups together) in one request.
pub const MAX_CONDITIONS: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    Star,
    Column { name: String, alias: Option<String> },
    Embed(Embed),
}

/// `alias:target!hint!inner(select…)`
#[derive(Debug, Clone, PartialEq)]
pub struct Embed {
    pub alias: Option<String>,
    pub target: String,
    pub hint: Option<String>,
    pub inner: bool,
    pub select: Vec<SelectItem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
    Ilike,
    Is,
    In,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "eq" => Op::Eq,
            "neq" => Op::Neq,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "like" => Op::Like,
            "ilike" => Op::Ilike,
            "is" => Op::Is,
            "in" => Op::In,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsValue {
    Null,
    NotNull,
    True,
    False,
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Value(String),
    List(Vec<String>),
    Is(IsValue),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub column: String,
    pub negated: bool,
    pub op: Op,
    pub operand: Operand,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Filter(Filter),
    Or { negated: bool, conditions: Vec<Condition> },
    And { negated: bool, conditions: Vec<Condition> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nulls {
    First,
    Last,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub column: String,
    pub descending: bool,
    pub nulls: Option<Nulls>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// `None` means `*`.
    pub select: Option<Vec<SelectItem>>,
    pub conditions: Vec<Condition>,
    pub order: Vec<Order>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    pub on_conflict: Option<Vec<String>>,
    pub columns: Option<Vec<String>>,
    /// Parameters that are not reserved and not filters: a `GET /rpc` call's arguments.
    pub other: Vec<(String, String)>,
}

impl Query {
    /// Parses a raw (still percent-encoded) query string. With `args` given (a function's
    /// argument names), parameters of those names are kept apart instead of read as filters.
    pub fn parse(raw: &str, args: &[&str]) -> Result<Query> {
        if raw.len() > MAX_QUERY_BYTES {
            return Err(Error::bad_query(
                "\"failed to parse query string\"",
                format!("the query string is {} bytes long; at most {MAX_QUERY_BYTES} are accepted", raw.len()),
            ));
        }
        let mut q = Query::default();
        for (key, value) in form_pairs(raw) {
            match key.as_str() {
                "select" => {
                    check_nesting(&key, &value)?;
                    q.select = Some(parse_select(&value)?)
                }
                "order" => q.order = parse_order(&value)?,
                "limit" => q.limit = Some(parse_count("limit", &value)?),
                "offset" => q.offset = Some(parse_count("offset", &value)?),
                "on_conflict" => q.on_conflict = Some(parse_names(&value, "on_conflict")?),
                "columns" => q.columns = Some(parse_names(&value, "columns")?),
                "apikey" => {}
                "or" | "and" | "not.or" | "not.and" => {
                    check_nesting(&key, &value)?;
                    let negated = key.starts_with("not.");
                    let conditions = parse_logic_list(&value)?;
                    q.conditions.push(if key.ends_with("or") {
                        Condition::Or { negated, conditions }
                    } else {
                        Condition::And { negated, conditions }
                    });
                }
                _ if args.contains(&key.as_str()) => q.other.push((key, value)),
                _ => {
                    check_nesting(&key, &value)?;
                    if key.contains('.') || key.is_empty() {
                        return Err(Error::bad_query(
                            format!("\"failed to parse filter ({key})\""),
                            "filters on embedded resources and JSON paths are not supported",
                        ));
                    }
                    q.conditions.push(Condition::Filter(parse_filter(key, &value)?));
                }
            }
        }
        let conditions: usize = q.conditions.iter().map(Condition::size).sum();
        if conditions > MAX_CONDITIONS {
            return Err(Error::bad_query(
                "\"failed to parse logic tree\"",
                format!("{conditions} conditions; at most {MAX_CONDITIONS} are accepted"),
            ));
        }
        Ok(q)
    }
}

impl Condition {
    /// Nodes in this condition's tree.
    fn size(&self) -> usize {
        match self {
            Condition::Filter(_) => 1,
            Condition::Or { conditions, .. } | Condition::And { conditions, .. } => {
                1 + conditions.iter().map(Condition::size).sum::<usize>()
            }
        }
    }
}

/// The deepest parenthesis nesting of `s` outside double quotes (a linear scan).
fn nesting(s: &str) -> usize {
    let (mut depth, mut deepest, mut quoted, mut escaped) = (0usize, 0usize, false, false);
    for c in s.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '(' if !quoted => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' if !quoted => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Refuses a parameter nested deeper than [`MAX_NESTING`] before anything recurses into it.
fn check_nesting(key: &str, value: &str) -> Result<()> {
    let depth = nesting(value);
    if depth > MAX_NESTING {
        return Err(Error::bad_query(
            format!("\"failed to parse {key} parameter\""),
            format!("nested {depth} levels deep; at most {MAX_NESTING} are accepted"),
        ));
    }
    Ok(())
}

/// `application/x-www-form-urlencoded` pairs, in order, duplicates kept.
pub fn form_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus).decode_utf8_lossy().into_owned()
}

fn parse_count(name: &str, value: &str) -> Result<u64> {
    value.trim().parse().map_err(|_| {
        Error::bad_query(format!("\"failed to parse {name} parameter ({value})\""), "expected a non-negative integer")
    })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_')
}

fn parse_names(value: &str, what: &str) -> Result<Vec<String>> {
    value
        .split(',')
        .map(|n| n.trim().trim_matches('"').to_owned())
        .map(|n| {
            if valid_name(&n) {
                Ok(n)
            } else {
                Err(Error::bad_query(
                    format!("\"failed to parse {what} parameter ({value})\""),
                    format!("invalid column name {n:?}"),
                ))
            }
        })
        .collect()
}

/// Splits at commas outside parentheses and double quotes.
fn split_top(s: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut quoted = false;
    let mut escaped = false;
    let mut current = String::new();
    for c in s.chars() {
        if escaped {
            current.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                escaped = true;
                current.push(c);
            }
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            '(' if !quoted => {
                depth += 1;
                current.push(c);
            }
            ')' if !quoted => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
                current.push(c);
            }
            ',' if !quoted && depth == 0 => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if depth != 0 || quoted {
        return None;
    }
    parts.push(current);
    Some(parts)
}

fn unquote(s: &str) -> String {
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        let inner = &s[1..s.len() - 1];
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else {
                out.push(c);
            }
        }
        out
    } else {
        s.to_owned()
    }
}

fn parse_select(value: &str) -> Result<Vec<SelectItem>> {
    let err = |details: &str| Error::bad_query(format!("\"failed to parse select parameter ({value})\""), details.to_owned());
    // Whitespace outside quotes carries no meaning (postgrest-js strips it too).
    let compact: String = {
        let mut quoted = false;
        value
            .chars()
            .filter(|&c| {
                if c == '"' {
                    quoted = !quoted;
                }
                quoted || !c.is_whitespace()
            })
            .collect()
    };
    parse_select_items(&compact).map_err(|d| err(&d))
}

fn parse_select_items(s: &str) -> std::result::Result<Vec<SelectItem>, String> {
    let parts = split_top(s).ok_or("unbalanced parentheses or quotes")?;
    let mut items = Vec::new();
    for part in parts {
        if part.is_empty() {
            return Err("empty select item".into());
        }
        if part == "*" {
            items.push(SelectItem::Star);
            continue;
        }
        if part.contains("::") || part.contains("->") {
            return Err(format!("casts and JSON paths are not supported: {part}"));
        }
        let (head, sub) = match part.find('(') {
            Some(i) => {
                if !part.ends_with(')') {
                    return Err(format!("unexpected text after ')' in {part}"));
                }
                (&part[..i], Some(&part[i + 1..part.len() - 1]))
            }
            None => (part.as_str(), None),
        };
        let (alias, rest) = match head.split_once(':') {
            Some((a, r)) => (Some(unquote(a)), r),
            None => (None, head),
        };
        let mut pieces = rest.split('!');
        let name = unquote(pieces.next().unwrap_or_default());
        if !valid_name(&name) || alias.as_deref().is_some_and(|a| !valid_name(a)) {
            return Err(format!("invalid name in {part}"));
        }
        match sub {
            None => {
                if pieces.next().is_some() {
                    return Err(format!("'!' needs an embedded resource: {part}"));
                }
                items.push(SelectItem::Column { name, alias });
            }
            Some(sub) => {
                let mut hint = None;
                let mut inner = false;
                for p in pieces {
                    match p {
                        "inner" => inner = true,
                        "left" => {}
                        h if valid_name(h) && hint.is_none() => hint = Some(h.to_owned()),
                        _ => return Err(format!("invalid embed hint in {part}")),
                    }
                }
                let select = if sub.is_empty() { vec![SelectItem::Star] } else { parse_select_items(sub)? };
                items.push(SelectItem::Embed(Embed { alias, target: name, hint, inner, select }));
            }
        }
    }
    Ok(items)
}

fn parse_order(value: &str) -> Result<Vec<Order>> {
    let err = || {
        Error::bad_query(format!("\"failed to parse order ({value})\""), "expected column[.asc|.desc][.nullsfirst|.nullslast]")
    };
    value
        .split(',')
        .map(|term| {
            let mut parts = term.trim().split('.');
            let column = parts.next().unwrap_or_default().to_owned();
            if !valid_name(&column) {
                return Err(err());
            }
            let mut order = Order { column, descending: false, nulls: None };
            for p in parts {
                match p {
                    "asc" => order.descending = false,
                    "desc" => order.descending = true,
                    "nullsfirst" => order.nulls = Some(Nulls::First),
                    "nullslast" => order.nulls = Some(Nulls::Last),
                    _ => return Err(err()),
                }
            }
            Ok(order)
        })
        .collect()
}

/// `op.value` or `not.op.value` for `column`.
fn parse_filter(column: String, value: &str) -> Result<Filter> {
    let err = |d: &str| Error::bad_query(format!("\"failed to parse filter ({value})\""), d.to_owned());
    if !valid_name(&column) {
        return Err(err("invalid column name"));
    }
    let (negated, rest) = match value.strip_prefix("not.") {
        Some(r) => (true, r),
        None => (false, value),
    };
    let (op, operand) = rest.split_once('.').ok_or_else(|| err("expected operator.value"))?;
    let op = Op::parse(op).ok_or_else(|| err(&format!("unknown operator {op:?}")))?;
    let operand = match op {
        Op::In => {
            let inner = operand
                .strip_prefix('(')
                .and_then(|o| o.strip_suffix(')'))
                .ok_or_else(|| err("expected a list in parentheses: in.(a,b)"))?;
            let items = split_top(inner).ok_or_else(|| err("unbalanced quotes"))?;
            Operand::List(if inner.is_empty() { Vec::new() } else { items.iter().map(|i| unquote(i.trim())).collect() })
        }
        Op::Is => Operand::Is(match operand.to_ascii_lowercase().as_str() {
            "null" => IsValue::Null,
            "not_null" => IsValue::NotNull,
            "true" => IsValue::True,
            "false" => IsValue::False,
            "unknown" => IsValue::Unknown,
            _ => return Err(err("is takes null, not_null, true, false or unknown")),
        }),
        _ => Operand::Value(operand.to_owned()),
    };
    Ok(Filter { column, negated, op, operand })
}

/// `(cond,cond,…)` of an `or=`/`and=` parameter.
fn parse_logic_list(value: &str) -> Result<Vec<Condition>> {
    let err = |d: &str| Error::bad_query(format!("\"failed to parse logic tree ({value})\""), d.to_owned());
    let inner =
        value.strip_prefix('(').and_then(|v| v.strip_suffix(')')).ok_or_else(|| err("expected (condition,condition,…)"))?;
    let parts = split_top(inner).ok_or_else(|| err("unbalanced parentheses or quotes"))?;
    parts
        .into_iter()
        .map(|part| {
            let (negated, body) = match part.strip_prefix("not.") {
                Some(b) if b.starts_with("and(") || b.starts_with("or(") => (true, b.to_owned()),
                _ => (false, part.clone()),
            };
            if let Some(rest) = body.strip_prefix("and") {
                if rest.starts_with('(') {
                    return Ok(Condition::And { negated, conditions: parse_logic_list(rest)? });
                }
            }
            if let Some(rest) = body.strip_prefix("or") {
                if rest.starts_with('(') {
                    return Ok(Condition::Or { negated, conditions: parse_logic_list(rest)? });
                }
            }
            let (column, filter) =
                part.split_once('.').ok_or_else(|| err(&format!("expected column.operator.value in {part:?}")))?;
            let mut f = parse_filter(column.to_owned(), filter)?;
            if let Operand::Value(v) = &f.operand {
                f.operand = Operand::Value(unquote(v));
            }
            Ok(Condition::Filter(f))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_select_with_embed() {
        let q = Query::parse("select=*%2Csender%3Asender_id(full_name%2Cavatar_url)&conversation_id=eq.abc&deleted_at=is.null&order=created_at.asc", &[]).unwrap();
        let select = q.select.unwrap();
        assert_eq!(select[0], SelectItem::Star);
        let SelectItem::Embed(e) = &select[1] else { panic!("embed expected") };
        assert_eq!(e.alias.as_deref(), Some("sender"));
        assert_eq!(e.target, "sender_id");
        assert_eq!(e.select.len(), 2);
        assert_eq!(q.conditions.len(), 2);
        assert_eq!(q.order, vec![Order { column: "created_at".into(), descending: false, nulls: None }]);
    }

    #[test]
    fn logic_trees_and_lists() {
        let q = Query::parse("or=(a.eq.1,and(b.gt.2,c.in.(\"x,y\",z)),not.or(d.is.null))&e=not.in.(1,2)", &[]).unwrap();
        let Condition::Or { conditions, .. } = &q.conditions[0] else { panic!() };
        assert_eq!(conditions.len(), 3);
        let Condition::And { conditions: inner, .. } = &conditions[1] else { panic!() };
        let Condition::Filter(f) = &inner[1] else { panic!() };
        assert_eq!(f.operand, Operand::List(vec!["x,y".into(), "z".into()]));
        let Condition::Or { negated: true, .. } = &conditions[2] else { panic!("negated or") };
        let Condition::Filter(e) = &q.conditions[1] else { panic!() };
        assert!(e.negated);
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep_or = format!("or={}a.eq.1{}", "(or(".repeat(5000), "))".repeat(5000));
        let deep_select = format!("select={}id{}", "a(".repeat(8000), ")".repeat(8000));
        let long = format!("id=in.({})", "1,".repeat(MAX_QUERY_BYTES));
        let wide = format!("or=({})", vec!["a.eq.1"; MAX_CONDITIONS + 1].join(","));
        for bad in [deep_or, deep_select, long, wide] {
            match Query::parse(&bad, &[]) {
                Err(Error::Rest { body, .. }) => assert_eq!(body.code, "PGRST100"),
                other => panic!("{}: {other:?}", &bad[..40]),
            }
        }
        let ok = format!("or=({}a.eq.1{})", "or(".repeat(7), ")".repeat(7));
        assert!(Query::parse(&ok, &[]).is_ok());
    }

    #[test]
    fn malformed_input_is_pgrst100() {
        for bad in [
            "id=eq",
            "id=foo.1",
            "or=(a.eq.1",
            "or=a.eq.1",
            "select=*,sender:sender_id(full_name",
            "order=created_at.sideways",
            "order=created_at;drop table x",
            "limit=-1",
            "select=id::text",
            "select=id;select 1",
            "on_conflict=id;drop",
            "is_x=is.maybe",
        ] {
            match Query::parse(bad, &[]) {
                Err(Error::Rest { body, .. }) => assert_eq!(body.code, "PGRST100", "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
