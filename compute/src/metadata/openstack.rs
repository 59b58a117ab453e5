//! The `/openstack/<version>/` documents, in Nova's key order and bytes.

use super::tree::{listing, Body, ContentType, Dir, Entry, File};
use super::version::OpenStackVersion as V;
use super::{Settings, View};
use crate::instance::{Device, Instance};
use crate::pyjson::{self, ObjectWriter};
use bytes::Bytes;
use serde_json::{Map, Value};

pub(super) const META_DATA: &str = "meta_data.json";
pub(super) const USER_DATA: &str = "user_data";
pub(super) const PASSWORD: &str = "password";
pub(super) const VENDOR_DATA: &str = "vendor_data.json";
pub(super) const NETWORK_DATA: &str = "network_data.json";
pub(super) const VENDOR_DATA2: &str = "vendor_data2.json";

/// The files a version lists, in the order Nova lists them. `network_data.json` only
/// when the instance has a network: without the file cloud-init falls back to DHCP on
/// the first NIC, while Nova's `{}` makes it leave every NIC down.
pub(super) fn files_of(instance: &Instance, v: V) -> Vec<&'static str> {
    let mut files = vec![META_DATA];
    if instance.user_data().is_some() {
        files.push(USER_DATA);
    }
    if v >= V::V2013_04_04 {
        files.push(PASSWORD);
    }
    if v >= V::V2013_10_17 {
        files.push(VENDOR_DATA);
    }
    if v >= V::V2015_10_15 && instance.network().is_some() {
        files.push(NETWORK_DATA);
    }
    if v >= V::V2016_10_06 {
        files.push(VENDOR_DATA2);
    }
    files
}

/// Everything of an instance's OpenStack tree that does not depend on the version,
/// rendered once; each version then only adds the tail of its `meta_data.json`.
#[derive(Debug)]
pub(super) struct Documents {
    view: View,
    /// `meta_data.json` up to and including `availability_zone`.
    meta_prefix: ObjectWriter,
    user_data: Option<Bytes>,
    vendor_data: Bytes,
    vendor_data2: Bytes,
    /// `None` when the instance has no network: then there is no such file.
    network_data: Option<Bytes>,
}

impl Documents {
    pub(super) fn new(instance: &Instance, settings: &Settings, view: View) -> Self {
        let vendor = vendor_data(instance, settings);
        Documents {
            view,
            meta_prefix: meta_data_prefix(instance, settings, view),
            user_data: instance.user_data().map(Bytes::copy_from_slice),
            vendor_data: pyjson::to_vec(&vendor).into(),
            vendor_data2: vendor_data2_json(&vendor, &[]).into(),
            network_data: instance
                .network()
                .map(|n| pyjson::to_vec(&n.published()).into()),
        }
    }

    /// `/openstack/<version>/` as the service answers it: the listed files, and
    /// `network_data.json` at the versions before 2015-10-15 too, unlisted, because
    /// Nova's handler answers it at every version. Drives carry only listed files.
    pub(super) fn version_dir(&self, instance: &Instance, v: V) -> Dir {
        let files = files_of(instance, v);
        let mut dir = Dir::with_capacity(Some(listing(&files)), files.len() + 1);
        let unlisted = (v < V::V2015_10_15).then_some(NETWORK_DATA);
        for name in files.into_iter().chain(unlisted) {
            let entry = match name {
                PASSWORD => Entry::Password,
                _ => match self.document(instance, v, name) {
                    Some(file) => Entry::File(file),
                    None => continue,
                },
            };
            dir.insert(name, entry);
        }
        dir
    }

    /// One document of a version: `None` for the password (no document) and for a
    /// document the instance does not have (`user_data`, `network_data.json`).
    pub(super) fn document(&self, instance: &Instance, v: V, name: &str) -> Option<File> {
        let (body, content_type) = match name {
            META_DATA => (self.meta_data(instance, v), ContentType::Json),
            USER_DATA => (Body::Static(self.user_data.clone()?), ContentType::Text),
            VENDOR_DATA => (Body::Static(self.vendor_data.clone()), ContentType::Json),
            // Nova serves network_data.json as text/plain; keep the quirk.
            NETWORK_DATA => (Body::Static(self.network_data.clone()?), ContentType::Text),
            VENDOR_DATA2 => (Body::Static(self.vendor_data2.clone()), ContentType::Json),
            _ => return None,
        };
        Some(File { body, content_type })
    }

    fn meta_data(&self, instance: &Instance, v: V) -> Body {
        let mut w = self.meta_prefix.clone();
        let mut head = None;
        if v >= V::V2013_04_04 {
            match (instance.random_seed(), self.view) {
                (Some(seed), _) => w.field("random_seed", seed),
                (None, View::Service) => {
                    head = Some(w.open_string_field("random_seed"));
                    w.close_string_field();
                }
                // A drive must be reproducible: no seed is made up while building it.
                (None, View::Drive) => {}
            }
        }
        if v >= V::V2015_10_15 {
            w.field("project_id", &instance.project_id());
        }
        if v >= V::V2016_06_30 {
            w.field("devices", &devices(instance, v));
        }
        if v >= V::V2020_10_14 {
            w.field("dedicated_cpus", instance.dedicated_cpus());
        }
        let tail = w.finish();
        match head {
            Some(head) => Body::Seeded {
                head: head.into(),
                tail: tail.into(),
            },
            None => Body::Static(tail.into()),
        }
    }
}

/// `/openstack/content/`: not listable itself; `NNNN` for each injected file.
pub(super) fn content_dir(instance: &Instance) -> Dir {
    let mut dir = Dir::new(None);
    for (i, f) in instance.files().iter().enumerate() {
        let file = File {
            body: Body::Static(Bytes::copy_from_slice(&f.contents)),
            content_type: ContentType::Text,
        };
        dir.insert(&content_name(i), Entry::File(file));
    }
    dir
}

pub(super) fn content_name(index: usize) -> String {
    format!("{index:04}")
}

/// The version-independent keys of `meta_data.json`, in Nova's order.
fn meta_data_prefix(instance: &Instance, settings: &Settings, view: View) -> ObjectWriter {
    let mut w = ObjectWriter::new();
    w.field("uuid", &instance.uuid_str());
    if !instance.meta().is_empty() {
        w.field("meta", instance.meta());
    }
    let show_files = view == View::Drive || settings.serve_files;
    if show_files && !instance.files().is_empty() {
        let files: Vec<Value> = instance
            .files()
            .iter()
            .enumerate()
            .map(|(i, f)| serde_json::json!({"path": f.path, "content_path": format!("/content/{}", content_name(i))}))
            .collect();
        w.field("files", &files);
    }
    if view == View::Drive {
        if let Some(pass) = instance.admin_pass() {
            w.field("admin_pass", pass);
        }
    }
    if !instance.keys().is_empty() {
        let public: Map<String, Value> = instance
            .keys()
            .iter()
            .map(|k| (k.name.clone(), Value::String(k.data.clone())))
            .collect();
        w.field("public_keys", &public);
        let keys: Vec<Value> = instance
            .keys()
            .iter()
            .map(|k| serde_json::json!({"name": k.name, "type": k.kind.as_str(), "data": k.data}))
            .collect();
        w.field("keys", &keys);
    }
    w.field("hostname", &settings.fqdn(instance));
    w.field("name", instance.name());
    w.field("launch_index", &instance.launch_index());
    w.field("availability_zone", instance.availability_zone());
    w
}

/// Nova's device list for a version: `vlan` from 2017-02-22, `vf_trusted` from
/// 2018-08-27, shares from 2025-04-04; a NIC with nothing to say is left out.
fn devices(instance: &Instance, v: V) -> Vec<Value> {
    let mut out = Vec::new();
    for dev in instance.devices() {
        let mut m = Map::new();
        let (bus, address, tags) = match dev {
            Device::Nic {
                bus,
                address,
                mac,
                tags,
                vlan,
                vf_trusted,
            } => {
                if v >= V::V2017_02_22 {
                    if let Some(vlan) = vlan {
                        m.insert("vlan".into(), (*vlan).into());
                    }
                }
                if v >= V::V2018_08_27 {
                    m.insert("vf_trusted".into(), vf_trusted.unwrap_or(false).into());
                }
                m.insert("type".into(), "nic".into());
                m.insert("mac".into(), mac.clone().into());
                if tags.is_none() && !m.contains_key("vlan") && !m.contains_key("vf_trusted") {
                    continue;
                }
                (bus.map(|b| b.as_str()), address.as_deref(), tags)
            }
            Device::Disk {
                bus,
                address,
                serial,
                path,
                tags,
            } => {
                m.insert("type".into(), "disk".into());
                if let Some(serial) = serial {
                    m.insert("serial".into(), serial.clone().into());
                }
                if let Some(path) = path {
                    m.insert("path".into(), path.clone().into());
                }
                (bus.map(|b| b.as_str()), address.as_deref(), tags)
            }
            Device::Share {
                share_id,
                tag,
                tags,
            } => {
                if v < V::V2025_04_04 {
                    continue;
                }
                m.insert("type".into(), "share".into());
                m.insert("share_id".into(), share_id.clone().into());
                m.insert("tag".into(), tag.clone().into());
                (None, None, tags)
            }
        };
        m.insert("bus".into(), bus.unwrap_or("none").into());
        // Nova shows the address only when the bus has one.
        m.insert("address".into(), bus.and(address).unwrap_or("none").into());
        if let Some(tags) = tags {
            m.insert("tags".into(), tags.clone().into());
        }
        out.push(Value::Object(m));
    }
    out
}

/// The deployment's static vendor data with the instance's own merged over it.
pub(super) fn vendor_data(instance: &Instance, settings: &Settings) -> Map<String, Value> {
    let mut merged = settings.vendor_data.clone();
    if let Some(own) = instance.vendor_data() {
        for (k, v) in own {
            merged.insert(k.clone(), v.clone());
        }
    }
    merged
}

/// `vendor_data2.json`: the static data under `static`, then one key per dynamic
/// target, in the order given (a target named `static` is dropped, as Nova drops
/// duplicate keys).
pub fn vendor_data2_json(static_data: &Map<String, Value>, dynamic: &[(String, Value)]) -> Vec<u8> {
    let mut w = ObjectWriter::new();
    w.field("static", static_data);
    let mut seen = std::collections::HashSet::from(["static"]);
    for (name, value) in dynamic {
        if seen.insert(name.as_str()) {
            w.field(name, value);
        }
    }
    w.finish()
}
