//! PostgREST (`/rest/v1`) through the real server, over the seed's schema, with the seed's
//! row-level security deciding.
//!
//! Two halves:
//! - bad input (the "Must show" list): malformed filters, `order`/`select`/
//!   `on_conflict` naming unknown columns or carrying SQL, invalid JSON, oversized bodies,
//!   missing/forged/expired keys and tokens, a `postgres` role claim, refused message
//!   content, unknown tables/columns/functions, single-object responses without exactly one
//!   row. Each is asserted on its status, its PostgREST `code`, and a snapshot of every
//!   application table taken before and after: a refused request writes nothing.
//! - the features supabase-js uses: filters, `or`/`and`, order with nulls placement,
//!   limit/offset/`Range`, counts with HEAD, `select` with aliases and embedding, the
//!   `Prefer` variants, bulk insert with `columns`, upserts, PATCH/DELETE, RLS through REST,
//!   `/rpc`, and the BRIEF's `ON CONFLICT DO NOTHING` trap.

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;
use werkfunk_server::jwt::{self, DbRole, Keys};
use werkfunk_testkit::{TestServer, TestUser, JWT_SECRET};

/// `Accept` for single-object responses (`.single()` in supabase-js).
const SINGLE: &str = "application/vnd.pgrst.object+json";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A project conversation between a tradesperson and a customer, and an outsider.
struct World {
    server: TestServer,
    meister: TestUser,
    kundin: TestUser,
    fremd: TestUser,
    conv: Uuid,
}

async fn world() -> World {
    let server = TestServer::start().await;
    let meister = server.signup("Meister Müller", "tradesperson").await;
    let kundin = server.signup("Kundin Schmidt", "customer").await;
    let fremd = server.signup("Fremder Fritz", "customer").await;
    let conv = server.conversation("project", Some("Bad sanieren"), &meister, &[&kundin]).await;
    World { server, meister, kundin, fremd, conv }
}

/// A request to `/rest/v1{path}` with the anon key and `user`'s token (or the anon key).
fn rest(server: &TestServer, method: Method, path: &str, user: Option<&TestUser>) -> RequestBuilder {
    server.request(method, &format!("/rest/v1{path}"), user)
}

/// A request made with the service key as both API key and bearer.
fn service(server: &TestServer, method: Method, path: &str) -> RequestBuilder {
    server
        .http
        .request(method, format!("{}/rest/v1{path}", server.url))
        .header("apikey", &server.service_key)
        .bearer_auth(&server.service_key)
}

/// Sends a text message as `user` (as the seed's `sendMessage`: insert, `.select().single()`).
async fn send(server: &TestServer, user: &TestUser, conv: Uuid, content: &str) -> Value {
    let resp = rest(server, Method::POST, "/messages?select=*", Some(user))
        .header("prefer", "return=representation")
        .header("accept", SINGLE)
        .json(&json!({"conversation_id": conv, "sender_id": user.id, "content": content, "type": "text"}))
        .send()
        .await
        .expect("send message");
    ok(resp, StatusCode::CREATED).await
}

/// Asserts `status` and returns the JSON body.
async fn ok(resp: Response, status: StatusCode) -> Value {
    let got = resp.status();
    let text = resp.text().await.expect("body");
    assert_eq!(got, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"))
}

/// Asserts `status` and an empty body.
async fn empty(resp: Response, status: StatusCode) {
    let got = resp.status();
    let text = resp.text().await.expect("body");
    assert_eq!(got, status, "unexpected status; body: {text}");
    assert_eq!(text, "", "expected an empty body");
}

/// Asserts a PostgREST error: status, `code`, and the `{code, message, details, hint}` shape.
async fn refused(resp: Response, status: StatusCode, code: &str) -> Value {
    let got = resp.status();
    let text = resp.text().await.expect("body");
    assert_eq!(got, status, "unexpected status for expected {code}; body: {text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("error body is not JSON ({e}): {text}"));
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    let keys: Vec<&str> = body.as_object().expect("object").keys().map(String::as_str).collect();
    for key in ["code", "message", "details", "hint"] {
        assert!(keys.contains(&key), "{key} missing in {body}");
    }
    body
}

/// Every row of every application table, read as superuser: compared before and after a
/// refused request to show it wrote nothing.
async fn snapshot(server: &TestServer) -> Value {
    let tables =
        ["profiles", "conversations", "conversation_members", "messages", "message_reads", "typing_indicators", "notifications"];
    let parts: Vec<String> =
        tables.iter().map(|t| format!("'{t}', (select coalesce(json_agg(t order by t.id), '[]') from public.{t} t)")).collect();
    sqlx::query_scalar(&format!("select json_build_object({})", parts.join(", ")))
        .fetch_one(server.db.pool())
        .await
        .expect("snapshot")
}

async fn count(server: &TestServer, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(server.db.pool()).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The values of `key` in a JSON array of objects.
fn column(rows: &Value, key: &str) -> Vec<Value> {
    rows.as_array().unwrap_or_else(|| panic!("array expected: {rows}")).iter().map(|r| r[key].clone()).collect()
}

fn strings(rows: &Value, key: &str) -> Vec<String> {
    column(rows, key).into_iter().map(|v| v.as_str().unwrap_or_else(|| panic!("{key} is not a string: {v}")).to_owned()).collect()
}

/// A header's value as text.
fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

// ---------------------------------------------------------------------------------------------
// Bad input: a clear error, nothing written
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_filters_are_refused_and_change_nothing() {
    let w = world().await;
    let msg = send(&w.server, &w.kundin, w.conv, "Bitte nicht löschen").await;
    let before = snapshot(&w.server).await;

    let malformed = [
        "id=eq",                         // no value
        "id=gleich.1",                   // unknown operator
        "id=not.eq",                     // negated, no value
        "or=(id.eq.1",                   // unbalanced
        "or=(content.eq.a,and(id.eq.b)", // unbalanced inside
        "or=id.eq.1",                    // not a list
        "or=(content)",                  // no operator
        "id=in.1,2",                     // list without parentheses
        "deleted_at=is.vielleicht",      // `is` takes null/true/false/…
        "content=eq.a&=eq.b",            // empty column name
        "content;drop table messages=eq.x",
    ];
    for query in malformed {
        let get = rest(&w.server, Method::GET, &format!("/messages?{query}"), Some(&w.kundin)).send().await.unwrap();
        refused(get, StatusCode::BAD_REQUEST, "PGRST100").await;
        // A malformed filter on a write must never widen it to every row.
        let patch = rest(&w.server, Method::PATCH, &format!("/messages?{query}"), Some(&w.kundin))
            .json(&json!({"content": "überschrieben"}))
            .send()
            .await
            .unwrap();
        refused(patch, StatusCode::BAD_REQUEST, "PGRST100").await;
        let delete =
            rest(&w.server, Method::DELETE, &format!("/typing_indicators?{query}"), Some(&w.kundin)).send().await.unwrap();
        refused(delete, StatusCode::BAD_REQUEST, "PGRST100").await;
    }

    // Well-formed, but the value is not of the column's type: Postgres' 22P02, a 400.
    let resp = rest(&w.server, Method::PATCH, "/messages?id=eq.keine-uuid", Some(&w.kundin))
        .json(&json!({"content": "überschrieben"}))
        .send()
        .await
        .unwrap();
    refused(resp, StatusCode::BAD_REQUEST, "22P02").await;
    // A filter on a column that does not exist: 42703.
    let resp = rest(&w.server, Method::PATCH, "/messages?farbe=eq.rot", Some(&w.kundin))
        .json(&json!({"content": "überschrieben"}))
        .send()
        .await
        .unwrap();
    refused(resp, StatusCode::BAD_REQUEST, "42703").await;

    assert_eq!(snapshot(&w.server).await, before);
    assert_eq!(
        count(
            &w.server,
            &format!(
                "select count(*) from public.messages where id = '{}' and content = 'Bitte nicht löschen'",
                msg["id"].as_str().unwrap()
            )
        )
        .await,
        1
    );
    w.server.stop().await;
}

#[tokio::test]
async fn order_select_and_on_conflict_accept_only_real_columns() {
    let w = world().await;
    send(&w.server, &w.kundin, w.conv, "Erste Nachricht").await;
    let before = snapshot(&w.server).await;
    let get = |q: &str| rest(&w.server, Method::GET, &format!("/messages?{q}"), Some(&w.kundin)).send();

    // SQL where a column should be: a parse error before anything reaches Postgres.
    for q in [
        "order=created_at;drop table messages",
        "order=created_at.desc;select 1",
        "order=created_at.seitwaerts",
        "order=(select 1)",
        "select=id,(select 1)",
        "select=id;drop table messages",
        "select=id::text",
        "select=content->>0",
        "select=id,",
        "select=*,sender:sender_id(full_name",
    ] {
        refused(get(q).await.unwrap(), StatusCode::BAD_REQUEST, "PGRST100").await;
    }
    // Well-formed names that are not columns.
    refused(get("order=gibt_es_nicht").await.unwrap(), StatusCode::BAD_REQUEST, "42703").await;
    refused(get("order=created_at.desc,gibt_es_nicht.asc").await.unwrap(), StatusCode::BAD_REQUEST, "42703").await;
    refused(get("select=id,gibt_es_nicht").await.unwrap(), StatusCode::BAD_REQUEST, "42703").await;
    refused(get("select=id,sender:sender_id(gibt_es_nicht)").await.unwrap(), StatusCode::BAD_REQUEST, "42703").await;
    // An embed that is no relationship, e.g. a function name.
    refused(get("select=id,pg_sleep(1)").await.unwrap(), StatusCode::BAD_REQUEST, "PGRST200").await;
    refused(get("select=id,users(email)").await.unwrap(), StatusCode::BAD_REQUEST, "PGRST200").await;

    // On a write, a bad `select` (of the returned rows) refuses the write itself.
    let body = json!({"conversation_id": w.conv, "content": "Darf nicht ankommen"});
    let resp = rest(&w.server, Method::POST, "/messages?select=id,gibt_es_nicht", Some(&w.kundin))
        .header("prefer", "return=representation")
        .json(&body)
        .send()
        .await
        .unwrap();
    refused(resp, StatusCode::BAD_REQUEST, "42703").await;

    // on_conflict: SQL, unknown columns, and columns without a unique constraint.
    let upsert = |q: &str| {
        rest(&w.server, Method::POST, &format!("/messages?{q}"), Some(&w.kundin))
            .header("prefer", "resolution=ignore-duplicates,return=representation")
            .json(&body)
            .send()
    };
    refused(upsert("on_conflict=id;drop table messages").await.unwrap(), StatusCode::BAD_REQUEST, "PGRST100").await;
    refused(upsert("on_conflict=id)").await.unwrap(), StatusCode::BAD_REQUEST, "PGRST100").await;
    refused(upsert("on_conflict=gibt_es_nicht").await.unwrap(), StatusCode::BAD_REQUEST, "42703").await;
    refused(upsert("on_conflict=content").await.unwrap(), StatusCode::BAD_REQUEST, "42P10").await;

    assert_eq!(snapshot(&w.server).await, before);
    w.server.stop().await;
}

#[tokio::test]
async fn invalid_json_is_pgrst102_and_changes_nothing() {
    let w = world().await;
    let before = snapshot(&w.server).await;
    for (method, path) in [
        (Method::POST, "/messages"),
        (Method::PATCH, &*format!("/messages?conversation_id=eq.{}", w.conv)),
        (Method::POST, "/rpc/create_conversation"),
    ] {
        for body in ["{\"content\": ", "nicht json", "{\"content\": \"a\"} trailing"] {
            let resp = rest(&w.server, method.clone(), path, Some(&w.kundin))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            refused(resp, StatusCode::BAD_REQUEST, "PGRST102").await;
        }
    }
    // No body at all is no row (for a function it means "no arguments").
    for method in [Method::POST, Method::PATCH] {
        let resp = rest(&w.server, method, &format!("/messages?conversation_id=eq.{}", w.conv), Some(&w.kundin))
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        refused(resp, StatusCode::BAD_REQUEST, "PGRST102").await;
    }
    // JSON, but not rows: scalars, arrays of scalars, and rows whose keys differ.
    for body in [json!(42), json!("text"), json!([1, 2]), json!([{"conversation_id": w.conv, "content": "a"}, {"content": "b"}])]
    {
        let resp = rest(&w.server, Method::POST, "/messages", Some(&w.kundin)).json(&body).send().await.unwrap();
        refused(resp, StatusCode::BAD_REQUEST, "PGRST102").await;
    }
    assert_eq!(snapshot(&w.server).await, before);
    w.server.stop().await;
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let w = world().await;
    let before = snapshot(&w.server).await;
    // The default limit is 1 MiB; this is just over it, and otherwise a valid request.
    let content = "x".repeat(1024 * 1024 + 1);
    let resp = rest(&w.server, Method::POST, "/messages", Some(&w.kundin))
        .json(&json!({"conversation_id": w.conv, "content": content, "type": "file"}))
        .send()
        .await
        .unwrap();
    refused(resp, StatusCode::PAYLOAD_TOO_LARGE, "PGRST413").await;
    let resp = rest(&w.server, Method::POST, "/rpc/search_profiles", Some(&w.kundin))
        .json(&json!({"p_query": content}))
        .send()
        .await
        .unwrap();
    refused(resp, StatusCode::PAYLOAD_TOO_LARGE, "PGRST413").await;
    assert_eq!(snapshot(&w.server).await, before);

    // Just under the limit passes the server and reaches the database's own check.
    let resp = rest(&w.server, Method::POST, "/messages", Some(&w.kundin))
        .json(&json!({"conversation_id": w.conv, "content": "x".repeat(1024 * 1024 - 200), "type": "file"}))
        .send()
        .await
        .unwrap();
    refused(resp, StatusCode::BAD_REQUEST, "23514").await;
    assert_eq!(snapshot(&w.server).await, before);
    w.server.stop().await;
}

#[tokio::test]
async fn missing_forged_and_expired_keys_and_tokens_are_401() {
    let w = world().await;
    let before = snapshot(&w.server).await;
    let now = jwt::now();
    let other = Keys::new("ein-anderes-geheimnis-0123456789-abcdef");
    let ours = Keys::new(JWT_SECRET);
    let user_claims =
        |role: &str, exp: i64| json!({"sub": w.kundin.id, "role": role, "aud": "authenticated", "iat": now - 100, "exp": exp});

    let forged_key = other.api_key(DbRole::Anon, now);
    let forged_service_key = other.api_key(DbRole::ServiceRole, now);
    let expired_key = ours.sign(&json!({"role": "anon", "iat": now - 100, "exp": now - 10}));
    let postgres_key = ours.sign(&json!({"role": "postgres", "iat": now, "exp": now + 3600}));
    let forged_token = other.sign(&user_claims("authenticated", now + 3600));
    let expired_token = ours.sign(&user_claims("authenticated", now - 10));
    let postgres_token = ours.sign(&user_claims("postgres", now + 3600));
    let supabase_admin_token = ours.sign(&user_claims("supabase_admin", now + 3600));
    let no_sub_token = ours.sign(&json!({"role": "authenticated", "iat": now, "exp": now + 3600}));
    let unsigned = format!("{}.", w.kundin.access_token.rsplit_once('.').unwrap().0);

    // (apikey, bearer, expected code)
    let cases: Vec<(Option<&str>, Option<&str>, &str)> = vec![
        (None, None, "PGRST301"),
        (None, Some(&w.kundin.access_token), "PGRST301"),
        (Some(&forged_key), None, "PGRST301"),
        (Some(&forged_key), Some(&w.kundin.access_token), "PGRST301"),
        (Some(&forged_service_key), Some(&forged_service_key), "PGRST301"),
        (Some(&expired_key), None, "PGRST303"),
        (Some(&postgres_key), None, "PGRST301"),
        (Some("kein-jwt"), None, "PGRST301"),
        (Some(&w.server.anon_key), Some(&forged_token), "PGRST301"),
        (Some(&w.server.anon_key), Some(&expired_token), "PGRST303"),
        (Some(&w.server.anon_key), Some(&postgres_token), "PGRST301"),
        (Some(&w.server.anon_key), Some(&supabase_admin_token), "PGRST301"),
        (Some(&w.server.anon_key), Some(&no_sub_token), "PGRST301"),
        (Some(&w.server.anon_key), Some(&unsigned), "PGRST301"),
        (Some(&w.server.anon_key), Some("a.b.c"), "PGRST301"),
    ];
    for (i, (key, bearer, code)) in cases.into_iter().enumerate() {
        let build = |method: Method, path: &str| {
            let mut rb = w.server.http.request(method, format!("{}/rest/v1{path}", w.server.url));
            if let Some(k) = key {
                rb = rb.header("apikey", k);
            }
            if let Some(b) = bearer {
                rb = rb.bearer_auth(b);
            }
            rb
        };
        let resp = build(Method::GET, "/messages").send().await.unwrap();
        let body = refused(resp, StatusCode::UNAUTHORIZED, code).await;
        assert!(body["message"].is_string(), "case {i}");
        let resp = build(Method::POST, "/messages")
            .json(&json!({"conversation_id": w.conv, "sender_id": w.kundin.id, "content": format!("Fall {i}")}))
            .send()
            .await
            .unwrap();
        refused(resp, StatusCode::UNAUTHORIZED, code).await;
        let resp = build(Method::POST, "/rpc/create_conversation")
            .json(&json!({"p_type": "group", "p_title": "Einbruch", "p_member_ids": []}))
            .send()
            .await
            .unwrap();
        refused(resp, StatusCode::UNAUTHORIZED, code).await;
    }
    assert_eq!(snapshot(&w.server).await, before);
    w.server.stop().await;
}

#[tokio::test]
async fn message_content_is_checked() {
    let w = world().await;
    let kept = send(&w.server, &w.kundin, w.conv, "Bleibt wie er ist").await;
    let before = snapshot(&w.server).await;
    let post = |body: Value| {
        rest(&w.server, Method::POST, "/messages", Some(&w.kundin)).header("prefer", "return=representation").json(&body).send()
    };
    for content in [String::new(), "   ".into(), " \n\t ".into(), "x".repeat(10_001)] {
        let resp =
            post(json!({"conversation_id": w.conv, "sender_id": w.kundin.id, "content": content, "type": "text"})).await.unwrap();
        refused(resp, StatusCode::BAD_REQUEST, "23514").await;
    }
    // Over 10,000 characters is refused whatever the type.
    let resp = post(json!({"conversation_id": w.conv, "content": "x".repeat(10_001), "type": "file"})).await.unwrap();
    refused(resp, StatusCode::BAD_REQUEST, "23514").await;
    // A type outside the seed's four, and a NULL type (which would dodge the content check).
    let resp = post(json!({"conversation_id": w.conv, "content": "", "type": "video"})).await.unwrap();
    refused(resp, StatusCode::BAD_REQUEST, "23514").await;
    let resp = post(json!({"conversation_id": w.conv, "content": "", "type": null})).await.unwrap();
    refused(resp, StatusCode::BAD_REQUEST, "23502").await;
    // Editing a message to empty content is refused the same way.
    let resp = rest(&w.server, Method::PATCH, &format!("/messages?id=eq.{}", kept["id"].as_str().unwrap()), Some(&w.kundin))
        .json(&json!({"content": ""}))
        .send()
        .await
        .unwrap();
    refused(resp, StatusCode::BAD_REQUEST, "23514").await;
    assert_eq!(snapshot(&w.server).await, before);

    // Exactly 10,000 characters (not bytes: umlauts count once) is accepted.
    let longest = "ä".repeat(10_000);
    let msg = send(&w.server, &w.kundin, w.conv, &longest).await;
    assert_eq!(msg["content"].as_str().unwrap().chars().count(), 10_000);
    w.server.stop().await;
}

#[tokio::test]
async fn unknown_tables_columns_and_functions() {
    let w = world().await;
    let before = snapshot(&w.server).await;

    for path in ["/nachrichten", "/users", "/sessions", "/pg_roles", "/is_member"] {
        let resp = rest(&w.server, Method::GET, path, Some(&w.kundin)).send().await.unwrap();
        refused(resp, StatusCode::NOT_FOUND, "PGRST205").await;
    }
    let resp =
        rest(&w.server, Method::POST, "/nachrichten", Some(&w.kundin)).json(&json!({"content": "x"})).send().await.unwrap();
    refused(resp, StatusCode::NOT_FOUND, "PGRST205").await;

    // A key of the body that is no column.
    let resp = rest(&w.server, Method::POST, "/messages", Some(&w.kundin))
        .json(&json!({"conversation_id": w.conv, "content": "Hallo", "farbe": "rot"}))
        .send()
        .await
        .unwrap();
    refused(resp, StatusCode::BAD_REQUEST, "PGRST204").await;
    let resp = rest(&w.server, Method::POST, "/messages?columns=conversation_id,farbe", Some(&w.kundin))
        .json(&json!([{"conversation_id": w.conv, "content": "Hallo", "farbe": "rot"}]))
        .send()
        .await
        .unwrap();
    refused(resp, StatusCode::BAD_REQUEST, "PGRST204").await;
    let resp = rest(&w.server, Method::PATCH, &format!("/conversation_members?conversation_id=eq.{}", w.conv), Some(&w.kundin))
        .json(&json!({"last_read_at": "2026-01-01T00:00:00Z", "farbe": "rot"}))
        .send()
        .await
        .unwrap();
    refused(resp, StatusCode::BAD_REQUEST, "PGRST204").await;

    // Functions: unknown, in a schema /rpc does not expose, or called with unknown arguments.
    for (name, args) in [
        ("gibt_es_nicht", json!({})),
        ("is_member", json!({"p_conversation_id": w.conv})),
        ("handle_new_user", json!({})),
        ("pg_sleep", json!({"seconds": 1})),
        ("create_conversation", json!({"p_type": "group", "p_title": "x", "p_member_ids": [], "p_extra": 1})),
        ("get_unread_message_count", json!({"p_conversation_id": w.conv})),
    ] {
        let resp = rest(&w.server, Method::POST, &format!("/rpc/{name}"), Some(&w.kundin)).json(&args).send().await.unwrap();
        refused(resp, StatusCode::NOT_FOUND, "PGRST202").await;
    }
    let resp = rest(&w.server, Method::GET, "/rpc/gibt_es_nicht", Some(&w.kundin)).send().await.unwrap();
    refused(resp, StatusCode::NOT_FOUND, "PGRST202").await;

    assert_eq!(snapshot(&w.server).await, before);
    w.server.stop().await;
}

#[tokio::test]
async fn an_empty_batch_inserts_nothing() {
    let w = world().await;
    let before = snapshot(&w.server).await;
    // supabase-js `.insert([]).select()`: nothing to insert, nothing inserted — not one row of
    // defaults (which the service role could otherwise create in `conversations`).
    let resp = rest(&w.server, Method::POST, "/messages", Some(&w.kundin))
        .header("prefer", "return=representation")
        .json(&json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(ok(resp, StatusCode::CREATED).await, json!([]));
    let resp = service(&w.server, Method::POST, "/conversations")
        .header("prefer", "return=representation")
        .json(&json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(ok(resp, StatusCode::CREATED).await, json!([]));
    let resp = service(&w.server, Method::POST, "/conversations").json(&json!([])).send().await.unwrap();
    empty(resp, StatusCode::CREATED).await;
    let resp = service(&w.server, Method::POST, "/conversations").header("accept", SINGLE).json(&json!([])).send().await.unwrap();
    refused(resp, StatusCode::NOT_ACCEPTABLE, "PGRST116").await;
    assert_eq!(snapshot(&w.server).await, before);

    // An empty object is one row of defaults, as in PostgREST.
    let resp = service(&w.server, Method::POST, "/conversations?select=type,title")
        .header("prefer", "return=representation")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok(resp, StatusCode::CREATED).await, json!([{"type": "direct", "title": null}]));
    w.server.stop().await;
}

#[tokio::test]
async fn only_the_public_schema_is_exposed() {
    let w = world().await;
    let before = snapshot(&w.server).await;
    // supabase-js sends Accept-Profile/Content-Profile with its `db.schema`: `public` works,
    // another schema is refused rather than silently served from `public`.
    let resp = rest(&w.server, Method::GET, "/conversations?select=title", Some(&w.kundin))
        .header("accept-profile", "public")
        .send()
        .await
        .unwrap();
    assert_eq!(ok(resp, StatusCode::OK).await, json!([{"title": "Bad sanieren"}]));
    for schema in ["auth", "private", "pg_catalog"] {
        let resp = rest(&w.server, Method::GET, "/conversations", Some(&w.kundin))
            .header("accept-profile", schema)
            .send()
            .await
            .unwrap();
        refused(resp, StatusCode::NOT_ACCEPTABLE, "PGRST106").await;
        let resp = rest(&w.server, Method::POST, "/messages", Some(&w.kundin))
            .header("content-profile", schema)
            .json(&json!({"conversation_id": w.conv, "content": "Falsches Schema"}))
            .send()
            .await
            .unwrap();
        refused(resp, StatusCode::NOT_ACCEPTABLE, "PGRST106").await;
        let resp = rest(&w.server, Method::POST, "/rpc/get_unread_counts", Some(&w.kundin))
            .header("content-profile", schema)
            .send()
            .await
            .unwrap();
        refused(resp, StatusCode::NOT_ACCEPTABLE, "PGRST106").await;
    }
    assert_eq!(snapshot(&w.server).await, before);
    w.server.stop().await;
}

#[tokio::test]
async fn single_object_needs_exactly_one_row() {
    let w = world().await;
    let a = send(&w.server, &w.kundin, w.conv, "Eins").await;
    send(&w.server, &w.kundin, w.conv, "Zwei").await;
    let before = snapshot(&w.server).await;

    let resp = rest(&w.server, Method::GET, &format!("/messages?id=eq.{}", Uuid::new_v4()), Some(&w.kundin))
        .header("accept", SINGLE)
        .send()
        .await
        .unwrap();
    let body = refused(resp, StatusCode::NOT_ACCEPTABLE, "PGRST116").await;
    assert_eq!(body["details"], "The result contains 0 rows");
    let resp = rest(&w.server, Method::GET, &format!("/messages?conversation_id=eq.{}", w.conv), Some(&w.kundin))
        .header("accept", SINGLE)
        .send()
        .await
        .unwrap();
    let body = refused(resp, StatusCode::NOT_ACCEPTABLE, "PGRST116").await;
    assert_eq!(body["details"], "The result contains 2 rows");

    // A write asked for as a single object that touches two rows is rolled back, with the
    // rows wanted back or not.
    for prefer in ["return=representation", "return=minimal"] {
        let resp = rest(&w.server, Method::PATCH, &format!("/messages?conversation_id=eq.{}", w.conv), Some(&w.kundin))
            .header("accept", SINGLE)
            .header("prefer", prefer)
            .json(&json!({"content": "Beide überschrieben"}))
            .send()
            .await
            .unwrap();
        refused(resp, StatusCode::NOT_ACCEPTABLE, "PGRST116").await;
        let resp = rest(&w.server, Method::POST, "/messages", Some(&w.kundin))
            .header("accept", SINGLE)
            .header("prefer", prefer)
            .json(&json!([{"conversation_id": w.conv, "content": "Drei"}, {"conversation_id": w.conv, "content": "Vier"}]))
            .send()
            .await
            .unwrap();
        refused(resp, StatusCode::NOT_ACCEPTABLE, "PGRST116").await;
    }
    assert_eq!(snapshot(&w.server).await, before);

    // Exactly one row: a bare object.
    let resp =
        rest(&w.server, Method::GET, &format!("/messages?id=eq.{}&select=content", a["id"].as_str().unwrap()), Some(&w.kundin))
            .header("accept", SINGLE)
            .send()
            .await
            .unwrap();
    assert_eq!(ok(resp, StatusCode::OK).await, json!({"content": "Eins"}));
    w.server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Features
// ---------------------------------------------------------------------------------------------

/// Five notifications of `kundin` with known timestamps, and one of `meister` (as superuser:
/// clients cannot write notifications).
async fn notifications(w: &World) {
    sqlx::query(
        "insert into public.notifications (user_id, type, title, body, read, created_at) values
           ($1, 'message', 'Alpha',       'Fliesen im Bad',        false, '2026-01-01T10:00:00Z'),
           ($1, 'message', 'Beta',        null,                    true,  '2026-01-02T10:00:00Z'),
           ($1, 'system',  'Gamma',       'Termin: FLIESEN legen', false, '2026-01-03T10:00:00Z'),
           ($1, 'mention', 'Komma, drin', 'Rechnung',              true,  '2026-01-04T10:00:00Z'),
           ($1, 'message', 'Delta',       null,                    false, '2026-01-05T10:00:00Z'),
           ($2, 'message', 'Alpha',       'Für den Meister',       false, '2026-01-01T12:00:00Z')",
    )
    .bind(w.kundin.id)
    .bind(w.meister.id)
    .execute(w.server.db.pool())
    .await
    .expect("insert notifications");
}

/// Query pairs and the titles they should list.
type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<&'a str>);

/// The titles of `user`'s notifications matching `query` (pairs, encoded by the client),
/// oldest first unless `query` orders otherwise.
async fn titles(w: &World, user: &TestUser, query: &[(&str, &str)]) -> Vec<String> {
    let mut pairs: Vec<(&str, &str)> = vec![("select", "title")];
    if !query.iter().any(|(k, _)| *k == "order") {
        pairs.push(("order", "created_at.asc"));
    }
    pairs.extend_from_slice(query);
    let resp = rest(&w.server, Method::GET, "/notifications", Some(user)).query(&pairs).send().await.unwrap();
    strings(&ok(resp, StatusCode::OK).await, "title")
}

#[tokio::test]
async fn filters() {
    let w = world().await;
    notifications(&w).await;
    let k = &w.kundin;
    let cases: Vec<Case> = vec![
        (vec![], vec!["Alpha", "Beta", "Gamma", "Komma, drin", "Delta"]),
        (vec![("title", "eq.Alpha")], vec!["Alpha"]),
        (vec![("title", "neq.Alpha")], vec!["Beta", "Gamma", "Komma, drin", "Delta"]),
        (vec![("title", "not.eq.Alpha")], vec!["Beta", "Gamma", "Komma, drin", "Delta"]),
        (vec![("created_at", "gt.2026-01-03T10:00:00Z")], vec!["Komma, drin", "Delta"]),
        (vec![("created_at", "gte.2026-01-03T10:00:00Z")], vec!["Gamma", "Komma, drin", "Delta"]),
        (vec![("created_at", "lt.2026-01-03T10:00:00Z")], vec!["Alpha", "Beta"]),
        (vec![("created_at", "lte.2026-01-03T10:00:00+00:00")], vec!["Alpha", "Beta", "Gamma"]),
        // The same column twice: both apply.
        (
            vec![("created_at", "gt.2026-01-01T10:00:00Z"), ("created_at", "lt.2026-01-05T10:00:00Z")],
            vec!["Beta", "Gamma", "Komma, drin"],
        ),
        (vec![("body", "is.null")], vec!["Beta", "Delta"]),
        (vec![("body", "not.is.null")], vec!["Alpha", "Gamma", "Komma, drin"]),
        (vec![("read", "is.true")], vec!["Beta", "Komma, drin"]),
        (vec![("read", "is.false")], vec!["Alpha", "Gamma", "Delta"]),
        (vec![("read", "eq.false"), ("type", "eq.system")], vec!["Gamma"]),
        (vec![("title", "in.(Alpha,\"Komma, drin\")")], vec!["Alpha", "Komma, drin"]),
        (vec![("title", "not.in.(Alpha,Beta)")], vec!["Gamma", "Komma, drin", "Delta"]),
        (vec![("title", "in.()")], vec![]),
        (vec![("body", "like.*Fliesen*")], vec!["Alpha"]),
        (vec![("body", "like.%FLIESEN%")], vec!["Gamma"]),
        (vec![("body", "ilike.*fliesen*")], vec!["Alpha", "Gamma"]),
        (vec![("title", "ilike.?elta")], vec![]),
        (vec![("or", "(title.eq.Beta,and(read.is.false,body.ilike.*fliesen*))")], vec!["Alpha", "Beta", "Gamma"]),
        (vec![("or", "(title.eq.Alpha,title.eq.\"Komma, drin\")")], vec!["Alpha", "Komma, drin"]),
        (vec![("or", "(read.is.true,type.eq.system)"), ("title", "neq.Beta")], vec!["Gamma", "Komma, drin"]),
        (vec![("not.or", "(read.is.true,body.is.null)")], vec!["Alpha", "Gamma"]),
        (vec![("and", "(read.is.false,or(title.eq.Delta,title.eq.Alpha))")], vec!["Alpha", "Delta"]),
    ];
    for (query, expected) in cases {
        assert_eq!(titles(&w, k, &query).await, expected, "query {query:?}");
    }
    // The filters run under RLS: the same query shows the meister only his own row.
    assert_eq!(titles(&w, &w.meister, &[("title", "eq.Alpha")]).await, ["Alpha"]);
    assert_eq!(titles(&w, &w.meister, &[]).await, ["Alpha"]);
    assert_eq!(titles(&w, &w.fremd, &[]).await, Vec::<String>::new());
    w.server.stop().await;
}

#[tokio::test]
async fn order_limit_offset_and_range() {
    let w = world().await;
    notifications(&w).await;
    let k = &w.kundin;
    let cases: Vec<Case> = vec![
        (vec![("order", "created_at.desc")], vec!["Delta", "Komma, drin", "Gamma", "Beta", "Alpha"]),
        (vec![("order", "body.asc.nullsfirst,created_at.asc")], vec!["Beta", "Delta", "Alpha", "Komma, drin", "Gamma"]),
        (vec![("order", "body.asc.nullslast,created_at.asc")], vec!["Alpha", "Komma, drin", "Gamma", "Beta", "Delta"]),
        (vec![("order", "body.desc.nullslast,created_at.desc")], vec!["Gamma", "Komma, drin", "Alpha", "Delta", "Beta"]),
        (vec![("order", "read.desc,created_at.asc")], vec!["Beta", "Komma, drin", "Alpha", "Gamma", "Delta"]),
        (vec![("order", "created_at.desc"), ("limit", "2")], vec!["Delta", "Komma, drin"]),
        (vec![("order", "created_at.desc"), ("limit", "2"), ("offset", "1")], vec!["Komma, drin", "Gamma"]),
        (vec![("order", "created_at.asc"), ("offset", "4")], vec!["Delta"]),
        (vec![("order", "created_at.asc"), ("offset", "9")], vec![]),
        (vec![("limit", "0")], vec![]),
    ];
    for (query, expected) in cases {
        assert_eq!(titles(&w, k, &query).await, expected, "query {query:?}");
    }
    let resp = rest(&w.server, Method::GET, "/notifications?limit=-1", Some(k)).send().await.unwrap();
    refused(resp, StatusCode::BAD_REQUEST, "PGRST100").await;

    // Range header: items 1–3 of 5; with an exact count the response is partial (206).
    let page = |range: &str, prefer: Option<&str>| {
        let mut rb = rest(&w.server, Method::GET, "/notifications?select=title&order=created_at.asc", Some(k))
            .header("range-unit", "items")
            .header("range", range);
        if let Some(p) = prefer {
            rb = rb.header("prefer", p);
        }
        rb.send()
    };
    let resp = page("1-3", None).await.unwrap();
    assert_eq!(header(&resp, "content-range").as_deref(), Some("1-3/*"));
    assert_eq!(strings(&ok(resp, StatusCode::OK).await, "title"), ["Beta", "Gamma", "Komma, drin"]);
    let resp = page("1-3", Some("count=exact")).await.unwrap();
    assert_eq!(header(&resp, "content-range").as_deref(), Some("1-3/5"));
    assert_eq!(strings(&ok(resp, StatusCode::PARTIAL_CONTENT).await, "title"), ["Beta", "Gamma", "Komma, drin"]);
    let resp = page("3-", None).await.unwrap();
    assert_eq!(header(&resp, "content-range").as_deref(), Some("3-4/*"));
    assert_eq!(strings(&ok(resp, StatusCode::OK).await, "title"), ["Komma, drin", "Delta"]);
    for bad in ["3-1", "a-b", "zwei"] {
        refused(page(bad, None).await.unwrap(), StatusCode::RANGE_NOT_SATISFIABLE, "PGRST103").await;
    }

    // supabase-js' `.range(1, 2)` sends offset/limit; the Content-Range says where they fell.
    let resp = rest(&w.server, Method::GET, "/notifications?select=title&order=created_at.asc&offset=1&limit=2", Some(k))
        .header("prefer", "count=exact")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "content-range").as_deref(), Some("1-2/5"));
    assert_eq!(strings(&ok(resp, StatusCode::PARTIAL_CONTENT).await, "title"), ["Beta", "Gamma"]);

    // Every row with a count: 200, the total after the slash.
    let resp = rest(&w.server, Method::GET, "/notifications?select=title", Some(k))
        .header("prefer", "count=exact")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "content-range").as_deref(), Some("0-4/5"));
    assert_eq!(ok(resp, StatusCode::OK).await.as_array().unwrap().len(), 5);
    w.server.stop().await;
}

#[tokio::test]
async fn head_with_exact_count() {
    let w = world().await;
    notifications(&w).await;
    let head = |query: &str, user: &TestUser| {
        rest(&w.server, Method::HEAD, &format!("/notifications?select=*{query}"), Some(user))
            .header("prefer", "count=exact")
            .send()
    };
    // supabase-js: `.select('*', {count: 'exact', head: true})`; it reads the total after '/'.
    let resp = head("", &w.kundin).await.unwrap();
    assert_eq!(header(&resp, "content-range").as_deref(), Some("0-4/5"));
    empty(resp, StatusCode::OK).await;
    let resp = head("&read=is.false", &w.kundin).await.unwrap();
    assert_eq!(header(&resp, "content-range").as_deref(), Some("0-2/3"));
    empty(resp, StatusCode::OK).await;
    let resp = head("&title=eq.Niemand", &w.kundin).await.unwrap();
    assert_eq!(header(&resp, "content-range").as_deref(), Some("*/0"));
    empty(resp, StatusCode::OK).await;
    // Under RLS: the outsider counts none of them.
    let resp = head("", &w.fremd).await.unwrap();
    assert_eq!(header(&resp, "content-range").as_deref(), Some("*/0"));
    empty(resp, StatusCode::OK).await;
    w.server.stop().await;
}

#[tokio::test]
async fn select_with_aliases_and_embedding() {
    let w = world().await;
    let m1 = send(&w.server, &w.meister, w.conv, "Ich komme Montag").await;
    send(&w.server, &w.kundin, w.conv, "Passt, danke").await;
    let empty_conv = w.server.conversation("group", Some("Leer"), &w.meister, &[&w.kundin]).await;

    // The seed's useMessages query, whitespace and newlines included (postgrest-js strips them;
    // a plain HTTP client may not).
    let resp = rest(&w.server, Method::GET, "/messages", Some(&w.kundin))
        .query(&[
            ("select", "\n          *,\n          sender:sender_id (full_name, avatar_url)\n        "),
            ("conversation_id", &format!("eq.{}", w.conv)),
            ("deleted_at", "is.null"),
            ("order", "created_at.asc"),
        ])
        .send()
        .await
        .unwrap();
    let list = ok(resp, StatusCode::OK).await;
    assert_eq!(strings(&list, "content"), ["Ich komme Montag", "Passt, danke"]);
    assert_eq!(list[0]["sender"], json!({"full_name": "Meister Müller", "avatar_url": null}));
    assert_eq!(list[1]["sender"], json!({"full_name": "Kundin Schmidt", "avatar_url": null}));
    for key in
        ["id", "conversation_id", "sender_id", "content", "type", "attachments", "meta", "created_at", "updated_at", "deleted_at"]
    {
        assert!(list[0].get(key).is_some(), "`*` includes {key}: {}", list[0]);
    }

    // Aliases on columns, and the other ways to name a to-one relationship.
    let resp = rest(&w.server, Method::GET, &format!("/messages?id=eq.{}", m1["id"].as_str().unwrap()), Some(&w.kundin))
        .query(&[(
            "select",
            "text:content,von:sender_id,sender:profiles!sender_id(name:full_name,role),conversation:conversations(title,type)",
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(
        ok(resp, StatusCode::OK).await,
        json!([{
            "text": "Ich komme Montag",
            "von": w.meister.id,
            "sender": {"name": "Meister Müller", "role": "tradesperson"},
            "conversation": {"title": "Bad sanieren", "type": "project"}
        }])
    );
    let resp = rest(&w.server, Method::GET, &format!("/messages?id=eq.{}", m1["id"].as_str().unwrap()), Some(&w.kundin))
        .query(&[("select", "content,profiles!messages_sender_id_fkey(full_name)")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        ok(resp, StatusCode::OK).await,
        json!([{"content": "Ich komme Montag", "profiles": {"full_name": "Meister Müller"}}])
    );

    // To-many: an array per parent, empty when there is nothing.
    let resp = rest(&w.server, Method::GET, "/conversations", Some(&w.kundin))
        .query(&[("select", "id,title,messages(content)"), ("order", "title.asc")])
        .send()
        .await
        .unwrap();
    let convs = ok(resp, StatusCode::OK).await;
    assert_eq!(strings(&convs, "title"), ["Bad sanieren", "Leer"]);
    let mut contents = strings(&convs[0]["messages"], "content");
    contents.sort();
    assert_eq!(contents, ["Ich komme Montag", "Passt, danke"]);
    assert_eq!(convs[1]["messages"], json!([]));
    assert_eq!(convs[1]["id"], empty_conv.to_string());

    let resp = rest(&w.server, Method::GET, &format!("/conversations?id=eq.{}", w.conv), Some(&w.kundin))
        .query(&[("select", "title,members:conversation_members(role,profile:profiles(full_name))")])
        .send()
        .await
        .unwrap();
    let conv = ok(resp, StatusCode::OK).await;
    let mut members: Vec<(String, String)> = conv[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["role"].as_str().unwrap().to_owned(), m["profile"]["full_name"].as_str().unwrap().to_owned()))
        .collect();
    members.sort();
    assert_eq!(members, [("member".to_owned(), "Kundin Schmidt".to_owned()), ("owner".to_owned(), "Meister Müller".to_owned())]);

    // Embedded rows are read under RLS too: the outsider's own profile shows none of the
    // messages it was never allowed to see.
    let resp = rest(&w.server, Method::GET, &format!("/profiles?id=eq.{}", w.meister.id), Some(&w.fremd))
        .query(&[("select", "full_name,messages(content)")])
        .send()
        .await
        .unwrap();
    assert_eq!(ok(resp, StatusCode::OK).await, json!([{"full_name": "Meister Müller", "messages": []}]));
    w.server.stop().await;
}

#[tokio::test]
async fn return_minimal_and_representation() {
    let w = world().await;
    let body = |text: &str| json!({"conversation_id": w.conv, "content": text});

    // No Prefer: PostgREST's default is minimal — 201 and no body (supabase-js: data null).
    let resp = rest(&w.server, Method::POST, "/messages", Some(&w.kundin)).json(&body("ohne Prefer")).send().await.unwrap();
    empty(resp, StatusCode::CREATED).await;
    let resp = rest(&w.server, Method::POST, "/messages", Some(&w.kundin))
        .header("prefer", "return=minimal")
        .json(&body("minimal"))
        .send()
        .await
        .unwrap();
    empty(resp, StatusCode::CREATED).await;
    let resp = rest(&w.server, Method::POST, "/messages?select=content,sender_id", Some(&w.kundin))
        .header("prefer", "return=representation")
        .json(&body("mit Antwort"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok(resp, StatusCode::CREATED).await, json!([{"content": "mit Antwort", "sender_id": w.kundin.id}]));
    assert_eq!(count(&w.server, "select count(*) from public.messages").await, 3);

    let resp = rest(&w.server, Method::PATCH, "/messages?content=eq.minimal&select=content", Some(&w.kundin))
        .json(&json!({"content": "minimal!"}))
        .send()
        .await
        .unwrap();
    empty(resp, StatusCode::NO_CONTENT).await;
    let resp = rest(&w.server, Method::PATCH, "/messages?content=eq.minimal!&select=content", Some(&w.kundin))
        .header("prefer", "return=representation")
        .json(&json!({"content": "geändert"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok(resp, StatusCode::OK).await, json!([{"content": "geändert"}]));
    // A PATCH that matches nothing: 204, or an empty array.
    let resp = rest(&w.server, Method::PATCH, "/messages?content=eq.niemand", Some(&w.kundin))
        .header("prefer", "return=representation")
        .json(&json!({"content": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok(resp, StatusCode::OK).await, json!([]));
    w.server.stop().await;
}

#[tokio::test]
async fn bulk_insert_with_columns() {
    let w = world().await;
    // postgrest-js sends `columns` with the union of the objects' keys, quoted.
    let resp =
        rest(&w.server, Method::POST, "/messages?columns=%22conversation_id%22,%22content%22&select=content", Some(&w.kundin))
            .header("prefer", "return=representation")
            .json(&json!([
                {"conversation_id": w.conv, "content": "Erstens"},
                {"conversation_id": w.conv, "content": "Zweitens", "nicht_in_columns": true},
                {"conversation_id": w.conv, "content": "Drittens"}
            ]))
            .send()
            .await
            .unwrap();
    let rows = ok(resp, StatusCode::CREATED).await;
    assert_eq!(strings(&rows, "content"), ["Erstens", "Zweitens", "Drittens"]);
    assert_eq!(count(&w.server, &format!("select count(*) from public.messages where sender_id = '{}'", w.kundin.id)).await, 3);

    // All or nothing: one bad row refuses the whole batch.
    let before = snapshot(&w.server).await;
    let resp = rest(&w.server, Method::POST, "/messages?columns=conversation_id,content", Some(&w.kundin))
        .json(&json!([{"conversation_id": w.conv, "content": "Gut"}, {"conversation_id": w.conv, "content": ""}]))
        .send()
        .await
        .unwrap();
    refused(resp, StatusCode::BAD_REQUEST, "23514").await;
    assert_eq!(snapshot(&w.server).await, before);
    w.server.stop().await;
}

#[tokio::test]
async fn upserts() {
    let w = world().await;
    let id = Uuid::now_v7();
    let msg = json!({"id": id, "conversation_id": w.conv, "sender_id": w.kundin.id, "content": "Einmal", "type": "text"});
    let post = |body: &Value, prefer: &str, query: &str| {
        rest(&w.server, Method::POST, &format!("/messages{query}"), Some(&w.kundin))
            .header("prefer", prefer.to_owned())
            .json(body)
            .send()
    };
    let resp = post(&msg, "return=representation", "").await.unwrap();
    assert_eq!(strings(&ok(resp, StatusCode::CREATED).await, "id"), [id.to_string()]);
    let notified = count(&w.server, "select count(*) from public.notifications").await;
    assert_eq!(notified, 1);

    // Re-sending the same id (the outbox after a lost response) is a no-op: no row back, the
    // stored message unchanged, no second notification.
    let mut again = msg.clone();
    again["content"] = json!("Zweimal?");
    for query in ["?on_conflict=id", ""] {
        let resp = post(&again, "return=representation,resolution=ignore-duplicates", query).await.unwrap();
        assert_eq!(ok(resp, StatusCode::CREATED).await, json!([]));
        let resp = post(&again, "resolution=ignore-duplicates", query).await.unwrap();
        empty(resp, StatusCode::CREATED).await;
    }
    assert_eq!(
        count(&w.server, &format!("select count(*) from public.messages where id = '{id}' and content = 'Einmal'")).await,
        1
    );
    assert_eq!(count(&w.server, "select count(*) from public.messages").await, 1);
    assert_eq!(count(&w.server, "select count(*) from public.notifications").await, notified);

    // Without a resolution the duplicate is a unique violation.
    let resp = post(&again, "return=representation", "").await.unwrap();
    refused(resp, StatusCode::CONFLICT, "23505").await;

    // merge-duplicates updates what was sent. A member may not (it would rewrite
    // conversation_id and sender_id, which the column grants keep fixed) …
    let before = snapshot(&w.server).await;
    let resp = post(&again, "return=representation,resolution=merge-duplicates", "?on_conflict=id").await.unwrap();
    refused(resp, StatusCode::FORBIDDEN, "42501").await;
    assert_eq!(snapshot(&w.server).await, before);
    // … the service role may.
    let resp = service(&w.server, Method::POST, "/messages?on_conflict=id&select=id,content")
        .header("prefer", "return=representation,resolution=merge-duplicates")
        .json(&again)
        .send()
        .await
        .unwrap();
    assert_eq!(ok(resp, StatusCode::CREATED).await, json!([{"id": id, "content": "Zweimal?"}]));
    assert_eq!(count(&w.server, "select count(*) from public.messages").await, 1);

    // A member's own typing indicator, upserted on its unique pair, stays one row.
    let typing = json!({"conversation_id": w.conv, "user_id": w.kundin.id});
    let mut ids = Vec::new();
    for _ in 0..2 {
        let resp = rest(&w.server, Method::POST, "/typing_indicators?on_conflict=conversation_id,user_id", Some(&w.kundin))
            .header("prefer", "return=representation,resolution=merge-duplicates")
            .json(&typing)
            .send()
            .await
            .unwrap();
        let rows = ok(resp, StatusCode::CREATED).await;
        assert_eq!(rows.as_array().unwrap().len(), 1);
        ids.push(rows[0]["id"].clone());
    }
    assert_eq!(ids[0], ids[1]);
    assert_eq!(count(&w.server, "select count(*) from public.typing_indicators").await, 1);
    w.server.stop().await;
}

#[tokio::test]
async fn insert_on_conflict_with_an_id_from_another_conversation_returns_no_row() {
    let w = world().await;
    // The kundin is in two conversations; the meister's message lives in the first.
    let other_conv = w.server.conversation("direct", None, &w.kundin, &[&w.fremd]).await;
    let foreign = send(&w.server, &w.meister, w.conv, "Original des Meisters").await;
    let id = foreign["id"].as_str().unwrap().to_owned();
    let before = snapshot(&w.server).await;

    // Her outbox "delivers" a message with that id into the other conversation: the INSERT
    // policy passes (she is a member there), the conflict swallows the row, nothing comes back.
    let resp = rest(&w.server, Method::POST, "/messages?on_conflict=id&select=*", Some(&w.kundin))
        .header("prefer", "return=representation,resolution=ignore-duplicates")
        .json(&json!({"id": id, "conversation_id": other_conv, "sender_id": w.kundin.id, "content": "Gekapert?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok(resp, StatusCode::CREATED).await, json!([]));
    assert_eq!(snapshot(&w.server).await, before, "the meister's message is untouched and nobody was notified");

    // Reading the id back — how the outbox settles it — shows where the message really is.
    let resp =
        rest(&w.server, Method::GET, &format!("/messages?id=eq.{id}&select=conversation_id,sender_id,content"), Some(&w.kundin))
            .send()
            .await
            .unwrap();
    assert_eq!(
        ok(resp, StatusCode::OK).await,
        json!([{"conversation_id": w.conv, "sender_id": w.meister.id, "content": "Original des Meisters"}])
    );
    // The outsider, whose conversation it was sent to, sees nothing of it.
    let resp = rest(&w.server, Method::GET, &format!("/messages?id=eq.{id}"), Some(&w.fremd)).send().await.unwrap();
    assert_eq!(ok(resp, StatusCode::OK).await, json!([]));
    w.server.stop().await;
}

#[tokio::test]
async fn patch_and_delete_with_filters() {
    let w = world().await;
    let a = send(&w.server, &w.kundin, w.conv, "Entwurf eins").await;
    let b = send(&w.server, &w.kundin, w.conv, "Entwurf zwei").await;
    let c = send(&w.server, &w.kundin, w.conv, "Endgültig").await;
    let m = send(&w.server, &w.meister, w.conv, "Entwurf vom Meister").await;
    let id = |v: &Value| v["id"].as_str().unwrap().to_owned();

    // Edit by filter: only her own matching messages change (RLS keeps the meister's).
    let resp = rest(&w.server, Method::PATCH, "/messages?content=like.Entwurf*&select=content,updated_at", Some(&w.kundin))
        .header("prefer", "return=representation")
        .json(&json!({"content": "Überarbeitet"}))
        .send()
        .await
        .unwrap();
    let rows = ok(resp, StatusCode::OK).await;
    assert_eq!(strings(&rows, "content"), ["Überarbeitet", "Überarbeitet"]);
    assert_ne!(rows[0]["updated_at"], a["updated_at"], "updated_at moves");
    let contents: Vec<(String, String)> = sqlx::query_as("select id::text, content from public.messages order by created_at")
        .fetch_all(w.server.db.pool())
        .await
        .unwrap();
    assert_eq!(
        contents,
        [
            (id(&a), "Überarbeitet".to_owned()),
            (id(&b), "Überarbeitet".to_owned()),
            (id(&c), "Endgültig".to_owned()),
            (id(&m), "Entwurf vom Meister".to_owned())
        ]
    );

    // Soft delete one by id; the seed's list (deleted_at is null) no longer shows it.
    let resp = rest(&w.server, Method::PATCH, &format!("/messages?id=eq.{}", id(&b)), Some(&w.kundin))
        .json(&json!({"deleted_at": "2000-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    empty(resp, StatusCode::NO_CONTENT).await;
    let resp = rest(
        &w.server,
        Method::GET,
        &format!("/messages?conversation_id=eq.{}&deleted_at=is.null&select=id&order=created_at.asc", w.conv),
        Some(&w.meister),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(strings(&ok(resp, StatusCode::OK).await, "id"), [id(&a), id(&c), id(&m)]);

    // The seed's markAsRead: update last_read_at of one's own membership, by two filters.
    let resp = rest(
        &w.server,
        Method::PATCH,
        &format!("/conversation_members?conversation_id=eq.{}&user_id=eq.{}", w.conv, w.meister.id),
        Some(&w.meister),
    )
    .json(&json!({"last_read_at": chrono_now()}))
    .send()
    .await
    .unwrap();
    empty(resp, StatusCode::NO_CONTENT).await;
    // Changing anything else of a membership is refused (column grant) and writes nothing.
    let before = snapshot(&w.server).await;
    let resp = rest(
        &w.server,
        Method::PATCH,
        &format!("/conversation_members?conversation_id=eq.{}&user_id=eq.{}", w.conv, w.kundin.id),
        Some(&w.kundin),
    )
    .json(&json!({"role": "owner"}))
    .send()
    .await
    .unwrap();
    refused(resp, StatusCode::FORBIDDEN, "42501").await;
    assert_eq!(snapshot(&w.server).await, before);

    // DELETE: members may delete only their own typing indicators; messages not at all.
    for user in [&w.kundin, &w.meister] {
        let resp = rest(&w.server, Method::POST, "/typing_indicators", Some(user))
            .json(&json!({"conversation_id": w.conv}))
            .send()
            .await
            .unwrap();
        empty(resp, StatusCode::CREATED).await;
    }
    let resp = rest(
        &w.server,
        Method::DELETE,
        &format!("/typing_indicators?conversation_id=eq.{}&select=user_id", w.conv),
        Some(&w.kundin),
    )
    .header("prefer", "return=representation")
    .send()
    .await
    .unwrap();
    assert_eq!(ok(resp, StatusCode::OK).await, json!([{"user_id": w.kundin.id}]));
    let left: Vec<Uuid> =
        sqlx::query_scalar("select user_id from public.typing_indicators").fetch_all(w.server.db.pool()).await.unwrap();
    assert_eq!(left, [w.meister.id]);
    let resp = rest(&w.server, Method::DELETE, &format!("/typing_indicators?user_id=eq.{}", w.meister.id), Some(&w.meister))
        .send()
        .await
        .unwrap();
    empty(resp, StatusCode::NO_CONTENT).await;
    assert_eq!(count(&w.server, "select count(*) from public.typing_indicators").await, 0);

    let before = snapshot(&w.server).await;
    let resp = rest(&w.server, Method::DELETE, &format!("/messages?id=eq.{}", id(&c)), Some(&w.kundin)).send().await.unwrap();
    refused(resp, StatusCode::FORBIDDEN, "42501").await;
    assert_eq!(snapshot(&w.server).await, before);

    // The service role deletes by filter, and only what matches (the soft-deleted message's
    // text is gone, so it no longer matches its old text).
    let resp = service(&w.server, Method::DELETE, &format!("/messages?sender_id=eq.{}&content=eq.Überarbeitet", w.kundin.id))
        .send()
        .await
        .unwrap();
    empty(resp, StatusCode::NO_CONTENT).await;
    let left: Vec<String> = sqlx::query_scalar("select id::text from public.messages order by created_at")
        .fetch_all(w.server.db.pool())
        .await
        .unwrap();
    assert_eq!(left, [id(&b), id(&c), id(&m)]);
    w.server.stop().await;
}

/// The current time as supabase-js sends it (`new Date().toISOString()`).
fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::test]
async fn rls_decides_over_rest() {
    let w = world().await;
    let msg = send(&w.server, &w.meister, w.conv, "Nur für Mitglieder").await;
    let before = snapshot(&w.server).await;

    // The outsider reads nothing — an empty list, not an error.
    for path in [
        format!("/messages?conversation_id=eq.{}", w.conv),
        format!("/conversations?id=eq.{}", w.conv),
        format!("/conversation_members?conversation_id=eq.{}", w.conv),
        "/notifications".to_owned(),
    ] {
        let resp = rest(&w.server, Method::GET, &path, Some(&w.fremd)).send().await.unwrap();
        assert_eq!(ok(resp, StatusCode::OK).await, json!([]), "{path}");
    }
    // … and writes nothing: posting is a 403 42501, editing matches no row.
    let resp = rest(&w.server, Method::POST, "/messages", Some(&w.fremd))
        .json(&json!({"conversation_id": w.conv, "sender_id": w.fremd.id, "content": "Hallo?"}))
        .send()
        .await
        .unwrap();
    refused(resp, StatusCode::FORBIDDEN, "42501").await;
    let resp = rest(&w.server, Method::PATCH, &format!("/messages?id=eq.{}", msg["id"].as_str().unwrap()), Some(&w.fremd))
        .header("prefer", "return=representation")
        .json(&json!({"content": "Gehackt"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok(resp, StatusCode::OK).await, json!([]));
    let resp = rest(&w.server, Method::PATCH, &format!("/conversation_members?conversation_id=eq.{}", w.conv), Some(&w.fremd))
        .json(&json!({"last_read_at": chrono_now()}))
        .send()
        .await
        .unwrap();
    empty(resp, StatusCode::NO_CONTENT).await;
    // A member cannot post as someone else, nor edit another member's message.
    let resp = rest(&w.server, Method::POST, "/messages", Some(&w.kundin))
        .json(&json!({"conversation_id": w.conv, "sender_id": w.meister.id, "content": "Im Namen des Meisters"}))
        .send()
        .await
        .unwrap();
    refused(resp, StatusCode::FORBIDDEN, "42501").await;
    let resp = rest(&w.server, Method::PATCH, &format!("/messages?id=eq.{}", msg["id"].as_str().unwrap()), Some(&w.kundin))
        .header("prefer", "return=representation")
        .json(&json!({"content": "Umgeschrieben"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok(resp, StatusCode::OK).await, json!([]));

    // Anonymous callers (the anon key alone) get 401 with the same SQLSTATE.
    let resp = rest(&w.server, Method::GET, "/messages", None).send().await.unwrap();
    refused(resp, StatusCode::UNAUTHORIZED, "42501").await;
    let resp = rest(&w.server, Method::POST, "/messages", None)
        .json(&json!({"conversation_id": w.conv, "sender_id": w.meister.id, "content": "Anonym"}))
        .send()
        .await
        .unwrap();
    refused(resp, StatusCode::UNAUTHORIZED, "42501").await;
    let resp = rest(&w.server, Method::PATCH, "/notifications", None).json(&json!({"read": true})).send().await.unwrap();
    refused(resp, StatusCode::UNAUTHORIZED, "42501").await;
    assert_eq!(snapshot(&w.server).await, before);

    // Members see it, with the sender embedded.
    let resp = rest(
        &w.server,
        Method::GET,
        &format!("/messages?conversation_id=eq.{}&select=content,sender:sender_id(full_name)", w.conv),
        Some(&w.kundin),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(
        ok(resp, StatusCode::OK).await,
        json!([{"content": "Nur für Mitglieder", "sender": {"full_name": "Meister Müller"}}])
    );

    // The notification center: own rows only, and only `read` may change.
    let resp = rest(&w.server, Method::GET, "/notifications?select=*&order=created_at.desc&limit=20", Some(&w.kundin))
        .send()
        .await
        .unwrap();
    let list = ok(resp, StatusCode::OK).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["title"], "Neue Nachricht");
    assert_eq!(list[0]["body"], "Nur für Mitglieder");
    assert_eq!(list[0]["link"], format!("/conversations/{}", w.conv));
    let note = list[0]["id"].as_str().unwrap().to_owned();
    let resp = rest(&w.server, Method::PATCH, &format!("/notifications?id=eq.{note}"), Some(&w.fremd))
        .json(&json!({"read": true}))
        .send()
        .await
        .unwrap();
    empty(resp, StatusCode::NO_CONTENT).await;
    assert_eq!(count(&w.server, "select count(*) from public.notifications where read").await, 0, "not the outsider");
    let resp = rest(&w.server, Method::PATCH, &format!("/notifications?id=eq.{note}"), Some(&w.kundin))
        .json(&json!({"title": "Anders"}))
        .send()
        .await
        .unwrap();
    refused(resp, StatusCode::FORBIDDEN, "42501").await;
    let resp = rest(&w.server, Method::PATCH, &format!("/notifications?id=eq.{note}"), Some(&w.kundin))
        .json(&json!({"read": true}))
        .send()
        .await
        .unwrap();
    empty(resp, StatusCode::NO_CONTENT).await;
    assert_eq!(count(&w.server, "select count(*) from public.notifications where read and title = 'Neue Nachricht'").await, 1);
    w.server.stop().await;
}

#[tokio::test]
async fn rpc_functions() {
    let w = world().await;
    let rpc = |name: &str, user: Option<&TestUser>, args: Value| {
        rest(&w.server, Method::POST, &format!("/rpc/{name}"), user).json(&args).send()
    };

    // create_conversation: a uuid; a direct conversation with the same person is reused.
    let args = json!({"p_type": "direct", "p_title": null, "p_member_ids": [w.fremd.id]});
    let first = ok(rpc("create_conversation", Some(&w.kundin), args.clone()).await.unwrap(), StatusCode::OK).await;
    let direct: Uuid = first.as_str().expect("a uuid string").parse().unwrap();
    let again = ok(rpc("create_conversation", Some(&w.kundin), args).await.unwrap(), StatusCode::OK).await;
    assert_eq!(again, first);
    let resp =
        rpc("create_conversation", Some(&w.fremd), json!({"p_type": "direct", "p_title": null, "p_member_ids": [w.kundin.id]}))
            .await
            .unwrap();
    assert_eq!(ok(resp, StatusCode::OK).await, first, "from the other side too");
    let resp = rest(
        &w.server,
        Method::GET,
        &format!("/conversation_members?conversation_id=eq.{direct}&select=user_id,role&order=role.desc"),
        Some(&w.fremd),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(
        ok(resp, StatusCode::OK).await,
        json!([{"user_id": w.kundin.id, "role": "owner"}, {"user_id": w.fremd.id, "role": "member"}])
    );

    let before = snapshot(&w.server).await;
    let resp = rpc("create_conversation", Some(&w.kundin), json!({"p_type": "party", "p_title": "x", "p_member_ids": []}))
        .await
        .unwrap();
    refused(resp, StatusCode::BAD_REQUEST, "22023").await;
    let resp =
        rpc("create_conversation", None, json!({"p_type": "group", "p_title": "anonym", "p_member_ids": []})).await.unwrap();
    refused(resp, StatusCode::UNAUTHORIZED, "42501").await;
    let resp =
        rpc("create_conversation", Some(&w.kundin), json!({"p_type": "group", "p_title": "x", "p_member_ids": ["keine-uuid"]}))
            .await
            .unwrap();
    refused(resp, StatusCode::BAD_REQUEST, "22P02").await;
    assert_eq!(snapshot(&w.server).await, before);

    // Unread counts: the caller's own only.
    send(&w.server, &w.meister, w.conv, "Eins").await;
    send(&w.server, &w.meister, w.conv, "Zwei").await;
    let count_args = |user: &TestUser| json!({"p_conversation_id": w.conv, "p_user_id": user.id});
    let resp = rpc("get_unread_message_count", Some(&w.kundin), count_args(&w.kundin)).await.unwrap();
    assert_eq!(ok(resp, StatusCode::OK).await, json!(2));
    let resp = rpc("get_unread_message_count", Some(&w.kundin), count_args(&w.meister)).await.unwrap();
    refused(resp, StatusCode::FORBIDDEN, "42501").await;
    let resp = rpc("get_unread_message_count", Some(&w.fremd), count_args(&w.kundin)).await.unwrap();
    refused(resp, StatusCode::FORBIDDEN, "42501").await;
    let resp = rpc("get_unread_message_count", None, count_args(&w.kundin)).await.unwrap();
    refused(resp, StatusCode::UNAUTHORIZED, "42501").await;

    let resp = rpc("get_unread_counts", Some(&w.kundin), json!({})).await.unwrap();
    let mut counts = ok(resp, StatusCode::OK).await.as_array().unwrap().clone();
    counts.sort_by_key(|c| c["unread_count"].as_i64());
    assert_eq!(
        counts,
        [json!({"conversation_id": direct, "unread_count": 0}), json!({"conversation_id": w.conv, "unread_count": 2})]
    );
    // supabase-js sends `rpc('get_unread_counts')` with no body at all.
    let resp = rest(&w.server, Method::POST, "/rpc/get_unread_counts", Some(&w.meister)).send().await.unwrap();
    assert_eq!(ok(resp, StatusCode::OK).await, json!([{"conversation_id": w.conv, "unread_count": 0}]));

    // search_profiles over GET with the argument in the query string, and over POST.
    let resp =
        rest(&w.server, Method::GET, "/rpc/search_profiles", Some(&w.fremd)).query(&[("p_query", "müll")]).send().await.unwrap();
    let found = ok(resp, StatusCode::OK).await;
    assert_eq!(strings(&found, "full_name"), ["Meister Müller"]);
    assert_eq!(found[0]["id"], w.meister.id.to_string());
    assert_eq!(found[0]["role"], "tradesperson");
    let resp = rest(&w.server, Method::GET, "/rpc/search_profiles", Some(&w.fremd))
        .query(&[("p_query", "i"), ("select", "full_name"), ("order", "full_name.desc"), ("limit", "2")])
        .send()
        .await
        .unwrap();
    assert_eq!(ok(resp, StatusCode::OK).await, json!([{"full_name": "Meister Müller"}, {"full_name": "Kundin Schmidt"}]));
    let resp = rpc("search_profiles", Some(&w.kundin), json!({"p_query": "%"})).await.unwrap();
    assert_eq!(ok(resp, StatusCode::OK).await, json!([]), "wildcards are literal");
    let resp = rest(&w.server, Method::GET, "/rpc/search_profiles?p_query=a", None).send().await.unwrap();
    refused(resp, StatusCode::UNAUTHORIZED, "42501").await;
    w.server.stop().await;
}
