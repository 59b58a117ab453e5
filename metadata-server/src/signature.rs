//! Neutron-style signed proxy headers: `X-Instance-ID-Signature` is the hex
//! HMAC-SHA256 of the instance id under a secret shared with the proxy. Checked in
//! constant time; the secret is never logged.
//!
//! A proxy signs the same instance id the same way on every request, so each
//! thread remembers the signatures it has verified (a small table per thread, by
//! secret and instance id): a request whose signature equals, byte for byte and
//! compared in constant time, one already verified for that id under that secret
//! skips the HMAC. Only verified signatures are remembered, so the table can only
//! say yes to what the HMAC said yes to.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use subtle::ConstantTimeEq;

/// The shared secret, read once from `--proxy-shared-secret-file`, kept as the
/// keyed MAC state (the key's two blocks hashed once, not per request).
#[derive(Clone)]
pub struct SharedSecret {
    mac: Hmac<Sha256>,
    /// Which secret this is, for the verified-signature tables (never reused).
    id: u64,
}

static SECRET_IDS: AtomicU64 = AtomicU64::new(1);

/// Instance ids up to this long are remembered (a uuid is 36).
const MEMO_ID: usize = 64;
/// Slots in each thread's table of verified signatures.
const MEMO_SLOTS: usize = 1024;

/// One verified signature: the secret's id (0: empty), the instance id and the MAC.
#[derive(Clone, Copy)]
struct Verified {
    secret: u64,
    len: u8,
    id: [u8; MEMO_ID],
    mac: [u8; 32],
}

const EMPTY: Verified = Verified {
    secret: 0,
    len: 0,
    id: [0; MEMO_ID],
    mac: [0; 32],
};

thread_local! {
    static VERIFIED: RefCell<Box<[Verified]>> = RefCell::new(vec![EMPTY; MEMO_SLOTS].into_boxed_slice());
}

fn slot(secret: u64, id: &[u8]) -> usize {
    use std::hash::BuildHasher;
    (foldhash::fast::FixedState::with_seed(secret).hash_one(id) >> 32) as usize % MEMO_SLOTS
}

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
        SharedSecret {
            mac,
            id: SECRET_IDS.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        self.mac.clone()
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
        let id = instance_id.as_bytes();
        let memo = (id.len() <= MEMO_ID).then(|| slot(self.id, id));
        if let Some(i) = memo {
            let known = VERIFIED.with(|t| {
                let v = &t.borrow()[i];
                v.secret == self.id
                    && usize::from(v.len) == id.len()
                    && &v.id[..id.len()] == id
                    && bool::from(v.mac.ct_eq(&sig))
            });
            if known {
                return true;
            }
        }
        let mut mac = self.mac();
        mac.update(id);
        let ok = mac.verify_slice(&sig).is_ok();
        if let (true, Some(i)) = (ok, memo) {
            VERIFIED.with(|t| {
                let mut v = Verified {
                    secret: self.id,
                    len: id.len() as u8,
                    mac: sig,
                    ..EMPTY
                };
                v.id[..id.len()].copy_from_slice(id);
                t.borrow_mut()[i] = v;
            });
        }
        ok
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

    #[test]
    fn a_remembered_signature_vouches_only_for_its_id_and_secret() {
        let s = SharedSecret::from_file_bytes(b"secret");
        let other = SharedSecret::from_file_bytes(b"other");
        let sig = s.sign("abc");
        // Twice: the second answer comes from the table.
        assert!(s.verify("abc", &sig));
        assert!(s.verify("abc", &sig));
        // Another id, another secret, or one flipped bit: the HMAC decides, and says no.
        assert!(!s.verify("abd", &sig));
        assert!(!other.verify("abc", &sig));
        let mut flipped = sig.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        assert!(!s.verify("abc", std::str::from_utf8(&flipped).expect("ascii")));
        // A failed check is not remembered, and the good one still passes.
        assert!(s.verify("abc", &s.sign("abc")));
        // Ids longer than the table keeps are checked every time, correctly.
        let long = "x".repeat(MEMO_ID + 1);
        assert!(s.verify(&long, &s.sign(&long)));
        assert!(!s.verify(&long, &sig));
    }
}
