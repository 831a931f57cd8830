//! Row-level security, grants, triggers and RPC functions of the messaging schema, exercised
//! in SQL as the server runs requests: one transaction per caller, with `role` and
//! `request.jwt.claims` set (`TestDb::as_user`, `as_anon`, `as_service`). Every refusal is
//! asserted on its SQLSTATE, the code PostgREST clients see.
//!
//! One test per rule of BRIEF.md ("Schema", "Known traps") and of the issue's item 9.

use std::time::Duration;

use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;
use werkfunk_testkit::TestDb;

type Tx = Transaction<'static, Postgres>;

// SQLSTATEs asserted below.
const INSUFFICIENT_PRIVILEGE: &str = "42501"; // missing grant, RLS WITH CHECK, RPC refusal
const CHECK_VIOLATION: &str = "23514";
const NOT_NULL_VIOLATION: &str = "23502";
const FOREIGN_KEY_VIOLATION: &str = "23503";
const INVALID_PARAMETER_VALUE: &str = "22023";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The SQLSTATE of a database error; panics on anything else (a bug in the test, not a refusal).
fn sqlstate(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(e) => e.code().map(|c| c.into_owned()).unwrap_or_default(),
        other => panic!("expected a database error, got {other:?}"),
    }
}

/// Runs one statement inside a savepoint, so that a refusal leaves `tx` usable. Returns the
/// number of affected rows, or the SQLSTATE of the error.
async fn attempt(tx: &mut Tx, sql: &str) -> Result<u64, String> {
    sqlx::query("savepoint attempt").execute(&mut **tx).await.expect("savepoint");
    match sqlx::query(sql).execute(&mut **tx).await {
        Ok(done) => {
            sqlx::query("release savepoint attempt").execute(&mut **tx).await.expect("release");
            Ok(done.rows_affected())
        }
        Err(e) => {
            sqlx::query("rollback to savepoint attempt").execute(&mut **tx).await.expect("rollback to savepoint");
            Err(sqlstate(&e))
        }
    }
}

/// Asserts that `sql` fails with `code`.
async fn refused(tx: &mut Tx, sql: &str, code: &str) {
    assert_eq!(attempt(tx, sql).await, Err(code.to_owned()), "expected {code} from: {sql}");
}

/// Asserts that `sql` succeeds and touches exactly `rows` rows.
async fn affects(tx: &mut Tx, sql: &str, rows: u64) {
    assert_eq!(attempt(tx, sql).await, Ok(rows), "expected {rows} row(s) from: {sql}");
}

async fn count(tx: &mut Tx, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&mut **tx).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn count_pool(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// `create_conversation` as `owner`, committed.
async fn conversation(db: &TestDb, owner: Uuid, kind: &str, others: &[Uuid]) -> Uuid {
    let mut tx = db.as_user(owner).await;
    let id = create_conversation(&mut tx, kind, others).await.expect("create_conversation");
    tx.commit().await.expect("commit");
    id
}

async fn create_conversation(tx: &mut Tx, kind: &str, others: &[Uuid]) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar("select public.create_conversation($1, $2, $3)")
        .bind(kind)
        .bind(Some("Baustelle"))
        .bind(others)
        .fetch_one(&mut **tx)
        .await
}

/// A text message from `sender` in `conversation`, committed; returns its id.
async fn send(db: &TestDb, sender: Uuid, conversation: Uuid, content: &str) -> Uuid {
    let mut tx = db.as_user(sender).await;
    let id =
        sqlx::query_scalar("insert into public.messages (conversation_id, sender_id, content) values ($1, $2, $3) returning id")
            .bind(conversation)
            .bind(sender)
            .bind(content)
            .fetch_one(&mut *tx)
            .await
            .expect("send message");
    tx.commit().await.expect("commit");
    id
}

/// Three users: `a` owns a group with member `b`; `c` is an outsider.
struct Trio {
    a: Uuid,
    b: Uuid,
    c: Uuid,
    group: Uuid,
}

async fn trio(db: &TestDb) -> Trio {
    let a = db.user("Anna Maler", "tradesperson").await;
    let b = db.user("Bernd Kunde", "customer").await;
    let c = db.user("Clara Fremd", "customer").await;
    let group = conversation(db, a, "group", &[b]).await;
    Trio { a, b, c, group }
}

// ---------------------------------------------------------------------------------------------
// Outsiders, anon, service_role
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn outsider_reads_nothing_and_writes_nothing() {
    let db = TestDb::new().await;
    let t = trio(&db).await;
    let msg = send(&db, t.a, t.group, "Angebot anbei").await;
    let mut tx = db.as_user(t.b).await;
    sqlx::query("insert into public.typing_indicators (conversation_id, user_id) values ($1, $2)")
        .bind(t.group)
        .bind(t.b)
        .execute(&mut *tx)
        .await
        .expect("member types");
    sqlx::query("insert into public.message_reads (message_id, user_id) values ($1, $2)")
        .bind(msg)
        .bind(t.b)
        .execute(&mut *tx)
        .await
        .expect("member reads");
    tx.commit().await.unwrap();

    let mut tx = db.as_user(t.c).await;
    for table in ["conversations", "conversation_members", "messages", "message_reads", "typing_indicators", "notifications"] {
        assert_eq!(count(&mut tx, &format!("select count(*) from public.{table}")).await, 0, "outsider sees {table}");
    }
    let (g, c, a) = (t.group, t.c, t.a);
    refused(
        &mut tx,
        &format!("insert into public.messages (conversation_id, sender_id, content) values ('{g}', '{c}', 'hallo')"),
        INSUFFICIENT_PRIVILEGE,
    )
    .await;
    refused(
        &mut tx,
        &format!("insert into public.typing_indicators (conversation_id, user_id) values ('{g}', '{c}')"),
        INSUFFICIENT_PRIVILEGE,
    )
    .await;
    refused(
        &mut tx,
        &format!("insert into public.message_reads (message_id, user_id) values ('{msg}', '{c}')"),
        INSUFFICIENT_PRIVILEGE,
    )
    .await;
    refused(
        &mut tx,
        &format!("insert into public.conversation_members (conversation_id, user_id) values ('{g}', '{c}')"),
        INSUFFICIENT_PRIVILEGE,
    )
    .await;
    affects(&mut tx, &format!("update public.messages set content = 'übernommen' where id = '{msg}'"), 0).await;
    affects(&mut tx, &format!("update public.conversations set title = 'übernommen' where id = '{g}'"), 0).await;
    affects(&mut tx, &format!("update public.conversation_members set last_read_at = now() where conversation_id = '{g}'"), 0)
        .await;
    affects(&mut tx, "update public.notifications set read = true", 0).await;
    affects(&mut tx, &format!("delete from public.typing_indicators where conversation_id = '{g}'"), 0).await;
    refused(&mut tx, &format!("select public.add_conversation_members('{g}', array['{c}']::uuid[])"), INSUFFICIENT_PRIVILEGE)
        .await;
    refused(&mut tx, &format!("select public.remove_conversation_member('{g}', '{a}')"), INSUFFICIENT_PRIVILEGE).await;
    assert_eq!(count(&mut tx, &format!("select public.get_unread_message_count('{g}', '{c}')::bigint")).await, 0);
    assert_eq!(count(&mut tx, "select count(*) from public.get_unread_counts()").await, 0);
    affects(&mut tx, &format!("select public.leave_conversation('{g}')"), 1).await;
    tx.commit().await.unwrap();

    // Nothing changed.
    let pool = db.pool();
    assert_eq!(count_pool(pool, "select count(*) from public.messages").await, 1);
    assert_eq!(count_pool(pool, "select count(*) from public.messages where content = 'Angebot anbei'").await, 1);
    assert_eq!(count_pool(pool, "select count(*) from public.conversations where title = 'Baustelle'").await, 1);
    assert_eq!(count_pool(pool, "select count(*) from public.conversation_members").await, 2);
    assert_eq!(count_pool(pool, "select count(*) from public.typing_indicators").await, 1);
}

#[tokio::test]
async fn anon_sees_nothing_and_calls_nothing() {
    let db = TestDb::new().await;
    let t = trio(&db).await;
    send(&db, t.a, t.group, "Hallo").await;
    let mut tx = db.as_anon().await;
    for table in
        ["profiles", "conversations", "conversation_members", "messages", "message_reads", "typing_indicators", "notifications"]
    {
        refused(&mut tx, &format!("select * from public.{table}"), INSUFFICIENT_PRIVILEGE).await;
    }
    refused(
        &mut tx,
        &format!("insert into public.messages (conversation_id, sender_id, content) values ('{}', '{}', 'x')", t.group, t.a),
        INSUFFICIENT_PRIVILEGE,
    )
    .await;
    for call in [
        "select public.create_conversation('group', 'x', '{}')".to_owned(),
        "select public.search_profiles('a')".to_owned(),
        "select * from public.get_unread_counts()".to_owned(),
        format!("select public.get_unread_message_count('{}', '{}')", t.group, t.a),
        format!("select public.leave_conversation('{}')", t.group),
        format!("select private.is_member('{}')", t.group),
    ] {
        refused(&mut tx, &call, INSUFFICIENT_PRIVILEGE).await;
    }
}

#[tokio::test]
async fn service_role_sees_all() {
    let db = TestDb::new().await;
    let t = trio(&db).await;
    let other = conversation(&db, t.c, "project", &[t.b]).await;
    send(&db, t.a, t.group, "eins").await;
    send(&db, t.c, other, "zwei").await;
    let mut tx = db.as_service().await;
    for table in ["profiles", "conversations", "conversation_members", "messages", "notifications"] {
        let sql = format!("select count(*) from public.{table}");
        let all = count_pool(db.pool(), &sql).await;
        assert!(all > 0, "{table} is empty");
        assert_eq!(count(&mut tx, &sql).await, all, "service_role misses rows of {table}");
    }
    // It acts for nobody: the RPC functions that act for a user refuse it.
    refused(&mut tx, "select public.create_conversation('group', 'x', '{}')", INSUFFICIENT_PRIVILEGE).await;
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn members_read_without_policy_recursion() {
    // The seed's "Members can view participants" read conversation_members inside its own
    // policy: "infinite recursion detected in policy" (42P17) on every query touching members.
    let db = TestDb::new().await;
    let t = trio(&db).await;
    send(&db, t.b, t.group, "Wann kommen Sie?").await;
    let mut tx = db.as_user(t.a).await;
    assert_eq!(count(&mut tx, "select count(*) from public.conversation_members").await, 2);
    assert_eq!(count(&mut tx, "select count(*) from public.conversations").await, 1);
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select m.content, p.full_name from public.messages m join public.profiles p on p.id = m.sender_id
         where m.conversation_id in (select cm.conversation_id from public.conversation_members cm)",
    )
    .fetch_all(&mut *tx)
    .await
    .expect("messages with senders");
    assert_eq!(rows, vec![("Wann kommen Sie?".to_owned(), "Bernd Kunde".to_owned())]);
}

#[tokio::test]
async fn nobody_posts_as_someone_else() {
    let db = TestDb::new().await;
    let t = trio(&db).await;
    let mut tx = db.as_user(t.b).await;
    refused(
        &mut tx,
        &format!(
            "insert into public.messages (conversation_id, sender_id, content) values ('{}', '{}', 'gefälscht')",
            t.group, t.a
        ),
        INSUFFICIENT_PRIVILEGE,
    )
    .await;
    // Omitting sender_id makes the caller the sender.
    let sender: Uuid =
        sqlx::query_scalar("insert into public.messages (conversation_id, content) values ($1, 'echt') returning sender_id")
            .bind(t.group)
            .fetch_one(&mut *tx)
            .await
            .expect("insert with default sender");
    assert_eq!(sender, t.b);
}

#[tokio::test]
async fn nobody_edits_another_members_message() {
    let db = TestDb::new().await;
    let t = trio(&db).await;
    let msg = send(&db, t.a, t.group, "Original").await;
    let mut tx = db.as_user(t.b).await;
    affects(&mut tx, &format!("update public.messages set content = 'geändert' where id = '{msg}'"), 0).await;
    affects(&mut tx, &format!("update public.messages set deleted_at = now() where id = '{msg}'"), 0).await;
    refused(&mut tx, &format!("delete from public.messages where id = '{msg}'"), INSUFFICIENT_PRIVILEGE).await;
    tx.commit().await.unwrap();
    let (content, deleted): (String, bool) =
        sqlx::query_as("select content, deleted_at is not null from public.messages where id = $1")
            .bind(msg)
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!((content.as_str(), deleted), ("Original", false));

    // A sender who left the conversation cannot edit their old messages either.
    let mut tx = db.as_user(t.a).await;
    affects(&mut tx, &format!("select public.leave_conversation('{}')", t.group), 1).await;
    affects(&mut tx, &format!("update public.messages set content = 'nachträglich' where id = '{msg}'"), 0).await;
}

#[tokio::test]
async fn no_update_moves_a_message_into_another_conversation() {
    let db = TestDb::new().await;
    let t = trio(&db).await;
    // b is a member of both; the message must still stay where it was sent.
    let other = conversation(&db, t.c, "group", &[t.b]).await;
    let foreign = conversation(&db, t.c, "direct", &[t.a]).await;
    let msg = send(&db, t.b, t.group, "hier").await;
    let mut tx = db.as_user(t.b).await;
    for target in [other, foreign] {
        refused(
            &mut tx,
            &format!("update public.messages set conversation_id = '{target}' where id = '{msg}'"),
            INSUFFICIENT_PRIVILEGE,
        )
        .await;
    }
    tx.commit().await.unwrap();
    let conversation_id: Uuid = sqlx::query_scalar("select conversation_id from public.messages where id = $1")
        .bind(msg)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(conversation_id, t.group);
}

#[tokio::test]
async fn sender_changes_only_content_and_deleted_at() {
    let db = TestDb::new().await;
    let t = trio(&db).await;
    let msg = send(&db, t.b, t.group, "Tippfehler").await;
    let mut tx = db.as_user(t.b).await;
    for assignment in [
        format!("sender_id = '{}'", t.a),
        format!("conversation_id = '{}'", t.group),
        "created_at = now() - interval '1 day'".to_owned(),
        "updated_at = now()".to_owned(),
        "type = 'system'".to_owned(),
        "meta = '{\"x\":1}'".to_owned(),
        format!("id = '{}'", Uuid::new_v4()),
    ] {
        refused(&mut tx, &format!("update public.messages set {assignment} where id = '{msg}'"), INSUFFICIENT_PRIVILEGE).await;
    }
    tx.commit().await.unwrap();

    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut tx = db.as_user(t.b).await;
    affects(&mut tx, &format!("update public.messages set content = 'Korrigiert' where id = '{msg}'"), 1).await;
    let moved: bool = sqlx::query_scalar("select updated_at > created_at from public.messages where id = $1")
        .bind(msg)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert!(moved, "updated_at moves on every update");
    // Soft delete: stamped with the server's time, the text cleared (kept only in the
    // service_role archive, migration 0008), and final.
    affects(&mut tx, &format!("update public.messages set deleted_at = '2000-01-01' where id = '{msg}'"), 1).await;
    let (content, stamped): (String, bool) =
        sqlx::query_as("select content, deleted_at > now() - interval '1 minute' from public.messages where id = $1")
            .bind(msg)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!((content.as_str(), stamped), ("", true));
    affects(&mut tx, &format!("update public.messages set deleted_at = now() where id = '{msg}'"), 1).await;
    refused(&mut tx, &format!("update public.messages set deleted_at = null where id = '{msg}'"), CHECK_VIOLATION).await;
    refused(&mut tx, &format!("update public.messages set content = 'weg' where id = '{msg}'"), CHECK_VIOLATION).await;
}

#[tokio::test]
async fn message_content_and_type_are_checked() {
    let db = TestDb::new().await;
    let t = trio(&db).await;
    let mut tx = db.as_user(t.b).await;
    let insert = |content: &str, kind: &str| {
        format!(
            "insert into public.messages (conversation_id, sender_id, content, type) values ('{}', '{}', {content}, {kind})",
            t.group, t.b
        )
    };
    refused(&mut tx, &insert("''", "'text'"), CHECK_VIOLATION).await;
    refused(&mut tx, &insert("E'  \\n\\t '", "'text'"), CHECK_VIOLATION).await;
    refused(&mut tx, &insert("repeat('x', 10001)", "'text'"), CHECK_VIOLATION).await;
    refused(&mut tx, &insert("'x'", "'video'"), CHECK_VIOLATION).await;
    refused(&mut tx, &insert("''", "null"), NOT_NULL_VIOLATION).await;
    refused(&mut tx, &insert("null", "'text'"), NOT_NULL_VIOLATION).await;
    affects(&mut tx, &insert("repeat('x', 10000)", "'text'"), 1).await;
    affects(&mut tx, &insert("''", "'image'"), 1).await;
    // (This transaction bumped the conversation and holds its row until it ends.)
    tx.rollback().await.unwrap();
    // Editing into an empty text is refused as well.
    let msg = send(&db, t.a, t.group, "voll").await;
    let mut tx = db.as_user(t.a).await;
    refused(&mut tx, &format!("update public.messages set content = ' ' where id = '{msg}'"), CHECK_VIOLATION).await;
}

#[tokio::test]
async fn created_at_is_the_servers() {
    let db = TestDb::new().await;
    let t = trio(&db).await;
    // authenticated may not even name it ...
    let mut tx = db.as_user(t.b).await;
    refused(
        &mut tx,
        &format!("insert into public.messages (conversation_id, sender_id, content, created_at) values ('{}', '{}', 'x', '2000-01-01')", t.group, t.b),
        INSUFFICIENT_PRIVILEGE,
    )
    .await;
    // ... and whoever may gets the server's time anyway.
    let id = Uuid::now_v7();
    let mut tx = db.as_service().await;
    let recent: bool = sqlx::query_scalar(
        "insert into public.messages (id, conversation_id, sender_id, content, created_at) values ($1, $2, $3, 'x', '2000-01-01')
         returning created_at > now() - interval '1 minute'",
    )
    .bind(id)
    .bind(t.group)
    .bind(t.b)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert!(recent);
    // The client's id is kept (the outbox's idempotency key).
    assert_eq!(count(&mut tx, &format!("select count(*) from public.messages where id = '{id}'")).await, 1);
}

// ---------------------------------------------------------------------------------------------
// Memberships
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn member_changes_only_last_read_at_of_own_membership() {
    let db = TestDb::new().await;
    let t = trio(&db).await;
    let (g, a, b) = (t.group, t.a, t.b);
    let mut tx = db.as_user(b).await;
    for assignment in [
        "role = 'owner'".to_owned(),
        "joined_at = now() - interval '1 year'".to_owned(),
        format!("user_id = '{}'", t.c),
        format!("conversation_id = '{}'", Uuid::new_v4()),
    ] {
        refused(
            &mut tx,
            &format!("update public.conversation_members set {assignment} where user_id = '{b}'"),
            INSUFFICIENT_PRIVILEGE,
        )
        .await;
    }
    refused(&mut tx, &format!("delete from public.conversation_members where user_id = '{b}'"), INSUFFICIENT_PRIVILEGE).await;
    // Someone else's membership: invisible to UPDATE.
    affects(&mut tx, &format!("update public.conversation_members set last_read_at = now() where user_id = '{a}'"), 0).await;
    affects(
        &mut tx,
        &format!("update public.conversation_members set last_read_at = now() where user_id = '{b}' and conversation_id = '{g}'"),
        1,
    )
    .await;
    tx.commit().await.unwrap();
    let roles: Vec<(Uuid, String)> =
        sqlx::query_as("select user_id, role from public.conversation_members where conversation_id = $1 order by role desc")
            .bind(g)
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(roles, vec![(a, "owner".to_owned()), (b, "member".to_owned())]);
}

#[tokio::test]
async fn last_read_at_never_moves_backwards_or_into_the_future() {
    let db = TestDb::new().await;
    let t = trio(&db).await;
    let own = format!("user_id = '{}' and conversation_id = '{}'", t.b, t.group);
    let mut tx = db.as_user(t.b).await;
    let before: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar(&format!("select last_read_at from public.conversation_members where {own}"))
            .fetch_one(&mut *tx)
            .await
            .unwrap();

    // Backwards: kept.
    affects(&mut tx, &format!("update public.conversation_members set last_read_at = '2000-01-01' where {own}"), 1).await;
    let after: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar(&format!("select last_read_at from public.conversation_members where {own}"))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(after, before);

    // Into the future: clamped to now.
    affects(&mut tx, &format!("update public.conversation_members set last_read_at = now() + interval '1 day' where {own}"), 1)
        .await;
    let not_future: bool = sqlx::query_scalar(&format!(
        "select last_read_at <= now() and last_read_at >= $1 from public.conversation_members where {own}"
    ))
    .bind(before)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert!(not_future);

    // NULL does not reset it either.
    affects(&mut tx, &format!("update public.conversation_members set last_read_at = null where {own}"), 1).await;
    assert_eq!(
        count(&mut tx, &format!("select count(*) from public.conversation_members where {own} and last_read_at is not null"))
            .await,
        1
    );
}

#[tokio::test]
async fn plain_member_message_bumps_conversation_updated_at() {
    let db = TestDb::new().await;
    let t = trio(&db).await;
    // Put the conversation an hour in the past (triggers off, so set_updated_at keeps out).
    let mut admin = db.pool().begin().await.unwrap();
    sqlx::query("set local session_replication_role = replica").execute(&mut *admin).await.unwrap();
    sqlx::query("update public.conversations set updated_at = now() - interval '1 hour' where id = $1")
        .bind(t.group)
        .execute(&mut *admin)
        .await
        .unwrap();
    admin.commit().await.unwrap();

    send(&db, t.b, t.group, "Ich bin nur Mitglied").await;
    let bumped: bool =
        sqlx::query_scalar("select updated_at > now() - interval '1 minute' from public.conversations where id = $1")
            .bind(t.group)
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert!(bumped, "a plain member's message must move the conversation up");
    // ... although the member itself may not update the conversation.
    let mut tx = db.as_user(t.b).await;
    affects(&mut tx, &format!("update public.conversations set title = 'neu' where id = '{}'", t.group), 0).await;
    refused(
        &mut tx,
        &format!("update public.conversations set updated_at = now() where id = '{}'", t.group),
        INSUFFICIENT_PRIVILEGE,
    )
    .await;
    let mut tx = db.as_user(t.a).await;
    affects(
        &mut tx,
        &format!("update public.conversations set title = 'Dach', meta = '{{\"job\":1}}' where id = '{}'", t.group),
        1,
    )
    .await;
    refused(
        &mut tx,
        &format!("update public.conversations set type = 'direct' where id = '{}'", t.group),
        INSUFFICIENT_PRIVILEGE,
    )
    .await;
    refused(&mut tx, "insert into public.conversations (type) values ('group')", INSUFFICIENT_PRIVILEGE).await;
}

// ---------------------------------------------------------------------------------------------
// Notifications, profiles, typing, read receipts
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn notifications_stay_private() {
    let db = TestDb::new().await;
    let a = db.user("Anna", "tradesperson").await;
    let b = db.user("Bernd", "customer").await;
    let c = db.user("Clara", "customer").await;
    let group = conversation(&db, a, "group", &[b, c]).await;
    let long = "x".repeat(150);
    send(&db, b, group, &long).await;

    // Everyone but the sender got exactly one, in the seed's shape.
    let mut tx = db.as_user(a).await;
    let (user_id, kind, title, body, link): (Uuid, String, String, String, String) =
        sqlx::query_as("select user_id, type, title, body, link from public.notifications")
            .fetch_one(&mut *tx)
            .await
            .expect("one notification");
    assert_eq!(user_id, a);
    assert_eq!((kind.as_str(), title.as_str()), ("message", "Neue Nachricht"));
    assert_eq!(body, "x".repeat(100));
    assert_eq!(link, format!("/conversations/{group}"));
    let own: Uuid = sqlx::query_scalar("select id from public.notifications").fetch_one(&mut *tx).await.unwrap();
    affects(&mut tx, &format!("update public.notifications set read = true where id = '{own}'"), 1).await;
    refused(&mut tx, &format!("update public.notifications set title = 'x' where id = '{own}'"), INSUFFICIENT_PRIVILEGE).await;
    refused(&mut tx, &format!("update public.notifications set user_id = '{b}' where id = '{own}'"), INSUFFICIENT_PRIVILEGE)
        .await;
    refused(&mut tx, &format!("delete from public.notifications where id = '{own}'"), INSUFFICIENT_PRIVILEGE).await;
    refused(
        &mut tx,
        &format!("insert into public.notifications (user_id, type, title) values ('{c}', 'system', 'Spam')"),
        INSUFFICIENT_PRIVILEGE,
    )
    .await;
    // Clara's notification is not Anna's business.
    affects(&mut tx, &format!("update public.notifications set read = true where user_id = '{c}'"), 0).await;
    tx.commit().await.unwrap();

    let mut tx = db.as_user(b).await;
    assert_eq!(count(&mut tx, "select count(*) from public.notifications").await, 0, "the sender is not notified");
    let mut tx = db.as_user(c).await;
    assert_eq!(count(&mut tx, "select count(*) from public.notifications where not read").await, 1);
    assert_eq!(count_pool(db.pool(), "select count(*) from public.notifications").await, 2);
}

#[tokio::test]
async fn profiles_are_public_to_signed_in_users_and_editable_only_by_their_owner() {
    let db = TestDb::new().await;
    let t = trio(&db).await;
    let mut tx = db.as_user(t.c).await;
    assert_eq!(count(&mut tx, "select count(*) from public.profiles").await, 3);
    affects(
        &mut tx,
        &format!("update public.profiles set full_name = 'Clara F.', avatar_url = 'https://x.test/c.png' where id = '{}'", t.c),
        1,
    )
    .await;
    refused(&mut tx, &format!("update public.profiles set role = 'tradesperson' where id = '{}'", t.c), INSUFFICIENT_PRIVILEGE)
        .await;
    refused(
        &mut tx,
        &format!("update public.profiles set id = '{}' where id = '{}'", Uuid::new_v4(), t.c),
        INSUFFICIENT_PRIVILEGE,
    )
    .await;
    refused(&mut tx, &format!("update public.profiles set full_name = null where id = '{}'", t.c), NOT_NULL_VIOLATION).await;
    affects(&mut tx, &format!("update public.profiles set full_name = 'gehackt' where id = '{}'", t.a), 0).await;
    refused(&mut tx, &format!("delete from public.profiles where id = '{}'", t.c), INSUFFICIENT_PRIVILEGE).await;
    refused(&mut tx, &format!("insert into public.profiles (id) values ('{}')", Uuid::new_v4()), INSUFFICIENT_PRIVILEGE).await;
}

#[tokio::test]
async fn signup_metadata_fills_the_profile() {
    let db = TestDb::new().await;
    let a = db.user("Anna Maler", "tradesperson").await;
    let (name, role): (String, String) =
        sqlx::query_as("select full_name, role from public.profiles where id = $1").bind(a).fetch_one(db.pool()).await.unwrap();
    assert_eq!((name.as_str(), role.as_str()), ("Anna Maler", "tradesperson"));

    let insert =
        "insert into auth.users (email, encrypted_password, raw_user_meta_data) values ($1, 'x', $2::jsonb) returning id";
    let plain: Uuid = sqlx::query_scalar(insert).bind("plain@werkfunk.test").bind("{}").fetch_one(db.pool()).await.unwrap();
    let (name, role): (String, String) = sqlx::query_as("select full_name, role from public.profiles where id = $1")
        .bind(plain)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!((name.as_str(), role.as_str()), ("", "customer"));

    let err = sqlx::query_scalar::<_, Uuid>(insert)
        .bind("admin@werkfunk.test")
        .bind(r#"{"full_name":"Mallory","role":"admin"}"#)
        .fetch_one(db.pool())
        .await
        .expect_err("unknown role refused");
    assert_eq!(sqlstate(&err), INVALID_PARAMETER_VALUE);
    assert!(err.to_string().contains("admin"), "the message names the role: {err}");
}

#[tokio::test]
async fn typing_indicators_are_members_only_and_own_rows_only() {
    let db = TestDb::new().await;
    let t = trio(&db).await;
    let (g, a, b) = (t.group, t.a, t.b);
    let mut tx = db.as_user(b).await;
    refused(
        &mut tx,
        &format!("insert into public.typing_indicators (conversation_id, user_id) values ('{g}', '{a}')"),
        INSUFFICIENT_PRIVILEGE,
    )
    .await;
    // Upsert as PostgREST sends it (merge-duplicates), twice; the time is the server's.
    let upsert = format!(
        "insert into public.typing_indicators (conversation_id, user_id, typing_at) values ('{g}', '{b}', '2100-01-01')
         on conflict (conversation_id, user_id) do update
         set conversation_id = excluded.conversation_id, user_id = excluded.user_id, typing_at = excluded.typing_at"
    );
    affects(&mut tx, &upsert, 1).await;
    affects(&mut tx, &upsert, 1).await;
    assert_eq!(count(&mut tx, "select count(*) from public.typing_indicators where typing_at <= now()").await, 1);
    refused(&mut tx, &format!("update public.typing_indicators set user_id = '{a}'"), INSUFFICIENT_PRIVILEGE).await;
    tx.commit().await.unwrap();

    let mut tx = db.as_user(a).await;
    assert_eq!(count(&mut tx, "select count(*) from public.typing_indicators").await, 1, "members see each other typing");
    affects(&mut tx, &format!("delete from public.typing_indicators where user_id = '{b}'"), 0).await;
    affects(&mut tx, &format!("update public.typing_indicators set typing_at = now() where user_id = '{b}'"), 0).await;
    let mut tx = db.as_user(b).await;
    affects(&mut tx, &format!("delete from public.typing_indicators where user_id = '{b}'"), 1).await;
}

#[tokio::test]
async fn read_receipts_are_members_only_and_own_rows_only() {
    let db = TestDb::new().await;
    let t = trio(&db).await;
    let msg = send(&db, t.a, t.group, "Bitte lesen").await;
    let mut tx = db.as_user(t.b).await;
    refused(
        &mut tx,
        &format!("insert into public.message_reads (message_id, user_id) values ('{msg}', '{}')", t.a),
        INSUFFICIENT_PRIVILEGE,
    )
    .await;
    refused(
        &mut tx,
        &format!("insert into public.message_reads (message_id, user_id, read_at) values ('{msg}', '{}', '2000-01-01')", t.b),
        INSUFFICIENT_PRIVILEGE,
    )
    .await;
    affects(&mut tx, &format!("insert into public.message_reads (message_id, user_id) values ('{msg}', '{}')", t.b), 1).await;
    // A replay is a no-op, not an error.
    affects(
        &mut tx,
        &format!("insert into public.message_reads (message_id, user_id) values ('{msg}', '{}') on conflict do nothing", t.b),
        0,
    )
    .await;
    tx.commit().await.unwrap();
    let mut tx = db.as_user(t.a).await;
    assert_eq!(count(&mut tx, "select count(*) from public.message_reads").await, 1, "the sender sees the receipt");
    let mut tx = db.as_user(t.c).await;
    assert_eq!(count(&mut tx, "select count(*) from public.message_reads").await, 0);
}

// ---------------------------------------------------------------------------------------------
// RPC functions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn simultaneous_direct_conversations_for_the_same_pair_return_one() {
    let db = TestDb::new().await;
    let a = db.user("Anna", "tradesperson").await;
    let b = db.user("Bernd", "customer").await;

    // 1. Deterministic interleaving: a's call holds its transaction open; b's call must wait
    //    for it (on the pair's advisory lock) and then return a's conversation.
    let mut first = db.as_user(a).await;
    let id_a = create_conversation(&mut first, "direct", &[b]).await.unwrap();
    let mut second = db.as_user(b).await;
    let waiting = async {
        let id = create_conversation(&mut second, "direct", &[a]).await.unwrap();
        second.commit().await.unwrap();
        id
    };
    let release = async {
        let mut blocked = 0;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            blocked = count_pool(db.pool(), "select count(*) from pg_locks where locktype = 'advisory' and not granted").await;
            if blocked > 0 {
                break;
            }
        }
        first.commit().await.unwrap();
        blocked
    };
    let (id_b, blocked) = tokio::join!(waiting, release);
    assert_eq!(blocked, 1, "the second call waits for the first");
    assert_eq!(id_a, id_b);

    // 2. Truly simultaneous calls, several pairs.
    for round in 0..5 {
        let x = db.user(&format!("X{round}"), "customer").await;
        let y = db.user(&format!("Y{round}"), "customer").await;
        let mut tx_x = db.as_user(x).await;
        let mut tx_y = db.as_user(y).await;
        let (rx, ry) = tokio::join!(
            async {
                let id = create_conversation(&mut tx_x, "direct", &[y]).await.unwrap();
                tx_x.commit().await.unwrap();
                id
            },
            async {
                let id = create_conversation(&mut tx_y, "direct", &[x]).await.unwrap();
                tx_y.commit().await.unwrap();
                id
            }
        );
        assert_eq!(rx, ry, "round {round}");
    }
    assert_eq!(count_pool(db.pool(), "select count(*) from public.conversations where type = 'direct'").await, 6);
}

#[tokio::test]
async fn create_conversation_rules() {
    let db = TestDb::new().await;
    let t = trio(&db).await;
    let mut tx = db.as_user(t.a).await;
    let (a, b, c) = (t.a, t.b, t.c);
    let call = |kind: &str, members: String| format!("select public.create_conversation('{kind}', null, {members}::uuid[])");
    refused(&mut tx, &call("chat", format!("array['{b}']")), INVALID_PARAMETER_VALUE).await;
    refused(&mut tx, &call("direct", format!("array['{b}', '{c}']")), INVALID_PARAMETER_VALUE).await;
    refused(&mut tx, &call("direct", format!("array['{a}']")), INVALID_PARAMETER_VALUE).await;
    refused(&mut tx, &call("group", format!("array['{}']", Uuid::new_v4())), FOREIGN_KEY_VIOLATION).await;
    let direct = create_conversation(&mut tx, "direct", &[b]).await.unwrap();
    assert_eq!(
        create_conversation(&mut tx, "direct", &[b, b, a]).await.unwrap(),
        direct,
        "a direct conversation is not duplicated"
    );
    let roles: Vec<(Uuid, String)> =
        sqlx::query_as("select user_id, role from public.conversation_members where conversation_id = $1 order by role desc")
            .bind(direct)
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    assert_eq!(roles, vec![(a, "owner".to_owned()), (b, "member".to_owned())]);
    refused(
        &mut tx,
        &format!("select public.add_conversation_members('{direct}', array['{c}']::uuid[])"),
        INVALID_PARAMETER_VALUE,
    )
    .await;
    tx.commit().await.unwrap();

    // Once one of them has left, a new direct conversation is started.
    let mut tx = db.as_user(b).await;
    affects(&mut tx, &format!("select public.leave_conversation('{direct}')"), 1).await;
    tx.commit().await.unwrap();
    let mut tx = db.as_user(a).await;
    assert_ne!(create_conversation(&mut tx, "direct", &[b]).await.unwrap(), direct);
}

#[tokio::test]
async fn add_and_remove_members_need_owner_or_admin() {
    let db = TestDb::new().await;
    let t = trio(&db).await;
    let d = db.user("Dieter", "customer").await;
    let (g, a, b, c) = (t.group, t.a, t.b, t.c);
    let mut tx = db.as_user(b).await;
    refused(&mut tx, &format!("select public.add_conversation_members('{g}', array['{c}']::uuid[])"), INSUFFICIENT_PRIVILEGE)
        .await;
    let mut tx = db.as_user(a).await;
    affects(&mut tx, &format!("select public.add_conversation_members('{g}', array['{c}', '{d}', '{b}']::uuid[])"), 1).await;
    refused(
        &mut tx,
        &format!("select public.add_conversation_members('{g}', array['{}']::uuid[])", Uuid::new_v4()),
        FOREIGN_KEY_VIOLATION,
    )
    .await;
    affects(&mut tx, &format!("select public.remove_conversation_member('{g}', '{d}')"), 1).await;
    refused(&mut tx, &format!("select public.remove_conversation_member('{g}', '{a}')"), INSUFFICIENT_PRIVILEGE).await;
    tx.commit().await.unwrap();
    assert_eq!(
        count_pool(db.pool(), &format!("select count(*) from public.conversation_members where conversation_id = '{g}'")).await,
        3
    );

    // An admin may remove members, but not the owner.
    sqlx::query("update public.conversation_members set role = 'admin' where user_id = $1 and conversation_id = $2")
        .bind(b)
        .bind(g)
        .execute(db.pool())
        .await
        .unwrap();
    let mut tx = db.as_user(b).await;
    refused(&mut tx, &format!("select public.remove_conversation_member('{g}', '{a}')"), INSUFFICIENT_PRIVILEGE).await;
    affects(&mut tx, &format!("select public.remove_conversation_member('{g}', '{c}')"), 1).await;
    tx.commit().await.unwrap();
    let mut tx = db.as_user(c).await;
    assert_eq!(count(&mut tx, "select count(*) from public.conversations").await, 0, "a removed member sees nothing");
}

#[tokio::test]
async fn leave_conversation_transfers_ownership() {
    let db = TestDb::new().await;
    let owner = db.user("Olga", "tradesperson").await;
    let early_member = db.user("Emil", "customer").await;
    let old_admin = db.user("Ada", "customer").await;
    let new_admin = db.user("Nina", "customer").await;
    let group = conversation(&db, owner, "project", &[early_member, old_admin, new_admin]).await;
    let set = |user: Uuid, role: &str, hours_ago: i32| {
        sqlx::query("update public.conversation_members set role = $1, joined_at = now() - make_interval(hours => $2) where user_id = $3 and conversation_id = $4")
            .bind(role.to_owned())
            .bind(hours_ago)
            .bind(user)
            .bind(group)
    };
    set(early_member, "member", 3).execute(db.pool()).await.unwrap();
    set(old_admin, "admin", 2).execute(db.pool()).await.unwrap();
    set(new_admin, "admin", 1).execute(db.pool()).await.unwrap();
    let db = &db;
    let role_of = |user: Uuid| async move {
        sqlx::query_scalar::<_, String>(
            "select role from public.conversation_members where user_id = $1 and conversation_id = $2",
        )
        .bind(user)
        .bind(group)
        .fetch_optional(db.pool())
        .await
        .unwrap()
    };
    let leave = |user: Uuid| async move {
        let mut tx = db.as_user(user).await;
        affects(&mut tx, &format!("select public.leave_conversation('{group}')"), 1).await;
        tx.commit().await.unwrap();
    };

    // A member leaving changes no roles.
    leave(new_admin).await;
    assert_eq!(role_of(owner).await.as_deref(), Some("owner"));
    // The owner leaves: the longest-standing admin takes over (not the older plain member).
    leave(owner).await;
    assert_eq!(role_of(owner).await, None);
    assert_eq!(role_of(old_admin).await.as_deref(), Some("owner"));
    assert_eq!(role_of(early_member).await.as_deref(), Some("member"));
    // No admin left: the longest-standing member takes over.
    let late = db.user("Lena", "customer").await;
    let mut tx = db.as_user(old_admin).await;
    affects(&mut tx, &format!("select public.add_conversation_members('{group}', array['{late}']::uuid[])"), 1).await;
    tx.commit().await.unwrap();
    leave(old_admin).await;
    assert_eq!(role_of(early_member).await.as_deref(), Some("owner"));
    assert_eq!(role_of(late).await.as_deref(), Some("member"));
    assert_eq!(
        count_pool(
            db.pool(),
            &format!("select count(*) from public.conversation_members where conversation_id = '{group}' and role = 'owner'")
        )
        .await,
        1
    );
}

#[tokio::test]
async fn unread_counts_are_the_callers_only() {
    let db = TestDb::new().await;
    let t = trio(&db).await;
    let quiet = conversation(&db, t.a, "group", &[t.b]).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    send(&db, t.b, t.group, "eins").await;
    send(&db, t.b, t.group, "zwei").await;
    let deleted = send(&db, t.b, t.group, "drei").await;
    send(&db, t.a, t.group, "eigene zählt nicht").await;
    let mut tx = db.as_user(t.b).await;
    affects(&mut tx, &format!("update public.messages set deleted_at = now() where id = '{deleted}'"), 1).await;
    tx.commit().await.unwrap();

    let mut tx = db.as_user(t.a).await;
    let own = format!("select public.get_unread_message_count('{}', '{}')::bigint", t.group, t.a);
    assert_eq!(count(&mut tx, &own).await, 2);
    refused(&mut tx, &format!("select public.get_unread_message_count('{}', '{}')", t.group, t.b), INSUFFICIENT_PRIVILEGE).await;
    let mut all: Vec<(Uuid, i32)> =
        sqlx::query_as("select conversation_id, unread_count from public.get_unread_counts()").fetch_all(&mut *tx).await.unwrap();
    all.sort();
    let mut expected = vec![(t.group, 2), (quiet, 0)];
    expected.sort();
    assert_eq!(all, expected, "zero counts included");
    // Marking read clears it.
    affects(
        &mut tx,
        &format!(
            "update public.conversation_members set last_read_at = now() where user_id = '{}' and conversation_id = '{}'",
            t.a, t.group
        ),
        1,
    )
    .await;
    assert_eq!(count(&mut tx, &own).await, 0);
}

#[tokio::test]
async fn search_profiles_caps_at_20_and_escapes_wildcards() {
    let db = TestDb::new().await;
    for i in 0..25 {
        db.user(&format!("Maler {i:02}"), "tradesperson").await;
    }
    let percent = db.user("100% Handwerk", "tradesperson").await;
    db.user("1000 Handwerk", "tradesperson").await;
    let underscore = db.user("Fliesen_Meister", "tradesperson").await;
    db.user("FliesenXMeister", "tradesperson").await;
    let searcher = db.user("Kundin", "customer").await;

    let mut tx = db.as_user(searcher).await;
    let names: Vec<String> =
        sqlx::query_scalar("select full_name from public.search_profiles($1)").bind("maler").fetch_all(&mut *tx).await.unwrap();
    assert_eq!(names.len(), 20);
    assert_eq!(names, (0..20).map(|i| format!("Maler {i:02}")).collect::<Vec<_>>(), "ordered by name");

    let ids = |query: &'static str| sqlx::query_scalar::<_, Uuid>("select id from public.search_profiles($1)").bind(query);
    assert_eq!(ids("100%").fetch_all(&mut *tx).await.unwrap(), vec![percent]);
    assert_eq!(ids("n_m").fetch_all(&mut *tx).await.unwrap(), vec![underscore]);
    assert!(ids("\\").fetch_all(&mut *tx).await.unwrap().is_empty());
    let mut anon = db.as_anon().await;
    refused(&mut anon, "select * from public.search_profiles('Maler')", INSUFFICIENT_PRIVILEGE).await;
}

// ---------------------------------------------------------------------------------------------
// Realtime and the catalog
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn realtime_publication_and_embedding_are_set_up() {
    let db = TestDb::new().await;
    let mut tables: Vec<String> = sqlx::query_scalar(
        "select tablename::text from pg_publication_tables where pubname = 'supabase_realtime' and schemaname = 'public'",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    tables.sort();
    assert_eq!(tables, ["conversation_members", "conversations", "messages", "notifications", "typing_indicators"]);
    // DELETE old_record must carry conversation_id.
    for table in ["messages", "conversation_members"] {
        let identity: i8 = sqlx::query_scalar("select relreplident::\"char\" from pg_class where oid = $1::regclass")
            .bind(format!("public.{table}"))
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(identity as u8, b'f', "{table} has replica identity full");
    }
    // Exactly one foreign key per user column, to profiles: `sender:sender_id(...)` is unambiguous.
    for (table, column) in [("messages", "sender_id"), ("conversation_members", "user_id"), ("notifications", "user_id")] {
        let targets: Vec<String> = sqlx::query_scalar(
            "select confrelid::regclass::text from pg_constraint c
             where c.contype = 'f' and c.conrelid = $1::regclass
               and c.conkey = array[(select attnum from pg_attribute where attrelid = $1::regclass and attname = $2)]",
        )
        .bind(format!("public.{table}"))
        .bind(column)
        .fetch_all(db.pool())
        .await
        .unwrap();
        assert_eq!(targets, ["profiles"], "{table}.{column}");
    }
}
