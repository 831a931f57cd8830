//! A lean Phoenix (vsn 2.0.0) client for load: connect, join, then hand every frame's bytes
//! to a callback without decoding it.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One clock for the whole process: timestamps travel inside messages as microseconds
/// since this instant.
pub fn now_us() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// Small buffers: the realtime benchmark holds 10,000 sockets at once.
fn client_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(16 * 1024)
}

pub async fn connect(url: &str) -> Result<Ws> {
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::connect_async_with_config(url, Some(client_config()), true),
    )
    .await
    .context("websocket connect timed out")?
    .context("websocket connect")?;
    Ok(ws)
}

/// Joins `topic` and waits for the ok reply (and, with bindings, the "Subscribed to
/// PostgreSQL" system message).
pub async fn join(ws: &mut Ws, topic: &str, config: Value, token: Option<&str>) -> Result<()> {
    let mut payload = json!({"config": config});
    if let Some(t) = token {
        payload["access_token"] = json!(t);
    }
    let has_bindings = config["postgres_changes"].as_array().is_some_and(|a| !a.is_empty());
    let frame = json!(["1", "1", topic, "phx_join", payload]).to_string();
    ws.send(Message::Text(frame.into())).await?;
    let mut replied = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.context("no join reply within 30 s")?;
        let text = match msg {
            Some(Ok(Message::Text(t))) => t.as_str().to_owned(),
            Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Close(c))) => bail!("closed while joining {topic}: {c:?}"),
            Some(Err(e)) => bail!("error while joining {topic}: {e}"),
            None => bail!("closed while joining {topic}"),
        };
        if text.contains("\"phx_reply\"") {
            if !text.contains("\"status\":\"ok\"") {
                bail!("join of {topic} refused: {text}");
            }
            replied = true;
        }
        if replied && (!has_bindings || text.contains("Subscribed to PostgreSQL")) {
            return Ok(());
        }
    }
}

/// Reads `ws` until `stop`, handing each text or binary frame to `on_frame`; sends a
/// heartbeat every 20 s. Returns how many frames arrived; ends with an error if the server
/// closed the socket first.
pub fn spawn_reader(
    mut ws: Ws,
    mut stop: watch::Receiver<bool>,
    mut on_frame: impl FnMut(&[u8]) + Send + 'static,
) -> JoinHandle<Result<u64>> {
    tokio::spawn(async move {
        let mut frames = 0u64;
        let mut beat = tokio::time::interval(Duration::from_secs(20));
        beat.tick().await;
        let mut hb = 100u64;
        loop {
            tokio::select! {
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(t))) => { frames += 1; on_frame(t.as_bytes()); }
                    Some(Ok(Message::Binary(b))) => { frames += 1; on_frame(&b[..]); }
                    Some(Ok(Message::Close(c))) => bail!("server closed the socket: {c:?}"),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => bail!("socket error: {e}"),
                    None => bail!("socket ended"),
                },
                _ = beat.tick() => {
                    hb += 1;
                    let f = json!([null, hb.to_string(), "phoenix", "heartbeat", {}]).to_string();
                    ws.send(Message::Text(f.into())).await?;
                }
                _ = stop.changed() => {
                    let _ = ws.close(None).await;
                    return Ok(frames);
                }
            }
        }
    })
}

/// The unsigned integer right after the first `needle` in `bytes`.
pub fn number_after(bytes: &[u8], needle: &[u8]) -> Option<u64> {
    let at = bytes.windows(needle.len()).position(|w| w == needle)? + needle.len();
    let digits = bytes[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&bytes[at..at + digits]).ok()?.parse().ok()
}
