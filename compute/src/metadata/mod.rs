//! The one renderer of versioned OpenStack and EC2 metadata.
//!
//! An [`Instance`] plus the deployment's [`Settings`] become either the tree the
//! metadata service serves ([`render_service`]) or the files of a config drive
//! ([`render_drive`]). Both views are built from the same functions, so the bytes of
//! a document on a drive are the bytes the service answers with. Pure: no clock, no
//! RNG, no I/O; a missing `random_seed` is left for the caller to fill.

mod drive;
mod ec2;
mod openstack;
mod path;
mod read;
mod service;
mod tree;
mod version;

pub use drive::{render_drive, DriveTree};
pub use openstack::vendor_data2_json;
pub use path::{MetadataPath, MAX_PATH_LEN};
pub use read::{FileReference, MetaDataDocument};
pub use service::{render_service, MetadataTree};
pub use tree::{listing, Body, ContentType, Dir, Entry, File};
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
        }
    }
}

impl Settings {
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
