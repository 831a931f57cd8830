//! Database access on behalf of a caller.
//!
//! Every request that reads or writes application data runs in one transaction whose
//! `role` and `request.jwt.claims` are the caller's (transaction-local `set_config`), so the
//! schema's row-level security decides — the server never re-implements it.

use sqlx::{PgPool, Postgres, Transaction};

use crate::caller::Caller;

/// Begins a transaction as `caller`.
pub async fn begin_as(pool: &PgPool, caller: &Caller) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)")
        .bind(caller.role.as_str())
        .bind(&caller.claims_json)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// The embedded migrations (`migrations/` at the repository root).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Applies the migrations that are not applied yet.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}
