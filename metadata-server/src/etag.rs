//! Entity tags of metadata answers (GCE-style change detection): the tag of an
//! answer is a digest of its bytes, so it changes exactly when they do, and two
//! servers (or one before and after a restart) give the same bytes the same tag.
//!
//! `meta_data.json` carries a fresh `random_seed` in every answer (as Nova's does);
//! its tag covers everything but the seed, so that a client can still tell when the
//! document changed. Pure: digests and comparisons, no I/O; the render cache keeps
//! each leaf's tag so it is computed once per rendered leaf.

use compute::metadata::Body;
use http::header::IF_NONE_MATCH;
use http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};
use std::num::NonZeroU64;

/// A tag: the first 64 bits of the SHA-256 of the bytes, shown as 16 hex digits
/// in quotes (`"0123456789abcdef"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Etag(NonZeroU64);

impl Etag {
    fn of_digest(d: Sha256) -> Etag {
        let bytes = d.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&bytes[..8]);
        Etag(NonZeroU64::new(u64::from_be_bytes(first)).unwrap_or(NonZeroU64::MIN))
    }

    /// The tag of an answer whose bytes are `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> Etag {
        Etag::of_digest(Sha256::new_with_prefix(bytes))
    }

    /// The tag of a rendered file: its bytes, or for a seeded body everything
    /// around the seed (which is fresh in every answer).
    pub fn of_body(body: &Body) -> Etag {
        match body {
            Body::Static(b) => Etag::of_bytes(b),
            Body::Seeded { head, tail } => {
                let mut d = Sha256::new();
                d.update(b"seeded\0");
                d.update((head.len() as u64).to_le_bytes());
                d.update(head);
                d.update(tail);
                Etag::of_digest(d)
            }
        }
    }

    /// The `ETag` header.
    pub fn header_value(self) -> HeaderValue {
        let mut text = [b'"'; 18];
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, b) in self.0.get().to_be_bytes().iter().enumerate() {
            text[1 + 2 * i] = HEX[usize::from(b >> 4)];
            text[2 + 2 * i] = HEX[usize::from(b & 0xf)];
        }
        HeaderValue::from_bytes(&text).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
    }

    /// Whether a client's spelling names this tag: `"abc"`, `W/"abc"` (weak
    /// comparison, as for `If-None-Match`) or a bare `abc` (GCE's `last_etag`).
    pub fn named_by(self, spelled: &str) -> bool {
        let t = spelled.trim();
        let t = t.strip_prefix("W/").unwrap_or(t);
        let t = t
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(t);
        t.len() == 16 && u64::from_str_radix(t, 16).is_ok_and(|v| v == self.0.get())
    }

    /// Whether the request's `If-None-Match` names this tag (`*` names any).
    pub fn if_none_match(self, headers: &HeaderMap) -> bool {
        headers
            .get_all(IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim() == "*" || self.named_by(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn tags_follow_the_bytes_and_leave_the_seed_out() {
        let a = Etag::of_bytes(b"{\"a\": 1}");
        assert_eq!(
            a,
            Etag::of_body(&Body::Static(Bytes::from_static(b"{\"a\": 1}")))
        );
        assert_ne!(a, Etag::of_bytes(b"{\"a\": 2}"));
        let shown = a.header_value();
        assert_eq!(shown.len(), 18);
        assert!(a.named_by(shown.to_str().expect("text")));
        let seeded = |head: &'static [u8], tail: &'static [u8]| Body::Seeded {
            head: Bytes::from_static(head),
            tail: Bytes::from_static(tail),
        };
        assert_eq!(
            Etag::of_body(&seeded(b"ab", b"c")),
            Etag::of_body(&seeded(b"ab", b"c"))
        );
        assert_ne!(
            Etag::of_body(&seeded(b"ab", b"c")),
            Etag::of_body(&seeded(b"a", b"bc"))
        );
        assert_ne!(Etag::of_body(&seeded(b"ab", b"c")), Etag::of_bytes(b"abc"));
    }

    #[test]
    fn if_none_match_takes_lists_weak_tags_and_stars() {
        let t = Etag::of_bytes(b"x");
        let ours = t.header_value();
        let ours = ours.to_str().expect("text");
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.append(IF_NONE_MATCH, HeaderValue::from_str(v).expect("value"));
            m
        };
        assert!(t.if_none_match(&h(ours)));
        assert!(t.if_none_match(&h(&format!("\"x\", W/{ours}"))));
        assert!(t.if_none_match(&h("*")));
        assert!(!t.if_none_match(&h("\"0000000000000001\"")));
        assert!(!t.if_none_match(&HeaderMap::new()));
        assert!(t.named_by(ours.trim_matches('"')), "GCE's bare spelling");
        assert!(!t.named_by("zz"));
    }
}
