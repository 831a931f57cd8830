//! A request dropped while its transaction begins must not leave its connection inside that
//! transaction for the next request (RELIABILITY.md, bug 2: a client's messages stored out of
//! order after it was killed mid-send).
//!
//! A proxy between the pool and Postgres holds back Postgres's answer to `BEGIN`, so the drop
//! lands exactly where it did in the field: `BEGIN` has reached Postgres, sqlx has not read
//! the answer. Everything else is real: the cluster, the pool (as the server builds it),
//! `db::begin`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use werkfunk_server::db;
use werkfunk_testkit::TestDb;

/// Forwards one port to Postgres. Once armed, the next `BEGIN` a client sends sets `hold`;
/// while `hold` is true, Postgres's answers wait in the proxy.
struct HoldingProxy {
    addr: SocketAddr,
    armed: Arc<AtomicBool>,
    hold: Arc<watch::Sender<bool>>,
}

impl HoldingProxy {
    async fn start(upstream: SocketAddr) -> HoldingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let (hold, held) = watch::channel(false);
        let (armed, hold) = (Arc::new(AtomicBool::new(false)), Arc::new(hold));
        let (arm, holder) = (armed.clone(), hold.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(upstream).await.expect("connect to Postgres");
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let (arm, holder) = (arm.clone(), holder.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match client_read.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        // Held before it is passed on, so its answer cannot slip through.
                        if buf[..n].windows(6).any(|w| w == b"BEGIN\0") && arm.swap(false, Ordering::SeqCst) {
                            holder.send_replace(true);
                        }
                        if server_write.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
                let mut held = held.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match server_read.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        // Whatever arrived while held is passed on only once released.
                        if held.wait_for(|h| !*h).await.is_err() {
                            return;
                        }
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        HoldingProxy { addr, armed, hold }
    }
}

/// The `host:port` of `postgres://role@host:port/db`.
fn postgres_addr(url: &str) -> SocketAddr {
    let host = url.split_once('@').and_then(|(_, rest)| rest.split_once('/')).expect("postgres://role@host:port/db").0;
    host.parse().expect("host:port")
}

/// The same URL, through `via`.
fn through(url: &str, via: SocketAddr) -> String {
    url.replacen(&postgres_addr(url).to_string(), &via.to_string(), 1)
}

#[tokio::test]
async fn a_request_dropped_inside_begin_leaves_no_transaction_open_for_the_next() {
    let db = TestDb::new().await;
    let proxy = HoldingProxy::start(postgres_addr(&db.url)).await;
    // One connection, so that the next request gets the very connection the dropped one had.
    let pool =
        PgPoolOptions::new().max_connections(1).connect(&through(&db.url, proxy.addr)).await.expect("connect through the proxy");
    sqlx::query("select 1").execute(&pool).await.expect("the connection works");

    // The request's client goes away while `BEGIN` is under way: its future is dropped.
    proxy.armed.store(true, Ordering::SeqCst);
    let dropped = tokio::time::timeout(Duration::from_millis(500), db::begin(&pool)).await;
    assert!(dropped.is_err(), "BEGIN's answer was held back, so the request was still waiting for it");
    assert!(*proxy.hold.borrow(), "the request was dropped after its BEGIN reached Postgres");
    proxy.hold.send_replace(false);

    // A moment on the server's clock, on a connection of its own, after the drop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (after_drop,): (chrono::DateTime<chrono::Utc>,) =
        sqlx::query_as("select clock_timestamp()").fetch_one(db.pool()).await.expect("the server's clock");

    // The next request, on the same connection: its transaction begins after that moment. In
    // the dropped request's transaction, `now()` would be from before it.
    let mut tx = tokio::time::timeout(Duration::from_secs(10), db::begin(&pool))
        .await
        .expect("the next request gets the connection")
        .expect("the next request begins");
    let (began,): (chrono::DateTime<chrono::Utc>,) = sqlx::query_as("select now()").fetch_one(&mut *tx).await.expect("now()");
    assert!(
        began >= after_drop,
        "the next request ran inside the dropped request's transaction: it began at {began}, before the drop was over ({after_drop})"
    );
    tx.rollback().await.expect("rollback");

    // And the connection is sound afterwards: a write in a transaction commits and is seen.
    let mut tx = db::begin(&pool).await.expect("begin");
    sqlx::query("create temporary table probe (n int)").execute(&mut *tx).await.expect("write");
    tx.commit().await.expect("commit");
    sqlx::query("select count(*) from probe").execute(&pool).await.expect("the committed table is there");
}
