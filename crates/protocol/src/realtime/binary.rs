//! The binary broadcast frames of serializer `vsn=2.0.0` — the one copy, used by the server,
//! the engine and the test clients.
//!
//! Binary frames carry only user broadcasts (realtime-js's serializer):
//!
//! ```text
//! kind 3, client → server: 03 | joinRefLen | refLen | topicLen | eventLen | metaLen | enc | joinRef | ref | topic | event | meta | payload
//! kind 4, server → client: 04 | topicLen | eventLen | metaLen | enc | topic | event | meta | payload
//! ```
//!
//! Every length is one byte, so each field is at most 255 bytes; `enc` is 1 for a JSON payload
//! and 0 for raw bytes. Decoding checks the kind, every length against the bytes that are
//! there, UTF-8 and JSON, and answers a typed [`BinaryError`]; encoding refuses a field longer
//! than its length byte can say (the caller then sends a text frame).

use serde_json::Value;

/// Kind byte of a client's broadcast push (USER_BROADCAST_PUSH).
pub const PUSH: u8 = 3;
/// Kind byte of a broadcast the server delivers (USER_BROADCAST).
pub const BROADCAST: u8 = 4;

/// Why bytes are not the binary frame expected, or a frame cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinaryError {
    #[error("empty binary frame")]
    Empty,
    #[error("binary frame of kind {found}, expected kind {expected}")]
    WrongKind { expected: u8, found: u8 },
    #[error("binary frame is shorter than its header or length bytes say")]
    Truncated,
    #[error("binary frame field {0} is not UTF-8")]
    NotUtf8(&'static str),
    #[error("binary frame {0} is not JSON")]
    NotJson(&'static str),
    #[error("unknown binary payload encoding {0}")]
    UnknownEncoding(u8),
    #[error("{field} is {len} bytes, a binary frame holds at most 255")]
    TooLong { field: &'static str, len: usize },
}

/// A client's broadcast push (kind 3).
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    /// `None` when empty.
    pub join_ref: Option<String>,
    /// `None` when empty.
    pub reference: Option<String>,
    pub topic: String,
    /// The user's event name (not Phoenix's `broadcast`).
    pub event: String,
    pub meta: Option<Value>,
    /// The JSON payload; a raw-bytes payload (encoding 0) as a hex string.
    pub payload: Value,
}

/// A broadcast as the server delivers it (kind 4).
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    pub topic: String,
    pub event: String,
    pub meta: Option<Value>,
    /// The JSON payload; a raw-bytes payload (encoding 0) as a hex string.
    pub payload: Value,
}

/// Encodes a push with a JSON payload (`payload_json` is sent as is).
pub fn encode_push(
    join_ref: &str,
    reference: &str,
    topic: &str,
    event: &str,
    payload_json: &str,
) -> Result<Vec<u8>, BinaryError> {
    let fields = [("join_ref", join_ref), ("ref", reference), ("topic", topic), ("event", event), ("meta", "")];
    encode(PUSH, &fields, payload_json)
}

/// Encodes a broadcast with a JSON payload (`payload_json` is sent as is).
pub fn encode_broadcast(topic: &str, event: &str, meta: Option<&Value>, payload_json: &str) -> Result<Vec<u8>, BinaryError> {
    let meta = meta.filter(|m| !m.is_null()).map(Value::to_string).unwrap_or_default();
    encode(BROADCAST, &[("topic", topic), ("event", event), ("meta", &meta)], payload_json)
}

/// Decodes a kind-3 frame.
pub fn decode_push(bytes: &[u8]) -> Result<Push, BinaryError> {
    let mut r = Reader::new(bytes, PUSH, 5)?;
    let join_ref = r.text("join_ref")?;
    let reference = r.text("ref")?;
    let (topic, event, meta, payload) = r.rest()?;
    Ok(Push {
        join_ref: Some(join_ref).filter(|s| !s.is_empty()),
        reference: Some(reference).filter(|s| !s.is_empty()),
        topic,
        event,
        meta,
        payload,
    })
}

/// Decodes a kind-4 frame.
pub fn decode_broadcast(bytes: &[u8]) -> Result<Broadcast, BinaryError> {
    let mut r = Reader::new(bytes, BROADCAST, 3)?;
    let (topic, event, meta, payload) = r.rest()?;
    Ok(Broadcast { topic, event, meta, payload })
}

fn encode(kind: u8, fields: &[(&'static str, &str)], payload_json: &str) -> Result<Vec<u8>, BinaryError> {
    let mut out = Vec::with_capacity(2 + fields.len() + fields.iter().map(|f| f.1.len()).sum::<usize>() + payload_json.len());
    out.push(kind);
    for &(field, value) in fields {
        let len = u8::try_from(value.len()).map_err(|_| BinaryError::TooLong { field, len: value.len() })?;
        out.push(len);
    }
    out.push(1);
    for (_, value) in fields {
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(payload_json.as_bytes());
    Ok(out)
}

/// Walks a frame: the kind, `n` length bytes, the encoding byte, then the fields in order.
struct Reader<'a> {
    lens: std::vec::IntoIter<usize>,
    encoding: u8,
    body: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], kind: u8, n: usize) -> Result<Reader<'a>, BinaryError> {
        let (&found, rest) = bytes.split_first().ok_or(BinaryError::Empty)?;
        if found != kind {
            return Err(BinaryError::WrongKind { expected: kind, found });
        }
        if rest.len() < n + 1 {
            return Err(BinaryError::Truncated);
        }
        let lens: Vec<usize> = rest[..n].iter().map(|&b| usize::from(b)).collect();
        Ok(Reader { lens: lens.into_iter(), encoding: rest[n], body: &rest[n + 1..] })
    }

    fn take(&mut self) -> Result<&'a [u8], BinaryError> {
        let n = self.lens.next().unwrap_or(0);
        if self.body.len() < n {
            return Err(BinaryError::Truncated);
        }
        let (head, tail) = self.body.split_at(n);
        self.body = tail;
        Ok(head)
    }

    fn text(&mut self, field: &'static str) -> Result<String, BinaryError> {
        let bytes = self.take()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| BinaryError::NotUtf8(field))
    }

    /// Topic, event, meta and the payload that fills the rest.
    fn rest(&mut self) -> Result<(String, String, Option<Value>, Value), BinaryError> {
        let topic = self.text("topic")?;
        let event = self.text("event")?;
        let meta = self.take()?;
        let meta = if meta.is_empty() {
            None
        } else {
            Some(serde_json::from_slice(meta).map_err(|_| BinaryError::NotJson("metadata"))?)
        };
        let payload = match self.encoding {
            1 => serde_json::from_slice(self.body).map_err(|_| BinaryError::NotJson("payload"))?,
            0 => Value::String(self.body.iter().map(|b| format!("{b:02x}")).collect()),
            other => return Err(BinaryError::UnknownEncoding(other)),
        };
        Ok((topic, event, meta, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn push_round_trips_and_matches_the_documented_bytes() {
        let bytes = encode_push("10", "1", "realtime:chat-room", "user-event", r#"{"content":"Hello"}"#).unwrap();
        // The example of the wire reference: 03 02 01 12 0A 00 01 "10" "1" …
        assert_eq!(&bytes[..7], &[3, 2, 1, 18, 10, 0, 1]);
        let push = decode_push(&bytes).unwrap();
        assert_eq!(
            push,
            Push {
                join_ref: Some("10".into()),
                reference: Some("1".into()),
                topic: "realtime:chat-room".into(),
                event: "user-event".into(),
                meta: None,
                payload: json!({"content": "Hello"}),
            }
        );
    }

    #[test]
    fn broadcast_round_trips_with_and_without_meta() {
        for meta in [None, Some(json!({"id": "7f"}))] {
            let bytes = encode_broadcast("realtime:x", "typing", meta.as_ref(), r#"{"u":1}"#).unwrap();
            assert_eq!(bytes[0], BROADCAST);
            let b = decode_broadcast(&bytes).unwrap();
            assert_eq!(b, Broadcast { topic: "realtime:x".into(), event: "typing".into(), meta, payload: json!({"u": 1}) });
        }
    }

    #[test]
    fn raw_byte_payloads_decode_as_hex() {
        let mut bytes = vec![BROADCAST, 1, 1, 0, 0];
        bytes.extend_from_slice(b"te\x01\xff");
        assert_eq!(decode_broadcast(&bytes).unwrap().payload, json!("01ff"));
    }

    #[test]
    fn every_truncation_is_refused_with_a_typed_error() {
        let push = encode_push("10", "1", "realtime:room", "ev", "{\"a\":1}").unwrap();
        let broadcast = encode_broadcast("realtime:room", "ev", Some(&json!({"id": 1})), "{\"a\":1}").unwrap();
        for (bytes, decode) in [
            (&push, (|b: &[u8]| decode_push(b).map(|_| ())) as fn(&[u8]) -> Result<(), BinaryError>),
            (&broadcast, |b: &[u8]| decode_broadcast(b).map(|_| ())),
        ] {
            assert_eq!(decode(&[]), Err(BinaryError::Empty));
            for cut in 1..bytes.len() {
                let err = decode(&bytes[..cut]).unwrap_err();
                assert!(matches!(err, BinaryError::Truncated | BinaryError::NotJson(_)), "cut at {cut}: {err:?}");
            }
            assert_eq!(decode(bytes), Ok(()));
        }
    }

    #[test]
    fn wrong_kinds_lies_and_bad_fields_are_refused() {
        let push = encode_push("1", "2", "realtime:t", "e", "{}").unwrap();
        let broadcast = encode_broadcast("realtime:t", "e", None, "{}").unwrap();
        assert_eq!(decode_broadcast(&push), Err(BinaryError::WrongKind { expected: 4, found: 3 }));
        assert_eq!(decode_push(&broadcast), Err(BinaryError::WrongKind { expected: 3, found: 4 }));
        // A topic length that claims more than is there.
        let mut lying = push.clone();
        lying[3] = 200;
        assert_eq!(decode_push(&lying), Err(BinaryError::Truncated));
        let mut bad = broadcast.clone();
        bad[4] = 9;
        assert_eq!(decode_broadcast(&bad), Err(BinaryError::UnknownEncoding(9)));
        let mut not_utf8 = broadcast.clone();
        not_utf8[5] = 0xff;
        assert_eq!(decode_broadcast(&not_utf8), Err(BinaryError::NotUtf8("topic")));
        let mut not_json = broadcast.clone();
        *not_json.last_mut().unwrap() = b'!';
        assert_eq!(decode_broadcast(&not_json), Err(BinaryError::NotJson("payload")));
        let long = "x".repeat(256);
        assert_eq!(encode_broadcast(&long, "e", None, "{}"), Err(BinaryError::TooLong { field: "topic", len: 256 }));
        assert!(encode_push("1", "2", "t", &long, "{}").is_err());
    }
}
