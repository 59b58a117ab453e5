//! IMDSv2 session tokens: issued by `PUT /latest/api/token`, bound to one instance
//! and valid for a lifetime the client chose (1..=21600 s).
//!
//! A token is self-contained and signed: `version | instance uuid | expiry` under an
//! HMAC-SHA256 key drawn at start-up, so the server keeps no per-token state and a
//! token is refused for any other instance. The clock is passed in (seconds since the
//! epoch): this module reads none and does no I/O.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

/// AWS's bounds on a token's lifetime, in seconds.
pub const MIN_TTL: u32 = 1;
pub const MAX_TTL: u32 = 21600;

const VERSION: u8 = 1;
const PAYLOAD_LEN: usize = 1 + 16 + 8;
const TOKEN_LEN: usize = PAYLOAD_LEN + 32;
/// Longest token text we look at; anything longer is not ours.
const MAX_TOKEN_TEXT: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token lifetime header is missing")]
    TtlMissing,
    #[error("token lifetime `{0}` is not an integer in {MIN_TTL}..={MAX_TTL}")]
    TtlInvalid(String),
    #[error("token is malformed")]
    Malformed,
    #[error("token signature does not match")]
    BadSignature,
    #[error("token belongs to another instance")]
    WrongInstance,
    #[error("token expired")]
    Expired,
}

/// Parses the TTL header value.
pub fn parse_ttl(value: Option<&str>) -> Result<u32, TokenError> {
    let v = value.ok_or(TokenError::TtlMissing)?;
    let short: String = v.chars().take(32).collect();
    match v.trim().parse::<u32>() {
        Ok(n) if (MIN_TTL..=MAX_TTL).contains(&n) => Ok(n),
        _ => Err(TokenError::TtlInvalid(short)),
    }
}

/// Issues and checks tokens under one secret key.
#[derive(Clone)]
pub struct TokenAuthority {
    key: [u8; 32],
}

impl std::fmt::Debug for TokenAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenAuthority { key: <secret> }")
    }
}

impl TokenAuthority {
    pub fn new(key: [u8; 32]) -> Self {
        TokenAuthority { key }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length: this cannot fail.
        #[allow(clippy::expect_used)]
        Hmac::<Sha256>::new_from_slice(&self.key).expect("hmac takes any key length")
    }

    /// A token for `instance`, valid until `now + ttl`.
    pub fn issue(&self, instance: Uuid, ttl: u32, now: u64) -> String {
        let mut raw = Vec::with_capacity(TOKEN_LEN);
        raw.push(VERSION);
        raw.extend_from_slice(instance.as_bytes());
        raw.extend_from_slice(&(now + u64::from(ttl)).to_be_bytes());
        let mut mac = self.mac();
        mac.update(&raw);
        raw.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks that `token` was issued by us, for `instance`, and has not expired.
    pub fn verify(&self, token: &str, instance: Uuid, now: u64) -> Result<(), TokenError> {
        self.remaining(token, instance, now).map(|_| ())
    }

    /// Like [`TokenAuthority::verify`], and the seconds the token has left.
    pub fn remaining(&self, token: &str, instance: Uuid, now: u64) -> Result<u64, TokenError> {
        if token.len() > MAX_TOKEN_TEXT {
            return Err(TokenError::Malformed);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| TokenError::Malformed)?;
        if raw.len() != TOKEN_LEN || raw[0] != VERSION {
            return Err(TokenError::Malformed);
        }
        let (payload, sig) = raw.split_at(PAYLOAD_LEN);
        let mut mac = self.mac();
        mac.update(payload);
        // Constant-time comparison.
        mac.verify_slice(sig)
            .map_err(|_| TokenError::BadSignature)?;
        if payload[1..17] != *instance.as_bytes() {
            return Err(TokenError::WrongInstance);
        }
        let mut exp = [0u8; 8];
        exp.copy_from_slice(&payload[17..25]);
        let expiry = u64::from_be_bytes(exp);
        if now >= expiry {
            return Err(TokenError::Expired);
        }
        Ok(expiry - now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Uuid = Uuid::from_u128(0xa);
    const B: Uuid = Uuid::from_u128(0xb);

    #[test]
    fn token_is_bound_to_instance_and_time() {
        let auth = TokenAuthority::new([7; 32]);
        let t = auth.issue(A, 60, 1000);
        assert_eq!(auth.verify(&t, A, 1000), Ok(()));
        assert_eq!(auth.verify(&t, A, 1059), Ok(()));
        assert_eq!(auth.remaining(&t, A, 1000), Ok(60));
        assert_eq!(auth.remaining(&t, A, 1059), Ok(1));
        assert_eq!(auth.verify(&t, A, 1060), Err(TokenError::Expired));
        assert_eq!(auth.verify(&t, B, 1000), Err(TokenError::WrongInstance));
        let other = TokenAuthority::new([8; 32]);
        assert_eq!(other.verify(&t, A, 1000), Err(TokenError::BadSignature));
        assert_eq!(auth.verify("nonsense", A, 1000), Err(TokenError::Malformed));
        let mut tampered = t.clone().into_bytes();
        tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert!(auth.verify(&tampered, A, 1000).is_err());
    }

    #[test]
    fn ttl_bounds() {
        assert_eq!(parse_ttl(Some("1")), Ok(1));
        assert_eq!(parse_ttl(Some("21600")), Ok(21600));
        assert!(parse_ttl(Some("0")).is_err());
        assert!(parse_ttl(Some("21601")).is_err());
        assert!(parse_ttl(Some("-1")).is_err());
        assert!(parse_ttl(Some("abc")).is_err());
        assert_eq!(parse_ttl(None), Err(TokenError::TtlMissing));
    }
}
