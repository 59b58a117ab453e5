//! The rendered metadata tree: directories with their listing bytes, files with their
//! bytes and content type. The server answers a request with one lookup in it; the
//! `render --view service` command writes it out. Building it is the renderer's job.

use bytes::Bytes;
use std::sync::Arc;

/// The `Content-Type` a file is served with, as Nova (through webob) sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// `application/json`, for `meta_data.json` and the vendor data files.
    Json,
    /// `text/plain; charset=UTF-8`, for everything else (a Nova quirk for
    /// `network_data.json` included).
    Text,
    /// `application/octet-stream`: `user-data` at the AWS versions, as AWS sends it.
    Binary,
}

impl ContentType {
    pub fn header_value(self) -> &'static str {
        match self {
            ContentType::Json => "application/json",
            ContentType::Text => "text/plain; charset=UTF-8",
            ContentType::Binary => "application/octet-stream",
        }
    }
}

/// A file's bytes. `meta_data.json` of an instance without a stored seed is split
/// around its `random_seed` value, so the server can splice in fresh randomness per
/// request (as Nova does) without re-rendering and while the renderer stays pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Static(Bytes),
    Seeded { head: Bytes, tail: Bytes },
}

impl Body {
    /// The bytes with `seed_b64` spliced in where the seed goes (ignored when static).
    pub fn with_seed(&self, seed_b64: &str) -> Bytes {
        match self {
            Body::Static(b) => b.clone(),
            Body::Seeded { head, tail } => {
                let mut v = Vec::with_capacity(head.len() + seed_b64.len() + tail.len());
                v.extend_from_slice(head);
                v.extend_from_slice(seed_b64.as_bytes());
                v.extend_from_slice(tail);
                Bytes::from(v)
            }
        }
    }

    /// Length of the body once a seed of `seed_len` characters is spliced in.
    pub fn len_with_seed(&self, seed_len: usize) -> usize {
        match self {
            Body::Static(b) => b.len(),
            Body::Seeded { head, tail } => head.len() + seed_len + tail.len(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub body: Body,
    pub content_type: ContentType,
}

/// One name in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir(Arc<Dir>),
    File(File),
    /// The password endpoint of an OpenStack version: its state lives in the server.
    Password,
    /// A leaf whose bytes the server makes from what the renderer must not do or
    /// know (signing, operator-scheduled events).
    Live(LiveLeaf),
}

/// The leaves of [`Entry::Live`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LiveLeaf {
    /// `dynamic/instance-identity/signature`: the sibling `document`, signed.
    IdentitySignature,
    /// `dynamic/instance-identity/pkcs7`: the sibling `document` in a PKCS#7 envelope.
    IdentityPkcs7,
    /// `dynamic/instance-identity/rsa2048`: the same form as `pkcs7`.
    IdentityRsa2048,
    /// `meta-data/events/maintenance/scheduled`: a JSON list, `[]` by default.
    MaintenanceScheduled,
    /// `meta-data/events/maintenance/history`: a JSON list, `[]` by default.
    MaintenanceHistory,
}

/// A directory: its children sorted by name, and the bytes of its listing. A
/// directory without a listing (like `/openstack/content`) answers 404 itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dir {
    pub listing: Option<Bytes>,
    /// How the parent lists this directory when not as `name/` (EC2 public keys
    /// show as `0=keyname`).
    pub display_name: Option<Arc<str>>,
    entries: Vec<(Arc<str>, Entry)>,
}

impl Dir {
    /// A directory listing `listing`; children are added with [`Dir::insert`].
    pub fn new(listing: Option<Bytes>) -> Self {
        Self::with_capacity(listing, 0)
    }

    /// A directory with room for `children` entries.
    pub fn with_capacity(listing: Option<Bytes>, children: usize) -> Self {
        Dir {
            listing,
            display_name: None,
            entries: Vec::with_capacity(children),
        }
    }

    /// Adds or replaces a child.
    pub fn insert(&mut self, name: &str, entry: Entry) {
        self.insert_shared(Arc::from(name), entry);
    }

    /// Adds or replaces a child under a name shared with other directories (the
    /// same key in every version), without copying the name.
    pub fn insert_shared(&mut self, name: Arc<str>, entry: Entry) {
        // Children usually arrive in order: appending is the common case.
        if self.entries.last().is_none_or(|(last, _)| **last < *name) {
            self.entries.push((name, entry));
            return;
        }
        match self.entries.binary_search_by(|(n, _)| (**n).cmp(&*name)) {
            Ok(i) => self.entries[i].1 = entry,
            Err(i) => self.entries.insert(i, (name, entry)),
        }
    }

    /// Children with their shared names, sorted.
    pub fn shared_entries(&self) -> impl Iterator<Item = &(Arc<str>, Entry)> {
        self.entries.iter()
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries
            .binary_search_by(|(n, _)| (**n).cmp(name))
            .ok()
            .map(|i| &self.entries[i].1)
    }

    /// Children, sorted by name.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(n, e)| (&**n, e))
    }
}

/// Listing bytes as Nova prints a list: entries joined by `\n`, no trailing newline.
pub fn listing<I, S>(names: I) -> Bytes
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::with_capacity(256);
    for (i, n) in names.into_iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(n.as_ref());
    }
    Bytes::from(out)
}
