//! Databases, servers and users for tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;
use werkfunk_server::jwt::{self, DbRole, Keys};

use crate::cluster::{Cluster, CLUSTER_URL_ENV};

/// The secret every test server signs with.
pub const JWT_SECRET: &str = "werkfunk-test-secret-0123456789-abcdefghijklmnop";

/// With this set to `plain`, every [`TestServer`] runs as a role that is not a superuser: it
/// connects as [`PLAIN_OWNER`] (neither SUPERUSER nor CREATEROLE), the owner of a fresh,
/// empty database that the server migrates itself, after `deploy/roles.sql` — the one-time
/// superuser step — has run. The suites then show that nothing else needs a superuser.
/// ([`TestDb::pool`] stays a superuser's.)
pub const DB_ROLE_ENV: &str = "WERKFUNK_TEST_DB_ROLE";

/// The login role of [`DB_ROLE_ENV`]`=plain` runs.
pub const PLAIN_OWNER: &str = "werkfunk_plain_owner";

fn cluster_base_url() -> String {
    static OWN: OnceLock<Cluster> = OnceLock::new();
    if let Ok(url) = std::env::var(CLUSTER_URL_ENV) {
        return url.trim_end_matches('/').to_owned();
    }
    let cluster = OWN.get_or_init(|| Cluster::start_temporary().expect("start a throwaway Postgres cluster"));
    cluster.url("").trim_end_matches('/').to_owned()
}

fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}_{}_{}_{}", std::process::id(), nanos, N.fetch_add(1, Ordering::Relaxed))
}

async fn admin() -> PgConnection {
    PgConnection::connect(&format!("{}/postgres", cluster_base_url())).await.expect("connect to the test cluster")
}

/// The migrated template of this test binary, created on first use.
async fn template() -> &'static str {
    static TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let name = unique("wf_tpl");
            let mut conn = admin().await;
            conn.execute(format!("create database {name}").as_str()).await.expect("create template database");
            let mut db = PgConnection::connect(&format!("{}/{name}", cluster_base_url())).await.expect("connect to template");
            werkfunk_server::db::MIGRATOR.run(&mut db).await.expect("migrate the template");
            db.close().await.ok();
            name
        })
        .await
}

/// A fresh database with the schema applied.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pool: PgPool,
}

impl TestDb {
    /// A fresh, empty database (no migrations) owned by [`PLAIN_OWNER`]; `url` connects as
    /// that role.
    pub async fn new_plain() -> TestDb {
        let name = unique("wf_plain");
        // One at a time: role DDL of parallel tests would race on the catalogs.
        static SETUP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _guard = SETUP.lock().await;
        let mut conn = admin().await;
        let created = conn.execute(format!("create role {PLAIN_OWNER} login nocreaterole nosuperuser").as_str()).await;
        if let Err(e) = created {
            // Created by a test running beside this one: fine.
            let code = e.as_database_error().and_then(|d| d.code()).map(|c| c.into_owned());
            assert!(matches!(code.as_deref(), Some("42710") | Some("23505")), "create the plain owner role: {e}");
        }
        // The one step that needs a superuser, exactly as an operator runs it (the README,
        // "Database role"): deploy/roles.sql creates the API roles and grants them to the
        // owner. Everything else — the migrations included — runs as the plain owner.
        let superuser_url = format!("{}/postgres", cluster_base_url());
        tokio::task::spawn_blocking(move || crate::cluster::apply_roles_sql(&superuser_url, PLAIN_OWNER))
            .await
            .expect("roles.sql task")
            .expect("deploy/roles.sql as the superuser");
        conn.execute(format!("create database {name} owner {PLAIN_OWNER}").as_str()).await.expect("create the plain database");
        conn.close().await.ok();
        let superuser_url = format!("{}/{name}", cluster_base_url());
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .connect(&superuser_url)
            .await
            .expect("connect to test database");
        let url = superuser_url.replacen("postgres@", &format!("{PLAIN_OWNER}@"), 1);
        TestDb { name, url, pool }
    }

    pub async fn new() -> TestDb {
        let template = template().await;
        let name = unique("wf_test");
        // Copies from one template must not overlap: Postgres refuses a template in use.
        static COPY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        {
            let _guard = COPY.lock().await;
            let mut conn = admin().await;
            conn.execute(format!("create database {name} template {template}").as_str()).await.expect("copy the template");
            conn.close().await.ok();
        }
        let url = format!("{}/{name}", cluster_base_url());
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(8).connect(&url).await.expect("connect to test database");
        TestDb { name, url, pool }
    }

    /// A superuser pool (RLS does not apply to it).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Inserts a user straight into `auth.users` (the profile trigger runs); returns its id.
    pub async fn user(&self, full_name: &str, role: &str) -> Uuid {
        let email = format!("{}@werkfunk.test", unique("u"));
        sqlx::query_scalar(
            "insert into auth.users (email, encrypted_password, raw_user_meta_data, email_confirmed_at)
             values ($1, 'x', jsonb_build_object('full_name', $2::text, 'role', $3::text), now()) returning id",
        )
        .bind(email)
        .bind(full_name)
        .bind(role)
        .fetch_one(&self.pool)
        .await
        .expect("insert user")
    }

    /// A transaction as `user` (role `authenticated`, claims with `sub`), as the server runs requests.
    pub async fn as_user(&self, user: Uuid) -> Transaction<'static, Postgres> {
        self.as_role(DbRole::Authenticated, json!({"sub": user, "role": "authenticated"})).await
    }

    /// A transaction as `anon`.
    pub async fn as_anon(&self) -> Transaction<'static, Postgres> {
        self.as_role(DbRole::Anon, json!({"role": "anon"})).await
    }

    /// A transaction as `service_role`.
    pub async fn as_service(&self) -> Transaction<'static, Postgres> {
        self.as_role(DbRole::ServiceRole, json!({"role": "service_role"})).await
    }

    async fn as_role(&self, role: DbRole, claims: Value) -> Transaction<'static, Postgres> {
        let mut tx = self.pool.begin().await.expect("begin");
        sqlx::query("select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)")
            .bind(role.as_str())
            .bind(claims.to_string())
            .execute(&mut *tx)
            .await
            .expect("set role and claims");
        tx
    }
}

/// A user signed up through `/auth/v1/signup`.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: Uuid,
    pub email: String,
    pub password: String,
    pub name: String,
    pub access_token: String,
    pub refresh_token: String,
}

/// The real server on a free port over a fresh database.
pub struct TestServer {
    /// Shared with [`TestServer::start_peer`]s and servers started again on it.
    pub db: Arc<TestDb>,
    pub url: String,
    pub anon_key: String,
    pub service_key: String,
    pub http: reqwest::Client,
    running: Option<werkfunk_server::Running>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts with a configuration adjusted by `tune` (e.g. a short `jwt_exp`). Runs as a
    /// role that is not a superuser when [`DB_ROLE_ENV`] is `plain`.
    pub async fn start_with(tune: impl FnOnce(&mut werkfunk_server::Config)) -> TestServer {
        let plain = std::env::var(DB_ROLE_ENV).is_ok_and(|v| v == "plain");
        let db = if plain { TestDb::new_plain().await } else { TestDb::new().await };
        Self::start_on(Arc::new(db), tune).await
    }

    /// Another server process's equivalent on the same database (same secret, own port):
    /// for tests of several processes behaving as one.
    pub async fn start_peer(&self) -> TestServer {
        Self::start_on(self.db.clone(), |_| {}).await
    }

    /// A server over an existing database (e.g. after [`TestServer::stop`], to come back).
    pub async fn start_on(db: Arc<TestDb>, tune: impl FnOnce(&mut werkfunk_server::Config)) -> TestServer {
        let mut config = werkfunk_server::Config::new(db.url.clone(), JWT_SECRET).expect("valid test config");
        config.listen = "127.0.0.1:0".parse().expect("address");
        config.pool_size = 16;
        tune(&mut config);
        let running = werkfunk_server::start(config).await.expect("start the server");
        let keys = Keys::new(JWT_SECRET);
        TestServer {
            url: format!("http://{}", running.addr()),
            anon_key: keys.api_key(DbRole::Anon, jwt::now()),
            service_key: keys.api_key(DbRole::ServiceRole, jwt::now()),
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("http client"),
            running: Some(running),
            db,
        }
    }

    /// The signing keys, for forging and expiring tokens in tests.
    pub fn keys(&self) -> Keys {
        Keys::new(JWT_SECRET)
    }

    /// The address the server listens on (to start it again on the same one).
    pub fn addr(&self) -> std::net::SocketAddr {
        self.running.as_ref().expect("running").addr()
    }

    /// Drains and stops the server; the database stays for [`TestServer::start_on`].
    pub async fn stop(mut self) -> Arc<TestDb> {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("server stops cleanly");
        }
        self.db.clone()
    }

    /// A request to `path` (e.g. `/rest/v1/messages`) with the anon key, and `user`'s token if given.
    pub fn request(&self, method: reqwest::Method, path: &str, user: Option<&TestUser>) -> reqwest::RequestBuilder {
        let token = user.map(|u| u.access_token.as_str()).unwrap_or(&self.anon_key);
        self.http.request(method, format!("{}{path}", self.url)).header("apikey", &self.anon_key).bearer_auth(token)
    }

    /// Signs up `name` (role `tradesperson` or `customer`) with a unique email.
    pub async fn signup(&self, name: &str, role: &str) -> TestUser {
        let email = format!("{}@werkfunk.test", unique(&name.to_lowercase().replace(' ', "_")));
        let password = "Sicheres-Passwort-1".to_owned();
        let resp = self
            .request(reqwest::Method::POST, "/auth/v1/signup", None)
            .json(&json!({"email": email, "password": password, "data": {"full_name": name, "role": role}}))
            .send()
            .await
            .expect("signup request");
        let status = resp.status();
        let body: Value = resp.json().await.expect("signup body");
        assert!(status.is_success(), "signup failed: {status} {body}");
        TestUser {
            id: body["user"]["id"].as_str().and_then(|s| s.parse().ok()).expect("user id"),
            email,
            password,
            name: name.to_owned(),
            access_token: body["access_token"].as_str().expect("access token").to_owned(),
            refresh_token: body["refresh_token"].as_str().expect("refresh token").to_owned(),
        }
    }

    /// The most common cast: Alice (a tradesperson) and Bob (a customer) in a direct
    /// conversation; returns both and the conversation id.
    pub async fn alice_and_bob(&self) -> (TestUser, TestUser, Uuid) {
        let alice = self.signup("Alice", "tradesperson").await;
        let bob = self.signup("Bob", "customer").await;
        let conversation = self.conversation("direct", None, &alice, &[&bob]).await;
        (alice, bob, conversation)
    }

    /// `create_conversation` as `owner` with `others`; returns the conversation id.
    pub async fn conversation(&self, kind: &str, title: Option<&str>, owner: &TestUser, others: &[&TestUser]) -> Uuid {
        let ids: Vec<Uuid> = others.iter().map(|u| u.id).collect();
        let resp = self
            .request(reqwest::Method::POST, "/rest/v1/rpc/create_conversation", Some(owner))
            .json(&json!({"p_type": kind, "p_title": title, "p_member_ids": ids}))
            .send()
            .await
            .expect("create_conversation request");
        let status = resp.status();
        let body: Value = resp.json().await.expect("create_conversation body");
        assert!(status.is_success(), "create_conversation failed: {status} {body}");
        body.as_str().and_then(|s| s.parse().ok()).expect("conversation id")
    }
}
