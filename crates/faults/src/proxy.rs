//! A seeded fault-injecting TCP proxy on 127.0.0.1.
//!
//! Each accepted connection draws a [`Fault`] from the proxy's seeded generator (in accept
//! order): none, a cut or a reset after a random number of bytes in one direction (so in the
//! middle of a request body, a response or a websocket frame), a stall of a few seconds at
//! such a point, or a slow trickle of small chunks. [`FaultProxy::partition`] cuts every open
//! connection and refuses new ones for a while. [`FaultProxy::set_rate`] `0.0` turns the
//! per-connection faults off (the quiet phase before checks).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Which way bytes flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client → server (requests, frames the client sends).
    Up,
    /// Server → client (responses, frames the server pushes).
    Down,
}

/// What happens to one connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    None,
    /// Both sides closed (FIN) after `after` bytes went `dir`.
    Cut {
        dir: Direction,
        after: u64,
    },
    /// Both sides reset (RST, linger 0) after `after` bytes went `dir`.
    Reset {
        dir: Direction,
        after: u64,
    },
    /// Nothing moves `dir` for `pause` once `after` bytes went that way.
    Stall {
        dir: Direction,
        after: u64,
        pause: Duration,
    },
    /// Every read is forwarded in chunks of at most `chunk` bytes, `delay` apart.
    Slow {
        chunk: usize,
        delay: Duration,
    },
    /// Bytes going `dir` are read and dropped: the other side waits for an answer that never
    /// comes, while the request itself arrived (a lost response).
    Blackhole {
        dir: Direction,
    },
}

/// Counters of what the proxy did.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub cuts: AtomicU64,
    pub resets: AtomicU64,
    pub stalls: AtomicU64,
    pub slows: AtomicU64,
    pub partitions: AtomicU64,
    /// Connections refused during a partition or while the upstream was down.
    pub refused: AtomicU64,
}

/// A snapshot of [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub connections: u64,
    pub cuts: u64,
    pub resets: u64,
    pub stalls: u64,
    pub slows: u64,
    pub partitions: u64,
    pub refused: u64,
}

impl Stats {
    pub fn snapshot(&self) -> Counts {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counts {
            connections: g(&self.connections),
            cuts: g(&self.cuts),
            resets: g(&self.resets),
            stalls: g(&self.stalls),
            slows: g(&self.slows),
            partitions: g(&self.partitions),
            refused: g(&self.refused),
        }
    }
}

struct Shared {
    upstream: SocketAddr,
    rng: Mutex<StdRng>,
    /// Probability (per mille) that a connection gets a fault.
    rate: AtomicU64,
    /// Bumped to cut every open connection.
    epoch: watch::Sender<u64>,
    partitioned: AtomicBool,
    /// When set, every new connection gets this fault instead of a drawn one.
    forced: Mutex<Option<Fault>>,
    stats: Stats,
}

/// The proxy; dropping it stops accepting and cuts every connection.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream`; `rate` (0.0–1.0) is the
    /// share of connections that get a fault.
    pub async fn start(upstream: SocketAddr, rng: StdRng, rate: f64) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            rng: Mutex::new(rng),
            rate: AtomicU64::new(per_mille(rate)),
            epoch: watch::channel(0).0,
            partitioned: AtomicBool::new(false),
            forced: Mutex::new(None),
            stats: Stats::default(),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(FaultProxy { addr, shared, accept })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_rate(&self, rate: f64) {
        self.shared.rate.store(per_mille(rate), Ordering::Relaxed);
    }

    /// Gives every new connection `fault` (`None`: back to drawing), for deterministic tests.
    pub fn force(&self, fault: Option<Fault>) {
        *self.shared.forced.lock().unwrap_or_else(|p| p.into_inner()) = fault;
    }

    /// Cuts every open connection and refuses new ones for `duration`.
    pub async fn partition(&self, duration: Duration) {
        self.shared.stats.partitions.fetch_add(1, Ordering::Relaxed);
        self.shared.partitioned.store(true, Ordering::SeqCst);
        self.cut_all();
        tokio::time::sleep(duration).await;
        self.shared.partitioned.store(false, Ordering::SeqCst);
    }

    /// Cuts every open connection (new ones are accepted as usual).
    pub fn cut_all(&self) {
        self.shared.epoch.send_modify(|e| *e += 1);
    }

    pub fn stats(&self) -> Counts {
        self.shared.stats.snapshot()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut_all();
    }
}

fn per_mille(rate: f64) -> u64 {
    (rate.clamp(0.0, 1.0) * 1000.0).round() as u64
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        shared.stats.connections.fetch_add(1, Ordering::Relaxed);
        if shared.partitioned.load(Ordering::SeqCst) {
            shared.stats.refused.fetch_add(1, Ordering::Relaxed);
            drop(client);
            continue;
        }
        let fault = draw(&shared);
        tokio::spawn(serve(client, shared.clone(), fault));
    }
}

/// The next connection's fault, from the seeded generator.
fn draw(shared: &Shared) -> Fault {
    if let Some(f) = *shared.forced.lock().unwrap_or_else(|p| p.into_inner()) {
        return f;
    }
    let rate = shared.rate.load(Ordering::Relaxed);
    let mut rng = shared.rng.lock().unwrap_or_else(|p| p.into_inner());
    // Always draw the same number of values, so that the rate does not shift the plan.
    let roll = rng.gen_range(0..1000u64);
    let kind = rng.gen_range(0..4u8);
    let dir = if rng.gen_bool(0.5) { Direction::Up } else { Direction::Down };
    // Mostly early offsets (headers, first frames), sometimes deep into a body.
    let after = if rng.gen_bool(0.7) { rng.gen_range(0..600) } else { rng.gen_range(600..20_000) };
    let pause = Duration::from_millis(rng.gen_range(200..6_000));
    let chunk = rng.gen_range(1..64usize);
    let delay = Duration::from_millis(rng.gen_range(1..15));
    if roll >= rate {
        return Fault::None;
    }
    let fault = match kind {
        0 => Fault::Cut { dir, after },
        1 => Fault::Reset { dir, after },
        2 => Fault::Stall { dir, after, pause },
        _ => Fault::Slow { chunk, delay },
    };
    let counter = match fault {
        Fault::Cut { .. } => &shared.stats.cuts,
        Fault::Reset { .. } => &shared.stats.resets,
        Fault::Stall { .. } => &shared.stats.stalls,
        _ => &shared.stats.slows,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    fault
}

/// How a pump ended.
enum End {
    /// The reading side closed normally.
    Eof,
    /// The fault fired (or an error): drop the whole connection.
    Kill,
}

async fn serve(client: TcpStream, shared: Arc<Shared>, fault: Fault) {
    let mut epoch = shared.epoch.subscribe();
    let upstream = match TcpStream::connect(shared.upstream).await {
        Ok(s) => s,
        Err(_) => {
            shared.stats.refused.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    if matches!(fault, Fault::Reset { .. }) {
        // Closing with linger 0 sends RST instead of FIN.
        let _ = client.set_zero_linger();
        let _ = upstream.set_zero_linger();
    }
    let (cr, cw) = client.into_split();
    let (ur, uw) = upstream.into_split();
    let up = pump(cr, uw, fault, Direction::Up);
    let down = pump(ur, cw, fault, Direction::Down);
    tokio::pin!(up, down);
    let cut = async move {
        let _ = epoch.changed().await;
    };
    tokio::pin!(cut);
    tokio::select! {
        _ = &mut cut => {}
        end = &mut up => if let End::Eof = end {
            tokio::select! { _ = &mut down => {}, _ = &mut cut => {} }
        },
        end = &mut down => if let End::Eof = end {
            tokio::select! { _ = &mut up => {}, _ = &mut cut => {} }
        },
    }
    // Dropping the halves closes both sockets (RST where linger is 0).
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, fault: Fault, dir: Direction) -> End {
    let mut buf = vec![0u8; 16 * 1024];
    let mut sent: u64 = 0;
    let mut stalled = false;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => {
                let _ = to.shutdown().await;
                return End::Eof;
            }
            Ok(n) => n,
            Err(_) => return End::Kill,
        };
        let mut data = &buf[..n];
        match fault {
            Fault::Cut { dir: d, after } | Fault::Reset { dir: d, after } if d == dir && sent + data.len() as u64 >= after => {
                let keep = (after - sent) as usize;
                let _ = to.write_all(&data[..keep]).await;
                return End::Kill;
            }
            Fault::Stall { dir: d, after, pause } if d == dir && !stalled && sent + data.len() as u64 >= after => {
                stalled = true;
                let keep = (after - sent) as usize;
                if to.write_all(&data[..keep]).await.is_err() {
                    return End::Kill;
                }
                sent += keep as u64;
                data = &data[keep..];
                tokio::time::sleep(pause).await;
            }
            Fault::Blackhole { dir: d } if d == dir => {
                sent += data.len() as u64;
                continue;
            }
            Fault::Slow { chunk, delay } => {
                for piece in data.chunks(chunk) {
                    if to.write_all(piece).await.is_err() {
                        return End::Kill;
                    }
                    tokio::time::sleep(delay).await;
                }
                sent += data.len() as u64;
                continue;
            }
            _ => {}
        }
        if to.write_all(data).await.is_err() {
            return End::Kill;
        }
        sent += data.len() as u64;
    }
}
