//! Key generation for `keypair-add` without a public key: `ssh-keygen` makes an
//! ed25519 pair in a private temporary folder that is removed afterwards; the
//! private key is handed back once and kept nowhere. Parsing and fingerprinting the
//! public key stay in the core (`compute::keypair`).

use compute_io::tool::{ToolError, SSH_KEYGEN};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum KeyGenError {
    #[error("cannot make a private folder for key generation")]
    TempDir(#[source] std::io::Error),
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("ssh-keygen failed: {stderr}")]
    Failed { stderr: String },
    #[error("cannot read the generated key {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A new key pair, in OpenSSH's formats.
pub struct GeneratedKey {
    pub private: String,
    pub public: String,
}

/// Generates an ed25519 key pair whose public key carries `comment`.
pub fn generate(comment: &str) -> Result<GeneratedKey, KeyGenError> {
    let dir = tempfile::tempdir().map_err(KeyGenError::TempDir)?;
    let path = dir.path().join("key");
    let out = SSH_KEYGEN
        .command()
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(&path)
        .output()
        .map_err(|e| SSH_KEYGEN.error(e))?;
    if !out.status.success() {
        return Err(KeyGenError::Failed {
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    let read = |path: PathBuf| {
        std::fs::read_to_string(&path).map_err(|source| KeyGenError::Read { path, source })
    };
    Ok(GeneratedKey {
        private: read(path.clone())?,
        public: read(path.with_extension("pub"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use compute::keypair::Keypair;

    #[test]
    fn a_generated_key_is_a_valid_openssh_pair() {
        let key = generate("ops key").expect("ssh-keygen (package openssh-client)");
        assert!(
            key.private
                .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"),
            "{}",
            key.private
        );
        assert!(key.public.starts_with("ssh-ed25519 "), "{}", key.public);
        assert!(
            key.public.trim_end().ends_with(" ops key"),
            "{}",
            key.public
        );
        let kp = Keypair::new("ops", &key.public).expect("the core accepts it");
        assert_eq!(
            kp.fingerprint.len(),
            47,
            "MD5 as aa:bb:..: {}",
            kp.fingerprint
        );
        assert_ne!(
            generate("ops key").expect("again").public,
            key.public,
            "each call makes a new key"
        );
    }
}
