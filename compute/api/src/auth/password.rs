//! Password hashes: argon2id with a random salt, kept as a PHC string. Checking
//! recomputes the hash and compares in constant time (argon2's own comparison); a
//! login for a user without a hash still spends one hash, so that timing does not
//! tell which user names exist.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// The longest password taken (Keystone's limit is 4096 bytes too).
pub const MAX_PASSWORD_BYTES: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("no randomness for a salt")]
    Random(#[source] getrandom::Error),
    // password_hash's error is not a std::error::Error without its std feature: its
    // text is the message.
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("the password is empty or longer than {MAX_PASSWORD_BYTES} bytes")]
    Length,
}

/// The PHC string of `password`'s argon2id hash with a fresh salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::Length);
    }
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(PasswordError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// A hash of a throwaway password, for [`verify`] without a user.
const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$1pVzX2TMPiJbWTn59Zm6VsYxn/i7zxtd5+Y0W6R2Yxg";

/// Whether `password` matches `stored` (a PHC string); `None` spends the same time
/// and says no.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let (phc, real) = match stored {
        Some(s) => (s, true),
        None => (DECOY, false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_checks_its_password_only() {
        let h = hash("s3cret").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert_ne!(h, hash("s3cret").expect("hash"), "salted");
        assert!(verify("s3cret", Some(&h)));
        assert!(!verify("s3cret!", Some(&h)));
        assert!(!verify("s3cret", None));
        assert!(!verify("x", Some("not a hash")));
        assert!(matches!(hash(""), Err(PasswordError::Length)));
        assert!(PasswordHash::new(DECOY).is_ok());
    }
}
