//! The root password: SHA-512 crypt for `/etc/shadow`, generation, and encryption
//! for the password endpoint (RSA PKCS#1 v1.5 with the instance's SSH key, base64:
//! what `nova get-password` decrypts). Pure apart from the random source.

use base64::Engine;

/// Nova stores at most 4 chunks of 255 bytes; an RSA-4096 blob in base64 fits.
pub const MAX_POST_BYTES: usize = 1020;
const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
const GENERATED_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    // error-style: allow (`CryptError` is not a `std::error::Error`, so it is shown here)
    #[error("cannot hash the password ({0:?})")]
    Crypt(sha_crypt::CryptError),
    #[error("no random numbers from the kernel")]
    Random(#[source] getrandom::Error),
    #[error("the instance has no ssh-rsa key to encrypt a password with")]
    NoRsaKey,
    #[error("the SSH key cannot be read")]
    Key(#[from] ssh_key::Error),
    #[error("the SSH key is not an RSA key")]
    NotRsa,
    #[error("RSA encryption failed")]
    Rsa(#[from] rsa::Error),
    #[error("the encrypted password is {0} bytes of base64, more than the {MAX_POST_BYTES} the endpoint takes")]
    TooLong(usize),
    #[error("/etc/shadow is not UTF-8")]
    ShadowNotText,
}

/// `$6$...`: SHA-512 crypt with a fresh salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let params =
        sha_crypt::Sha512Params::new(sha_crypt::ROUNDS_DEFAULT).map_err(PasswordError::Crypt)?;
    sha_crypt::sha512_simple(password, &params).map_err(PasswordError::Crypt)
}

/// A random password of unambiguous letters and digits.
pub fn generate() -> Result<String, PasswordError> {
    let mut out = String::with_capacity(GENERATED_LEN);
    let mut buf = [0u8; 64];
    while out.len() < GENERATED_LEN {
        getrandom::getrandom(&mut buf).map_err(PasswordError::Random)?;
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - 256 % ALPHABET.len();
        for b in buf.iter().map(|b| usize::from(*b)).filter(|b| *b < limit) {
            if out.len() < GENERATED_LEN {
                out.push(char::from(ALPHABET[b % ALPHABET.len()]));
            }
        }
    }
    Ok(out)
}

/// Encrypts with an OpenSSH `ssh-rsa` public key, PKCS#1 v1.5, then base64.
pub fn encrypt_for(openssh_key: &str, password: &str) -> Result<String, PasswordError> {
    let key = ssh_key::PublicKey::from_openssh(openssh_key)?;
    let rsa_key = key.key_data().rsa().ok_or(PasswordError::NotRsa)?;
    let public: rsa::RsaPublicKey = rsa_key.try_into()?;
    let mut rng = rsa::rand_core::OsRng;
    let blob = public.encrypt(&mut rng, rsa::Pkcs1v15Encrypt, password.as_bytes())?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(blob);
    if b64.len() > MAX_POST_BYTES {
        return Err(PasswordError::TooLong(b64.len()));
    }
    Ok(b64)
}

/// `/etc/shadow` with root's hash replaced (or a root line added), the rest kept.
pub fn with_root_hash(
    shadow: &[u8],
    hash: &str,
    days_since_epoch: u64,
) -> Result<String, PasswordError> {
    let text = std::str::from_utf8(shadow).map_err(|_| PasswordError::ShadowNotText)?;
    let mut found = false;
    let mut out = String::with_capacity(text.len() + 128);
    for line in text.lines() {
        let mut fields: Vec<&str> = line.split(':').collect();
        if fields.first() == Some(&"root") && fields.len() >= 2 {
            found = true;
            fields[1] = hash;
            let day = days_since_epoch.to_string();
            if let Some(last_change) = fields.get_mut(2) {
                *last_change = &day;
            }
            out.push_str(&fields.join(":"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if !found {
        out.push_str(&format!("root:{hash}:{days_since_epoch}:0:99999:7:::\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_generates_and_edits_shadow() {
        let h = hash("s3cr3t").expect("hashes");
        assert!(h.starts_with("$6$"), "{h}");
        assert!(sha_crypt::sha512_check("s3cr3t", &h).is_ok());
        let p = generate().expect("random");
        assert_eq!(p.len(), GENERATED_LEN);
        let s = with_root_hash(
            b"root:*:1:0:99999:7:::\ndaemon:*:1:0:99999:7:::\n",
            "$6$x$y",
            20000,
        )
        .expect("text");
        assert_eq!(
            s,
            "root:$6$x$y:20000:0:99999:7:::\ndaemon:*:1:0:99999:7:::\n"
        );
        let s = with_root_hash(b"", "$6$x$y", 5).expect("text");
        assert_eq!(s, "root:$6$x$y:5:0:99999:7:::\n");
        assert!(matches!(encrypt_for("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x", "p"), Err(PasswordError::NotRsa)));
    }
}
