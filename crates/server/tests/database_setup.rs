//! Setting the database up without a superuser (issue "Server hardening", item 9): the
//! one-time superuser step (`deploy/roles.sql`), the server's own realtime schema, and the
//! hosted-Supabase migration selection (`deploy/hosted-supabase.txt`).
//!
//! Each test that needs roles of its own starts a private throwaway cluster: roles are per
//! cluster, and the shared test cluster has the API roles already.

use sqlx::{Connection, Executor, PgConnection};
use werkfunk_testkit::cluster::{apply_roles_sql, Cluster};
use werkfunk_testkit::{TestDb, JWT_SECRET};

fn repo_file(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {}: {e}", full.display()))
}

async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url).await.unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

async fn start(url: &str) -> Result<werkfunk_server::Running, werkfunk_server::StartError> {
    let mut config = werkfunk_server::Config::new(url.to_owned(), JWT_SECRET).expect("valid config");
    config.listen = "127.0.0.1:0".parse().expect("address");
    werkfunk_server::start(config).await
}

#[tokio::test]
async fn a_plain_owner_is_told_the_one_superuser_step_and_migrates_after_it() {
    let cluster = Cluster::start_temporary().expect("a private cluster");
    let mut admin = connect(&cluster.url("postgres")).await;
    admin.execute("create role wf_owner login nosuperuser nocreaterole").await.unwrap();
    admin.execute("create database wf owner wf_owner").await.unwrap();
    let owner_url = cluster.url_as("wf_owner", "wf");

    // No API roles in the cluster: the server refuses to start, naming the missing roles and
    // the step that creates them, and has changed nothing.
    let refused = start(&owner_url).await.err().expect("no API roles: the server does not start");
    let message = refused.to_string();
    for expected in
        ["anon", "authenticated", "service_role", "authenticator", "not a superuser", "deploy/roles.sql", "-v owner=wf_owner"]
    {
        assert!(message.contains(expected), "{expected:?} missing from: {message}");
    }
    let mut owner = connect(&owner_url).await;
    let auth: Option<String> = sqlx::query_scalar("select to_regnamespace('auth')::text").fetch_one(&mut owner).await.unwrap();
    assert_eq!(auth, None, "nothing was created");
    let roles: i64 =
        sqlx::query_scalar("select count(*) from pg_roles where rolname in ('anon', 'authenticated', 'service_role')")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert_eq!(roles, 0);

    // The operator's one step; then the owner — neither SUPERUSER nor CREATEROLE — migrates
    // from scratch and serves.
    let superuser_url = cluster.url("wf");
    tokio::task::spawn_blocking(move || apply_roles_sql(&superuser_url, "wf_owner")).await.unwrap().expect("deploy/roles.sql");
    let running = start(&owner_url).await.expect("the server starts as the plain owner");
    let health = reqwest::get(format!("http://{}/health", running.addr())).await.expect("health");
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    let (superuser, createrole): (bool, bool) =
        sqlx::query_as("select rolsuper, rolcreaterole from pg_roles where rolname = current_user")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert!(!superuser && !createrole);
    let timeout: Option<String> = sqlx::query_scalar(
        "select c from pg_db_role_setting s, unnest(s.setconfig) c
          where s.setrole = 'anon'::regrole and c like 'statement_timeout=%'",
    )
    .fetch_optional(&mut owner)
    .await
    .unwrap();
    assert_eq!(timeout.as_deref(), Some("statement_timeout=3s"), "roles.sql sets what the migration may not");
    running.stop().await.expect("stops cleanly");
    owner.close().await.ok();
    admin.close().await.ok();
}

#[tokio::test]
async fn werkfunks_realtime_objects_live_in_their_own_schema() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let functions: Vec<String> = sqlx::query_scalar(
        "select p.proname::text from pg_proc p where p.pronamespace = 'werkfunk_realtime'::regnamespace order by 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(functions, ["attach_capture", "authorize", "capture", "session_ended"]);
    let overflow: Option<String> =
        sqlx::query_scalar("select to_regclass('werkfunk_realtime.overflow')::text").fetch_one(pool).await.unwrap();
    assert_eq!(overflow.as_deref(), Some("werkfunk_realtime.overflow"));
    let realtime: Option<String> = sqlx::query_scalar("select to_regnamespace('realtime')::text").fetch_one(pool).await.unwrap();
    assert_eq!(realtime, None, "the empty `realtime` schema of 0003 is gone: that name is Supabase's");
    let triggers: Vec<(String, String)> = sqlx::query_as(
        "select tgrelid::regclass::text, tgfoid::regproc::text from pg_trigger where tgname = 'werkfunk_capture' order by 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let tables: Vec<&str> = triggers.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(tables, ["conversation_members", "conversations", "messages", "notifications", "typing_indicators"]);
    assert!(triggers.iter().all(|(_, f)| f == "werkfunk_realtime.capture"), "{triggers:?}");
    // Nothing in it is reachable by the API roles.
    let usage: Vec<bool> = sqlx::query_scalar(
        "select has_schema_privilege(r, 'werkfunk_realtime', 'USAGE') from unnest(array['anon', 'authenticated', 'service_role']) r",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(usage, [false, false, false]);
}

/// The role and ownership layout of a hosted Supabase project, written by us: a STAND-IN for
/// Supabase's own bootstrap (`supabase/postgres` init scripts and migrations, GoTrue's auth
/// migrations), which CI cannot fetch. `cargo xtask supabase-check` applies the same selection
/// to a database bootstrapped from Supabase's real scripts; this reproduces what matters for
/// it: the superuser is `supabase_admin`; `postgres` is not a superuser (CREATEROLE,
/// BYPASSRLS, member of the API roles, owner of the database and of the `supabase_realtime`
/// publication); `realtime` belongs to `supabase_admin` and `postgres` may only use it; the
/// `auth` schema is `supabase_admin`'s, its table `auth.users` (in GoTrue's shape) and GoTrue's
/// `auth.uid()`/`auth.role()`/`auth.jwt()` are `supabase_auth_admin`'s, and `postgres` holds
/// ALL on its tables; default privileges in `public` grant everything to the API roles.
const SUPABASE_LAYOUT: &str = r#"
create role postgres login nosuperuser createrole createdb replication bypassrls;
alter database postgres owner to postgres;
create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;
create role authenticator login noinherit;
grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role to postgres;
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';

create role supabase_auth_admin login noinherit createrole;
create schema auth authorization supabase_admin;
grant all on schema auth to supabase_auth_admin;
grant usage on schema auth to anon, authenticated, service_role, postgres;
set role supabase_auth_admin;
create table auth.users (
  instance_id uuid,
  id uuid not null primary key,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  confirmed_at timestamptz generated always as (email_confirmed_at) stored,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_anonymous boolean not null default false,
  created_at timestamptz,
  updated_at timestamptz
);
create function auth.uid() returns uuid language sql stable as $$
  select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                  (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid
$$;
create function auth.role() returns text language sql stable as $$
  select coalesce(nullif(current_setting('request.jwt.claim.role', true), ''),
                  (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'))::text
$$;
create function auth.jwt() returns jsonb language sql stable as $$
  select coalesce(nullif(current_setting('request.jwt.claim', true), ''),
                  nullif(current_setting('request.jwt.claims', true), ''))::jsonb
$$;
reset role;
grant all on all tables in schema auth to postgres;
grant supabase_auth_admin to postgres;

create schema realtime;
grant usage on schema realtime to postgres;

alter default privileges for role postgres in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on sequences to anon, authenticated, service_role;

create publication supabase_realtime;
alter publication supabase_realtime owner to postgres;
"#;

fn hosted_selection() -> Vec<String> {
    repo_file("deploy/hosted-supabase.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_hosted_supabase_selection_applies_as_supabases_non_superuser_postgres() {
    let cluster = Cluster::start_temporary_as("supabase_admin").expect("a private cluster as supabase_admin");
    let mut admin = connect(&cluster.url("postgres")).await;
    sqlx::raw_sql(SUPABASE_LAYOUT).execute(&mut admin).await.expect("the stand-in layout");
    let mut postgres = connect(&cluster.url_as("postgres", "postgres")).await;
    let superuser: bool =
        sqlx::query_scalar("select rolsuper from pg_roles where rolname = current_user").fetch_one(&mut postgres).await.unwrap();
    assert!(!superuser);

    // Why the change feed's migrations are not in the selection: `postgres` may not create
    // anything in Supabase's `realtime` (the failure the issue reported).
    let mut tx = postgres.begin().await.unwrap();
    let err = sqlx::raw_sql(&repo_file("migrations/20261126000003_realtime.sql"))
        .execute(&mut *tx)
        .await
        .expect_err("0003 on Supabase");
    assert_eq!(err.as_database_error().and_then(|e| e.code()).as_deref(), Some("42501"), "{err}");
    tx.rollback().await.unwrap();

    let selection = hosted_selection();
    assert!(selection.len() >= 5 && selection[0] == "20261126000002_messaging.sql", "{selection:?}");
    for file in &selection {
        let mut tx = postgres.begin().await.unwrap();
        sqlx::raw_sql(&repo_file(&format!("migrations/{file}")))
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{file} as Supabase's postgres: {e}"));
        tx.commit().await.unwrap();
    }

    // Supabase Realtime serves the change feed there: the publication carries the tables, and
    // none of Werkfunk's capture machinery is installed.
    let published: Vec<String> =
        sqlx::query_scalar("select tablename::text from pg_publication_tables where pubname = 'supabase_realtime' order by 1")
            .fetch_all(&mut postgres)
            .await
            .unwrap();
    assert_eq!(published, ["conversation_members", "conversations", "messages", "notifications", "typing_indicators"]);
    let capture: i64 = sqlx::query_scalar(
        "select (select count(*) from pg_trigger where tgname = 'werkfunk_capture')
              + (select count(*) from pg_namespace where nspname = 'werkfunk_realtime')",
    )
    .fetch_one(&mut postgres)
    .await
    .unwrap();
    assert_eq!(capture, 0);
    // Supabase's default privileges (everything to the API roles) are revoked again.
    let anon: Vec<bool> = sqlx::query_scalar(
        "select has_table_privilege('anon', 'public.' || t, 'SELECT')
           from unnest(array['messages', 'profiles', 'conversations', 'notifications']) t
         union all
         select has_function_privilege('anon', 'public.create_conversation(text, text, uuid[])', 'EXECUTE')",
    )
    .fetch_all(&mut postgres)
    .await
    .unwrap();
    assert_eq!(anon, [false; 5]);

    // The smoke check an operator runs on a real project: users in auth.users, and RLS through
    // `set role authenticated` + `request.jwt.claims` (the member sees, a stranger does not).
    // It raises on any failure and rolls everything back.
    sqlx::raw_sql(&repo_file("deploy/hosted-supabase-check.sql")).execute(&mut postgres).await.expect("the smoke check passes");
    let users: i64 = sqlx::query_scalar("select count(*) from auth.users").fetch_one(&mut postgres).await.unwrap();
    assert_eq!(users, 0, "the smoke check leaves nothing behind");

    // And it does fail when RLS would let a stranger in.
    sqlx::raw_sql("create policy leak on public.conversations for select to authenticated using (true)")
        .execute(&mut postgres)
        .await
        .unwrap();
    let leak =
        sqlx::raw_sql(&repo_file("deploy/hosted-supabase-check.sql")).execute(&mut postgres).await.expect_err("a leak is caught");
    assert!(leak.to_string().contains("a stranger sees"), "{leak}");
    postgres.close().await.ok();
    admin.close().await.ok();
}

#[tokio::test]
async fn a_database_migrated_before_the_move_keeps_its_change_feed_in_the_new_schema() {
    // A database as it was before migrations 0000 and 0012 existed, with a change waiting in
    // the old overflow table; then the server's full set of migrations, as at the next start.
    let probe = TestDb::new().await;
    let name = format!("wf_upgrade_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("create database {name}")).execute(probe.pool()).await.unwrap();
    let url = format!("{}/{name}", probe.url.rsplit_once('/').unwrap().0);
    let mut conn = connect(&url).await;
    let before = sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(
            werkfunk_server::db::MIGRATOR
                .iter()
                .filter(|m| m.version != 20261126000000 && m.version < 20261202000012)
                .cloned()
                .collect(),
        ),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    before.run(&mut conn).await.expect("the migrations as they were");
    let waiting: i64 = sqlx::query_scalar("insert into realtime.overflow (payload) values ('{\"waiting\": true}') returning id")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    werkfunk_server::db::MIGRATOR.run(&mut conn).await.expect("0000 and 0012 apply on top");

    let kept: serde_json::Value = sqlx::query_scalar("select payload from werkfunk_realtime.overflow where id = $1")
        .bind(waiting)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(kept, serde_json::json!({"waiting": true}));
    let realtime: Option<String> =
        sqlx::query_scalar("select to_regnamespace('realtime')::text").fetch_one(&mut conn).await.unwrap();
    assert_eq!(realtime, None);

    // The capture triggers still fire, and a large change lands in the moved overflow table.
    let mut listener = sqlx::postgres::PgListener::connect(&url).await.unwrap();
    listener.listen("werkfunk_changes").await.unwrap();
    let small: uuid::Uuid = sqlx::query_scalar("insert into public.conversations (type) values ('group') returning id")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let large: uuid::Uuid = sqlx::query_scalar(
        "insert into public.conversations (type, meta) values ('group', jsonb_build_object('x', repeat('a', 9000))) returning id",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let first: serde_json::Value = serde_json::from_str(listener.recv().await.unwrap().payload()).unwrap();
    assert_eq!(first["record"]["id"], serde_json::json!(small));
    let second: serde_json::Value = serde_json::from_str(listener.recv().await.unwrap().payload()).unwrap();
    let overflow = second["overflow"].as_i64().expect("a large change goes through the overflow table");
    let stored: serde_json::Value = sqlx::query_scalar("select payload from werkfunk_realtime.overflow where id = $1")
        .bind(overflow)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored["record"]["id"], serde_json::json!(large));
    listener.unlisten_all().await.ok();
    conn.close().await.ok();
    sqlx::query(&format!("drop database {name} with (force)")).execute(probe.pool()).await.unwrap();
}
