//! Reading rendered documents back: the serde shapes of `meta_data.json` as a guest
//! receives it, for consumers such as the guest agent.
//!
//! The renderer writes these documents with `pyjson`; this module only reads them.
//! Readers are lenient: unknown keys (newer versions) are ignored and everything a
//! version may leave out is optional. `network_data.json` is read with
//! [`crate::instance::NetworkData`], the type it is rendered from.

use crate::instance::Key;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::fmt;

/// `openstack/<version>/meta_data.json`, as read back by a guest.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetaDataDocument {
    pub uuid: String,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub meta: IndexMap<String, serde_json::Value>,
    /// Injected files (drives always; the service only when it serves files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileReference>,
    /// A secret: present on config drives only. Never printed by `Debug`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_pass: Option<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub public_keys: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<Key>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// Base64 of the seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_seed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dedicated_cpus: Vec<u32>,
}

/// One entry of `files` in `meta_data.json`: where the file goes and where its bytes
/// are (`/content/0000`, relative to the `openstack` folder).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileReference {
    pub path: String,
    pub content_path: String,
}

impl MetaDataDocument {
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

impl fmt::Debug for MetaDataDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaDataDocument")
            .field("uuid", &self.uuid)
            .field("hostname", &self.hostname)
            .field("name", &self.name)
            .field("files", &self.files)
            .field(
                "admin_pass",
                &self.admin_pass.as_ref().map(|_| "<redacted>"),
            )
            .field("public_keys", &self.public_keys.keys().collect::<Vec<_>>())
            .field("random_seed", &self.random_seed.as_ref().map(|s| s.len()))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{render_drive, Settings};
    use crate::Instance;

    #[test]
    fn reads_back_what_the_drive_renders() {
        let doc = include_bytes!("../../tests/fixtures/multinic.json");
        let instance = Instance::from_json(doc).expect("fixture is valid");
        let tree = render_drive(&instance, &Settings::default());
        let meta =
            MetaDataDocument::from_json(&tree["openstack/latest/meta_data.json"]).expect("parses");
        assert_eq!(meta.uuid, instance.uuid_str());
        assert_eq!(meta.hostname.as_deref(), Some("web-02.novalocal"));
        assert_eq!(meta.admin_pass.as_deref(), Some("s3cr3t-Pa55"));
        assert_eq!(meta.files.len(), 2);
        assert_eq!(meta.files[0].content_path, "/content/0000");
        assert_eq!(meta.keys.len(), 2);
        assert!(!format!("{meta:?}").contains("s3cr3t"));
    }
}
