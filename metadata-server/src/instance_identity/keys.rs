//! The key and certificate that sign instance identity documents: the operator's
//! (`--identity-key FILE --identity-cert FILE`), or an RSA-2048 key and a self-signed
//! certificate made once and kept in the server's data folder (key mode 0600), so
//! that a verifier can be handed the certificate (`metadata-server identity-cert`).

use super::IdentityError;
use der::pem::LineEnding;
use der::referenced::OwnedToRef;
use der::{DecodePem, EncodePem};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

/// Size of the key we make.
const KEY_BITS: usize = 2048;
/// The smallest operator key we accept.
const MIN_KEY_BITS: usize = 2048;
/// How long a made certificate is valid (AWS's own last decades, too).
const CERT_LIFETIME: Duration = Duration::from_secs(20 * 365 * 24 * 3600);
/// The subject of the certificate we make.
const SUBJECT: &str = "CN=metadata-server instance identity";

/// File names in the identity folder.
pub const KEY_FILE: &str = "key.pem";
pub const CERT_FILE: &str = "cert.pem";

/// A private key and the certificate of its public half.
pub struct IdentityKeys {
    pub(super) key: RsaPrivateKey,
    pub(super) cert: Certificate,
    cert_pem: String,
}

impl std::fmt::Debug for IdentityKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityKeys")
            .field("key", &"<secret>")
            .field("subject", &self.cert.tbs_certificate.subject.to_string())
            .finish()
    }
}

impl IdentityKeys {
    /// The certificate, PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    /// An operator's key (PKCS#8 or PKCS#1 PEM) and certificate (PEM): the
    /// certificate must be of that key.
    pub fn from_files(key_path: &Path, cert_path: &Path) -> Result<Self, IdentityError> {
        let key_pem = read(key_path)?;
        let key = parse_key(&key_pem).ok_or_else(|| IdentityError::KeyParse {
            path: key_path.to_owned(),
        })?;
        if key.size() * 8 < MIN_KEY_BITS {
            return Err(IdentityError::KeyTooSmall {
                path: key_path.to_owned(),
                bits: key.size() * 8,
            });
        }
        let cert_pem = read(cert_path)?;
        let cert = Certificate::from_pem(cert_pem.as_bytes()).map_err(|source| {
            IdentityError::CertParse {
                path: cert_path.to_owned(),
                source,
            }
        })?;
        let cert_key =
            RsaPublicKey::try_from(cert.tbs_certificate.subject_public_key_info.owned_to_ref())
                .ok();
        if cert_key.as_ref() != Some(key.as_ref()) {
            return Err(IdentityError::KeyCertMismatch {
                key: key_path.to_owned(),
                cert: cert_path.to_owned(),
            });
        }
        Ok(IdentityKeys {
            key,
            cert,
            cert_pem,
        })
    }

    /// The key and certificate kept in `dir`, made there first when absent. Several
    /// servers starting at once agree on one pair (an exclusive lock on the folder).
    pub fn load_or_create(dir: &Path) -> Result<Self, IdentityError> {
        std::fs::create_dir_all(dir).map_err(|source| IdentityError::Write {
            path: dir.to_owned(),
            source,
        })?;
        let lock_path = dir.join(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| IdentityError::Write {
                path: lock_path.clone(),
                source,
            })?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).map_err(|e| {
            IdentityError::Write {
                path: lock_path.clone(),
                source: e.into(),
            }
        })?;
        let (key_path, cert_path) = (dir.join(KEY_FILE), dir.join(CERT_FILE));
        if key_path.exists() && cert_path.exists() {
            tighten(&key_path)?;
            return Self::from_files(&key_path, &cert_path);
        }
        let made = Self::generate()?;
        let key_pem = made
            .key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|source| IdentityError::KeyEncode { source })?;
        write_atomically(&key_path, key_pem.as_bytes(), 0o600)?;
        write_atomically(&cert_path, made.cert_pem.as_bytes(), 0o644)?;
        tracing::info!(dir = %dir.display(), "made an identity key and self-signed certificate");
        Ok(made)
    }

    /// The certificate kept in `dir`, for `metadata-server identity-cert`.
    pub fn stored_certificate(dir: &Path) -> Result<String, IdentityError> {
        read(&dir.join(CERT_FILE))
    }

    /// A fresh RSA-2048 key and a self-signed certificate for it.
    pub fn generate() -> Result<Self, IdentityError> {
        let mut rng = rsa::rand_core::OsRng;
        let key = RsaPrivateKey::new(&mut rng, KEY_BITS)
            .map_err(|source| IdentityError::Generate { source })?;
        let cert = self_signed(&key)?;
        let cert_pem = cert
            .to_pem(LineEnding::LF)
            .map_err(|source| IdentityError::CertBuild {
                source: source.into(),
            })?;
        Ok(IdentityKeys {
            key,
            cert,
            cert_pem,
        })
    }
}

fn read(path: &Path) -> Result<String, IdentityError> {
    std::fs::read_to_string(path).map_err(|source| IdentityError::Read {
        path: path.to_owned(),
        source,
    })
}

fn parse_key(pem: &str) -> Option<RsaPrivateKey> {
    RsaPrivateKey::from_pkcs8_pem(pem)
        .ok()
        .or_else(|| RsaPrivateKey::from_pkcs1_pem(pem).ok())
}

/// The key file we keep must be ours alone: put it back to 0600 if it drifted.
fn tighten(path: &Path) -> Result<(), IdentityError> {
    let meta = std::fs::metadata(path).map_err(|source| IdentityError::Read {
        path: path.to_owned(),
        source,
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(path = %path.display(), "identity key was readable by others; setting mode 0600");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
            |source| IdentityError::Write {
                path: path.to_owned(),
                source,
            },
        )?;
    }
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), IdentityError> {
    Ok(compute_io::atomic::replace(path, bytes, mode)?)
}

fn self_signed(key: &RsaPrivateKey) -> Result<Certificate, IdentityError> {
    let build = |e: x509_cert::builder::Error| IdentityError::CertBuild { source: e };
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
    let mut serial = [0u8; 16];
    getrandom::getrandom(&mut serial).map_err(|e| IdentityError::Random {
        source: std::io::Error::other(e.to_string()),
    })?;
    serial[0] &= 0x7f; // a positive INTEGER
    serial[0] |= 0x01; // without a leading zero byte
    let serial = SerialNumber::new(&serial).map_err(|e| build(e.into()))?;
    // A day of slack before now for guests whose clocks lag.
    let now = SystemTime::now();
    let validity = Validity {
        not_before: Time::try_from(now - Duration::from_secs(24 * 3600))
            .map_err(|e| build(e.into()))?,
        not_after: Time::try_from(now + CERT_LIFETIME).map_err(|e| build(e.into()))?,
    };
    let subject = Name::from_str(SUBJECT).map_err(|e| build(e.into()))?;
    let spki = SubjectPublicKeyInfoOwned::from_key(key.to_public_key())
        .map_err(|e| build(x509_cert::builder::Error::from(e)))?;
    // A self-signed end-entity certificate: its key signs documents, nothing else.
    let profile = Profile::Leaf {
        issuer: subject.clone(),
        enable_key_agreement: false,
        enable_key_encipherment: false,
    };
    CertificateBuilder::new(profile, serial, validity, subject, spki, &signer)
        .map_err(build)?
        .build::<rsa::pkcs1v15::Signature>()
        .map_err(build)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_keys_are_kept_private_and_reloaded_the_same() {
        let dir = tempfile::tempdir().expect("tempdir");
        let made = IdentityKeys::load_or_create(dir.path()).expect("made");
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = IdentityKeys::load_or_create(dir.path()).expect("loaded");
        assert_eq!(made.certificate_pem(), again.certificate_pem());
        assert_eq!(
            IdentityKeys::stored_certificate(dir.path()).expect("stored"),
            made.certificate_pem()
        );
        std::fs::set_permissions(
            dir.path().join(KEY_FILE),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        IdentityKeys::load_or_create(dir.path()).expect("loaded");
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "tightened again");
    }

    #[test]
    fn a_certificate_of_another_key_or_garbage_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = tempfile::tempdir().expect("tempdir");
        let b = tempfile::tempdir().expect("tempdir");
        IdentityKeys::load_or_create(a.path()).expect("a");
        IdentityKeys::load_or_create(b.path()).expect("b");
        let err = IdentityKeys::from_files(&a.path().join(KEY_FILE), &b.path().join(CERT_FILE))
            .expect_err("mismatch");
        assert!(
            matches!(err, IdentityError::KeyCertMismatch { .. }),
            "{err}"
        );
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a key").expect("write");
        let err = IdentityKeys::from_files(&junk, &b.path().join(CERT_FILE)).expect_err("junk");
        assert!(matches!(err, IdentityError::KeyParse { .. }), "{err}");
        let err = IdentityKeys::from_files(&a.path().join(KEY_FILE), &junk).expect_err("junk");
        assert!(matches!(err, IdentityError::CertParse { .. }), "{err}");
        let err = IdentityKeys::from_files(&dir.path().join("absent"), &junk).expect_err("absent");
        assert!(matches!(err, IdentityError::Read { .. }), "{err}");
    }
}
