//! The EC2-compatible tree: one `meta-data` object per version, in Nova's key order.
//!
//! The object is the single source for both forms: the service walks it as
//! directories and leaves (printed like Nova's `ec2_md_print`), and drives store it as
//! `ec2/<version>/meta-data.json`.

use super::tree::{listing, Body, ContentType, Dir, Entry, File};
use super::version::Ec2Version as V;
use super::Settings;
use crate::instance::Instance;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Nova's `meta-data` object for a version.
pub(super) fn meta_data(instance: &Instance, settings: &Settings, v: V) -> Map<String, Value> {
    let hostname = settings.fqdn(instance);
    let local_ipv4 = instance.local_ipv4().map(|(ip, _)| ip.to_string()).unwrap_or_default();
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
            .map(|(i, k)| (i.to_string(), json!({"_name": format!("{i}={}", k.name), "openssh-key": k.data})))
            .collect();
        m.insert("public-keys".into(), keys.into());
    }
    if v >= V::V2007_01_19 {
        m.insert("local-hostname".into(), hostname.clone().into());
        m.insert("public-hostname".into(), hostname.into());
        m.insert("public-ipv4".into(), instance.public_ipv4().into());
    }
    if v >= V::V2007_08_29 {
        m.insert("instance-type".into(), instance.instance_type().into());
    }
    if v >= V::V2007_12_15 {
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
    }
    if v >= V::V2008_02_01 {
        m.insert("placement".into(), json!({"availability-zone": instance.availability_zone()}));
    }
    if v >= V::V2008_09_01 {
        m.insert("instance-action".into(), "none".into());
    }
    m
}

/// `/<version>/`: `meta-data/` and, when there is user data, `user-data`.
pub(super) fn version_dir(instance: &Instance, settings: &Settings, v: V) -> Dir {
    let meta = object_dir(&meta_data(instance, settings, v));
    let mut names = vec!["meta-data/"];
    if instance.user_data().is_some() {
        names.push("user-data");
    }
    let mut dir = Dir::new(Some(listing(names)));
    dir.insert("meta-data", Entry::Dir(Arc::new(meta)));
    if let Some(ud) = instance.user_data() {
        dir.insert("user-data", Entry::File(text(Bytes::copy_from_slice(ud))));
    }
    dir
}

fn text(bytes: Bytes) -> File {
    File { body: Body::Static(bytes), content_type: ContentType::Text }
}

/// A JSON object as a directory, listed like Nova's `ec2_md_print`: keys sorted, a
/// child object shown by its `_name` when it has one, else as `key/`.
fn object_dir(obj: &Map<String, Value>) -> Dir {
    let mut keys: Vec<&String> = obj.keys().filter(|k| *k != "_name").collect();
    keys.sort();
    let names = keys.iter().map(|k| match &obj[k.as_str()] {
        Value::Object(child) => match child.get("_name") {
            Some(Value::String(n)) => n.clone(),
            _ => format!("{k}/"),
        },
        _ => (*k).clone(),
    });
    let mut dir = Dir::new(Some(listing(names)));
    for k in keys {
        let entry = match &obj[k.as_str()] {
            Value::Object(child) => Entry::Dir(Arc::new(object_dir(child))),
            leaf => Entry::File(text(leaf_bytes(leaf))),
        };
        dir.insert(k, entry);
    }
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
