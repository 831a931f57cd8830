//! `werkfunk-server`: the Werkfunk backend.
//!
//! One process speaks three of Supabase's protocols over one Postgres: GoTrue's auth
//! ([`auth`], `/auth/v1`), PostgREST ([`rest`], `/rest/v1`) and Realtime's Phoenix
//! channels ([`realtime`], `/realtime/v1`). Every data request runs as the caller's database role with the caller's claims
//! ([`db::begin_as`]), so the schema's row-level security decides who sees what.
//!
//! [`app`] builds the router from an [`AppState`]; [`start`] binds, serves and hands back a
//! [`Running`] server that tests and the binary stop the same way.

pub mod auth;
pub mod caller;
pub mod config;
pub mod db;
pub mod error;
pub mod jwt;
pub mod realtime;
pub mod rest;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderName, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower_http::cors::CorsLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use config::Config;
use jwt::Keys;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub keys: Keys,
    pub config: Arc<Config>,
    /// The `public` schema as introspected at start.
    pub schema: Arc<rest::Schema>,
    pub realtime: Arc<realtime::Realtime>,
    /// The bounded argon2 pool (`Config::auth`).
    pub hashing: Arc<auth::password::Hashing>,
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP surface.
pub fn app(state: AppState) -> Router {
    let body_limit = state.config.max_body_bytes;
    Router::new()
        .route("/health", get(health))
        .nest("/auth/v1", auth::router())
        .nest("/rest/v1", rest::router())
        .nest("/realtime/v1", realtime::router())
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(axum::middleware::from_fn(error::body_limit_in_api_shape))
        .layer(CorsLayer::very_permissive().expose_headers([
            HeaderName::from_static("content-range"),
            HeaderName::from_static("x-supabase-api-version"),
            REQUEST_ID.clone(),
        ]))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            // The path only: query strings may carry an `apikey`.
            tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path())
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
}

async fn health(State(state): State<AppState>) -> StatusCode {
    match sqlx::query("select 1").execute(&state.pool).await {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot connect to the database: {0}")]
    Database(#[source] sqlx::Error),
    #[error("cannot apply the migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot read the schema: {0}")]
    Schema(#[source] sqlx::Error),
    #[error("cannot start the realtime gateway: {0}")]
    Realtime(#[source] sqlx::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
}

/// A server that is accepting connections.
pub struct Running {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    pool: PgPool,
    realtime: Arc<realtime::Realtime>,
}

impl Running {
    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The realtime gateway (for tests that look inside).
    pub fn realtime(&self) -> &Arc<realtime::Realtime> {
        &self.realtime
    }

    /// Stops accepting, closes websockets (going away), drains open requests, closes the pool.
    pub async fn stop(mut self) -> std::io::Result<()> {
        self.realtime.shutdown();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let result = (&mut self.task).await.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        self.realtime.close().await;
        self.pool.close().await;
        result
    }

    /// Waits until `signal` resolves, then stops.
    pub async fn stop_on(self, signal: impl Future<Output = ()>) -> std::io::Result<()> {
        signal.await;
        self.stop().await
    }
}

/// Connects, migrates, introspects, binds and serves.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let pool = PgPoolOptions::new()
        .max_connections(config.pool_size)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&config.database_url)
        .await
        .map_err(StartError::Database)?;
    db::migrate(&pool).await?;
    let schema = rest::Schema::load(&pool).await.map_err(StartError::Schema)?;
    let keys = Keys::new(&config.jwt_secret);
    let realtime =
        realtime::Realtime::start(pool.clone(), keys.clone(), config.realtime.clone()).await.map_err(StartError::Realtime)?;
    let listener = TcpListener::bind(config.listen).await.map_err(|source| StartError::Listen { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen { addr: config.listen, source })?;
    let hashing = Arc::new(auth::password::Hashing::new(config.auth.hash_concurrency, config.auth.hash_queue));
    let state = AppState {
        hashing,
        pool: pool.clone(),
        keys,
        config: Arc::new(config),
        schema: Arc::new(schema),
        realtime: realtime.clone(),
    };
    let (tx, rx) = oneshot::channel::<()>();
    // The client's address reaches handlers (sign-in limits are keyed on it).
    let router = app(state).into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    tracing::info!(%addr, "listening");
    Ok(Running { addr, shutdown: Some(tx), task, pool, realtime })
}
