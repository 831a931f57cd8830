//! `/rest/v1`: the PostgREST subset supabase-js uses, over the introspected `public` schema.
//!
//! A request is parsed ([`query`]), checked against the [`schema`] and turned into one SQL
//! statement with bind parameters ([`sql`]), and run in one transaction as the caller
//! ([`crate::db::begin_as`]). Errors carry PostgREST's codes and statuses.

pub mod query;
pub mod schema;
pub mod sql;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use serde_json::Value;
use sqlx::postgres::PgArguments;
use sqlx::query::Query as SqlxQuery;
use sqlx::{Postgres, Row};

use crate::caller::{self, Caller, CallerError};
use crate::db;
use crate::error::{Error, Result};
use crate::jwt::{self, JwtError};
use crate::AppState;
use query::Query;
pub use schema::Schema;
use schema::{quote_ident, Function, Relation, Returns};
use sql::{Bind, Builder};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rpc/{function}", any(rpc))
        .route("/{table}", any(table))
        .route("/", any(|| async { Error::rest(StatusCode::NOT_FOUND, "PGRST205", "Open the API at a table: /rest/v1/<table>") }))
}

/// The caller, or PostgREST's 401.
fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller> {
    caller::authenticate(&state.keys, headers, None, jwt::now()).map_err(|e| {
        let (code, message) = match &e {
            CallerError::MissingKey => ("PGRST301", "No API key found in request".to_owned()),
            CallerError::InvalidKey(JwtError::Expired { .. }) => ("PGRST303", "JWT expired".to_owned()),
            CallerError::InvalidKey(_) => ("PGRST301", "Invalid API key".to_owned()),
            CallerError::InvalidToken(JwtError::Expired { .. }) => ("PGRST303", "JWT expired".to_owned()),
            CallerError::InvalidToken(JwtError::Audience) => ("PGRST303", "JWT not in audience".to_owned()),
            CallerError::InvalidToken(j) => ("PGRST301", j.to_string()),
        };
        Error::rest(StatusCode::UNAUTHORIZED, code, message)
    })
}

/// What the `Prefer` header asks for.
#[derive(Debug, Default)]
struct Prefer {
    representation: bool,
    count_exact: bool,
    resolution: Option<Resolution>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Resolution {
    Merge,
    Ignore,
}

impl Prefer {
    fn from_headers(headers: &HeaderMap) -> Prefer {
        let mut p = Prefer::default();
        for value in headers.get_all("prefer").iter().filter_map(|v| v.to_str().ok()) {
            for item in value.split(',').map(str::trim) {
                match item {
                    "return=representation" => p.representation = true,
                    "return=minimal" | "return=headers-only" => p.representation = false,
                    "count=exact" | "count=planned" | "count=estimated" => p.count_exact = true,
                    "resolution=merge-duplicates" => p.resolution = Some(Resolution::Merge),
                    "resolution=ignore-duplicates" => p.resolution = Some(Resolution::Ignore),
                    _ => {}
                }
            }
        }
        p
    }
}

fn wants_single(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains(werkfunk_protocol::rest::SINGLE_OBJECT))
}

/// `Range: 0-19` → (offset, limit).
fn range_header(headers: &HeaderMap) -> Result<Option<(u64, Option<u64>)>> {
    let Some(raw) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else { return Ok(None) };
    let spec = raw.trim().trim_start_matches("items=");
    let bad = || Error::rest(StatusCode::RANGE_NOT_SATISFIABLE, "PGRST103", "Requested range not satisfiable");
    let (from, to) = spec.split_once('-').ok_or_else(bad)?;
    let from: u64 = from.trim().parse().map_err(|_| bad())?;
    let to = to.trim();
    if to.is_empty() {
        return Ok(Some((from, None)));
    }
    let to: u64 = to.parse().map_err(|_| bad())?;
    if to < from {
        return Err(bad());
    }
    Ok(Some((from, Some(to - from + 1))))
}

fn table_not_found(name: &str) -> Error {
    Error::rest(StatusCode::NOT_FOUND, "PGRST205", format!("Could not find the table 'public.{name}' in the schema cache"))
}

fn bind_all<'q>(mut q: SqlxQuery<'q, Postgres, PgArguments>, binds: &'q [Bind]) -> SqlxQuery<'q, Postgres, PgArguments> {
    for b in binds {
        q = match b {
            Bind::Text(t) => q.bind(t.as_deref()),
            Bind::TextArray(a) => q.bind(a),
        };
    }
    q
}

/// The rows a statement produced, as JSON text.
struct Rows {
    /// A JSON array.
    array: String,
    /// The first row, for single-object responses.
    first: Option<String>,
    count: i64,
    total: Option<i64>,
}

/// Wraps `inner` (a select producing the response rows) so that Postgres returns the JSON.
fn aggregate(inner: &str, total: Option<&str>) -> String {
    format!(
        "select coalesce(json_agg(_r), '[]'::json)::text, (json_agg(_r) -> 0)::text, count(*), {} from ({inner}) _r",
        total.unwrap_or("null::bigint")
    )
}

/// How the rows of a statement become the response.
struct Shape {
    single: bool,
    status: StatusCode,
    offset: u64,
    head: bool,
    /// Run in a read-only transaction (`GET /rpc/…`).
    read_only: bool,
}

/// The caller's transaction, read-only if asked.
async fn begin(state: &AppState, caller: &Caller, read_only: bool) -> Result<sqlx::Transaction<'static, Postgres>> {
    let tx = if read_only { db::begin_read_only_as(&state.pool, caller).await } else { db::begin_as(&state.pool, caller).await };
    tx.map_err(|e| match e {
        db::BeginError::Db(e) => Error::from_db(e, caller.role),
        ended @ db::BeginError::SessionEnded => Error::rest(StatusCode::UNAUTHORIZED, "PGRST301", ended.to_string()),
    })
}

/// Runs `sql` as the caller and shapes its rows; the transaction commits only if the
/// response can be given (a refused single-object response rolls a write back).
async fn run(state: &AppState, caller: &Caller, sql: &str, binds: &[Bind], shape: Shape) -> Result<Response> {
    let mut tx = begin(state, caller, shape.read_only).await?;
    let row = bind_all(sqlx::query(sql), binds).fetch_one(&mut *tx).await.map_err(|e| Error::from_db(e, caller.role))?;
    let rows = Rows { array: row.get(0), first: row.get(1), count: row.get(2), total: row.get(3) };
    let response = respond(rows, shape)?;
    tx.commit().await.map_err(|e| Error::from_db(e, caller.role))?;
    Ok(response)
}

/// Runs a write whose rows are not wanted back; returns how many rows it touched.
async fn execute(state: &AppState, caller: &Caller, sql: &str, binds: &[Bind], single: bool, read_only: bool) -> Result<u64> {
    let mut tx = begin(state, caller, read_only).await?;
    let done = bind_all(sqlx::query(sql), binds).execute(&mut *tx).await.map_err(|e| Error::from_db(e, caller.role))?;
    if single && done.rows_affected() != 1 {
        return Err(not_single(done.rows_affected() as i64));
    }
    tx.commit().await.map_err(|e| Error::from_db(e, caller.role))?;
    Ok(done.rows_affected())
}

fn not_single(count: i64) -> Error {
    Error::rest(StatusCode::NOT_ACCEPTABLE, "PGRST116", "Cannot coerce the result to a single JSON object")
        .with_details(format!("The result contains {count} rows"))
}

fn json_response(status: StatusCode, body: String, content_range: Option<String>) -> Response {
    let mut r = Response::builder().status(status).header(header::CONTENT_TYPE, "application/json; charset=utf-8");
    if let Some(range) = content_range {
        r = r.header("content-range", range);
    }
    r.body(Body::from(body)).expect("valid response")
}

fn content_range(offset: u64, count: i64, total: Option<i64>) -> String {
    let total = total.map(|t| t.to_string()).unwrap_or_else(|| "*".into());
    if count == 0 {
        format!("*/{total}")
    } else {
        format!("{offset}-{}/{total}", offset + count as u64 - 1)
    }
}

/// Shapes the rows as the client asked: an array, or one object (406 otherwise).
fn respond(rows: Rows, shape: Shape) -> Result<Response> {
    let range = content_range(shape.offset, rows.count, rows.total);
    let status = match rows.total {
        Some(t) if shape.status == StatusCode::OK && (shape.offset > 0 || (shape.offset as i64 + rows.count) < t) => {
            StatusCode::PARTIAL_CONTENT
        }
        _ => shape.status,
    };
    let body = if shape.single {
        if rows.count != 1 {
            return Err(not_single(rows.count));
        }
        rows.first.unwrap_or_default()
    } else {
        rows.array
    };
    Ok(json_response(status, if shape.head { String::new() } else { body }, Some(range)))
}

/// Parses a JSON body, answering PostgREST's `PGRST102` when it is not JSON. An empty body
/// means "no arguments" to a function (`empty_is_object`), but is no row to write.
fn parse_body(body: &Bytes, empty_is_object: bool) -> Result<Value> {
    if body.is_empty() && empty_is_object {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(body)
        .map_err(|e| Error::rest(StatusCode::BAD_REQUEST, "PGRST102", "Empty or invalid json").with_details(e.to_string()))
}

/// Only `public` is exposed: a client configured for another schema (`Accept-Profile` on
/// reads, `Content-Profile` on writes) is told so instead of silently getting `public`.
fn check_profile(headers: &HeaderMap) -> Result<()> {
    for name in ["accept-profile", "content-profile"] {
        if let Some(value) = headers.get(name) {
            if value.to_str().ok().map(str::trim) != Some("public") {
                return Err(Error::rest(
                    StatusCode::NOT_ACCEPTABLE,
                    "PGRST106",
                    "The schema must be one of the following: public",
                ));
            }
        }
    }
    Ok(())
}

fn unknown_body_column(relation: &str, column: &str) -> Error {
    Error::rest(
        StatusCode::BAD_REQUEST,
        "PGRST204",
        format!("Could not find the '{column}' column of '{relation}' in the schema cache"),
    )
}

/// The columns a write names: `columns=` if given, else the keys of the (first) object.
fn write_columns(relation: &Relation, q: &Query, rows: &[Value]) -> Result<Vec<String>> {
    let columns: Vec<String> = match &q.columns {
        Some(c) => c.clone(),
        None => {
            let first: Vec<String> =
                rows.first().and_then(Value::as_object).map(|o| o.keys().cloned().collect()).unwrap_or_default();
            for row in rows.iter().skip(1) {
                let keys: Vec<String> = row.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
                if keys.len() != first.len() || !keys.iter().all(|k| first.contains(k)) {
                    return Err(Error::rest(StatusCode::BAD_REQUEST, "PGRST102", "All object keys must match"));
                }
            }
            first
        }
    };
    for c in &columns {
        relation.column(c).ok_or_else(|| unknown_body_column(&relation.name, c))?;
    }
    Ok(columns)
}

async fn table(
    State(state): State<AppState>,
    method: Method,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let caller = authenticate(&state, &headers)?;
    check_profile(&headers)?;
    let q = Query::parse(raw.as_deref().unwrap_or(""), &[])?;
    let relation = state.schema.relations.get(&name).ok_or_else(|| table_not_found(&name))?;
    let prefer = Prefer::from_headers(&headers);
    let single = wants_single(&headers);
    match method {
        Method::GET | Method::HEAD => {
            read(&state, &caller, relation, &q, &headers, &prefer, single, method == Method::HEAD).await
        }
        Method::POST => insert(&state, &caller, relation, &q, &prefer, single, parse_body(&body, false)?).await,
        Method::PATCH => update(&state, &caller, relation, &q, &prefer, single, parse_body(&body, false)?).await,
        Method::DELETE => delete(&state, &caller, relation, &q, &prefer, single).await,
        _ => Err(Error::rest(StatusCode::METHOD_NOT_ALLOWED, "PGRST117", format!("Unsupported HTTP method: {method}"))),
    }
}

/// Rows of `source` (a table or a function call) aliased `_t0`: the select, its filters,
/// order and page, with an exact count when asked.
#[allow(clippy::too_many_arguments)]
fn select_sql(
    b: &mut Builder<'_>,
    relation: &Relation,
    source: &str,
    q: &Query,
    headers: &HeaderMap,
    prefer: &Prefer,
) -> Result<(String, u64)> {
    let alias = b.alias();
    let list = b.select_list(relation, q.select.as_deref(), &alias)?;
    let inner = b.inner_joins(relation, q.select.as_deref(), &alias)?;
    let filter = b.where_clause(relation, &q.conditions, &alias, inner)?;
    let order = b.order_clause(relation, &q.order, &alias)?;
    let (mut offset, mut limit) = (q.offset.unwrap_or(0), q.limit);
    if let Some((from, len)) = range_header(headers)? {
        offset = offset.max(from);
        limit = match (limit, len) {
            (Some(l), Some(r)) => Some(l.min(r)),
            (l, r) => l.or(r),
        };
    }
    let mut page = String::new();
    if let Some(l) = limit {
        page.push_str(&format!(" limit {}::bigint", b.bind(Bind::Text(Some(l.to_string())))));
    }
    if offset > 0 {
        page.push_str(&format!(" offset {}::bigint", b.bind(Bind::Text(Some(offset.to_string())))));
    }
    let total = prefer.count_exact.then(|| format!("(select count(*) from {source} as {alias}{filter})"));
    let inner = format!("select {list} from {source} as {alias}{filter}{order}{page}");
    Ok((aggregate(&inner, total.as_deref()), offset))
}

#[allow(clippy::too_many_arguments)]
async fn read(
    state: &AppState,
    caller: &Caller,
    relation: &Relation,
    q: &Query,
    headers: &HeaderMap,
    prefer: &Prefer,
    single: bool,
    head: bool,
) -> Result<Response> {
    let mut b = Builder::new(&state.schema);
    let source = format!("public.{}", quote_ident(&relation.name));
    let (sql, offset) = select_sql(&mut b, relation, &source, q, headers, prefer)?;
    run(state, caller, &sql, &b.binds, Shape { single, status: StatusCode::OK, offset, head, read_only: false }).await
}

fn require_writable(relation: &Relation) -> Result<()> {
    if relation.writable {
        Ok(())
    } else {
        Err(Error::rest(
            StatusCode::METHOD_NOT_ALLOWED,
            "PGRST117",
            format!("'{}' cannot be written through the API", relation.name),
        ))
    }
}

/// `with _w as (<write> returning <target>.*) <rows of _w as requested>`
fn returning(b: &mut Builder<'_>, relation: &Relation, write: &str, target: &str, q: &Query) -> Result<String> {
    let alias = b.alias();
    let list = b.select_list(relation, q.select.as_deref(), &alias)?;
    Ok(format!("with _w as ({write} returning {target}.*) {}", aggregate(&format!("select {list} from _w as {alias}"), None)))
}

async fn insert(
    state: &AppState,
    caller: &Caller,
    relation: &Relation,
    q: &Query,
    prefer: &Prefer,
    single: bool,
    body: Value,
) -> Result<Response> {
    require_writable(relation)?;
    let rows = match body {
        Value::Array(rows) => rows,
        obj @ Value::Object(_) => vec![obj],
        _ => return Err(Error::rest(StatusCode::BAD_REQUEST, "PGRST102", "Expected a JSON object or an array of objects")),
    };
    if rows.iter().any(|r| !r.is_object()) {
        return Err(Error::rest(StatusCode::BAD_REQUEST, "PGRST102", "Expected a JSON object or an array of objects"));
    }
    let columns = write_columns(relation, q, &rows)?;
    if rows.is_empty() {
        // An empty batch inserts nothing (`insert … default values` would insert one row).
        if single {
            return Err(not_single(0));
        }
        return Ok(if prefer.representation {
            json_response(StatusCode::CREATED, "[]".into(), Some("*/*".into()))
        } else {
            json_response(StatusCode::CREATED, String::new(), None)
        });
    }
    let mut b = Builder::new(&state.schema);
    let table = format!("public.{}", quote_ident(&relation.name));
    let payload = b.bind(Bind::Text(Some(Value::Array(rows).to_string())));
    let cols = columns.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
    let mut write = if columns.is_empty() {
        format!("insert into {table} default values")
    } else {
        format!("insert into {table} ({cols}) select {cols} from json_populate_recordset(null::{table}, {payload}::json)")
    };
    if let Some(resolution) = prefer.resolution {
        let target = q.on_conflict.clone().unwrap_or_else(|| relation.primary_key.clone());
        if target.is_empty() {
            return Err(Error::rest(StatusCode::BAD_REQUEST, "PGRST103", "on_conflict needs a unique key"));
        }
        for c in &target {
            relation.column(c).ok_or_else(|| sql::unknown_column(&relation.name, c))?;
        }
        let target = target.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
        let sets: Vec<String> = columns.iter().map(|c| format!("{0} = excluded.{0}", quote_ident(c))).collect();
        if resolution == Resolution::Ignore || sets.is_empty() {
            write.push_str(&format!(" on conflict ({target}) do nothing"));
        } else {
            write.push_str(&format!(" on conflict ({target}) do update set {}", sets.join(", ")));
        }
    }
    if prefer.representation {
        let sql = returning(&mut b, relation, &write, &table, q)?;
        run(
            state,
            caller,
            &sql,
            &b.binds,
            Shape { single, status: StatusCode::CREATED, offset: 0, head: false, read_only: false },
        )
        .await
    } else {
        execute(state, caller, &write, &b.binds, single, false).await?;
        Ok(json_response(StatusCode::CREATED, String::new(), None))
    }
}

async fn update(
    state: &AppState,
    caller: &Caller,
    relation: &Relation,
    q: &Query,
    prefer: &Prefer,
    single: bool,
    body: Value,
) -> Result<Response> {
    require_writable(relation)?;
    let Value::Object(_) = &body else {
        return Err(Error::rest(StatusCode::BAD_REQUEST, "PGRST102", "Expected a JSON object"));
    };
    let columns = write_columns(relation, q, std::slice::from_ref(&body))?;
    let mut b = Builder::new(&state.schema);
    let table = format!("public.{}", quote_ident(&relation.name));
    if columns.is_empty() {
        // Nothing to change: answer as if nothing matched, as PostgREST does.
        return Ok(if prefer.representation {
            json_response(StatusCode::OK, "[]".into(), Some("*/*".into()))
        } else {
            json_response(StatusCode::NO_CONTENT, String::new(), None)
        });
    }
    let payload = b.bind(Bind::Text(Some(body.to_string())));
    let alias = b.alias();
    let filter = b.where_clause(relation, &q.conditions, &alias, Vec::new())?;
    let sets: Vec<String> = columns.iter().map(|c| format!("{0} = _body.{0}", quote_ident(c))).collect();
    let write = format!(
        "update {table} as {alias} set {} from (select * from json_populate_record(null::{table}, {payload}::json)) _body{filter}",
        sets.join(", ")
    );
    if prefer.representation {
        let sql = returning(&mut b, relation, &write, &alias, q)?;
        run(state, caller, &sql, &b.binds, Shape { single, status: StatusCode::OK, offset: 0, head: false, read_only: false })
            .await
    } else {
        execute(state, caller, &write, &b.binds, single, false).await?;
        Ok(json_response(StatusCode::NO_CONTENT, String::new(), None))
    }
}

async fn delete(
    state: &AppState,
    caller: &Caller,
    relation: &Relation,
    q: &Query,
    prefer: &Prefer,
    single: bool,
) -> Result<Response> {
    require_writable(relation)?;
    let mut b = Builder::new(&state.schema);
    let table = format!("public.{}", quote_ident(&relation.name));
    let alias = b.alias();
    let filter = b.where_clause(relation, &q.conditions, &alias, Vec::new())?;
    let write = format!("delete from {table} as {alias}{filter}");
    if prefer.representation {
        let sql = returning(&mut b, relation, &write, &alias, q)?;
        run(state, caller, &sql, &b.binds, Shape { single, status: StatusCode::OK, offset: 0, head: false, read_only: false })
            .await
    } else {
        execute(state, caller, &write, &b.binds, single, false).await?;
        Ok(json_response(StatusCode::NO_CONTENT, String::new(), None))
    }
}

/// The overload of `name` whose arguments are exactly those given (defaults may be left out).
fn find_function<'s>(schema: &'s Schema, name: &str, given: &[&str]) -> Result<&'s Function> {
    schema
        .functions
        .get(name)
        .into_iter()
        .flatten()
        .find(|f| {
            given.iter().all(|g| f.arguments.iter().any(|a| a.name == *g))
                && f.arguments.iter().all(|a| a.has_default || given.contains(&a.name.as_str()))
        })
        .ok_or_else(|| {
            Error::rest(
                StatusCode::NOT_FOUND,
                "PGRST202",
                format!("Could not find the function public.{name}({}) in the schema cache", given.join(", ")),
            )
        })
}

async fn rpc(
    State(state): State<AppState>,
    method: Method,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let caller = authenticate(&state, &headers)?;
    check_profile(&headers)?;
    let raw = raw.unwrap_or_default();
    let candidates: Vec<&str> = state
        .schema
        .functions
        .get(&name)
        .into_iter()
        .flatten()
        .flat_map(|f| f.arguments.iter().map(|a| a.name.as_str()))
        .collect();
    let q = Query::parse(&raw, &candidates)?;
    let args: Vec<(String, Option<String>)> = match method {
        Method::GET | Method::HEAD => q.other.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect(),
        Method::POST => match parse_body(&body, true)? {
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), sql::json_to_pg_text(v))).collect(),
            _ => return Err(Error::rest(StatusCode::BAD_REQUEST, "PGRST102", "Expected a JSON object of named arguments")),
        },
        _ => return Err(Error::rest(StatusCode::METHOD_NOT_ALLOWED, "PGRST117", format!("Unsupported HTTP method: {method}"))),
    };
    let given: Vec<&str> = args.iter().map(|(k, _)| k.as_str()).collect();
    let function = find_function(&state.schema, &name, &given)?;
    let mut b = Builder::new(&state.schema);
    let call_args = args
        .iter()
        .map(|(k, v)| {
            let ty = &function.arguments.iter().find(|a| a.name == *k).expect("matched argument").sql_type;
            format!("{} => {}::{ty}", quote_ident(k), b.bind(Bind::Text(v.clone())))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let call = format!("public.{}({call_args})", quote_ident(&function.name));
    let prefer = Prefer::from_headers(&headers);
    let single = wants_single(&headers);
    let head = method == Method::HEAD;
    // PostgREST runs `GET`/`HEAD` calls read-only: a volatile function cannot write through them.
    let read_only = matches!(method, Method::GET | Method::HEAD);
    match &function.returns {
        Returns::Void => {
            execute(&state, &caller, &format!("select {call}"), &b.binds, false, read_only).await?;
            Ok(json_response(StatusCode::NO_CONTENT, String::new(), None))
        }
        Returns::Scalar => {
            let sql = format!("select to_json({call})::text, null::text, 1::bigint, null::bigint");
            run(&state, &caller, &sql, &b.binds, Shape { single: false, status: StatusCode::OK, offset: 0, head, read_only })
                .await
        }
        Returns::Rows { columns, set } => {
            let relation =
                Relation { name: function.name.clone(), columns: columns.clone(), primary_key: Vec::new(), writable: false };
            // With an exact count the rows are read twice (page and total): the function is
            // called once, into a materialized CTE, not once per read.
            let (source, with) = if prefer.count_exact {
                ("_src".to_owned(), format!("with _src as materialized (select * from {call}) "))
            } else {
                (call.clone(), String::new())
            };
            let (sql, offset) = select_sql(&mut b, &relation, &source, &q, &headers, &prefer)?;
            let sql = format!("{with}{sql}");
            let shape = Shape { single: single || !set, status: StatusCode::OK, offset, head, read_only };
            run(&state, &caller, &sql, &b.binds, shape).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn content_ranges() {
        assert_eq!(content_range(0, 0, None), "*/*");
        assert_eq!(content_range(0, 3, None), "0-2/*");
        assert_eq!(content_range(10, 5, Some(100)), "10-14/100");
    }

    #[test]
    fn prefer_header() {
        let mut h = HeaderMap::new();
        h.insert("prefer", HeaderValue::from_static("return=representation, count=exact"));
        h.append("prefer", HeaderValue::from_static("resolution=ignore-duplicates"));
        let p = Prefer::from_headers(&h);
        assert!(p.representation && p.count_exact);
        assert_eq!(p.resolution, Some(Resolution::Ignore));
    }
}
