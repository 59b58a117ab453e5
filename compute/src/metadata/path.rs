//! Request paths, normalised the way Nova normalises them.
//!
//! Nova runs `posixpath.normpath` on the decoded path, so a trailing `/`, `//` and
//! `.` make no difference and `..` pops a segment (never above the root); then any
//! first segment other than `ec2` or `openstack` is taken as an EC2 version, i.e. the
//! path is read as if it started with `/ec2`. Query strings are not part of the path.
//!
//! Every request parses its path, so a path of the usual shape (a few short
//! segments) is held without a heap allocation.

use compact_str::CompactString;
use smallvec::SmallVec;
use std::borrow::Cow;

/// One segment: up to 24 bytes inline, as every name we serve is.
pub type Segment = CompactString;

/// Longest request path we look at; longer ones cannot name anything we serve.
pub const MAX_PATH_LEN: usize = 1024;

/// A normalised path: its first segment is always `ec2` or `openstack`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataPath {
    segments: SmallVec<[Segment; 6]>,
}

impl MetadataPath {
    /// Normalises a raw request path (percent-encoded, query allowed). `None` when the
    /// path is too long or does not decode to UTF-8: such a path names nothing.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.split(['?', '#']).next().unwrap_or("");
        if raw.len() > MAX_PATH_LEN {
            return None;
        }
        // Like webob's `path_info`, decode first: an encoded `/` separates segments.
        let decoded = percent_decode(raw)?;
        let mut segments = SmallVec::new();
        for seg in decoded.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    segments.pop();
                }
                _ => segments.push(Segment::new(seg)),
            }
        }
        match segments.first().map(Segment::as_str) {
            Some("ec2") | Some("openstack") => {}
            _ => segments.insert(0, Segment::const_new("ec2")),
        }
        Some(MetadataPath { segments })
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// True for `/` (and `/ec2`): the EC2 version listing.
    pub fn is_ec2_versions(&self) -> bool {
        self.segments.len() == 1 && self.segments[0] == "ec2"
    }

    /// True for `/openstack`: the OpenStack version listing.
    pub fn is_openstack_versions(&self) -> bool {
        self.segments.len() == 1 && self.segments[0] == "openstack"
    }

    /// The normalised path, for logs: `/ec2/latest/meta-data`.
    pub fn display(&self) -> String {
        let mut s = String::new();
        for seg in &self.segments {
            s.push('/');
            s.push_str(seg);
        }
        s
    }
}

fn percent_decode(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.contains('%') {
        return Some(Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<Segment> {
        MetadataPath::parse(p).expect("parses").segments().to_vec()
    }

    #[test]
    fn normalises_like_nova() {
        assert_eq!(segs("/"), ["ec2"]);
        assert_eq!(segs(""), ["ec2"]);
        assert_eq!(segs("/ec2"), ["ec2"]);
        assert_eq!(segs("/latest/meta-data/"), ["ec2", "latest", "meta-data"]);
        assert_eq!(segs("//latest//meta-data"), ["ec2", "latest", "meta-data"]);
        assert_eq!(
            segs("/ec2/latest/./meta-data"),
            ["ec2", "latest", "meta-data"]
        );
        assert_eq!(
            segs("/openstack/latest/../2012-08-10/meta_data.json"),
            ["openstack", "2012-08-10", "meta_data.json"]
        );
        assert_eq!(segs("/../../../etc/passwd"), ["ec2", "etc", "passwd"]);
        assert_eq!(segs("/openstack?x=1"), ["openstack"]);
        assert_eq!(segs("/latest/meta%2Ddata"), ["ec2", "latest", "meta-data"]);
        assert!(MetadataPath::parse("/latest/%ff").is_none());
        assert!(MetadataPath::parse("/latest/%4").is_none());
        assert_eq!(segs("/latest%2fmeta-data"), ["ec2", "latest", "meta-data"]);
        assert!(MetadataPath::parse(&"/a".repeat(600)).is_none());
        assert!(MetadataPath::parse("/openstack")
            .expect("ok")
            .is_openstack_versions());
        assert!(MetadataPath::parse("/").expect("ok").is_ec2_versions());
    }
}
