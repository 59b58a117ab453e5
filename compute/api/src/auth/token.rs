//! Tokens the server signs: `v1.<payload>.<mac>`, the payload being JSON (user,
//! project, methods, issue and expiry times, an audit id) in base64url and the mac
//! its HMAC-SHA256 under the server's key, checked in constant time. Nothing is
//! stored: a token is valid while its mac holds and it has not expired; replacing
//! the key revokes every token. Pure: the caller passes the clock's reading.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The longest token looked at (a real one is about 250 bytes).
pub const MAX_TOKEN_BYTES: usize = 2048;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenClaims {
    #[serde(rename = "u")]
    pub user_id: String,
    /// `None`: unscoped (good for Identity only).
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(rename = "m")]
    pub methods: Vec<String>,
    /// Unix seconds.
    #[serde(rename = "i")]
    pub issued_at: u64,
    #[serde(rename = "e")]
    pub expires_at: u64,
    #[serde(rename = "a")]
    pub audit_id: String,
}

/// Why a token is refused (all are a 401 to the client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the token expired")]
    Expired,
}

/// Signs and checks tokens with one key.
#[derive(Clone)]
pub struct TokenSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(<key>)")
    }
}

impl TokenSigner {
    pub fn new(key: [u8; 32]) -> TokenSigner {
        TokenSigner { key }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!())
    }

    pub fn sign(&self, claims: &TokenClaims) -> String {
        let payload = B64.encode(serde_json::to_vec(claims).unwrap_or_default());
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let tag = B64.encode(mac.finalize().into_bytes());
        format!("v1.{payload}.{tag}")
    }

    /// The claims of a genuine token that has not expired at `now`.
    pub fn verify(&self, token: &str, now: u64) -> Result<TokenClaims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        let rest = token.strip_prefix("v1.").ok_or(TokenError::Malformed)?;
        let (payload, tag) = rest.split_once('.').ok_or(TokenError::Malformed)?;
        let tag = B64.decode(tag).map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        let bytes = B64.decode(payload).map_err(|_| TokenError::Malformed)?;
        let claims: TokenClaims =
            serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
        if now >= claims.expires_at {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> TokenClaims {
        TokenClaims {
            user_id: "u1".into(),
            project_id: Some("p1".into()),
            methods: vec!["password".into()],
            issued_at: 100,
            expires_at: 3700,
            audit_id: "a".into(),
        }
    }

    #[test]
    fn a_token_holds_until_it_expires_and_only_under_its_key() {
        let s = TokenSigner::new([7; 32]);
        let t = s.sign(&claims());
        assert_eq!(s.verify(&t, 200), Ok(claims()));
        assert_eq!(s.verify(&t, 3700), Err(TokenError::Expired));
        assert_eq!(
            TokenSigner::new([8; 32]).verify(&t, 200),
            Err(TokenError::BadSignature),
            "a new key revokes it"
        );
        let mut forged = claims();
        forged.user_id = "admin".into();
        let other = s.sign(&forged);
        let (_, tag) = t.rsplit_once('.').expect("tag");
        let (head, _) = other.rsplit_once('.').expect("head");
        assert_eq!(
            s.verify(&format!("{head}.{tag}"), 200),
            Err(TokenError::BadSignature)
        );
        for junk in ["", "notused", "v1.", "v1.a.b", &"v1.x".repeat(1000)] {
            assert!(s.verify(junk, 200).is_err(), "{junk}");
        }
    }
}
