//! The instance document: the one input every rendered format comes from.
//!
//! Parsing and validation are two steps. [`InstanceDocument`] is the serde shape of
//! the JSON contract (unknown fields rejected); [`Instance`] is a document that passed
//! every check, with its base64 fields decoded and Nova's defaults derived. Nothing
//! here does I/O, reads a clock or draws random numbers.

mod device;
mod error;
mod hostname;
mod netmodel;
mod network;
mod validate;

pub use device::{Bus, Device};
pub use error::{FieldError, InstanceError};
pub use hostname::{is_valid_hostname, sanitize_hostname};
pub use netmodel::{IpFamily, NetworkError, NetworkProblem, StaticRoute};
pub use network::{FixedAddress, Link, Network, NetworkData, NetworkType, Route, Service};
pub use validate::decode_base64;

use crate::mac::MacAddr;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};
use uuid::Uuid;

/// Nova's limit on the base64 text of user data.
pub const MAX_USER_DATA_BASE64: usize = 65535;

/// The JSON contract, field for field (see `shared/spec/instance.md`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceDocument {
    pub uuid: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(default)]
    pub launch_index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ec2_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramdisk_id: Option<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub meta: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<Key>,
    /// Base64 text, as Nova stores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_pass: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ipv4: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_device_name: Option<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub block_device_mapping: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Device>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dedicated_cpus: Vec<u32>,
    /// Base64 of the seed; kept per instance so that drives are reproducible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_seed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_data: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// The region (EC2 `placement/region` and the identity document); default
    /// derived from the availability zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Serve `meta` as EC2 `tags/instance/` for this instance (AWS's instance
    /// metadata tags option); off by default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub metadata_tags: bool,
}

/// A public key handed to the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Key {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: KeyType,
    pub data: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    Ssh,
    X509,
}

impl KeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Ssh => "ssh",
            KeyType::X509 => "x509",
        }
    }
}

/// An injected ("personality") file as the document carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub path: String,
    /// Base64 of the file's bytes.
    pub contents: String,
}

/// An injected file, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedFile {
    pub path: String,
    pub contents: Vec<u8>,
}

/// A validated instance: the document plus everything derived from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    doc: InstanceDocument,
    uuid: Uuid,
    hostname: String,
    user_data: Option<Vec<u8>>,
    files: Vec<InjectedFile>,
    created_at: Option<i64>,
    addresses: Vec<FixedAddress>,
}

impl InstanceDocument {
    /// Parses JSON, naming the exact field of any unknown or mistyped entry.
    pub fn from_json(bytes: &[u8]) -> Result<Self, InstanceError> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(de).map_err(|e| InstanceError::Parse {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })
    }
}

impl Instance {
    /// Parses and validates a JSON document in one go.
    pub fn from_json(bytes: &[u8]) -> Result<Self, InstanceError> {
        Self::new(InstanceDocument::from_json(bytes)?)
    }

    /// Validates a document, collecting every problem rather than the first.
    pub fn new(doc: InstanceDocument) -> Result<Self, InstanceError> {
        let v = validate::validate(&doc)?;
        Ok(Instance {
            uuid: v.uuid,
            hostname: v.hostname,
            user_data: v.user_data,
            files: v.files,
            created_at: v.created_at,
            addresses: doc
                .network
                .as_ref()
                .map(NetworkData::fixed_addresses)
                .unwrap_or_default(),
            doc,
        })
    }

    pub fn document(&self) -> &InstanceDocument {
        &self.doc
    }

    pub fn uuid(&self) -> Uuid {
        self.uuid
    }

    /// The uuid in its canonical spelling, as every document shows it.
    pub fn uuid_str(&self) -> String {
        self.uuid.hyphenated().to_string()
    }

    pub fn name(&self) -> &str {
        &self.doc.name
    }

    /// The short hostname: the document's, or derived from the name as Nova does.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    pub fn user_data(&self) -> Option<&[u8]> {
        self.user_data.as_deref()
    }

    pub fn files(&self) -> &[InjectedFile] {
        &self.files
    }

    pub fn keys(&self) -> &[Key] {
        &self.doc.keys
    }

    pub fn meta(&self) -> &IndexMap<String, String> {
        &self.doc.meta
    }

    pub fn launch_index(&self) -> u32 {
        self.doc.launch_index
    }

    pub fn availability_zone(&self) -> &str {
        self.doc.availability_zone.as_deref().unwrap_or("nova")
    }

    pub fn project_id(&self) -> Option<&str> {
        self.doc.project_id.as_deref()
    }

    pub fn instance_type(&self) -> &str {
        self.doc.instance_type.as_deref().unwrap_or("m1.small")
    }

    pub fn admin_pass(&self) -> Option<&str> {
        self.doc.admin_pass.as_deref()
    }

    pub fn random_seed(&self) -> Option<&str> {
        self.doc.random_seed.as_deref()
    }

    pub fn network(&self) -> Option<&NetworkData> {
        self.doc.network.as_ref()
    }

    pub fn devices(&self) -> &[Device] {
        &self.doc.devices
    }

    pub fn dedicated_cpus(&self) -> &[u32] {
        &self.doc.dedicated_cpus
    }

    pub fn vendor_data(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.doc.vendor_data.as_ref()
    }

    /// Seconds since the epoch of `created_at`, when the document has one.
    pub fn created_at(&self) -> Option<i64> {
        self.created_at
    }

    /// The region: the document's, else the availability zone without its last
    /// letter when the zone is named the AWS way (`us-east-1a` is in `us-east-1`),
    /// else Nova's default region, `RegionOne`.
    pub fn region(&self) -> &str {
        if let Some(r) = &self.doc.region {
            return r;
        }
        let az = self.availability_zone();
        let mut tail = az.chars().rev();
        match (tail.next(), tail.next()) {
            (Some(l), Some(d)) if l.is_ascii_lowercase() && d.is_ascii_digit() => {
                &az[..az.len() - 1]
            }
            _ => "RegionOne",
        }
    }

    /// Whether this instance's `meta` is served as EC2 instance tags.
    pub fn metadata_tags(&self) -> bool {
        self.doc.metadata_tags
    }

    pub fn security_groups(&self) -> Vec<&str> {
        match &self.doc.security_groups {
            Some(groups) => groups.iter().map(String::as_str).collect(),
            None => vec!["default"],
        }
    }

    pub fn public_ipv4(&self) -> &str {
        self.doc.public_ipv4.as_deref().unwrap_or("")
    }

    pub fn root_device_name(&self) -> &str {
        self.doc.root_device_name.as_deref().unwrap_or("/dev/vda")
    }

    pub fn block_device_mapping(&self) -> &IndexMap<String, String> {
        &self.doc.block_device_mapping
    }

    /// EC2 `instance-id`: the document's, else `i-` and the uuid's first 8 hex digits.
    pub fn ec2_id(&self) -> String {
        match &self.doc.ec2_id {
            Some(id) => id.clone(),
            None => format!("i-{}", &self.uuid.simple().to_string()[..8]),
        }
    }

    /// EC2 `reservation-id`: the document's, else `r-` and the uuid's last 8 hex digits.
    pub fn reservation_id(&self) -> String {
        match &self.doc.reservation_id {
            Some(id) => id.clone(),
            None => format!("r-{}", &self.uuid.simple().to_string()[24..]),
        }
    }

    /// EC2 `ami-id` (empty when the document names no image).
    pub fn ami_id(&self) -> String {
        self.doc
            .image_id
            .as_deref()
            .map(|id| ec2_image_id("ami", id))
            .unwrap_or_default()
    }

    pub fn kernel_id(&self) -> Option<String> {
        self.doc
            .kernel_id
            .as_deref()
            .map(|id| ec2_image_id("aki", id))
    }

    pub fn ramdisk_id(&self) -> Option<String> {
        self.doc
            .ramdisk_id
            .as_deref()
            .map(|id| ec2_image_id("ari", id))
    }

    /// Every fixed address (static, DHCP or SLAAC), in document order: see
    /// [`NetworkData::fixed_addresses`]. Everything that needs "the instance's
    /// addresses" starts here.
    pub fn fixed_addresses(&self) -> &[FixedAddress] {
        &self.addresses
    }

    /// The first fixed IPv4 address, static or DHCP, and the MAC of its link (EC2
    /// `local-ipv4`, `mac`), as Nova takes the first fixed IPv4 of the ports.
    pub fn local_ipv4(&self) -> Option<(Ipv4Addr, Option<MacAddr>)> {
        self.addresses.iter().find_map(|a| match a.ip {
            IpAddr::V4(ip) => Some((ip, a.mac)),
            IpAddr::V6(_) => None,
        })
    }

    /// Every fixed IP address of the instance, for mapping a caller to it.
    pub fn fixed_ips(&self) -> Vec<IpAddr> {
        self.addresses.iter().map(|a| a.ip).collect()
    }
}

/// EC2 ids of images: kept when already EC2-shaped, a UUID's first 8 hex digits
/// otherwise, the id itself when it is neither.
fn ec2_image_id(prefix: &str, id: &str) -> String {
    if ["ami-", "aki-", "ari-"].iter().any(|p| id.starts_with(p)) {
        return id.to_owned();
    }
    match Uuid::try_parse(id) {
        Ok(u) => format!("{prefix}-{}", &u.simple().to_string()[..8]),
        Err(_) => format!("{prefix}-{id}"),
    }
}
