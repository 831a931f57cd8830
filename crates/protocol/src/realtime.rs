//! Supabase Realtime's Phoenix channel frames, in both serializers.
//!
//! - `vsn=1.0.0`: text frames holding a JSON object `{join_ref, ref, topic, event, payload}`.
//! - `vsn=2.0.0`: text frames holding a JSON array `[join_ref, ref, topic, event, payload]`,
//!   plus binary frames for broadcast: kind 3 (client → server) and kind 4 (server → client).
//!
//! The layouts are those of realtime-js's serializer (see `shared/reference/supabase-wire.md`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The serializer a socket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vsn {
    V1,
    V2,
}

impl Vsn {
    /// From the `vsn` query parameter; absent means 1.0.0, as in Supabase.
    pub fn parse(vsn: Option<&str>) -> Option<Vsn> {
        match vsn {
            None | Some("1.0.0") => Some(Vsn::V1),
            Some("2.0.0") => Some(Vsn::V2),
            Some(_) => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Vsn::V1 => "1.0.0",
            Vsn::V2 => "2.0.0",
        }
    }
}

/// One Phoenix message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    pub join_ref: Option<String>,
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    pub topic: String,
    pub event: String,
    pub payload: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    NotJson,
    /// A 2.0.0 text frame that is not a five-element array, or a 1.0.0 frame that is not an object.
    Shape(&'static str),
    /// A binary frame that is not kind 3, or whose length bytes lie.
    Binary(&'static str),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::NotJson => f.write_str("frame is not JSON"),
            DecodeError::Shape(s) | DecodeError::Binary(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for DecodeError {}

fn opt_string(v: &Value) -> Result<Option<String>, DecodeError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        _ => Err(DecodeError::Shape("join_ref and ref must be strings or null")),
    }
}

impl Frame {
    /// Decodes a text frame.
    pub fn decode_text(vsn: Vsn, text: &str) -> Result<Frame, DecodeError> {
        let value: Value = serde_json::from_str(text).map_err(|_| DecodeError::NotJson)?;
        match vsn {
            Vsn::V2 => {
                let Value::Array(items) = value else { return Err(DecodeError::Shape("expected V2 array")) };
                let [join_ref, reference, topic, event, payload]: [Value; 5] =
                    items.try_into().map_err(|_| DecodeError::Shape("expected V2 array of 5 elements"))?;
                Ok(Frame {
                    join_ref: opt_string(&join_ref)?,
                    reference: opt_string(&reference)?,
                    topic: topic.as_str().ok_or(DecodeError::Shape("topic must be a string"))?.to_owned(),
                    event: event.as_str().ok_or(DecodeError::Shape("event must be a string"))?.to_owned(),
                    payload,
                })
            }
            Vsn::V1 => {
                let Value::Object(map) = value else { return Err(DecodeError::Shape("expected a JSON object")) };
                let get = |k: &str| map.get(k).cloned().unwrap_or(Value::Null);
                Ok(Frame {
                    join_ref: opt_string(&get("join_ref"))?,
                    reference: opt_string(&get("ref"))?,
                    topic: get("topic").as_str().ok_or(DecodeError::Shape("topic must be a string"))?.to_owned(),
                    event: get("event").as_str().ok_or(DecodeError::Shape("event must be a string"))?.to_owned(),
                    payload: get("payload"),
                })
            }
        }
    }

    /// Encodes as a text frame.
    pub fn encode_text(&self, vsn: Vsn) -> String {
        match vsn {
            Vsn::V2 => serde_json::json!([self.join_ref, self.reference, self.topic, self.event, self.payload]).to_string(),
            Vsn::V1 => serde_json::json!({
                "join_ref": self.join_ref, "ref": self.reference, "topic": self.topic,
                "event": self.event, "payload": self.payload,
            })
            .to_string(),
        }
    }

    /// Decodes a binary kind-3 frame (a client's broadcast push) into the equivalent
    /// `broadcast` frame with payload `{type, event, payload}`.
    pub fn decode_binary(bytes: &[u8]) -> Result<Frame, DecodeError> {
        let (&kind, rest) = bytes.split_first().ok_or(DecodeError::Binary("empty binary frame"))?;
        if kind != 3 {
            return Err(DecodeError::Binary("only binary kind 3 (user broadcast push) is accepted"));
        }
        if rest.len() < 6 {
            return Err(DecodeError::Binary("binary frame header is truncated"));
        }
        let lens = [rest[0], rest[1], rest[2], rest[3], rest[4]].map(usize::from);
        let encoding = rest[5];
        let mut body = &rest[6..];
        let mut take = |n: usize| -> Result<&[u8], DecodeError> {
            if body.len() < n {
                return Err(DecodeError::Binary("binary frame is shorter than its length bytes say"));
            }
            let (head, tail) = body.split_at(n);
            body = tail;
            Ok(head)
        };
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| DecodeError::Binary("binary frame field is not UTF-8"));
        let join_ref = text(take(lens[0])?)?;
        let reference = text(take(lens[1])?)?;
        let topic = text(take(lens[2])?)?;
        let user_event = text(take(lens[3])?)?;
        let meta = take(lens[4])?;
        let meta: Value = if meta.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(meta).map_err(|_| DecodeError::Binary("binary frame metadata is not JSON"))?
        };
        let payload = match encoding {
            1 => serde_json::from_slice(body).map_err(|_| DecodeError::Binary("binary frame payload is not JSON"))?,
            0 => Value::String(body.iter().map(|b| format!("{b:02x}")).collect()),
            _ => return Err(DecodeError::Binary("unknown payload encoding")),
        };
        let mut inner = serde_json::json!({"type": "broadcast", "event": user_event, "payload": payload});
        if !meta.is_null() {
            inner["meta"] = meta;
        }
        Ok(Frame {
            join_ref: Some(join_ref).filter(|s| !s.is_empty()),
            reference: Some(reference).filter(|s| !s.is_empty()),
            topic,
            event: "broadcast".into(),
            payload: inner,
        })
    }

    /// Encodes a user broadcast as a binary kind-4 frame, or `None` when a field is too
    /// long for the one-byte lengths (the caller then sends text).
    pub fn encode_broadcast_binary(topic: &str, user_event: &str, meta: &Value, payload_json: &str) -> Option<Vec<u8>> {
        let meta = if meta.is_null() { String::new() } else { meta.to_string() };
        let (t, e, m) = (topic.as_bytes(), user_event.as_bytes(), meta.as_bytes());
        if t.len() > 255 || e.len() > 255 || m.len() > 255 {
            return None;
        }
        let body = payload_json;
        let mut out = Vec::with_capacity(5 + t.len() + e.len() + m.len() + body.len());
        out.extend_from_slice(&[4, t.len() as u8, e.len() as u8, m.len() as u8, 1]);
        out.extend_from_slice(t);
        out.extend_from_slice(e);
        out.extend_from_slice(m);
        out.extend_from_slice(body.as_bytes());
        Some(out)
    }
}

/// A client's `postgres_changes` binding in `phx_join`'s config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeBinding {
    pub event: String,
    #[serde(default = "public")]
    pub schema: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

fn public() -> String {
    "public".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn v2_text_round_trip() {
        let f = Frame::decode_text(Vsn::V2, r#"["1","2","realtime:room","phx_join",{"a":1}]"#).unwrap();
        assert_eq!(f.join_ref.as_deref(), Some("1"));
        assert_eq!(Frame::decode_text(Vsn::V2, &f.encode_text(Vsn::V2)).unwrap(), f);
        assert_eq!(Frame::decode_text(Vsn::V1, &f.encode_text(Vsn::V1)).unwrap(), f);
        assert!(matches!(Frame::decode_text(Vsn::V2, r#"["1","2","t"]"#), Err(DecodeError::Shape(_))));
        assert!(matches!(Frame::decode_text(Vsn::V2, "nope"), Err(DecodeError::NotJson)));
        assert!(matches!(Frame::decode_text(Vsn::V1, "[1]"), Err(DecodeError::Shape(_))));
    }

    #[test]
    fn binary_kind3_and_lies() {
        let mut b = vec![3, 2, 1, 18, 10, 0, 1];
        b.extend_from_slice(b"101realtime:chat-roomuser-event");
        b.extend_from_slice(br#"{"content":"Hello"}"#);
        let f = Frame::decode_binary(&b).unwrap();
        assert_eq!(f.topic, "realtime:chat-room");
        assert_eq!(f.payload, json!({"type":"broadcast","event":"user-event","payload":{"content":"Hello"}}));
        let mut lying = b.clone();
        lying[3] = 200;
        assert!(matches!(Frame::decode_binary(&lying), Err(DecodeError::Binary(_))));
        assert!(Frame::decode_binary(&[4, 0, 0]).is_err());
        assert!(Frame::decode_binary(&[3, 1]).is_err());
        let out = Frame::encode_broadcast_binary("realtime:x", "typing", &json!({"id":"1"}), r#"{"u":1}"#).unwrap();
        assert_eq!(out[0], 4);
        assert_eq!(out[1] as usize, "realtime:x".len());
    }
}
