//! The EC2-compatible tree: one `meta-data` object per version, in Nova's key order.
//!
//! The object is the single source for both forms: the service walks it as
//! directories and leaves (printed like Nova's `ec2_md_print`), and drives store it as
//! `ec2/<version>/meta-data.json`. The versions after Nova's (AWS's) build on it in
//! [`super::aws`], which this module does not know; Nova's versions keep Nova's answers.

use super::tree::{listing, Body, ContentType, Dir, Entry, File};
use super::version::Ec2Version as V;
use super::Settings;
use crate::instance::Instance;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The oldest version that has `key` (Nova adds keys as versions go up).
fn since(key: &str) -> V {
    match key {
        "local-hostname" | "public-hostname" | "public-ipv4" => V::V2007_01_19,
        "instance-type" => V::V2007_08_29,
        "block-device-mapping" | "kernel-id" | "ramdisk-id" => V::V2007_12_15,
        "placement" => V::V2008_02_01,
        "instance-action" => V::V2008_09_01,
        _ => V::V1_0,
    }
}

/// Nova's `meta-data` object for a version.
pub(super) fn meta_data(instance: &Instance, settings: &Settings, v: V) -> Map<String, Value> {
    let mut m = newest_meta_data(instance, settings);
    m.retain(|k, _| since(k) <= v);
    m
}

/// The `meta-data` object of the newest version, in Nova's insertion order; older
/// versions are this object with later keys left out.
fn newest_meta_data(instance: &Instance, settings: &Settings) -> Map<String, Value> {
    let hostname = settings.fqdn(instance);
    let local_ipv4 = instance
        .local_ipv4()
        .map(|(ip, _)| ip.to_string())
        .unwrap_or_default();
    let mut m = Map::new();
    m.insert("ami-id".into(), instance.ami_id().into());
    m.insert("ami-launch-index".into(), instance.launch_index().into());
    m.insert("ami-manifest-path".into(), "FIXME".into());
    m.insert("instance-id".into(), instance.ec2_id().into());
    m.insert("hostname".into(), hostname.clone().into());
    m.insert("local-ipv4".into(), local_ipv4.into());
    m.insert("reservation-id".into(), instance.reservation_id().into());
    m.insert("security-groups".into(), instance.security_groups().into());
    if !instance.keys().is_empty() {
        let keys: Map<String, Value> = instance
            .keys()
            .iter()
            .enumerate()
            .map(|(i, k)| {
                (
                    i.to_string(),
                    json!({"_name": format!("{i}={}", k.name), "openssh-key": k.data}),
                )
            })
            .collect();
        m.insert("public-keys".into(), keys.into());
    }
    m.insert("local-hostname".into(), hostname.clone().into());
    m.insert("public-hostname".into(), hostname.into());
    m.insert("public-ipv4".into(), instance.public_ipv4().into());
    m.insert("instance-type".into(), instance.instance_type().into());
    let root = instance.root_device_name();
    let mut bdm = Map::new();
    bdm.insert("ami".into(), root.trim_start_matches("/dev/").into());
    bdm.insert("root".into(), root.into());
    for (name, dev) in instance.block_device_mapping() {
        bdm.insert(name.clone(), dev.clone().into());
    }
    m.insert("block-device-mapping".into(), bdm.into());
    if let Some(k) = instance.kernel_id() {
        m.insert("kernel-id".into(), k.into());
    }
    if let Some(r) = instance.ramdisk_id() {
        m.insert("ramdisk-id".into(), r.into());
    }
    m.insert(
        "placement".into(),
        json!({"availability-zone": instance.availability_zone()}),
    );
    m.insert("instance-action".into(), "none".into());
    m
}

/// What every version's `/<version>/` is made of, built once: the newest
/// `meta-data/` children (each with its listing line and first version), the version
/// listing and the user data. A version's directory then only picks children.
#[derive(Debug)]
pub(super) struct Ec2Parts {
    children: Vec<(Arc<str>, Entry, String, V)>,
    version_listing: Bytes,
    user_data: Option<Entry>,
}

impl Ec2Parts {
    pub(super) fn new(instance: &Instance, settings: &Settings) -> Self {
        let newest = object_dir(&newest_meta_data(instance, settings));
        let children = newest
            .shared_entries()
            .map(|(name, entry)| {
                let line = listed_name(name, Some(entry));
                (name.clone(), entry.clone(), line, since(name))
            })
            .collect();
        let user_data = instance
            .user_data()
            .map(|ud| Entry::File(text(Bytes::copy_from_slice(ud))));
        let mut names = vec!["meta-data/"];
        if user_data.is_some() {
            names.push("user-data");
        }
        Ec2Parts {
            children,
            version_listing: listing(names),
            user_data,
        }
    }

    /// Nova's `/<version>/` for a Nova version: `meta-data/` and, when there is user
    /// data, `user-data`.
    pub(super) fn nova_version_dir(&self, v: V) -> Dir {
        let shown: Vec<_> = self.children.iter().filter(|c| c.3 <= v).collect();
        let mut meta = Dir::with_capacity(Some(listing(shown.iter().map(|c| &c.2))), shown.len());
        for (name, entry, _, _) in shown {
            meta.insert_shared(name.clone(), entry.clone());
        }
        let mut dir = Dir::with_capacity(Some(self.version_listing.clone()), 2);
        dir.insert("meta-data", Entry::Dir(Arc::new(meta)));
        if let Some(ud) = &self.user_data {
            dir.insert("user-data", ud.clone());
        }
        dir
    }
}

/// How a child shows in its parent's listing: `key/` for a directory, `N=name` for a
/// public key (its `_name`), the bare key for a leaf.
pub(super) fn listed_name(key: &str, entry: Option<&Entry>) -> String {
    match entry {
        Some(Entry::Dir(d)) => match &d.display_name {
            Some(n) => n.to_string(),
            None => format!("{key}/"),
        },
        _ => key.to_owned(),
    }
}

fn text(bytes: Bytes) -> File {
    File {
        body: Body::Static(bytes),
        content_type: ContentType::Text,
    }
}

/// A JSON object as a directory, listed like Nova's `ec2_md_print`: keys sorted, a
/// child object shown by its `_name` when it has one, else as `key/`.
pub(super) fn object_dir(obj: &Map<String, Value>) -> Dir {
    let mut keys: Vec<&String> = obj.keys().filter(|k| *k != "_name").collect();
    keys.sort();
    let mut dir = Dir::with_capacity(None, keys.len());
    if let Some(Value::String(n)) = obj.get("_name") {
        dir.display_name = Some(n.as_str().into());
    }
    for k in &keys {
        let entry = match &obj[k.as_str()] {
            Value::Object(child) => Entry::Dir(Arc::new(object_dir(child))),
            leaf => Entry::File(text(leaf_bytes(leaf))),
        };
        dir.insert(k, entry);
    }
    dir.listing = Some(listing(keys.iter().map(|k| listed_name(k, dir.get(k)))));
    dir
}

/// A leaf as Nova prints it: strings raw, lists one item a line, numbers in decimal.
fn leaf_bytes(v: &Value) -> Bytes {
    match v {
        Value::String(s) => Bytes::from(s.clone()),
        Value::Array(items) => listing(items.iter().map(|i| match i {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })),
        Value::Bool(true) => Bytes::from_static(b"True"),
        Value::Bool(false) => Bytes::from_static(b"False"),
        Value::Null => Bytes::from_static(b"None"),
        other => Bytes::from(other.to_string()),
    }
}
