//! The service view: an instance's metadata tree, built lazily.
//!
//! A guest reads a handful of documents, nearly always of one or two versions; building
//! all twenty version directories up front would cost most of a render for nothing and
//! keep ~70 KiB per cached tree alive. So each version directory is built the first
//! time a lookup reaches it (and kept), from parts that every version shares and that
//! are themselves built once. What a lookup returns does not depend on the order of
//! lookups: every directory is a pure function of the instance and the settings.

use super::aws::AwsParts;
use super::ec2::Ec2Parts;
use super::openstack::{self, Documents};
use super::tree::{Dir, Entry};
use super::version::{Ec2Version, OpenStackVersion};
use super::{Ec2Api, Settings, View};
use crate::instance::Instance;
use std::sync::{Arc, OnceLock};

/// An instance's whole metadata tree, as the service answers it. Paths reach it
/// normalised by [`crate::metadata::MetadataPath`]: `ec2/...` or `openstack/...`.
#[derive(Debug)]
pub struct MetadataTree {
    instance: Arc<Instance>,
    settings: Arc<Settings>,
    ec2_root: Entry,
    openstack_root: Entry,
    ec2: Vec<(Ec2Version, OnceLock<Entry>)>,
    openstack: Vec<(OpenStackVersion, OnceLock<Entry>)>,
    ec2_parts: OnceLock<Ec2Parts>,
    aws_parts: OnceLock<AwsParts>,
    documents: OnceLock<Documents>,
    content: OnceLock<Option<Entry>>,
}

/// Renders what the metadata service serves for one instance (lazily: see the module
/// documentation). Copies its inputs; [`MetadataTree::new`] shares them instead.
pub fn render_service(instance: &Instance, settings: &Settings) -> MetadataTree {
    MetadataTree::new(Arc::new(instance.clone()), Arc::new(settings.clone()))
}

impl MetadataTree {
    pub fn new(instance: Arc<Instance>, settings: Arc<Settings>) -> Self {
        let root = |listing| Entry::Dir(Arc::new(Dir::new(Some(listing))));
        MetadataTree {
            ec2_root: root(settings.ec2_versions_listing()),
            openstack_root: root(settings.openstack_versions_listing()),
            ec2: settings
                .ec2_versions
                .iter()
                .map(|v| (*v, OnceLock::new()))
                .collect(),
            openstack: settings
                .openstack_versions
                .iter()
                .map(|v| (*v, OnceLock::new()))
                .collect(),
            ec2_parts: OnceLock::new(),
            aws_parts: OnceLock::new(),
            documents: OnceLock::new(),
            content: OnceLock::new(),
            instance,
            settings,
        }
    }

    /// The entry at `segments` (already normalised), if any.
    pub fn lookup<S: AsRef<str>>(&self, segments: &[S]) -> Option<&Entry> {
        let (first, rest) = segments.split_first()?;
        let (mut entry, rest) = match (first.as_ref(), rest.split_first()) {
            ("ec2", None) => return Some(&self.ec2_root),
            ("openstack", None) => return Some(&self.openstack_root),
            ("ec2", Some((version, rest))) => (self.ec2_version(version.as_ref())?, rest),
            ("openstack", Some((name, rest))) if name.as_ref() == "content" => {
                (self.content()?, rest)
            }
            ("openstack", Some((version, rest))) => {
                (self.openstack_version(version.as_ref())?, rest)
            }
            _ => return None,
        };
        for seg in rest {
            match entry {
                Entry::Dir(d) => entry = d.get(seg.as_ref())?,
                // Below a leaf there is nothing (Nova crashes here; we answer 404).
                Entry::File(_) | Entry::Password | Entry::Live(_) => return None,
            }
        }
        Some(entry)
    }

    fn ec2_version(&self, name: &str) -> Option<&Entry> {
        let v = match name {
            "latest" => self.settings.latest_ec2()?,
            _ => name.parse().ok()?,
        };
        let (_, cell) = self.ec2.iter().find(|(have, _)| *have == v)?;
        Some(cell.get_or_init(|| {
            let parts = self
                .ec2_parts
                .get_or_init(|| Ec2Parts::new(&self.instance, &self.settings));
            let dir = match self.settings.ec2_api {
                Ec2Api::Nova => parts.nova_version_dir(v),
                Ec2Api::Aws => self.aws_parts.get_or_init(AwsParts::default).version_dir(
                    parts,
                    &self.instance,
                    &self.settings,
                    v,
                ),
            };
            Entry::Dir(Arc::new(dir))
        }))
    }

    fn openstack_version(&self, name: &str) -> Option<&Entry> {
        let v = match name {
            "latest" => self.settings.latest_openstack()?,
            _ => name.parse().ok()?,
        };
        let (_, cell) = self.openstack.iter().find(|(have, _)| *have == v)?;
        Some(cell.get_or_init(|| {
            let docs = self
                .documents
                .get_or_init(|| Documents::new(&self.instance, &self.settings, View::Service));
            Entry::Dir(Arc::new(docs.version_dir(&self.instance, v)))
        }))
    }

    fn content(&self) -> Option<&Entry> {
        self.content
            .get_or_init(|| {
                (self.settings.serve_files && !self.instance.files().is_empty())
                    .then(|| Entry::Dir(Arc::new(openstack::content_dir(&self.instance))))
            })
            .as_ref()
    }

    /// About how many bytes what was built so far holds (listings, file bodies, names
    /// and entries of every version directory built), for a cache that bounds its
    /// memory. Bytes shared between versions are counted once per place they appear;
    /// the instance itself is not counted.
    pub fn built_bytes(&self) -> usize {
        fn size(entry: &Entry) -> usize {
            std::mem::size_of::<Entry>()
                + match entry {
                    Entry::Dir(d) => {
                        std::mem::size_of::<Dir>()
                            + d.listing.as_ref().map_or(0, |l| l.len())
                            + d.entries().map(|(n, e)| n.len() + size(e)).sum::<usize>()
                    }
                    Entry::File(f) => f.body.len_with_seed(0),
                    Entry::Password | Entry::Live(_) => 0,
                }
        }
        let versions = self.ec2.iter().map(|(_, c)| c.get());
        let versions = versions.chain(self.openstack.iter().map(|(_, c)| c.get()));
        std::mem::size_of::<Self>()
            + versions.flatten().map(size).sum::<usize>()
            + self.content.get().and_then(Option::as_ref).map_or(0, size)
    }

    /// Every entry with its path, building whatever was not built yet: for writing the
    /// tree out and for tests.
    pub fn walk(&self) -> Vec<(String, &Entry)> {
        fn go<'a>(prefix: &str, entry: &'a Entry, out: &mut Vec<(String, &'a Entry)>) {
            out.push((prefix.to_owned(), entry));
            if let Entry::Dir(d) = entry {
                for (name, child) in d.entries() {
                    go(&format!("{prefix}/{name}"), child, out);
                }
            }
        }
        let mut out = vec![
            ("ec2".to_owned(), &self.ec2_root),
            ("openstack".to_owned(), &self.openstack_root),
        ];
        let ec2 = self.ec2.iter().map(|(v, _)| v.as_str()).chain(["latest"]);
        for name in ec2 {
            if let Some(e) = self.ec2_version(name) {
                go(&format!("ec2/{name}"), e, &mut out);
            }
        }
        let os = self
            .openstack
            .iter()
            .map(|(v, _)| v.as_str())
            .chain(["latest"]);
        for name in os {
            if let Some(e) = self.openstack_version(name) {
                go(&format!("openstack/{name}"), e, &mut out);
            }
        }
        if let Some(e) = self.content() {
            go("openstack/content", e, &mut out);
        }
        out
    }
}
