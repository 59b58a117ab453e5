//! Neutron-style signed proxy headers: `X-Instance-ID-Signature` is the hex
//! HMAC-SHA256 of the instance id under a secret shared with the proxy. Checked in
//! constant time; the secret is never logged.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The shared secret, read once from `--proxy-shared-secret-file`, kept as the
/// keyed MAC state (the key's two blocks hashed once, not per request).
#[derive(Clone)]
pub struct SharedSecret(Hmac<Sha256>);

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSecret(<secret>)")
    }
}

impl SharedSecret {
    /// The secret from a file's bytes (a trailing newline is not part of it).
    pub fn from_file_bytes(bytes: &[u8]) -> Self {
        let mut b = bytes.to_vec();
        while matches!(b.last(), Some(b'\n' | b'\r')) {
            b.pop();
        }
        // HMAC accepts keys of any length: this cannot fail.
        #[allow(clippy::expect_used)]
        let mac = Hmac::<Sha256>::new_from_slice(&b).expect("hmac takes any key length");
        SharedSecret(mac)
    }

    fn mac(&self) -> Hmac<Sha256> {
        self.0.clone()
    }

    /// The signature a proxy sends for `instance_id` (hex, lowercase).
    pub fn sign(&self, instance_id: &str) -> String {
        let mut mac = self.mac();
        mac.update(instance_id.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `signature` (hex, either case) signs `instance_id`; constant time.
    pub fn verify(&self, instance_id: &str, signature: &str) -> bool {
        let mut sig = [0u8; 32];
        if hex::decode_to_slice(signature.trim(), &mut sig).is_err() {
            return false;
        }
        let mut mac = self.mac();
        mac.update(instance_id.as_bytes());
        mac.verify_slice(&sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_neutron() {
        // hmac.new(b"secret", b"abc", hashlib.sha256).hexdigest()
        let s = SharedSecret::from_file_bytes(b"secret\n");
        let sig = s.sign("abc");
        assert_eq!(
            sig,
            "9946dad4e00e913fc8be8e5d3f7e110a4a9e832f83fb09c345285d78638d8a0e"
        );
        assert!(s.verify("abc", &sig));
        assert!(s.verify("abc", &sig.to_uppercase()));
        assert!(!s.verify("abd", &sig));
        assert!(!s.verify("abc", "zz"));
        assert!(!s.verify("abc", &sig[..10]));
    }
}
