//! Supabase Realtime's Phoenix channel frames, in both serializers.
//!
//! - `vsn=1.0.0`: text frames holding a JSON object `{join_ref, ref, topic, event, payload}`.
//! - `vsn=2.0.0`: text frames holding a JSON array `[join_ref, ref, topic, event, payload]`,
//!   plus binary frames for broadcast: kind 3 (client → server) and kind 4 (server → client).
//!
//! The layouts are those of realtime-js's serializer (see `shared/reference/supabase-wire.md`);
//! the binary ones are in [`binary`], the `postgres_changes` binding of a join in [`binding`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod binary;
pub mod binding;

pub use binary::BinaryError;
pub use binding::ChangeBinding;

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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("frame is not JSON")]
    NotJson,
    /// A 2.0.0 text frame that is not a five-element array, or a 1.0.0 frame that is not an object.
    #[error("{0}")]
    Shape(&'static str),
    /// A binary frame that is not kind 3, or whose length bytes lie.
    #[error(transparent)]
    Binary(#[from] BinaryError),
    /// A binary frame on a 1.0.0 socket.
    #[error("binary frames need vsn 2.0.0")]
    BinaryOnV1,
}

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
    /// `broadcast` frame with payload `{type, event, payload}` (and `meta` when present).
    pub fn decode_binary(bytes: &[u8]) -> Result<Frame, DecodeError> {
        let push = binary::decode_push(bytes)?;
        let mut inner = serde_json::json!({"type": "broadcast", "event": push.event, "payload": push.payload});
        if let Some(meta) = push.meta {
            inner["meta"] = meta;
        }
        Ok(Frame {
            join_ref: push.join_ref,
            reference: push.reference,
            topic: push.topic,
            event: "broadcast".into(),
            payload: inner,
        })
    }
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
    fn a_binary_push_becomes_a_broadcast_frame() {
        let bytes = binary::encode_push("10", "1", "realtime:chat-room", "user-event", r#"{"content":"Hello"}"#).unwrap();
        let f = Frame::decode_binary(&bytes).unwrap();
        assert_eq!(
            (f.join_ref.as_deref(), f.reference.as_deref(), f.topic.as_str()),
            (Some("10"), Some("1"), "realtime:chat-room")
        );
        assert_eq!(f.payload, json!({"type":"broadcast","event":"user-event","payload":{"content":"Hello"}}));
        let kind4 = binary::encode_broadcast("realtime:x", "e", None, "{}").unwrap();
        assert_eq!(Frame::decode_binary(&kind4), Err(DecodeError::Binary(BinaryError::WrongKind { expected: 3, found: 4 })));
        assert_eq!(Frame::decode_binary(&[3, 1]), Err(DecodeError::Binary(BinaryError::Truncated)));
    }
}
