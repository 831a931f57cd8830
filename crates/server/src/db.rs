//! Database access on behalf of a caller.
//!
//! Every request that reads or writes application data runs in one transaction whose
//! `role` and `request.jwt.claims` are the caller's (transaction-local `set_config`), so the
//! schema's row-level security decides — the server never re-implements it. The role's own
//! `statement_timeout` (`alter role … set`, which Postgres applies only at login) is applied
//! to the transaction too, as PostgREST does. A user's token whose session has ended (signed
//! out, here or on another device, or its user deleted) is refused here, where PostgREST
//! would let it read until it expires: "sign out everywhere" must lock a lost laptop out.

use sqlx::{PgPool, Postgres, Transaction};

use crate::caller::Caller;

/// The transaction settings of a request — role, claims, and the role's `statement_timeout`
/// from `pg_db_role_setting` (this database's setting first, then the cluster-wide one) —
/// and, its one column read, whether the token's session (`$3`, `session_id`; none for API
/// keys) still exists. The privileges for `auth.sessions` are checked when the statement
/// starts, as the server's own role, before `role` is set.
const BEGIN_AS: &str = "select $3::uuid is null or exists (select 1 from auth.sessions where id = $3::uuid),
       set_config('role', $1, true), set_config('request.jwt.claims', $2, true),
       set_config('statement_timeout', coalesce(
         (select substr(c, length('statement_timeout=') + 1)
            from pg_catalog.pg_db_role_setting s, unnest(s.setconfig) c
           where s.setrole = (select oid from pg_catalog.pg_roles where rolname = $1)
             and s.setdatabase in (0, (select oid from pg_catalog.pg_database where datname = current_database()))
             and c like 'statement_timeout=%'
           order by s.setdatabase desc
           limit 1),
         current_setting('statement_timeout')), true)";

/// Why a transaction as a caller did not begin.
#[derive(Debug, thiserror::Error)]
pub enum BeginError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// The token is valid, but its session was signed out (here or elsewhere) or its user
    /// deleted: it no longer speaks for anyone.
    #[error("Session from session_id claim in JWT does not exist")]
    SessionEnded,
}

/// Begins a transaction that a cancelled caller cannot leave half open.
///
/// A request whose client goes away is dropped wherever it waits. Dropped inside sqlx's
/// `begin()` — after Postgres ran `BEGIN`, before sqlx knew — the connection went back to
/// the pool inside that transaction: the next request on it ran its `BEGIN` as a no-op, in
/// the old transaction (its `now()`, so a message's `created_at`, from before; its role and
/// claims until set again). Seen as a client's messages stored out of order after the
/// client was killed mid-send. So `BEGIN` runs in a task of its own, which finishes even when
/// the caller is gone; a `Transaction` that exists is rolled back on drop, as sqlx does.
pub async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let pool = pool.clone();
    match tokio::spawn(async move { pool.begin().await }).await {
        Ok(tx) => tx,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(sqlx::Error::PoolClosed),
    }
}

/// Begins a transaction as `caller`, whose session must still exist.
pub async fn begin_as(pool: &PgPool, caller: &Caller) -> Result<Transaction<'static, Postgres>, BeginError> {
    let mut tx = begin(pool).await?;
    set_caller(&mut tx, caller).await?;
    Ok(tx)
}

/// Begins a read-only transaction as `caller` (`GET /rpc/…`, as PostgREST runs it): a
/// volatile function called that way cannot write (25006, a 405).
pub async fn begin_read_only_as(pool: &PgPool, caller: &Caller) -> Result<Transaction<'static, Postgres>, BeginError> {
    let mut tx = begin(pool).await?;
    sqlx::query("set transaction read only").execute(&mut *tx).await?;
    set_caller(&mut tx, caller).await?;
    Ok(tx)
}

async fn set_caller(tx: &mut Transaction<'static, Postgres>, caller: &Caller) -> Result<(), BeginError> {
    let session_alive: bool = sqlx::query_scalar(BEGIN_AS)
        .bind(caller.role.as_str())
        .bind(&caller.claims_json)
        .bind(caller.session_id)
        .fetch_one(&mut **tx)
        .await?;
    if session_alive {
        Ok(())
    } else {
        Err(BeginError::SessionEnded)
    }
}

/// The embedded migrations (`migrations/` at the repository root).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Applies the migrations that are not applied yet.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}
