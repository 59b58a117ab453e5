//! Tagged devices, as Nova exposes them in `meta_data.json` from 2016-06-30.
//!
//! The document stores what the hypervisor knows about each device; which fields a
//! guest sees depends on the metadata version, and that is decided by the renderer.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Device {
    Nic {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bus: Option<Bus>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
        mac: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tags: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vlan: Option<u16>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vf_trusted: Option<bool>,
    },
    Disk {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bus: Option<Bus>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        serial: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tags: Option<Vec<String>>,
    },
    /// A virtiofs share (Manila), shown from 2025-04-04.
    Share {
        share_id: String,
        tag: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tags: Option<Vec<String>>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bus {
    Pci,
    Usb,
    Scsi,
    Ide,
    Xen,
}

impl Bus {
    pub fn as_str(self) -> &'static str {
        match self {
            Bus::Pci => "pci",
            Bus::Usb => "usb",
            Bus::Scsi => "scsi",
            Bus::Ide => "ide",
            Bus::Xen => "xen",
        }
    }
}
