//! A bare Phoenix-channel test client for the realtime gateway: raw frames in and out, so
//! tests can send exactly what supabase-js sends — and what it never would.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use werkfunk_protocol::realtime::{binary, Frame, Vsn};

pub struct TestSocket {
    pub vsn: Vsn,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_ref: u64,
}

/// What arrived: a decoded frame (text or binary kind 4), or the socket's end.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    Frame(Frame),
    /// A kind-4 binary broadcast: topic, event, payload.
    Binary {
        topic: String,
        event: String,
        payload: Value,
    },
    Closed,
}

impl TestSocket {
    /// Connects to `base` (`http://…`) with `apikey` and `vsn`.
    pub async fn connect(base: &str, apikey: &str, vsn: Vsn) -> TestSocket {
        let url = format!("{}/realtime/v1/websocket?apikey={apikey}&vsn={}", base.replacen("http", "ws", 1), vsn.as_str());
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("websocket connects");
        TestSocket { vsn, ws, next_ref: 1 }
    }

    pub fn next_ref(&mut self) -> String {
        self.next_ref += 1;
        self.next_ref.to_string()
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    /// Sends, reporting (rather than panicking on) a socket the server closed.
    pub async fn send_raw_checked(&mut self, message: Message) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.ws.send(message).await
    }

    pub async fn send(&mut self, frame: &Frame) {
        let text = frame.encode_text(self.vsn);
        self.send_raw(Message::Text(text.into())).await;
    }

    /// Sends `event` on `topic` with `payload`; returns its ref.
    pub async fn push(&mut self, topic: &str, join_ref: Option<&str>, event: &str, payload: Value) -> String {
        let r = self.next_ref();
        let f = Frame {
            join_ref: join_ref.map(str::to_owned),
            reference: Some(r.clone()),
            topic: topic.to_owned(),
            event: event.to_owned(),
            payload,
        };
        self.send(&f).await;
        r
    }

    /// The next frame, or `None` after `timeout`.
    pub async fn recv(&mut self, timeout: Duration) -> Option<Received> {
        loop {
            let msg = match tokio::time::timeout(timeout, self.ws.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) => return Some(Received::Closed),
                Ok(Some(Ok(m))) => m,
            };
            return Some(match msg {
                Message::Text(t) => Received::Frame(Frame::decode_text(self.vsn, t.as_str()).expect("server frames decode")),
                Message::Binary(b) => {
                    let b = binary::decode_broadcast(&b).expect("the server sends only well-formed binary kind 4");
                    Received::Binary { topic: b.topic, event: b.event, payload: b.payload }
                }
                Message::Close(_) => Received::Closed,
                _ => continue,
            });
        }
    }

    /// Waits up to `timeout` for a frame matching `pred`, skipping others.
    pub async fn expect(&mut self, timeout: Duration, mut pred: impl FnMut(&Received) -> bool) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let r = self.recv(left).await?;
            if pred(&r) {
                return Some(r);
            }
            if r == Received::Closed {
                return None;
            }
        }
    }

    /// Joins `topic` (`realtime:…`) with `config` and an optional token; returns the reply.
    pub async fn join(&mut self, topic: &str, config: Value, access_token: Option<&str>) -> Frame {
        let join_ref = self.next_ref();
        let mut payload = json!({"config": config});
        if let Some(t) = access_token {
            payload["access_token"] = json!(t);
        }
        let f = Frame {
            join_ref: Some(join_ref.clone()),
            reference: Some(join_ref.clone()),
            topic: topic.to_owned(),
            event: "phx_join".into(),
            payload,
        };
        self.send(&f).await;
        match self
            .expect(
                Duration::from_secs(10),
                |r| matches!(r, Received::Frame(f) if f.event == "phx_reply" && f.reference.as_deref() == Some(&join_ref)),
            )
            .await
        {
            Some(Received::Frame(f)) => f,
            other => panic!("no join reply for {topic}: {other:?}"),
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// A frame with this event (and topic), for [`TestSocket::expect`].
pub fn is_event<'a>(topic: &'a str, event: &'a str) -> impl FnMut(&Received) -> bool + 'a {
    move |r| matches!(r, Received::Frame(f) if f.topic == topic && f.event == event)
}
