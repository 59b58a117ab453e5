//! The EC2 tree at AWS's versions (after Nova's 2009-04-04): Nova's `meta-data` keys
//! with their Nova values, plus each category AWS added from the version that added
//! it (`shared/spec/aws.md`), and `dynamic/instance-identity/`.
//!
//! The tree only changes at the versions where AWS added something, so a directory is
//! built once per such "epoch" and shared by the versions in it. Pure like the rest of
//! the renderer: what needs a key or the server's own state (the signed forms of the
//! identity document, maintenance events) is an [`Entry::Live`] leaf.

use super::ec2::{self, listed_name, object_dir};
use super::identity::identity_document;
use super::nic::{self, Nic};
use super::tree::{listing, Body, ContentType, Dir, Entry, File, LiveLeaf};
use super::version::Ec2Version as V;
use super::Settings;
use crate::instance::Instance;
use crate::mac::MacAddr;
use serde_json::{json, Map, Value};
use std::sync::{Arc, OnceLock};

/// The versions at which AWS's tree changes (the first listed version at or after
/// the one AWS introduced a category in), oldest first.
const EPOCHS: [V; 9] = [
    V::V2011_01_01, // mac, network/interfaces/macs/
    V::V2014_02_25, // services/domain
    V::V2015_10_20, // services/partition
    V::V2016_06_30, // ipv6s and the *-cidr-blocks of each interface
    V::V2018_08_17, // events/maintenance/
    V::V2019_10_01, // instance-life-cycle, placement/availability-zone-id
    V::V2020_10_27, // placement/region (AWS: 2020-08-24, a version it does not list)
    V::V2021_01_03, // ipv6
    V::V2021_03_23, // tags/instance/
];

/// The value of `instance-life-cycle`: we have no spot or scheduled instances.
const LIFE_CYCLE: &str = "on-demand";
/// `services/partition`.
const PARTITION: &str = "aws";

/// The parts of the AWS versions, built on first use and shared by every version.
#[derive(Debug, Default)]
pub(super) struct AwsParts {
    meta: [OnceLock<Arc<Dir>>; EPOCHS.len()],
    dynamic: OnceLock<Entry>,
    /// `user-data` at AWS's versions: the bytes as `application/octet-stream`.
    user_data: OnceLock<Option<Entry>>,
}

impl AwsParts {
    /// `/<version>/` with the AWS API, on top of Nova's parts: at AWS's versions
    /// `dynamic/`, `meta-data/` and `user-data` (as `application/octet-stream`); at
    /// Nova's versions Nova's directory, where 2009-04-04 also answers `dynamic/` as
    /// AWS does, without listing it (its listing stays Nova's).
    pub(super) fn version_dir(
        &self,
        nova: &ec2::Ec2Parts,
        instance: &Instance,
        settings: &Settings,
        v: V,
    ) -> Dir {
        if v.is_nova() {
            let mut dir = nova.nova_version_dir(v);
            if v >= V::V2009_04_04 {
                dir.insert("dynamic", self.dynamic(instance));
            }
            return dir;
        }
        let user_data = self.user_data.get_or_init(|| {
            instance.user_data().map(|ud| {
                Entry::File(File {
                    body: Body::Static(bytes::Bytes::copy_from_slice(ud)),
                    content_type: ContentType::Binary,
                })
            })
        });
        let mut names = vec!["dynamic/", "meta-data/"];
        if user_data.is_some() {
            names.push("user-data");
        }
        let mut dir = Dir::with_capacity(Some(listing(names)), 3);
        dir.insert("dynamic", self.dynamic(instance));
        dir.insert(
            "meta-data",
            Entry::Dir(self.meta_data(instance, settings, v)),
        );
        if let Some(ud) = user_data {
            dir.insert("user-data", ud.clone());
        }
        dir
    }

    /// `/<v>/meta-data/` for an AWS version `v`.
    pub(super) fn meta_data(&self, instance: &Instance, settings: &Settings, v: V) -> Arc<Dir> {
        let i = EPOCHS.iter().rposition(|e| *e <= v).unwrap_or(0);
        self.meta[i]
            .get_or_init(|| Arc::new(meta_data_dir(instance, settings, EPOCHS[i])))
            .clone()
    }

    /// `/<v>/dynamic/`: the same at every version that has it.
    pub(super) fn dynamic(&self, instance: &Instance) -> Entry {
        self.dynamic
            .get_or_init(|| Entry::Dir(Arc::new(dynamic_dir(instance))))
            .clone()
    }
}

fn text(s: impl Into<bytes::Bytes>) -> Entry {
    Entry::File(File {
        body: Body::Static(s.into()),
        content_type: ContentType::Text,
    })
}

/// A directory of the given children, listed the way every EC2 directory is.
fn dir_of(children: Vec<(String, Entry)>) -> Dir {
    let mut d = Dir::with_capacity(None, children.len());
    for (name, entry) in children {
        d.insert(&name, entry);
    }
    d.listing = Some(listing(d.entries().map(|(n, e)| listed_name(n, Some(e)))));
    d
}

fn dynamic_dir(instance: &Instance) -> Dir {
    let identity = dir_of(vec![
        ("document".into(), text(identity_document(instance))),
        ("pkcs7".into(), Entry::Live(LiveLeaf::IdentityPkcs7)),
        ("rsa2048".into(), Entry::Live(LiveLeaf::IdentityRsa2048)),
        ("signature".into(), Entry::Live(LiveLeaf::IdentitySignature)),
    ]);
    dir_of(vec![(
        "instance-identity".into(),
        Entry::Dir(Arc::new(identity)),
    )])
}

/// The MAC EC2 calls the instance's: the one of the link its `local-ipv4` sits on,
/// else the first interface's.
fn primary_mac(instance: &Instance, nics: &[Nic]) -> Option<MacAddr> {
    instance
        .local_ipv4()
        .and_then(|(_, mac)| mac)
        .or_else(|| nics.first().map(|n| n.mac))
}

/// Whether a `meta` key may be an instance tag in the metadata: AWS's rule for tag
/// keys there (letters, digits and `+ - = . , _ : @`), and never a path step.
fn is_tag_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 128
        && key != "."
        && key != ".."
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-=.,_:@".contains(c))
}

fn meta_data_dir(instance: &Instance, settings: &Settings, v: V) -> Dir {
    let nics = nic::nics(instance);
    let primary = primary_mac(instance, &nics);
    let mut m = ec2::meta_data(instance, settings, v);
    if let Some(mac) = primary {
        m.insert("mac".into(), mac.to_string().into());
    }
    if !nics.is_empty() {
        let macs: Map<String, Value> = nics
            .iter()
            .map(|n| {
                let is_primary = Some(n.mac) == primary;
                (
                    n.mac.to_string(),
                    Value::Object(interface(instance, settings, n, is_primary, v)),
                )
            })
            .collect();
        m.insert("network".into(), json!({"interfaces": {"macs": macs}}));
    }
    if v >= V::V2014_02_25 {
        let mut services = Map::new();
        services.insert("domain".into(), settings.ec2_services_domain.clone().into());
        if v >= V::V2015_10_20 {
            services.insert("partition".into(), PARTITION.into());
        }
        m.insert("services".into(), services.into());
    }
    let events = v >= V::V2018_08_17;
    if events {
        m.insert("events".into(), json!({}));
    }
    if v >= V::V2019_10_01 {
        m.insert("instance-life-cycle".into(), LIFE_CYCLE.into());
        if let Some(Value::Object(p)) = m.get_mut("placement") {
            p.insert(
                "availability-zone-id".into(),
                instance.availability_zone().into(),
            );
            if v >= V::V2020_10_27 {
                p.insert("region".into(), instance.region().into());
            }
        }
    }
    if v >= V::V2021_01_03 {
        let first_v6 = instance
            .fixed_addresses()
            .iter()
            .find(|a| a.ip.is_ipv6())
            .map(|a| a.ip.to_string());
        if let Some(ip) = first_v6 {
            m.insert("ipv6".into(), ip.into());
        }
    }
    let tags = v >= V::V2021_03_23 && (settings.ec2_tags || instance.metadata_tags());
    if tags {
        m.insert("tags".into(), json!({}));
    }

    let mut dir = object_dir(&m);
    if events {
        let maintenance = dir_of(vec![
            ("history".into(), Entry::Live(LiveLeaf::MaintenanceHistory)),
            (
                "scheduled".into(),
                Entry::Live(LiveLeaf::MaintenanceScheduled),
            ),
        ]);
        let events = dir_of(vec![(
            "maintenance".into(),
            Entry::Dir(Arc::new(maintenance)),
        )]);
        dir.insert("events", Entry::Dir(Arc::new(events)));
    }
    if tags {
        let instance_tags = dir_of(
            instance
                .meta()
                .iter()
                .filter(|(k, _)| is_tag_key(k))
                .map(|(k, val)| (k.clone(), text(val.clone())))
                .collect(),
        );
        let tags = dir_of(vec![(
            "instance".into(),
            Entry::Dir(Arc::new(instance_tags)),
        )]);
        dir.insert("tags", Entry::Dir(Arc::new(tags)));
    }
    dir
}

fn strings<T: ToString>(items: &[T]) -> Value {
    Value::Array(items.iter().map(|i| Value::String(i.to_string())).collect())
}

/// One `network/interfaces/macs/<mac>/` object; a key without a value is left out.
fn interface(
    instance: &Instance,
    settings: &Settings,
    n: &Nic,
    is_primary: bool,
    v: V,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("device-number".into(), n.device_number.into());
    m.insert("interface-id".into(), n.interface_id.clone().into());
    let public = instance.public_ipv4();
    if let (true, false, Some(local)) = (is_primary, public.is_empty(), n.ipv4s.first()) {
        let mut association = Map::new();
        association.insert(public.to_owned(), local.to_string().into());
        m.insert("ipv4-associations".into(), association.into());
        m.insert("public-ipv4s".into(), public.into());
    }
    m.insert("local-hostname".into(), settings.fqdn(instance).into());
    if !n.ipv4s.is_empty() {
        m.insert("local-ipv4s".into(), strings(&n.ipv4s));
    }
    m.insert("mac".into(), n.mac.to_string().into());
    if let Some(p) = instance.project_id() {
        m.insert("owner-id".into(), p.into());
    }
    let groups = instance.security_groups();
    let group_ids: Vec<String> = groups
        .iter()
        .map(|g| format!("sg-{}", nic::id17(g)))
        .collect();
    if !groups.is_empty() {
        m.insert("security-group-ids".into(), strings(&group_ids));
        m.insert("security-groups".into(), strings(&groups));
    }
    if let Some(s) = &n.subnet_id {
        m.insert("subnet-id".into(), s.clone().into());
    }
    if let Some(vpc) = &n.vpc_id {
        m.insert("vpc-id".into(), vpc.clone().into());
    }
    if let Some(c) = n.ipv4_cidrs.first() {
        m.insert("subnet-ipv4-cidr-block".into(), c.to_string().into());
        m.insert("vpc-ipv4-cidr-block".into(), c.to_string().into());
    }
    if v >= V::V2016_06_30 {
        let many: [(&str, &[_]); 3] = [
            ("subnet-ipv6-cidr-blocks", &n.ipv6_cidrs),
            ("vpc-ipv4-cidr-blocks", &n.ipv4_cidrs),
            ("vpc-ipv6-cidr-blocks", &n.ipv6_cidrs),
        ];
        for (key, cidrs) in many {
            if !cidrs.is_empty() {
                m.insert(key.into(), strings(cidrs));
            }
        }
        if !n.ipv6s.is_empty() {
            m.insert("ipv6s".into(), strings(&n.ipv6s));
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_keys_follow_aws_rule() {
        for ok in ["Name", "a.b", "k+v=1,2_3:4@x", "-"] {
            assert!(is_tag_key(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "caf\u{e9}", &"k".repeat(129)] {
            assert!(!is_tag_key(bad), "{bad}");
        }
    }

    #[test]
    fn versions_in_one_epoch_share_the_directory() {
        let i = Instance::from_json(
            br#"{"uuid": "d8e02d56-2648-49a3-bf97-6be8f1204f38", "name": "n"}"#,
        )
        .expect("valid");
        let s = Settings::default();
        let parts = AwsParts::default();
        let a = parts.meta_data(&i, &s, V::V2011_01_01);
        let b = parts.meta_data(&i, &s, V::V2012_01_12);
        assert!(Arc::ptr_eq(&a, &b));
        let c = parts.meta_data(&i, &s, V::V2024_04_11);
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
