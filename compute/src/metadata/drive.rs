//! The config-drive view: every file a `config-2` drive holds, path to bytes.

use super::openstack::{self, content_name};
use super::tree::Body;
use super::version::{AnyVersion, Ec2Version, OpenStackVersion};
use super::{ec2, Settings, View};
use crate::instance::Instance;
use crate::pyjson;
use bytes::Bytes;
use std::collections::BTreeMap;

/// Files of a config drive, by path relative to the drive's root
/// (`openstack/latest/meta_data.json`), sorted.
pub type DriveTree = BTreeMap<String, Bytes>;

/// Renders the files of a config drive: EC2 and OpenStack trees for every version
/// not skipped, `latest` for both, and `openstack/content/NNNN`. Never `password`.
pub fn render_drive(instance: &Instance, settings: &Settings) -> DriveTree {
    let mut out = DriveTree::new();
    let skipped = |v: AnyVersion| settings.drive_skip_versions.contains(&v);

    // Drives keep Nova's EC2 tree: its versions, and `latest` as Nova's newest.
    let ec2_versions = Ec2Version::NOVA
        .iter()
        .copied()
        .filter(|v| !skipped(AnyVersion::Ec2(*v)));
    let latest_ec2 = settings.latest_drive_ec2();
    let user_data = instance.user_data().map(Bytes::copy_from_slice);
    for (name, v) in ec2_versions
        .map(|v| (v.as_str(), v))
        .chain([("latest", latest_ec2)])
    {
        if let Some(ud) = &user_data {
            out.insert(format!("ec2/{name}/user-data"), ud.clone());
        }
        let meta = ec2::meta_data(instance, settings, v);
        out.insert(
            format!("ec2/{name}/meta-data.json"),
            pyjson::to_vec(&meta).into(),
        );
    }

    let docs = openstack::Documents::new(instance, settings, View::Drive);
    let os_versions = OpenStackVersion::ALL
        .iter()
        .copied()
        .filter(|v| !skipped(AnyVersion::OpenStack(*v)));
    let latest_os = settings
        .latest_openstack()
        .unwrap_or(OpenStackVersion::V2025_04_04);
    for (name, v) in os_versions
        .map(|v| (v.as_str(), v))
        .chain([("latest", latest_os)])
    {
        for file in openstack::files_of(instance, v) {
            if let Some(doc) = docs.document(instance, v, file) {
                let bytes = match doc.body {
                    Body::Static(b) => b,
                    // Unreachable for drives (no seed is made up), but never panic.
                    Body::Seeded { .. } => continue,
                };
                out.insert(format!("openstack/{name}/{file}"), bytes);
            }
        }
    }

    for (i, f) in instance.files().iter().enumerate() {
        out.insert(
            format!("openstack/content/{}", content_name(i)),
            Bytes::copy_from_slice(&f.contents),
        );
    }
    out
}
