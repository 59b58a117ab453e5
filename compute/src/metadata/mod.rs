//! The one renderer of versioned OpenStack and EC2 metadata.
//!
//! An [`Instance`] plus the deployment's [`Settings`] become either the tree the
//! metadata service serves ([`render_service`]) or the files of a config drive
//! ([`render_drive`]). Both views are built from the same functions, so the bytes of
//! a document on a drive are the bytes the service answers with. Pure: no clock, no
//! RNG, no I/O; a missing `random_seed` is left for the caller to fill.

mod aws;
mod drive;
mod ec2;
mod identity;
mod nic;
mod openstack;
mod path;
mod read;
mod service;
mod tree;
mod version;

pub use drive::{render_drive, DriveTree};
pub use openstack::vendor_data2_json;
pub use path::{MetadataPath, Segment, MAX_PATH_LEN};
pub use read::{FileReference, MetaDataDocument};
pub use service::{render_service, MetadataTree};
pub use tree::{listing, Body, ContentType, Dir, Entry, File, LiveLeaf};
pub use version::{AnyVersion, Ec2Version, OpenStackVersion, UnknownVersion};

use crate::instance::Instance;
use bytes::Bytes;

/// The deployment's side of rendering: what is the same for every instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Appended to hostnames (`test.novalocal`); `None` or empty leaves them short.
    pub dhcp_domain: Option<String>,
    /// OpenStack versions offered, oldest first; `latest` is the newest of them.
    pub openstack_versions: Vec<OpenStackVersion>,
    /// EC2 versions offered, oldest first; `latest` is the newest of them.
    pub ec2_versions: Vec<Ec2Version>,
    /// Versions left off config drives (Nova's `config_drive_skip_versions`).
    pub drive_skip_versions: Vec<AnyVersion>,
    /// The deployment's static vendor data; an instance's own is merged over it.
    pub vendor_data: serde_json::Map<String, serde_json::Value>,
    /// Serve injected files at `/openstack/content/NNNN` and list them in
    /// `meta_data.json` over HTTP. Nova never does; off by default.
    pub serve_files: bool,
    /// Which EC2 API the tree follows beyond Nova's versions.
    pub ec2_api: Ec2Api,
    /// EC2 `services/domain`.
    pub ec2_services_domain: String,
    /// Serve `meta` as EC2 `tags/instance/` for every instance (else only for those
    /// whose document asks for it).
    pub ec2_tags: bool,
}

/// The shape of the EC2 tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ec2Api {
    /// AWS's versions and categories on top of Nova's, and `dynamic/` from
    /// 2009-04-04 (Nova's answers at Nova's paths unchanged).
    #[default]
    Aws,
    /// Nova's versions and answers only, byte for byte.
    Nova,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            dhcp_domain: Some("novalocal".into()),
            openstack_versions: OpenStackVersion::ALL.to_vec(),
            ec2_versions: Ec2Version::ALL.to_vec(),
            drive_skip_versions: Ec2Version::ALL
                .iter()
                .copied()
                .filter(|v| *v < Ec2Version::V2009_04_04)
                .map(AnyVersion::Ec2)
                .collect(),
            vendor_data: serde_json::Map::new(),
            serve_files: false,
            ec2_api: Ec2Api::Aws,
            ec2_services_domain: DEFAULT_SERVICES_DOMAIN.to_owned(),
            ec2_tags: false,
        }
    }
}

/// EC2 `services/domain` unless the deployment names another.
pub const DEFAULT_SERVICES_DOMAIN: &str = "amazonaws.com";

impl Settings {
    /// Nova's EC2 tree exactly: its versions only, nothing AWS added.
    pub fn use_nova_ec2(&mut self) {
        self.ec2_api = Ec2Api::Nova;
        self.ec2_versions.retain(|v| v.is_nova());
    }

    /// The newest EC2 version on drives: drives carry Nova's tree only.
    pub fn latest_drive_ec2(&self) -> Ec2Version {
        self.ec2_versions
            .iter()
            .copied()
            .filter(|v| v.is_nova())
            .max()
            .unwrap_or(Ec2Version::V2009_04_04)
    }

    /// The hostname documents show: short name plus the DHCP domain.
    pub fn fqdn(&self, instance: &Instance) -> String {
        match self.dhcp_domain.as_deref() {
            Some(d) if !d.is_empty() => format!("{}.{d}", instance.hostname()),
            _ => instance.hostname().to_owned(),
        }
    }

    pub fn latest_openstack(&self) -> Option<OpenStackVersion> {
        self.openstack_versions.iter().copied().max()
    }

    pub fn latest_ec2(&self) -> Option<Ec2Version> {
        self.ec2_versions.iter().copied().max()
    }

    /// Body of `GET /` (and `/ec2`): EC2 versions and `latest`, one a line.
    pub fn ec2_versions_listing(&self) -> Bytes {
        listing(
            self.ec2_versions
                .iter()
                .map(|v| v.as_str())
                .chain(["latest"]),
        )
    }

    /// Body of `GET /openstack`: OpenStack versions and `latest`, one a line.
    pub fn openstack_versions_listing(&self) -> Bytes {
        listing(
            self.openstack_versions
                .iter()
                .map(|v| v.as_str())
                .chain(["latest"]),
        )
    }
}

/// Whether a document is rendered for the metadata service or for a config drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Service,
    Drive,
}
