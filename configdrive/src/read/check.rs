//! Checks a drive read back against the spec (`shared/spec/configdrive.md`): the
//! label and its case, the files guests require, JSON that parses, Rock Ridge and
//! Joliet on ISO, both labels on FAT, no password on the drive.

use super::ReadDrive;
use crate::drive::{Format, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
}

fn error(message: impl Into<String>) -> Finding {
    Finding {
        severity: Severity::Error,
        message: message.into(),
    }
}

fn warning(message: impl Into<String>) -> Finding {
    Finding {
        severity: Severity::Warning,
        message: message.into(),
    }
}

/// Which target a drive is, from its label.
pub fn target_of(drive: &ReadDrive) -> Target {
    if drive.label.eq_ignore_ascii_case("cidata") {
        Target::Nocloud
    } else {
        Target::Config2
    }
}

/// Every problem found; empty when the drive matches the spec.
pub fn check(drive: &ReadDrive) -> Vec<Finding> {
    let mut out = Vec::new();
    let target = target_of(drive);
    let want = target.label();
    if drive.label != want {
        if drive.label.eq_ignore_ascii_case(want) {
            out.push(warning(format!(
                "label is `{}`; the spec writes `{want}` (cloud-init accepts both cases)",
                drive.label
            )));
        } else {
            out.push(error(format!(
                "label is `{}`, not `{want}`: guests will not find the drive",
                drive.label
            )));
        }
    }
    match drive.format {
        Format::Iso9660 => {
            if !drive.rock_ridge {
                out.push(error(
                    "no Rock Ridge: readers see `meta_data.json;1`-style names",
                ));
            }
            if !drive.joliet {
                out.push(warning(
                    "no Joliet volume: Windows readers see primary names only",
                ));
            }
        }
        Format::Vfat => match &drive.root_label {
            None => out.push(error(
                "no volume label entry in the root directory (blkid reports no LABEL)",
            )),
            Some(l) if *l != drive.label => out.push(error(format!(
                "root directory label `{l}` differs from boot sector label `{}`",
                drive.label
            ))),
            Some(_) => {}
        },
    }
    let required: &[(&str, &str)] = match target {
        Target::Config2 => &[
            (
                "ec2/latest/meta-data.json",
                "afterburn refuses drives without it",
            ),
            (
                "openstack/latest/meta_data.json",
                "cloud-init reads it first",
            ),
        ],
        Target::Nocloud => &[
            ("meta-data", "NoCloud needs it"),
            ("user-data", "NoCloud needs it"),
        ],
    };
    for (path, why) in required {
        if !drive.files.contains_key(*path) {
            out.push(error(format!("missing `{path}`: {why}")));
        }
    }
    for (path, bytes) in &drive.files {
        if path.ends_with(".json") {
            if let Err(e) = serde_json::from_slice::<serde_json::Value>(bytes) {
                out.push(error(format!("`{path}` is not valid JSON: {e}")));
            }
        }
        if path.rsplit('/').next() == Some("password") {
            out.push(error(format!(
                "`{path}`: a password file never belongs on a drive"
            )));
        }
    }
    if let Some(meta) = drive.files.get("openstack/latest/meta_data.json") {
        let uuid = serde_json::from_slice::<serde_json::Value>(meta)
            .ok()
            .and_then(|v| v.get("uuid").cloned());
        if uuid.is_none() {
            out.push(error("`openstack/latest/meta_data.json` has no `uuid`"));
        }
    }
    out
}
