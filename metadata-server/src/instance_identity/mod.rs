//! The signed forms of the EC2 instance identity document
//! (`dynamic/instance-identity/{signature,pkcs7,rsa2048}`).
//!
//! The renderer makes the document (pure); signing it needs a key and costs a private
//! RSA operation, so it happens here, once per document: the forms are cached per
//! instance together with the exact bytes they sign, and a changed document is signed
//! anew on its first request. Answers then cost what any cached leaf costs.
//!
//! - `signature`: RSA PKCS#1 v1.5 over SHA-256 of the document, base64.
//! - `pkcs7` and `rsa2048`: a CMS SignedData (RSA, SHA-256) carrying the document,
//!   DER in base64; `openssl smime -verify -inform PEM -certfile CERT -noverify`
//!   prints the document back. AWS signs `pkcs7` with DSA/SHA-1; we use the one
//!   RSA key for both.

mod keys;

pub use keys::{IdentityKeys, CERT_FILE, KEY_FILE};

use base64::Engine;
use bytes::Bytes;
use cms::builder::{SignedDataBuilder, SignerInfoBuilder};
use cms::cert::IssuerAndSerialNumber;
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};
use compute::metadata::LiveLeaf;
use der::oid::ObjectIdentifier;
use der::Encode;
use lru::LruCache;
use rsa::signature::{SignatureEncoding, Signer};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use uuid::Uuid;
use x509_cert::spki::AlgorithmIdentifierOwned;

/// CMS `id-data` (RFC 5652).
const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
/// `id-sha256` (RFC 5754).
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Replace(#[from] compute_io::atomic::AtomicError),
    #[error("{path} holds no RSA private key in PEM (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`)")]
    KeyParse { path: PathBuf },
    #[error("the key in {path} has {bits} bits; an identity key needs at least 2048")]
    KeyTooSmall { path: PathBuf, bits: usize },
    #[error("{path} holds no X.509 certificate in PEM")]
    CertParse {
        path: PathBuf,
        #[source]
        source: der::Error,
    },
    #[error("the certificate {cert} is not of the key {key}")]
    KeyCertMismatch { key: PathBuf, cert: PathBuf },
    #[error("cannot make an RSA key")]
    Generate {
        #[source]
        source: rsa::Error,
    },
    #[error("cannot encode the identity key")]
    KeyEncode {
        #[source]
        source: rsa::pkcs8::Error,
    },
    #[error("no randomness for the certificate's serial number")]
    Random {
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make the identity certificate")]
    CertBuild {
        #[source]
        source: x509_cert::builder::Error,
    },
    #[error("cannot sign the identity document")]
    Sign {
        #[source]
        source: CmsError,
    },
}

/// What the CMS builder reported (its error type is not a `std::error::Error`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CmsError(String);

impl From<cms::builder::Error> for CmsError {
    fn from(e: cms::builder::Error) -> Self {
        CmsError(e.to_string())
    }
}

impl From<der::Error> for CmsError {
    fn from(e: der::Error) -> Self {
        CmsError(e.to_string())
    }
}

/// A document and its signed forms, as served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDocument {
    pub document: Bytes,
    /// `signature`: base64 in lines of 64.
    pub signature: Bytes,
    /// `pkcs7` and `rsa2048`: base64 of the DER SignedData, in lines of 64.
    pub pkcs7: Bytes,
}

impl SignedDocument {
    /// The bytes of one of the identity leaves (events leaves have none here).
    pub fn form(&self, leaf: LiveLeaf) -> Option<Bytes> {
        match leaf {
            LiveLeaf::IdentitySignature => Some(self.signature.clone()),
            LiveLeaf::IdentityPkcs7 | LiveLeaf::IdentityRsa2048 => Some(self.pkcs7.clone()),
            LiveLeaf::MaintenanceScheduled | LiveLeaf::MaintenanceHistory => None,
        }
    }
}

/// Base64 in lines of 64 characters, no trailing newline (as PEM bodies are).
fn base64_lines(bytes: &[u8]) -> Bytes {
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(text.len() + text.len() / 64);
    for (i, chunk) in text.as_bytes().chunks(64).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        // Base64 is ASCII: every chunk is UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
    }
    Bytes::from(out)
}

/// Signs `document` both ways.
pub fn sign(keys: &IdentityKeys, document: Bytes) -> Result<SignedDocument, IdentityError> {
    let signing_key = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(keys.key.clone());
    let signature = signing_key.sign(&document).to_vec();
    fn failed(e: impl Into<CmsError>) -> IdentityError {
        IdentityError::Sign { source: e.into() }
    }
    let content = EncapsulatedContentInfo {
        econtent_type: ID_DATA,
        econtent: Some(der::Any::new(der::Tag::OctetString, document.to_vec()).map_err(failed)?),
    };
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: keys.cert.tbs_certificate.issuer.clone(),
        serial_number: keys.cert.tbs_certificate.serial_number.clone(),
    });
    let sha256 = AlgorithmIdentifierOwned {
        oid: ID_SHA256,
        parameters: None,
    };
    let signer_info = SignerInfoBuilder::new(&signing_key, sid, sha256.clone(), &content, None)
        .map_err(failed)?;
    let signed_data = SignedDataBuilder::new(&content)
        .add_digest_algorithm(sha256)
        .map_err(failed)?
        .add_signer_info::<_, rsa::pkcs1v15::Signature>(signer_info)
        .map_err(failed)?
        .build()
        .map_err(failed)?;
    let der = signed_data.to_der().map_err(failed)?;
    Ok(SignedDocument {
        document,
        signature: base64_lines(&signature),
        pkcs7: base64_lines(&der),
    })
}

/// Signs documents with one key, keeping each instance's last signed document.
/// Requests only read the cache (a shared lock, no reordering), so they never wait
/// on one another; the eviction order is then the order of signing.
pub struct IdentitySigner {
    keys: IdentityKeys,
    cache: RwLock<LruCache<Uuid, Arc<SignedDocument>>>,
}

impl IdentitySigner {
    /// A signer keeping at most `capacity` instances' signed documents.
    pub fn new(keys: IdentityKeys, capacity: usize) -> Self {
        IdentitySigner {
            keys,
            cache: RwLock::new(LruCache::new(
                NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    pub fn certificate_pem(&self) -> &str {
        self.keys.certificate_pem()
    }

    /// The signed forms of `document` when they are cached (the usual case).
    pub fn cached(&self, instance: Uuid, document: &Bytes) -> Option<Arc<SignedDocument>> {
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        cache
            .peek(&instance)
            .filter(|s| same_bytes(&s.document, document))
            .cloned()
    }

    /// Signs `document` and caches it for `instance` (CPU-bound: call it off the
    /// async workers).
    pub fn sign_and_cache(
        &self,
        instance: Uuid,
        document: Bytes,
    ) -> Result<Arc<SignedDocument>, IdentityError> {
        if let Some(hit) = self.cached(instance, &document) {
            return Ok(hit);
        }
        let signed = Arc::new(sign(&self.keys, document)?);
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        cache.put(instance, signed.clone());
        Ok(signed)
    }
}

/// Equal bytes; the rendered tree hands out the same buffer each time, so the
/// pointer check nearly always answers.
fn same_bytes(a: &Bytes, b: &Bytes) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::signature::Verifier;

    fn keys() -> &'static IdentityKeys {
        static K: std::sync::OnceLock<IdentityKeys> = std::sync::OnceLock::new();
        K.get_or_init(|| IdentityKeys::generate().expect("keys"))
    }

    #[test]
    fn signature_verifies_and_forms_are_base64_lines() {
        let doc = Bytes::from_static(b"{\n  \"instanceId\" : \"i-1\"\n}");
        let signed = sign(keys(), doc.clone()).expect("signed");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(
                signed
                    .signature
                    .iter()
                    .filter(|b| **b != b'\n')
                    .copied()
                    .collect::<Vec<u8>>(),
            )
            .expect("base64");
        let verifying =
            rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(keys().key.to_public_key());
        let sig = rsa::pkcs1v15::Signature::try_from(raw.as_slice()).expect("signature");
        verifying.verify(&doc, &sig).expect("verifies");
        assert!(verifying.verify(b"other", &sig).is_err());
        for form in [&signed.signature, &signed.pkcs7] {
            let text = std::str::from_utf8(form).expect("ascii");
            assert!(text.split('\n').all(|l| l.len() <= 64 && !l.is_empty()));
            assert!(!text.ends_with('\n'));
        }
        assert_eq!(sign(keys(), doc).expect("again"), signed, "deterministic");
    }

    #[test]
    fn cache_holds_the_last_document_per_instance() {
        let signer = IdentitySigner::new(IdentityKeys::generate().expect("keys"), 4);
        let a = Uuid::from_u128(1);
        let d1 = Bytes::from_static(b"one");
        assert!(signer.cached(a, &d1).is_none());
        let s1 = signer.sign_and_cache(a, d1.clone()).expect("signed");
        assert!(Arc::ptr_eq(&s1, &signer.cached(a, &d1).expect("hit")));
        let copy = Bytes::copy_from_slice(b"one");
        assert!(
            signer.cached(a, &copy).is_some(),
            "the same bytes elsewhere are a hit"
        );
        let d2 = Bytes::from_static(b"two");
        assert!(
            signer.cached(a, &d2).is_none(),
            "a changed document is not a hit"
        );
        let s2 = signer.sign_and_cache(a, d2.clone()).expect("signed");
        assert_ne!(s1.signature, s2.signature);
        assert!(signer.cached(a, &d1).is_none());
    }
}
