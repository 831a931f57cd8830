//! HS256 JSON Web Tokens: access tokens and API keys.
//!
//! Only HS256 is accepted; the signature is compared in constant time; `exp` is required.
//! A token selects a database role, and only [`DbRole`]'s three are possible — any other
//! `role` claim is refused here, so no token value ever reaches `set_config('role', …)`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use werkfunk_protocol::auth::Claims;

type HmacSha256 = Hmac<Sha256>;

/// The database roles a token can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbRole {
    Anon,
    Authenticated,
    ServiceRole,
}

impl DbRole {
    pub fn as_str(self) -> &'static str {
        match self {
            DbRole::Anon => "anon",
            DbRole::Authenticated => "authenticated",
            DbRole::ServiceRole => "service_role",
        }
    }

    fn parse(role: &str) -> Option<DbRole> {
        match role {
            "anon" => Some(DbRole::Anon),
            "authenticated" => Some(DbRole::Authenticated),
            "service_role" => Some(DbRole::ServiceRole),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("JWT is malformed")]
    Malformed,
    #[error("JWT algorithm is not HS256")]
    Algorithm,
    #[error("JWT signature is invalid")]
    Signature,
    #[error("JWT expired")]
    Expired { seconds_ago: i64 },
    #[error("JWT role is not anon, authenticated or service_role")]
    Role,
    #[error("JWT not in audience")]
    Audience,
}

/// The audience of the tokens this server issues (GoTrue's `GOTRUE_JWT_AUD` default). A
/// token that names another audience was meant for someone else and is refused; one without
/// `aud` (an API key) is not, as PostgREST does with `jwt-aud` set.
pub const AUDIENCE: &str = "authenticated";

/// A verified token: its claims, the role they select, and the raw claims JSON that is
/// handed to Postgres as `request.jwt.claims`.
#[derive(Debug, Clone)]
pub struct Verified {
    pub claims: Claims,
    pub role: DbRole,
    pub claims_json: String,
}

/// Signs and verifies tokens with one secret.
#[derive(Clone)]
pub struct Keys {
    secret: Vec<u8>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

impl Keys {
    pub fn new(secret: &str) -> Keys {
        Keys { secret: secret.as_bytes().to_vec() }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length")
    }

    /// Signs `claims` (any JSON object) as HS256.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{input}.{sig}")
    }

    /// Verifies signature, algorithm, expiry (against `now`, seconds), audience and role.
    pub fn verify(&self, token: &str, now: i64) -> Result<Verified, JwtError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(JwtError::Malformed);
        };
        let header: serde_json::Value =
            URL_SAFE_NO_PAD.decode(header).ok().and_then(|h| serde_json::from_slice(&h).ok()).ok_or(JwtError::Malformed)?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err(JwtError::Algorithm);
        }
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| JwtError::Malformed)?;
        let mut mac = self.mac();
        mac.update(&token.as_bytes()[..header_len(token)]);
        mac.verify_slice(&sig).map_err(|_| JwtError::Signature)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| JwtError::Malformed)?;
        let value: serde_json::Value = serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed)?;
        let claims: Claims = serde_json::from_value(value.clone()).map_err(|_| JwtError::Malformed)?;
        if claims.exp <= now {
            return Err(JwtError::Expired { seconds_ago: now - claims.exp });
        }
        if claims.aud.as_deref().is_some_and(|aud| aud != AUDIENCE) {
            return Err(JwtError::Audience);
        }
        let role = DbRole::parse(&claims.role).ok_or(JwtError::Role)?;
        if role == DbRole::Authenticated && claims.sub.is_none() {
            return Err(JwtError::Malformed);
        }
        Ok(Verified { claims, role, claims_json: value.to_string() })
    }

    /// An API key (`anon` or `service_role`) valid for ten years from `now`.
    pub fn api_key(&self, role: DbRole, now: i64) -> String {
        self.sign(&serde_json::json!({
            "iss": "werkfunk",
            "role": role.as_str(),
            "iat": now,
            "exp": now + 10 * 365 * 24 * 3600,
        }))
    }
}

/// Length of `header.payload`, the signed part.
fn header_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(0)
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn round_trip_and_refusals() {
        let keys = Keys::new(SECRET);
        let uid = uuid::Uuid::new_v4();
        let t = keys.sign(&json!({"sub": uid, "role": "authenticated", "exp": 2000, "iat": 1000}));
        let v = keys.verify(&t, 1500).unwrap();
        assert_eq!(v.role, DbRole::Authenticated);
        assert_eq!(v.claims.sub, Some(uid));
        assert_eq!(keys.verify(&t, 2000).unwrap_err(), JwtError::Expired { seconds_ago: 0 });

        let forged = Keys::new("another secret that is long enough!!").sign(&json!({"role": "anon", "exp": 2000}));
        assert_eq!(keys.verify(&forged, 1500).unwrap_err(), JwtError::Signature);

        let postgres = keys.sign(&json!({"role": "postgres", "exp": 2000}));
        assert_eq!(keys.verify(&postgres, 1500).unwrap_err(), JwtError::Role);

        // A token for another audience is refused; this server's own audience, or none (an
        // API key), is not.
        let elsewhere = keys.sign(&json!({"sub": uid, "role": "authenticated", "aud": "somewhere-else", "exp": 2000}));
        assert_eq!(keys.verify(&elsewhere, 1500).unwrap_err(), JwtError::Audience);
        let ours = keys.sign(&json!({"sub": uid, "role": "authenticated", "aud": AUDIENCE, "exp": 2000}));
        assert_eq!(keys.verify(&ours, 1500).unwrap().claims.aud.as_deref(), Some(AUDIENCE));

        let mut tampered = t.clone();
        tampered.insert(tampered.len() - 2, 'x');
        assert!(keys.verify(&tampered, 1500).is_err());
        assert_eq!(keys.verify("a.b", 0).unwrap_err(), JwtError::Malformed);

        let none_alg = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(br#"{"role":"service_role","exp":9999}"#)
        );
        assert_eq!(keys.verify(&none_alg, 0).unwrap_err(), JwtError::Algorithm);
    }
}
