//! The typed view of one instance: every document a provider had, parsed once with
//! `compute`'s types.
//!
//! `meta_data.json` is required (it names the instance); every other document is
//! kept as its own `Result`, so a malformed `network_data.json` fails only the
//! network step while the others still run.

use crate::report::error_chain;
use crate::source::{Provider, SourceError};
use compute::instance::NetworkData;
use compute::metadata::MetaDataDocument;
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{document} is not valid")]
    Json {
        document: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("the source has no meta_data.json")]
    NoMetaData,
    #[error("instance id `{0}` cannot name a state folder (letters, digits, `-`, `_`, `.` only)")]
    BadInstanceId(String),
    #[error("meta_data.json lists {path} but its content {content_path} is missing")]
    MissingContent { path: String, content_path: String },
}

/// An injected file as read: its target path and its bytes, or why they are missing.
#[derive(Debug)]
pub struct InjectedFile {
    pub path: String,
    pub contents: Result<Vec<u8>, ViewError>,
}

/// Everything found about the instance.
#[derive(Debug)]
pub struct InstanceData {
    /// Where it came from, for the report.
    pub source: String,
    pub meta: MetaDataDocument,
    pub network: Result<Option<NetworkData>, ViewError>,
    pub vendor_data: Result<Option<Value>, ViewError>,
    pub user_data: Result<Option<Vec<u8>>, ViewError>,
    pub files: Vec<InjectedFile>,
}

/// Reads and parses everything a provider has.
pub fn read(provider: &mut dyn Provider) -> Result<InstanceData, ViewError> {
    let raw = provider.meta_data()?.ok_or(ViewError::NoMetaData)?;
    let meta = MetaDataDocument::from_json(&raw).map_err(|source| ViewError::Json {
        document: "meta_data.json",
        source,
    })?;
    if !is_safe_id(&meta.uuid) {
        return Err(ViewError::BadInstanceId(
            meta.uuid.chars().take(80).collect(),
        ));
    }
    let network = optional_json(provider.network_data(), "network_data.json");
    let vendor_data = optional_json(provider.vendor_data(), "vendor_data.json");
    let user_data = provider.user_data().map_err(ViewError::from);
    let files = meta
        .files
        .iter()
        .map(|f| InjectedFile {
            path: f.path.clone(),
            contents: match provider.content(&f.content_path) {
                Ok(Some(b)) => Ok(b),
                Ok(None) => Err(ViewError::MissingContent {
                    path: f.path.clone(),
                    content_path: f.content_path.clone(),
                }),
                Err(e) => Err(e.into()),
            },
        })
        .collect();
    Ok(InstanceData {
        source: provider.describe(),
        meta,
        network,
        vendor_data,
        user_data,
        files,
    })
}

/// A document the source may lack, parsed when it has it.
fn optional_json<T: serde::de::DeserializeOwned>(
    raw: Result<Option<Vec<u8>>, SourceError>,
    document: &'static str,
) -> Result<Option<T>, ViewError> {
    raw?.map(|b| serde_json::from_slice(&b).map_err(|source| ViewError::Json { document, source }))
        .transpose()
}

fn is_safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl InstanceData {
    /// What `guest-agent show` prints: the documents, secrets replaced by their size.
    pub fn to_json(&self) -> Value {
        let mut meta = serde_json::to_value(&self.meta).unwrap_or(Value::Null);
        if let Some(m) = meta.as_object_mut() {
            if m.contains_key("admin_pass") {
                m.insert("admin_pass".into(), json!("<redacted>"));
            }
            if let Some(Value::String(seed)) = m.get("random_seed") {
                let n = seed.len();
                m.insert(
                    "random_seed".into(),
                    json!(format!("<{n} base64 characters>")),
                );
            }
        }
        let doc = |r: Result<Value, String>| match r {
            Ok(v) => v,
            Err(e) => json!({ "error": e }),
        };
        json!({
            "source": self.source,
            "meta_data": meta,
            "network_data": doc(self.network.as_ref().map(|n| serde_json::to_value(n).unwrap_or(Value::Null)).map_err(|e| error_chain(e))),
            "vendor_data": doc(self.vendor_data.as_ref().map(|v| v.clone().unwrap_or(Value::Null)).map_err(|e| error_chain(e))),
            "user_data": doc(self.user_data.as_ref().map(|u| match u {
                Some(b) => json!({ "bytes": b.len() }),
                None => Value::Null,
            }).map_err(|e| error_chain(e))),
            "files": self.files.iter().map(|f| json!({
                "path": f.path,
                "bytes": f.contents.as_ref().map(|c| json!(c.len())).unwrap_or_else(|e| json!({ "error": error_chain(e) })),
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_are_path_safe() {
        assert!(is_safe_id("2f1d4c3b-8a7e-4b6d-9c5f-0e1a2b3c4d5e"));
        assert!(is_safe_id("i-0000000a"));
        for bad in ["", ".", "..", "../x", "a/b", "a b"] {
            assert!(!is_safe_id(bad), "{bad}");
        }
    }
}
