//! A `postgres_changes` binding as a client puts it in `phx_join`'s config — the one type
//! the server parses and the engine sends.

use serde::{Deserialize, Serialize};

/// One binding: which changes (`INSERT`, `UPDATE`, `DELETE`, `*`) of which table, with an
/// optional filter (`column=op.value`).
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

impl ChangeBinding {
    /// The changes `event` of `public.<table>`, optionally filtered.
    pub fn table(event: &str, table: &str, filter: Option<String>) -> ChangeBinding {
        ChangeBinding { event: event.into(), schema: public(), table: Some(table.into()), filter }
    }
}

fn public() -> String {
    "public".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serialises_as_supabase_js_sends_it_and_defaults_the_schema() {
        let b = ChangeBinding::table("*", "notifications", Some("user_id=eq.1".into()));
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v, json!({"event": "*", "schema": "public", "table": "notifications", "filter": "user_id=eq.1"}));
        assert_eq!(serde_json::from_value::<ChangeBinding>(v).unwrap(), b);
        let bare: ChangeBinding = serde_json::from_value(json!({"event": "INSERT"})).unwrap();
        assert_eq!((bare.schema.as_str(), bare.table.as_deref()), ("public", None));
        assert_eq!(serde_json::to_value(&bare).unwrap(), json!({"event": "INSERT", "schema": "public"}));
    }
}
