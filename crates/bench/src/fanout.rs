//! The baseline websocket server: bare tokio-tungstenite, no protocol beyond what the load
//! needs. A `phx_join` gets an ok reply; a `broadcast` frame is written, as it came, to every
//! other connection through a bounded per-connection queue (the shape of the real gateway's
//! fan-out, minus channels, authorization, presence, limits and re-encoding), with the
//! server's socket buffer settings.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use anyhow::Result;
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

type Peers = Arc<RwLock<Vec<(u64, mpsc::Sender<Message>)>>>;

pub async fn serve(port: u16) -> Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let peers: Peers = Arc::default();
    let next = AtomicU64::new(0);
    loop {
        let (stream, _) = listener.accept().await?;
        let id = next.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(connection(stream, peers.clone(), id));
    }
}

async fn connection(stream: TcpStream, peers: Peers, id: u64) {
    // The server's socket settings: 4 KiB read buffer, frames written through at once.
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024).write_buffer_size(0);
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else { return };
    let (tx, mut rx) = mpsc::channel::<Message>(1024);
    peers.write().expect("peers").push((id, tx));
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if t.contains("\"phx_join\"") {
                        let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                        let reply = serde_json::json!([v[0], v[1], v[2], "phx_reply", {"status": "ok", "response": {}}]);
                        if ws.send(Message::Text(reply.to_string().into())).await.is_err() {
                            break;
                        }
                    } else if t.contains("\"broadcast\"") {
                        let m = Message::Text(t);
                        for (peer, ptx) in peers.read().expect("peers").iter() {
                            if *peer != id {
                                let _ = ptx.try_send(m.clone());
                            }
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            out = rx.recv() => {
                let Some(out) = out else { break };
                if ws.send(out).await.is_err() {
                    break;
                }
            }
        }
    }
    peers.write().expect("peers").retain(|(p, _)| *p != id);
}
