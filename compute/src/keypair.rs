//! Keypairs: OpenSSH public keys checked and fingerprinted as Nova does (MD5 of the
//! key blob, colon-separated hex). Generation shells out to `ssh-keygen` in
//! `compute-host`; this module stays pure.

use base64::Engine;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keypair {
    pub name: String,
    pub public_key: String,
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeypairError {
    #[error("keypair name `{0}` is invalid: use 1 to 255 characters of letters, digits, spaces, `.`, `-`, `_`")]
    Name(String),
    #[error("keypair {name}: not an OpenSSH public key ({problem})")]
    Key { name: String, problem: &'static str },
}

/// The OpenSSH public key types Nova and OpenSSH take in `authorized_keys`.
const KEY_TYPES: [&str; 8] = [
    "ssh-rsa",
    "ssh-dss",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Whether `kind` (the first word of a public key line) is an OpenSSH public key type.
pub fn is_openssh_key_type(kind: &str) -> bool {
    KEY_TYPES.contains(&kind)
}

impl Keypair {
    /// Parses `type base64 [comment]` and computes the fingerprint.
    pub fn new(name: &str, public_key: &str) -> Result<Keypair, KeypairError> {
        let ok_name = !name.is_empty()
            && name.len() <= 255
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " .-_".contains(c));
        if !ok_name {
            return Err(KeypairError::Name(name.to_owned()));
        }
        let bad = |problem| KeypairError::Key {
            name: name.to_owned(),
            problem,
        };
        let line = public_key.trim();
        if line.contains('\n') {
            return Err(bad("more than one line"));
        }
        let mut parts = line.split_whitespace();
        let kind = parts.next().ok_or_else(|| bad("empty"))?;
        if !is_openssh_key_type(kind) {
            return Err(bad("unknown key type"));
        }
        let blob = parts.next().ok_or_else(|| bad("no key data"))?;
        let blob = base64::engine::general_purpose::STANDARD
            .decode(blob)
            .map_err(|_| bad("key data is not base64"))?;
        if blob.len() < 4 || !blob[4..].starts_with(kind.as_bytes()) {
            return Err(bad("key data does not match its type"));
        }
        Ok(Keypair {
            name: name.to_owned(),
            public_key: format!("{line}\n"),
            fingerprint: fingerprint(&blob),
        })
    }
}

/// Nova's fingerprint: MD5 of the decoded key blob as `aa:bb:...`.
pub fn fingerprint(blob: &[u8]) -> String {
    let digest = Md5::digest(blob);
    digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    // The key of Nova's test fixtures; its fingerprint is Nova's documented one.
    const NOVA_KEY: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDx8nkQv/zgGgB4rMYmIf+6A4l6Rr+o/6lHBQdW5aYd44bd8JttDCE/F/pNRr0lRE+PiqSPO8nDPHw0010JeMH9gYgnnFlyY3/OcJ02RhIPyyxYpv9FhY+2YiUkpwFOcLImyrxEsYXpD/0d3ac30bNH6Sw9JD9UZHYcpSxsIbECHw== Generated-by-Nova";

    #[test]
    fn fingerprint_is_novas() {
        let k = Keypair::new("mykey", NOVA_KEY).expect("valid key");
        assert_eq!(
            k.fingerprint,
            "1e:2c:9b:56:79:4b:45:77:f9:ca:7a:98:2c:b0:d5:3c"
        );
    }

    #[test]
    fn only_openssh_key_types_are_taken() {
        for kind in [
            "ssh-ed25519",
            "sk-ecdsa-sha2-nistp256@openssh.com",
            "ssh-rsa",
        ] {
            assert!(is_openssh_key_type(kind), "{kind}");
        }
        for kind in ["ssh-ed25519-cert-v01@openssh.com", "x509", ""] {
            assert!(!is_openssh_key_type(kind), "{kind}");
        }
    }

    #[test]
    fn junk_is_refused() {
        assert!(matches!(
            Keypair::new("k", "hello"),
            Err(KeypairError::Key { .. })
        ));
        assert!(matches!(
            Keypair::new("k", "ssh-rsa !!!"),
            Err(KeypairError::Key { .. })
        ));
        assert!(matches!(
            Keypair::new("k/x", NOVA_KEY),
            Err(KeypairError::Name(_))
        ));
    }
}
